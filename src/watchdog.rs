//! The watchdog: what tears the run down when cg-test itself is killed.
//!
//! cg-test starts it after the boundary exists and before the command starts. It is a
//! fork of cg-test (memory of its own: see below) in a session of its own (so `kill -9
//! -PGID` of cg-test's process group or session, or a terminal hangup, does not reach
//! it), outside the run's leaf, with every signal blocked, the lowest `oom_score_adj`
//! the kernel lets it set, stdin and stdout on /dev/null, `/` as its directory, and no
//! descriptor but its stderr, the read end of a close-on-exec pipe whose only write
//! end cg-test holds, and those the boundary asks it to keep (`Watch::held`). It
//! sleeps in `read` and costs nothing while the run goes on.
//!
//! Why a fork, with memory of its own: the kernel's OOM killer kills every process
//! that shares the victim's memory, and before Linux 5.16 a core-dumping signal
//! (SIGSEGV, SIGABRT) did the same. A watchdog that shared cg-test's memory died with
//! it in exactly the cases it is for. cg-test is single-threaded when it forks (see
//! `supervisor::run`), so the child may run ordinary Rust code: no lock can be held by
//! a thread that does not exist in the child. The cost is the fork's copy of the page
//! tables and, while the watchdog lives, a copy-on-write fault for each page cg-test
//! writes (docs/DESIGN.md).
//!
//! `read` returns end-of-file only when every write end is closed: when cg-test is gone,
//! whatever killed it (SIGKILL, the OOM killer, SIGSEGV, a CI runner killing its
//! process group). The watchdog then does what cg-test's own teardown would have done,
//! at once and without the polite round: freeze, kill and remove the leaf (with what a
//! nested run made below it), then a stop-the-world sweep for the run's
//! `CG_TEST_RUN_ID` token (the pgroup mode's processes, and any process that moved out
//! of the leaf), puts back what the run's limits changed in cg-test's own cgroup (the
//! controllers cg-test enabled there, if no other limited run uses them; itself back
//! out of cg-test's own leaf, which it then removes), and exits.
//!
//! When the run ends normally, cg-test SIGKILLs the watchdog and reaps it before
//! exiting (it is cg-test's child), so it never acts on a run that is already torn
//! down and never outlives cg-test. If something else kills it during the run, cg-test
//! (its parent, told by SIGCHLD) starts a new one at once (`supervisor`). The command
//! cannot see it: the pipe is close-on-exec, and the command's process group and
//! session are its own.
//!
//! With `--report FILE`, the watchdog writes the report cg-test could not write (so a
//! previous run's file is never mistaken for this one's): outcome `error`, and what it
//! killed. cg-test tells it apart from an exit of its own, where it writes its report
//! itself and the watchdog only retries a teardown that failed: dropping the handle
//! (any exit cg-test lives to make) first writes one byte into the pipe; a cg-test
//! that is killed writes nothing.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

use crate::isolation::{self, cgroup, limits, pgroup::ProcessGroup, Isolation, Options, Reaper};
use crate::platform;
use crate::report::json;
use crate::run_id::RunId;

/// What the watchdog tears down if cg-test dies.
#[derive(Clone, Debug)]
pub struct Watch {
    /// cg-test's pid, for the watchdog's message.
    pub supervisor: i32,
    /// The run's leaf, if it has one.
    pub leaf: Option<PathBuf>,
    /// The run's id (its token is `CG_TEST_RUN_ID=<id>`).
    pub run_id: RunId,
    pub opts: Options,
    /// What the limits changed in cg-test's own cgroup. The watchdog is born in
    /// cg-test's own leaf when cg-test moved there, and moves itself back.
    pub limits: Option<limits::Undo>,
    /// `--report FILE`: where to write the report if cg-test is killed.
    pub report: Option<ReportSpec>,
    /// The run's liveness locks (see [`Isolation::liveness_fds`]): the leaf's
    /// directory and cg-test's own leaf's, as descriptors of cg-test, which the forked
    /// watchdog inherits with the same numbers. It keeps these open file descriptions,
    /// and so their `flock`, until its teardown is done, restoring controllers and
    /// writing the report included: `cg-test gc` in any pid or time namespace then
    /// leaves alone what it is still tearing down. The leaf's is also how it reaches
    /// the leaf, whatever happened to the mount cg-test made it through. Every other
    /// descriptor it inherits is closed.
    pub held: [Option<RawFd>; 2],
}

/// What the watchdog needs to write the report of a run whose cg-test was killed.
#[derive(Clone, Debug)]
pub struct ReportSpec {
    pub path: PathBuf,
    pub command: Vec<OsString>,
    pub started_at: SystemTime,
    pub started: Instant,
    pub isolation: &'static str,
}

/// The byte cg-test writes before it closes the pipe on an exit of its own.
const EXITING: u8 = b'x';

/// cg-test's handle on its watchdog: the pid, and the pipe's write end.
pub struct Watchdog {
    pid: i32,
    _pipe: OwnedFd,
}

