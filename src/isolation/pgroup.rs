//! The fallback strategy where no cgroup can be had: process group + child subreaper +
//! environment-token sweep.
//!
//! Membership is computed from the process table, never from names:
//! - every descendant of cg-test (on Linux cg-test is a child subreaper, so orphans
//!   of the run, setsid'ed or double-forked, reparent to it and stay descendants);
//! - every process in the command's process group;
//! - every process whose environment holds this run's `CG_TEST_RUN_ID=<id>` entry
//!   (this catches what escaped the tree where there is no subreaper), and their
//!   descendants.
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

use std::collections::{HashMap, HashSet};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::{Isolation, Reaper};
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
    pgid: Option<i32>,
    stopped: HashSet<i32>,
}

impl ProcessGroup {
    /// The strategy for this run. `subreaper` says cg-test is (or will be made) a child
    /// subreaper; the supervisor does that at start on Linux.
    pub fn new(run_id: &RunId, subreaper: bool) -> ProcessGroup {
        ProcessGroup {
            token: format!("{}={run_id}", run_id::ENV_VAR).into_bytes(),
            subreaper,
            pgid: None,
            stopped: HashSet::new(),
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

    /// Whether cg-test must become a subreaper for this strategy.
    pub fn wants_subreaper(&self) -> bool {
        self.subreaper
    }

    /// The current members: live processes that descend from cg-test, share the
    /// command's process group, or carry the token, plus their descendants.
    fn scan(&self) -> Vec<ProcInfo> {
        let table = platform::processes();
        let me = std::process::id() as i32;
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for p in &table {
            children.entry(p.ppid).or_default().push(p.pid);
        }
        let mut roots: Vec<i32> = vec![me];
        roots.extend(
            table
                .iter()
                .filter(|p| p.pid != me)
                .filter(|p| Some(p.pgid) == self.pgid || platform::environ_has(p.pid, &self.token))
                .map(|p| p.pid),
        );
        let mut found: HashSet<i32> = HashSet::new();
        while let Some(pid) = roots.pop() {
            if found.insert(pid) {
                roots.extend(children.get(&pid).into_iter().flatten().copied());
            }
        }
        found.remove(&me);
        table
            .into_iter()
            .filter(|p| found.contains(&p.pid) && !p.zombie)
            .collect()
    }

    /// Wait until every pid in `pids` is stopped (or gone), bounded.
    fn wait_stopped(&self, pids: &[i32]) {
        let until = Instant::now() + STOP_LIMIT;
        let pending: HashSet<i32> = pids.iter().copied().collect();
        while Instant::now() < until {
            let table = platform::processes();
            let running = table
                .iter()
                .any(|p| pending.contains(&p.pid) && !p.stopped && !p.zombie);
            if !running {
                return;
            }
            // SIGSTOP takes effect when the target next returns to user space; there is
            // no event for that, so this wait polls briefly.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Signal a member found by the latest scan (a stopped member cannot exit, so its pid
/// cannot be reused under us).
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

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn poll_interval(&self) -> Option<Duration> {
        (!self.subreaper).then_some(POLL_INTERVAL)
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.scan().is_empty())
    }

    fn freeze(&mut self) -> Result<()> {
        for _ in 0..MAX_ROUNDS {
            let new: Vec<i32> = self
                .scan()
                .into_iter()
                .map(|p| p.pid)
                .filter(|pid| !self.stopped.contains(pid))
                .collect();
            if new.is_empty() {
                return Ok(());
            }
            for &pid in &new {
                send(pid, libc::SIGSTOP);
                self.stopped.insert(pid);
            }
            self.wait_stopped(&new);
        }
        Err(anyhow!(
            "the run's processes kept appearing after {MAX_ROUNDS} stop-the-world rounds"
        ))
    }

    fn thaw(&mut self) -> Result<()> {
        for pid in self.stopped.drain() {
            send(pid, libc::SIGCONT);
        }
        Ok(())
    }

    fn members(&mut self) -> Result<Vec<i32>> {
        Ok(self.scan().into_iter().map(|p| p.pid).collect())
    }

    fn kill_frozen(&mut self, reaper: &mut Reaper) -> Result<()> {
        let until = Instant::now() + KILL_LIMIT;
        loop {
            let members = self.scan();
            if members.is_empty() {
                break;
            }
            if Instant::now() >= until {
                let pids: Vec<i32> = members.iter().map(|p| p.pid).collect();
                return Err(anyhow!(
                    "processes {pids:?} survived SIGKILL for {KILL_LIMIT:?}"
                ));
            }
            for p in &members {
                send(p.pid, libc::SIGKILL);
            }
            // Our children (with a subreaper: every orphan too) become zombies to reap;
            // others vanish from the table once their own parent reaps them.
            reaper.reap_all(POLL_INTERVAL);
        }
        self.stopped.clear();
        reaper.reap();
        Ok(())
    }

    fn release(&mut self) -> Result<()> {
        Ok(())
    }
}
