//! The watchdog: what tears the run down when cg-test itself is killed.
//!
//! cg-test starts it after the boundary exists and before the command starts. It is a
//! process of its own in a session of its own (so `kill -9 -PGID` of cg-test's process
//! group or session, or a terminal hangup, does not reach it), outside the run's leaf,
//! with every signal blocked, stdin and stdout on /dev/null, and no descriptor but its
//! stderr and the read end of a close-on-exec pipe whose only write end cg-test holds.
//! It sleeps in `read` and costs nothing while the run goes on.
//!
//! On Linux x86_64 it starts in cg-test's memory (clone3 with CLONE_VM, no copy of
//! the page tables, no copy-on-write) and runs only raw system calls on data prepared
//! for it until end-of-file, then execs cg-test for the teardown (`teardown_main`), so
//! it never touches a heap or lock that a killed cg-test may have left mid-change.
//! Elsewhere it is a fork, which does the teardown in place.
//!
//! `read` returns end-of-file only when every write end is closed: when cg-test is gone,
//! whatever killed it (SIGKILL, the OOM killer, a CI runner killing its process
//! group). The watchdog then does what cg-test's own teardown would have done, at
//! once and without the polite round: freeze, kill and remove the leaf (with what a
//! nested run made below it), then a stop-the-world sweep for the run's
//! `CG_TEST_RUN_ID` token (the pgroup mode's processes, and any process that moved out
//! of the leaf), and exits.
//!
//! When the run ends normally, cg-test SIGKILLs the watchdog and reaps it before
//! exiting (it is cg-test's child), so it never acts on a run that is already torn
//! down and never outlives cg-test. The command cannot see it: the pipe is
//! close-on-exec, and the command's process group and session are its own.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::isolation::{self, cgroup, pgroup::ProcessGroup, Isolation, Options, Reaper};
use crate::platform;
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
}

/// cg-test's handle on its watchdog: the pid, and the pipe's write end.
pub struct Watchdog {
    pid: i32,
    _pipe: OwnedFd,
    /// The stack of a watchdog that shares cg-test's memory, unmapped once it is
    /// reaped.
    stack: Option<platform::WatchdogStack>,
}

/// The first argument of the teardown a watchdog execs when cg-test is gone (see
/// [`teardown_main`]); not an option a user types.
pub const TEARDOWN_ARG: &str = "--cg-test-watchdog-teardown";

impl Watchdog {
    /// Start the watchdog. cg-test must be single-threaded (see `supervisor::run`).
    ///
    /// Where it can (Linux on x86_64), the watchdog shares cg-test's memory until it
    /// is needed (`platform::start_watchdog`): that costs no copy of cg-test's page
    /// tables and no copy-on-write fault afterwards, a few hundred microseconds of
    /// every run's start-up (BENCHMARKS.md). Elsewhere it is a fork.
    pub fn start(watch: &Watch) -> Result<Watchdog> {
        let (read, write) = platform::cloexec_pipe().context("pipe2 for the watchdog")?;
        // Prepared before the watchdog starts, never freed: it reads them until it
        // execs, possibly after cg-test is gone (a few hundred bytes per run).
        let exec: &'static platform::WatchdogExec = Box::leak(Box::new(exec_for(
            watch,
            read.as_raw_fd(),
            write.as_raw_fd(),
        )));
        // Block every signal around the start: the child keeps them all blocked (no
        // teardown signal, terminal signal or handler of ours may run in it).
        // SAFETY: sigprocmask on sigsets we own; fork in a single-threaded process.
        let (pid, stack) = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut before: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigprocmask(libc::SIG_BLOCK, &all, &mut before);
            let started = match platform::start_watchdog(exec) {
                Ok(Some((pid, stack))) => (pid, Some(stack)),
                Ok(None) => {
                    let pid = libc::fork();
                    if pid == 0 {
                        drop(write);
                        child(read, watch);
                    }
                    (pid, None)
                }
                Err(e) => {
                    libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
                    return Err(e).context("clone3 for the watchdog");
                }
            };
            libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
            started
        };
        if pid < 0 {
            return Err(std::io::Error::last_os_error()).context("fork for the watchdog");
        }
        drop(read);
        crate::step!("watchdog pid {pid} started");
        Ok(Watchdog {
            pid,
            _pipe: write,
            stack,
        })
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
        // Reaped (here, or by the reaper after someone else killed it): nothing runs
        // on its stack any more.
        if let Some(stack) = self.stack {
            stack.release();
        }
    }
}

