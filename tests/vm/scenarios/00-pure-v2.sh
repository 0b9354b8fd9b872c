# The premise of the lane: this machine is pure cgroup v2 (one cgroup2 mount at
# /sys/fs/cgroup, no v1 hierarchy) with the usual controllers, on a kernel older than
# the host's; cg-test puts its leaf directly under its own cgroup (here the root).
# vm-variants: native
. /vm/lib.sh

grep -q ' /sys/fs/cgroup .* - cgroup2 ' /proc/self/mountinfo || fail "/sys/fs/cgroup is not cgroup2"
! grep -q ' - cgroup ' /proc/self/mountinfo || fail "a cgroup v1 hierarchy is mounted"
for c in cpu memory pids io; do
    grep -qw "$c" $CGROOT/cgroup.controllers || fail "controller $c missing from $CGROOT/cgroup.controllers"
done
note "kernel $(uname -r); controllers: $(cat $CGROOT/cgroup.controllers)"

$CGT -- cat /proc/self/cgroup >"$T/out" 2>"$T/err"
expect_rc $? 0 "cg-test -- cat /proc/self/cgroup"
expect_done "$T/err" success 0
expect_paths "$T/err"
grep -q '^0::/cg-test-[0-9]*-[0-9]*-' "$T/out" || fail "command ran in $(cat "$T/out"), not in a cg-test-* leaf under the root"
[ "$(leaf_of "$T/err")" = "$CGROOT/$(sed 's|^0::/||' "$T/out")" ] || fail "leaf $(leaf_of "$T/err") is not the command's cgroup $(cat "$T/out")"
expect_line "$T/err" "removed $CGROOT/cg-test-"
assert_no_leaf
