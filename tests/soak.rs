//! The chaos soak (issue 18): hundreds of runs, each hit by a SIGKILL at a random moment
//! from setup through teardown, checked one by one for anything left behind.
//!
//! What is killed: cg-test; its watchdog; both at the same instant; the watchdog and
//! then, 100-400 ms later, cg-test; or the small shell that started cg-test (with and
//! without `--die-with-parent`). When: a random moment from cg-test's first instruction
//! to its exit, biased so that setup (before the command starts) is hit often; runs with
//! `--compat stop-before-kill` are hit exactly between the final freeze and the kill.
//! The command double-forks a setsid'ed daemon that ignores TERM, starts a TERM-ignorer
//! and a session hopper that forks every 5 ms, and either waits (a `-t 0.25s -k 0.25s`
//! timeout: the kill lands before, in the grace or in the final kill) or exits 7 once
//! they are up (the leak teardown: leak wait, grace, kill). Modes: cgroup, cgroup on the
//! old-kernel paths, pgroup (not for "both": `cg-test gc` collects leaves, and a pgroup
//! run has none). Two runs at a time, each in a cgroup of the test's own (each cg-test
//! start collects stale leaves beside its own, which would hide a leaf left behind),
//! beside spinning processes (CG_TEST_SOAK_LOAD, one per CPU by default).
//!
//! After each run: nothing of it alive within 1 s of the kill (of gc's exit where
//! cg-test and its watchdog died together; of cg-test's exit where it lived), found by
//! the run's marker in argv or environment (the exec'd watchdog carries cg-test's
//! environment, not the command's argv); no `cg-test-*` leaf left; the run's exit code
//! where cg-test lived (the watchdog's death or an orphaning changes nothing;
//! `--die-with-parent` turns the parent's death into 143, or is too late to matter
//! once the teardown began); and two canaries untouched in the run's own cgroup: a
//! process in a cgroup of ours, and a process in a directory named like the leaf of a
//! live run (`cg-test-<its pid>-<its start>-c0ffee00`). Survivors are killed by pid
//! and fail the soak. Every run's victims carry a late marker armed after the run's
//! checks; none may appear. Control runs (`--compat no-watchdog`, cg-test SIGKILLed)
//! must show survivors, or the soak's own detection is broken.
//!
//! A test target of its own (`cargo test --test soak -- --nocapture`; `test = false` in
//! Cargo.toml, so plain `cargo test` skips it; ci/test.sh runs it as a step). Knobs:
//! CG_TEST_SOAK_RUNS (520), CG_TEST_SOAK_SEED (printed; with CG_TEST_SOAK_ONLY=4,17 only
//! those runs are replayed, each with the same choices), CG_TEST_SOAK_LOAD (spinners),
//! CG_TEST_SOAK_XFAIL (comma-separated kinds or failure categories, e.g.
//! `watchdog-then-cg-test,leaf-before-watchdog`, counted and printed but not failing the
//! soak), CG_TEST_SOAK_REPORT (a file the figures are also written to).
//! RELIABILITY.md keeps the figures.

#[path = "util/mod.rs"]
mod util;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::{cgroup, fixture, procs, Fixture, Guard, TestCgroup, CG_TEST, FIXTURE};

/// Everything of a run must be gone this soon after the kill (the bound).
const GONE_WITHIN: Duration = Duration::from_secs(1);
/// How long a run that missed [`GONE_WITHIN`] is still watched, for the record.
const WATCH_LATE: Duration = Duration::from_secs(1);
/// The leaf must be gone this soon after the kill (it goes after the processes).
const LEAF_GONE_WITHIN: Duration = Duration::from_secs(2);
/// The timeout scenario's `-t` and `-k`, and the leak scenario's `--leak-timeout`.
const TIMEOUT_SECS: f64 = 0.25;
const GRACE_SECS: f64 = 0.25;
const LEAK_SECS: f64 = 0.15;
/// Kill moments are drawn from [0, this] after cg-test started (a run ends by itself
/// after about 0.5 s; a later moment is a kill after the exit, counted as such).
const LATEST_KILL: Duration = Duration::from_millis(540);
/// The environment variable that carries a run's marker into every process of the run
/// (cg-test, its watchdog before and after its exec, the command and its descendants).
const MARK_VAR: &str = "CG_TEST_SOAK_MARK";
/// The exit code of the leak scenario's command.
const LEAK_EXIT: i32 = 7;

// ---------------------------------------------------------------------------------
// The plan of one run.

/// What is SIGKILLed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    CgTest,
    Watchdog,
    Both,
    WatchdogThenCgTest,
    Parent,
    ParentDieWith,
    /// `--compat no-watchdog`, cg-test SIGKILLed: the attack without the defence.
    Control,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::CgTest,
        Kind::Watchdog,
        Kind::Both,
        Kind::WatchdogThenCgTest,
        Kind::Parent,
        Kind::ParentDieWith,
        Kind::Control,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::CgTest => "cg-test",
            Kind::Watchdog => "watchdog",
            Kind::Both => "both",
            Kind::WatchdogThenCgTest => "watchdog-then-cg-test",
            Kind::Parent => "parent",
            Kind::ParentDieWith => "parent-die-with-parent",
            Kind::Control => "control-no-watchdog",
        }
    }

    fn needs_watchdog(self) -> bool {
        matches!(self, Kind::Watchdog | Kind::Both | Kind::WatchdogThenCgTest)
    }

    fn via_parent(self) -> bool {
        matches!(self, Kind::Parent | Kind::ParentDieWith)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// `-t 0.25s -k 0.25s`, the command waits: exit 124.
    Timeout,
    /// The command exits 7 once its daemons are up; `--leak-timeout 0.15s -k 0.25s`.
    Leak,
}

/// Where cg-test was when the kill landed (from its `-v` lines read before the kill).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Phase {
    Setup,
    WatchdogUp,
    Running,
    TimeoutGrace,
    TimeoutKill,
    LeakWait,
    LeakGrace,
    LeakKill,
    Release,
    AfterExit,
}

