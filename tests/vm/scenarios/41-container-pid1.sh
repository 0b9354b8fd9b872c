# Container-like with cg-test as the container's PID 1: new pid, mount and cgroup
# namespaces with the namespace root holding processes. Orphans are reaped, an escaped
# daemon is reported and killed, and the command's exit code (42) comes out of the
# container (util-linux unshare --fork returns it).
# vm-variants: native
. /vm/lib.sh
command -v unshare-ul >/dev/null || skip "util-linux unshare (for --cgroup) is not in the image"

ctr=$CGROOT/vmt-ctr1
mkdir -p $ctr
m=$(marker ctr1); ready=$(fresh_dir ready)
cat >"$T/entry.sh" <<ENTRY
. /vm/lib.sh
check() {
    [ "\$\$" != 1 ] && [ "\$PPID" = 1 ] || fail "the command is pid \$\$ with parent \$PPID, not a child of PID 1"
    make_orphans 10 1
    sleep 0.5
    [ "\$(children_of 1 | wc -l)" -ge 11 ] || fail "orphans did not become children of PID 1"
    sleep 2
    [ -z "\$(zombies_of 1)" ] || fail "zombie children of PID 1 not reaped: \$(zombies_of 1)"
}
(check) >$T/entry-check 2>&1 || exit 99
$FIX --marker $m --life 40 --ready $ready daemon --exit 0
wait_ready $ready 1 5
exit 42
ENTRY
cat >"$T/inside.sh" <<INSIDE
umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 90
exec $CGT --leak-timeout 300ms -- env VMT_NAME=$VMT_NAME-entry sh $T/entry.sh
INSIDE
sh -c "echo \$\$ >$ctr/cgroup.procs && exec unshare-ul --cgroup --mount --pid --fork --mount-proc sh $T/inside.sh" 2>"$T/err"
rc=$?
[ "$rc" = 99 ] && fail "inside the container: $(cat "$T/entry-check")"
expect_rc $rc 42 "cg-test as the container's PID 1"
expect_done "$T/err" failure 42
expect_line "$T/err" 'leaked=1$'
assert_no_survivors "$m"
assert_no_leaf
rmdir $ctr || fail "$ctr is not empty after the run"
