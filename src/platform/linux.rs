//! Linux side of the platform facade: clone3 into a cgroup, prctl, signalfd, /proc.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result};

use super::{Fork, ProcInfo};
use crate::events::SignalPlan;

/// CLONE_INTO_CGROUP (Linux 5.7): start the child in the cgroup given by `cgroup`.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

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

/// Start a child that shares cg-test's memory until it execs (clone3 with CLONE_VM |
/// CLONE_VFORK, and CLONE_INTO_CGROUP into the open leaf `into_cgroup`), the way
/// posix_spawn starts one: no page tables are copied and no page is made
/// copy-on-write, and cg-test is suspended until the child has exec'd or exited. The
/// child runs `child` on a stack of its own; it must exec or `_exit` (returning exits
/// 127).
///
/// Returns the child's pid, or None where this path is unavailable (clone3 or the
/// flag refused: kernels before 5.7, seccomp'd clone3; an architecture without the
/// assembly below), and the caller forks instead.
///
/// Why this is safe: cg-test is single-threaded and suspended for the whole time the
/// memory is shared, so the child cannot race it; the child only makes
/// async-signal-safe calls on memory prepared before (no allocation, no lock another
/// thread could hold); signals cg-test handles stay blocked until the child restores
/// the original mask right before exec, and cg-test installs no handler that could run
/// in the child (it reads signals from a signalfd). The child's writes to errno land in
/// cg-test's errno, which cg-test only reads after a failed call of its own.
pub fn spawn_shared(
    into_cgroup: BorrowedFd<'_>,
    child: &mut dyn FnMut(),
) -> io::Result<Option<i32>> {
    #[cfg(target_arch = "x86_64")]
    {
        spawn_shared_x86_64(into_cgroup, child)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (into_cgroup, child);
        Ok(None)
    }
}

#[cfg(target_arch = "x86_64")]
fn spawn_shared_x86_64(
    into_cgroup: BorrowedFd<'_>,
    mut child: &mut dyn FnMut(),
) -> io::Result<Option<i32>> {
    /// The child's entry point: call the closure `arg` points to.
    extern "C" fn trampoline(arg: *mut libc::c_void) -> ! {
        // SAFETY: `arg` is the `&mut dyn FnMut` below, alive while cg-test waits.
        let f = unsafe { &mut *(arg as *mut &mut dyn FnMut()) };
        f();
        // The closure execs or exits; should it return, leave without touching
        // anything of cg-test's.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(127) }
    }
    const STACK: usize = 256 * 1024;
    // SAFETY: a private anonymous mapping we unmap below; nothing else refers to it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP | libc::CLONE_VM as u64 | libc::CLONE_VFORK as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack as u64,
        stack_size: STACK as u64,
        cgroup: into_cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    let arg = &mut child as *mut &mut dyn FnMut() as *mut libc::c_void;
    // SAFETY: the child runs the trampoline on its own stack (see clone3_on_stack).
    let ret = unsafe { clone3_on_stack(&mut args, trampoline, arg) };
    // The child has exec'd or exited: its stack is ours again.
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(stack, STACK) };
    if ret > 0 {
        return Ok(Some(ret as i32));
    }
    let err = io::Error::from_raw_os_error(-ret as i32);
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::ENOMEM) => Err(err),
        _ => {
            crate::step!("clone3(CLONE_VM | CLONE_INTO_CGROUP) failed ({err}); forking instead");
            Ok(None)
        }
    }
}

/// clone3 whose child starts on the stack `args` names and calls `entry(arg)`, which
/// must never return; the parent gets clone3's raw result (a pid, or -errno).
///
/// # Safety
/// `args` holds a valid stack of its own for the child, and `entry` only does what is
/// safe on it (with CLONE_VM: in memory it shares with the parent).
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_on_stack(
    args: &mut CloneArgs,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> isize {
    let ret: isize;
    // SAFETY: clone3 returns twice only on success; the child starts on the new stack
    // (the kernel sets its stack pointer to stack + stack_size, 16-byte aligned) and
    // calls `entry`, which never returns. The parent path touches nothing but the
    // registers declared here (the syscall clobbers rcx and r11).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") entry as usize,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
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

/// Read `/proc/<pid>/<file>` (`pid` 0: `/proc/self`) into `buf` with one open, as few
/// reads as the file needs, and a close: no allocation, no statx. The pgroup walk reads
/// two such files per process of the run, so this is on the teardown's path.
fn read_proc(pid: i32, file: &str, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Write;
    let mut path = [0u8; 64];
    let mut w = &mut path[..];
    let written = if pid == 0 {
        write!(w, "/proc/self/{file}\0")
    } else {
        write!(w, "/proc/{pid}/{file}\0")
    };
    written.map_err(|_| io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
    // SAFETY: `path` is NUL-terminated; read writes at most the rest of `buf`; the fd is
    // ours and closed on every path.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut len = 0;
        while len < buf.len() {
            let n = libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len);
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                break;
            }
            len += n as usize;
        }
        libc::close(fd);
        Ok(len)
    }
}

