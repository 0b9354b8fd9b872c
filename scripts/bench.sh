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
#   - the same for 1,001 processes (five `sleepers 199` trees), where the timeout
#     snapshot (one /proc read per process) is on the critical path; also with
#     `--report`, which adds every process's command line to the snapshot;
#   - cg-test's own memory while it supervises (VmHWM / VmRSS from /proc).
#
# BENCH_BASELINE=DIR (a directory holding another build's cg-test, e.g. the release
# binary of the commit before a change): the teardown rows are measured for both
# binaries, runs interleaved so that load on a shared machine hits both alike, with
# the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
cargo build --release --quiet --bins
python3 - "$runs" "${BENCH_BASELINE:-}" <<'PY'
import os, resource, statistics, subprocess, sys, tempfile, time

runs = int(sys.argv[1])
baseline = os.path.join(sys.argv[2], "cg-test") if sys.argv[2] else None
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
def teardown(name, argv_of, deadline, n):
    """Deadline-to-exit of `argv_of(binary)`; with a baseline, both interleaved.
    Without -q: a default run, so the timeout snapshot is taken (stderr is discarded)."""
    binaries = [cg] + ([baseline] if baseline else [])
    times = {b: [] for b in binaries}
    for _ in range(n):
        for b in binaries:
            t0 = time.perf_counter()
            subprocess.run(argv_of(b), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[b].append(time.perf_counter() - t0 - deadline)
    for b in binaries:
        ts = sorted(times[b])
        med, p90 = statistics.median(ts), ts[max(0, int(len(ts) * 0.9) - 1)]
        label = name if b == cg else f"{name}, baseline"
        print(f"| {label} | {med*1000:.1f} ms | {p90*1000:.1f} ms |")
    if baseline:
        ratio = statistics.median(times[cg]) / statistics.median(times[baseline])
        print(f"| {name}: this build / baseline (medians) | {ratio:.2f} | |")

for mode in ("cgroup", "pgroup"):
    teardown(f"timeout killing 40 sleepers ({mode}), deadline to exit",
             lambda b: [b, "--isolation", mode, "-t", "0.5", "-k", "0", "--", fx, "--marker", marker, "--life", "30", "sleepers", "40"],
             0.5, n)
# 1,001 processes: five trees of 1 + 199 sleepers under one sh. The deadline leaves
# time to start them all on a busy machine.
thousand = f"for i in 1 2 3 4 5; do {fx} --marker {marker} --life 30 sleepers 199 & done; wait"
report = os.path.join(tempfile.mkdtemp(prefix="cg-test-bench-"), "report.json")
n1k = max(5, runs // 10)
for mode in ("cgroup", "pgroup"):
    teardown(f"timeout killing 1,001 processes ({mode}), deadline to exit",
             lambda b: [b, "--isolation", mode, "-t", "3", "-k", "0", "--", "sh", "-c", thousand],
             3.0, n1k)
# With --report the snapshot reads every command line too. (A baseline without
# --report is run without it.)
teardown("timeout killing 1,001 processes (cgroup, --report), deadline to exit",
         lambda b: [b, "--isolation", "cgroup", "-t", "3", "-k", "0"]
                   + (["--report", report] if b == cg else []) + ["--", "sh", "-c", thousand],
         3.0, n1k)
print()
print("| cg-test while supervising | peak RSS (VmHWM) | RSS |")
print("|---|---|---|")
for mode in ("cgroup", "pgroup"):
    hwm, rss = memory(mode)
    print(f"| {mode} | {hwm} | {rss} |")
PY

# The watchdog (issue 7): start-up cost with and without it (interleaved A/B runs),
# its memory next to cg-test's, and the cost of the start-up sweep for stale leaves
# (one readdir of cg-test's own cgroup): runs in a cgroup holding no other entries
# against one holding 200 sibling cgroups.
python3 - "$runs" <<'PY'
import os, statistics, subprocess, sys, time

runs = int(sys.argv[1])
cg = "./target/release/cg-test"

def once(argv, pre=None):
    t0 = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, preexec_fn=pre)
    return time.perf_counter() - t0

def ab(name_a, a, name_b, b, pre_a=None, pre_b=None):
    ta, tb = [], []
    for _ in range(runs):
        ta.append(once(a, pre_a))
        tb.append(once(b, pre_b))
    ma, mb = statistics.median(ta), statistics.median(tb)
    print(f"| {name_a} | {ma*1000:.2f} ms |")
    print(f"| {name_b} | {mb*1000:.2f} ms ({(mb-ma)*1e6:+.0f} µs, {mb/ma:.2f}x) |")

print("\n| watchdog: `cg-test -- true`, interleaved | median |")
print("|---|---|")
for mode in ("cgroup", "pgroup"):
    base = [cg, "-q", "--isolation", mode]
    ab(f"{mode}, no watchdog", base + ["--compat", "no-watchdog", "--", "true"],
       f"{mode}, with watchdog", base + ["--", "true"])

def rollup(pid):
    out = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        k, _, v = line.partition(":")
        if k in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            out[k] = int(v.split()[0])
    return out

print("\n| process (cgroup mode, supervising sleep) | Rss | Pss | Private |")
print("|---|---|---|---|")
for extra, label in ((["--compat", "no-watchdog"], "cg-test without watchdog"), ([], "cg-test with watchdog")):
    p = subprocess.Popen([cg, "-q", *extra, "--", "sleep", "0.6"])
    time.sleep(0.3)
    kids = [int(k) for k in open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()]
    rows = [(label, p.pid)]
    rows += [("  its watchdog", k) for k in kids if open(f"/proc/{k}/cmdline", "rb").read().startswith(cg.encode())]
    for name, pid in rows:
        r = rollup(pid)
        print(f"| {name} | {r['Rss']} kB | {r['Pss']} kB | {r['Private_Clean'] + r['Private_Dirty']} kB |")
    p.wait()

# The start-up sweep: cg-test in a cgroup of our own, empty, then with 200 sibling
# cgroups (none of them a cg-test leaf) that the sweep's readdir must walk past.
mount = next(l.split()[4] for l in open("/proc/self/mountinfo") if " - cgroup2 " in l)
own = open("/proc/self/cgroup").read().split("0::", 1)[1].splitlines()[0].lstrip("/")
base = os.path.join(mount, own, f"bench-sweep-{os.getpid()}")
empty, crowded = base + "-empty", base + "-crowded"
for d in (empty, crowded):
    os.mkdir(d)
for i in range(200):
    os.mkdir(os.path.join(crowded, f"other-{i}"))
try:
    enter = lambda d: (lambda: open(os.path.join(d, "cgroup.procs"), "w").write("0"))
    print("\n| start-up sweep: `cg-test -- true` in a cgroup with | median |")
    print("|---|---|")
    ab("no other entries", [cg, "-q", "--", "true"], "200 other cgroups", [cg, "-q", "--", "true"],
       pre_a=enter(empty), pre_b=enter(crowded))
    # The sweep itself: one readdir, names matched against `cg-test-` (timed here in
    # Python, so an upper bound for cg-test's own loop).
    for d, label in ((empty, "no other entries"), (crowded, "200 other cgroups")):
        ts = []
        for _ in range(2000):
            t0 = time.perf_counter()
            sum(1 for e in os.scandir(d) if e.name.startswith("cg-test-"))
            ts.append(time.perf_counter() - t0)
        print(f"| the sweep's readdir alone, {label} | {statistics.median(ts)*1e6:.0f} µs |")
finally:
    for i in range(200):
        os.rmdir(os.path.join(crowded, f"other-{i}"))
    for d in (empty, crowded):
        os.rmdir(d)
PY
