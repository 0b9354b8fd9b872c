# --timeout with escaped daemons: a double-forked setsid grandchild whose parent exited
# at once, one whose parent stayed, and one that re-executed itself with an empty
# environment. All were alive before the deadline; after it cg-test exits 124 and none
# survives, not even long enough to write its late marker.
. /vm/lib.sh

m=$(marker daemons); ready=$(fresh_dir ready); late=$T/late
f="$FIX --marker $m --life 40 --ready $ready --late $late --late-after 8"
t0=$(now_cs)
$CGT -t 5s -k 1s -- sh -c "$f daemon --exit 0; $f scrub-env; $f daemon" 2>"$T/err" &
cg=$!
wait_ready "$ready" 4 5
wait $cg
expect_rc $? 124 "cg-test -t 5s with escaped daemons"
expect_done "$T/err" timeout 124
expect_paths "$T/err"
assert_no_survivors "$m"
assert_no_leaf
assert_no_late "$late" "$t0" 8
