//! The one top-to-bottom run: set up → spawn → wait (deadline, signals) → leak check →
//! teardown ladder → release → report. Each step is its own method so later features
//! (snapshots, limits, reports) grow one step without touching the others.
//!
//! The kill ladder, the same for timeout, signal and leak:
//! 1. freeze the run, send the polite signal (and SIGCONT) to every member, thaw;
//! 2. grace: wait up to `--kill-after` for the run to empty (ends early on
//!    `populated 0`; a second INT/TERM to cg-test ends it at once); with no grace
//!    at all (`-k 0`) step 1 sends nothing and does not thaw, and step 3 kills the
//!    run still frozen;
//! 3. freeze, kill everything, confirm the run is empty — the kill runs whether or not
//!    the freeze succeeded (a freeze that gives up is a note, never the end of
//!    teardown);
//! 4. reap, remove the boundary.
//!
//! Step 4 runs on every path, including cg-test's own errors after the boundary was
//! made, so nothing a run started is ever left behind. If cg-test itself is killed,
//! its watchdog ([`crate::watchdog`]) does steps 3 and 4.

use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::{signal_name, Compat, Config, ForwardTo};
use crate::events::{EventLoop, SignalPlan, FORWARD_SIGNALS, TEARDOWN_SIGNALS};
use crate::exit::ExitStatus;
use crate::isolation::limits::{human_size, LimitEvents};
use crate::isolation::{self, send, Isolation, Mode, Options, Reaper, Target, Unavailable};
use crate::namespaces::{Confinement, NsInit};
use crate::platform::{self, SignalSource};
use crate::report::{self, LeakedProcess, Outcome};
use crate::run_id::RunId;
use crate::snapshot::{self, Cause, Snapshots};
use crate::spawn::{self, SpawnFailure, SpawnRequest, Spawned};
use crate::usage::{self, Usage};
use crate::watchdog::{ReportSpec, Watch, Watchdog};

/// Run the configured command to completion and report what happened. An `Err` is
/// cg-test's own failure before the command could start; a failure after it is an
/// `Outcome` with `status` OwnError (exit 125) and the `error`, so the report still
/// has the run. Everything the run started is gone either way.
///
/// Must be called from a single-threaded process: the fork-based spawn, the signal
/// mask and the parent-death signal all assume one thread (see docs/DESIGN.md), and
/// this is checked.
pub fn run(cfg: &Config) -> Result<Outcome> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    if let Some(n) = platform::thread_count().filter(|&n| n > 1) {
        bail!(
            "cg_test::run was called from a process with {n} threads; it forks and \
             manages signals for the whole process, so call it from a single-threaded one"
        );
    }
    let opts = cfg.isolation_options();
    let run_id = RunId::new();
    let death_signal = parent_death_signal(cfg)?;
    let plan = SignalPlan::capture(death_signal.as_slice());
    let events = EventLoop::new(SignalSource::install(&plan)?);
    let parent = death_signal.map(watch_parent).transpose()?;
    if opts.subreaper {
        platform::become_subreaper().context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let confinement = Confinement::prepare(cfg.pid_ns, cfg.harden)?;
    let boundary = isolation::select(&opts, &run_id)?;
    let mut run = Run {
        cfg,
        started,
        started_at,
        opts,
        confinement,
        run_id,
        plan,
        events,
        boundary,
        reaper: Reaper::new(),
        watchdog: None,
        command: None,
        terminal: Terminal::detect(),
        parent,
        parent_died: false,
        tearing_down: false,
        skip_grace: false,
        leaked: Vec::new(),
        snapshots: Snapshots::new(cfg.report.is_some()),
        usage: Usage::default(),
    };
    let result = run.start_watchdog().and_then(|()| run.execute());
    if let Ok(status) = &result {
        run.report_limits(*status);
    }
    let finished = run.finish();
    // --pid-ns: the run is over (or cg-test failed); killing the init kills whatever
    // could still be in its namespace.
    run.reaper.dismiss_init();
    if finished.is_ok() {
        if let Some(w) = run.watchdog.take() {
            w.dismiss(&mut run.reaper);
        }
    }
    let (status, error) = match (result, finished) {
        (Ok(status), Ok(())) => (status, None),
        (Err(e), _) | (Ok(_), Err(e)) => (ExitStatus::OwnError, Some(format!("{e:#}"))),
    };
    Ok(Outcome {
        status,
        isolation: run.boundary.kind(),
        boundary: run.boundary.describe(),
        boundary_path: run.boundary.cgroup_dir().map(Path::to_path_buf),
        run_id: run.run_id.to_string(),
        started_at,
        wall: started.elapsed(),
        command_exit: run.reaper.command_status(),
        usage: run.usage,
        leaked: run.leaked,
        at_timeout: run.snapshots.at_timeout().to_vec(),
        error,
    })
}

