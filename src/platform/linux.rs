//! Linux side of the platform facade: clone3 into a cgroup, prctl, signalfd, /proc.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result};

use super::{Fork, ProcInfo};
use crate::events::SignalPlan;

/// CLONE_INTO_CGROUP (Linux 5.7): start the child in the cgroup given by `cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` as of Linux 5.7 (CLONE_ARGS_SIZE_VER2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Fork, putting the child straight into the cgroup open at `into_cgroup` when given.
///
/// clone3 with CLONE_INTO_CGROUP makes the child a member of the leaf before it runs a
/// single instruction, so it can never fork outside it. Where clone3 or the flag is
/// missing (kernels before 5.3 / 5.7, seccomp profiles such as Docker's that answer
/// ENOSYS for clone3) this falls back to a plain fork and reports `placed: false`, and
/// the child writes itself into `cgroup.procs` before it execs.
///
/// The caller must be single-threaded (the child may only call async-signal-safe
/// functions anyway) and must have every handled signal blocked, which on Linux the
/// signalfd-based [`SignalSource`] guarantees for the whole run.
pub fn fork_child(into_cgroup: Option<BorrowedFd<'_>>, _plan: &SignalPlan) -> io::Result<Fork> {
    if let Some(fd) = into_cgroup {
        match clone3(CLONE_INTO_CGROUP, Some(fd)) {
            Ok(0) => return Ok(Fork::Child { placed: true }),
            Ok(pid) => return Ok(Fork::Parent { pid, placed: true }),
            Err(err) => {
                match err.raw_os_error() {
                    // Out of processes or memory: a fork would fail the same way.
                    Some(libc::EAGAIN) | Some(libc::ENOMEM) => return Err(err),
                    // ENOSYS/E2BIG/EINVAL: no clone3 or no CLONE_INTO_CGROUP here.
                    // EACCES/EPERM/EBUSY/EOPNOTSUPP: not allowed to enter the leaf this
                    // way; the fork path's own write to cgroup.procs reports it exactly.
                    _ => crate::step!("clone3(CLONE_INTO_CGROUP) failed ({err}); forking instead"),
                }
            }
        }
    }
    // SAFETY: we are single-threaded; the child only runs async-signal-safe code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child { placed: false }),
        pid => Ok(Fork::Parent { pid, placed: false }),
    }
}

/// clone3 without CLONE_VM (a fork): 0 in the child, the child's pid in the parent.
/// `flags` may hold CLONE_INTO_CGROUP (with `cgroup`) and namespace flags.
///
/// The child returns with the parent's libc thread state (its cached thread id is the
/// parent's), so it must only make plain syscalls until it execs or exits: no
/// `raise`, no pthread functions. cg-test's children (the command before exec, the
/// pid namespace's init) keep to that.
pub fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<i32> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a copy of our
    // address space and returns here with 0. We pass a valid, sized struct.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret as i32)
}

/// In the child: ask for SIGKILL when the supervisor dies, then close the race where it
/// died before the request (the child would already be reparented).
///
/// The signal is tied to the *thread* that forked us, not the process: cg-test forks
/// from its main thread, which lives until cg-test exits.
pub fn child_set_parent_death_signal(parent: libc::pid_t) -> Result<(), i32> {
    // SAFETY: prctl and getppid are async-signal-safe syscalls.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(*libc::__errno_location());
        }
        if libc::getppid() != parent {
            return Err(libc::ESRCH);
        }
    }
    Ok(())
}

/// Make cg-test a child subreaper: orphans of the run reparent to it, not to PID 1.
pub fn become_subreaper() -> io::Result<bool> {
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(true)
}

/// Sleep until a SIGCHLD is pending (consuming it) or `limit` passes. SIGCHLD is
/// blocked for the whole run, so sigtimedwait takes it synchronously; the caller reaps
/// everything after, so the event loop missing this one SIGCHLD loses nothing.
pub fn wait_child_event(limit: std::time::Duration) {
    // SAFETY: a sigset and timespec we own; sigtimedwait only reads them.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let ts = libc::timespec {
            tv_sec: limit.as_secs().min(i32::MAX as u64) as _,
            tv_nsec: limit.subsec_nanos() as _,
        };
        libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
    }
}

/// Fields of /proc/<pid>/stat after the `(comm)` field, which may contain spaces.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// The process's start time in clock ticks since boot (stat field 22).
pub fn process_start_time(pid: u32) -> Option<u64> {
    // After `(comm)`: field 3 (state) is index 0, so field 22 is index 19.
    stat_fields(pid as i32)?.get(19)?.parse().ok()
}

/// Every pid in /proc (this pid namespace), highest first.
///
/// Highest first matters for the pgroup strategy: reading /proc's directory is a
/// snapshot, and a process that keeps replacing itself with a fresh child (a session
/// hopper) holds the newest, highest pid. Checked first, it is checked within
/// microseconds of the snapshot, before it can move on.
pub fn process_ids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable_by(|a, b| b.cmp(a));
    pids
}

/// One process's parent, group and state, if it still exists.
pub fn process_info(pid: i32) -> Option<ProcInfo> {
    let fields = stat_fields(pid)?;
    let state = fields.first()?.as_str();
    Some(ProcInfo {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        stopped: matches!(state, "T" | "t"),
        zombie: matches!(state, "Z" | "X" | "x"),
    })
}

/// Does the process's environment contain exactly this `NAME=value` entry?
pub fn environ_has(pid: i32, entry: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|&b| b == 0).any(|e| e == entry))
        .unwrap_or(false)
}

/// The process's command line, arguments joined by spaces (`[comm]` when empty).
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let joined = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if !joined.is_empty() {
        return Some(joined);
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(format!("[{}]", comm.trim_end()))
}

