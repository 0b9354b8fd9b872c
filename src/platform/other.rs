//! Non-Linux side of the platform facade (macOS first; other Unix systems as far as
//! POSIX goes). There is no cgroup, no clone3, no parent-death signal and no child
//! subreaper here, which is why the pgroup strategy re-walks the process table and
//! sweeps for the run's environment token.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};

use super::{Fork, ProcInfo};
use crate::events::SignalPlan;

/// Fork. `into_cgroup` is always None here (no cgroups); the handled signals are
/// blocked around the fork so our self-pipe handler never runs in the child, which
/// then resets them and restores the original mask before exec.
pub fn fork_child(_into_cgroup: Option<BorrowedFd<'_>>, plan: &SignalPlan) -> io::Result<Fork> {
    let handled = plan.handled_set();
    let mut before: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigprocmask and fork; the process is single-threaded.
    unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &handled, &mut before);
        match libc::fork() {
            -1 => {
                let err = io::Error::last_os_error();
                libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
                Err(err)
            }
            0 => Ok(Fork::Child { placed: false }),
            pid => {
                libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
                Ok(Fork::Parent { pid, placed: false })
            }
        }
    }
}

/// No clone3 here: the caller forks.
pub fn spawn_shared(
    _into_cgroup: BorrowedFd<'_>,
    _child: &mut dyn FnMut(),
) -> io::Result<Option<i32>> {
    Ok(None)
}

/// No parent-death signal outside Linux; the supervisor's own teardown and the token
/// sweep stand in for it.
pub fn child_set_parent_death_signal(_parent: libc::pid_t) -> Result<(), i32> {
    Ok(())
}

/// No child subreaper here (FreeBSD's procctl(PROC_REAP_ACQUIRE) would be the
/// analogue).
pub fn become_subreaper() -> io::Result<bool> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no child subreaper on this system",
    ))
}

/// Without signalfd, a short sleep stands in for waiting on SIGCHLD.
pub fn wait_child_event(limit: std::time::Duration) {
    std::thread::sleep(limit.min(std::time::Duration::from_millis(5)));
}

#[cfg(target_os = "macos")]
mod table {
    use super::ProcInfo;

    const SSTOP: u32 = 4;
    const SZOMB: u32 = 5;

    fn bsdinfo(pid: i32) -> Option<libc::proc_bsdinfo> {
        // SAFETY: proc_pidinfo fills a proc_bsdinfo we own, up to its size.
        unsafe {
            let mut info: libc::proc_bsdinfo = std::mem::zeroed();
            let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
            let n = libc::proc_pidinfo(
                pid,
                libc::PROC_PIDTBSDINFO,
                0,
                &mut info as *mut _ as *mut libc::c_void,
                size,
            );
            (n == size).then_some(info)
        }
    }

    pub fn process_start_time(pid: u32) -> Option<u64> {
        bsdinfo(pid as i32).map(|i| i.pbi_start_tvsec)
    }

    pub fn process(pid: i32) -> Option<ProcInfo> {
        let i = bsdinfo(pid)?;
        Some(ProcInfo {
            pid,
            ppid: i.pbi_ppid as i32,
            pgid: i.pbi_pgid as i32,
            threads: 1,
            stopped: i.pbi_status == SSTOP,
            zombie: i.pbi_status == SZOMB,
            uninterruptible: false,
        })
    }

    pub fn processes() -> Vec<ProcInfo> {
        // SAFETY: proc_listallpids writes at most the buffer's size in bytes.
        let pids = unsafe {
            let n = libc::proc_listallpids(std::ptr::null_mut(), 0);
            if n <= 0 {
                return Vec::new();
            }
            let mut buf = vec![0i32; n as usize + 64];
            let size = (buf.len() * std::mem::size_of::<i32>()) as libc::c_int;
            let got = libc::proc_listallpids(buf.as_mut_ptr() as *mut libc::c_void, size);
            buf.truncate(got.max(0) as usize);
            buf
        };
        pids.into_iter().filter_map(process).collect()
    }

    /// A process's argv and environment strings.
    struct ProcArgs {
        argv: Vec<Vec<u8>>,
        env: Vec<Vec<u8>>,
    }