/// `--die-with-parent`: the signal cg-test asks the kernel for, or an error where
/// there is none.
fn parent_death_signal(cfg: &Config) -> Result<Option<i32>> {
    if !cfg.die_with_parent {
        return Ok(None);
    }
    platform::parent_death_signal()
        .map(Some)
        .ok_or_else(|| anyhow!("--die-with-parent needs Linux (PR_SET_PDEATHSIG); drop the flag"))
}

/// Ask for `sig` when the parent dies, then close the race where it died before the
/// request: cg-test would already have been handed to init. Returns the parent's pid
/// (0 when cg-test is the init of a pid namespace, whose parent is outside it).
fn watch_parent(sig: i32) -> Result<i32> {
    // SAFETY: getppid cannot fail.
    let parent = unsafe { libc::getppid() };
    if parent == 1 {
        bail!(
            "--die-with-parent: cg-test's parent is already gone (it was handed to init, \
             pid 1); start cg-test from the process it should die with, or drop the flag"
        );
    }
    platform::set_parent_death_signal(sig).context("--die-with-parent: prctl(PR_SET_PDEATHSIG)")?;
    // SAFETY: as above.
    if unsafe { libc::getppid() } != parent {
        bail!(
            "--die-with-parent: cg-test's parent (pid {parent}) died while cg-test started; \
             nothing was run"
        );
    }
    Ok(parent)
}

/// How waiting for the command ended.
enum Ended {
    /// The command exited with this raw wait status.
    Exited(i32),
    /// The deadline passed.
    TimedOut,
    /// cg-test received this teardown signal (or its parent died: SIGTERM).
    Interrupted(i32),
}

struct Run<'a> {
    cfg: &'a Config,
    started: Instant,
    started_at: SystemTime,
    opts: Options,
    run_id: RunId,
    plan: SignalPlan,
    events: EventLoop,
    /// `--pid-ns`, `--harden`.
    confinement: Confinement,
    boundary: Box<dyn Isolation>,
    reaper: Reaper,
    watchdog: Option<Watchdog>,
    /// The command's pid (and process group), once it runs.
    command: Option<i32>,
    terminal: Terminal,
    /// `--die-with-parent`: the parent's pid (0: outside our pid namespace).
    parent: Option<i32>,
    /// The parent died: the ladder's polite signal is `--signal` (as tini -p).
    parent_died: bool,
    /// The ladder has started: a further teardown signal skips the grace.
    tearing_down: bool,
    skip_grace: bool,
    leaked: Vec<LeakedProcess>,
    /// What was running when the teardown started (report::teardown_snapshot).
    snapshots: Snapshots,
    /// What the run cost, read just before the boundary is removed.
    usage: Usage,
}