impl Watchdog {
    /// Fork the watchdog. cg-test must be single-threaded (see `supervisor::run`): the
    /// child then runs ordinary code on its own copy of cg-test's memory.
    pub fn start(watch: &Watch) -> Result<Watchdog> {
        let (read, write) = platform::cloexec_pipe().context("pipe2 for the watchdog")?;
        // Block every signal around the fork: the child keeps them all blocked (no
        // teardown signal, terminal signal or handler of ours may run in it).
        // SAFETY: sigprocmask on sigsets we own; fork in a single-threaded process,
        // whose child never returns into cg-test's frames (`child` exits).
        let forked = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut before: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigprocmask(libc::SIG_BLOCK, &all, &mut before);
            let pid = libc::fork();
            if pid == 0 {
                drop(write);
                child(read, watch);
            }
            let forked = if pid < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(pid)
            };
            libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
            forked
        };
        let pid = forked.context("fork for the watchdog")?;
        drop(read);
        crate::step!("watchdog pid {pid} started");
        Ok(Watchdog { pid, _pipe: write })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The run is torn down and its boundary removed: stop the watchdog without letting
    /// it act, and reap it, so it never outlives cg-test.
    pub fn dismiss(self, reaper: &mut Reaper) {
        // Only a pid the reaper has not reaped is still the watchdog's.
        if reaper.live_helper() == Some(self.pid) {
            isolation::send(isolation::Target::Process(self.pid), libc::SIGKILL);
            let mut status = 0;
            // SAFETY: waiting for our own child, which was just killed.
            while unsafe { libc::waitpid(self.pid, &mut status, 0) } < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
            }
        }
    }
}

impl Drop for Watchdog {
    /// cg-test is exiting on its own (whatever the path): say so before the pipe closes,
    /// so the watchdog retries the teardown if there is anything left but leaves the
    /// report to cg-test. A dismissed watchdog is dead already; the write then fails
    /// with EPIPE (SIGPIPE is blocked in cg-test), which is fine.
    fn drop(&mut self) {
        // SAFETY: a one-byte write to our own pipe.
        unsafe { libc::write(self._pipe.as_raw_fd(), [EXITING].as_ptr().cast(), 1) };
    }
}

/// The watchdog process. Never returns; never unwinds into the frames it shares with
/// the cg-test it was forked from (their destructors would tear down the live run).
fn child(read: OwnedFd, watch: &Watch) -> ! {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let keep: Vec<RawFd> = watch.held.iter().flatten().copied().collect();
        let pipe = detach(read, &keep);
        lower_oom_score_adj();
        if let Some(killed) = wait_for_end_of_file(pipe) {
            tear_down(watch, killed);
        }
    }));
    // SAFETY: leave without running anything of the parent's.
    unsafe { libc::_exit(0) }
}

/// Its own session, `/` as its directory, /dev/null for stdin and stdout, and nothing
/// open but stderr, the pipe (whose descriptor is returned) and `keep`.
fn detach(read: OwnedFd, keep: &[RawFd]) -> RawFd {
    let pipe = read.into_raw_fd();
    // SAFETY: plain syscalls on descriptors and state of this process alone.
    unsafe {
        libc::setsid();
        libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
        }
    }
    let mut kept = keep.to_vec();
    kept.push(pipe);
    platform::close_fds_except(3, &kept);
    pipe
}

/// Lower this process's `oom_score_adj` as far as the kernel lets it, so that the OOM
/// killer that took cg-test does not take its watchdog next (it is born with cg-test's
/// score, which a CI runner may have raised). Returns the value set.
fn lower_oom_score_adj() -> Option<i32> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/proc/self/oom_score_adj")
        .ok()?;
    let current: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // Each write is parsed on its own, whatever the file offset.
    Some(lowest_accepted(current, |v| {
        file.write_all(v.to_string().as_bytes()).is_ok()
    }))
}

/// The lowest `oom_score_adj` that `set` is allowed to set, starting from `current`.
/// -1000 needs CAP_SYS_RESOURCE; without it the kernel refuses (EACCES) anything below
/// the process's oom_score_adj_min, which /proc does not show, so the lowest accepted
/// value is found by bisection between -1000 (refused) and `current` (a dozen writes
/// at most). A refused write changes nothing, so the last accepted value stands.
fn lowest_accepted(current: i32, mut set: impl FnMut(i32) -> bool) -> i32 {
    const MIN: i32 = -1000;
    if set(MIN) {
        return MIN;
    }
    let (mut refused, mut accepted) = (MIN, current);
    while accepted - refused > 1 {
        let mid = refused + (accepted - refused) / 2;
        if set(mid) {
            accepted = mid;
        } else {
            refused = mid;
        }
    }
    accepted
}

