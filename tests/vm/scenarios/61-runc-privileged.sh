# A real OCI runtime, privileged (issue 12; `docker run --privileged` on a pure cgroup v2
# host): runc runs cg-test as the container's PID 1 with every capability, no seccomp and
# cgroup2 read-write in a private cgroup namespace, whose root (the container's cgroup,
# /vmt-runc-privileged from the VM's side) holds cg-test itself. cg-test makes its leaf
# next to itself (that root distributes no controllers, so the no-internal-process rule
# allows it; docs/DESIGN.md) and spawns into it with clone3. `runc kill ID TERM` runs the
# ladder and exits 143; then the exit code (7) passes through. Each time an escaped setsid
# daemon and a TERM-ignorer were alive before and are gone after, no leaf is left, and runc
# leaves no container and no cgroup.
# vm-variants: native
# vm-timeout: 60
. /vm/lib.sh
command -v runc >/dev/null || skip "runc is not in the image"
trap runc_cleanup EXIT
ctr=$CGROOT/vmt-runc-privileged

# cgroup_checks ERR: the leaf path ran, not the pgroup fallback nor kill(-1).
cgroup_checks() {
    expect_line "$1" '^cg-test: created /sys/fs/cgroup/cg-test-'
    expect_line "$1" '^cg-test: spawned pid [0-9]* (clone3 into the leaf)$'
    expect_line "$1" '^cg-test: no watchdog: cg-test is the init of its pid namespace'
    grep -q 'using process group' "$1" && fail "fell back to the process group: $(grep 'using process group' "$1")"
    grep -q 'kill(-1' "$1" && fail "kill(-1) on the cgroup path: $(grep 'kill(-1' "$1")"
    return 0
}

# 1. docker stop: TERM to PID 1, while the leaf is seen from outside inside the
# container's cgroup, next to cg-test.
id=vmt-runc-priv-1
m=$(marker stop)
f=$(runc_fixture "$m")
runc_start privileged $id <<ENTRY
cat /proc/self/cgroup >/x/ns-cgroup
cg-test doctor >/x/doctor 2>&1
exec cg-test -v -k 1s -- sh -c '$f daemon --exit 0; exec $f ignore-term'
ENTRY
wait_ready "$RUNC_X/ready" 2 20
[ "$(victims "$m" | wc -l)" = 2 ] || fail "the 2 victims are not alive before the stop: $(victims "$m")"
[ "$(cat "$RUNC_X/ns-cgroup")" = "0::/" ] || fail "inside the container /proc/self/cgroup was $(cat "$RUNC_X/ns-cgroup")"
leaves=$(find "$ctr" -mindepth 1 -maxdepth 1 -type d -name 'cg-test-*' | wc -l)
[ "$leaves" = 1 ] || fail "expected the run's leaf in $ctr, found $leaves: $(find $CGROOT -name 'cg-test-*')"
init=$($RUNC state $id | sed -n 's/^ *"pid": *\([0-9]*\),*/\1/p')
grep -qx "$init" "$ctr/cgroup.procs" || fail "cg-test (pid $init) is not in the namespace root $ctr: $(tr '\n' ' ' <"$ctr/cgroup.procs")"
d=$RUNC_X/doctor
expect_line "$d" '^seccomp: *none'
expect_line "$d" '^CAP_SYS_ADMIN: *yes'
expect_line "$d" '^cgroup2 mount: */sys/fs/cgroup (read-write)'
expect_line "$d" '^clone3 into cgroup: *yes'
runc_stopped $id privileged cgroup cgroup_checks "$m"

# 2. exit code 7 (see runc_exit_code).
runc_exit_code privileged vmt-runc-priv-2 cgroup cgroup_checks

runc_finish
