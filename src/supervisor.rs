//! The one top-to-bottom run: set up → spawn → wait (deadline, signals) → leak check →
//! teardown ladder → release → report. Each step is its own method so later features
//! (snapshots, limits, reports) grow one step without touching the others.
//!
//! The kill ladder, the same for timeout, signal and leak:
//! 1. freeze the run, send the polite signal (and SIGCONT) to every member, thaw;
//! 2. grace: wait up to `--kill-after` for the run to empty (ends early on
//!    `populated 0`; a second INT/TERM to cg-test ends it at once);
//! 3. freeze, read the member list, kill everything, confirm the run is empty;
//! 4. reap, remove the boundary.
//!
//! Step 4 runs on every path, including cg-test's own errors after the boundary was
//! made, so nothing a run started is ever left behind.

use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context, Result};

use crate::cli::{signal_name, Compat, Config, IsolationMode};
use crate::events::{EventLoop, SignalPlan, FORWARD_SIGNALS, TEARDOWN_SIGNALS};
use crate::exit::ExitStatus;
use crate::isolation::{self, send, Isolation, Reaper, Target, Unavailable};
use crate::platform::{self, SignalSource};
use crate::report::{self, LeakedProcess, Outcome};
use crate::run_id::RunId;
use crate::snapshot::{self, Cause, Snapshots};
use crate::spawn::{self, SpawnFailure, SpawnRequest, Spawned};
use crate::usage::{self, Usage};