/// Parse the fields of a stat line a [`ProcInfo`] needs (counted from the last `)`,
/// since `comm` may hold spaces and parentheses).
fn parse_proc_info(pid: i32, stat: &[u8]) -> Option<ProcInfo> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let after = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut f = after.split_ascii_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    // Field 20 (num_threads) is the 16th after pgid (field 5).
    let threads = f.nth(14)?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgid,
        threads,
        stopped: matches!(state, "T" | "t"),
        zombie: matches!(state, "Z" | "X" | "x"),
        uninterruptible: state == "D",
    })
}

/// The process's start time in clock ticks since boot (stat field 22).
pub fn process_start_time(pid: u32) -> Option<u64> {
    let mut buf = [0u8; 1024];
    let len = read_proc(i32::try_from(pid).ok()?, "stat", &mut buf).ok()?;
    let stat = &buf[..len];
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    // After `(comm)`: field 3 (state) is the first, so field 22 is the 20th.
    std::str::from_utf8(after)
        .ok()?
        .split_ascii_whitespace()
        .nth(19)?
        .parse()
        .ok()
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

/// One process's parent, group, thread count and state, if it still exists.
pub fn process_info(pid: i32) -> Option<ProcInfo> {
    let mut buf = [0u8; 1024];
    let len = read_proc(pid, "stat", &mut buf).ok()?;
    parse_proc_info(pid, &buf[..len])
}

/// The children of a process, from `/proc/<pid>/task/<tid>/children` of each of its
/// `threads` threads (a child is listed under the thread that forked it; with one
/// thread, the thread id is the pid and the task directory need not be read). Zombies
/// are listed too. An empty list when the process is gone; None where the kernel has
/// no such files (built without CONFIG_PROC_CHILDREN): the caller must then walk the
/// whole process table.
///
/// Each file is a snapshot of one thread's list; a child being reparented while the
/// lists are read (its parent exited) can be missed by one walk, which is why the
/// pgroup strategy confirms an empty walk with a second one.
pub fn process_children(pid: i32, threads: u32) -> Option<Vec<i32>> {
    let tids: Vec<i32> = if threads <= 1 {
        vec![pid]
    } else {
        match std::fs::read_dir(format!("/proc/{pid}/task")) {
            Ok(dir) => dir
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect(),
            Err(_) => return Some(Vec::new()),
        }
    };
    let mut children = Vec::new();
    let mut buf = vec![0u8; 4096];
    for tid in tids {
        let file = format!("task/{tid}/children");
        let len = loop {
            match read_proc(pid, &file, &mut buf) {
                Ok(len) if len == buf.len() => buf.resize(buf.len() * 2, 0),
                Ok(len) => break len,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // The thread or process is gone, or the kernel has no children
                    // files: only the latter leaves the task directory in place.
                    if std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists() {
                        return None;
                    }
                    break 0;
                }
                Err(_) => break 0,
            }
        };
        children.extend(
            buf[..len]
                .split(|b| b.is_ascii_whitespace())
                .filter_map(|p| std::str::from_utf8(p).ok()?.parse::<i32>().ok()),
        );
    }
    Some(children)
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

/// Threads in this process (num_threads of /proc/self/stat: one small read, where
/// listing /proc/self/task took a directory open and two getdents).
pub fn thread_count() -> Option<usize> {
    let mut buf = [0u8; 1024];
    let len = read_proc(0, "stat", &mut buf).ok()?;
    usize::try_from(parse_proc_info(0, &buf[..len])?.threads).ok()
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

/// Did the kernel mark this exec secure (AT_SECURE: a setuid or setgid binary, or one
/// with file capabilities, run by a user it raises)?
pub fn exec_is_secure() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Close every descriptor from `from` up but those in `keep` (close_range on each gap,
/// Linux 5.9; a /proc/self/fd walk before that).
pub fn close_fds_except(from: i32, keep: &[i32]) {
    let mut keep: Vec<i32> = keep.iter().copied().filter(|&fd| fd >= from).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = from as u32;
    let mut ranged = true;
    for hi in keep
        .iter()
        .map(|&k| k as u32)
        .chain(std::iter::once(u32::MAX))
    {
        // The gap below the next kept descriptor (or up to the top).
        let last = if hi == u32::MAX {
            Some(hi)
        } else {
            hi.checked_sub(1)
        };
        let gap = last.filter(|&last| lo <= last);
        // SAFETY: close_range on our own descriptor table.
        if gap.is_some_and(|last| unsafe { libc::syscall(libc::SYS_close_range, lo, last, 0) } != 0)
        {
            ranged = false;
            break;
        }
        lo = hi.saturating_add(1);
    }
    if ranged {
        return;
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd >= from && !keep.contains(&fd))
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: closing descriptors of our own; the directory's own fd may be among
        // them and already closed, which is harmless.
        unsafe { libc::close(fd) };
    }
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
