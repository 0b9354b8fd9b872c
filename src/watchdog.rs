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
//! of the leaf), puts back what the run's limits changed in cg-test's own cgroup (the
//! controllers cg-test enabled there, if no other limited run uses them; itself back
//! out of cg-test's own leaf, which it then removes), and exits.
//!
//! When the run ends normally, cg-test SIGKILLs the watchdog and reaps it before
//! exiting (it is cg-test's child), so it never acts on a run that is already torn
//! down and never outlives cg-test. The command cannot see it: the pipe is
//! close-on-exec, and the command's process group and session are its own.
//!
//! With `--report FILE`, the watchdog writes the report cg-test could not write (so a
//! previous run's file is never mistaken for this one's): outcome `error`, and what it
//! killed. cg-test tells it apart from an exit of its own, where it writes its report
//! itself and the watchdog only retries a teardown that failed: dropping the handle
//! (any exit cg-test lives to make) first writes one byte into the pipe; a cg-test
//! that is killed writes nothing.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
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
    pub fn dismiss(mut self, reaper: &mut Reaper) {
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
        if let Some(stack) = self.stack.take() {
            stack.release();
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

/// The exec'd watchdog's arguments: what [`teardown_main`] needs to rebuild the
/// [`Watch`], all prepared before the watchdog starts. Two argument vectors that differ
/// in one word: which one the watchdog execs says whether cg-test was killed or wrote
/// [`EXITING`] first.
fn exec_for(w: &Watch, read: i32, write: i32) -> platform::WatchdogExec {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |b: &[u8]| CString::new(b).unwrap_or_default();
    let path = |p: Option<&PathBuf>| c(p.map(|p| p.as_os_str().as_bytes()).unwrap_or_default());
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
    let limits = w.limits.as_ref();
    let report = w.report.as_ref();
    let started_at = report
        .and_then(|r| r.started_at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    // The run's start on CLOCK_MONOTONIC (the clock of Instant), for the report's wall
    // time in the exec'd process.
    let started_mono = report.map_or(0, |r| {
        monotonic_now().saturating_sub(r.started.elapsed().as_nanos())
    });
    let mut strings = vec![
        c(b"cg-test"),
        c(TEARDOWN_ARG.as_bytes()),
        c(b"killed"),
        c(b"exiting"),
        c(w.supervisor.to_string().as_bytes()),
        c(w.run_id.leaf_name().as_bytes()),
        c(flags.as_bytes()),
        c(verbosity.as_bytes()),
        path(w.leaf.as_ref()),
        path(limits.map(|u| &u.parent)),
        path(limits.and_then(|u| u.supervisor.as_ref())),
        c(limits
            .map(|u| u.enabled_here.join(","))
            .unwrap_or_default()
            .as_bytes()),
        path(report.map(|r| &r.path)),
        c(started_at.to_string().as_bytes()),
        c(started_mono.to_string().as_bytes()),
        c(report.map_or("", |r| r.isolation).as_bytes()),
    ];
    if let Some(r) = report {
        strings.extend(r.command.iter().map(|a| c(a.as_bytes())));
    }
    let argc = strings.len();
    strings.extend(std::env::vars_os().filter_map(|(k, v)| {
        let mut e = k.as_bytes().to_vec();
        e.push(b'=');
        e.extend_from_slice(v.as_bytes());
        CString::new(e).ok()
    }));
    let argv = |which: usize| -> Vec<*const libc::c_char> {
        (0..argc)
            .filter(|&i| i != which)
            .map(|i| strings[i].as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (killed, exiting) = (argv(3), argv(2));
    let envp = strings[argc..]
        .iter()
        .map(|x| x.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    platform::WatchdogExec {
        read,
        write,
        dev_null: c(b"/dev/null"),
        root: c(b"/"),
        exe: c(b"/proc/self/exe"),
        exiting_byte: EXITING,
        argv: killed,
        argv_exiting: exiting,
        envp,
        strings,
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
fn monotonic_now() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into our timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// `cg-test --cg-test-watchdog-teardown killed|exiting PID LEAF-NAME FLAGS VERBOSITY
/// LEAF LIMITS-PARENT LIMITS-SUPERVISOR LIMITS-ENABLED REPORT STARTED-AT STARTED-MONO
/// ISOLATION COMMAND...` (empty words for what the run does not have): what a watchdog
/// that shared cg-test's memory execs once cg-test is gone, so the teardown runs with
/// memory of its own (see [`Watchdog::start`]). Exit 0 either way.
pub fn teardown_main(args: &[OsString]) -> crate::exit::ExitStatus {
    match parse_teardown(args) {
        Ok((watch, killed, verbosity)) => {
            crate::report::set_verbosity(verbosity);
            tear_down(&watch, killed);
        }
        Err(e) => crate::report::line(format_args!("watchdog: {e}")),
    }
    crate::exit::ExitStatus::Exited(0)
}

/// The teardown's arguments (after [`TEARDOWN_ARG`]), in the order [`exec_for`] writes
/// them: the [`Watch`], whether cg-test was killed, and the verbosity.
fn parse_teardown(args: &[OsString]) -> Result<(Watch, bool, crate::cli::Verbosity), String> {
    use crate::cli::Verbosity;
    let mut words = args.iter();
    let mut word = || words.next().cloned().unwrap_or_default();
    let text = |w: OsString| w.to_string_lossy().into_owned();
    let path = |w: OsString| (!w.is_empty()).then(|| PathBuf::from(w));
    let killed = text(word()) == "killed";
    let supervisor = text(word()).parse().unwrap_or(0);
    let leaf_name = text(word());
    let flags = text(word());
    let verbosity = match text(word()).as_str() {
        "v" => Verbosity::Verbose,
        "n" => Verbosity::Normal,
        _ => Verbosity::Quiet,
    };
    let leaf = path(word());
    let (parent, supervisor_leaf, enabled) = (path(word()), path(word()), text(word()));
    let limits = parent.map(|parent| limits::Undo {
        parent,
        supervisor: supervisor_leaf,
        enabled_here: enabled
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    });
    let (report_path, started_at, started_mono, isolation) =
        (path(word()), text(word()), text(word()), text(word()));
    // The rest is the command, however many words came before.
    let command: Vec<OsString> = words.cloned().collect();
    let report = report_path.map(|path| {
        let elapsed = monotonic_now().saturating_sub(started_mono.parse().unwrap_or(0));
        let elapsed = std::time::Duration::from_nanos(elapsed.min(u64::MAX as u128) as u64);
        ReportSpec {
            path,
            command,
            started_at: std::time::UNIX_EPOCH
                + std::time::Duration::from_nanos(started_at.parse().unwrap_or(0)),
            started: Instant::now()
                .checked_sub(elapsed)
                .unwrap_or_else(Instant::now),
            isolation: isolation_name(&isolation),
        }
    });
    let run_id =
        RunId::from_leaf_name(&leaf_name).ok_or_else(|| format!("bad run id {leaf_name:?}"))?;
    let watch = Watch {
        supervisor,
        leaf,
        run_id,
        opts: Options {
            signal_kill: flags.contains('k'),
            freeze_gives_up: flags.contains('g'),
            ..Options::default()
        },
        limits,
        report,
    };
    Ok((watch, killed, verbosity))
}

/// The isolation's name as the report spells it (`Isolation::kind`).
fn isolation_name(s: &str) -> &'static str {
    match s {
        "cgroup" => "cgroup",
        "pgroup" => "pgroup",
        other => Box::leak(other.to_string().into_boxed_str()),
    }
}

/// The watchdog process. Never returns; never unwinds into the frames it shares with
/// the cg-test it was forked from (their destructors would tear down the live run).
fn child(read: OwnedFd, watch: &Watch) -> ! {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        detach(read);
        if let Some(killed) = wait_for_end_of_file() {
            tear_down(watch, killed);
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

/// Sleep in `read` until every write end is closed. On end-of-file, whether cg-test
/// was killed (true) or exited on its own (false, it wrote [`EXITING`] first); None if
/// the descriptor is unusable (then there is nothing to watch, and nothing is done).
fn wait_for_end_of_file() -> Option<bool> {
    let mut buf = [0u8; 16];
    let mut exiting = false;
    loop {
        // SAFETY: reading into our buffer.
        let n = unsafe { libc::read(3, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
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

/// Hooks for fuzzing the teardown's argument vector (tests/properties.rs and fuzz/,
/// issue 18), not an API: they act on nothing. Drop this module with those two users
/// if the argument vector goes.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// The teardown's parser on arbitrary words (those after [`TEARDOWN_ARG`]): the
    /// [`Watch`] and whether cg-test was killed, or the error.
    pub fn parse_words(words: &[OsString]) -> Result<(Watch, bool), String> {
        parse_teardown(words).map(|(w, killed, _)| (w, killed))
    }

    /// What the exec'd teardown reads back from the two argument vectors cg-test
    /// prepares for `w` (killed, then exiting).
    pub fn round_trip(w: &Watch) -> [Result<(Watch, bool), String>; 2] {
        use std::ffi::CStr;
        use std::os::unix::ffi::OsStrExt;
        let exec = exec_for(w, 5, 6);
        let words = |argv: &[*const libc::c_char]| -> Vec<OsString> {
            argv.iter()
                .take_while(|p| !p.is_null())
                .skip(2)
                // SAFETY: the pointers point into the CStrings `exec` keeps.
                .map(|&p| {
                    std::ffi::OsStr::from_bytes(unsafe { CStr::from_ptr(p) }.to_bytes()).into()
                })
                .collect()
        };
        [
            parse_words(&words(&exec.argv)),
            parse_words(&words(&exec.argv_exiting)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    use std::time::Duration;

    /// The words of a prepared argument vector after `cg-test TEARDOWN_ARG`.
    fn words(argv: &[*const libc::c_char]) -> Vec<OsString> {
        argv.iter()
            .take_while(|p| !p.is_null())
            .skip(2)
            // SAFETY: the pointers point into the CStrings `exec_for` keeps.
            .map(|&p| std::ffi::OsStr::from_bytes(unsafe { CStr::from_ptr(p) }.to_bytes()).into())
            .collect()
    }

    /// What cg-test prepares is what the exec'd watchdog reads back, field by field,
    /// for both argument vectors (a bug here once left every run of a killed cg-test
    /// behind).
    #[test]
    fn the_teardown_reads_back_what_cg_test_prepared() {
        let run_id = RunId::new();
        let watch = Watch {
            supervisor: 4242,
            leaf: Some(PathBuf::from(std::ffi::OsStr::from_bytes(
                b"/sys/fs/cgroup/a b/\xff-leaf",
            ))),
            run_id: run_id.clone(),
            opts: Options {
                signal_kill: true,
                freeze_gives_up: false,
                ..Options::default()
            },
            limits: Some(limits::Undo {
                parent: PathBuf::from("/sys/fs/cgroup/p"),
                supervisor: Some(PathBuf::from("/sys/fs/cgroup/p/cg-test-1-supervisor")),
                enabled_here: vec!["memory".into(), "pids".into()],
            }),
            report: Some(ReportSpec {
                path: PathBuf::from("/tmp/r.json"),
                command: vec!["sh".into(), "-c".into(), "".into(), "x y".into()],
                started_at: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                started: Instant::now() - Duration::from_secs(3),
                isolation: "cgroup",
            }),
        };
        let exec = exec_for(&watch, 5, 6);
        for (argv, killed) in [(&exec.argv, true), (&exec.argv_exiting, false)] {
            let (back, k, _) = parse_teardown(&words(argv)).expect("parses");
            assert_eq!(k, killed);
            assert_eq!(back.supervisor, 4242);
            assert_eq!(back.leaf, watch.leaf);
            assert_eq!(back.run_id.to_string(), run_id.to_string());
            assert!(back.opts.signal_kill && !back.opts.freeze_gives_up);
            assert_eq!(back.limits, watch.limits);
            let (r, w) = (back.report.unwrap(), watch.report.as_ref().unwrap());
            assert_eq!(
                (&r.path, &r.command, r.started_at, r.isolation),
                (&w.path, &w.command, w.started_at, w.isolation)
            );
            let elapsed = r.started.elapsed();
            assert!(
                elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(60),
                "{elapsed:?}"
            );
        }
        // Without a leaf, limits or report: empty words, read back as none.
        let bare = Watch {
            leaf: None,
            limits: None,
            report: None,
            ..watch
        };
        let (back, _, _) = parse_teardown(&words(&exec_for(&bare, 5, 6).argv)).unwrap();
        assert!(back.leaf.is_none() && back.limits.is_none() && back.report.is_none());
    }
}
