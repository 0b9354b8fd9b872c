//! Isolation strategies: the boundary every process of a run lives inside, and the
//! primitive operations the kill ladder is built from.
//!
//! Two strategies implement [`Isolation`]:
//! - [`cgroup::CgroupLeaf`]: a fresh cgroup v2 leaf. The kernel tracks membership; a
//!   process cannot leave by forking, setsid or double-forking; freeze and kill are
//!   atomic over the whole subtree.
//! - [`pgroup::ProcessGroup`]: process group + child subreaper + a sweep for the run's
//!   environment token, for machines where no cgroup can be had.
//!
//! Resource limits ([`limits`]) are files of the cgroup leaf; the pgroup strategy has
//! none, so a run that asks for limits never falls back to it silently.
//!
//! The ladder itself (polite signal, grace, freeze, kill, confirm) is the supervisor's;
//! a strategy only offers the steps, each confirmed before it returns. This layer takes
//! its own [`Options`], never the command line's types, so it can be driven without
//! the CLI.

pub mod cgroup;
pub mod limits;
pub mod pgroup;

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};

use crate::namespaces::{InitRecord, NsInit};
use crate::run_id::RunId;
use crate::spawn::Placement;

pub use limits::{Limits, Policy};

/// Which strategy to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// A cgroup v2 leaf when one can be made and entered, else the pgroup fallback.
    #[default]
    Auto,
    /// A cgroup v2 leaf or an error.
    Cgroup,
    /// Process group + subreaper + token sweep.
    Pgroup,
}

/// What the isolation layer is asked to do. The front end (the CLI) builds it; nothing
/// here knows about command-line flags.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub mode: Mode,
    /// Spawn with fork and let the child write itself into `cgroup.procs` instead of
    /// clone3(CLONE_INTO_CGROUP) (kernels before 5.7, seccomp'd clone3).
    pub fork_spawn: bool,
    /// Kill each member of the frozen leaf instead of writing `cgroup.kill` (kernels
    /// before 5.14).
    pub signal_kill: bool,
    /// cg-test is a child subreaper (Linux), so every orphan of the run is its child.
    pub subreaper: bool,
    /// Test-only: every freeze gives up (the pgroup walk after one round), as one that
    /// never converges would; the kill must not depend on it.
    pub freeze_gives_up: bool,
    /// Leave stale leaves beside the new leaf alone instead of collecting them (for
    /// `cg-test doctor`, which must change nothing).
    pub keep_stale: bool,
    /// The flag that needs a cgroup leaf (`--harden`), named when none can be had;
    /// None: `--isolation cgroup` is what asked for it.
    pub leaf_required_by: Option<&'static str>,
    /// Resource limits for the run's leaf; None (no limit asked for) costs nothing.
    pub limits: Option<Limits>,
}

impl Options {
    /// What asked for a cgroup leaf, for the error when there is none.
    pub fn leaf_wanted_by(&self) -> &'static str {
        self.leaf_required_by.unwrap_or("--isolation cgroup")
    }

    /// Whether `auto` may fall back to the pgroup strategy: not when limits must be
    /// applied (`--limits strict`), since the fallback has none.
    pub fn may_fall_back(&self) -> bool {
        self.mode == Mode::Auto
            && self
                .limits
                .as_ref()
                .is_none_or(|l| l.policy == Policy::BestEffort)
    }
}

/// What every isolation strategy offers.
///
/// The kill never depends on a freeze: [`Isolation::freeze`] reports whether every
/// member is confirmed stopped (and notes it when not), the caller goes on either way,
/// and the strategy's own signalling takes care never to hit a reused pid.
pub trait Isolation {
    /// `cgroup` or `pgroup`.
    fn kind(&self) -> &'static str;

    /// The boundary in words, for messages (a leaf's path, a process group).
    fn describe(&self) -> String;

    /// The limits applied to the run (None: none asked for, or dropped by
    /// `--limits best-effort`).
    fn limits(&self) -> Option<&Limits> {
        None
    }

    /// What the watchdog must put back in cg-test's own cgroup if cg-test dies (the
    /// controllers the limits enabled, cg-test's own leaf).
    fn limits_undo(&self) -> Option<limits::Undo> {
        None
    }

