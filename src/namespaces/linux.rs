//! Linux side of [`crate::namespaces`]: the pid namespace's init, and hardening.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use anyhow::{bail, Result};
use caps::{CapSet, Capability, CapsHashSet};

use super::InitRecord;

/// Where a step of the init's set-up failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NsStep {
    /// Writing /proc/self/{setgroups,uid_map,gid_map} of a new user namespace.
    UserMaps,
    /// Making every mount private (so the new /proc does not propagate out).
    PrivateMounts,
    /// Mounting proc on /proc.
    MountProc,
}

/// `--pid-ns`, prepared: whether a user namespace is needed, and its maps.
pub struct PidNs {
    user_ns: bool,
    /// `<uid> <uid> 1`: cg-test's own uid (and gid) mapped to itself, so the command
    /// runs under the ids it would have had without the namespace.
    uid_map: CString,
    gid_map: CString,
}

impl PidNs {
    /// With CAP_SYS_ADMIN the namespaces are made as they are; without it, only with
    /// an unprivileged user namespace, which is tried here in a child (one fork) so a
    /// refusal (a seccomp filter, a sysctl) is one line and exit 125 before anything
    /// else is made.
    pub fn prepare() -> Result<PidNs> {
        // SAFETY: geteuid and getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let map = |id: u32| CString::new(format!("{id} {id} 1")).unwrap_or_default();
        let mut ns = PidNs {
            user_ns: false,
            uid_map: map(uid),
            gid_map: map(gid),
        };
        if has_effective(Capability::CAP_SYS_ADMIN) {
            return Ok(ns);
        }
        let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS;
        match unshare_in_child(flags) {
            Ok(0) => {
                ns.user_ns = true;
                crate::step!(
                    "--pid-ns: no CAP_SYS_ADMIN; the namespaces get a user namespace that maps \
                     uid {uid} and gid {gid} to themselves"
                );
                Ok(ns)
            }
            Ok(errno) => bail!(
                "--pid-ns: cg-test lacks CAP_SYS_ADMIN and cannot make an unprivileged user \
                 namespace either (unshare(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS): {}{}); run \
                 as root or where user namespaces are allowed, or drop --pid-ns",
                io::Error::from_raw_os_error(errno),
                userns_hint(errno)
            ),
            Err(e) => bail!("--pid-ns: fork for the user namespace check: {e}"),
        }
    }

    /// Make the init: clone with new pid and mount namespaces (and a user namespace
    /// when cg-test lacks CAP_SYS_ADMIN). 0 in the init, its pid in cg-test. Plain
    /// clone(2) where clone3 is missing or filtered (ENOSYS).
    pub fn clone_init(&self) -> io::Result<i32> {
        let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS;
        if self.user_ns {
            flags |= libc::CLONE_NEWUSER;
        }
        match crate::platform::clone3(flags as u64, None) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                // SAFETY: clone without CLONE_VM and with a null stack is a fork: the
                // child continues on a copy of our stack. x86-64 argument order.
                let ret = unsafe {
                    libc::syscall(
                        libc::SYS_clone,
                        (flags | libc::SIGCHLD) as libc::c_ulong,
                        0usize,
                        0usize,
                        0usize,
                        0usize,
                    )
                };
                if ret < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(ret as i32)
                }
            }
            r => r,
        }
    }

    /// In the init, first thing (only syscalls on memory prepared before the clone):
    /// die with cg-test, check cg-test did not die before that was asked for, write the
    /// user namespace's maps, make every mount private and mount a fresh /proc.
    pub fn enter(&self, alive: RawFd) -> Result<(), (NsStep, i32)> {
        // SAFETY: prctl, poll, open, write, close and mount on memory we own.
        unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            // Our parent is outside the namespace (getppid() is 0 here), so the usual
            // check is a pipe only cg-test writes to: hung up means cg-test is gone.
            let mut pfd = libc::pollfd {
                fd: alive,
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLHUP != 0 {
                libc::_exit(0);
            }
            if self.user_ns {
                write_file(c"/proc/self/setgroups", b"deny").map_err(|e| (NsStep::UserMaps, e))?;
                write_file(c"/proc/self/uid_map", self.uid_map.as_bytes())
                    .map_err(|e| (NsStep::UserMaps, e))?;
                write_file(c"/proc/self/gid_map", self.gid_map.as_bytes())
                    .map_err(|e| (NsStep::UserMaps, e))?;
            }
            let none = std::ptr::null::<libc::c_char>();
            if libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err((NsStep::PrivateMounts, errno()));
            }
            // The most restrictive flags: in a user namespace the new proc may not be
            // less restricted than the one it covers.
            if libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV,
                std::ptr::null(),
            ) != 0
            {
                return Err((NsStep::MountProc, errno()));
            }
        }
        Ok(())
    }
}

