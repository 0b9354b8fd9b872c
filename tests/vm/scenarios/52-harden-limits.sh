# --harden keeps a root command from raising its own leaf's limits (issue 18, item 2), on
# pure cgroup v2 without nsdelegate (as this guest mounts it), where the leaf is the
# command's cgroup namespace root and its files are root's to write. cg-test alone in a
# delegated cgroup with --memory-max 64M --pids-max 20 --cpus 1; the command writes
# `max` into its leaf's memory.max, memory.swap.max, pids.max, cpu.max, memory.high and
# cgroup.max.descendants, and opens (never writes) the usermode-helper files
# kernel.core_pattern, kernel.modprobe and /proc/sysrq-trigger for writing (a subshell's
# `exec 3>>FILE`: O_APPEND, nothing written).
# 1. --harden: every write and open is refused as a read-only file system, cgroup.procs
#    and cgroup.subtree_control (what a nested run needs) still open for writing, and the
#    limits are as cg-test set them;
# 2. the control, without --harden: every write succeeds (the limits are gone) and
#    every helper file opens for writing.
# vm-variants: native
. /vm/lib.sh
trap limits_cleanup EXIT

root_controllers "+cpu +memory +pids"
m=$(marker hlim)
cat >"$T/cmd.sh" <<CMD
: $m
cg="/sys/fs/cgroup\$(sed -n 's/^0:://p' /proc/self/cgroup)"
out=$T/out-\$1
: >"\$out"
for f in memory.max memory.swap.max pids.max cpu.max memory.high cgroup.max.descendants; do
    if { echo max >"\$cg/\$f"; } 2>>"$T/why-\$1"; then echo "\$f written"; else echo "\$f refused"; fi >>"\$out"
done
for f in /proc/sys/kernel/core_pattern /proc/sys/kernel/modprobe /proc/sysrq-trigger; do
    if [ ! -e "\$f" ]; then echo "\$f absent"
    elif (exec 3>>"\$f") 2>>"$T/why-\$1"; then echo "\$f opens"
    else echo "\$f refused"; fi >>"\$out"
done
for f in cgroup.procs cgroup.subtree_control; do
    if (exec 3>>"\$cg/\$f") 2>>"$T/why-\$1"; then echo "\$f opens"; else echo "\$f refused"; fi >>"\$out"
done
sh $T/leaf-files.sh $T/files-\$1 memory.max memory.swap.max pids.max cpu.max memory.high
CMD

limits="--memory-max 64M --pids-max 20 --cpus 1"
x=$(delegated hlim)
$ALONE "$x" $CGT --harden $limits -- sh "$T/cmd.sh" hard 2>"$T/err1"
expect_rc $? 0 "cg-test --harden $limits"
expect_done "$T/err1" success 0
for f in memory.max memory.swap.max pids.max cpu.max memory.high cgroup.max.descendants; do
    grep -qx "$f refused" "$T/out-hard" || fail "under --harden $f: $(grep "^$f " "$T/out-hard")"
done
for f in /proc/sys/kernel/core_pattern /proc/sys/kernel/modprobe /proc/sysrq-trigger; do
    grep -qx "$f refused" "$T/out-hard" || fail "under --harden $f: $(grep "^$f " "$T/out-hard")"
done
for f in cgroup.procs cgroup.subtree_control; do
    grep -qx "$f opens" "$T/out-hard" || fail "under --harden $f should stay writable: $(cat "$T/why-hard")"
done
n=$(grep -c 'Read-only file system' "$T/why-hard")
[ "$n" = 9 ] || fail "9 refusals as a read-only file system expected, got $n: $(cat "$T/why-hard")"
[ "$(cat "$T/files-hard")" = "memory.max: 67108864
memory.swap.max: 0
pids.max: 20
cpu.max: 100000 100000
memory.high: max" ] || fail "the limits under --harden: $(cat "$T/files-hard")"
rmdir "$x" || fail "$x is not empty"

x=$(delegated hlim)
$ALONE "$x" $CGT $limits -- sh "$T/cmd.sh" soft 2>"$T/err2"
expect_rc $? 0 "cg-test $limits (the control)"
for f in memory.max memory.swap.max pids.max cpu.max memory.high cgroup.max.descendants; do
    grep -qx "$f written" "$T/out-soft" || fail "the control could not write $f: $(cat "$T/why-soft")"
done
for f in /proc/sys/kernel/core_pattern /proc/sys/kernel/modprobe /proc/sysrq-trigger; do
    grep -qx "$f opens" "$T/out-soft" || fail "the control could not open $f: $(grep "^$f " "$T/out-soft")"
done
[ "$(cat "$T/files-soft")" = "memory.max: max
memory.swap.max: max
pids.max: max
cpu.max: max 100000
memory.high: max" ] || fail "the control's limits: $(cat "$T/files-soft")"
note "control: without --harden the command raised its own memory.max, pids.max and cpu.max to max"
rmdir "$x" || fail "$x is not empty"
restore_root
assert_no_leaf
