#!/bin/sh
# cg-test as PID 1 with --timeout: the entrypoint never ends by itself and leaves an
# escaped daemon, a TERM-ignorer and a session hopper; at the deadline cg-test kills
# them all and the machine's exit code is 124.
# cg-test-args: -v -t 5s -k 1s
# expect-exit: 124
# expect-console: cg-test: timed out after 5s
# expect-console: cg-test: killing [0-9]* process(es)
# expect-console: cg-test: done: isolation=cgroup outcome=timeout exit=124
# expect-console: cg-test: removed /sys/fs/cgroup/cg-test-
. /vm/pid1-lib.sh

m=$(marker victims); ready=$(fresh_dir ready)
f="$FIX --marker $m --life 40 --ready $ready"
$f daemon --exit 0
$f ignore-term &
$f hopper --interval-ms 5 &
wait_ready "$ready" 3 4
echo "pid1 script: victims ready, waiting for the timeout"
sleep 40
