# Exit codes pass through: the command's own code, 128+N for death by signal N, 126 not
# executable, 127 not found; the child gets CG_TEST_RUN_ID naming its run.
. /vm/lib.sh

$CGT -- sh -c 'exit 7' 2>"$T/err"
expect_rc $? 7 "command exiting 7"
expect_done "$T/err" failure 7
expect_paths "$T/err"

$CGT -- sh -c 'kill -USR1 $$' 2>"$T/err"
expect_rc $? 138 "command killed by SIGUSR1"
expect_done "$T/err" killed-by-signal 138

printf '#!/bin/sh\n' >"$T/noexec" && chmod 644 "$T/noexec"
$CGT -- "$T/noexec" 2>"$T/err"
expect_rc $? 126 "command not executable"

$CGT -- /no/such/program 2>"$T/err"
expect_rc $? 127 "command not found"

$CGT -- sh -c 'echo "$CG_TEST_RUN_ID"; cat /proc/self/cgroup' >"$T/out" 2>"$T/err"
expect_rc $? 0 "printing CG_TEST_RUN_ID"
id=$(head -n 1 "$T/out")
[ -n "$id" ] || fail "CG_TEST_RUN_ID is empty"
grep -qx "0::/cg-test-$id" "$T/out" || fail "CG_TEST_RUN_ID $id does not name the leaf: $(tail -n 1 "$T/out")"
assert_no_leaf
