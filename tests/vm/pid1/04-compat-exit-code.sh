#!/bin/sh
# As 01-exit-code, on the older-kernel paths: fork + cgroup.procs instead of clone3,
# SIGKILL per member instead of cgroup.kill, no subreaper (as PID 1, orphans come to
# cg-test anyway and must still be reaped).
# cg-test-args: -v --leak-timeout 300ms --compat fork-spawn,signal-kill,no-subreaper
# expect-exit: 42
# expect-console: cg-test: spawned pid [0-9]* (fork)
# expect-console: cgroup.kill: no
# expect-console: cg-test: 1 process(es) outlived the command in 
# expect-console: cg-test: *[0-9][0-9]* *[0-9][0-9]* [A-Z] .*cg-test-fixture
# expect-console: cg-test: done: isolation=cgroup outcome=failure exit=42 .*leaked=1$
# expect-console: cg-test: removed /sys/fs/cgroup/cg-test-
. /vm/pid1-lib.sh

check_reaping
m=$(marker daemon); ready=$(fresh_dir ready)
$FIX --marker "$m" --life 40 --ready "$ready" daemon --exit 0
wait_ready "$ready" 1 5
exit 42
