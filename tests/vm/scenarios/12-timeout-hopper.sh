# --timeout with session hoppers: processes that fork into a new session every 5 ms and
# let the old generation exit, so no pid or session id stays valid for long. Only a
# frozen cgroup holds them still; cg-test exits 124 and no generation survives. (The
# command itself stays in a plain sleeper, so the run ends by its timeout.)
. /vm/lib.sh

m=$(marker hopper); ready=$(fresh_dir ready); late=$T/late
f="$FIX --marker $m --life 40 --ready $ready --late $late --late-after 8"
t0=$(now_cs)
$CGT -t 5s -k 1s -- sh -c "$f hopper --interval-ms 5 & $f hopper --interval-ms 5 & $f sleep" 2>"$T/err" &
cg=$!
wait_ready "$ready" 3 5
wait $cg
expect_rc $? 124 "cg-test -t 5s with session hoppers"
expect_done "$T/err" timeout 124
expect_paths "$T/err"
assert_no_survivors "$m"
assert_no_leaf
assert_no_late "$late" "$t0" 8
