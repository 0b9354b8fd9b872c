# cg-test's stderr on a serial line whose output is stopped (the host keeps sending
# XOFF to the guest's ttyS1, see scripts/vm-test.sh): what cg-test writes fits in the
# driver's queue, which never drains. cg-test used to tcdrain any terminal before
# exiting and so never exited here. Now a cg-test that is not PID 1 exits at once, and
# one that is PID 1 (of a pid namespace) waits for the queue about 2 s, then exits.
# vm-variants: native
. /vm/lib.sh
tty=/dev/ttyS1
[ -c $tty ] || fail "$tty is missing: the lane boots the suite with a second serial port"

# Bytes sent so far on ttyS1, from the serial driver's counters.
tx_count() { sed -n 's/^1: .* tx:\([0-9]*\) .*/\1/p' /proc/tty/driver/serial; }

# wait_tx_above N SECS: wait until more than N bytes were sent; false on timeout.
wait_tx_above() {
    end=$(($(now_cs) + $2 * 100))
    while [ "$(tx_count)" -le "$1" ]; do
        [ "$(now_cs)" -ge "$end" ] && return 1
        sleep 0.1
    done
}

# Keep the line open: its settings stay while it is open. (busybox stty applies them
# with TCSADRAIN, so it is only used while the queue is empty.)
exec 3<>$tty

# Release the line (the host sends XON once it reads this on the console) and let the
# queue drain, so that closing it does not wait: a serial port's last close waits up to
# 30 s for its queue. Also on the way out of a failure.
released=""
release() {
    [ -n "$released" ] && return 0
    released=1
    echo "VMTEST COM2 XON" >/dev/console
    wait_tx_above "$1" 20 || return 1
    stty -F $tty -ixon
    exec 3>&-
}
trap 'release 0' EXIT

# Control: without IXON the host's XOFF does nothing and a byte is sent.
stty -F $tty -ixon || fail "stty -F $tty -ixon failed"
sent=$(tx_count)
[ -n "$sent" ] || fail "no tx counter for ttyS1 in /proc/tty/driver/serial: $(cat /proc/tty/driver/serial)"
printf x >&3
wait_tx_above "$sent" 10 || fail "$tty sends nothing even without XOFF: $(grep '^1:' /proc/tty/driver/serial)"

# With IXON the next XOFF stops the line: a byte written then stays unsent.
stty -F $tty ixon -ixany || fail "stty -F $tty ixon failed"
stopped=""
end=$(($(now_cs) + 2000))
while [ "$(now_cs)" -lt "$end" ]; do
    before=$(tx_count)
    printf x >&3
    sleep 0.5
    if [ "$(tx_count)" = "$before" ]; then
        stopped=1
        break
    fi
done
[ -n "$stopped" ] || fail "$tty never stopped sending (no XOFF from the host?): $(grep '^1:' /proc/tty/driver/serial)"
queued_at=$(tx_count)

# Not PID 1: exit without waiting for the line.
t0=$(now_cs)
timeout -s KILL 30 $CGT -- true 2>$tty
rc=$?
took=$(($(now_cs) - t0))
[ "$rc" = 137 ] && fail "cg-test did not exit within 30 s with stderr on a stopped serial line"
expect_rc $rc 0 "cg-test -- true, stderr on stopped $tty"
note "not PID 1: exited in ${took}0 ms"

# PID 1 of a pid namespace: waits for the line, but only about 2 s.
if command -v unshare-ul >/dev/null; then
    t0=$(now_cs)
    timeout -s KILL 30 unshare-ul --pid --fork --mount-proc $CGT -- true 2>$tty
    rc=$?
    took=$(($(now_cs) - t0))
    [ "$rc" = 137 ] && fail "cg-test as PID 1 did not exit within 30 s with stderr on a stopped serial line"
    expect_rc $rc 0 "cg-test as PID 1 -- true, stderr on stopped $tty"
    [ "$took" -ge 150 ] || fail "cg-test as PID 1 exited after ${took}0 ms: it should have waited ~2 s for the line"
    note "PID 1: exited in ${took}0 ms (the drain gives up after 2 s)"
else
    note "util-linux unshare is not in the image: the PID-1 half did not run"
fi
[ "$(tx_count)" = "$queued_at" ] || fail "$tty was not stopped throughout (tx:$queued_at, now tx:$(tx_count))"

release "$queued_at" || fail "$tty did not resume after XON"
assert_no_leaf