    /// KERN_PROCARGS2: argc, the exec path, NUL padding, argv strings, env strings.
    fn procargs(pid: i32) -> Option<ProcArgs> {
        let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
        let mut size: libc::size_t = 0;
        // SAFETY: sysctl with a valid mib; the first call sizes, the second fills.
        unsafe {
            if libc::sysctl(
                mib.as_mut_ptr(),
                3,
                std::ptr::null_mut(),
                &mut size,
                std::ptr::null_mut(),
                0,
            ) != 0
            {
                return None;
            }
            let mut buf = vec![0u8; size];
            if libc::sysctl(
                mib.as_mut_ptr(),
                3,
                buf.as_mut_ptr() as *mut libc::c_void,
                &mut size,
                std::ptr::null_mut(),
                0,
            ) != 0
            {
                return None;
            }
            buf.truncate(size);
            let argc = i32::from_ne_bytes(buf.get(..4)?.try_into().ok()?) as usize;
            let rest = &buf[4..];
            let exec_end = rest.iter().position(|&b| b == 0)?;
            let mut strings = rest[exec_end..]
                .split(|&b| b == 0)
                .skip_while(|s| s.is_empty());
            let argv: Vec<Vec<u8>> = strings.by_ref().take(argc).map(<[u8]>::to_vec).collect();
            let env = strings
                .take_while(|s| !s.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            Some(ProcArgs { argv, env })
        }
    }

    pub fn environ_has(pid: i32, entry: &[u8]) -> bool {
        procargs(pid).is_some_and(|p| p.env.iter().any(|e| e == entry))
    }

    pub fn cmdline(pid: i32) -> Option<String> {
        let argv = procargs(pid)?.argv;
        Some(
            argv.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

#[cfg(not(target_os = "macos"))]
mod table {
    //! Other Unix systems: the process table from `ps`, which every one of them has.
    //! Environments are not readable portably, so the token sweep finds nothing here;
    //! docs/DESIGN.md lists that as a limit.
    use super::ProcInfo;

    fn ps(args: &[&str]) -> String {
        std::process::Command::new("ps")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    pub fn process_start_time(_pid: u32) -> Option<u64> {
        None
    }

    pub fn process(pid: i32) -> Option<ProcInfo> {
        let pid = pid.to_string();
        parse(&ps(&["-o", "pid=,ppid=,pgid=,stat=", "-p", &pid]))
            .into_iter()
            .next()
    }

    pub fn processes() -> Vec<ProcInfo> {
        parse(&ps(&["-axo", "pid=,ppid=,pgid=,stat="]))
    }

    fn parse(out: &str) -> Vec<ProcInfo> {
        out.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let stat = f.get(3).copied().unwrap_or("");
                Some(ProcInfo {
                    pid: f.first()?.parse().ok()?,
                    ppid: f.get(1)?.parse().ok()?,
                    pgid: f.get(2)?.parse().ok()?,
                    threads: 1,
                    stopped: stat.starts_with('T'),
                    zombie: stat.starts_with('Z'),
                    uninterruptible: stat.starts_with('D'),
                })
            })
            .collect()
    }

    pub fn environ_has(_pid: i32, _entry: &[u8]) -> bool {
        false
    }

    pub fn cmdline(pid: i32) -> Option<String> {
        let out = ps(&["-o", "command=", "-p", &pid.to_string()]);
        let line = out.trim();
        (!line.is_empty()).then(|| line.to_string())
    }
}

pub use table::{cmdline, environ_has, process_start_time};

/// Every pid, highest first (see the Linux side for why).
pub fn process_ids() -> Vec<i32> {
    let mut pids: Vec<i32> = table::processes().iter().map(|p| p.pid).collect();
    pids.sort_unstable_by(|a, b| b.cmp(a));
    pids
}

/// One process's parent, group and state, if it still exists.
pub fn process_info(pid: i32) -> Option<ProcInfo> {
    table::process(pid)
}

/// No per-process children lists here: the pgroup strategy walks the whole table.
pub fn process_children(_pid: i32, _threads: u32) -> Option<Vec<i32>> {
    None
}

/// The write end of the self-pipe, for the handler.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "dragonfly"
))]
fn errno_ptr() -> *mut libc::c_int {
    // SAFETY: returns this thread's errno location.
    unsafe { libc::__error() }
}

#[cfg(not(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "dragonfly"
)))]
fn errno_ptr() -> *mut libc::c_int {
    // SAFETY: returns this thread's errno location.
    unsafe { libc::__errno() }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let byte = sig as u8;
    // SAFETY: write is async-signal-safe; errno is saved and restored around it so the
    // interrupted code never sees the handler's errno.
    unsafe {
        let saved = *errno_ptr();
        libc::write(
            PIPE_WRITE.load(Ordering::Relaxed),
            &byte as *const u8 as *const libc::c_void,
            1,
        );
        *errno_ptr() = saved;
    }
}