impl Phase {
    const ALL: [Phase; 10] = [
        Phase::Setup,
        Phase::WatchdogUp,
        Phase::Running,
        Phase::TimeoutGrace,
        Phase::TimeoutKill,
        Phase::LeakWait,
        Phase::LeakGrace,
        Phase::LeakKill,
        Phase::Release,
        Phase::AfterExit,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::WatchdogUp => "watchdog up, command not yet",
            Phase::Running => "running",
            Phase::TimeoutGrace => "timeout grace",
            Phase::TimeoutKill => "timeout final kill",
            Phase::LeakWait => "leak wait",
            Phase::LeakGrace => "leak grace",
            Phase::LeakKill => "leak final kill",
            Phase::Release => "release",
            Phase::AfterExit => "after exit",
        }
    }

    /// The phase a `-v` line of cg-test starts, given the phase before it.
    fn after_line(self, line: &str) -> Phase {
        let Some(l) = line.strip_prefix("cg-test: ") else {
            return self;
        };
        if l.starts_with("watchdog pid ") && l.ends_with(" started") {
            Phase::WatchdogUp
        } else if l.starts_with("spawned pid ") {
            Phase::Running
        } else if l.starts_with("timed out after ") {
            Phase::TimeoutGrace
        } else if l.starts_with("the command exited") {
            Phase::LeakWait
        } else if l.contains("outlived the command in") {
            Phase::LeakGrace
        } else if l.starts_with("killing ") {
            match self {
                Phase::LeakWait | Phase::LeakGrace => Phase::LeakKill,
                _ => Phase::TimeoutKill,
            }
        } else if l.starts_with("removed ") || l.starts_with("done: ") {
            Phase::Release
        } else {
            self
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Plan {
    n: usize,
    kind: Kind,
    mode: util::Mode,
    scenario: Scenario,
    /// `--compat stop-before-kill`: the kill lands between the final freeze and the kill.
    stop_before_kill: bool,
    /// The kill moment, after cg-test (or its parent) started.
    delay: Duration,
    /// watchdog-then-cg-test: from the watchdog's kill to cg-test's.
    later: Duration,
}

/// A small deterministic PRNG (xorshift64*, seeded through splitmix64): the soak's
/// choices replay from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn weighted<T: Copy>(&mut self, choices: &[(T, u64)]) -> T {
        let total: u64 = choices.iter().map(|c| c.1).sum();
        let mut at = self.below(total);
        for &(v, w) in choices {
            if at < w {
                return v;
            }
            at -= w;
        }
        choices[choices.len() - 1].0
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_micros(self.below(max * 1000 + 1))
    }
}

fn plan(n: usize, rng: &mut Rng) -> Plan {
    use util::Mode;
    // One control in 50 runs (at least the second run of each soak is one).
    let kind = if n % 50 == 1 {
        Kind::Control
    } else {
        rng.weighted(&[
            (Kind::CgTest, 24),
            (Kind::Watchdog, 17),
            (Kind::Both, 15),
            (Kind::WatchdogThenCgTest, 10),
            (Kind::Parent, 14),
            (Kind::ParentDieWith, 20),
        ])
    };
    let mode = match kind {
        Kind::Both | Kind::Control => rng.weighted(&[(Mode::Cgroup, 70), (Mode::CgroupCompat, 30)]),
        _ => rng.weighted(&[
            (Mode::Cgroup, 50),
            (Mode::CgroupCompat, 20),
            (Mode::Pgroup, 30),
        ]),
    };
    let scenario = if kind == Kind::Control || rng.chance(55) {
        Scenario::Timeout
    } else {
        Scenario::Leak
    };
    // Not for a watchdog killed before a pgroup cg-test that is stopped: to both that is
    // one instant, which in the pgroup mode leaves the rest of the run alive by design
    // (no leaf for gc; docs/DESIGN.md's table), so there is nothing to check.
    let stop_before_kill = kind != Kind::Control
        && !(kind == Kind::WatchdogThenCgTest && mode == Mode::Pgroup)
        && rng.chance(12);
    // A fifth of the moments in cg-test's first 5 ms: its setup, before the command.
    let delay = if rng.chance(20) {
        rng.millis(5)
    } else {
        rng.millis(LATEST_KILL.as_millis() as u64)
    };
    Plan {
        n,
        kind,
        mode,
        scenario,
        stop_before_kill,
        delay,
        later: Duration::from_millis(100) + rng.millis(300),
    }
}

// ---------------------------------------------------------------------------------
// Processes: reading /proc, pidfds, stderr with the time each line was read.

/// Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot.
fn start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The children of a single-threaded process.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The cgroup v2 directory a process is in.
fn cgroup_dir_of(pid: i32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    Some(cgroup::dir_of(&cgroup::unified_path(&text)?))
}

