# --memory-max 64M with a process that allocates and touches 200 MB, cg-test alone in a
# delegated cgroup (the applied path): cg-test moves itself into a leaf of its own,
# enables memory for the run's leaf (memory.max 64M, memory.swap.max 0, memory.oom.group
# left 0), the OOM killer kills the process, cg-test says so in one line and exits 137
# (the command's own death). Afterwards the cgroup is exactly as before (controllers,
# record, children, processes) and nothing is left.
. /vm/lib.sh
trap limits_cleanup EXIT

root_controllers "+cpu +memory +pids"
x=$(delegated mem)
before=$(cg_state "$x")
m=$(marker oom)
cat >"$T/cmd.sh" <<CMD
sh $T/leaf-files.sh $T/files memory.max memory.swap.max memory.oom.group
exec $FIX --marker $m --life 30 alloc 200 --hold
CMD
$ALONE "$x" $CGT --memory-max 64M -- sh "$T/cmd.sh" 2>"$T/err"
expect_rc $? 137 "a command OOM-killed at --memory-max 64M"
expect_line "$T/err" "^cg-test: out of memory: the kernel's OOM killer killed 1 process(es) of the run at memory.max 64M; the command (pid [0-9]*) was one of them$"
expect_done "$T/err" killed-by-signal 137
expect_paths "$T/err"
expect_line "$T/err" "^cg-test: moved cg-test into $x/cg-test-[0-9a-f-]*-supervisor "
expect_line "$T/err" "^cg-test: enabled memory in $x/cgroup.subtree_control$"
expect_line "$T/err" "^cg-test: limits on $x/cg-test-[0-9a-f-]*: memory.max=64M memory.swap.max=0$"
expect_line "$T/err" "^cg-test: disabled memory in $x/cgroup.subtree_control, moved 2 process(es) back into $x and removed $x/cg-test-[0-9a-f-]*-supervisor$"
[ "$(cat "$T/files")" = "memory.max: 67108864
memory.swap.max: 0
memory.oom.group: 0" ] || fail "the leaf's files: $(cat "$T/files")"
[ "$(cg_state "$x")" = "$before" ] || fail "$x changed: $(cg_state "$x") (was $before)"
assert_no_survivors "$m"
rmdir "$x" || fail "$x is not empty"
restore_root
assert_no_leaf
