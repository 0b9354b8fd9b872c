# --harden on pure cgroup v2 (issue 12), where cgroup2 is mounted without nsdelegate (as
# this guest mounts it, like most hosts that are not systemd's): a root child of the
# command writes its pid into /sys/fs/cgroup/cgroup.procs, the root cgroup and the
# leaf's parent. Under --harden its /sys/fs/cgroup shows only its leaf, so it stays in
# the leaf and dies at the timeout; without --harden (the control) it moves to the root
# cgroup, outlives the run, and is killed here by pid.
. /vm/lib.sh

m=$(marker harden); ready=$(fresh_dir ready); late=$T/late
child="echo \$\$ > $CGROOT/cgroup.procs; exec $FIX --marker $m --life 40 --ready $ready --late $late --late-after 8 sleep"
t0=$(now_cs)
$CGT --harden -t 3s -k 1s -- sh -c "sh -c '$child' & wait" 2>"$T/err1" &
cg=$!
wait_ready "$ready" 1 10
p=$(victims "$m")
leaf=$(leaf_of "$T/err1")
[ -n "$p" ] && [ -n "$leaf" ] || fail "no victim ($p) or no leaf ($leaf)"
grep -qx "$p" "$leaf/cgroup.procs" || fail "under --harden the child $p should still be in $leaf"
wait $cg
expect_rc $? 124 "cg-test --harden -t 3s"
expect_paths "$T/err1"
assert_no_survivors "$m"
assert_no_late "$late" "$t0" 8

m2=$(marker control); ready2=$(fresh_dir ready2)
child2="echo \$\$ > $CGROOT/cgroup.procs; exec $FIX --marker $m2 --life 40 --ready $ready2 sleep"
$CGT -t 2s -k 1s -- sh -c "sh -c '$child2' & wait" 2>"$T/err2"
expect_rc $? 124 "cg-test -t 2s (the control)"
p=$(victims "$m2")
[ -n "$p" ] || fail "without --harden the child should have left the leaf and survived"
grep -qx "$p" "$CGROOT/cgroup.procs" || fail "the escaped child $p should be in the root cgroup"
note "control: without --harden the child $p moved itself to the root cgroup and outlived the run"
kill -KILL "$p"
i=0
while [ -n "$(victims "$m2")" ]; do i=$((i + 1)); [ $i -gt 100 ] && fail "cannot kill $p"; sleep 0.05; done
assert_no_survivors "$m2"
assert_no_leaf
