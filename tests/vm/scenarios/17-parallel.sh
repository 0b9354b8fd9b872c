# Parallel runs stay apart: four cg-test runs at once get four distinct leaves and run
# ids. Two (c, d) end early with leaks, and their teardown must not touch the other two
# (a, b), whose victims are still alive afterwards; a and b then time out (124) and
# nothing is left.
. /vm/lib.sh

# timed_run TAG: ends by its 12 s timeout (the checks of a and b below must come
# before it, also under TCG on a busy host); an escaped daemon and a sleeper (2 ready).
timed_run() {
    f="$FIX --marker $(marker "$1") --life 40 --ready $T/ready-$1 --late $T/late-$1 --late-after 15"
    $CGT -t 12s -k 1s -- sh -c "echo \$CG_TEST_RUN_ID >$T/id-$1; $f daemon --exit 0; $f sleep" 2>"$T/err-$1"
}
# leaky_run TAG: exits 0 once $T/go exists, leaving an escaped daemon (1 ready).
leaky_run() {
    f="$FIX --marker $(marker "$1") --life 40 --ready $T/ready-$1 --late $T/late-$1 --late-after 15"
    $CGT -- sh -c "echo \$CG_TEST_RUN_ID >$T/id-$1; $f daemon --exit 0
        while [ ! -e $T/go ]; do sleep 0.05; done" 2>"$T/err-$1"
}

for r in a b c d; do fresh_dir "ready-$r" >/dev/null; done
t0=$(now_cs)
timed_run a & pid_a=$!
timed_run b & pid_b=$!
leaky_run c & pid_c=$!
leaky_run d & pid_d=$!
wait_ready "$T/ready-a" 2 5
wait_ready "$T/ready-b" 2 5
wait_ready "$T/ready-c" 1 5
wait_ready "$T/ready-d" 1 5
leaves=$(find "$CGROOT" -maxdepth 1 -type d -name 'cg-test-*' | wc -l)
[ "$leaves" = 4 ] || fail "$leaves cg-test leaves while 4 runs are going"

touch "$T/go"
wait $pid_c; expect_rc $? 0 "run c"
wait $pid_d; expect_rc $? 0 "run d"
assert_no_survivors "$(marker c)"
assert_no_survivors "$(marker d)"
for r in a b; do
    ! grep -q '^cg-test: done:' "$T/err-$r" ||
        fail "run $r ended before runs c and d were torn down, so this check proves nothing (machine too slow for the 12 s timeout?)"
    n=$(victims "$(marker $r)" | wc -l)
    [ "$n" = 2 ] || fail "run $r has $n of its 2 victims left after runs c and d were torn down"
done
wait $pid_a; expect_rc $? 124 "run a"
wait $pid_b; expect_rc $? 124 "run b"

for r in a b c d; do
    expect_paths "$T/err-$r"
    assert_no_survivors "$(marker $r)"
done
expect_line "$T/err-c" 'leaked=1$'
[ "$(sort -u "$T"/id-? | wc -l)" = 4 ] || fail "run ids are not distinct: $(cat "$T"/id-?)"
assert_no_leaf
for r in a b c d; do assert_no_late "$T/late-$r" "$t0" 15; done
