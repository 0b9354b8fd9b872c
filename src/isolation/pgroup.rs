//! The fallback strategy where no cgroup can be had: process group + child subreaper +
//! environment-token sweep.
//!
//! Membership is computed from the kernel's process records, never from names. Where
//! cg-test is a child subreaper (Linux, always, unless `--compat no-subreaper`), the
//! members are simply cg-test's descendants, except its own watchdog: every process
//! the run starts, setsid'ed or double-forked, reparents to cg-test when its parent
//! dies and so stays in cg-test's subtree. They are found by walking that subtree
//! through `/proc/<pid>/task/<tid>/children`, which costs two small reads per member
//! whatever else runs on the machine. (A process that joined the command's process
//! group from outside the run, which only a process of the same session that was not
//! started by the run can do, is not a descendant and is no longer counted; see
//! docs/DESIGN.md.)
//!
//! Without a subreaper (other systems, `--compat no-subreaper`, and cg-test's watchdog,
//! which sweeps after cg-test died), or where the kernel lists no children
//! (CONFIG_PROC_CHILDREN unset), the whole process table is read instead:
//! - every descendant of cg-test (its children, and theirs), except its watchdog;
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
/// How long a SIGSTOP may take before it is sent again (see `wait_stopped`).
const RESTOP_INTERVAL: Duration = Duration::from_millis(5);
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
    /// `--pid-ns`: the namespace's init (with its start time, as `ignored`): never a
    /// member, but the run's orphans are its children.
    inits: Vec<(i32, Option<u64>)>,
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
            inits: Vec::new(),
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

    /// The current members (see the module docs): with a subreaper, a walk of
    /// cg-test's subtree; without one (or where the kernel lists no children), the
    /// sweep of the whole process table.
    fn scan(&self, mut on_member: impl FnMut(i32)) -> Vec<ProcInfo> {
        if self.subreaper {
            if let Some(members) = self.walk_tree(&mut on_member) {
                return members;
            }
        }
        self.sweep_table(on_member)
    }

    /// The members as every descendant of cg-test, but not its watchdog or a pid
    /// namespace's init: with cg-test a
    /// child subreaper, every process the run starts stays in cg-test's subtree
    /// (orphans, setsid'ed and double-forked daemons reparent to it), so the rest of
    /// the machine need not be read. Two files per member (`stat`, and the children
    /// list of its one thread, or of each thread), however many processes the host
    /// runs. None where the kernel has no children lists.
    fn walk_tree(&self, on_member: &mut impl FnMut(i32)) -> Option<Vec<ProcInfo>> {
        let me = std::process::id() as i32;
        // cg-test forks from its one thread (see supervisor::run).
        let mut queue = platform::process_children(me, 1)?;
        let mut members = Vec::new();
        while let Some(pid) = queue.pop() {
            if self.is_ignored(pid) {
                continue;
            }
            let Some(p) = platform::process_info(pid) else {
                continue; // gone since its parent's list was read
            };
            if p.zombie {
                continue; // dead; its children, if any, reparent to a subreaper
            }
            if self.is_init(pid) {
                // --pid-ns: the namespace's init is never a member; its children (the
                // command, the orphans it reaps) are.
                queue.extend(platform::process_children(pid, p.threads)?);
                continue;
            }
            on_member(pid);
            queue.extend(platform::process_children(pid, p.threads)?);
            members.push(p);
        }
        Some(members)
    }

    /// The members from the whole process table (see the module docs).
    ///
    /// `on_member` sees each pid the moment it is recognised, so the freeze can stop a
    /// short-lived process before it is replaced: the token is checked first (one read
    /// of /proc/<pid>/environ), newest pids first, and only then the slower stat.
    fn sweep_table(&self, mut on_member: impl FnMut(i32)) -> Vec<ProcInfo> {
        let me = std::process::id() as i32;
        let mut members: Vec<ProcInfo> = Vec::new();
        let mut others: Vec<ProcInfo> = Vec::new();
        let mut command_held = false;
        // cg-test and, under --pid-ns, the namespace's init: whose children are the
        // run's (as subreapers, or the namespace's reaper), themselves never members.
        let is_reaper = |pid: i32| pid == me || self.is_init(pid);
        for pid in platform::process_ids() {
            if is_reaper(pid) || self.is_ignored(pid) {
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
            if Some(pid) == self.pgid && is_reaper(p.ppid) {
                command_held = true;
            }
            if p.zombie {
                continue;
            }
            if carries_token || is_reaper(p.ppid) {
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
        same_process(&self.ignored, pid)
    }

    fn is_init(&self, pid: i32) -> bool {
        same_process(&self.inits, pid)
    }

    fn member_pids(&self) -> Vec<i32> {
        self.scan(|_| {}).into_iter().map(|p| p.pid).collect()
    }

    /// No member left, confirmed: a tree walk that found nobody is repeated once, since
    /// a process reparented while the children lists were read (its parent exited
    /// between the read of its new parent's list and of its old one's) is missed by
    /// that one walk but not by the next.
    fn confirmed_empty(&self) -> bool {
        self.scan(|_| {}).is_empty() && self.confirm_empty()
    }

    /// After a scan found nobody: true unless a second walk finds someone.
    fn confirm_empty(&self) -> bool {
        !self.subreaper || self.scan(|_| {}).is_empty()
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

    /// Wait until every pid in `pids` is stopped (or gone), bounded. A SIGSTOP can be
    /// undone before it takes effect: when cg-test dies, a process group of the run
    /// whose parent was cg-test becomes orphaned, and the kernel sends every member of
    /// an orphaned group that has a stopped member SIGHUP and SIGCONT, which discards
    /// a pending SIGSTOP (seen: the watchdog waited the whole limit for a TERM- and
    /// HUP-ignoring process that ran on). So a process still running after a few
    /// milliseconds is sent SIGSTOP again.
    fn wait_stopped(&self, pids: &HashSet<i32>) {
        let until = Instant::now() + STOP_LIMIT;
        let mut resend = Instant::now() + RESTOP_INTERVAL;
        while Instant::now() < until {
            let running: Vec<i32> = pids
                .iter()
                .filter_map(|&pid| platform::process_info(pid))
                // A process in an uninterruptible sleep counts as stopped: its SIGSTOP
                // is pending, so it runs no code of its own (and forks nothing) before
                // it stops, and the next round's scan sees whatever a fork it was in
                // made. Waiting for it could take the whole limit: a vfork parent
                // whose child the round stopped before its exec never wakes.
                .filter(|p| !p.stopped && !p.zombie && !p.uninterruptible)
                .map(|p| p.pid)
                .collect();
            if running.is_empty() {
                return;
            }
            if Instant::now() >= resend {
                for &pid in &running {
                    send(pid, libc::SIGSTOP);
                }
                resend = Instant::now() + RESTOP_INTERVAL;
            }
            // SIGSTOP takes effect when the target next returns to user space; there is
            // no event for that, so this wait polls briefly.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Where the run is a whole pid namespace, kill it whole before the member-by-member
/// kill (which then only confirms): that reaches even a process that escaped the tree
/// and cleared its environment, which a scan cannot recognise.
/// - cg-test is the init of its pid namespace (a container's PID 1): `kill(-1,
///   SIGKILL)` reaches every process of the namespace but cg-test itself. (cg-test
///   starts no watchdog there, so none of its own helpers is hit; a `--pid-ns` init is,
///   and its namespace dies with it.)
/// - `--pid-ns`: SIGKILL to the namespace's init, which the kernel follows by killing
///   every process in the namespace.
fn kill_namespace(reaper: &mut Reaper) {
    if platform::is_pid_ns_init() {
        crate::step!(
            "kill(-1, SIGKILL): cg-test is the init of its pid namespace, so this reaches \
             every process in it"
        );
        // SAFETY: kill has no memory effects; -1 is meant (every process we may signal
        // in our namespace, which as its init is all of them but us).
        unsafe { libc::kill(-1, libc::SIGKILL) };
    } else if let Some(init) = reaper.live_init() {
        reaper.kill_init();
        crate::step!(
            "SIGKILL to the pid namespace's init (pid {init}): the kernel kills every \
             process in the namespace"
        );
    }
}

/// Is `pid` one of the remembered processes (pid and start time, so a process that was
/// later given the same pid is not mistaken for it)?
fn same_process(list: &[(i32, Option<u64>)], pid: i32) -> bool {
    list.iter()
        .any(|&(p, start)| p == pid && platform::process_start_time(pid as u32) == start)
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

    fn adopt_init(&mut self, pid: i32) {
        self.inits
            .push((pid, platform::process_start_time(pid as u32)));
    }

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    fn poll_interval(&self) -> Option<Duration> {
        // Under --pid-ns the run's processes are the init's children, not ours: their
        // deaths send cg-test no SIGCHLD.
        (!self.subreaper || !self.inits.is_empty()).then_some(POLL_INTERVAL)
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.confirmed_empty())
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

    fn holds_frozen(&self) -> bool {
        self.frozen
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
        kill_namespace(reaper);
        let until = Instant::now() + KILL_LIMIT;
        loop {
            let members = self.member_pids();
            if members.is_empty() && self.confirm_empty() {
                break;
            }
            if Instant::now() >= until {
                return Err(anyhow!(
                    "processes {members:?} survived SIGKILL for {KILL_LIMIT:?} \
                     (uninterruptible sleep? see `ps -o pid,stat,wchan -p PID`)"
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
        crate::phases::end("kill");
        self.stopped.clear();
        self.frozen = false;
        reaper.reap();
        Ok(())
    }

    fn release(&mut self) -> Result<()> {
        Ok(())
    }
}
