//! One facade over the operating system: the supervisor calls these functions and
//! types and never uses `#[cfg]` itself. `linux.rs` and `other.rs` export the same
//! names with the same signatures.
//!
//! What differs:
//! - spawning: Linux forks with clone3(CLONE_INTO_CGROUP) so the child starts inside
//!   its cgroup; elsewhere a plain fork.
//! - the parent-death signal (Linux prctl only) and the child subreaper (Linux prctl;
//!   other systems have none, which the pgroup strategy accounts for).
//! - the signal source: a signalfd on Linux (signals stay blocked, nothing runs in a
//!   handler), a self-pipe written by handlers elsewhere.
//! - the process table: /proc on Linux, sysctl on macOS.
//! - extended attributes (the limits' record on a cgroupfs directory): Linux only.

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod imp;

#[cfg(not(target_os = "linux"))]
#[path = "other.rs"]
mod imp;

pub use imp::{
    become_subreaper, child_pids, child_set_parent_death_signal, cloexec_pipe, close_fds_except,
    close_fds_from, cmdline, environ_has, exec_is_secure, fork_child, get_xattr,
    parent_death_signal, process_alive, process_children, process_ids, process_info,
    process_start_time, remove_xattr, set_parent_death_signal, set_xattr, spawn_shared,
    thread_count, wait_child_event, Pidfd, SignalSource,
};

/// clone3 with namespace flags, for the Linux-only namespace code (src/namespaces).
#[cfg(target_os = "linux")]
pub use imp::{clone3, CLONE_INTO_CGROUP};

/// The two sides of a fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    /// We are the new process. `placed` says the kernel already put it in the
    /// requested cgroup (clone3 with CLONE_INTO_CGROUP).
    Child { placed: bool },
    /// We are the supervisor; `pid` is the new process.
    Parent { pid: i32, placed: bool },
}

/// One row of the process table, as much as the pgroup strategy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// Threads in the process (Linux; 1 elsewhere): whose children lists to read.
    pub threads: u32,
    /// Stopped by a signal (job control), as SIGSTOP leaves it.
    pub stopped: bool,
    /// Exited but not yet reaped: dead, whatever its table entry says.
    pub zombie: bool,
    /// In an uninterruptible sleep (Linux's `D`; false elsewhere): a SIGSTOP sent to
    /// it takes effect only when it wakes, and it runs no code of its own before that.
    /// The parent of a vfork (std's and glibc's posix_spawn) sleeps so until its child
    /// execs, which a stopped child never does.
    pub uninterruptible: bool,
}

/// Is cg-test the init (PID 1) of its pid namespace: a container's entrypoint, a
/// machine's init? Its death then kills every process of the namespace, and it may
/// signal all of them with kill(-1).
pub fn is_pid_ns_init() -> bool {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() == 1 }
}

/// Is this the platform-specific code for Linux?
pub const IS_LINUX: bool = cfg!(target_os = "linux");

/// Does the signal source install handlers (the self-pipe of platform/other.rs)? On
/// Linux it reads a signalfd and leaves every disposition as cg-test was given it.
pub const INSTALLS_SIGNAL_HANDLERS: bool = !IS_LINUX;

/// Occupy any of fds 0, 1, 2 that cg-test was started without with /dev/null marked
/// close-on-exec.
///
/// Rust's usual start-up reopens closed standard fds on /dev/null *for the child too*;
/// we skip it (see main.rs) so the command sees them closed, exactly as it would
/// without cg-test. But then cg-test's own files (the leaf's cgroup.procs, the signal
/// fd) would take those numbers, and a diagnostic written to "stderr" would land in one
/// of them. Holding them with close-on-exec placeholders avoids both.
pub fn reserve_closed_std_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries; open returns the lowest free fd, which is `fd`
        // when it was closed (all lower ones are open by then).
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            }
        }
    }
}