/// Signals delivered to cg-test, through a self-pipe written by a handler.
pub struct SignalSource {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalSource {
    /// Install handlers for the handled signals and block the quiet ones.
    pub fn install(plan: &SignalPlan) -> Result<SignalSource> {
        plan.take_dispositions();
        let mut fds = [0; 2];
        // SAFETY: creating a pipe, setting flags, installing handlers.
        unsafe {
            if libc::pipe(fds.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error()).context("pipe for signals");
            }
            for fd in fds {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
            }
            let source = SignalSource {
                read: OwnedFd::from_raw_fd(fds[0]),
                _write: OwnedFd::from_raw_fd(fds[1]),
            };
            PIPE_WRITE.store(fds[1], Ordering::Relaxed);
            let quiet = plan.blocked_set();
            let mut only_quiet = quiet;
            for &s in plan.handled() {
                libc::sigdelset(&mut only_quiet, s);
            }
            libc::sigprocmask(libc::SIG_BLOCK, &only_quiet, std::ptr::null_mut());
            for &s in plan.handled() {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                act.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut act.sa_mask);
                if libc::sigaction(s, &act, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error()).context("sigaction");
                }
            }
            Ok(source)
        }
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Every signal received since the last call, in arrival order.
    pub fn drain(&mut self) -> Vec<i32> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into our buffer.
            let n = unsafe {
                libc::read(
                    self.read.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            if n <= 0 {
                return out;
            }
            out.extend(buf[..n as usize].iter().map(|&b| i32::from(b)));
        }
    }
}

/// A close-on-exec pipe (pipe + FD_CLOEXEC: no pipe2 on macOS; cg-test forks only
/// from its one thread, see `supervisor::run`).
pub fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by us alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [&r, &w] {
        // SAFETY: setting FD_CLOEXEC on a descriptor we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((r, w))
}

/// No pidfd outside Linux: `open` always fails with Unsupported.
pub struct Pidfd(());

impl Pidfd {
    pub fn open(_pid: i32) -> io::Result<Pidfd> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no pidfd on this system",
        ))
    }

    pub fn send(&self, _sig: i32) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no pidfd on this system",
        ))
    }
}

/// cg-test's own children (macOS: proc_listchildpids); None elsewhere.
#[cfg(target_os = "macos")]
pub fn child_pids() -> Option<Vec<i32>> {
    // SAFETY: proc_listchildpids writes at most the buffer's size in bytes.
    unsafe {
        let me = libc::getpid();
        let mut buf = vec![0i32; 4096];
        let size = (buf.len() * std::mem::size_of::<i32>()) as libc::c_int;
        let n = libc::proc_listchildpids(me, buf.as_mut_ptr() as *mut libc::c_void, size);
        if n < 0 {
            return None;
        }
        buf.truncate(n as usize);
        Some(buf)
    }
}

#[cfg(not(target_os = "macos"))]
pub fn child_pids() -> Option<Vec<i32>> {
    None
}

/// No parent-death signal outside Linux.
pub fn parent_death_signal() -> Option<i32> {
    None
}

pub fn set_parent_death_signal(_sig: i32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no parent-death signal on this system",
    ))
}

/// Unknown here.
pub fn thread_count() -> Option<usize> {
    None
}

/// Is the process that had `pid` and started at `start` still alive (this system's
/// start times are seconds, so the check is coarser than on Linux)?
pub fn process_alive(pid: u32, start: u64) -> bool {
    table::process(pid as i32).is_some_and(|p| !p.zombie)
        && table::process_start_time(pid).is_none_or(|s| s == start)
}

/// Was this exec setuid or setgid (issetugid, where the system has it)?
pub fn exec_is_secure() -> bool {
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ))]
    {
        // SAFETY: issetugid only queries.
        unsafe { libc::issetugid() != 0 }
    }
    #[cfg(not(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    )))]
    {
        false
    }
}

/// Close every descriptor from `from` up but those in `keep`.
pub fn close_fds_except(from: i32, keep: &[i32]) {
    // SAFETY: sysconf only queries.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(256, 65536) as i32;
    for fd in (from..max).filter(|fd| !keep.contains(fd)) {
        // SAFETY: closing descriptors of our own; EBADF for unused numbers is harmless.
        unsafe { libc::close(fd) };
    }
}

/// Close every descriptor from `from` up.
pub fn close_fds_from(from: i32) {
    // SAFETY: sysconf only queries.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(256, 65536) as i32;
    for fd in from..max {
        // SAFETY: closing descriptors of our own; EBADF for unused numbers is harmless.
        unsafe { libc::close(fd) };
    }
}

/// No cgroupfs here, so nothing keeps the limits' record: always "not supported".
pub fn get_xattr(_path: &std::path::Path, _name: &std::ffi::CStr) -> io::Result<Option<Vec<u8>>> {
    Err(io::Error::from_raw_os_error(libc::ENOTSUP))
}

/// See [`get_xattr`].
pub fn set_xattr(_path: &std::path::Path, _name: &std::ffi::CStr, _value: &[u8]) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOTSUP))
}

/// See [`get_xattr`].
pub fn remove_xattr(_path: &std::path::Path, _name: &std::ffi::CStr) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOTSUP))
}
