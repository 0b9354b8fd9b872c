# A limited run whose cg-test and watchdog are both SIGKILLed (cg-test stopped first, so
# it cannot replace the watchdog, then the watchdog, so it cannot act) leaves its leaf, the controllers it enabled and their record behind.
# (a) At the root: the next cg-test started there, without limits, collects the leaf
#     (killing the escaped daemon in it) and disables the recorded controllers.
# (b) Alone in a delegated cgroup: the run's leaf, cg-test's own supervisor leaf and the
#     enabled memory controller stay (no new process may enter that cgroup now), and
#     `cg-test gc` run from outside collects both leaves and puts the cgroup back.
# vm-variants: native
. /vm/lib.sh
trap limits_cleanup EXIT

root_state() { cg_state "$CGROOT" | sed 's/ children=.*//; s/ procs=.*//'; }
record() { $FIX --marker "$(marker xattr)" --life 5 getxattr "$1" user.cg-test.controllers; }
# kill_both ERRFILE CGPID: stop cg-test (a cg-test that runs replaces a killed
# watchdog at once), SIGKILL the run's watchdog, then cg-test.
kill_both() {
    wd=$(sed -n 's/^cg-test: watchdog pid \([0-9]*\) started$/\1/p' "$1")
    [ -n "$wd" ] || fail "no watchdog pid in $1"
    kill -STOP "$2"
    i=0
    while ! grep -q '^State:.*T' "/proc/$2/status" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
    kill -KILL "$wd"
    while [ -e "/proc/$wd" ] && ! grep -q '^State:.*Z' "/proc/$wd/status" 2>/dev/null; do sleep 0.05; done
    kill -KILL "$2"
    wait "$2"
}

# (a) at the root
root_controllers "-cpu -memory -pids"
before=$(root_state)
m=$(marker stale-a); ready=$(fresh_dir ready-a)
cg-test -v --memory-max 64M --pids-max 50 -- sh -c \
    "$FIX --marker $m --life 30 --ready $ready daemon --exit 0; exec $FIX --marker $m --life 30 sleep" \
    2>"$T/err-a" &
cg=$!
wait_ready "$ready" 1 10
kill_both "$T/err-a" $cg
leaf=$(leaf_of "$T/err-a")
[ -d "$leaf" ] || fail "the killed run's leaf $leaf is gone already"
[ "$(cat "$CGROOT/cgroup.subtree_control")" = "memory pids" ] || fail "root's controllers after the kill: $(cat "$CGROOT/cgroup.subtree_control")"
[ "$(record "$CGROOT")" = "memory pids" ] || fail "root's record after the kill: $(record "$CGROOT")"
[ -n "$(victims "$m")" ] || fail "the escaped daemon is not alive in the stale leaf"
cg-test -- true 2>"$T/err-sweep"
expect_rc $? 0 "a cg-test started beside the stale leaf"
expect_line "$T/err-sweep" "^cg-test: killed pid [0-9]* (.*) in the stale leaf $leaf$"
expect_line "$T/err-sweep" "^cg-test: removed stale leaf $leaf (its cg-test, pid $cg, is gone)$"
expect_line "$T/err-sweep" "^cg-test: disabled memory, pids in $CGROOT/cgroup.subtree_control (enabled by cg-test runs that are gone)$"
[ "$(root_state)" = "$before" ] || fail "the root after the sweep: $(root_state) (was $before)"
assert_no_survivors "$m"

# (b) alone in a delegated cgroup: gc from outside
root_controllers "+cpu +memory +pids"
x=$(delegated stale)
before=$(cg_state "$x")
m=$(marker stale-b); ready=$(fresh_dir ready-b)
$ALONE "$x" cg-test -v --memory-max 64M -- sh -c \
    "$FIX --marker $m --life 30 --ready $ready daemon --exit 0; exec $FIX --marker $m --life 30 sleep" \
    2>"$T/err-b" &
cg=$!
wait_ready "$ready" 1 10
kill_both "$T/err-b" $cg
[ "$(cat "$x/cgroup.subtree_control")" = "memory" ] || fail "$x's controllers after the kill: $(cat "$x/cgroup.subtree_control")"
sup=$(find "$x" -maxdepth 1 -name 'cg-test-*-supervisor')
[ -n "$sup" ] || fail "no supervisor leaf left in $x"
leaf=$(leaf_of "$T/err-b")
cg-test gc "$x" 2>"$T/err-gc"
expect_rc $? 0 "cg-test gc $x"
expect_line "$T/err-gc" "^cg-test: gc: removed stale leaf $leaf "
expect_line "$T/err-gc" "^cg-test: gc: removed stale leaf $sup "
expect_line "$T/err-gc" "^cg-test: gc: disabled memory in $x/cgroup.subtree_control (enabled by cg-test runs that are gone)$"
[ "$(cg_state "$x")" = "$before" ] || fail "$x after gc: $(cg_state "$x") (was $before)"
assert_no_survivors "$m"
rmdir "$x" || fail "$x is not empty"
restore_root
assert_no_leaf
