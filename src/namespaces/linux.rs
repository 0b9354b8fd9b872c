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

/// The capabilities `--harden` takes from the command, from every set (bounding,
/// effective, permitted, inheritable, ambient), each for a route out of the leaf or
/// into the kernel that a root process would otherwise have.
pub const DROPPED: [(Capability, &str); 9] = [
    (
        Capability::CAP_SYS_ADMIN,
        "mounting the hierarchy again, setns into another namespace",
    ),
    (
        Capability::CAP_SYS_PTRACE,
        "ptrace, /proc/PID/root, /proc/PID/fd and /proc/PID/mem of the namespace's init",
    ),
    (
        Capability::CAP_DAC_READ_SEARCH,
        "open_by_handle_at on a file handle of a cgroup outside the leaf",
    ),
    (Capability::CAP_SYS_MODULE, "loading kernel code"),
    (Capability::CAP_SYS_RAWIO, "/dev/mem, /dev/port, iopl"),
    (Capability::CAP_SYS_BOOT, "kexec_load and reboot"),
    (
        Capability::CAP_BPF,
        "BPF programs, which run in every process's context",
    ),
    (
        Capability::CAP_PERFMON,
        "kprobes and perf events with BPF programs",
    ),
    (
        Capability::CAP_SYS_TTY_CONFIG,
        "vhangup of the terminal, which hangs up the shell outside that shares it",
    ),
];

/// The files of the leaf the command may still write: the ones the kernel itself leaves
/// writable at a cgroup namespace's root under `nsdelegate` (CFTYPE_NS_DELEGATABLE), so
/// that a nested run can place processes below the leaf and give them controllers.
const DELEGATABLE: [&[u8]; 3] = [
    b"cgroup.procs",
    b"cgroup.threads",
    b"cgroup.subtree_control",
];

/// Where a step of `--harden` failed (the init's part, then the command's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HardenStep {
    /// prctl(PR_SET_DUMPABLE, 0) in the init.
    InitDumpable,
    /// Detaching the outside cgroup2 mounts from the init's mount namespace.
    InitDetach,
    /// Making sysfs, the cgroup v1 mounts, /proc/sys and /proc/sysrq-trigger read-only.
    InitReadOnly,
    /// unshare(CLONE_NEWCGROUP | CLONE_NEWNS) in the command's child.
    Unshare,
    /// Mounting cgroup2 from inside the cgroup namespace.
    MountCgroup2,
    /// Binding the leaf's interface files read-only.
    SealLeaf,
    /// Dropping the capabilities, no_new_privs.
    DropCapabilities,
    /// Installing the seccomp filter.
    Seccomp,
}

/// `--harden`, prepared before anything is made: the capability sets the command keeps,
/// the mounts to change, and the seccomp filter, so the init and the child make only
/// syscalls on this memory.
pub struct Harden {
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    /// Every cgroup2 mount point (from /proc/self/mountinfo, each once): detached in the
    /// init's mount namespace, and mounted again in the command's from inside its
    /// cgroup namespace, which shows the leaf as the root.
    cgroup2_mounts: Vec<CString>,
    /// The mount point of every sysfs and cgroup v1 mount: made read-only, with what
    /// is mounted below them, in the init's mount namespace (the command's is a copy).
    readonly_trees: Vec<CString>,
    /// The seccomp filter (see [`user_namespace_filter`]).
    filter: Vec<libc::sock_filter>,
}

/// Files of the fresh /proc bound onto themselves read-only: the sysctls (a `|` in
/// kernel.core_pattern, kernel.modprobe and the other usermode-helper paths run a
/// program as root outside the run) and the kernel's emergency actions (which reach
/// every process on the machine).
const READONLY_PROC: [&std::ffi::CStr; 2] = [c"/proc/sys", c"/proc/sysrq-trigger"];

