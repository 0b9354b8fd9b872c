# SIGKILL of cg-test itself (a CI runner's cancel, the OOM killer): its watchdog, a
# process of cg-test's own in a session of its own, sees the pipe only cg-test held
# close, then freezes, kills and removes the leaf. Every victim (an escaped daemon, a
# TERM-ignorer, a session hopper) is gone within 1 s, the leaf within 2 s.
. /vm/lib.sh

m=$(marker sigkill); ready=$(fresh_dir ready); late=$T/late
f="$FIX --marker $m --life 40 --ready $ready --late $late --late-after 8"
t0=$(now_cs)
$CGT -- sh -c "$f daemon & $f ignore-term & $FIX --marker $m --life 40 hopper & wait" 2>"$T/err" &
cg=$!
wait_ready "$ready" 3 10
expect_line "$T/err" 'watchdog pid [0-9]* started'
expect_paths "$T/err"
leaf=$(leaf_of "$T/err")
[ -d "$leaf" ] || fail "no leaf $leaf while the run goes on"
[ -n "$(victims "$m")" ] || fail "no victim alive before the kill"

kill -KILL $cg
killed=$(now_cs)
wait $cg
expect_rc $? 137 "cg-test killed by SIGKILL"
# Every process of the run is in the leaf: `populated 0` (or the leaf gone) means all
# are dead. One file read per check, so the loop itself costs nothing under TCG; the
# full scan for survivors comes after.
while [ -d "$leaf" ] && grep -q '^populated 1' "$leaf/cgroup.events" 2>/dev/null; do
    [ $(($(now_cs) - killed)) -ge 100 ] && fail "processes of the run still alive 1 s after cg-test was killed: $(cat "$leaf/cgroup.procs")"
    sleep 0.02
done
emptied=$(($(now_cs) - killed))
while [ -d "$leaf" ]; do
    [ $(($(now_cs) - killed)) -ge 200 ] && fail "leaf $leaf still there 2 s after cg-test was killed"
    sleep 0.05
done
note "run empty ${emptied}0 ms, leaf removed $(($(now_cs) - killed))0 ms after the kill"
# Its last line comes after the token sweep that follows the leaf's removal.
i=0
while ! grep -q "watchdog: cg-test (pid $cg) is gone; killed [0-9]* process(es) of its run and removed" "$T/err"; do
    i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.05
done
expect_line "$T/err" "watchdog: cg-test (pid $cg) is gone; killed [0-9]* process(es) of its run and removed"
assert_no_survivors "$m"
assert_no_leaf
assert_no_late "$late" "$t0" 8