/// Signals delivered to cg-test, read from a signalfd. The signals stay blocked for the
/// whole run, so no handler ever runs and no signal can interrupt a teardown step; the
/// event loop polls the descriptor.
pub struct SignalSource {
    fd: OwnedFd,
}

impl SignalSource {
    /// Block the plan's signals and open a signalfd for the handled ones.
    pub fn install(plan: &SignalPlan) -> Result<SignalSource> {
        plan.take_dispositions();
        // SAFETY: building sigsets and calling sigprocmask/signalfd on memory we own.
        unsafe {
            let blocked = plan.blocked_set();
            if libc::sigprocmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error()).context("sigprocmask");
            }
            let handled = plan.handled_set();
            let fd = libc::signalfd(-1, &handled, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error()).context("signalfd");
            }
            Ok(SignalSource {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Every signal received since the last call, in arrival order.
    pub fn drain(&mut self) -> Vec<i32> {
        let mut out = Vec::new();
        loop {
            // SAFETY: signalfd_siginfo is plain data; we read whole records into it.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    &mut info as *mut _ as *mut libc::c_void,
                    size,
                )
            };
            if n != size as isize {
                return out;
            }
            out.push(info.ssi_signo as i32);
        }
    }
}

/// A close-on-exec pipe, made atomically with pipe2 so that a fork in another thread of
/// an embedding program can never inherit it between creation and FD_CLOEXEC.
pub fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by us alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A process pinned by a pidfd (Linux 5.3): a signal sent through it reaches that
/// process or nobody, never a later process that was given the same pid.
pub struct Pidfd(OwnedFd);

impl Pidfd {
    /// Pin the process that has `pid` now. ESRCH: it is gone; ENOSYS: no pidfd here.
    pub fn open(pid: i32) -> io::Result<Pidfd> {
        // SAFETY: pidfd_open returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor we just received and own; make it close-on-exec (it is
        // since Linux 5.10 anyway; earlier kernels need the fcntl).
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: fcntl on our own descriptor.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Pidfd(fd))
    }

    /// Send `sig` to the pinned process; ESRCH once it has exited.
    pub fn send(&self, sig: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal with no siginfo.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// cg-test's own children, live or zombie (/proc/self/task/<tid>/children, kernels
/// with CONFIG_PROC_CHILDREN); None where the kernel does not offer the file. cg-test
/// forks only from its one thread, so that thread's list is the whole list.
pub fn child_pids() -> Option<Vec<i32>> {
    // SAFETY: gettid cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/children")).ok()?;
    Some(
        text.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
    )
}

/// The signal cg-test asks for on its parent's death (`--die-with-parent`): one nothing
/// else sends, so a signal from a live parent or a third party is never mistaken for it.
pub fn parent_death_signal() -> Option<i32> {
    Some(libc::SIGRTMAX())
}

/// Ask the kernel for `sig` when the thread that forked cg-test exits.
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Threads in this process (/proc/self/task).
pub fn thread_count() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// Is the process that had `pid` and started at `start` (clock ticks since boot) still
/// alive? Checked in our pid namespace first; then, for a cg-test that ran in a pid
/// namespace nested in ours (a container seen from the host), by the innermost pid of
/// every process we can see (`NSpid` in /proc/<pid>/status) with the same start time.
pub fn process_alive(pid: u32, start: u64) -> bool {
    let same = |p: u32| {
        stat_fields(p as i32).is_some_and(|f| {
            !matches!(f.first().map(String::as_str), Some("Z" | "X" | "x"))
                && f.get(19).and_then(|s| s.parse::<u64>().ok()) == Some(start)
        })
    };
    if same(pid) {
        return true;
    }
    let want = pid.to_string();
    process_ids().into_iter().any(|p| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("NSpid:"))?.to_owned();
                Some(
                    line.split_whitespace().count() > 2
                        && line.split_whitespace().last() == Some(want.as_str()),
                )
            })
            .unwrap_or(false)
            && same(p as u32)
    })
}

/// Close every descriptor from `from` up (close_range, Linux 5.9; a /proc/self/fd walk
/// before that).
pub fn close_fds_from(from: i32) {
    // SAFETY: close_range on our own descriptor table.
    if unsafe { libc::syscall(libc::SYS_close_range, from as u32, u32::MAX, 0) } == 0 {
        return;
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd >= from)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: closing descriptors of our own; the directory's own fd may be among
        // them and already closed, which is harmless.
        unsafe { libc::close(fd) };
    }
}

/// The value of the extended attribute `name` of `path`; None when it has none
/// (ENODATA). Used on cgroupfs directories, which keep `user.*` attributes (Linux 5.7).
pub fn get_xattr(path: &std::path::Path, name: &std::ffi::CStr) -> io::Result<Option<Vec<u8>>> {
    let c = path_cstring(path)?;
    let mut buf = vec![0u8; 256];
    // SAFETY: getxattr writes at most buf.len() bytes into buf.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// Set the extended attribute `name` of `path` to `value`.
pub fn set_xattr(path: &std::path::Path, name: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
    let c = path_cstring(path)?;
    // SAFETY: setxattr reads value.len() bytes from value.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            name.as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Remove the extended attribute `name` of `path`; one that is not there is no error.
pub fn remove_xattr(path: &std::path::Path, name: &std::ffi::CStr) -> io::Result<()> {
    let c = path_cstring(path)?;
    // SAFETY: plain syscall on valid C strings.
    if unsafe { libc::removexattr(c.as_ptr(), name.as_ptr()) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENODATA) {
            return Err(e);
        }
    }
    Ok(())
}

fn path_cstring(path: &std::path::Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}
