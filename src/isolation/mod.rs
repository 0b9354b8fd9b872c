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
//! The ladder itself (polite signal, grace, freeze, kill, confirm) is the supervisor's;
//! a strategy only offers the steps, each confirmed before it returns.

pub mod cgroup;
pub mod pgroup;

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};

use crate::cli::{Compat, Config, IsolationMode};
use crate::run_id::RunId;
use crate::spawn::Placement;

/// What every isolation strategy offers.
pub trait Isolation {
    /// `cgroup` or `pgroup`.
    fn kind(&self) -> &'static str;

    /// The boundary in words, for messages (a leaf's path, a process group).
    fn describe(&self) -> String;

    /// How the spawn step must place the child.
    fn placement(&self) -> Placement<'_>;

    /// Tell the strategy the command's pid (its process group id too) once it runs.
    fn adopt(&mut self, pid: i32);

    /// A descriptor whose POLLPRI means membership may have changed; None when
    /// SIGCHLD is the event (the pgroup strategy).
    fn event_fd(&self) -> Option<BorrowedFd<'_>>;

    /// How often to re-check emptiness when no event can say so (None: events suffice).
    fn poll_interval(&self) -> Option<Duration>;

    /// True when no process of the run is left alive.
    fn is_empty(&mut self) -> Result<bool>;

    /// Stop every process of the run; returns once they are all stopped, so that the
    /// member list cannot change and nobody can fork.
    fn freeze(&mut self) -> Result<()>;

    /// Let frozen processes run again.
    fn thaw(&mut self) -> Result<()>;

    /// The processes of the run (stable only while frozen).
    fn members(&mut self) -> Result<Vec<i32>>;

    /// Kill every process of the run (the caller has frozen it) and return once none is
    /// left. Reaps what it can through `reaper`.
    fn kill_frozen(&mut self, reaper: &mut Reaper) -> Result<()>;

    /// Remove the boundary itself (rmdir the leaf). Called exactly once per run, on
    /// every path, after the run is empty.
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
pub fn select(cfg: &Config, run_id: &RunId) -> Result<Box<dyn Isolation>> {
    match cfg.isolation {
        IsolationMode::Pgroup => Ok(Box::new(pgroup_for(cfg, run_id))),
        IsolationMode::Cgroup => match cgroup::CgroupLeaf::create(cfg, run_id) {
            Ok(leaf) => Ok(Box::new(leaf)),
            Err(u) => Err(anyhow!("--isolation cgroup: {u}")),
        },
        IsolationMode::Auto => match cgroup::CgroupLeaf::create(cfg, run_id) {
            Ok(leaf) => Ok(Box::new(leaf)),
            Err(u) => Ok(fallback(cfg, run_id, &u)),
        },
    }
}

/// The pgroup strategy after cgroup isolation turned out unusable, with the one note
/// that says why.
pub fn fallback(cfg: &Config, run_id: &RunId, why: &Unavailable) -> Box<dyn Isolation> {
    let p = pgroup_for(cfg, run_id);
    crate::note!("{why}; using {}", p.describe_mode());
    Box::new(p)
}

fn pgroup_for(cfg: &Config, run_id: &RunId) -> pgroup::ProcessGroup {
    pgroup::ProcessGroup::new(
        run_id,
        !cfg.forces(Compat::NoSubreaper) && crate::platform::IS_LINUX,
    )
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
/// subreaper) and keeps the command's own wait status.
pub struct Reaper {
    command: Option<i32>,
    status: Option<i32>,
    command_stopped: bool,
}

impl Reaper {
    pub fn new() -> Reaper {
        Reaper {
            command: None,
            status: None,
            command_stopped: false,
        }
    }

    /// Start watching for this pid's status.
    pub fn watch(&mut self, pid: i32) {
        self.command = Some(pid);
    }

    /// Reap every child that has exited, without blocking. Returns true while cg-test
    /// still has children. Also notes when the command was stopped by job control
    /// (Ctrl-Z), which [`Reaper::take_command_stopped`] reports once.
    pub fn reap(&mut self) -> bool {
        loop {
            let mut status = 0;
            // SAFETY: waitpid on any child with WNOHANG.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::WUNTRACED) };
            match pid {
                0 => return true,
                p if p > 0 && libc::WIFSTOPPED(status) => {
                    if Some(p) == self.command {
                        self.command_stopped = true;
                    }
                }
                p if p > 0 => {
                    if Some(p) == self.command {
                        self.status = Some(status);
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

    /// Reap until cg-test has no children left, or `limit` passes. Used after a kill,
    /// when every remaining child is already dead or dying: a process leaves its cgroup
    /// (`populated 0`) a moment before it becomes a reapable zombie.
    pub fn reap_all(&mut self, limit: Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        while self.reap() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            crate::platform::wait_child_event(left);
        }
        true
    }

    /// Whether the command was stopped by a signal since the last call.
    pub fn take_command_stopped(&mut self) -> bool {
        std::mem::take(&mut self.command_stopped)
    }

    /// The command's raw wait status, once reaped.
    pub fn command_status(&self) -> Option<i32> {
        self.status
    }
}

impl Default for Reaper {
    fn default() -> Self {
        Reaper::new()
    }
}