    /// The descriptors whose `flock` tells `cg-test gc` (in any pid or time namespace)
    /// that this run is alive: the run's leaf, and cg-test's own leaf when the limits
    /// made one. The watchdog must hold them until its teardown is done, so that gc
    /// leaves alone what it is still tearing down or putting back.
    fn liveness_fds(&self) -> [Option<BorrowedFd<'_>>; 2] {
        [None, None]
    }

    /// How the spawn step must place the child.
    fn placement(&self) -> Placement<'_>;

    /// Tell the strategy the command's pid (its process group id too) once it runs.
    fn adopt(&mut self, pid: i32);

    /// A process of cg-test's own (its watchdog) that is cg-test's child but never a
    /// member of the run.
    fn ignore(&mut self, _pid: i32) {}

    /// `--pid-ns`: the init of the run's pid namespace, cg-test's child and the
    /// command's parent. Never a member itself; the run's orphans reparent to it, so
    /// its children are members as cg-test's own are. (A leaf needs nothing: the init
    /// is outside it.)
    fn adopt_init(&mut self, _pid: i32) {}

    /// A descriptor whose POLLPRI means membership may have changed; None when
    /// SIGCHLD is the event (the pgroup strategy).
    fn event_fd(&self) -> Option<BorrowedFd<'_>>;

    /// How often to re-check emptiness when no event can say so (None: events suffice).
    fn poll_interval(&self) -> Option<Duration>;

    /// True when no process of the run is left alive.
    fn is_empty(&mut self) -> Result<bool>;

    /// Stop every process of the run, so the member list cannot change and nobody can
    /// fork. True when that is confirmed; a freeze that fails or gives up is noted and
    /// returns false, and the caller goes on.
    fn freeze(&mut self) -> bool;

    /// Let frozen processes run again (a failure is noted).
    fn thaw(&mut self);

    /// True while the last freeze was confirmed and nothing thawed the run since (for
    /// the pgroup strategy: cg-test sent no SIGCONT). With no grace to give, the kill
    /// then needs no second freeze.
    fn holds_frozen(&self) -> bool {
        false
    }

    /// The processes of the run (stable only while frozen).
    fn members(&mut self) -> Result<Vec<i32>>;

    /// Send each signal in turn to `pids`, members read by [`Isolation::members`] since
    /// the last freeze (all of them get the first signal before any gets the second);
    /// returns how many were signalled. Never signals a pid that may have been reused
    /// since it was read: directly only while the freeze holds, otherwise each pid is
    /// first pinned (pidfd) and confirmed to be a member still.
    fn signal(&mut self, pids: &[i32], signals: &[i32]) -> Result<usize>;

    /// Kill every process of the run and return once none is left, whether or not the
    /// run is frozen. Reaps what it can through `reaper`.
    fn kill_all(&mut self, reaper: &mut Reaper) -> Result<()>;

    /// Remove the boundary itself (rmdir the leaf) once the run is empty. May be called
    /// again after it failed; the last call is the Drop backstop's.
    fn release(&mut self) -> Result<()>;

    /// The leaf's directory, where the run's usage files are (cgroup mode only).
    fn cgroup_dir(&self) -> Option<&Path> {
        None
    }
}

/// The boundary could not be set up here; the reason names what failed and how to fix
/// it. `auto` turns this into a note and falls back; `--isolation cgroup` into exit 125.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Choose and set up the run's boundary.
pub fn select(opts: &Options, run_id: &RunId) -> Result<Box<dyn Isolation>> {
    if opts.mode == Mode::Pgroup {
        if let Some(l) = &opts.limits {
            // The CLI refuses this combination first; a library caller gets the same.
            return Err(anyhow!(
                "{}: limits need a cgroup v2 leaf, and --isolation pgroup has none",
                l.flags()
            ));
        }
        return Ok(Box::new(pgroup::ProcessGroup::new(run_id, opts)));
    }
    match cgroup::CgroupLeaf::create(opts, run_id) {
        Ok(leaf) => Ok(Box::new(leaf)),
        Err(cgroup::CreateError::Limits(msg)) => Err(anyhow!(msg)),
        Err(cgroup::CreateError::Unavailable(u)) if opts.mode == Mode::Cgroup => {
            Err(anyhow!("{}: {u}", opts.leaf_wanted_by()))
        }
        Err(cgroup::CreateError::Unavailable(u)) if !opts.may_fall_back() => {
            let flags = opts.limits.as_ref().map(Limits::flags).unwrap_or_default();
            Err(anyhow!(
                "{flags}: limits need a cgroup v2 leaf, and none can be had here: {u}; or pass \
                 --limits best-effort to run without limits"
            ))
        }
        Err(cgroup::CreateError::Unavailable(u)) => Ok(fallback(opts, run_id, &u)),
    }
}

