# The guest's scenario runner (busybox sh), started by /init in cgtest.mode=suite.
#
# Runs every /vm/scenarios/*.sh in name order, once per variant (native, compat; a
# scenario may narrow this with a `# vm-variants: native` line), each under a time limit
# (`# vm-timeout: SECS`, default 60). It reports on the serial console, one line each,
# which scripts/vm-test.sh parses:
#   VMTEST BEGIN id        VMTEST PASS id (Ns)    VMTEST FAIL id: reason
#   VMTEST SKIP id: reason VMTEST NOTE id: text   VMTEST LOG id| line of a failed log
#   VMTEST DONE
# where id is `name[variant]`. After each scenario it checks the machine is clean
# again: no cg-test leaf in the hierarchy, no process carrying the scenario's markers.
# Every 10 s it prints `VMTEST TICK`, so the host can tell a guest that stalled (no
# byte for VMTEST_STALL seconds) from a long scenario; `cgtest.from=NAME` on the kernel
# command line (the host's one resumed boot after a stall) skips the scenarios before
# NAME.
export PATH=/bin:/usr/bin

header() { sed -n "s/^# $1: *//p" "$2" | head -n 1; }

uptime_s() { cut -d. -f1 /proc/uptime; }

echo "VMTEST INFO kernel $(uname -r), $(nproc) cpus, cgroup2 at /sys/fs/cgroup: $(cat /sys/fs/cgroup/cgroup.controllers)"
mkdir -p /tmp/vmt-logs
from=""
# shellcheck disable=SC2013 # the command line is words, not lines
for word in $(cat /proc/cmdline); do
    case "$word" in cgtest.from=*) from=${word#*=} ;; esac
done
(while :; do
    sleep 10
    echo "VMTEST TICK"
done) &
tick=$!
for f in /vm/scenarios/*.sh; do
    name=$(basename "$f" .sh)
    if [ -n "$from" ]; then
        [ "$name" = "$from" ] || continue
        from=""
    fi
    variants=$(header vm-variants "$f")
    limit=$(header vm-timeout "$f")
    for v in ${variants:-native compat}; do
        id="${name}[$v]"
        log=/tmp/vmt-logs/$name.$v.log
        echo "VMTEST BEGIN $id"
        start=$(uptime_s)
        VMT_NAME=$name VMT_VARIANT=$v timeout -s KILL "${limit:-60}" sh "$f" >"$log" 2>&1 </dev/null
        rc=$?
        took=$(($(uptime_s) - start))
        sed -n "s/^NOTE: /VMTEST NOTE $id: /p" "$log"
        # Hygiene: whatever the verdict, nothing of this scenario may be left.
        dirty=""
        leaves=$(find /sys/fs/cgroup -type d -name 'cg-test-*' 2>/dev/null)
        [ -n "$leaves" ] && dirty="cg-test leaves left: $leaves"
        for d in /proc/[0-9]*; do
            case "$(tr '\0' ' ' 2>/dev/null <"$d/cmdline")" in
                *"vmt-$name-$v-"*) dirty="$dirty process ${d#/proc/} with this scenario's marker alive" ;;
            esac
        done
        if [ "$rc" = 0 ] && [ -z "$dirty" ]; then
            echo "VMTEST PASS $id (${took}s)"
        elif [ "$rc" = 77 ] && [ -z "$dirty" ]; then
            echo "VMTEST SKIP $id: $(sed -n 's/^SKIP: //p' "$log" | tail -n 1)"
        else
            case "$rc" in
                0 | 77) reason="after the scenario: $dirty" ;;
                137) reason="killed after ${limit:-60} s (scenario time limit) $dirty" ;;
                *) reason="$(sed -n 's/^FAIL: //p' "$log" | tail -n 1) $dirty" ;;
            esac
            [ "$reason" = " " ] && reason="exit $rc"
            echo "VMTEST FAIL $id: $reason"
            tail -n 60 "$log" | sed "s/^/VMTEST LOG $id| /"
        fi
    done
done
kill "$tick" 2>/dev/null
echo "VMTEST DONE"