impl Harden {
    /// Check cg-test has what hardening needs (CAP_SYS_ADMIN for the namespaces and
    /// mounts, CAP_SETPCAP to shrink the bounding set, mount_setattr(2)), and prepare.
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
        // SAFETY: a probe with an invalid descriptor: ENOSYS if the call is missing,
        // EBADF or EINVAL otherwise; it changes nothing.
        let probe = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                -1,
                c"".as_ptr(),
                0,
                std::ptr::null::<MountAttr>(),
                0,
            )
        };
        if probe != 0 && errno() == libc::ENOSYS {
            bail!(
                "--harden: this kernel lacks mount_setattr(2) (Linux 5.12), which --harden \
                 needs to make /sys and /proc/sys read-only for the command; drop --harden"
            );
        }
        let Some(filter) = user_namespace_filter() else {
            bail!(
                "--harden: no seccomp filter for this architecture (x86_64 and aarch64 \
                 only); drop --harden"
            );
        };
        let without = |set| -> Result<CapsHashSet> {
            let mut s = caps::read(None, set).map_err(|e| anyhow::anyhow!("--harden: {e}"))?;
            for (cap, _) in DROPPED {
                s.remove(&cap);
            }
            Ok(s)
        };
        let mountinfo = crate::cgroupfs::read("/proc/self/mountinfo")?;
        let mut cgroup2_mounts: Vec<CString> = Vec::new();
        for m in crate::cgroupfs::cgroup2_mounts(&mountinfo) {
            let Ok(c) = CString::new(m.mount_point.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            if !cgroup2_mounts.contains(&c) {
                cgroup2_mounts.push(c);
            }
        }
        let readonly_trees = mount_points(&mountinfo, &["sysfs", "cgroup"])
            .into_iter()
            .filter_map(|p| CString::new(p).ok())
            .collect();
        Ok(Harden {
            effective: without(CapSet::Effective)?,
            permitted: without(CapSet::Permitted)?,
            inheritable: without(CapSet::Inheritable)?,
            cgroup2_mounts,
            readonly_trees,
            filter,
        })
    }

    /// In the namespace's init, after its fresh /proc is mounted and before it forks
    /// the command, so that the init is no way out either:
    /// - not dumpable: with that, and the command lacking CAP_SYS_PTRACE, the kernel
    ///   refuses the command ptrace and /proc/1/{root,cwd,fd,mem,environ,ns} of the
    ///   init (which has CAP_SYS_ADMIN, holds the leaf's directory on the outside
    ///   mount, and lives in the outside cgroup namespace);
    /// - the outside cgroup2 mounts detached from its mount namespace (the init uses
    ///   only the leaf's descriptors);
    /// - every sysfs and cgroup v1 mount read-only, with what is mounted below, and
    ///   /proc/sys and /proc/sysrq-trigger bound onto themselves read-only. The mount
    ///   namespace is private (PidNs::enter), so the host sees none of this; the
    ///   command's mount namespace is a copy of this one.
    pub fn seal_init(&self) -> Result<(), (HardenStep, i32)> {
        // SAFETY: prctl, statfs, umount2, mount and mount_setattr on C strings and
        // memory prepared before the clone.
        unsafe {
            if libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) != 0 {
                return Err((HardenStep::InitDumpable, errno()));
            }
            for mp in &self.cgroup2_mounts {
                // Every cgroup2 mount stacked on this point, however many.
                while is_cgroup2(mp) {
                    if libc::umount2(mp.as_ptr(), libc::MNT_DETACH) != 0 {
                        return Err((HardenStep::InitDetach, errno()));
                    }
                }
            }
            for tree in &self.readonly_trees {
                match mount_setattr_readonly(tree, libc::AT_RECURSIVE as u32) {
                    // Mounted over since mountinfo was read (the path now leads
                    // elsewhere, or nowhere): unreachable, so nothing to protect.
                    Err(libc::ENOENT) | Err(libc::EINVAL) => {}
                    r => r.map_err(|e| (HardenStep::InitReadOnly, e))?,
                }
            }
            let none = std::ptr::null::<libc::c_char>();
            for path in READONLY_PROC {
                if libc::mount(
                    path.as_ptr(),
                    path.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    // A kernel without sysrq has no /proc/sysrq-trigger.
                    if errno() == libc::ENOENT {
                        continue;
                    }
                    return Err((HardenStep::InitReadOnly, errno()));
                }
                mount_setattr_readonly(path, libc::AT_RECURSIVE as u32)
                    .map_err(|e| (HardenStep::InitReadOnly, e))?;
            }
        }
        Ok(())
    }

    /// In the child, once it is in its leaf: a new cgroup namespace rooted there, and a
    /// new mount namespace (a copy of the init's, where the outside cgroup2 mounts are
    /// gone) in which cgroup2 is mounted again on each of their mount points from
    /// inside the cgroup namespace, which shows the leaf as the hierarchy's root; then
    /// every interface file of the leaf the command could raise a limit or change the
    /// leaf with (memory.max, pids.max, cpu.max, cgroup.max.*, cgroup.freeze, ...) is
    /// bound onto itself read-only, which is what `nsdelegate` would do.
    ///
    /// The cgroup namespace alone keeps a root process from writing into a
    /// `cgroup.procs` outside it only where cgroup2 is mounted with `nsdelegate`
    /// (systemd does that; hybrid hosts and many containers do not): the kernel checks
    /// the namespace boundary for migrations, and refuses writes to the namespace
    /// root's files, only then. Without CAP_SYS_ADMIN the command cannot mount the
    /// hierarchy's real root again, nor remove the read-only binds; the seccomp filter
    /// keeps it from a user namespace of its own, where a cgroup2 mount would show its
    /// leaf's files writable again.
    pub fn enter_cgroup_namespace(&self) -> Result<(), (HardenStep, i32)> {
        // SAFETY: unshare and mount on C strings prepared before fork; seal_leaf uses
        // buffers on the stack.
        unsafe {
            if libc::unshare(libc::CLONE_NEWCGROUP | libc::CLONE_NEWNS) != 0 {
                return Err((HardenStep::Unshare, errno()));
            }
            for mp in &self.cgroup2_mounts {
                if libc::mount(
                    c"cgroup2".as_ptr(),
                    mp.as_ptr(),
                    c"cgroup2".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME,
                    std::ptr::null(),
                ) != 0
                {
                    // A single file of the hierarchy bound somewhere: detached in the
                    // init, nothing to show in its place.
                    if errno() == libc::ENOTDIR {
                        continue;
                    }
                    return Err((HardenStep::MountCgroup2, errno()));
                }
                seal_leaf(mp).map_err(|e| (HardenStep::SealLeaf, e))?;
            }
        }
        Ok(())
    }

    /// In the child, last before exec: the `DROPPED` capabilities out of the bounding
    /// set (while CAP_SETPCAP is still effective) and the ambient set, then out of the
    /// effective, inheritable and permitted sets in that order (effective must stay
    /// within permitted); no_new_privs; and the seccomp filter. On success the `caps`
    /// calls make only syscalls (capget, capset); only a failure allocates its
    /// message, and cg-test is single-threaded, so no other thread can hold the
    /// allocator's lock across the fork.
    pub fn drop_privileges(&self) -> Result<(), (HardenStep, i32)> {
        let fail = |_| (HardenStep::DropCapabilities, errno());
        // SAFETY: prctl on this process.
        unsafe {
            for (cap, _) in DROPPED {
                let c = cap.index() as libc::c_ulong;
                // EINVAL: a capability this kernel does not know (CAP_BPF before 5.8),
                // which nothing can hold.
                if libc::prctl(libc::PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno() != libc::EINVAL {
                    return Err((HardenStep::DropCapabilities, errno()));
                }
                if libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_LOWER as libc::c_ulong,
                    c,
                    0,
                    0,
                ) != 0
                    && errno() != libc::EINVAL
                {
                    return Err((HardenStep::DropCapabilities, errno()));
                }
            }
        }
        caps::set(None, CapSet::Effective, &self.effective).map_err(fail)?;
        caps::set(None, CapSet::Inheritable, &self.inheritable).map_err(fail)?;
        caps::set(None, CapSet::Permitted, &self.permitted).map_err(fail)?;
        // SAFETY: plain prctl; the filter program lives in self, prepared before fork.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) != 0 {
                return Err((HardenStep::DropCapabilities, errno()));
            }
            let prog = libc::sock_fprog {
                len: self.filter.len() as libc::c_ushort,
                filter: self.filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog as libc::c_ulong,
                0,
                0,
            ) != 0
            {
                return Err((HardenStep::Seccomp, errno()));
            }
        }
        Ok(())
    }
}