/// The init's life after it spawned the command (`command` is its pid inside the
/// namespace): wait for cg-test's go-ahead (cg-test first finds the command's pid as it
/// sees it, which needs the command unreaped), then reap every child, tell cg-test when
/// the command stops or ends, and exit when cg-test hangs up `control` (or dies: then
/// the parent-death signal kills us first). When the init exits, the kernel kills what
/// is left of the namespace; cg-test makes sure nothing is left by then.
///
/// Only syscalls: it is a fork of cg-test that never execs.
pub fn init_main(command: i32, status: RawFd, control: RawFd) -> ! {
    // SAFETY: plain syscalls on descriptors and memory of this process.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        let mut chld: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut chld);
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        let sfd = libc::signalfd(-1, &chld, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        let mut byte = 0u8;
        // The go-ahead; end-of-file: cg-test is gone.
        if read_retrying(control, &mut byte) <= 0 {
            libc::_exit(0);
        }
        let mut command_done = false;
        loop {
            loop {
                let mut st = 0;
                let pid = libc::waitpid(-1, &mut st, libc::WNOHANG | libc::WUNTRACED);
                if pid <= 0 {
                    break;
                }
                if pid == command && !command_done {
                    let rec = if libc::WIFSTOPPED(st) {
                        InitRecord::Stopped
                    } else {
                        command_done = true;
                        InitRecord::Exited(st)
                    };
                    let b = rec.encode();
                    libc::write(status, b.as_ptr() as *const libc::c_void, b.len());
                }
            }
            let mut fds = [
                libc::pollfd {
                    fd: sfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: control,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            libc::poll(fds.as_mut_ptr(), 2, -1);
            if fds[1].revents != 0 && read_retrying(control, &mut byte) <= 0 {
                libc::_exit(0);
            }
            if fds[0].revents != 0 {
                let mut info = [0u8; 128];
                while libc::read(sfd, info.as_mut_ptr() as *mut libc::c_void, info.len()) > 0 {}
            }
        }
    }
}

/// cg-test's handle on the init: its pid, the pipe the init reports on, and the pipe
/// cg-test holds the only write end of (the go-ahead; closing it tells the init to go).
#[derive(Debug)]
pub struct NsInit {
    pid: i32,
    status: Option<OwnedFd>,
    control: OwnedFd,
}

impl NsInit {
    pub fn new(pid: i32, status: OwnedFd, control: OwnedFd) -> NsInit {
        NsInit {
            pid,
            status: Some(status),
            control,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The report pipe, while the init may still write to it.
    pub fn status_fd(&self) -> Option<BorrowedFd<'_>> {
        self.status.as_ref().map(|f| f.as_fd())
    }

    /// Wait for the init's first record (the command was spawned); None if the init
    /// died first.
    pub fn read_first(&mut self) -> Option<InitRecord> {
        let fd = self.status.as_ref()?.as_raw_fd();
        let mut b = [0u8; InitRecord::SIZE];
        let mut got = 0;
        while got < b.len() {
            // SAFETY: reading into our buffer's remaining space.
            let n = unsafe {
                libc::read(
                    fd,
                    b[got..].as_mut_ptr() as *mut libc::c_void,
                    b.len() - got,
                )
            };
            match n {
                n if n > 0 => got += n as usize,
                0 => return None,
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => return None,
            }
        }
        // From now on the pipe is read without blocking, from the event loop.
        // SAFETY: fcntl on our own descriptor.
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
        InitRecord::decode(b)
    }

    /// Let the init start reaping (the command's pid has been resolved).
    pub fn go_ahead(&self) {
        // SAFETY: a one-byte write to our pipe.
        unsafe {
            libc::write(
                self.control.as_raw_fd(),
                b"g".as_ptr() as *const libc::c_void,
                1,
            )
        };
    }

    /// Every record the init has written so far, without blocking. At end-of-file (the
    /// init is gone) the pipe is closed, so nobody polls it again.
    pub fn read_records(&mut self) -> Vec<InitRecord> {
        let mut out = Vec::new();
        let Some(fd) = self.status.as_ref().map(|f| f.as_raw_fd()) else {
            return out;
        };
        loop {
            let mut b = [0u8; InitRecord::SIZE];
            // SAFETY: reading one whole record (the init writes them whole).
            let n = unsafe { libc::read(fd, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
            if n == b.len() as isize {
                out.extend(InitRecord::decode(b));
                continue;
            }
            if n == 0 {
                self.status = None;
            }
            return out;
        }
    }
}

/// The pid, as cg-test sees it, of the init's child that has `ns_pid` inside the
/// namespace: among the init's children (/proc/<init>/task/<init>/children, or a /proc
/// scan where the kernel lacks that file), the one whose innermost `NSpid` matches.
/// The init does not reap before cg-test's go-ahead, so the command is listed.
pub fn host_pid(init: i32, ns_pid: i32) -> Option<i32> {
    let children: Vec<i32> =
        match std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")) {
            Ok(text) => text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect(),
            Err(_) => crate::platform::process_ids()
                .into_iter()
                .filter(|&p| crate::platform::process_info(p).is_some_and(|i| i.ppid == init))
                .collect(),
        };
    let want = ns_pid.to_string();
    children.into_iter().find(|&c| {
        std::fs::read_to_string(format!("/proc/{c}/status"))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("NSpid:"))?.to_owned();
                Some(line.split_whitespace().last() == Some(want.as_str()))
            })
            .unwrap_or(false)
    })
}

/// `--harden`, prepared: the capability sets the command keeps (cg-test's own, less
/// CAP_SYS_ADMIN), and where cgroup2 is mounted, computed before fork so the child only
/// makes syscalls.
pub struct Harden {
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    /// Every cgroup2 mount point (from /proc/self/mountinfo), to be replaced in the
    /// child's mount namespace by a cgroup2 mount that shows only the leaf.
    cgroup2_mounts: Vec<CString>,
}

impl Harden {
    /// Check cg-test has what hardening needs: CAP_SYS_ADMIN for the cgroup namespace
    /// and CAP_SETPCAP to shrink the bounding set.
    pub fn prepare() -> Result<Harden> {
        for (cap, why) in [
            (
                Capability::CAP_SYS_ADMIN,
                "to make the cgroup namespace and remove it from the command",
            ),
            (Capability::CAP_SETPCAP, "to shrink the bounding set"),
        ] {
            if !has_effective(cap) {
                bail!(
                    "--harden: cg-test lacks {cap} ({why}); run it as root (with every \
                     capability), or drop --harden"
                );
            }
        }
        let without_admin = |set| -> Result<CapsHashSet> {
            let mut s = caps::read(None, set).map_err(|e| anyhow::anyhow!("--harden: {e}"))?;
            s.remove(&Capability::CAP_SYS_ADMIN);
            Ok(s)
        };
        let mountinfo = crate::cgroupfs::read("/proc/self/mountinfo")?;
        let cgroup2_mounts = crate::cgroupfs::cgroup2_mounts(&mountinfo)
            .into_iter()
            .filter_map(|m| CString::new(m.mount_point.as_os_str().as_encoded_bytes()).ok())
            .collect();
        Ok(Harden {
            effective: without_admin(CapSet::Effective)?,
            permitted: without_admin(CapSet::Permitted)?,
            inheritable: without_admin(CapSet::Inheritable)?,
            cgroup2_mounts,
        })
    }

    /// In the child, once it is in its leaf: a new cgroup namespace rooted there, and a
    /// new mount namespace in which every cgroup2 mount is replaced by one made inside
    /// that cgroup namespace, which shows the leaf as its root.
    ///
    /// The cgroup namespace alone keeps a root process from writing into a
    /// `cgroup.procs` outside it only where cgroup2 is mounted with `nsdelegate`
    /// (systemd does that; hybrid hosts and many containers do not): the kernel checks
    /// the namespace boundary for migrations only then. Replacing the mounts takes the
    /// outside cgroups out of the command's sight on every host; without CAP_SYS_ADMIN
    /// it cannot mount the hierarchy's real root again (even in a user namespace of its
    /// own, a cgroup2 mount made in its cgroup namespace shows the leaf).
    pub fn enter_cgroup_namespace(&self) -> Result<(), i32> {
        let none = std::ptr::null::<libc::c_char>();
        // SAFETY: unshare and mount on C strings prepared before fork.
        unsafe {
            if libc::unshare(libc::CLONE_NEWCGROUP | libc::CLONE_NEWNS) != 0 {
                return Err(errno());
            }
            // Private, so the covering mounts stay in this namespace.
            if libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(errno());
            }
            for mp in &self.cgroup2_mounts {
                // Away with the outside view first: the kernel refuses (EBUSY) to mount
                // the same filesystem on the root of a mount of it.
                if libc::umount2(mp.as_ptr(), libc::MNT_DETACH) != 0 {
                    return Err(errno());
                }
                if libc::mount(
                    c"cgroup2".as_ptr(),
                    mp.as_ptr(),
                    c"cgroup2".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(errno());
                }
            }
        }
        Ok(())
    }

    /// In the child, last before exec: CAP_SYS_ADMIN out of the bounding set (while
    /// CAP_SETPCAP is still effective), then out of the effective, inheritable and
    /// permitted sets in that order (effective must stay within permitted), then
    /// no_new_privs. On success the `caps` calls make only syscalls (capget, capset,
    /// prctl); only a failure allocates its message, and cg-test is single-threaded, so
    /// no other thread can hold the allocator's lock across the fork.
    pub fn drop_privileges(&self) -> Result<(), i32> {
        let fail = |_| errno();
        caps::drop(None, CapSet::Bounding, Capability::CAP_SYS_ADMIN).map_err(fail)?;
        caps::set(None, CapSet::Effective, &self.effective).map_err(fail)?;
        caps::set(None, CapSet::Inheritable, &self.inheritable).map_err(fail)?;
        caps::set(None, CapSet::Permitted, &self.permitted).map_err(fail)?;
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(errno());
        }
        Ok(())
    }
}