impl Run<'_> {
    /// Fork the watchdog that tears the run down if cg-test is killed (see
    /// [`crate::watchdog`]).
    fn start_watchdog(&mut self) -> Result<()> {
        if self.cfg.forces(Compat::NoWatchdog) {
            return Ok(());
        }
        if platform::is_pid_ns_init() {
            // The init of its pid namespace (a container's entrypoint): cg-test's death
            // kills every process of the namespace, the watchdog included, so it could
            // not outlive cg-test to act; it is not worth a fork.
            crate::step!(
                "no watchdog: cg-test is the init of its pid namespace, whose death kills \
                 every process in it"
            );
            return Ok(());
        }
        let w = Watchdog::start(&self.watch())?;
        self.adopt_watchdog(w);
        Ok(())
    }

    /// What the watchdog tears down: the run as it is now (after a fallback to the
    /// pgroup mode, without the leaf that was released).
    fn watch(&self) -> Watch {
        Watch {
            // SAFETY: getpid cannot fail.
            supervisor: unsafe { libc::getpid() },
            leaf: self.boundary.cgroup_dir().map(Path::to_path_buf),
            run_id: self.run_id.clone(),
            opts: self.opts.clone(),
            limits: self.boundary.limits_undo(),
            held: self
                .boundary
                .liveness_fds()
                .map(|fd| fd.map(|fd| std::os::fd::AsRawFd::as_raw_fd(&fd))),
            report: self.cfg.report.clone().map(|path| ReportSpec {
                path,
                command: self.cfg.command.clone(),
                started_at: self.started_at,
                started: self.started,
                isolation: self.boundary.kind(),
            }),
        }
    }

    fn adopt_watchdog(&mut self, w: Watchdog) {
        self.boundary.ignore(w.pid());
        self.reaper.watch_helper(w.pid());
        self.watchdog = Some(w);
    }

    fn execute(&mut self) -> Result<ExitStatus> {
        let (pid, init) = match self.spawn()? {
            Spawned::Running { pid, init } => (pid, init),
            Spawned::Failed(f) => return spawn_failure_status(f, self.opts.leaf_wanted_by()),
        };
        self.command = Some(pid);
        self.boundary.adopt(pid);
        match init {
            Some(init) => self.adopt_init(pid, init)?,
            None => self.reaper.watch(pid),
        }
        match self.wait_command(pid)? {
            Ended::Exited(raw) => {
                self.terminal.reclaim(Some(pid));
                let status = command_status(raw);
                crate::step!(
                    "the command exited ({}); giving the rest of the run {} to finish",
                    status.code(),
                    human(self.cfg.leak_timeout)
                );
                match self.check_leaks()? {
                    Some(sig) => Ok(ExitStatus::Interrupted(sig)),
                    None if !self.leaked.is_empty()
                        && self.cfg.fail_on_leak
                        && status == ExitStatus::Exited(0) =>
                    {
                        Ok(ExitStatus::Leaked)
                    }
                    None => Ok(status),
                }
            }
            Ended::TimedOut => {
                let t = self.cfg.timeout.unwrap_or_default();
                crate::note!(
                    "timed out after {}; {}",
                    human(t),
                    self.what_the_ladder_does(&format!("sending {}", signal_name(self.cfg.signal)))
                );
                self.snapshots.arm(Cause::Timeout(t));
                self.ladder(self.cfg.signal)?;
                Ok(ExitStatus::TimedOut)
            }
            Ended::Interrupted(sig) => {
                if !self.parent_died {
                    crate::note!(
                        "received {}; {}",
                        signal_name(sig),
                        self.what_the_ladder_does("forwarding it")
                    );
                }
                self.snapshots.arm(Cause::Signal(sig));
                self.ladder(self.polite_for(sig))?;
                Ok(ExitStatus::Interrupted(sig))
            }
        }
    }

    /// `--pid-ns`: the command is the child of the namespace's init; its status comes
    /// from the init's reports, which also wake the event loop.
    fn adopt_init(&mut self, pid: i32, init: NsInit) -> Result<()> {
        self.boundary.adopt_init(init.pid());
        if let Some(fd) = init.status_fd() {
            self.events
                .watch(fd)
                .context("--pid-ns: duplicating the init's report pipe")?;
        }
        self.reaper.watch_via_init(pid, init);
        Ok(())
    }

    /// The polite signal of a teardown that `sig` started: the signal itself, or after
    /// the parent's death (taken as SIGTERM) the `--signal` one, as tini -p does.
    fn polite_for(&self, sig: i32) -> i32 {
        if self.parent_died {
            self.cfg.signal
        } else {
            sig
        }
    }

    /// The spawn step. In auto mode, a leaf the child may not enter (a permission only
    /// the migration itself reveals) falls back to the pgroup strategy, before the
    /// command has run a single instruction.
    fn spawn(&mut self) -> Result<Spawned> {
        let spawned = self.spawn_once()?;
        if let Spawned::Failed(SpawnFailure::PlacementDenied(why)) = &spawned {
            if let (Some(l), false) = (&self.opts.limits, self.opts.may_fall_back()) {
                bail!(
                    "{}: the command could not enter the run's leaf, and limits need one: \
                     {why}; or pass --limits best-effort to run without limits",
                    l.flags()
                );
            }
            if self.opts.mode == Mode::Auto && self.boundary.kind() == "cgroup" {
                let why = Unavailable(why.clone());
                self.boundary.release()?;
                self.boundary = isolation::fallback(&self.opts, &self.run_id, &why);
                if let Some(w) = self.reaper.live_helper() {
                    self.boundary.ignore(w);
                }
                return self.spawn_once();
            }
        }
        Ok(spawned)
    }

    fn spawn_once(&mut self) -> Result<Spawned> {
        spawn::spawn(&SpawnRequest {
            command: &self.cfg.command,
            run_id: &self.run_id,
            placement: self.boundary.placement(),
            signals: &self.plan,
            terminal: self.terminal.if_foreground(),
            confinement: &self.confinement,
        })
    }

    /// Reap what has exited. If the watchdog was among it (someone killed it: a
    /// runner's sweep, the OOM killer, a stray `kill`), start a new one at once, so that
    /// a later kill of cg-test is still covered; only the two dying at the same instant
    /// leave the run to `cg-test gc`. If no new one can be started, the run must not go
    /// on unwatched: the error ends it (the caller tears it down, exit 125).
    fn reap(&mut self) -> Result<()> {
        self.reaper.reap();
        if !self.reaper.helper_exited() {
            return Ok(());
        }
        // Its pipe closes with the handle; nobody reads it any more.
        let Some(old) = self.watchdog.take().map(|w| w.pid()) else {
            return Ok(());
        };
        let how = match self.reaper.helper_status() {
            Some(raw) if libc::WIFSIGNALED(raw) => {
                format!("was killed by {}", signal_name(libc::WTERMSIG(raw)))
            }
            Some(raw) => format!("exited with status {}", libc::WEXITSTATUS(raw)),
            None => "exited".to_string(),
        };
        match Watchdog::start(&self.watch()) {
            Ok(w) => {
                crate::step!(
                    "the watchdog (pid {old}) {how}; started a new one (pid {})",
                    w.pid()
                );
                self.adopt_watchdog(w);
                Ok(())
            }
            Err(e) => Err(anyhow!(
                "the watchdog (pid {old}) {how} and no new one could be started ({e:#}); \
                 the run was torn down rather than left unwatched"
            )),
        }
    }

    /// The wait step: sleep until the command exits, the deadline passes, or a
    /// teardown signal arrives.
    fn wait_command(&mut self, pid: i32) -> Result<Ended> {
        let deadline = self.cfg.timeout.map(|t| Instant::now() + t);
        loop {
            self.reap()?;
            if let Some(raw) = self.reaper.command_status() {
                return Ok(Ended::Exited(raw));
            }
            if self.reaper.take_command_stopped() {
                self.terminal.suspend_with(pid);
            }
            let wake = self.events.wait(None, deadline)?;
            // Every signal of the batch is handled: a second teardown signal read
            // together with the first still skips the grace.
            let mut interrupted = None;
            for sig in wake.signals {
                if let Some(sig) = self.on_signal(sig) {
                    interrupted.get_or_insert(sig);
                }
            }
            if let Some(sig) = interrupted {
                return Ok(Ended::Interrupted(sig));
            }
            if wake.deadline_passed {
                return Ok(Ended::TimedOut);
            }
        }
    }

    /// React to one signal. Returns the signal when it starts a teardown.
    fn on_signal(&mut self, sig: i32) -> Option<i32> {
        let sig = if Some(sig) == platform::parent_death_signal() && self.parent.is_some() {
            self.on_parent_death()?
        } else {
            sig
        };
        if TEARDOWN_SIGNALS.contains(&sig) {
            if self.tearing_down {
                crate::note!(
                    "received {} during the teardown; killing now",
                    signal_name(sig)
                );
                self.skip_grace = true;
                return None;
            }
            self.tearing_down = true;
            return Some(sig);
        }
        let running = self
            .command
            .filter(|_| self.reaper.command_status().is_none());
        if let (libc::SIGCONT, Some(command)) = (sig, running) {
            self.terminal.resume(command);
        } else if let (true, Some(command)) = (FORWARD_SIGNALS.contains(&sig), running) {
            self.forward(sig, command);
        }
        None
    }

    /// Pass on a signal that ends nothing (USR1, USR2, WINCH), to whom `--forward-to`
    /// says.
    fn forward(&mut self, sig: i32, command: i32) {
        let target = match self.cfg.forward_to {
            // Without cg-test, `kill -USR1 <pid>` would reach the command alone; a
            // window-size change reaches the terminal's whole foreground group.
            ForwardTo::Command if sig == libc::SIGWINCH => Target::Group(command),
            ForwardTo::Command => Target::Process(command),
            // tini -g, dumb-init: the command's process group (its pid is the group's id).
            ForwardTo::Group => Target::Group(command),
            ForwardTo::All => {
                // The run is not frozen: the boundary pins each pid (pidfd) and checks it
                // is still a member before signalling, so a pid reused since it was
                // listed is never hit.
                let sent = self
                    .boundary
                    .members()
                    .and_then(|pids| self.boundary.signal(&pids, &[sig]));
                if let Err(e) = sent {
                    crate::note!("forwarding {}: {e:#}", signal_name(sig));
                }
                return;
            }
        };
        send(target, sig);
    }

    /// The parent-death signal arrived. PR_SET_PDEATHSIG fires when the *thread* that
    /// started cg-test exits; only if cg-test now has another parent did the parent
    /// process die. That is taken as SIGTERM.
    fn on_parent_death(&mut self) -> Option<i32> {
        let parent = self.parent.unwrap_or(0);
        // SAFETY: getppid cannot fail.
        if parent != 0 && unsafe { libc::getppid() } == parent {
            crate::step!(
                "parent-death signal while the parent (pid {parent}) lives on (the thread \
                 that started cg-test exited); ignored"
            );
            return None;
        }
        crate::note!(
            "cg-test's parent (pid {parent}) died; {} and tearing it down as on SIGTERM",
            self.what_the_ladder_does(&format!("sending {}", signal_name(self.cfg.signal)))
        );
        self.parent_died = true;
        Some(libc::SIGTERM)
    }

    /// After the command exited: give its descendants `--leak-timeout` to finish, then
    /// report and kill whoever is left. Returns a teardown signal received meanwhile.
    fn check_leaks(&mut self) -> Result<Option<i32>> {
        let until = Instant::now() + self.cfg.leak_timeout;
        let mut interrupted = None;
        while interrupted.is_none() {
            self.reap()?;
            if self.boundary.is_empty()? {
                return Ok(None);
            }
            if Instant::now() >= until {
                break;
            }
            let wake = self.wait_boundary(until)?;
            for sig in wake {
                if let Some(s) = self.on_signal(sig) {
                    interrupted.get_or_insert(s);
                }
            }
        }
        // Rows read before the freeze keep the true states (see crate::snapshot).
        let early = snapshot::read_before_freeze(self.boundary.as_mut());
        self.boundary.freeze();
        let leaked = self
            .boundary
            .members()
            .map(|members| snapshot::settle(early, &members, self.cfg.report.is_some()));
        self.boundary.thaw();
        self.leaked = leaked?;
        if interrupted.is_none() {
            let report_file = self.cfg.report.is_some();
            report::leaks(&self.leaked, &self.boundary.describe(), report_file);
        }
        self.ladder(interrupted.map_or(self.cfg.signal, |s| self.polite_for(s)))?;
        Ok(interrupted)
    }

    /// Sleep until the boundary may have changed, a signal arrives, or `until`.
    fn wait_boundary(&mut self, until: Instant) -> Result<Vec<i32>> {
        let wake_at = match self.boundary.poll_interval() {
            Some(step) => until.min(Instant::now() + step),
            None => until,
        };
        Ok(self
            .events
            .wait(self.boundary.event_fd(), Some(wake_at))?
            .signals)
    }

    /// What the ladder is about to do, for the note that starts it: `sending SIGTERM
    /// to every process of the run`, or the kill at once of `-k 0`.
    fn what_the_ladder_does(&self, sending: &str) -> String {
        if self.cfg.kill_after.is_zero() {
            "killing every process of the run at once (-k 0: no grace)".to_string()
        } else {
            format!("{sending} to every process of the run")
        }
    }

    /// The kill ladder (see the module docs).
    fn ladder(&mut self, polite: i32) -> Result<()> {
        self.tearing_down = true;
        self.reap()?;
        if self.boundary.is_empty()? {
            return Ok(());
        }
        crate::phases::start();
        self.snapshots.before_freeze(self.boundary.as_mut());
        crate::phases::end("snapshot");
        self.boundary.freeze();
        // One read of the members (for the pgroup strategy a walk of the process
        // table): the snapshot settles on it and the polite round signals it.
        let members = self.boundary.members();
        if let Ok(members) = &members {
            crate::phases::end("polite");
            self.snapshots.after_freeze(members);
            crate::phases::end("snapshot");
        }
        // No grace (`-k 0`): kill at once. The run stays frozen from here to the kill,
        // so nothing could act on a polite signal (a thaw between would give a handler
        // microseconds, a race at best); none is sent, and the kill skips the second
        // freeze while this one holds. That is the kernel's own freeze and kill, plus
        // the snapshot (BENCHMARKS.md).
        if self.cfg.kill_after.is_zero() {
            crate::phases::end("polite");
            self.snapshots.show();
            crate::phases::end("snapshot");
            crate::step!("no grace (-k 0): killing without {}", signal_name(polite));
            return self.kill_rest();
        }
        // A process stopped by job control would not act on the polite signal until
        // continued (GNU timeout does the same). SIGCONT goes out after every member
        // has the polite signal pending, so a continued member cannot fork a child
        // that misses it while the pgroup strategy's stop-the-world still holds the
        // others.
        let signals: &[i32] = if polite == libc::SIGKILL || polite == libc::SIGCONT {
            &[polite]
        } else {
            &[polite, libc::SIGCONT]
        };
        let sent = members.and_then(|members| self.boundary.signal(&members, signals));
        self.boundary.thaw();
        crate::phases::end("polite");
        self.snapshots.show();
        crate::phases::end("snapshot");
        match sent {
            Ok(n) => crate::step!("sent {} to {n} process(es)", signal_name(polite)),
            Err(e) => crate::note!("sending {}: {e:#}", signal_name(polite)),
        }
        self.grace()?;
        crate::phases::end("grace");
        self.kill_rest()
    }

    /// Wait up to `--kill-after` for the run to empty by itself.
    fn grace(&mut self) -> Result<()> {
        let until = Instant::now() + self.cfg.kill_after;
        loop {
            self.reap()?;
            if self.skip_grace || self.boundary.is_empty()? || Instant::now() >= until {
                return Ok(());
            }
            for sig in self.wait_boundary(until)? {
                self.on_signal(sig);
            }
        }
    }

    /// Freeze and kill whatever is left; the kill does not depend on the freeze.
    fn kill_rest(&mut self) -> Result<()> {
        if self.boundary.is_empty()? {
            return Ok(());
        }
        crate::phases::start();
        if !self.boundary.holds_frozen() {
            self.boundary.freeze();
        }
        crate::phases::end("freeze");
        if crate::report::shows_steps() {
            if let Ok(members) = self.boundary.members() {
                crate::step!("killing {} process(es): {members:?}", members.len());
            }
        }
        if self.cfg.forces(Compat::StopBeforeKill) {
            // SAFETY: stopping ourselves; a test SIGKILLs or continues us.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
        self.boundary.kill_all(&mut self.reaper)
    }

    /// The limits' step, once the run is over and before its leaf goes: what the OOM
    /// killer and `pids.max` did, from the leaf's counters. An OOM kill is always said
    /// (like a leak): a test runner's worker that vanished needs a reason.
    fn report_limits(&mut self, status: ExitStatus) {
        // Nothing at all without limits (not even the leaf's path).
        let Some(limits) = self.boundary.limits() else {
            return;
        };
        let Some(leaf) = self.boundary.cgroup_dir() else {
            return;
        };
        let ev = LimitEvents::read(leaf, limits);
        if ev.oom_kills > 0 {
            let max = limits.memory_max.map(human_size).unwrap_or_default();
            // The command died of SIGKILL that cg-test did not send (it only kills on a
            // timeout, a signal or a leak, and then reports that status instead).
            // After a timeout or a signal the command's own end is not known.
            let command = match (self.command, status) {
                (Some(pid), ExitStatus::Signaled(libc::SIGKILL)) => {
                    format!("; the command (pid {pid}) was one of them")
                }
                (
                    Some(pid),
                    ExitStatus::Signaled(_) | ExitStatus::Exited(_) | ExitStatus::Leaked,
                ) => {
                    format!("; the command (pid {pid}) was not one of them")
                }
                _ => String::new(),
            };
            report::line(format_args!(
                "out of memory: the kernel's OOM killer killed {} process(es) of the run at \
                 memory.max {max}{command}",
                ev.oom_kills
            ));
        }
        if ev.pids_refused > 0 {
            crate::note!(
                "the run reached pids.max {}: {} fork(s) or clone(s) failed with EAGAIN",
                limits.pids_max.unwrap_or_default(),
                ev.pids_refused
            );
        }
    }

    /// Teardown that runs on every path: nothing alive, boundary removed, terminal
    /// back, children reaped.
    fn finish(&mut self) -> Result<()> {
        let emptied = match self.boundary.is_empty() {
            Ok(true) => Ok(()),
            _ => {
                self.boundary.freeze();
                self.boundary.kill_all(&mut self.reaper)
            }
        };
        // After the kill: a group of the run that held the terminal is gone now.
        self.terminal.reclaim(self.command);
        // A watchdog that cannot be replaced now does not stop the teardown; its error
        // is the run's, once the boundary is gone.
        let reaped = self.reap();
        emptied?;
        crate::phases::end("reap");
        self.usage = usage::collect(self.boundary.cgroup_dir());
        crate::phases::start();
        let released = self
            .boundary
            .release()
            .with_context(|| format!("cleaning up {}", self.boundary.describe()));
        crate::phases::end("rmdir");
        crate::phases::report();
        released.and(reaped)
    }
}

