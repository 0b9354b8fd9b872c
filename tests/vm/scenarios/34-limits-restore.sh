# cg-test's own cgroup (the parent of the run's leaf) is exactly as before a limited run
# — its subtree_control, cg-test's record on it, the cgroups inside it, its processes —
# after a normal end, a timeout, a signal teardown, and a SIGKILL of cg-test itself
# (then its watchdog, born in cg-test's own leaf, disables the controllers, moves itself
# back and removes that leaf, within 2 s).
. /vm/lib.sh
trap limits_cleanup EXIT

root_controllers "+cpu +memory +pids"
x=$(delegated restore)
before=$(cg_state "$x")
m=$(marker restore); ready=$(fresh_dir ready); late=$T/late
f="$FIX --marker $m --life 30 --ready $ready --late $late --late-on $T/trigger"
L="--memory-max 64M --pids-max 50"
same() { [ "$(cg_state "$x")" = "$before" ] || fail "after $1, $x is $(cg_state "$x") (was $before)"; }
restored_line() {
    expect_line "$1" "^cg-test: disabled memory, pids in $x/cgroup.subtree_control, moved 2 process(es) back into $x and removed $x/cg-test-[0-9a-f-]*-supervisor$"
}

# A normal end.
$ALONE "$x" $CGT $L -- true 2>"$T/err-normal"
expect_rc $? 0 "a normal end"
expect_line "$T/err-normal" "^cg-test: enabled memory, pids in $x/cgroup.subtree_control$"
restored_line "$T/err-normal"
same "a normal end"

# A timeout.
$ALONE "$x" $CGT $L -t 2s -k 1s -- $f ignore-term 2>"$T/err-timeout"
expect_rc $? 124 "a timeout"
restored_line "$T/err-timeout"
same "a timeout"

# A signal teardown.
rm -f "$ready"/*
$ALONE "$x" $CGT $L -k 1s -- $f sleep 2>"$T/err-term" &
cg=$!
wait_ready "$ready" 1 10
kill -TERM $cg
wait $cg
expect_rc $? 143 "SIGTERM to cg-test"
restored_line "$T/err-term"
same "a signal teardown"

# SIGKILL of cg-test: the watchdog puts everything back.
rm -f "$ready"/*
$ALONE "$x" $CGT $L -- sh -c "$f daemon & $f ignore-term & wait" 2>"$T/err-kill" &
cg=$!
wait_ready "$ready" 3 10
expect_line "$T/err-kill" 'watchdog pid [0-9]* started'
[ -n "$(find "$x" -maxdepth 1 -name 'cg-test-*-supervisor')" ] || fail "no supervisor leaf in $x during the run"
kill -KILL $cg
killed=$(now_cs)
wait $cg
expect_rc $? 137 "SIGKILL of cg-test"
while [ "$(cg_state "$x")" != "$before" ]; do
    [ $(($(now_cs) - killed)) -ge 200 ] && fail "2 s after cg-test was SIGKILLed, $x is $(cg_state "$x") (was $before)"
    sleep 0.05
done
note "$x put back $(($(now_cs) - killed))0 ms after the SIGKILL"
i=0
while ! grep -q "watchdog: cg-test (pid $cg) is gone" "$T/err-kill"; do
    i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.05
done
expect_line "$T/err-kill" "^cg-test: watchdog: cg-test (pid $cg) is gone; killed [0-9]* process(es) of its run and removed $x/cg-test-[0-9a-f]*-[0-9]*-[0-9a-f]*; disabled memory, pids in $x/cgroup.subtree_control, moved 1 process(es) back into $x and removed $x/cg-test-[0-9a-f-]*-supervisor$"

assert_no_survivors "$m"
rmdir "$x" || fail "$x is not empty"
restore_root
assert_no_leaf
assert_no_late_on "$late" "$T/trigger"