/// The pgroup strategy after cgroup isolation turned out unusable, with the one note
/// that says why (and, for `--limits best-effort`, the warning that the run goes on
/// without its limits).
pub fn fallback(opts: &Options, run_id: &RunId, why: &Unavailable) -> Box<dyn Isolation> {
    let p = pgroup::ProcessGroup::new(run_id, opts);
    crate::note!("{why}; using {}", p.describe_mode());
    if let Some(l) = &opts.limits {
        limits::warn_no_leaf(l, "the process-group fallback");
    }
    Box::new(p)
}

/// Whom a signal is for. Typed so that a process group is never a bare negative
/// integer (`kill(-pgid)`) that a sign slip could turn into something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Process(i32),
    Group(i32),
}

/// Send `sig` to `target`; a target that is already gone is not an error.
pub fn send(target: Target, sig: i32) {
    let pid = match target {
        Target::Process(p) if p > 0 => p,
        Target::Group(g) if g > 1 => -g,
        // Never signal pid 0, -1 or our own group by accident.
        _ => return,
    };
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, sig) };
}

/// Reaps cg-test's children (the command, and orphans that reparent to cg-test as
/// subreaper), keeps the command's own wait status, and notices when cg-test's own
/// helper (the watchdog) exits. With `--pid-ns` the command is the child of the
/// namespace's init, which is cg-test's child: its status comes from the init's
/// reports.
#[derive(Default)]
pub struct Reaper {
    command: Option<i32>,
    status: Option<i32>,
    command_stopped: bool,
    helper: Option<i32>,
    helper_exited: bool,
    helper_status: Option<i32>,
    init: Option<NsInit>,
    init_exited: bool,
}

impl Reaper {
    pub fn new() -> Reaper {
        Reaper::default()
    }

    /// Start watching for this pid's status.
    pub fn watch(&mut self, pid: i32) {
        self.command = Some(pid);
    }

    /// A child of cg-test's own that lives for the whole run (the watchdog): `reap_all`
    /// does not wait for it, and its exit is remembered so that its pid is never
    /// signalled after it may have been reused.
    pub fn watch_helper(&mut self, pid: i32) {
        self.helper = Some(pid);
        self.helper_exited = false;
        self.helper_status = None;
    }

    /// `--pid-ns`: the command (`pid`, as cg-test sees it) is the child of this init;
    /// its status comes from the init's reports. The init is cg-test's child for the
    /// whole run, like the watchdog; if it dies before reporting the command's end, the
    /// namespace died with it and its status is the command's.
    pub fn watch_via_init(&mut self, pid: i32, init: NsInit) {
        self.command = Some(pid);
        self.init = Some(init);
        self.init_exited = false;
    }

    fn read_init_reports(&mut self) {
        let Some(init) = self.init.as_mut() else {
            return;
        };
        for rec in init.read_records() {
            match rec {
                InitRecord::Exited(raw) => {
                    self.status.get_or_insert(raw);
                }
                InitRecord::Stopped => self.command_stopped = true,
                InitRecord::Spawned { .. } => {}
            }
        }
    }

    /// Reap every child that has exited, without blocking. Returns true while cg-test
    /// still has children. Also notes when the command was stopped by job control
    /// (Ctrl-Z), which [`Reaper::take_command_stopped`] reports once.
    pub fn reap(&mut self) -> bool {
        self.read_init_reports();
        let init = self.live_init();
        // Under --pid-ns the command is not our child: a child of ours with its pid
        // can only be something else.
        let command = self.command.filter(|_| self.init.is_none());
        loop {
            let mut status = 0;
            // SAFETY: waitpid on any child with WNOHANG.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::WUNTRACED) };
            match pid {
                0 => return true,
                p if p > 0 && libc::WIFSTOPPED(status) => {
                    if Some(p) == command {
                        self.command_stopped = true;
                    }
                }
                p if p > 0 => {
                    if Some(p) == command {
                        self.status = Some(status);
                    }
                    if Some(p) == self.helper {
                        self.helper_exited = true;
                        self.helper_status = Some(status);
                    }
                    if Some(p) == init {
                        self.init_exited = true;
                        self.read_init_reports();
                        self.status.get_or_insert(status);
                    }
                }
                _ => {
                    let err = std::io::Error::last_os_error();
                    if err.kind() != std::io::ErrorKind::Interrupted {
                        return false; // ECHILD: no children left.
                    }
                }
            }
        }
    }

