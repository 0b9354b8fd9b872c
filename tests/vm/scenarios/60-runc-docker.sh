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
    expect_line "$1" '^cg-test: cannot create cgroup /sys/fs/cgroup/cg-test-.*Read-only file system.*; using process group'
    [ "$(grep -c 'using process group' "$1")" = 1 ] || fail "auto's fallback note should appear once: $(grep 'using process group' "$1" | tr '\n' '|')"
    expect_line "$1" '^cg-test: no watchdog: cg-test is the init of its pid namespace'
    expect_line "$1" '^cg-test: kill(-1, SIGKILL): cg-test is the init of its pid namespace'
}

# 1. exit code 7, with a daemon and a TERM-ignorer left behind (killed after -k 1s);
# the command exits once the victims were seen alive (/x/go).
id=vmt-runc-docker-1
m=$(marker ec)
f="cg-test-fixture --marker $m --life 30 --ready /x/ready --late /x/late --late-on /x/trigger"
runc_start docker $id <<ENTRY
exec cg-test -v -k 1s -- sh -c '$f daemon --exit 0; $f ignore-term & i=0; while [ ! -e /x/go ] && [ \$i -lt 400 ]; do sleep 0.05; i=\$((i+1)); done; exit 7'
ENTRY
wait_ready "$RUNC_X/ready" 2 20
[ "$(victims "$m" | wc -l)" = 2 ] || fail "the 2 victims are not alive before the exit: $(victims "$m")"
touch "$RUNC_X/go"
runc_wait $id 30
expect_rc "$RC" 7 "runc run (cg-test -- sh -c '... exit 7')"
err=$T/$id.err
expect_line "$err" '^cg-test: done: isolation=pgroup outcome=failure exit=7 '
expect_line "$err" '^cg-test: 2 process(es) outlived the command'
pgroup_checks "$err"
assert_no_survivors "$m"
runc_gone $id docker
assert_no_late_on "$RUNC_X/late" "$RUNC_X/trigger"

# 2. docker stop: TERM to PID 1.
id=vmt-runc-docker-2
m=$(marker stop)
f="cg-test-fixture --marker $m --life 30 --ready /x/ready --late /x/late --late-on /x/trigger"
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
$RUNC kill $id TERM || fail "runc kill $id TERM failed"
runc_wait $id 30
expect_rc "$RC" 143 "runc run after runc kill TERM"
err=$T/$id.err
expect_line "$err" 'received SIGTERM'
expect_line "$err" '^cg-test: done: isolation=pgroup outcome=interrupted exit=143 '
pgroup_checks "$err"
assert_no_survivors "$m"
runc_gone $id docker
assert_no_late_on "$RUNC_X/late" "$RUNC_X/trigger"

# runc enabled every controller at the root for the container's cgroup; the cleanup puts
# the root back as the scenario found it.
runc_cleanup
[ "$(cat "$CGROOT/cgroup.subtree_control")" = "$ROOT_BEFORE" ] ||
    fail "the root's controllers are [$(cat "$CGROOT/cgroup.subtree_control")], were [$ROOT_BEFORE]"
