#!/usr/bin/env bash
# Benchmarks cg-test against the tools people use instead, and its own costs, on this
# machine; results go to BENCHMARKS.md by hand. Speed and memory targets live here,
# never in a timed test.
#
#   bash scripts/bench.sh [RUNS]          (RUNS: start-up runs per command, default 500)
#   BENCH_ONLY="startup teardown" bash scripts/bench.sh   (some sections only)
#   BENCH_BASELINE=DIR bash scripts/bench.sh              (DIR/cg-test: another build,
#                                           e.g. the commit before a change, added to
#                                           the start-up and teardown comparisons)
#
# Every comparison is interleaved (A B C A B C ...) in one invocation, so load from
# other work on a shared machine hits every command alike; the tables give medians and
# ratios, and only the ratios should be trusted across machines or runs. Sections:
#   startup   `X -- /bin/true` for GNU timeout, tini, tini-static, dumb-init, bwrap
#             --unshare-pid (where it runs), systemd-run --scope (where systemd runs),
#             and cg-test as `cargo install` builds it (release, dynamic glibc), as
#             `cargo install-static` builds it (static glibc) and as
#             scripts/build-static.sh builds it (static musl); wall and CPU time; and
#             examples/spawn_floor.rs, a Rust program linked as cg-test is that only
#             spawns and waits (the floor cg-test's start-up is set against)
#   parts     what the watchdog and the start-up sweep of stale leaves cost
#   pgroup    `--isolation pgroup` on a quiet host and with 2,000 unrelated processes
#   teardown  a timeout of N TERM-ignoring processes (N = 100, 1,000, 5,000), phase by
#             phase, against the kernel's floor (examples/teardown_floor.rs) on the
#             same tree; the timeout snapshot's cost; 40 sleepers in both modes
#   scale     50 runs at once: per-run cost against 50 `timeout` runs at once, every
#             exit code and no leaf left
#   memory    resident memory while supervising `sleep`, against the other tools and
#             `sleep` alone
#   namespaces  what --pid-ns and --harden add to `cg-test -- true`
#   containment  what each tool leaves behind: a setsid'ed daemon after the command
#             exits, and at a timeout (the comparison table in README.md)
#
# The script installs tini, tini-static, dumb-init and bubblewrap with apt-get when they
# are missing (as root), builds what it measures, and runs everything inside a cgroup2
# sub-cgroup of its own (removed at the end), so no other user's leaves sit beside the
# runs.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-500}

need=()
for p in tini:tini tini-static:tini-static dumb-init:dumb-init bwrap:bubblewrap; do
    command -v "${p%%:*}" >/dev/null || need+=("${p##*:}")
