# Helpers for the PID-1 scripts in /vm/pid1 (sourced; busybox sh). These scripts are
# cg-test's command while cg-test is the machine's PID 1, so their verdict is the exit
# code the host reads from the kernel panic: a failed check prints `FAIL: reason` and
# exits 1, which the host reports with that reason.
VMT_VARIANT=native
. /vm/lib.sh

[ "$(tr '\0' '\n' </proc/1/cmdline | head -n 1)" = /bin/cg-test ] || fail "PID 1 is not cg-test but $(tr '\0' ' ' </proc/1/cmdline)"

# Orphans reparented to PID 1 are reaped while the command runs: 10 sleeps become
# children of PID 1 (checked while they live), then none of them is left a zombie.
check_reaping() {
    before=$(children_of 1 | wc -l)
    make_orphans 10 1
    sleep 0.5
    n=$(children_of 1 | wc -l)
    [ "$n" -ge $((before + 10)) ] || fail "only $((n - before)) of 10 orphans became children of PID 1"
    sleep 2
    z=$(zombies_of 1 | wc -l)
    [ "$z" = 0 ] || fail "$z zombie children of PID 1 not reaped: $(zombies_of 1 | tr '\n' ' ')"
    echo "pid1 script: 10 orphans were reparented to PID 1 and reaped"
}
