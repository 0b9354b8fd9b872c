#!/bin/sh
# cg-test as the machine's PID 1 (a container entrypoint): orphans of the command are
# reparented to cg-test and reaped while it runs; an escaped daemon left behind is
# reported, killed and its leaf removed; the command's exit code (42) becomes init's,
# which the host reads from the kernel's "Attempted to kill init! exitcode=" panic.
# cg-test-args: -v --leak-timeout 300ms
# expect-exit: 42
# expect-console: cg-test: spawned pid [0-9]* (clone3 into the leaf)
# expect-console: cg-test: 1 process(es) outlived the command in 
# expect-console: cg-test: *[0-9][0-9]* *[0-9][0-9]* [A-Z] .*cg-test-fixture
# expect-console: cg-test: done: isolation=cgroup outcome=failure exit=42 .*leaked=1$
# expect-console: cg-test: removed /sys/fs/cgroup/cg-test-
. /vm/pid1-lib.sh

check_reaping
m=$(marker daemon); ready=$(fresh_dir ready)
$FIX --marker "$m" --life 40 --ready "$ready" daemon --exit 0
wait_ready "$ready" 1 5
echo "pid1 script: leaving daemon $(victims "$m") behind, exiting 42"
exit 42
