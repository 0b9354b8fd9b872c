//! The fallback strategy where no cgroup can be had: process group + child subreaper +
//! environment-token sweep.
//!
//! Membership is computed from the process table, never from names:
//! - every descendant of cg-test (on Linux cg-test is a child subreaper, so orphans
//!   of the run, setsid'ed or double-forked, reparent to it and stay descendants),
//!   except cg-test's own watchdog;
//! - every process whose environment holds this run's `CG_TEST_RUN_ID=<id>` entry
//!   (this catches what escaped the tree where there is no subreaper), and their
//!   descendants;
//! - every process in the command's process group, but only while that group is
//!   provably the run's: while the command is unreaped (its pid, which is the group's
//!   id, cannot be reused), or while a process known to be a member by the rules
//!   above belongs to it (a group cannot be recreated while it has a member). Once
//!   the group is empty and the command reaped, its number may belong to an unrelated
//!   new session, which cg-test must never stop or kill.
//!
//! Without a cgroup there is no atomic freeze, so "freeze" is a stop-the-world walk:
//! SIGSTOP every member, wait until each is really stopped, walk again, until a walk
//! finds nobody new. A stopped process cannot fork, so the set converges even against
//! a process that keeps forking into fresh sessions. The kill is then SIGKILL to each
//! stopped member, and a reap.
//!
//! There is no event for "a non-child died", so where cg-test is not a subreaper the
//! waits re-check the table every [`POLL_INTERVAL`]; with a subreaper SIGCHLD is the
//! event.

use std::collections::HashSet;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::{Isolation, Options, Reaper};
use crate::platform::{self, ProcInfo};
use crate::run_id::{self, RunId};
use crate::spawn::Placement;

/// Re-check interval for waits that have no event (no subreaper).
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Stop-the-world rounds before giving up on convergence.
const MAX_ROUNDS: usize = 200;
/// How long one round waits for its SIGSTOPs to take effect.
const STOP_LIMIT: Duration = Duration::from_secs(1);
/// How long the kill may take to empty the run.
const KILL_LIMIT: Duration = Duration::from_secs(10);

pub struct ProcessGroup {
    token: Vec<u8>,
    subreaper: bool,
    /// The command's pid, which is also its process group's id.
    pgid: Option<i32>,
    /// cg-test's own helpers (the watchdog): children, never members. Kept with their
    /// start time, so a run process that is later given a dead helper's pid is not
    /// mistaken for it.
    ignored: Vec<(i32, Option<u64>)>,
    stopped: HashSet<i32>,
    /// The last freeze converged and nothing has thawed the run since.
    frozen: bool,
    freeze_gives_up: bool,
}

impl ProcessGroup {
    /// The strategy for this run. `opts.subreaper` says cg-test is (or will be made) a
    /// child subreaper; the supervisor does that at start on Linux.
    pub fn new(run_id: &RunId, opts: &Options) -> ProcessGroup {
        ProcessGroup {
            token: format!("{}={run_id}", run_id::ENV_VAR).into_bytes(),
            subreaper: opts.subreaper,
            pgid: None,
            ignored: Vec::new(),
            stopped: HashSet::new(),
            frozen: false,
            freeze_gives_up: opts.freeze_gives_up,
        }
    }