/// Sleep in `read` until every write end is closed. On end-of-file, whether cg-test
/// was killed (true) or exited on its own (false, it wrote [`EXITING`] first); None if
/// the descriptor is unusable (then there is nothing to watch, and nothing is done).
fn wait_for_end_of_file(pipe: RawFd) -> Option<bool> {
    let mut buf = [0u8; 16];
    let mut exiting = false;
    loop {
        // SAFETY: reading into our buffer.
        let n = unsafe { libc::read(pipe, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        match n {
            0 => return Some(!exiting),
            n if n > 0 => exiting |= buf[..n as usize].contains(&EXITING),
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
}

/// cg-test is gone: kill the run, remove its leaf, say so in one line, and write the
/// report cg-test could not write if it was killed.
fn tear_down(w: &Watch, killed_supervisor: bool) {
    let mut killed: Vec<(i32, String)> = Vec::new();
    let mut removed = None;
    if let Some(leaf) = &w.leaf {
        // Through the descriptor cg-test made the leaf with where there is one: the
        // path may lead nowhere now (a mount unmounted lazily under the run), and an
        // ENOENT there is no proof the leaf is gone.
        let held = w.held[0].map(|fd| {
            // SAFETY: the descriptor is ours, kept open until we exit; we use a copy.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()
        });
        let collected = match held {
            Some(Ok(fd)) => cgroup::collect_dir(
                crate::cgroupfs::DirFd::from_owned(fd, leaf.clone()),
                &w.opts,
                false,
            ),
            Some(Err(e)) => Err(anyhow::anyhow!(
                "duplicating the descriptor of {} cg-test passed on: {e}",
                leaf.display()
            )),
            None => cgroup::collect_leaf(leaf, &w.opts, false),
        };
        match collected {
            Ok(c) => {
                killed.extend(c.processes);
                if c.removed {
                    removed = Some(leaf);
                }
            }
            Err(e) => crate::note!("watchdog: {e:#}"),
        }
    }
    // The token sweep: everything of the run outside the leaf (the pgroup mode, or a
    // process that moved itself out). Nothing here is the watchdog's child, so there
    // is no subreaper to lean on: the no-subreaper algorithm.
    let mut sweep = ProcessGroup::new(
        &w.run_id,
        &Options {
            subreaper: false,
            ..w.opts.clone()
        },
    );
    if !sweep.is_empty().unwrap_or(true) {
        sweep.freeze();
        if let Ok(pids) = sweep.members() {
            killed.extend(
                pids.into_iter()
                    .map(|p| (p, platform::cmdline(p).unwrap_or_else(|| "?".into()))),
            );
        }
        if let Err(e) = sweep.kill_all(&mut Reaper::new()) {
            crate::note!("watchdog: {e:#}");
        }
    }
    // Only after the run's leaf is gone: the controllers, and cg-test's own leaf.
    let restored = w
        .limits
        .as_ref()
        .and_then(|u| match limits::restore_after_death(u) {
            Ok(r) => r.describe(u),
            Err(e) => {
                crate::note!("watchdog: {e:#}");
                None
            }
        });
    let what = format!(
        "killed {} process(es) of its run{}{}",
        killed.len(),
        removed
            .map(|l| format!(" and removed {}", l.display()))
            .unwrap_or_default(),
        restored
            .as_ref()
            .map(|r| format!("; {r}"))
            .unwrap_or_default()
    );
    if let (true, Some(spec)) = (killed_supervisor, &w.report) {
        write_report(w, spec, &what);
    }
    if killed.is_empty() && removed.is_none() && restored.is_none() {
        return;
    }
    for (pid, cmd) in &killed {
        crate::step!("watchdog: killed pid {pid} ({cmd})");
    }
    crate::report::line(format_args!(
        "watchdog: cg-test (pid {}) is gone; {what}",
        w.supervisor
    ));
}

/// The report of a run whose cg-test was killed: outcome `error`, and what the
/// watchdog did.
fn write_report(w: &Watch, spec: &ReportSpec, what: &str) {
    let facts = json::RunFacts {
        run_id: w.run_id.to_string(),
        isolation: spec.isolation,
        boundary: w.leaf.clone(),
    };
    let error = format!(
        "cg-test (pid {}) died before it could report (it was killed); its watchdog {what}",
        w.supervisor
    );
    let wall = spec.started.elapsed();
    if let Err(e) = json::write_failure(
        &spec.path,
        &spec.command,
        Some(&facts),
        spec.started_at,
        wall,
        &error,
    ) {
        crate::report::error(&e.context("watchdog"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bisection finds the kernel's floor (oom_score_adj_min) whatever it is, in at
    /// most a dozen writes, and leaves the score there.
    #[test]
    fn the_lowest_accepted_oom_score_adj_is_the_floor() {
        for (current, floor) in [(1000, 0), (1000, -1000), (0, 0), (500, -317), (-3, -4)] {
            let (mut score, mut writes) = (current, 0);
            let got = lowest_accepted(current, |v| {
                writes += 1;
                let ok = v >= floor;
                if ok {
                    score = v;
                }
                ok
            });
            assert_eq!(
                (got, score),
                (floor, floor),
                "from {current}, floor {floor}"
            );
            assert!(writes <= 12, "{writes} writes");
        }
        // A current value below the floor (set through the legacy oom_adj): kept.
        assert_eq!(lowest_accepted(-10, |v| v >= 0), -10);
    }
}