/// The exec'd watchdog's arguments: what [`teardown_main`] needs to rebuild the
/// [`Watch`], all prepared before the watchdog starts.
fn exec_for(w: &Watch, read: i32, write: i32) -> platform::WatchdogExec {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |b: &[u8]| CString::new(b).unwrap_or_default();
    let verbosity = if crate::report::shows_steps() {
        "v"
    } else if crate::report::shows_notes() {
        "n"
    } else {
        "q"
    };
    let flags = format!(
        "{}{}",
        if w.opts.signal_kill { "k" } else { "-" },
        if w.opts.freeze_gives_up { "g" } else { "-" }
    );
    let leaf = w
        .leaf
        .as_ref()
        .map(|l| l.as_os_str().as_bytes().to_vec())
        .unwrap_or_default();
    let mut strings = vec![
        c(b"cg-test"),
        c(TEARDOWN_ARG.as_bytes()),
        c(w.supervisor.to_string().as_bytes()),
        c(w.run_id.leaf_name().as_bytes()),
        c(flags.as_bytes()),
        c(verbosity.as_bytes()),
    ];
    if !leaf.is_empty() {
        strings.push(c(&leaf));
    }
    let argc = strings.len();
    strings.extend(std::env::vars_os().filter_map(|(k, v)| {
        let mut e = k.as_bytes().to_vec();
        e.push(b'=');
        e.extend_from_slice(v.as_bytes());
        CString::new(e).ok()
    }));
    let ptrs = |s: &[CString]| {
        s.iter()
            .map(|x| x.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    platform::WatchdogExec {
        read,
        write,
        dev_null: c(b"/dev/null"),
        root: c(b"/"),
        exe: c(b"/proc/self/exe"),
        argv: ptrs(&strings[..argc]),
        envp: ptrs(&strings[argc..]),
        strings,
    }
}

/// `cg-test --cg-test-watchdog-teardown PID LEAF-NAME FLAGS VERBOSITY [LEAF]`: what a
/// watchdog that shared cg-test's memory execs once cg-test is gone, so the teardown
/// runs with memory of its own (see [`Watchdog::start`]). Exit 0 either way.
pub fn teardown_main(args: &[std::ffi::OsString]) -> crate::exit::ExitStatus {
    use crate::cli::Verbosity;
    let text = |i: usize| args.get(i).and_then(|a| a.to_str()).unwrap_or("");
    crate::report::set_verbosity(match text(3) {
        "v" => Verbosity::Verbose,
        "n" => Verbosity::Normal,
        _ => Verbosity::Quiet,
    });
    let Some(run_id) = RunId::from_leaf_name(text(1)) else {
        crate::report::line(format_args!("watchdog: bad run id {:?}", text(1)));
        return crate::exit::ExitStatus::Exited(0);
    };
    let flags = text(2);
    let watch = Watch {
        supervisor: text(0).parse().unwrap_or(0),
        leaf: args.get(4).map(PathBuf::from),
        run_id,
        opts: Options {
            signal_kill: flags.contains('k'),
            freeze_gives_up: flags.contains('g'),
            ..Options::default()
        },
    };
    tear_down(&watch);
    crate::exit::ExitStatus::Exited(0)
}

/// The watchdog process. Never returns; never unwinds into the frames it shares with
/// the cg-test it was forked from (their destructors would tear down the live run).
fn child(read: OwnedFd, watch: &Watch) -> ! {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        detach(read);
        if wait_for_end_of_file() {
            tear_down(watch);
        }
    }));
    // SAFETY: leave without running anything of the parent's.
    unsafe { libc::_exit(0) }
}

/// Its own session, `/` as its directory, /dev/null for stdin and stdout, the pipe as
/// fd 3, and nothing else open but stderr.
fn detach(read: OwnedFd) {
    // SAFETY: plain syscalls on descriptors and state of this process alone.
    unsafe {
        libc::setsid();
        libc::chdir(c"/".as_ptr());
        let pipe = libc::fcntl(read.as_raw_fd(), libc::F_DUPFD, 10);
        drop(read);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
        }
        libc::dup2(pipe, 3);
        platform::close_fds_from(4);
    }
}

/// Sleep in `read` until every write end is closed. True on end-of-file; false if the
/// descriptor is unusable (then there is nothing to watch, and nothing is done).
fn wait_for_end_of_file() -> bool {
    let mut buf = [0u8; 16];
    loop {
        // SAFETY: reading into our buffer.
        let n = unsafe { libc::read(3, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        match n {
            0 => return true,
            n if n > 0 => {}
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
}

/// cg-test is gone: kill the run, remove its leaf, say so in one line.
fn tear_down(w: &Watch) {
    let mut killed: Vec<(i32, String)> = Vec::new();
    let mut removed = None;
    if let Some(leaf) = &w.leaf {
        match cgroup::collect_leaf(leaf, &w.opts, false) {
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
    if killed.is_empty() && removed.is_none() {
        return;
    }
    for (pid, cmd) in &killed {
        crate::step!("watchdog: killed pid {pid} ({cmd})");
    }
    crate::report::line(format_args!(
        "watchdog: cg-test (pid {}) is gone; killed {} process(es) of its run{}",
        w.supervisor,
        killed.len(),
        removed
            .map(|l| format!(" and removed {}", l.display()))
            .unwrap_or_default()
    ));
}