/// Run the configured command to completion and report what happened. An `Err` is
/// cg-test's own failure before the command could start; a failure after it is an
/// `Outcome` with `status` OwnError (exit 125) and the `error`, so the report still
/// has the run. Everything the run started is gone either way.
pub fn run(cfg: &Config) -> Result<Outcome> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let run_id = RunId::new();
    let plan = SignalPlan::capture();
    let events = EventLoop::new(SignalSource::install(&plan)?);
    if platform::IS_LINUX && !cfg.forces(Compat::NoSubreaper) {
        platform::become_subreaper().context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let boundary = isolation::select(cfg, &run_id)?;
    let mut run = Run {
        cfg,
        run_id,
        plan,
        events,
        boundary,
        reaper: Reaper::new(),
        command: None,
        terminal: Terminal::detect(),
        tearing_down: false,
        skip_grace: false,
        leaked: Vec::new(),
        snapshots: Snapshots::new(cfg.report.is_some()),
        usage: Usage::default(),
    };
    let result = run.execute();
    let finished = run.finish();
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

/// How waiting for the command ended.
enum Ended {
    /// The command exited with this raw wait status.
    Exited(i32),
    /// The deadline passed.
    TimedOut,
    /// cg-test received this teardown signal.
    Interrupted(i32),
}

struct Run<'a> {
    cfg: &'a Config,
    run_id: RunId,
    plan: SignalPlan,
    events: EventLoop,
    boundary: Box<dyn Isolation>,
    reaper: Reaper,
    /// The command's pid (and process group), once it runs.
    command: Option<i32>,
    terminal: Terminal,
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
    fn execute(&mut self) -> Result<ExitStatus> {
        let pid = match self.spawn()? {
            Spawned::Running { pid } => pid,
            Spawned::Failed(f) => return spawn_failure_status(f),
        };
        self.command = Some(pid);
        self.boundary.adopt(pid);
        self.reaper.watch(pid);
        match self.wait_command(pid)? {
            Ended::Exited(raw) => {
                self.terminal.reclaim();
                let status = command_status(raw);
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
                    "timed out after {}; sending {} to every process of the run",
                    human(t),
                    signal_name(self.cfg.signal)
                );
                self.snapshots.arm(Cause::Timeout(t));
                self.ladder(self.cfg.signal)?;
                Ok(ExitStatus::TimedOut)
            }
            Ended::Interrupted(sig) => {
                crate::note!(
                    "received {}; forwarding it to every process of the run",
                    signal_name(sig)
                );
                self.snapshots.arm(Cause::Signal(sig));
                self.ladder(sig)?;
                Ok(ExitStatus::Interrupted(sig))
            }
        }
    }

    /// The spawn step. In auto mode, a leaf the child may not enter (a permission only
    /// the migration itself reveals) falls back to the pgroup strategy, before the
    /// command has run a single instruction.
    fn spawn(&mut self) -> Result<Spawned> {
        let spawned = self.spawn_once()?;
        if let Spawned::Failed(SpawnFailure::PlacementDenied(why)) = &spawned {
            if self.cfg.isolation == IsolationMode::Auto && self.boundary.kind() == "cgroup" {
                let why = Unavailable(why.clone());
                self.boundary.release()?;
                self.boundary = isolation::fallback(self.cfg, &self.run_id, &why);
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
            terminal: self.terminal.fd,
        })
    }

    /// The wait step: sleep until the command exits, the deadline passes, or a
    /// teardown signal arrives.
    fn wait_command(&mut self, pid: i32) -> Result<Ended> {
        let deadline = self.cfg.timeout.map(|t| Instant::now() + t);
        loop {
            self.reaper.reap();
            if let Some(raw) = self.reaper.command_status() {
                return Ok(Ended::Exited(raw));
            }
            if self.reaper.take_command_stopped() {
                self.terminal.suspend_with(pid);
            }
            let wake = self.events.wait(None, deadline)?;
            for sig in wake.signals {
                if let Some(sig) = self.on_signal(sig) {
                    return Ok(Ended::Interrupted(sig));
                }
            }
            if wake.deadline_passed {
                return Ok(Ended::TimedOut);
            }
        }
    }

    /// React to one signal. Returns the signal when it starts a teardown.
    fn on_signal(&mut self, sig: i32) -> Option<i32> {
        if TEARDOWN_SIGNALS.contains(&sig) {
            if self.tearing_down {
                crate::note!("received {} again; killing now", signal_name(sig));
                self.skip_grace = true;
                return None;
            }
            self.tearing_down = true;
            return Some(sig);
        }
        let running = self
            .command
            .filter(|_| self.reaper.command_status().is_none());
        if let (true, Some(command)) = (FORWARD_SIGNALS.contains(&sig), running) {
            // Without cg-test, `kill -USR1 <pid>` would reach the command alone; a
            // window-size change reaches the terminal's whole foreground group.
            let target = if sig == libc::SIGWINCH {
                Target::Group(command)
            } else {
                Target::Process(command)
            };
            send(target, sig);
        }
        None
    }

    /// After the command exited: give its descendants `--leak-timeout` to finish, then
    /// report and kill whoever is left. Returns a teardown signal received meanwhile.
    fn check_leaks(&mut self) -> Result<Option<i32>> {
        let until = Instant::now() + self.cfg.leak_timeout;
        let mut interrupted = None;
        while interrupted.is_none() {
            self.reaper.reap();
            if self.boundary.is_empty()? {
                return Ok(None);
            }
            if Instant::now() >= until {
                break;
            }
            let wake = self.wait_boundary(until)?;
            for sig in wake {
                if let Some(s) = self.on_signal(sig) {
                    interrupted = Some(s);
                }
            }
        }
        // Rows read before the freeze keep the true states (see crate::snapshot).
        let early = snapshot::read_before_freeze(self.boundary.as_mut());
        self.boundary.freeze()?;
        let members = self.boundary.members()?;
        self.leaked = snapshot::settle(early, &members, self.cfg.report.is_some());
        self.boundary.thaw()?;
        if interrupted.is_none() {
            let report_file = self.cfg.report.is_some();
            report::leaks(&self.leaked, &self.boundary.describe(), report_file);
        }
        self.ladder(interrupted.unwrap_or(self.cfg.signal))?;
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

    /// The kill ladder (see the module docs).
    fn ladder(&mut self, polite: i32) -> Result<()> {
        self.tearing_down = true;
        self.reaper.reap();
        if self.boundary.is_empty()? {
            return Ok(());
        }
        self.snapshots.before_freeze(self.boundary.as_mut());
        self.boundary.freeze()?;
        let members = self.boundary.members()?;
        self.snapshots.after_freeze(&members);
        crate::step!(
            "sending {} to {} process(es)",
            signal_name(polite),
            members.len()
        );
        for &pid in &members {
            send(Target::Process(pid), polite);
        }
        // A process stopped by job control would not act on the polite signal until
        // continued (GNU timeout does the same). Sent after every member has the
        // polite signal pending, so a continued member cannot fork a child that misses
        // it while the pgroup strategy's stop-the-world still holds the others.
        if polite != libc::SIGKILL && polite != libc::SIGCONT {
            for &pid in &members {
                send(Target::Process(pid), libc::SIGCONT);
            }
        }
        self.boundary.thaw()?;
        self.snapshots.show();
        self.grace()?;
        if self.boundary.is_empty()? {
            return Ok(());
        }
        self.boundary.freeze()?;
        let members = self.boundary.members()?;
        crate::step!("killing {} process(es): {members:?}", members.len());
        self.boundary.kill_frozen(&mut self.reaper)
    }

    /// Wait up to `--kill-after` for the run to empty by itself.
    fn grace(&mut self) -> Result<()> {
        let until = Instant::now() + self.cfg.kill_after;
        loop {
            self.reaper.reap();
            if self.skip_grace || self.boundary.is_empty()? || Instant::now() >= until {
                return Ok(());
            }
            for sig in self.wait_boundary(until)? {
                self.on_signal(sig);
            }
        }
    }

    /// Teardown that runs on every path: nothing alive, boundary removed, terminal
    /// back, children reaped.
    fn finish(&mut self) -> Result<()> {
        self.terminal.reclaim();
        let emptied = match self.boundary.is_empty() {
            Ok(true) => Ok(()),
            _ => self
                .boundary
                .freeze()
                .and_then(|()| self.boundary.kill_frozen(&mut self.reaper)),
        };
        self.reaper.reap();
        emptied?;
        self.usage = usage::collect(self.boundary.cgroup_dir());
        self.boundary
            .release()
            .with_context(|| format!("cleaning up {}", self.boundary.describe()))
    }
}

