# --pid-ns on pure cgroup v2 (issue 12): the command runs as pid 2 of a new pid
# namespace whose init (cg-test's, outside the leaf) dies with cg-test.
# 1. a timeout with an escaped daemon and a TERM-ignorer: 124, nothing left, the
#    command spawned into the leaf by the variant's path;
# 2. SIGKILL of cg-test with the watchdog turned off: the kernel kills the namespace,
#    so nothing of the run is alive 1 s later (only the empty leaf stays, for gc);
# 3. `ps` inside sees the init, the command and what it started, nothing else.
# vm-timeout: 90
. /vm/lib.sh

m=$(marker pidns); ready=$(fresh_dir ready); late=$T/late
f="$FIX --marker $m --life 40 --ready $ready --late $late --late-after 8"
t0=$(now_cs)
$CGT --pid-ns -t 2s -k 1s -- sh -c "$f daemon --exit 0; $f ignore-term & wait" 2>"$T/err1"
expect_rc $? 124 "cg-test --pid-ns -t 2s"
expect_line "$T/err1" 'is pid 2 of a new pid namespace whose init is pid'
expect_paths "$T/err1"
expect_done "$T/err1" timeout 124
[ "$(count_files "$ready")" -ge 2 ] || fail "the victims never started"
assert_no_survivors "$m"
assert_no_leaf

m2=$(marker pidnskill); ready2=$(fresh_dir ready2); late2=$T/late2
g="$FIX --marker $m2 --life 40 --ready $ready2 --late $late2 --late-after 8"
t1=$(now_cs)
$CGT --pid-ns --compat no-watchdog -- sh -c "$g daemon & $g ignore-term & wait" 2>"$T/err2" &
cg=$!
wait_ready "$ready2" 3 10
[ -n "$(victims "$m2")" ] || fail "no victim alive before the kill"
leaf=$(leaf_of "$T/err2")
[ -d "$leaf" ] || fail "no leaf $leaf while the run goes on"
kill -KILL $cg
killed=$(now_cs)
wait $cg
# Every process of the run is in the leaf: `populated 0` means all are dead. One file
# read per check, so the loop costs nothing under TCG; the full scan comes after.
while grep -q '^populated 1' "$leaf/cgroup.events" 2>/dev/null; do
    [ $(($(now_cs) - killed)) -ge 100 ] && fail "processes of the run alive 1 s after cg-test (no watchdog) was killed: $(cat "$leaf/cgroup.procs")"
    sleep 0.02
done
note "the namespace took the run $(($(now_cs) - killed))0 ms after cg-test's SIGKILL, no watchdog"
assert_no_survivors "$m2"
# No watchdog: the empty leaf stays (for gc); remove it.
rmdir "$leaf" || fail "cannot remove the empty leaf $leaf"

out=$($CGT --pid-ns -- sh -c 'ps -o pid,ppid,comm; true' 2>"$T/err3")
expect_rc $? 0 "cg-test --pid-ns -- ps"
echo "$out" | grep -q '^ *1 *0 *cg-test' || fail "pid 1 should be cg-test's init: $out"
echo "$out" | grep -q '^ *2 *1 *sh' || fail "pid 2 should be the command: $out"
[ "$(echo "$out" | wc -l)" -le 5 ] || fail "ps inside should see only the run: $out"
assert_no_leaf
assert_no_late "$late" "$t0" 8
assert_no_late "$late2" "$t1" 8
