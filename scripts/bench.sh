#!/usr/bin/env bash
# Benchmarks cg-test's own costs on this machine; results go to BENCHMARKS.md by hand.
# Speed and memory targets live here, never in a timed test.
#
#   bash scripts/bench.sh [RUNS]
#
# Measures (median and p90 over RUNS, default 200):
#   - start-to-exit overhead of `cg-test -- true` against bare `true` and GNU
#     `timeout 60 true`, for each isolation mode;
#   - teardown latency: from the deadline to cg-test's exit, for a timeout that has to
#     kill 40 sleepers spread over several sessions (kill-after 0);
#   - cg-test's own memory while it supervises (VmHWM / VmRSS from /proc).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
cargo build --release --quiet --bins
python3 - "$runs" <<'PY'
import os, resource, statistics, subprocess, sys, time

runs = int(sys.argv[1])
cg = "./target/release/cg-test"
fx = "./target/release/cg-test-fixture"

def measure(argv, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.9) - 1)]

def row(name, argv, n=runs):
    med, p90 = measure(argv, n)
    print(f"| {name} | {med*1000:.2f} ms | {p90*1000:.2f} ms |")

def memory(mode):
    p = subprocess.Popen([cg, "-q", "--isolation", mode, "--", "sleep", "0.5"])
    time.sleep(0.25)
    status = open(f"/proc/{p.pid}/status").read()
    p.wait()
    fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
    return fields["VmHWM"].strip(), fields["VmRSS"].strip()

print(f"kernel {os.uname().release}, {os.cpu_count()} cores, {runs} runs each\n")
print("| command | median | p90 |")
print("|---|---|---|")
row("true", ["true"])
row("timeout 60 true", ["timeout", "60", "true"])
row("cg-test -- true (cgroup)", [cg, "-q", "--isolation", "cgroup", "--", "true"])
row("cg-test -- true (cgroup, fork-spawn)", [cg, "-q", "--isolation", "cgroup", "--compat", "fork-spawn", "--", "true"])
row("cg-test -- true (pgroup)", [cg, "-q", "--isolation", "pgroup", "--", "true"])
marker = f"bench-{os.getpid()}"
n = max(5, runs // 20)
for mode in (["--isolation", "cgroup"], ["--isolation", "pgroup"]):
    argv = [cg, "-q", *mode, "-t", "0.5", "-k", "0", "--", fx, "--marker", marker, "--life", "30", "sleepers", "40"]
    med, p90 = measure(argv, n)
    print(f"| timeout killing 40 sleepers ({mode[1]}), deadline to exit | {(med-0.5)*1000:.1f} ms | {(p90-0.5)*1000:.1f} ms |")
print()
print("| cg-test while supervising | peak RSS (VmHWM) | RSS |")
print("|---|---|---|")
for mode in ("cgroup", "pgroup"):
    hwm, rss = memory(mode)
    print(f"| {mode} | {hwm} | {rss} |")
PY