/// Live processes of one run: the marker in argv (the fixtures, the shells, cg-test and
/// its watchdog before its exec) or in the environment (all of them, and the exec'd
/// watchdog, whose argv names the run only with `--report`).
fn run_pids(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let env_entry = format!("{MARK_VAR}={marker}\0");
    procs::all_pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|&p| {
            procs::cmdline(p).is_some_and(|c| c.contains(marker))
                || std::fs::read(format!("/proc/{p}/environ"))
                    .is_ok_and(|e| contains(&e, env_entry.as_bytes()))
        })
        .filter(|&p| procs::is_alive(p))
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn describe(pids: &[i32]) -> String {
    pids.iter()
        .take(8)
        .map(|&p| format!("{p}: {}", procs::cmdline(p).unwrap_or_default().trim_end()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A pidfd: signals reach the process it was opened for, never a reused pid.
struct PidFd(OwnedFd);

impl PidFd {
    fn open(pid: i32) -> Option<PidFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: a descriptor we own from here on.
        (fd >= 0).then(|| PidFd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    fn signal(&self, sig: i32) {
        // SAFETY: pidfd_send_signal on our descriptor, no siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }

    /// Has the process exited (zombie or reaped)? Waits at most `ms`.
    fn exited_within(&self, ms: i32) -> bool {
        let mut p = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one descriptor we own.
        unsafe { libc::poll(&mut p, 1, ms) > 0 }
    }
}

/// A process's stderr, line by line, each with the moment it was read.
#[derive(Clone)]
struct Lines {
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    eof: Arc<AtomicBool>,
}

impl Lines {
    fn capture(r: impl Read + Send + 'static) -> Lines {
        let lines = Lines {
            lines: Arc::default(),
            eof: Arc::default(),
        };
        let l = lines.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf).trim_end().to_string();
                        l.lines.lock().unwrap().push((Instant::now(), text));
                    }
                }
            }
            l.eof.store(true, Ordering::SeqCst);
        });
        lines
    }

    fn all(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// The phase cg-test had reached by `at`.
    fn phase_at(&self, at: Instant) -> Phase {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .take_while(|(t, _)| *t <= at)
            .fold(Phase::Setup, |p, (_, l)| p.after_line(l))
    }

    /// The phase cg-test's own lines (not its watchdog's) reach.
    fn phase_of_own_lines(&self) -> Phase {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| !l.starts_with("cg-test: watchdog: "))
            .fold(Phase::Setup, |p, (_, l)| p.after_line(l))
    }

    /// Wait (bounded) until a line satisfies `f` or the pipe is closed.
    fn wait_for(&self, limit: Duration, f: impl Fn(&str) -> bool) -> bool {
        let until = Instant::now() + limit;
        loop {
            if self.lines.lock().unwrap().iter().any(|(_, l)| f(l)) {
                return true;
            }
            if self.eof.load(Ordering::SeqCst) || Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A command whose process first moves itself into `cg` (writing 0 to cgroup.procs
/// moves the writer), with the run's marker in its environment and stderr captured.
fn command_in(cg: &Path, program: &str, args: &[String], marker: &str) -> Command {
    let procs = std::ffi::CString::new(cg.join("cgroup.procs").display().to_string()).unwrap();
    let mut c = Command::new(program);
    c.args(args)
        .env(MARK_VAR, marker)
        .env_remove("GITHUB_ACTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: open, write and close are async-signal-safe; the path was made before fork.
    unsafe {
        c.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        })
    };
    c
}

/// Wait (bounded) for a child of ours to exit; SIGKILL it if it will not.
fn wait_child(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------
// Canaries and load.

/// A bounded process of ours in a cgroup of ours that no run may touch.
struct Canary {
    child: Child,
    pid: i32,
    start: u64,
    dir: PathBuf,
    born: Instant,
}

impl Canary {
    /// Start the canary, then move it into the directory `dir_for(pid, start)` names
    /// (made here).
    fn start(marker: &str, dir_for: impl FnOnce(i32, u64) -> PathBuf) -> Canary {
        let child = Command::new(FIXTURE)
            .args(["--marker", marker, "--life", "60", "sleep"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting a canary");
        let pid = child.id() as i32;
        let start = start_time(pid).expect("the canary's start time");
        let dir = dir_for(pid, start);
        std::fs::create_dir(&dir).expect("creating the canary's cgroup");
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).expect("moving the canary");
        Canary {
            child,
            pid,
            start,
            dir,
            born: Instant::now(),
        }
    }

    /// Alive (the same process), not stopped, in its cgroup, the cgroup not frozen.
    fn check(&self) -> Result<(), String> {
        let what = format!("canary {} in {}", self.pid, self.dir.display());
        if start_time(self.pid) != Some(self.start) {
            return Err(format!("{what} is gone"));
        }
        match procs::stat(self.pid).map(|s| s.state) {
            Some('T' | 't' | 'Z' | 'X') | None => return Err(format!("{what} is not running")),
            _ => {}
        }
        let members = std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map_err(|e| format!("{what}: its cgroup.procs: {e}"))?;
        if !members.lines().any(|l| l.trim() == self.pid.to_string()) {
            return Err(format!("{what} was moved out of its cgroup"));
        }
        let events = std::fs::read_to_string(self.dir.join("cgroup.events"))
            .map_err(|e| format!("{what}: its cgroup.events: {e}"))?;
        if !events.lines().any(|l| l == "frozen 0") {
            return Err(format!("{what}: its cgroup is frozen"));
        }
        Ok(())
    }

    fn stop(mut self) {
        procs::kill(self.pid, libc::SIGKILL);
        let _ = self.child.wait();
        let until = Instant::now() + Duration::from_secs(2);
        while std::fs::remove_dir(&self.dir).is_err() && self.dir.exists() {
            assert!(
                Instant::now() < until,
                "removing the canary's cgroup {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The two canaries of a worker: a plain cgroup of ours, and one named like the leaf of
/// a live run (its "owner" is the canary itself), so gc and every cg-test start-up
/// sweep must judge it by its owner and leave it.
struct Canaries {
    marker: String,
    parent: PathBuf,
    plain: Option<Canary>,
    lookalike: Option<Canary>,
}

impl Canaries {
    fn new(marker: String, parent: &Path) -> Canaries {
        let mut c = Canaries {
            marker,
            parent: parent.to_path_buf(),
            plain: None,
            lookalike: None,
        };
        c.renew();
        c
    }

    /// Replace canaries that are half-way through their bounded life.
    fn renew(&mut self) {
        let old = |c: &Option<Canary>| c.as_ref().is_none_or(|c| c.born.elapsed().as_secs() >= 30);
        if old(&self.plain) {
            let parent = self.parent.clone();
            let new = Canary::start(&self.marker, |pid, _| {
                parent.join(format!("cgt-canary-{pid}"))
            });
            if let Some(c) = self.plain.replace(new) {
                c.stop();
            }
        }
        if old(&self.lookalike) {
            let parent = self.parent.clone();
            let new = Canary::start(&self.marker, |pid, start| {
                parent.join(format!("cg-test-{pid}-{start}-c0ffee00"))
            });
            if let Some(c) = self.lookalike.replace(new) {
                c.stop();
            }
        }
    }

    fn check(&self) -> Vec<String> {
        [&self.plain, &self.lookalike]
            .into_iter()
            .flatten()
            .filter_map(|c| c.check().err())
            .collect()
    }

    fn is_canary(&self, dir: &Path) -> bool {
        [&self.plain, &self.lookalike]
            .into_iter()
            .flatten()
            .any(|c| c.dir == dir)
    }

    fn stop(&mut self) {
        for c in [self.plain.take(), self.lookalike.take()]
            .into_iter()
            .flatten()
        {
            c.stop();
        }
    }
}

/// Spinning processes (bounded life, renewed) beside the runs.
struct Load {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Load {
    fn start(n: usize, marker: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut spinners: Vec<Option<Child>> = (0..n).map(|_| None).collect();
            while !s.load(Ordering::SeqCst) {
                for slot in spinners.iter_mut() {
                    let done = slot
                        .as_mut()
                        .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
                    if done {
                        *slot = Command::new(FIXTURE)
                            .args(["--marker", &marker, "--life", "20", "spin"])
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .spawn()
                            .ok();
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            for mut c in spinners.into_iter().flatten() {
                let _ = c.kill();
                let _ = c.wait();
            }
        });
        Load { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

// ---------------------------------------------------------------------------------
// One run.

/// What one run saw.
#[derive(Debug)]
struct Record {
    plan: Plan,
    phase: Phase,
    /// Victims that had announced themselves and were alive just before the kill.
    alive_before: usize,
    /// The watchdog was found as cg-test's child and checked (ppid, outside the leaf).
    watchdog_checked: bool,
    /// cg-test lived through the kill (its exit code was checked).
    exit_checked: bool,
    /// From the kill (gc's exit, cg-test's exit) to nothing of the run alive.
    to_empty: Option<Duration>,
    /// Timeout runs where cg-test lived: from the deadline plus the grace to its exit.
    lag: Option<Duration>,
    /// "both": processes of the run alive after the kill, before gc.
    left_for_gc: Option<usize>,
    survivors: usize,
    leaves: usize,
    failures: Vec<String>,
}

impl Record {
    /// A failure, tagged with its category (CG_TEST_SOAK_XFAIL can name one).
    fn fail(&mut self, category: &str, what: impl std::fmt::Display) {
        self.failures.push(format!("[{category}] {what}"));
    }

    fn categories(&self) -> impl Iterator<Item = &str> {
        self.failures
            .iter()
            .filter_map(|f| f.strip_prefix('[')?.split_once(']').map(|(c, _)| c))
    }

    /// Failed, unless its kind or every category of its failures is in `xfail`.
    fn fails_beyond(&self, xfail: &[String]) -> bool {
        let listed = |w: &str| xfail.iter().any(|x| x == w);
        !self.failures.is_empty()
            && !listed(self.plan.kind.name())
            && !self.categories().all(listed)
    }
}

struct Worker<'a> {
    g: &'a Guard,
    soak_marker: &'a str,
    cg: TestCgroup,
    canaries: Canaries,
}

/// The command of a run: a TERM-ignoring double-forked setsid daemon (two processes
/// announce), a TERM-ignorer (announces), a session hopper; then wait (timeout) or exit
/// 7 once the three announced (leak).
fn command_of(fx: &Fixture, ready: &Path, scenario: Scenario) -> Vec<String> {
    let mut hopper = fx.clone();
    hopper.ready = None;
    let start = format!(
        "(trap '' TERM; exec {}) & {} & {} &",
        fx.sh(&["daemon"]),
        fx.sh(&["ignore-term"]),
        hopper.sh(&["hopper"])
    );
    let end = match scenario {
        Scenario::Timeout => "wait".to_string(),
        Scenario::Leak => format!("{}; exit {LEAK_EXIT}", fixture::sh_wait_ready(ready, 3)),
    };
    vec!["sh".into(), "-c".into(), format!("{start} {end}")]
}

fn cg_test_args(plan: &Plan, command: Vec<String>) -> Vec<String> {
    let mut args: Vec<String> = plan.mode.args().iter().map(|s| s.to_string()).collect();
    let s = |v: f64| format!("{v}s");
    match plan.scenario {
        Scenario::Timeout => args.extend(["-t".into(), s(TIMEOUT_SECS)]),
        Scenario::Leak => args.extend(["--leak-timeout".into(), s(LEAK_SECS)]),
    }
    args.extend(["-k".into(), s(GRACE_SECS)]);
    if plan.stop_before_kill {
        args.extend(["--compat".into(), "stop-before-kill".into()]);
    }
    if plan.kind == Kind::Control {
        args.extend(["--compat".into(), "no-watchdog".into()]);
    }
    if plan.kind == Kind::ParentDieWith {
        args.push("--die-with-parent".into());
    }
    args.push("--".into());
    args.extend(command);
    args
}

/// The exit code a run whose cg-test lived must have, from the order of its own lines.
fn expected_code(scenario: Scenario, lines: &[String]) -> i32 {
    let normal = match scenario {
        Scenario::Timeout => 124,
        Scenario::Leak => LEAK_EXIT,
    };
    let at = |f: &dyn Fn(&str) -> bool| lines.iter().position(|l| f(l));
    if at(&|l| l.starts_with("cg-test: --die-with-parent: ")).is_some() {
        return 125;
    }
    let Some(died) =
        at(&|l| l.starts_with("cg-test: cg-test's parent (pid ") && l.contains(" died;"))
    else {
        return normal;
    };
    // The parent's death is a teardown signal until the run's own teardown began: the
    // timeout's note, or the leak table (before it, the leak wait takes the signal).
    let began = match scenario {
        Scenario::Timeout => at(&|l| l.starts_with("cg-test: timed out after ")),
        Scenario::Leak => at(&|l| l.contains("outlived the command in")),
    };
    if began.is_none_or(|b| died < b) {
        143
    } else {
        normal
    }
}

/// The `exit=` of the summary line, or 125 for a `--die-with-parent` refusal.
fn code_from_lines(lines: &[String]) -> Option<i32> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("cg-test: done: "))
        .and_then(|s| {
            s.split_whitespace()
                .find_map(|kv| kv.strip_prefix("exit="))
                .and_then(|c| c.parse().ok())
        })
        .or_else(|| {
            lines
                .iter()
                .any(|l| l.starts_with("cg-test: --die-with-parent: "))
                .then_some(125)
        })
}

impl Worker<'_> {
    fn leaves(&self) -> Vec<PathBuf> {
        self.cg
            .leaves()
            .into_iter()
            .filter(|l| !self.canaries.is_canary(l))
            .collect()
    }

    /// The watchdog: cg-test's child that is its own session's leader and shares
    /// cg-test's command line (it starts in cg-test's memory). The command is neither.
    fn find_watchdog(&self, cg: i32) -> Option<i32> {
        let cmd = std::fs::read(format!("/proc/{cg}/cmdline")).ok()?;
        children(cg).into_iter().find(|&c| {
            procs::stat(c).is_some_and(|s| s.ppid == cg && s.session == c)
                && std::fs::read(format!("/proc/{c}/cmdline")).is_ok_and(|m| m == cmd)
        })
    }

    /// What makes the process `wd` the watchdog of cg-test `cg`: its parent, and its
    /// cgroup (cg-test's own, never the run's leaf).
    fn check_watchdog(&self, wd: i32, cg: i32) -> Result<(), String> {
        let ppid = procs::stat(wd).map(|s| s.ppid);
        if ppid != Some(cg) {
            return Err(format!("watchdog {wd}: ppid {ppid:?}, not cg-test {cg}"));
        }
        let dir = cgroup_dir_of(wd).ok_or(format!("watchdog {wd}: no cgroup"))?;
        if dir != self.cg.path {
            return Err(format!(
                "watchdog {wd} is in {}, not cg-test's own cgroup",
                dir.display()
            ));
        }
        for leaf in self.leaves() {
            let members = std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap_or_default();
            if members.lines().any(|l| l.trim() == wd.to_string()) {
                return Err(format!(
                    "watchdog {wd} is in the run's leaf {}",
                    leaf.display()
                ));
            }
        }
        Ok(())
    }

    /// Wait until nothing of the run is alive (three empty scans in a row: one scan can
    /// miss the hopper mid-fork). Ok(time from `since`), or Err(the survivors) after
    /// [`GONE_WITHIN`] + [`WATCH_LATE`].
    fn wait_empty(&self, marker: &str, since: Instant) -> Result<Duration, Vec<i32>> {
        loop {
            let at = Instant::now();
            if (0..3).all(|_| run_pids(marker).is_empty()) {
                return Ok(at.saturating_duration_since(since));
            }
            if since.elapsed() > GONE_WITHIN + WATCH_LATE {
                return Err(run_pids(marker));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The checks after a run: nothing alive within 1 s of `since`, no leaf, canaries
    /// untouched; survivors killed by pid, leaves removed.
    fn settle(&self, rec: &mut Record, marker: &str, since: Instant, lines: &Lines) {
        match self.wait_empty(marker, since) {
            Ok(t) => {
                rec.to_empty = Some(t);
                if t > GONE_WITHIN {
                    rec.fail(
                        "slow",
                        format!("the run took {t:?} to empty (more than {GONE_WITHIN:?})"),
                    );
                }
            }
            Err(left) => {
                rec.survivors = left.len();
                rec.fail(
                    "survivors",
                    format!(
                        "{} process(es) of the run alive {:?} after the kill: {}",
                        left.len(),
                        GONE_WITHIN + WATCH_LATE,
                        describe(&left)
                    ),
                );
            }
        }
        let until = since + LEAF_GONE_WITHIN;
        while !self.leaves().is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let leaves = self.leaves();
        if !leaves.is_empty() {
            let members: Vec<i32> = leaves.iter().flat_map(|l| cgroup::member_pids(l)).collect();
            let own = lines.all();
            let said = |what: &str| own.iter().any(|l| l.starts_with(what));
            // cg-test made the leaf (its `created` line comes after the mkdir) and died
            // before it started its watchdog: nothing was there to remove the empty leaf.
            let category = if members.is_empty() && !said("cg-test: watchdog pid ") {
                "leaf-before-watchdog"
            } else {
                "leaf-left"
            };
            rec.fail(
                category,
                format!(
                    "leaf left {LEAF_GONE_WITHIN:?} after the kill: {leaves:?} (members \
                     {members:?}); cg-test's last line: {:?}",
                    own.iter().rfind(|l| {
                        l.starts_with("cg-test: ") && !l.starts_with("cg-test: watchdog")
                    })
                ),
            );
        }
        rec.leaves = leaves.len();
        for e in self.canaries.check() {
            rec.fail("canary", e);
        }
    }

    /// Kill by pid whatever of the run is still alive (until three scans in a row find
    /// nothing: the hopper's next generation may be mid-fork), and remove its leaves.
    fn clean_up(&self, marker: &str) {
        let until = Instant::now() + Duration::from_secs(10);
        let mut empty_scans = 0;
        while empty_scans < 3 && Instant::now() < until {
            let left = run_pids(marker);
            if left.is_empty() {
                empty_scans += 1;
            } else {
                empty_scans = 0;
            }
            for p in left {
                procs::kill(p, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for leaf in self.leaves() {
            cgroup::kill_and_remove(&leaf);
        }
    }

    fn run(&mut self, plan: Plan) -> Record {
        let marker = format!("{}r{}_", self.soak_marker, plan.n);
        let mut rec = Record {
            plan,
            phase: Phase::Setup,
            alive_before: 0,
            watchdog_checked: false,
            exit_checked: false,
            to_empty: None,
            lag: None,
            left_for_gc: None,
            survivors: 0,
            leaves: 0,
            failures: Vec::new(),
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run_inner(&plan, &marker, &mut rec)
        }));
        if let Err(p) = outcome {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            rec.fail("panic", format!("the run's test code panicked: {msg}"));
        }
        if !run_pids(&marker).is_empty() && rec.survivors == 0 {
            rec.survivors = run_pids(&marker).len();
            if plan.kind != Kind::Control {
                rec.fail("survivors", describe(&run_pids(&marker)));
            }
        }
        self.clean_up(&marker);
        rec
    }

    fn run_inner(&mut self, plan: &Plan, marker: &str, rec: &mut Record) {
        let dir = self.g.subdir(&format!("r{}", plan.n));
        let ready = dir.join("ready");
        std::fs::create_dir(&ready).unwrap();
        let (late, trigger) = (dir.join("late"), dir.join("trigger"));
        let fx = Fixture::new(marker).ready(&ready).late_on(&late, &trigger);
        let args = cg_test_args(plan, command_of(&fx, &ready, plan.scenario));

        // Start cg-test, or the parent shell that starts it.
        let (mut top, t0) = if plan.kind.via_parent() {
            let script = std::iter::once(CG_TEST.to_string())
                .chain(args)
                .map(|a| fixture::sh_quote(&a))
                .collect::<Vec<_>>()
                .join(" ");
            let sh_args = vec!["-c".into(), format!("{script}; true"), marker.to_string()];
            let c = command_in(&self.cg.path, "sh", &sh_args, marker).spawn();
            (c.expect("starting the parent shell"), Instant::now())
        } else {
            let c = command_in(&self.cg.path, CG_TEST, &args, marker).spawn();
            (c.expect("starting cg-test"), Instant::now())
        };
        let lines = Lines::capture(top.stderr.take().unwrap());
        let cg = if plan.kind.via_parent() {
            let sh = top.id() as i32;
            let until = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(&c) = children(sh).first() {
                    break c;
                }
                assert!(
                    Instant::now() < until,
                    "the parent shell started no cg-test"
                );
                std::thread::sleep(Duration::from_micros(200));
            }
        } else {
            top.id() as i32
        };
        let cg_start = start_time(cg);
        let cg_pidfd = PidFd::open(cg);
        let cg_alive =
            || start_time(cg).is_some_and(|s| Some(s) == cg_start) && procs::is_alive(cg);

        // Reach the moment: the watchdog found (for kills that need it), cg-test stopped
        // before its kill (stop-before-kill), or the random delay.
        let mut wd = None;
        if plan.kind.needs_watchdog() {
            let until = Instant::now() + Duration::from_secs(20);
            while wd.is_none() && cg_alive() && Instant::now() < until {
                wd = self
                    .find_watchdog(cg)
                    .and_then(|w| Some((w, PidFd::open(w)?)));
                if wd.is_none() {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            match wd.as_ref().map(|(w, _)| self.check_watchdog(*w, cg)) {
                Some(Ok(())) => rec.watchdog_checked = true,
                Some(Err(e)) => rec.fail("watchdog-check", e),
                None if cg_alive() => rec.fail("watchdog-check", "no watchdog found"),
                None => {}
            }
        }
        if plan.stop_before_kill {
            let until = Instant::now() + Duration::from_secs(20);
            while cg_alive() && procs::stat(cg).is_none_or(|s| s.state != 'T') {
                assert!(
                    Instant::now() < until,
                    "cg-test never stopped before its kill"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            // It said so before it stopped; the line tells the phase.
            lines.wait_for(Duration::from_secs(2), |l| {
                l.starts_with("cg-test: killing ")
            });
        } else if plan.kind == Kind::Control {
            util::wait_ready(&ready, 3);
        } else {
            let at = t0 + plan.delay;
            if let Some(d) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }

        // Proof of life, then the kill.
        let announced = util::ready_pids(&ready);
        rec.alive_before = announced
            .iter()
            .filter(|&&p| {
                procs::is_alive(p) && procs::cmdline(p).is_some_and(|c| c.contains(marker))
            })
            .count();
        let exited_before = !cg_alive();
        let kill_cg = || match &cg_pidfd {
            Some(fd) => fd.signal(libc::SIGKILL),
            None => procs::kill(cg, libc::SIGKILL),
        };
        let killed_at;
        match plan.kind {
            Kind::CgTest | Kind::Control => {
                kill_cg();
                killed_at = Instant::now();
            }
            Kind::Watchdog => {
                if let Some((_, fd)) = &wd {
                    fd.signal(libc::SIGKILL);
                }
                killed_at = Instant::now();
            }
            Kind::Both => {
                // cg-test stopped first, so that neither can act on the other's death:
                // to both, the two deaths are one instant.
                if let Some(fd) = &cg_pidfd {
                    fd.signal(libc::SIGSTOP);
                }
                if let Some((_, fd)) = &wd {
                    fd.signal(libc::SIGKILL);
                }
                kill_cg();
                killed_at = Instant::now();
            }
            Kind::WatchdogThenCgTest => {
                if let Some((_, fd)) = &wd {
                    fd.signal(libc::SIGKILL);
                }
                rec.phase = lines.phase_at(Instant::now());
                std::thread::sleep(plan.later);
                kill_cg();
                killed_at = Instant::now();
            }
            Kind::Parent | Kind::ParentDieWith => {
                let _ = top.kill();
                killed_at = Instant::now();
            }
        }
        if plan.kind != Kind::WatchdogThenCgTest {
            rec.phase = lines.phase_at(killed_at);
        }
        // A watchdog found in /proc may not have been announced on stderr yet.
        if wd.is_some() && rec.phase == Phase::Setup {
            rec.phase = Phase::WatchdogUp;
        }
        // cg-test lives on after these: a stopped one is continued.
        if plan.stop_before_kill
            && matches!(
                plan.kind,
                Kind::Watchdog | Kind::Parent | Kind::ParentDieWith
            )
        {
            if let Some(fd) = &cg_pidfd {
                fd.signal(libc::SIGCONT);
            }
        }

        // Wait for cg-test; where it lived (its kill was not for it, or came after it
        // exited), its exit code.
        let exited_at;
        let (code, cg_lived) = if plan.kind.via_parent() {
            let _ = top.wait();
            let until = Instant::now() + util::RUN_LIMIT;
            while !cg_pidfd
                .as_ref()
                .map_or(!cg_alive(), |fd| fd.exited_within(10))
            {
                assert!(
                    Instant::now() < until,
                    "cg-test did not exit after its parent died"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            exited_at = Instant::now();
            lines.wait_for(Duration::from_secs(5), |l| {
                l.starts_with("cg-test: done: ") || l.starts_with("cg-test: --die-with-parent: ")
            });
            (code_from_lines(&lines.all()), true)
        } else {
            let status = wait_child(&mut top, util::RUN_LIMIT);
            exited_at = Instant::now();
            match status {
                None => {
                    rec.fail(
                        "hang",
                        format!("cg-test did not exit within {:?}", util::RUN_LIMIT),
                    );
                    (None, false)
                }
                Some(s) if s.signal() == Some(libc::SIGKILL) && plan.kind != Kind::Watchdog => {
                    (None, false)
                }
                Some(s) => (s.code().or_else(|| s.signal().map(|n| 128 + n)), true),
            }
        };
        if exited_before {
            rec.phase = Phase::AfterExit;
        } else if !cg_lived && plan.kind != Kind::WatchdogThenCgTest {
            // Killed by us: everything cg-test wrote is in the pipe, so its last line
            // says where it was (more exactly than the time a line was read).
            std::thread::sleep(Duration::from_millis(20));
            rec.phase = lines.phase_of_own_lines().max(rec.phase);
        }
        if cg_lived {
            rec.exit_checked = true;
            let want = expected_code(plan.scenario, &lines.all());
            if code != Some(want) {
                rec.fail(
                    "exit-code",
                    format!(
                        "cg-test lived through the kill and exited {code:?}, not {want}; \
                         stderr:\n{}",
                        lines.all().join("\n")
                    ),
                );
            }
            if plan.scenario == Scenario::Timeout && code == Some(124) {
                let deadline = t0 + Duration::from_secs_f64(TIMEOUT_SECS + GRACE_SECS);
                rec.lag = Some(exited_at.saturating_duration_since(deadline));
            }
        }

        // From when must the run be empty?
        // A watchdog killed while cg-test is stopped (`--compat stop-before-kill` stops
        // it between the freeze and the kill) is one that cg-test cannot replace: to
        // both, the two deaths are one instant, as for `both` (docs/DESIGN.md, "A
        // watchdog killed during the run is replaced at once").
        let stopped_cg_test = plan.kind == Kind::WatchdogThenCgTest
            && plan.stop_before_kill
            && matches!(
                lines.phase_of_own_lines(),
                Phase::TimeoutKill | Phase::LeakKill
            );
        let since = if plan.kind == Kind::Both || stopped_cg_test {
            // Both dead at once: what is left waits for gc. The watchdog is reaped by
            // init; wait until it is gone so that gc judges a dead owner.
            if let Some((_, fd)) = &wd {
                fd.exited_within(2000);
            }
            if rec.alive_before > 0 {
                rec.left_for_gc = Some(run_pids(marker).len());
            }
            let gc = Command::new(CG_TEST)
                .arg("gc")
                .arg(&self.cg.path)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting cg-test gc");
            let out = gc.wait_with_output().expect("waiting for cg-test gc");
            if out.status.code() != Some(0) {
                rec.fail(
                    "gc",
                    format!(
                        "cg-test gc exited {:?}: {}{}",
                        out.status,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                );
            }
            Instant::now()
        } else if cg_lived {
            exited_at
        } else {
            killed_at
        };
        if plan.kind == Kind::Control {
            std::thread::sleep(Duration::from_millis(300));
            rec.survivors = run_pids(marker).len();
            if rec.survivors == 0 {
                rec.fail(
                    "control",
                    "no process of the run survived cg-test's SIGKILL without a watchdog \
                     (the soak's detection, or the attack, is broken)",
                );
            }
            self.clean_up(marker);
            for e in self.canaries.check() {
                rec.fail("canary", e);
            }
        } else {
            self.settle(rec, marker, since, &lines);
        }
        if rec.failures.is_empty() {
            std::fs::write(&trigger, "").unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------
// The soak.

fn env_num(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    v.strip_prefix("0x")
        .map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
}

#[test]
fn chaos_soak() {
    let runs = env_num("CG_TEST_SOAK_RUNS").unwrap_or(520) as usize;
    let seed = env_num("CG_TEST_SOAK_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spinners = env_num("CG_TEST_SOAK_LOAD").map_or(cpus, |n| n as usize);
    let xfail: Vec<String> = std::env::var("CG_TEST_SOAK_XFAIL")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    // CG_TEST_SOAK_ONLY=4,17: only those runs of the soak with this seed.
    let numbers: Vec<usize> = match std::env::var("CG_TEST_SOAK_ONLY") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) => (0..runs).collect(),
    };
    let runs = numbers.len();
    eprintln!("soak: {runs} runs, 2 at a time, {spinners} spinner(s), CG_TEST_SOAK_SEED={seed:#x}");

    let g = Guard::new("soak");
    let soak_marker = g.marker().to_string();
    let load = Load::start(spinners, g.extra_marker("load"));
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let records = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..2 {
            let (g, next, records, soak_marker, numbers) =
                (&g, &next, &records, &soak_marker, &numbers);
            s.spawn(move || {
                let cg = TestCgroup::new(g, &format!("soak{w}"));
                let canaries = Canaries::new(format!("{soak_marker}canary{w}_"), &cg.path);
                let mut worker = Worker {
                    g,
                    soak_marker,
                    cg,
                    canaries,
                };
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&n) = numbers.get(i) else {
                        break;
                    };
                    worker.canaries.renew();
                    // Each run's choices depend on the seed and its number alone, so
                    // CG_TEST_SOAK_ONLY replays a run of an earlier soak.
                    let mut rng =
                        Rng::new(seed ^ (n as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
                    let rec = worker.run(plan(n, &mut rng));
                    if !rec.failures.is_empty() {
                        eprintln!(
                            "soak: run {n} ({} {:?} {:?}{}, {}) failed: {}",
                            rec.plan.kind.name(),
                            rec.plan.mode,
                            rec.plan.scenario,
                            if rec.plan.stop_before_kill {
                                " stop-before-kill"
                            } else {
                                ""
                            },
                            rec.phase.name(),
                            rec.failures.join(" | ")
                        );
                    }
                    records.lock().unwrap().push(rec);
                }
                worker.canaries.stop();
            });
        }
    });
    load.stop();
    let elapsed = started.elapsed();
    let mut records = records.into_inner().unwrap();
    records.sort_by_key(|r| r.plan.n);

    // Every run's late marker was armed after its checks: a survivor that every scan
    // missed would write it within the fixture's 0.2 s look.
    std::thread::sleep(Duration::from_millis(1000));
    let late: Vec<usize> = records
        .iter()
        .filter(|r| g.path(&format!("r{}/late", r.plan.n)).exists())
        .map(|r| r.plan.n)
        .collect();

    let figures = figures(&records, elapsed, seed, spinners, &late);
    println!("{figures}");
    if let Ok(path) = std::env::var("CG_TEST_SOAK_REPORT") {
        std::fs::write(&path, &figures).expect("writing CG_TEST_SOAK_REPORT");
    }
    let failed: Vec<String> = records
        .iter()
        .filter(|r| r.fails_beyond(&xfail))
        .map(|r| {
            format!(
                "run {} ({}): {}",
                r.plan.n,
                r.plan.kind.name(),
                r.failures.join(" | ")
            )
        })
        .collect();
    assert!(late.is_empty(), "late markers appeared for runs {late:?}");
    assert!(
        failed.is_empty(),
        "{} of {} runs failed (CG_TEST_SOAK_SEED={seed:#x}):\n{}",
        failed.len(),
        records.len(),
        failed.join("\n")
    );
    // The attack was real: most kills found the victims alive.
    let with_victims = records.iter().filter(|r| r.alive_before >= 3).count();
    assert!(
        with_victims * 3 >= records.len(),
        "only {with_victims} of {} kills found the run's victims alive",
        records.len()
    );
}

/// The soak's figures, as markdown (RELIABILITY.md keeps them).
fn figures(
    records: &[Record],
    elapsed: Duration,
    seed: u64,
    spinners: usize,
    late: &[usize],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "soak: {} runs in {:.0} s, 2 at a time beside {spinners} spinner(s); seed {seed:#x}\n",
        records.len(),
        elapsed.as_secs_f64()
    );
    // Kills by kind and phase.
    let mut table: BTreeMap<(Kind, Phase), usize> = BTreeMap::new();
    for r in records {
        *table.entry((r.plan.kind, r.phase)).or_default() += 1;
    }
    let phases: Vec<Phase> = Phase::ALL
        .into_iter()
        .filter(|p| table.keys().any(|(_, q)| q == p))
        .collect();
    let _ = writeln!(
        out,
        "| kind \\ phase | {} | all | failed |",
        phases
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|{}---|---|", "---|".repeat(phases.len()));
    for kind in Kind::ALL {
        let of_kind: Vec<&Record> = records.iter().filter(|r| r.plan.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let cells: Vec<String> = phases
            .iter()
            .map(|&p| table.get(&(kind, p)).copied().unwrap_or(0).to_string())
            .collect();
        let failed = of_kind.iter().filter(|r| !r.failures.is_empty()).count();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {failed} |",
            kind.name(),
            cells.join(" | "),
            of_kind.len()
        );
    }
    let count = |f: &dyn Fn(&Record) -> bool| records.iter().filter(|r| f(r)).count();
    let modes: BTreeMap<&str, usize> = records.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.plan.mode.name()).or_default() += 1;
        m
    });
    let _ = writeln!(
        out,
        "\nmodes: {}; scenarios: {} timeout, {} leak; {} stopped before the final kill",
        modes
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        count(&|r| r.plan.scenario == Scenario::Timeout),
        count(&|r| r.plan.scenario == Scenario::Leak),
        count(&|r| r.plan.stop_before_kill)
    );
    let not_control = |r: &Record| r.plan.kind != Kind::Control;
    let _ = writeln!(
        out,
        "victims alive just before the kill (>= 3): {} runs; watchdogs found and checked \
         (ppid, outside the leaf): {}",
        count(&|r| r.alive_before >= 3),
        count(&|r| r.watchdog_checked)
    );
    let _ = writeln!(
        out,
        "survivors: {} runs ({} processes, killed by pid); leaves left: {}; late markers: {}",
        count(&|r| not_control(r) && r.survivors > 0),
        records
            .iter()
            .filter(|r| not_control(r))
            .map(|r| r.survivors)
            .sum::<usize>(),
        records
            .iter()
            .filter(|r| not_control(r))
            .map(|r| r.leaves)
            .sum::<usize>(),
        late.len()
    );
    let exit_checked = count(&|r| r.exit_checked);
    let exit_wrong = count(&|r| r.categories().any(|c| c == "exit-code"));
    let _ = writeln!(
        out,
        "exit codes checked (cg-test lived): {exit_checked}, wrong: {exit_wrong}"
    );
    for kind in Kind::ALL {
        let worst = records
            .iter()
            .filter(|r| r.plan.kind == kind)
            .filter_map(|r| r.to_empty.map(|t| (t, r.plan.n)))
            .max();
        if let Some((t, n)) = worst {
            let _ = writeln!(
                out,
                "longest time to empty, {}: {:.1} ms (run {n}; from {})",
                kind.name(),
                t.as_secs_f64() * 1000.0,
                match kind {
                    Kind::Both => "gc's exit",
                    Kind::Watchdog | Kind::Parent | Kind::ParentDieWith => "cg-test's exit",
                    _ => "the kill",
                }
            );
        }
    }
    // The watchdog's own teardown, by mode (a leaf's cgroup.kill; the compat paths'
    // kill of each frozen member; the pgroup mode's stop-the-world token sweep).
    let by_mode: Vec<String> = [
        util::Mode::Cgroup,
        util::Mode::CgroupCompat,
        util::Mode::Pgroup,
    ]
    .iter()
    .filter_map(|&m| {
        let worst = records
            .iter()
            .filter(|r| r.plan.mode == m && r.plan.kind == Kind::CgTest)
            .filter_map(|r| r.to_empty)
            .max()?;
        Some(format!(
            "{} {:.1} ms",
            m.name(),
            worst.as_secs_f64() * 1000.0
        ))
    })
    .collect();
    let _ = writeln!(
        out,
        "longest time to empty after cg-test's SIGKILL, by mode: {}",
        by_mode.join(", ")
    );
    if let Some((lag, n)) = records
        .iter()
        .filter_map(|r| r.lag.map(|l| (l, r.plan.n)))
        .max()
    {
        let _ = writeln!(
            out,
            "longest from deadline + grace to cg-test's exit (timeouts cg-test lived through): \
             {:.1} ms (run {n})",
            lag.as_secs_f64() * 1000.0
        );
    }
    let gc: Vec<usize> = records.iter().filter_map(|r| r.left_for_gc).collect();
    let _ = writeln!(
        out,
        "both: {} runs with victims up; processes left for gc: {} in all ({} runs with some)",
        gc.len(),
        gc.iter().sum::<usize>(),
        gc.iter().filter(|&&n| n > 0).count()
    );
    let controls: Vec<&Record> = records
        .iter()
        .filter(|r| r.plan.kind == Kind::Control)
        .collect();
    let _ = writeln!(
        out,
        "controls (no watchdog, cg-test SIGKILLed): {} runs, survivors seen in {}",
        controls.len(),
        controls.iter().filter(|r| r.survivors > 0).count()
    );
    let failed: Vec<&Record> = records.iter().filter(|r| !r.failures.is_empty()).collect();
    let mut categories: BTreeMap<&str, usize> = BTreeMap::new();
    for c in records.iter().flat_map(|r| r.categories()) {
        *categories.entry(c).or_default() += 1;
    }
    let _ = writeln!(
        out,
        "failed runs: {} (failures by category: {})",
        failed.len(),
        categories
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for r in failed.iter().take(30) {
        let _ = writeln!(
            out,
            "- run {} ({}, {}, {:?}{}, {}): {}",
            r.plan.n,
            r.plan.kind.name(),
            r.plan.mode.name(),
            r.plan.scenario,
            if r.plan.stop_before_kill {
                ", stop-before-kill"
            } else {
                ""
            },
            r.phase.name(),
            r.failures
                .iter()
                .map(|f| f.lines().next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    out
}