fn spawn_failure_status(f: SpawnFailure, wanted_by: &str) -> Result<ExitStatus> {
    match f {
        SpawnFailure::NotFound(msg) => {
            report::line(format_args!("{msg}"));
            Ok(ExitStatus::NotFound)
        }
        SpawnFailure::NotExecutable(msg) => {
            report::line(format_args!("{msg}"));
            Ok(ExitStatus::NotExecutable)
        }
        SpawnFailure::PlacementDenied(msg) => Err(anyhow!("{wanted_by}: {msg}")),
        SpawnFailure::Setup(msg) => Err(anyhow!(msg)),
    }
}

/// A raw wait status as the exit status cg-test passes on.
fn command_status(raw: i32) -> ExitStatus {
    if libc::WIFSIGNALED(raw) {
        ExitStatus::Signaled(libc::WTERMSIG(raw))
    } else {
        ExitStatus::Exited(libc::WEXITSTATUS(raw) as u8)
    }
}

fn human(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// The controlling terminal, when cg-test's stdin is it, and whether cg-test's job
/// holds it.
///
/// cg-test hands the terminal to the command's process group, and takes it back, only
/// while its own job is the terminal's foreground: hand over only when cg-test's own
/// group is the foreground group (`tcgetpgrp(tty) == getpgrp()`), take back only from
/// the command's group (or from a group of the run that is gone), as sudo and shells
/// do. A shell that put the job in the background (`bg`) owns the terminal then; the
/// tcsetpgrp calls work from the background (SIGTTOU is blocked), so taking it would
/// leave the shell in the background of its own terminal, where its next read fails
/// and an interactive bash exits.
struct Terminal {
    fd: Option<RawFd>,
    own_group: libc::pid_t,
}

impl Terminal {
    /// The terminal on stdin, if it is cg-test's controlling terminal (tcgetpgrp fails
    /// on any other). Whether cg-test is in its foreground is asked each time the
    /// terminal would change hands: a job started in the background (`&`) and brought
    /// to the foreground later (`fg`) gives the command the terminal then.
    fn detect() -> Terminal {
        // SAFETY: isatty, tcgetpgrp and getpgrp only query.
        unsafe {
            let own_group = libc::getpgrp();
            let fd = (libc::isatty(0) == 1 && libc::tcgetpgrp(0) > 0).then_some(0);
            Terminal { fd, own_group }
        }
    }

    /// The terminal's foreground group now.
    fn foreground(&self) -> Option<libc::pid_t> {
        // SAFETY: tcgetpgrp only queries.
        let group = unsafe { libc::tcgetpgrp(self.fd?) };
        (group > 0).then_some(group)
    }

    /// The terminal, if cg-test's job is in its foreground now (for the spawn, whose
    /// child takes the foreground for its new group).
    fn if_foreground(&self) -> Option<RawFd> {
        self.fd
            .filter(|_| self.foreground() == Some(self.own_group))
    }

    /// Give the terminal to the command's group, if cg-test's group holds it.
    fn hand_over(&self, command: i32) {
        if let Some(fd) = self.if_foreground() {
            // SAFETY: tcsetpgrp on our terminal, SIGTTOU blocked.
            unsafe { libc::tcsetpgrp(fd, command) };
        }
    }

    /// Job control: the command was stopped (Ctrl-Z sends SIGTSTP to the foreground
    /// group, which is the command's; a read from the background, SIGTTIN). Take the
    /// terminal back and stop cg-test too, so the shell sees its job stopped and gets
    /// its prompt back; when the shell continues cg-test, [`Terminal::resume`].
    /// Without a terminal, a stopped command simply stays stopped, as it would without
    /// cg-test.
    fn suspend_with(&self, command: i32) {
        if self.fd.is_none() {
            return;
        }
        self.reclaim(Some(command));
        // SAFETY: stopping ourselves; SIGSTOP cannot be blocked or caught, and the shell
        // that started us continues us with SIGCONT.
        unsafe { libc::raise(libc::SIGSTOP) };
        self.resume(command);
    }

    /// cg-test was continued (`fg` or `bg`; cg-test also reads the SIGCONT itself, so a
    /// job continued while it ran, `bg` then `fg`, comes here too). The job goes on:
    /// the command's group gets the terminal if the shell gave it to cg-test's (`fg`),
    /// not otherwise (`bg`), and is continued either way.
    fn resume(&self, command: i32) {
        if self.fd.is_none() {
            return;
        }
        self.hand_over(command);
        send(Target::Group(command), libc::SIGCONT);
    }

    /// Give the terminal back to cg-test's group, if the command's group (or a run's
    /// group that has died, after the teardown) holds it; never from anyone else.
    /// Idempotent.
    fn reclaim(&self, command: Option<i32>) {
        let (Some(fd), Some(group)) = (self.fd, self.foreground()) else {
            return;
        };
        // A group with no process left: kill(-group, 0) fails with ESRCH. The shell's
        // own group, when the job is in the background, always has its shell.
        // SAFETY: signal 0 only checks for existence.
        let gone = || unsafe { libc::kill(-group, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if group != self.own_group && (Some(group) == command || gone()) {
            // SAFETY: tcsetpgrp on the terminal we were started on, SIGTTOU blocked.
            unsafe { libc::tcsetpgrp(fd, self.own_group) };
        }
    }
}