fn has_effective(cap: Capability) -> bool {
    caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false)
}

/// unshare(flags) in a child that exits at once: its errno, 0 on success.
fn unshare_in_child(flags: libc::c_int) -> io::Result<i32> {
    // SAFETY: cg-test is single-threaded; the child only calls unshare and _exit.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => return Err(io::Error::last_os_error()),
        0 => unsafe {
            let r = libc::unshare(flags);
            libc::_exit(if r == 0 { 0 } else { errno().clamp(1, 255) })
        },
        _ => {}
    }
    let mut st = 0;
    // SAFETY: waiting for the child we just forked.
    while unsafe { libc::waitpid(pid, &mut st, 0) } < 0 {
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else {
        libc::EPERM
    })
}

fn userns_hint(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => {
            " (a seccomp filter such as Docker's default profile, or a sysctl such as \
             kernel.unprivileged_userns_clone=0, forbids it)"
        }
        libc::ENOSPC => " (user.max_user_namespaces is reached or 0)",
        libc::EINVAL => " (the kernel lacks CONFIG_USER_NS or CONFIG_PID_NS)",
        _ => "",
    }
}

/// Write `data` to an existing file in one write (the maps must be written whole).
unsafe fn write_file(path: &std::ffi::CStr, data: &[u8]) -> Result<(), i32> {
    // SAFETY: open, write and close on a valid C string and our buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let n = libc::write(fd, data.as_ptr() as *const libc::c_void, data.len());
        let err = errno();
        libc::close(fd);
        if n != data.len() as isize {
            return Err(err);
        }
    }
    Ok(())
}

/// read(2) of one byte, retrying on EINTR: 1, 0 at end-of-file, -1 on error.
unsafe fn read_retrying(fd: RawFd, byte: &mut u8) -> isize {
    loop {
        // SAFETY: a one-byte read into our variable.
        let n = unsafe { libc::read(fd, byte as *mut u8 as *mut libc::c_void, 1) };
        if n >= 0 || errno() != libc::EINTR {
            return n;
        }
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
