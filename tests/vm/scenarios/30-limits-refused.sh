# Limits refused, as cg-test runs from a shell (the refusal path): in a cgroup whose
# parent does not offer the controller, and — the no-internal-process rule — in a cgroup
# it shares with its shell, where it must not move the shell and cannot enable the
# controllers for its leaf. Each: exit 125, one line naming the controller, the cgroup,
# why and the fix, the command never ran, the cgroup exactly as before.
# `--limits best-effort` runs the command without limits after one warning.
# vm-variants: native
. /vm/lib.sh
trap limits_cleanup EXIT

x=$(delegated refused)
before=$(cg_state "$x")

# 1. The root passes nothing down yet: x's cgroup.controllers lacks memory.
root_controllers "-memory"
sh -c 'echo $$ >"$1/cgroup.procs"; cg-test --memory-max 64M -- touch "$2/ran1"; echo $? >"$2/rc1"' sh "$x" "$T" 2>"$T/err1"
expect_rc "$(cat "$T/rc1")" 125 "--memory-max where the parent offers no memory controller"
[ "$(wc -l <"$T/err1")" = 1 ] || fail "expected one line: $(cat "$T/err1")"
expect_line "$T/err1" "^cg-test: --memory-max: the memory controller is not in $x/cgroup.controllers (its parent cgroup, $CGROOT, does not pass it down); enable it there (echo '+memory' > $CGROOT/cgroup.subtree_control)"
[ ! -e "$T/ran1" ] || fail "the command ran although its limit was refused"
[ "$(cg_state "$x")" = "$before" ] || fail "$x changed: $(cg_state "$x") (was $before)"

# 2. Offered, but cg-test shares x with its shell.
root_controllers "+cpu +memory +pids"
sh -c 'echo $$ >"$1/cgroup.procs"; cg-test --memory-max 64M --pids-max 20 --cpus 0.5 -- touch "$2/ran2"; echo $? >"$2/rc2"' sh "$x" "$T" 2>"$T/err2"
expect_rc "$(cat "$T/rc2")" 125 "limits with a shell beside cg-test"
[ "$(wc -l <"$T/err2")" = 1 ] || fail "expected one line: $(cat "$T/err2")"
expect_line "$T/err2" "^cg-test: --cpus, --memory-max, --pids-max: cannot enable the cpu, memory and pids controllers for the run's leaf: $x holds 1 other process(es) besides cg-test (pid [0-9]*: sh -c .*no-internal-process rule.*systemd-run --scope -p Delegate=yes.*container's PID 1.*--limits best-effort"
[ ! -e "$T/ran2" ] || fail "the command ran although its limits were refused"
[ "$(cg_state "$x")" = "$before" ] || fail "$x changed: $(cg_state "$x") (was $before)"

# 3. The same with --limits best-effort: one warning, the command runs, unlimited.
sh -c 'echo $$ >"$1/cgroup.procs"; cg-test --limits best-effort --memory-max 64M -- sh "$2/leaf-files.sh" "$2/max3" memory.max; echo $? >"$2/rc3"' sh "$x" "$T" 2>"$T/err3"
expect_rc "$(cat "$T/rc3")" 0 "--limits best-effort"
expect_line "$T/err3" "^cg-test: warning: --memory-max: cannot enable the memory controller .*; running without limits (--limits best-effort)$"
expect_done "$T/err3" success 0
[ "$(grep -c '^cg-test: ' "$T/err3")" = 2 ] || fail "expected the warning and the summary: $(cat "$T/err3")"
# x passes no memory controller down, so the leaf has no memory.max at all.
[ "$(cat "$T/max3")" = "memory.max: -" ] || fail "the best-effort run's leaf had $(cat "$T/max3")"
[ "$(cg_state "$x")" = "$before" ] || fail "$x changed: $(cg_state "$x") (was $before)"

rmdir "$x" || fail "$x is not empty: $(cg_state "$x")"
restore_root
assert_no_leaf
