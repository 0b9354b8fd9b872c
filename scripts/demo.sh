#!/usr/bin/env bash
# Builds cg-test and shows what it is for: a command that leaves a setsid'ed daemon
# behind. First without cg-test (the daemon escapes; this script then kills it by pid),
# then under cg-test with a 3 s timeout (nothing survives), then under cg-test killed
# itself with SIGKILL mid-run, as a CI cancel does (its watchdog still leaves nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=./target/release/cg-test

# Each process of the demo carries this variable, so survivors can be found without
# matching any process name.
marker="CG_DEMO_MARKER=$$-$RANDOM"
survivors() {
  local pids=""
  for env in /proc/[0-9]*/environ; do
    if { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -qx "$marker"; then
      pid=${env#/proc/}; pids="$pids ${pid%/environ}"
    fi
  done
  echo "$pids"
}

echo "== without cg-test: sh -c 'setsid sleep 300 & sleep 1'"
env "$marker" sh -c 'setsid sleep 300 & sleep 1'
left=$(survivors)
echo "   still running after the command returned:$left"
for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done

echo
echo "== with cg-test: $bin --timeout 3s -- sh -c 'setsid sleep 300 & sleep 600'"
set +e
env "$marker" "$bin" --timeout 3s -- sh -c 'setsid sleep 300 & sleep 600'
rc=$?
set -e
left=$(survivors)
echo "   exit code: $rc (124 = timed out)"
echo "   still running after cg-test returned:${left:- nothing}"
[ "$rc" = 124 ] && [ -z "$left" ] || exit 1

echo
echo "== cg-test itself killed: $bin -- sh -c 'setsid sleep 300 & sleep 600', then kill -9 of cg-test"
env "$marker" "$bin" -- sh -c 'setsid sleep 300 & sleep 600' &
cg=$!
sleep 1
echo "   running before the kill:$(survivors)"
kill -KILL "$cg"
wait "$cg" 2>/dev/null || true
sleep 0.5
left=$(survivors)
echo "   still running 0.5 s after cg-test was killed:${left:- nothing}"
[ -z "$left" ]
