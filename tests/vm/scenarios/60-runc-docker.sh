# A real OCI runtime with Docker's defaults on a pure cgroup v2 host (issue 12): runc
# runs cg-test as the container's PID 1 with a private cgroup namespace, cgroup2
# read-only at /sys/fs/cgroup, Docker's 14 capabilities (no CAP_SYS_ADMIN) and Docker's
# seccomp profile (clone3 -> ENOSYS). cg-test falls back to the process group with its one
# note, and as the init of the pid namespace its teardown sweep is kill(-1, SIGKILL) (-v
# says both). 1: the command's exit code (7) comes out of `runc run`; 2: `runc kill ID
# TERM` (docker stop) runs the ladder and exits 143. Each time an escaped setsid daemon and
# a TERM-ignorer were alive before and are gone after, seen from the VM's side, and runc
# leaves no container and no cgroup.
# vm-variants: native
# vm-timeout: 60
. /vm/lib.sh
command -v runc >/dev/null || skip "runc is not in the image"
trap runc_cleanup EXIT

# pgroup_checks ERR: the fallback note (once) and the PID-1 lines of the pgroup path.
pgroup_checks() {
    expect_line "$1" '^cg-test: no cgroup2 mount .* can be used: /sys/fs/cgroup is mounted read-only .*Read-only file system.*; using process group'
    [ "$(grep -c 'using process group' "$1")" = 1 ] || fail "auto's fallback note should appear once: $(grep 'using process group' "$1" | tr '\n' '|')"
    expect_line "$1" '^cg-test: no watchdog: cg-test is the init of its pid namespace'
    expect_line "$1" '^cg-test: kill(-1, SIGKILL): cg-test is the init of its pid namespace'
}

# 1. exit code 7 (see runc_exit_code).
runc_exit_code docker vmt-runc-docker-1 pgroup pgroup_checks

# 2. docker stop: TERM to PID 1.
id=vmt-runc-docker-2
m=$(marker stop)
f=$(runc_fixture "$m")
runc_start docker $id <<ENTRY
cg-test doctor >/x/doctor 2>&1
exec cg-test -v -k 1s -- sh -c '$f daemon --exit 0; exec $f ignore-term'
ENTRY
wait_ready "$RUNC_X/ready" 2 20
[ "$(victims "$m" | wc -l)" = 2 ] || fail "the 2 victims are not alive before the stop: $(victims "$m")"
# What the container really got, as cg-test doctor saw it from inside (tried, not read
# from the config): seccomp on and answering ENOSYS to clone3, no CAP_SYS_ADMIN, a
# read-only cgroup2 whose root is the namespace's.
d=$RUNC_X/doctor
expect_line "$d" '^seccomp: *filter'
expect_line "$d" '^clone3: *no (.*ENOSYS'
expect_line "$d" '^CAP_SYS_ADMIN: *no'
expect_line "$d" '^cgroup2 mount: */sys/fs/cgroup (read-only)'
expect_line "$d" '^own cgroup: */ = /sys/fs/cgroup$'
runc_stopped $id docker pgroup pgroup_checks "$m"

runc_finish
