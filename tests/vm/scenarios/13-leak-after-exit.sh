# Leak after exit: the command succeeds but leaves an escaped daemon and a tree of
# sleepers behind. cg-test reports each leaked process (a table row), kills them all, and exits with
# the command's code; with --fail-on-leak a success becomes 123, a failure stays itself.
. /vm/lib.sh

# leak_run TAG EXPECTED_RC COMMAND_EXIT [CG-TEST FLAGS]
leak_run() {
    tag=$1; want=$2; code=$3; shift 3
    m=$(marker "$tag"); ready=$(fresh_dir "ready-$tag")
    f="$FIX --marker $m --life 40 --ready $ready --late $T/late-$tag --late-after 6"
    started=$(now_cs)
    # The command waits until its 4 leftovers are ready, so they are alive when it exits.
    $CGT --leak-timeout 300ms "$@" -- sh -c "$f daemon --exit 0; $f sleepers 2 &
        while [ \$(ls $ready | wc -l) -lt 4 ]; do sleep 0.05; done; exit $code" 2>"$T/err-$tag"
    expect_rc $? "$want" "leak run $tag"
    expect_line "$T/err-$tag" "leaked=4\$"
    expect_line "$T/err-$tag" "^cg-test: 4 process(es) outlived the command in "
    expect_line "$T/err-$tag" "^cg-test: *[0-9][0-9]* *[0-9][0-9]* [A-Z] .*$m"
    expect_paths "$T/err-$tag"
    assert_no_survivors "$m"
    assert_no_leaf
}

leak_run plain 0 0
expect_done "$T/err-plain" success 0
leak_run strict 123 0 --fail-on-leak
expect_done "$T/err-strict" leaked 123
leak_run failing 3 3 --fail-on-leak
expect_done "$T/err-failing" failure 3
for tag in plain strict failing; do assert_no_late "$T/late-$tag" "$started" 6; done