    /// Reap until cg-test has no children left but its helper, or `limit` passes. Used
    /// after a kill, when every other child is already dead or dying: a process leaves
    /// its cgroup (`populated 0`) a moment before it becomes a reapable zombie.
    pub fn reap_all(&mut self, limit: Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        while self.reap() && !self.only_helper_left() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            crate::platform::wait_child_event(left);
        }
        true
    }

    /// True when the one child left is the live helper. Where the system cannot list a
    /// process's children (neither Linux nor macOS), this cannot be told, and a live
    /// helper makes `reap_all` wait out its limit.
    fn only_helper_left(&self) -> bool {
        let helpers = [self.live_helper(), self.live_init()];
        helpers.iter().any(Option::is_some)
            && crate::platform::child_pids()
                .is_some_and(|c| c.iter().all(|p| helpers.contains(&Some(*p))))
    }

    /// The `--pid-ns` init's pid while it has not been reaped (so the pid is its own).
    pub fn live_init(&self) -> Option<i32> {
        self.init
            .as_ref()
            .map(NsInit::pid)
            .filter(|_| !self.init_exited)
    }

    /// The `--pid-ns` init's report pipe, for the event loop to wake on.
    pub fn init_reports(&self) -> Option<BorrowedFd<'_>> {
        self.init.as_ref().and_then(NsInit::status_fd)
    }

    /// SIGKILL the `--pid-ns` init: the kernel then kills every process of its
    /// namespace. True if it was alive to be killed. It is reaped as any child.
    pub fn kill_init(&mut self) -> bool {
        match self.live_init() {
            Some(pid) => {
                send(Target::Process(pid), libc::SIGKILL);
                true
            }
            None => false,
        }
    }

    /// The run is over: kill the `--pid-ns` init (and so whatever might still be in its
    /// namespace) and reap it.
    pub fn dismiss_init(&mut self) {
        if let Some(pid) = self.live_init() {
            send(Target::Process(pid), libc::SIGKILL);
            let mut status = 0;
            // SAFETY: waiting for our own child, which was just killed.
            while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
            }
            self.init_exited = true;
        }
        self.init = None;
    }

    /// Whether the command was stopped by a signal since the last call.
    pub fn take_command_stopped(&mut self) -> bool {
        std::mem::take(&mut self.command_stopped)
    }

    /// The command's raw wait status, once reaped.
    pub fn command_status(&self) -> Option<i32> {
        self.status
    }

    /// The helper's pid while it has not been reaped (so the pid is still its own).
    pub fn live_helper(&self) -> Option<i32> {
        self.helper.filter(|_| !self.helper_exited)
    }

    /// Whether the helper exited since `watch_helper`.
    pub fn helper_exited(&self) -> bool {
        self.helper.is_some() && self.helper_exited
    }

    /// The helper's raw wait status, once it was reaped.
    pub fn helper_status(&self) -> Option<i32> {
        self.helper_status
    }
}

/// Signal pids that were read while the run was *not* frozen, without ever hitting a
/// process that was given one of those pids after a member exited: pin each pid with a
/// pidfd first, then ask `still_members` for the member list again and signal (through
/// the pidfd) only the pinned pids it still lists. A pinned process that is listed now
/// is the member; one that died since reaches nobody. Returns how many were signalled,
/// or None where pidfds are missing (before Linux 5.3, other systems): the caller then
/// decides.
pub fn signal_pinned(
    pids: &[i32],
    signals: &[i32],
    still_members: impl FnOnce() -> Result<std::collections::HashSet<i32>>,
) -> Result<Option<usize>> {
    let mut pinned = Vec::with_capacity(pids.len());
    for &pid in pids {
        match crate::platform::Pidfd::open(pid) {
            Ok(fd) => pinned.push((pid, fd)),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(_) => return Ok(None),
        }
    }
    let listed = still_members()?;
    pinned.retain(|(pid, _)| listed.contains(pid));
    for &sig in signals {
        for (_, fd) in &pinned {
            let _ = fd.send(sig);
        }
    }
    Ok(Some(pinned.len()))
}