/// struct mount_attr of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// Make the mount at `path` read-only (`flags`: AT_RECURSIVE for what is below it too).
/// Per mount, never the superblock: other mount namespaces keep their view.
unsafe fn mount_setattr_readonly(path: &std::ffi::CStr, flags: u32) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the path is a C string, attr lives on our stack.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(errno());
    }
    Ok(())
}

/// Is a cgroup2 filesystem what `path` leads to (the top of its mount stack)?
// f_type and the constant have different types on glibc and musl, the same on some.
#[allow(clippy::unnecessary_cast)]
unsafe fn is_cgroup2(path: &std::ffi::CStr) -> bool {
    // SAFETY: statfs into a zeroed struct on our stack.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut st) == 0
            && st.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64
    }
}

/// Bind every writable interface file of the cgroup2 mount at `mp` (the leaf, as the
/// mount's root) onto itself read-only, except the [`DELEGATABLE`] ones. Only
/// syscalls, on buffers on the stack: getdents64 over the directory, fstatat for the
/// mode, mount(MS_BIND) and mount_setattr on `mp/<name>`.
unsafe fn seal_leaf(mp: &std::ffi::CStr) -> Result<(), i32> {
    // SAFETY (whole function): syscalls on our descriptor and stack buffers; each
    // dirent is read within the length getdents64 returned.
    unsafe {
        let dir = libc::open(
            mp.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if dir < 0 {
            return Err(errno());
        }
        let mut ents = [0u8; 4096];
        let mut path = [0u8; libc::PATH_MAX as usize];
        let base = mp.to_bytes();
        let result = 'scan: loop {
            let n = libc::syscall(
                libc::SYS_getdents64,
                dir,
                ents.as_mut_ptr() as *mut libc::c_void,
                ents.len(),
            );
            if n < 0 {
                break Err(errno());
            }
            if n == 0 {
                break Ok(());
            }
            let mut off = 0usize;
            while off + 19 < n as usize {
                // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
                let reclen = u16::from_ne_bytes([ents[off + 16], ents[off + 17]]) as usize;
                if reclen == 0 {
                    break;
                }
                let name_at = off + 19;
                off += reclen;
                let raw = &ents[name_at..off.min(n as usize)];
                let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
                if name.is_empty() || name[0] == b'.' || DELEGATABLE.contains(&name) {
                    continue;
                }
                let mut st: libc::stat = std::mem::zeroed();
                if libc::fstatat(
                    dir,
                    ents[name_at..].as_ptr() as *const libc::c_char,
                    &mut st,
                    libc::AT_SYMLINK_NOFOLLOW,
                ) != 0
                {
                    break 'scan Err(errno());
                }
                if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_mode & 0o222 == 0 {
                    continue;
                }
                let len = base.len() + 1 + name.len();
                if len + 1 > path.len() {
                    break 'scan Err(libc::ENAMETOOLONG);
                }
                path[..base.len()].copy_from_slice(base);
                path[base.len()] = b'/';
                path[base.len() + 1..len].copy_from_slice(name);
                path[len] = 0;
                let p = path.as_ptr() as *const libc::c_char;
                if libc::mount(p, p, std::ptr::null(), libc::MS_BIND, std::ptr::null()) != 0 {
                    break 'scan Err(errno());
                }
                let file = std::ffi::CStr::from_bytes_with_nul_unchecked(&path[..=len]);
                if let Err(e) = mount_setattr_readonly(file, 0) {
                    break 'scan Err(e);
                }
            }
        };
        libc::close(dir);
        result
    }
}