fn spawn_failure_status(f: SpawnFailure) -> Result<ExitStatus> {
    match f {
        SpawnFailure::NotFound(msg) => {
            report::line(format_args!("{msg}"));
            Ok(ExitStatus::NotFound)
        }
        SpawnFailure::NotExecutable(msg) => {
            report::line(format_args!("{msg}"));
            Ok(ExitStatus::NotExecutable)
        }
        SpawnFailure::PlacementDenied(msg) => Err(anyhow!("--isolation cgroup: {msg}")),
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

/// The controlling terminal, when cg-test was started in its foreground.
struct Terminal {
    fd: Option<RawFd>,
    own_group: libc::pid_t,
}

impl Terminal {
    /// If stdin is a terminal and our process group is its foreground group, the
    /// command's group will take the foreground (so Ctrl-C and prompts reach it).
    fn detect() -> Terminal {
        // SAFETY: isatty, tcgetpgrp and getpgrp only query.
        unsafe {
            let own_group = libc::getpgrp();
            let fd = (libc::isatty(0) == 1 && libc::tcgetpgrp(0) == own_group).then_some(0);
            Terminal { fd, own_group }
        }
    }

    /// Job control: the command was stopped (Ctrl-Z sends SIGTSTP to the foreground
    /// group, which is the command's). Take the terminal back and stop cg-test too, so
    /// the shell sees its job stopped and gets its prompt back; when the shell
    /// continues cg-test (`fg`), hand the terminal to the command's group again and
    /// continue it. Without a terminal, a stopped command simply stays stopped, as it
    /// would without cg-test.
    fn suspend_with(&self, command: i32) {
        if self.fd.is_none() {
            return;
        }
        self.reclaim();
        // SAFETY: stopping ourselves; SIGSTOP cannot be blocked or caught, and the shell
        // that started us continues us with SIGCONT.
        unsafe { libc::raise(libc::SIGSTOP) };
        if let Some(fd) = self.fd {
            // SAFETY: tcsetpgrp on our terminal, SIGTTOU blocked.
            unsafe { libc::tcsetpgrp(fd, command) };
        }
        send(Target::Group(command), libc::SIGCONT);
    }

    /// Give the terminal back to cg-test's group (SIGTTOU is blocked, so this works
    /// from the background). Idempotent.
    fn reclaim(&self) {
        if let Some(fd) = self.fd {
            // SAFETY: tcsetpgrp on the terminal we were started on.
            unsafe { libc::tcsetpgrp(fd, self.own_group) };
        }
    }
}
