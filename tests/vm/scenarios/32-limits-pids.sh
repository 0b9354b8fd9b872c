# --pids-max 20 with a bounded fork storm (50 forks), cg-test alone in a delegated
# cgroup: the storm stops at 20 processes (19 forks succeed, 31 fail with EAGAIN, which
# cg-test reports from pids.events), and the timeout still tears the whole run down
# (124). Nothing is left and the cgroup is exactly as before.
# vm-variants: native
. /vm/lib.sh
trap limits_cleanup EXIT

root_controllers "+cpu +memory +pids"
x=$(delegated pids)
before=$(cg_state "$x")
m=$(marker storm); ready=$(fresh_dir ready); late=$T/late
$ALONE "$x" $CGT -t 10s -k 1s --pids-max 20 -- \
    $FIX --marker "$m" --life 30 --ready "$ready" --late "$late" --late-on "$T/trigger" fork-storm 50 \
    >"$T/out" 2>"$T/err" &
cg=$!
wait_ready "$ready" 20 20
leaf=$(leaf_of "$T/err")
[ "$(cat "$leaf/pids.max")" = 20 ] || fail "pids.max of $leaf: $(cat "$leaf/pids.max")"
[ "$(cat "$leaf/pids.current")" = 20 ] || fail "pids.current of $leaf: $(cat "$leaf/pids.current")"
[ "$(victims "$m" | wc -l)" = 20 ] || fail "$(victims "$m" | wc -l) storm processes alive, expected 20"
wait $cg
expect_rc $? 124 "the fork storm's timeout"
expect_line "$T/out" "^fork-storm: started 19 of 50, 31 failed (Resource temporarily unavailable"
expect_line "$T/err" "^cg-test: the run reached pids.max 20: 31 fork(s) or clone(s) failed with EAGAIN$"
expect_done "$T/err" timeout 124
assert_no_survivors "$m"
[ "$(cg_state "$x")" = "$before" ] || fail "$x changed: $(cg_state "$x") (was $before)"
rmdir "$x" || fail "$x is not empty"
restore_root
assert_no_leaf
assert_no_late_on "$late" "$T/trigger"