    /// The mode in words, for the fallback note.
    pub fn describe_mode(&self) -> &'static str {
        if self.subreaper {
            "process group + subreaper + token sweep"
        } else {
            "process group + token sweep (no subreaper)"
        }
    }

    /// The current members (see the module docs).
    ///
    /// `on_member` sees each pid the moment it is recognised, so the freeze can stop a
    /// short-lived process before it is replaced: the token is checked first (one read
    /// of /proc/<pid>/environ), newest pids first, and only then the slower stat.
    fn scan(&self, mut on_member: impl FnMut(i32)) -> Vec<ProcInfo> {
        let me = std::process::id() as i32;
        let mut members: Vec<ProcInfo> = Vec::new();
        let mut others: Vec<ProcInfo> = Vec::new();
        let mut command_held = false;
        for pid in platform::process_ids() {
            if pid == me || self.is_ignored(pid) {
                continue;
            }
            let carries_token = platform::environ_has(pid, &self.token);
            if carries_token {
                on_member(pid);
            }
            let Some(p) = platform::process_info(pid) else {
                continue;
            };
            // The command's pid is held (alive or a zombie we have not reaped) as long
            // as a child of ours has it: after the command is reaped, a child of ours
            // with that pid can only be an orphan of the run.
            if Some(pid) == self.pgid && p.ppid == me {
                command_held = true;
            }
            if p.zombie {
                continue;
            }
            if carries_token || p.ppid == me {
                if !carries_token {
                    on_member(pid);
                }
                members.push(p);
            } else {
                others.push(p);
            }
        }
        if let Some(group) = self.pgid {
            if command_held || members.iter().any(|m| m.pgid == group) {
                let (in_group, rest): (Vec<ProcInfo>, Vec<ProcInfo>) =
                    others.into_iter().partition(|p| p.pgid == group);
                others = rest;
                for p in in_group {
                    on_member(p.pid);
                    members.push(p);
                }
            }
        }
        // Descendants of members that carry no token (they cleared their environment)
        // and sit outside the group: settle them until nothing more is adopted.
        let mut known: HashSet<i32> = members.iter().map(|p| p.pid).collect();
        loop {
            let (adopted, rest): (Vec<ProcInfo>, Vec<ProcInfo>) =
                others.into_iter().partition(|p| known.contains(&p.ppid));
            others = rest;
            if adopted.is_empty() {
                return members;
            }
            for p in adopted {
                known.insert(p.pid);
                on_member(p.pid);
                members.push(p);
            }
        }
    }

    fn is_ignored(&self, pid: i32) -> bool {
        self.ignored
            .iter()
            .any(|&(p, start)| p == pid && platform::process_start_time(pid as u32) == start)
    }

    fn member_pids(&self) -> Vec<i32> {
        self.scan(|_| {}).into_iter().map(|p| p.pid).collect()
    }

    /// Send each signal in turn to `pids`, members found by the latest scan.
    fn signal_pids(&self, pids: &[i32], signals: &[i32]) -> Result<usize> {
        if !self.frozen {
            // Some members may still run (and exit, and have their pid reused) between
            // the scan and the signal: pin them first where pidfds exist.
            let relisted = || Ok(self.member_pids().into_iter().collect());
            if let Some(n) = super::signal_pinned(pids, signals, relisted)? {
                return Ok(n);
            }
        }
        // Frozen (every member stopped, so none can exit by itself), or no pidfds on
        // this system: signal the pids as read.
        for &sig in signals {
            for &pid in pids {
                send(pid, sig);
            }
        }
        Ok(pids.len())
    }

    /// Wait until every pid in `pids` is stopped (or gone), bounded.
    fn wait_stopped(&self, pids: &HashSet<i32>) {
        let until = Instant::now() + STOP_LIMIT;
        while Instant::now() < until {
            let running = pids
                .iter()
                .filter_map(|&pid| platform::process_info(pid))
                .any(|p| !p.stopped && !p.zombie);
            if !running {
                return;
            }
            // SIGSTOP takes effect when the target next returns to user space; there is
            // no event for that, so this wait polls briefly.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Signal a member found by a scan during the stop-the-world walk (the walk stops it
/// the moment it is seen).
fn send(pid: i32, sig: i32) {
    super::send(super::Target::Process(pid), sig);
}

impl Isolation for ProcessGroup {
    fn kind(&self) -> &'static str {
        "pgroup"
    }

    fn describe(&self) -> String {
        match self.pgid {
            Some(g) => format!("{} (group {g})", self.describe_mode()),
            None => self.describe_mode().to_string(),
        }
    }

    fn placement(&self) -> Placement<'_> {
        Placement::Anywhere
    }

    fn adopt(&mut self, pid: i32) {
        self.pgid = Some(pid);
    }

    fn ignore(&mut self, pid: i32) {
        self.ignored
            .push((pid, platform::process_start_time(pid as u32)));
    }

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn poll_interval(&self) -> Option<Duration> {
        (!self.subreaper).then_some(POLL_INTERVAL)
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.scan(|_| {}).is_empty())
    }

    fn freeze(&mut self) -> bool {
        // Stop members as they are found; done after two walks in a row find nobody
        // new once everything found is confirmed stopped (a stopped process cannot
        // fork, so a third walk could only find what the first two missed by racing).
        let rounds = if self.freeze_gives_up { 1 } else { MAX_ROUNDS };
        let mut quiet_walks = 0;
        for _ in 0..rounds {
            let mut new = HashSet::new();
            let mut stopped = std::mem::take(&mut self.stopped);
            self.scan(|pid| {
                if stopped.insert(pid) {
                    send(pid, libc::SIGSTOP);
                    new.insert(pid);
                }
            });
            self.stopped = stopped;
            if new.is_empty() {
                quiet_walks += 1;
                if quiet_walks == 2 {
                    self.frozen = true;
                    return true;
                }
            } else {
                quiet_walks = 0;
                self.wait_stopped(&new);
            }
        }
        crate::note!(
            "the run's processes kept appearing after {rounds} stop-the-world round(s){}; \
             going on without a complete freeze",
            if self.freeze_gives_up {
                " (forced by --compat freeze-gives-up)"
            } else {
                ""
            }
        );
        self.frozen = false;
        false
    }

    fn thaw(&mut self) {
        self.frozen = false;
        for pid in self.stopped.drain() {
            send(pid, libc::SIGCONT);
        }
    }

    fn members(&mut self) -> Result<Vec<i32>> {
        Ok(self.member_pids())
    }

    fn signal(&mut self, pids: &[i32], signals: &[i32]) -> Result<usize> {
        self.signal_pids(pids, signals)
    }

    fn kill_all(&mut self, reaper: &mut Reaper) -> Result<()> {
        let until = Instant::now() + KILL_LIMIT;
        loop {
            let members = self.member_pids();
            if members.is_empty() {
                break;
            }
            if Instant::now() >= until {
                return Err(anyhow!(
                    "processes {members:?} survived SIGKILL for {KILL_LIMIT:?}"
                ));
            }
            self.signal_pids(&members, &[libc::SIGKILL])?;
            // Our children (with a subreaper: every orphan too) become zombies to reap;
            // others turn into zombies of their new parent, which the scan skips.
            if reaper.reap_all(POLL_INTERVAL) {
                // No children to wait for: the dying members are someone else's.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.stopped.clear();
        self.frozen = false;
        reaper.reap();
        Ok(())
    }

    fn release(&mut self) -> Result<()> {
        Ok(())
    }
}
