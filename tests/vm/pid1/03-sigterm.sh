#!/bin/sh
# SIGTERM to cg-test as PID 1 (`docker stop`): init ignores signals it has no handler
# for, so this proves cg-test really takes TERM as PID 1. It tears the run down,
# killing a TERM-ignorer after the grace, and the machine's exit code is 143.
# cg-test-args: -v -k 1s
# expect-exit: 143
# expect-console: cg-test: received SIGTERM; forwarding it
# expect-console: cg-test: done: isolation=cgroup outcome=interrupted exit=143
# expect-console: cg-test: removed /sys/fs/cgroup/cg-test-
. /vm/pid1-lib.sh

m=$(marker victims); ready=$(fresh_dir ready)
f="$FIX --marker $m --life 40 --ready $ready"
$f daemon --exit 0
$f ignore-term &
wait_ready "$ready" 2 4
echo "pid1 script: sending SIGTERM to PID 1"
kill -TERM 1
sleep 40