done
if ((${#need[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "bench: installing ${need[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; } ||
            echo "bench: could not install ${need[*]}; their rows are left out" >&2
    else
        echo "bench: ${need[*]} missing (install them as root); their rows are left out" >&2
    fi
fi

echo "bench: building (release, static glibc, static musl, the floor)" >&2
cargo build --release --locked --quiet --bins --example teardown_floor --example spawn_floor
cargo build --release --locked --quiet --bin cg-test --target x86_64-unknown-linux-gnu \
    --config 'target.x86_64-unknown-linux-gnu.rustflags=["-C", "target-feature=+crt-static"]'
bash scripts/build-static.sh >/dev/null 2>&1 || echo "bench: the static musl build failed; its rows are left out" >&2

# A cgroup2 sub-cgroup of our own for the whole benchmark; back out and remove it at
# the end.
mount=$(awk '$0 ~ / - cgroup2 / {print $5; exit}' /proc/self/mountinfo)
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
home="$mount${own%/}"
bench_cg="$home/bench-$$"
if mkdir "$bench_cg" 2>/dev/null && echo $$ >"$bench_cg/cgroup.procs" 2>/dev/null; then
    trap 'echo $$ >"$home/cgroup.procs" 2>/dev/null; rmdir "$bench_cg" 2>/dev/null || true' EXIT
else
    rmdir "$bench_cg" 2>/dev/null || true
    echo "bench: cannot make $bench_cg; running in $home" >&2
fi

sections=${BENCH_ONLY:-startup parts pgroup teardown scale memory containment namespaces}
python3 - "$runs" "${BENCH_BASELINE:-}" "$sections" <<'PY'
import os, re, signal, statistics, subprocess, sys, tempfile, time

runs = int(sys.argv[1])
baseline = os.path.join(sys.argv[2], "cg-test") if sys.argv[2] else None
only = sys.argv[3].split()
root = os.getcwd()
cg = f"{root}/target/release/cg-test"
cg_glibc_static = f"{root}/target/x86_64-unknown-linux-gnu/release/cg-test"
cg_musl = f"{root}/target/x86_64-unknown-linux-musl/release/cg-test"
fx = f"{root}/target/release/cg-test-fixture"
floor = f"{root}/target/release/examples/teardown_floor"
spawn_floor = f"{root}/target/release/examples/spawn_floor"
marker = f"cg-test-bench-{os.getpid()}"
devnull = os.open(os.devnull, os.O_RDWR)

def have(path):
    return os.path.exists(path) and os.access(path, os.X_OK)

def which(name):
    for d in os.environ.get("PATH", "").split(":"):
        if have(os.path.join(d, name)):
            return os.path.join(d, name)
    return None

def load():
    return open("/proc/loadavg").read().split()[0]

def spawn(argv, env=None):
    """posix_spawn (vfork-fast, the same for every command); returns (wall s, cpu s, status)."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env if env is not None else os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                       (os.POSIX_SPAWN_DUP2, devnull, 1),
                                       (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status, ru = os.wait4(pid, 0)
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status)

def interleave(cmds, n):
    """cmds: [(label, argv)]; n rounds of each in turn. Returns {label: ([wall], [cpu])}."""
    res = {label: ([], []) for label, _ in cmds}
    for _ in range(n):
        for label, argv in cmds:
            w, c, _ = spawn(argv)
            res[label][0].append(w)
            res[label][1].append(c)
    return res

def med(xs):
    return statistics.median(xs)

def ms(x):
    return f"{x * 1000:.2f} ms"

print(f"# cg-test benchmarks\n")
print(f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
print(f"- commit: {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}")
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
print(f"- machine: {cpu}, {os.cpu_count()} cores, kernel {os.uname().release}, load average {load()} at start")
print(f"- cgroup2 at {next(l.split()[4] for l in open('/proc/self/mountinfo') if ' - cgroup2 ' in l)}; systemd {'runs' if os.path.isdir('/run/systemd/system') else 'is not PID 1 here'}")
print(f"- cg-test builds: release (dynamic glibc, `cargo install`) {os.path.getsize(cg)} B; static glibc (`cargo install-static`) {os.path.getsize(cg_glibc_static) if have(cg_glibc_static) else '-'} B; static musl (scripts/build-static.sh) {os.path.getsize(cg_musl) if have(cg_musl) else '-'} B")

# ---------------------------------------------------------------- start-up
if "startup" in only:
    true = "/bin/true"
    tools = [("/bin/true", [true]),
             ("GNU timeout 60", [which("timeout"), "60", true])]
    for name, argv in (("tini -s", [which("tini"), "-s", "--", true]),
                       ("tini-static -s", [which("tini-static"), "-s", "--", true]),
                       ("dumb-init", [which("dumb-init"), true])):
        if argv[0]:
            tools.append((name, argv))
    # A Rust program built and linked as cg-test is that only spawns and waits.
    tools.append(("spawn_floor (examples/spawn_floor.rs)", [spawn_floor, true]))
    bwrap = which("bwrap")
    if bwrap and spawn([bwrap, "--dev-bind", "/", "/", "--unshare-pid", true])[2] == 0:
        tools.append(("bwrap --unshare-pid", [bwrap, "--dev-bind", "/", "/", "--unshare-pid", true]))
    else:
        print("\n(bwrap --unshare-pid does not run here; left out)")
    sdrun = which("systemd-run")
    if sdrun and os.path.isdir("/run/systemd/system"):
        tools.append(("systemd-run --scope", [sdrun, "--scope", "--quiet", true]))
    builds = [("cg-test, release (dynamic glibc)", cg)]
    if have(cg_glibc_static):
        builds.append(("cg-test, static glibc", cg_glibc_static))
    if have(cg_musl):
        builds.append(("cg-test, static musl", cg_musl))
    if baseline:
        builds.append(("cg-test, baseline", baseline))
    cmds = tools + [(n, [b, "-q", "--", true]) for n, b in builds]
    cmds += [(f"{builds[0][0]}, --isolation pgroup", [cg, "-q", "--isolation", "pgroup", "--", true])]
    if have(cg_musl):
        cmds += [("cg-test, static musl, --isolation pgroup", [cg_musl, "-q", "--isolation", "pgroup", "--", true])]
    spawn(cmds[0][1])
    res = interleave(cmds, runs)
    base = med(res["GNU timeout 60"][0])
    tini = med(res["tini -s"][0]) if "tini -s" in res else None
    print(f"\n## Start-up: `X -- /bin/true`, {runs} runs each, interleaved (load {load()} at the end)\n")
    print("| command | wall (median) | / timeout | / tini | CPU (median) |")
    print("|---|---|---|---|---|")
    for label, _ in cmds:
        w, c = med(res[label][0]), med(res[label][1])
        t = f"{w / tini:.2f}x" if tini else "-"
        print(f"| {label} | {ms(w)} | {w / base:.2f}x | {t} | {ms(c)} |")
    print("\nCPU is the user + system time of the process and everything it reaped (wait4).")

# ---------------------------------------------------------------- parts
if "parts" in only:
    print(f"\n## What the parts of a run cost: `cg-test -q -- /bin/true`, {runs} runs each, interleaved\n")
    print("| build | without the watchdog | with it | the watchdog costs |")
    print("|---|---|---|---|")
    for name, b in (("release (dynamic glibc)", cg), ("static glibc", cg_glibc_static), ("static musl", cg_musl)):
        if not have(b):
            continue
        res = interleave([("off", [b, "-q", "--compat", "no-watchdog", "--", "/bin/true"]),
                          ("on", [b, "-q", "--", "/bin/true"])], runs)
        a, w = med(res["off"][0]), med(res["on"][0])
        print(f"| {name} | {ms(a)} | {ms(w)} | {(w - a) * 1e6:+.0f} µs ({w / a:.2f}x) |")
    # The start-up sweep: one readdir of cg-test's own cgroup. Runs from a cgroup with
    # no other entries against one holding 200 sibling cgroups.
    here = os.path.join(next(l.split()[4] for l in open("/proc/self/mountinfo") if " - cgroup2 " in l),
                        open("/proc/self/cgroup").read().split("0::", 1)[1].splitlines()[0].lstrip("/"))
    empty, crowded = os.path.join(here, "sweep-empty"), os.path.join(here, "sweep-crowded")
    made = []
    try:
        for d in (empty, crowded):
            os.mkdir(d); made.append(d)
        for i in range(200):
            os.mkdir(os.path.join(crowded, f"other-{i}")); made.append(os.path.join(crowded, f"other-{i}"))
        # A small shell enters the cgroup and execs cg-test (the same for both rows).
        enter = lambda d: ["/bin/sh", "-c", f'echo $$ > {d}/cgroup.procs && exec "$@"', "sh", cg, "-q", "--", "/bin/true"]
        res = interleave([("empty", enter(empty)), ("crowded", enter(crowded))], runs)
        a, b = med(res["empty"][0]), med(res["crowded"][0])
        print(f"\n| start-up sweep: `cg-test -q -- /bin/true` in a cgroup with | median |")
        print("|---|---|")
        print(f"| no other entries | {ms(a)} |")
        print(f"| 200 other cgroups | {ms(b)} ({(b - a) * 1e6:+.0f} µs, {b / a:.2f}x) |")
    finally:
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError:
                pass

# ---------------------------------------------------------------- pgroup at host scale
if "pgroup" in only:
    n = max(50, runs // 2)
    cmds = [("GNU timeout 60", ["/usr/bin/timeout", "60", "/bin/true"]),
            ("cgroup", [cg, "-q", "--isolation", "cgroup", "--", "/bin/true"]),
            ("pgroup", [cg, "-q", "--isolation", "pgroup", "--", "/bin/true"]),
            ("pgroup, no subreaper (the table sweep)", [cg, "-q", "--isolation", "pgroup", "--compat", "no-subreaper", "--", "/bin/true"])]
    quiet = interleave(cmds, n)
    # 2,000 unrelated processes: sleepers in their own session, bounded life, marked.
    crowd = subprocess.Popen(["/bin/sh", "-c", f'for i in $(seq 2000); do sleep 120 & done; wait', marker],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        while int(subprocess.run(["pgrep", "-c", "-s", str(crowd.pid)], capture_output=True, text=True).stdout or 0) < 2000:
            time.sleep(0.2)
        busy = interleave(cmds, n)
    finally:
        os.killpg(crowd.pid, signal.SIGKILL)
        crowd.wait()
    print(f"\n## pgroup at host scale: `X -- /bin/true`, {n} runs each, interleaved\n")
    print("| command | quiet host | / timeout | 2,000 unrelated processes | / timeout | busy / quiet |")
    print("|---|---|---|---|---|---|")
    bq, bb = med(quiet[cmds[0][0]][0]), med(busy[cmds[0][0]][0])
    for label, _ in cmds:
        q, b = med(quiet[label][0]), med(busy[label][0])
        print(f"| {label} | {ms(q)} | {q / bq:.2f}x | {ms(b)} | {b / bb:.2f}x | {b / q:.2f}x |")

# ---------------------------------------------------------------- teardown
def tree(n):
    """sh ignoring TERM and ceil(n / 200) trees of fixture sleepers (each a parent and
    its children, spread over sessions and groups; all inherit the ignored TERM):
    n + 1 processes."""
    k = -(-n // 200)
    return ["/bin/sh", "-c", f'trap "" TERM; for i in $(seq {k}); do {fx} --marker {marker} --life 55 sleepers {n // k - 1} & done; wait']

def phases(stderr, prefix):
    for line in stderr.splitlines():
        if line.startswith(prefix):
            return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", line) if k != "members"}, \
                   int(re.search(r"members=(\d+)", line).group(1)) if "members=" in line else None
    return {}, None

def timed(argv, deadline, env):
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    return time.perf_counter() - t0 - deadline, p.stderr, p.returncode

if "teardown" in only:
    env = dict(os.environ, CG_TEST_PHASE_TIMES="1", FLOOR_PHASE_TIMES="1")
    order = ["snapshot", "polite", "grace", "freeze", "kill", "reap", "rmdir"]
    print("\n## Teardown: a timeout of N TERM-ignoring processes, against the floor\n")
    print("Deadline to exit (`-t D -k 0`; for `-k 1s` the grace is subtracted), medians of interleaved runs; "
          "the floor is examples/teardown_floor.rs (freeze, `frozen 1`, `cgroup.kill`, `populated 0`, reap, rmdir) "
          "on the same tree. A floor run whose tree was not complete at the deadline is dropped with its round.\n")
    rows, phase_rows = [], []
    for n, deadline, reps in ((100, 1.5, 15), (1000, 3.0, 9), (5000, 9.0, 5)):
        variants = [("cg-test (default: with the snapshot)", lambda g: [cg, "-t", str(deadline), "-k", g, "--"] + tree(n)),
                    ("cg-test -q (no snapshot)", lambda g: [cg, "-q", "-t", str(deadline), "-k", g, "--"] + tree(n))]
        if baseline:
            variants.append(("baseline -q", lambda g: [baseline, "-q", "-t", str(deadline), "-k", g, "--"] + tree(n)))
        times = {v: [] for v, _ in variants}
        times["floor"] = []
        times["cg-test -q, -k 1s (minus the grace)"] = []
        ph = {v: [] for v in ("cg-test (default: with the snapshot)", "cg-test -q (no snapshot)", "floor")}
        for _ in range(reps):
            fl, fe, _ = timed([floor, str(deadline), "--"] + tree(n), deadline, env)
            fp, members = phases(fe, "floor:")
            if members != n + 1:
                print(f"(N={n}: floor saw {members} members at the deadline; round dropped)")
                continue
            times["floor"].append(fl); ph["floor"].append(fp)
            for v, argv in variants:
                t, e, code = timed(argv("0"), deadline, env)
                assert code == 124, (v, code, e[-500:])
                times[v].append(t)
                if v in ph:
                    ph[v].append(phases(e, "cg-test: phases:")[0])
            t, _, code = timed([cg, "-q", "-t", str(deadline), "-k", "1", "--"] + tree(n), deadline + 1.0, env)
            times["cg-test -q, -k 1s (minus the grace)"].append(t)
        if not times["floor"]:
            continue
        f = med(times["floor"])
        for v, ts in times.items():
            rows.append((n, v, med(ts), med(ts) / f, len(ts)))
        for v, ps in ph.items():
            phase_rows.append((n, v, {k: med([p.get(k, 0.0) for p in ps]) for k in order}))
    print("| N | command | deadline (+ grace) to exit | / floor | runs |")
    print("|---|---|---|---|---|")
    for n, v, t, r, k in rows:
        print(f"| {n:,} | {v} | {t * 1000:.1f} ms | {r:.2f}x | {k} |")
    print("\n| N | phases (medians, ms) | " + " | ".join(order) + " |")
    print("|---|---|" + "---|" * len(order))
    for n, v, p in phase_rows:
        print(f"| {n:,} | {v} | " + " | ".join(f"{p[k]:.1f}" for k in order) + " |")

    # 40 sleepers over several sessions, both modes (the teardown of a typical small
    # run); kill-after 0.
    n40 = max(9, runs // 25)
    res = {}
    for _ in range(n40):
        for mode in ("cgroup", "pgroup"):
            t, _, _ = timed([cg, "--isolation", mode, "-t", "0.5", "-k", "0", "--", fx, "--marker", marker, "--life", "30", "sleepers", "40"], 0.5, None)
            res.setdefault(mode, []).append(t)
    print(f"\n| timeout killing 40 sleepers, deadline to exit ({n40} runs) | median |")
    print("|---|---|")
    for mode, ts in res.items():
        print(f"| {mode} | {med(ts) * 1000:.1f} ms |")

# ---------------------------------------------------------------- scale
def leaves():
    out = []
    for dirpath, dirnames, _ in os.walk(next(l.split()[4] for l in open("/proc/self/mountinfo") if " - cgroup2 " in l)):
        out += [d for d in dirnames if d.startswith("cg-test-")]
    return out

if "scale" in only:
    def batch(argv_of, k):
        t0 = time.perf_counter()
        pids = [os.posix_spawn(argv_of(i)[0], argv_of(i), os.environ,
                               file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                             (os.POSIX_SPAWN_DUP2, devnull, 2)]) for i in range(k)]
        codes = {}
        for p in pids:
            _, st = os.waitpid(p, 0)
            codes[p] = os.waitstatus_to_exitcode(st)
        return time.perf_counter() - t0, [codes[p] for p in pids]
    before = set(leaves())
    rounds = max(5, runs // 50)
    res = {"timeout, 1 at a time": [], "cg-test, 1 at a time": [], "timeout, 50 at once": [], "cg-test, 50 at once": []}
    bad = 0
    for _ in range(rounds):
        for label, k, argv_of in (("timeout, 1 at a time", 1, lambda i: ["/usr/bin/timeout", "60", "/bin/sh", "-c", f"exit {i + 1}"]),
                                  ("cg-test, 1 at a time", 1, lambda i: [cg, "-q", "--", "/bin/sh", "-c", f"exit {i + 1}"]),
                                  ("timeout, 50 at once", 50, lambda i: ["/usr/bin/timeout", "60", "/bin/sh", "-c", f"exit {i + 1}"]),
                                  ("cg-test, 50 at once", 50, lambda i: [cg, "-q", "--", "/bin/sh", "-c", f"exit {i + 1}"])):
            t, codes = batch(argv_of, k)
            res[label].append(t / k)
            bad += codes != [i + 1 for i in range(k)]
    left = set(leaves()) - before
    print(f"\n## 50 runs at once ({rounds} rounds, `X -- sh -c 'exit I'`, I = 1..50)\n")
    print("| | wall per run (median) |")
    print("|---|---|")
    for label, ts in res.items():
        print(f"| {label} | {ms(med(ts))} |")
    one = med(res["cg-test, 1 at a time"]) / med(res["timeout, 1 at a time"])
    fifty = med(res["cg-test, 50 at once"]) / med(res["timeout, 50 at once"])
    print(f"| cg-test / timeout, 1 at a time | {one:.2f}x |")
    print(f"| cg-test / timeout, 50 at once | {fifty:.2f}x |")
    print(f"\nEvery run's own exit code: {'yes' if not bad else f'NO ({bad} batches wrong)'}; leaves left: {len(left)}")

# ---------------------------------------------------------------- memory
if "memory" in only:
    def hwm(argv, supervised=True):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Sample once the supervisor is settled: its command (`sleep`) is running
        # (`sleep` alone, supervised=False, is settled once it sleeps).
        until = time.time() + (5 if supervised else 0)
        while time.time() < until:
            kids = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
            if any(open(f"/proc/{k}/comm").read().strip() == "sleep" for k in kids if os.path.exists(f"/proc/{k}/comm")):
                break
            time.sleep(0.01)
        time.sleep(0.2)
        fields = dict(l.split(":", 1) for l in open(f"/proc/{p.pid}/status").read().splitlines() if ":" in l)
        roll = {}
        for line in open(f"/proc/{p.pid}/smaps_rollup"):
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                roll[k] = int(v.split()[0])
        kids = [int(k) for k in open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()]
        p.wait()
        return fields["VmHWM"].strip(), roll, kids
    rows = [("GNU timeout", ["/usr/bin/timeout", "60", "sleep", "1"])]
    for name, argv in (("tini -s", [which("tini"), "-s", "--", "sleep", "1"]),
                       ("tini-static -s", [which("tini-static"), "-s", "--", "sleep", "1"]),
                       ("dumb-init", [which("dumb-init"), "sleep", "1"])):
        if argv[0]:
            rows.append((name, argv))
    for name, b in (("cg-test, release (dynamic glibc)", cg), ("cg-test, static glibc", cg_glibc_static),
                    ("cg-test, static musl", cg_musl), ("cg-test, baseline", baseline)):
        if b and have(b):
            rows.append((name, [b, "-q", "--", "sleep", "1"]))
    print("\n## Memory while supervising `sleep` (VmHWM, and smaps_rollup)\n")
    print("| supervisor | peak RSS (VmHWM) | Rss | Pss | Private |")
    print("|---|---|---|---|---|")
    # For scale: the command itself, GNU sleep, with no supervisor.
    for name, argv, supervised in [("GNU sleep alone (no supervisor)", [which("sleep"), "1"], False)] + \
            [(name, argv, True) for name, argv in rows]:
        h, r, _ = hwm(argv, supervised)
        print(f"| {name} | {h} | {r['Rss']} kB | {r['Pss']} kB | {r['Private_Clean'] + r['Private_Dirty']} kB |")
    print("\nThe watchdog shares cg-test's memory (on x86_64 Linux) until it is needed, so it has no pages of its own to count.")

# ---------------------------------------------------------------- containment
if "containment" in only:
    # What each tool leaves behind, seen from the process table: (a) the command starts
    # a double-forked setsid daemon and exits 0; (b) the command starts such a daemon,
    # then ignores TERM, and a 1 s timeout must end both (only the tools that have one). Every process is the
    # fixture with a marker and a bounded life; survivors are killed by pid afterwards.
    def marked(tag):
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if f"{marker}-{tag}".encode() in open(f"/proc/{d}/cmdline", "rb").read():
                        out.append(int(d))
                except OSError:
                    pass
        return out
    def leftover(tag, argv, timeout=20):
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
        time.sleep(0.5)
        alive = marked(tag)
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        return len(alive)
    fxa = lambda tag, *mode: [fx, "--marker", f"{marker}-{tag}", "--life", "15", *mode]
    daemon = lambda tag: ["/bin/sh", "-c", " ".join(fxa(tag, "daemon", "--exit", "0")) + " >/dev/null 2>&1; sleep 0.3"]
    tools = [("GNU timeout", lambda t: ["/usr/bin/timeout", "-k", "1", "1", *t]),
             ("tini -s", lambda t: [which("tini"), "-s", "--", *t]),
             ("tini -s -g", lambda t: [which("tini"), "-s", "-g", "--", *t]),
             ("dumb-init", lambda t: [which("dumb-init"), *t]),
             ("bwrap --unshare-pid", lambda t: [which("bwrap"), "--dev-bind", "/", "/", "--unshare-pid", *t]),
             ("cg-test (cgroup)", lambda t: [cg, "-q", "-t", "1", "-k", "1", "--", *t]),
             ("cg-test --isolation pgroup", lambda t: [cg, "-q", "--isolation", "pgroup", "-t", "1", "-k", "1", "--", *t])]
    print("\n## What each tool leaves behind (process table, 0.5 s after the tool exited)\n")
    print("| tool | the command exits, leaving a double-forked setsid daemon | a 1 s timeout (+1 s grace) while a TERM-ignoring command and its setsid daemon run |")
    print("|---|---|---|")
    for i, (name, wrap) in enumerate(tools):
        if wrap(["x"])[0] is None:
            continue
        d = leftover(f"d{i}", wrap(daemon(f"d{i}")))
        has_timeout = name.startswith(("GNU", "cg-test"))
        hung = ["/bin/sh", "-c", " ".join(fxa(f"t{i}", "daemon", "--exit", "0")) + " >/dev/null 2>&1; exec " + " ".join(fxa(f"t{i}", "ignore-term"))]
        t = leftover(f"t{i}", wrap(hung)) if has_timeout else None
        print(f"| {name} | {'survives' if d else 'gone'} | {'n/a (no timeout)' if t is None else (f'{t} process(es) survive' if t else 'all killed')} |")

print(f"\n(load average {load()} at the end)")
PY

# Issue 12: what --pid-ns and --harden cost per run (interleaved A/B against the same
# run without the flag): --pid-ns clones an init with new pid and mount namespaces,
# mounts a fresh /proc and forks the command from there; --harden implies --pid-ns,
# seals the init (read-only /sys, /proc/sys, cgroup v1; no cgroup2 mount) and in the
# child makes a cgroup and a mount namespace, mounts cgroup2, binds the leaf's files
# read-only, drops nine capabilities and installs a seccomp filter.
if [[ " $sections " == *" namespaces "* ]]; then
python3 - "$runs" <<'PY'
import statistics, subprocess, sys, time

runs = int(sys.argv[1])
cg = "./target/release/cg-test"

def once(argv):
    t0 = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0

print("\n| `cg-test -- true`, interleaved | median | p90 |")
print("|---|---|---|")
cases = [
    ("cgroup", ["--isolation", "cgroup"]),
    ("cgroup --pid-ns", ["--isolation", "cgroup", "--pid-ns"]),
    ("cgroup --harden", ["--isolation", "cgroup", "--harden"]),
    ("cgroup --pid-ns --harden", ["--isolation", "cgroup", "--pid-ns", "--harden"]),
    ("pgroup", ["--isolation", "pgroup"]),
    ("pgroup --pid-ns", ["--isolation", "pgroup", "--pid-ns"]),
]
times = {name: [] for name, _ in cases}
for _ in range(runs):
    for name, flags in cases:
        times[name].append(once([cg, "-q", *flags, "--", "true"]))
base = {}
for name, _ in cases:
    t = sorted(times[name])
    med, p90 = statistics.median(t), t[max(0, int(len(t) * 0.9) - 1)]
    ref = base.setdefault(name.split()[0], med)
    delta = "" if ref == med else f" ({(med-ref)*1e6:+.0f} µs)"
    print(f"| {name} | {med*1000:.2f} ms{delta} | {p90*1000:.2f} ms |")
PY
fi