/// The mount points of every mount whose filesystem type is one of `types`, in
/// mountinfo order.
fn mount_points(mountinfo: &str, types: &[&str]) -> Vec<Vec<u8>> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            if !types.contains(&fstype) {
                return None;
            }
            Some(unescape_octal(left.split_whitespace().nth(4)?))
        })
        .collect()
}

/// mountinfo's `\ooo` escapes (space, tab, newline, backslash), undone.
fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |j: usize| b.get(j).is_some_and(|c| (b'0'..=b'7').contains(c));
        if b[i] == b'\\' && octal(i + 1) && octal(i + 2) && octal(i + 3) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The seccomp filter `--harden` installs last before exec (no_new_privs is set, so it
/// needs no privilege, and it is inherited by everything the command starts):
/// - no new user namespace (unshare or clone with CLONE_NEWUSER: EPERM). A user
///   namespace would give the command CAP_SYS_ADMIN over it, in which a cgroup
///   namespace and cgroup2 mount of its own show its leaf's interface files writable
///   again (seen: a root process without CAP_SYS_ADMIN raised its leaf's
///   cgroup.max.descendants that way);
/// - clone3, whose flags a filter cannot read, answers ENOSYS (glibc, musl and Go then
///   use clone; Docker's profile does the same);
/// - no TIOCSTI or TIOCLINUX ioctl (EPERM): with the terminal as its controlling
///   terminal, any process can push input into it (where dev.tty.legacy_tiocsti is 1),
///   which the shell outside reads and runs once cg-test exits; bubblewrap filters the
///   same two.
///
/// Both the native and the 32-bit compat syscall tables are covered (and x32 on
/// x86_64); None on an architecture it has no numbers for.
pub fn user_namespace_filter() -> Option<Vec<libc::sock_filter>> {
    /// No syscall has this number: the slot of an ABI without a second ioctl number.
    const NONE: u32 = 0x7fff_fffe;
    // Per ABI: (audit arch, unshare, clone, ioctl, ioctl of x32, clone3).
    #[cfg(target_arch = "x86_64")]
    let abis: [(u32, u32, u32, u32, u32, u32); 2] = [
        (0xc000_003e, 272, 56, 16, 514, 435),
        (0x4000_0003, 310, 120, 54, NONE, 435),
    ];
    #[cfg(target_arch = "aarch64")]
    let abis: [(u32, u32, u32, u32, u32, u32); 2] = [
        (0xc000_00b7, 97, 220, 29, NONE, 435),
        (0x4000_0028, 337, 120, 54, NONE, 435),
    ];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return None;
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        const ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
        const TIOCSTI: u32 = 0x5412;
        const TIOCLINUX: u32 = 0x541c;
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let stmt = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jump = |op: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: (libc::BPF_JMP | op | libc::BPF_K) as u16,
            jt,
            jf,
            k,
        };
        let ld = |offset: u32| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
        let ret = |k: u32| stmt(libc::BPF_RET | libc::BPF_K, k);
        // struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6]. Little-endian:
        // the low half of args[0] (clone's and unshare's flags) is at 16, of args[1]
        // (ioctl's request, an unsigned int to the kernel) at 24.
        const NR: u32 = 0;
        const ARCH: u32 = 4;
        const ARG0_LOW: u32 = 16;
        const ARG1_LOW: u32 = 24;
        // One block of 17 per ABI; a jump's offset counts the instructions it skips.
        //  0 ld arch            1 not this ABI: on to the next block
        //  2 ld nr              3 and mask (x32 calls: native arch, bit 30 set)
        //  4 unshare -> 10      5 clone -> 10      6 ioctl -> 12      7 ioctl (x32) -> 12
        //  8 clone3? else -> 16 (allow)            9 ENOSYS
        // 10 ld flags          11 CLONE_NEWUSER set -> 15, else -> 16
        // 12 ld request        13 TIOCSTI -> 15    14 TIOCLINUX -> 15, else -> 16
        // 15 EPERM             16 ALLOW
        const BLOCK: u8 = 17;
        let mut f = Vec::new();
        for (i, &(arch, unshare, clone, ioctl, ioctl_x32, clone3)) in abis.iter().enumerate() {
            let mask = if i == 0 && cfg!(target_arch = "x86_64") {
                !0x4000_0000
            } else {
                !0
            };
            f.extend([
                ld(ARCH),
                jump(libc::BPF_JEQ, arch, 0, BLOCK - 2),
                ld(NR),
                stmt(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, mask),
                jump(libc::BPF_JEQ, unshare, 5, 0),
                jump(libc::BPF_JEQ, clone, 4, 0),
                jump(libc::BPF_JEQ, ioctl, 5, 0),
                jump(libc::BPF_JEQ, ioctl_x32, 4, 0),
                jump(libc::BPF_JEQ, clone3, 0, 7),
                ret(enosys),
                ld(ARG0_LOW),
                jump(libc::BPF_JSET, libc::CLONE_NEWUSER as u32, 3, 4),
                ld(ARG1_LOW),
                jump(libc::BPF_JEQ, TIOCSTI, 1, 0),
                jump(libc::BPF_JEQ, TIOCLINUX, 0, 1),
                ret(eperm),
                ret(ALLOW),
            ]);
        }
        // An ABI of neither table (none exists on this architecture).
        f.push(ret(ALLOW));
        Some(f)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_by_type() {
        let mi = "23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n\
                  31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                  35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                  50 27 0:40 / /mnt/a\\040b rw - cgroup cgroup rw,pids\n";
        let got = mount_points(mi, &["sysfs", "cgroup"]);
        let want: Vec<&[u8]> = vec![b"/sys", b"/sys/fs/cgroup/memory", b"/mnt/a b"];
        assert_eq!(got, want);
    }

    /// The filter, installed in a forked child: a new user namespace is refused by
    /// unshare and by clone, clone3 says ENOSYS, TIOCSTI and TIOCLINUX are refused,
    /// and the rest passes (an unshare without CLONE_NEWUSER and another ioctl reach
    /// the kernel, which answers for itself).
    #[test]
    fn the_filter_refuses_user_namespaces() {
        let filter = user_namespace_filter().expect("a filter for this architecture");
        // SAFETY: the child makes only syscalls on memory prepared before the fork, and
        // exits with a bit per check that failed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                let prog = libc::sock_fprog {
                    len: filter.len() as libc::c_ushort,
                    filter: filter.as_ptr() as *mut libc::sock_filter,
                };
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0);
                if libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                    &prog as *const libc::sock_fprog as libc::c_ulong,
                    0,
                    0,
                ) != 0
                {
                    libc::_exit(255);
                }
                let mut bad = 0;
                if libc::unshare(libc::CLONE_NEWUSER) == 0 || errno() != libc::EPERM {
                    bad |= 1;
                }
                if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) == 0
                    || errno() != libc::EPERM
                {
                    bad |= 2;
                }
                let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
                if libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) >= 0
                    || errno() != libc::EPERM
                {
                    bad |= 4;
                }
                if libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) >= 0
                    || errno() != libc::ENOSYS
                {
                    bad |= 8;
                }
                // unshare(0) does nothing and succeeds: the filter let it through.
                if libc::unshare(0) != 0 {
                    bad |= 16;
                }
                // Whatever fd -1 is, the kernel would say EBADF: EPERM is the filter's.
                let c = 0u8;
                if libc::ioctl(-1, libc::TIOCSTI, &c) == 0 || errno() != libc::EPERM {
                    bad |= 32;
                }
                if libc::ioctl(-1, 0x541c, &c) == 0 || errno() != libc::EPERM {
                    bad |= 64;
                }
                let mut t: libc::termios = std::mem::zeroed();
                if libc::ioctl(-1, libc::TCGETS, &mut t) == 0 || errno() != libc::EBADF {
                    bad |= 128;
                }
                libc::_exit(bad);
            }
        }
        let mut st = 0;
        // SAFETY: waiting for our child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(libc::WIFEXITED(st), "status {st:#x}");
        assert_eq!(libc::WEXITSTATUS(st), 0, "failed checks (bits)");
    }
}
