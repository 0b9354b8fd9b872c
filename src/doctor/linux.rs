//! The Linux probes behind `cg-test doctor`: reads of /proc and cgroupfs, and the
//! things that can only be known by trying them.
//!
//! Every try that could change cg-test's own process (a namespace, the subreaper, a
//! uid) runs in a forked child that exits at once and reports the errno as its exit
//! code, so doctor leaves the process as it found it. The one cgroup it makes is the
//! leaf a run would make (`CgroupLeaf::create`, named like a run's leaf so that a
//! `cg-test gc` recognises it should doctor be killed in the few microseconds it
//! exists); it is removed before the report is printed, on every path.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{
    cgroup_mounts, classify_layout, plan_controllers, v1_bound_controllers, v1_hierarchy_names,
    Auto, CgroupReport, Check, PidNamespace, Position, Report, SCHEMA,
};
use crate::cgroupfs;
use crate::cli::{Args, Config};
use crate::isolation::cgroup::CgroupLeaf;
use crate::isolation::Isolation;
use crate::isolation::Options;
use crate::platform;
use crate::run_id::RunId;
use crate::spawn::Placement;

/// The inode numbers the kernel gives its initial namespaces (include/linux/proc_ns.h:
/// PROC_PID_INIT_INO, PROC_CGROUP_INIT_INO); a process in any other namespace sees a
/// different number in /proc/self/ns/*.
const PID_INIT_INO: u64 = 0xEFFF_FFFC;
const CGROUP_INIT_INO: u64 = 0xEFFF_FFFB;

/// Bit of CAP_SYS_ADMIN in the capability sets (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;

/// The uid and gid the unprivileged user-namespace try drops to (nobody).
const NOBODY: libc::uid_t = 65534;
/// Exit code of a probe child that could not drop to [`NOBODY`].
const COULD_NOT_DROP: i32 = 250;

pub fn collect() -> Report {
    // A SIGCHLD ignored by whoever started us would make the kernel reap the probe
    // children before we can read their exit codes. Doctor runs nothing else.
    // SAFETY: resetting a disposition to its default.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };

    let mountinfo = read("/proc/self/mountinfo");
    let mounts = cgroup_mounts(&mountinfo);
    let layout = classify_layout(&mounts);
    let v2_mounts = cgroupfs::cgroup2_mounts(&mountinfo);
    let own_path = cgroupfs::unified_path(&read("/proc/self/cgroup"));
    // The mount a run would use (cgroupfs::choose_mount, as every part of cg-test
    // chooses it); when none would do, the first that holds our cgroup (a read-only
    // view is still worth describing), else the first one.
    let chosen = cgroupfs::own_cgroup().ok();
    let (v2_mount, own_dir) = match &chosen {
        Some(c) => (Some(c.mount.clone()), Some(c.dir.clone())),
        None => {
            let holding = own_path
                .as_deref()
                .and_then(|p| v2_mounts.iter().find(|m| m.holds(p)).map(|m| (m, p)));
            match holding {
                Some((m, p)) => (Some(m.clone()), Some(m.dir_of(p))),
                None => (v2_mounts.first().cloned(), None),
            }
        }
    };

    let namespace = namespace_inode("cgroup").map(|ino| {
        if ino == CGROUP_INIT_INO {
            "initial"
        } else {
            "private"
        }
    });
    let position = own_path.as_deref().map(|p| match (p, namespace) {
        ("/", Some("private")) => Position::NamespaceRoot,
        ("/", _) => Position::Root,
        _ => Position::Nested,
    });

    let status = read("/proc/self/status");
    let euid =
        status_field(&status, "Uid:").and_then(|v| v.split_whitespace().nth(1)?.parse().ok());

    let mut cgroup = CgroupReport {
        layout,
        cgroup2_mount: v2_mount.as_ref().map(|m| m.mount_point.clone()),
        cgroup2_read_only: v2_mount.as_ref().map(|m| m.read_only),
        v1_hierarchies: v1_hierarchy_names(&mounts),
        own_path: own_path.clone(),
        own_dir: own_dir.clone(),
        position,
        namespace: namespace.map(String::from),
        processes: None,
        writable: None,
        procs_writable: None,
        delegated: None,
        owner_uid: None,
        controllers: Default::default(),
        kill: None,
        freeze: None,
    };
    if let Some(dir) = &own_dir {
        describe_own_cgroup(&mut cgroup, dir, euid);
    }

    // The verdict: make the leaf a run would make, and try both ways into it.
    let cfg = default_config();
    let run_id = RunId::new();
    let clone3 = try_clone3(None);
    let (clone_into_cgroup, migrate, auto) = match CgroupLeaf::create(
        &Options {
            keep_stale: true,
            ..cfg.isolation_options()
        },
        &run_id,
    ) {
        Ok(leaf) => probe_leaf(leaf, own_dir.as_deref(), &mut cgroup),
        Err(why) => {
            let untried = || Check::untried("no leaf could be made (see auto)");
            let auto = Auto {
                isolation: "pgroup",
                leaf_parent: None,
                reason: Some(why.to_string()),
                spawn: "fork",
                kill: "signal",
                subreaper: false,
            };
            (untried(), untried(), auto)
        }
    };

    let subreaper = in_child_check(|| {
        // SAFETY: prctl in a child that exits right after.
        errno_of(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) })
    });
    let mut auto = auto;
    auto.subreaper = subreaper.works();

    let user_namespace = in_child_check(|| unshare(libc::CLONE_NEWUSER));
    let unprivileged_user_namespace = if euid == Some(0) {
        match in_child(|| {
            if !drop_to_nobody() {
                return COULD_NOT_DROP;
            }
            unshare(libc::CLONE_NEWUSER)
        }) {
            Ok(COULD_NOT_DROP) => Check::untried("could not become uid 65534 (no CAP_SETUID?)"),
            Ok(code) => errno_check(code, ""),
            Err(e) => Check::untried(format!("fork: {e}")),
        }
    } else {
        user_namespace.clone()
    };
    let unprivileged_user_namespace = explain_userns(unprivileged_user_namespace);

    Report {
        schema: SCHEMA,
        os: "linux",
        kernel: kernel_release(),
        pid: std::process::id(),
        // SAFETY: getpid cannot fail.
        pid1: unsafe { libc::getpid() } == 1,
        euid,
        cgroup,
        clone3,
        clone_into_cgroup,
        migrate,
        pidfd_open: try_pidfd_open(),
        subreaper,
        seccomp: status_field(&status, "Seccomp:").map(|v| {
            match v.trim() {
                "0" => "none",
                "1" => "strict",
                "2" => "filter",
                other => other,
            }
            .to_string()
        }),
        no_new_privs: status_field(&status, "NoNewPrivs:").map(|v| v.trim() == "1"),
        cap_sys_admin: status_field(&status, "CapEff:")
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .map(|caps| caps & (1 << CAP_SYS_ADMIN) != 0),
        user_namespace,
        unprivileged_user_namespace,
        pid_namespace: PidNamespace {
            initial: namespace_inode("pid").map(|ino| ino == PID_INIT_INO),
            unshare: in_child_check(|| unshare(libc::CLONE_NEWPID)),
            with_user_namespace: in_child_check(|| {
                unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID)
            }),
        },
        auto,
    }
}

/// The config of a plain `cg-test -- true`: what `auto` runs with by default.
fn default_config() -> Config {
    let args = <Args as clap::Parser>::parse_from(["cg-test", "--", "true"]);
    // A fixed, valid argv: from_args cannot fail on it.
    Config::from_args(args).expect("the default config is valid")
}

/// Facts about our own cgroup's directory that reading can tell.
fn describe_own_cgroup(cg: &mut CgroupReport, dir: &Path, euid: Option<u32>) {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| cgroupfs::parse_procs(&t).len())
        .ok();
    cg.processes = procs;
    cg.writable = Some(access_w(dir));
    cg.procs_writable = Some(access_w(&dir.join("cgroup.procs")));
    let owner = std::fs::metadata(dir).map(|m| m.uid()).ok();
    cg.owner_uid = owner;
    cg.delegated = owner.zip(euid).map(|(o, e)| e != 0 && o == e);
    // The root has no cgroup.kill / cgroup.freeze of its own; a nested cgroup does.
    if cg.position != Some(Position::Root) && cg.position != Some(Position::NamespaceRoot) {
        cg.kill = Some(dir.join("cgroup.kill").exists());
        cg.freeze = Some(dir.join("cgroup.freeze").exists());
    }
    let words = |file: &str| -> Vec<String> {
        read(dir.join(file))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    cg.controllers = plan_controllers(
        words("cgroup.controllers"),
        words("cgroup.subtree_control"),
        v1_bound_controllers(&read("/proc/cgroups")),
        cg.position,
        procs.unwrap_or(0),
        &dir.display().to_string(),
    );
}

/// With the leaf made: look at it, clone a child into it, let another child write
/// itself into it, remove it. Returns (clone_into_cgroup, migrate, auto).
fn probe_leaf(
    mut leaf: CgroupLeaf,
    own_dir: Option<&Path>,
    cg: &mut CgroupReport,
) -> (Check, Check, Auto) {
    let p = leaf.path();
    cg.kill = Some(p.join("cgroup.kill").exists());
    cg.freeze = Some(p.join("cgroup.freeze").exists());
    let (into, migrate) = match leaf.placement() {
        Placement::Cgroup { dir, procs, .. } => (try_clone3(Some(dir)), try_migrate(procs)),
        Placement::Anywhere => (
            Check::untried("the leaf offered no directory"),
            Check::untried("the leaf offered no cgroup.procs"),
        ),
    };
    // Both children have been reaped, so the leaf is empty and rmdir works; the
    // leaf's own Drop would kill and remove it too if anything were left.
    let removed = leaf.release();
    drop(leaf);
    let mut auto = Auto {
        isolation: "cgroup",
        leaf_parent: own_dir.map(Path::to_path_buf),
        reason: None,
        spawn: if into.works() { "clone3" } else { "fork" },
        kill: if cg.kill == Some(true) {
            "cgroup.kill"
        } else {
            "signal"
        },
        subreaper: false,
    };
    if !into.works() && !migrate.works() {
        // What a run would find at spawn time: the child cannot enter the leaf, and
        // `auto` falls back before the command runs.
        auto.isolation = "pgroup";
        auto.spawn = "fork";
        auto.kill = "signal";
        auto.reason = Some(format!(
            "the command could not enter the leaf: {}",
            migrate.detail
        ));
    }
    if let Err(e) = removed {
        auto.reason = Some(format!(
            "{}doctor's probe leaf could not be removed: {e:#}",
            auto.reason.map(|r| r + "; ").unwrap_or_default()
        ));
    }
    (into, migrate, auto)
}

/// clone3 with `exit_signal = SIGCHLD`, into `cgroup` when given: the child exits at
/// once and is reaped.
fn try_clone3(cgroup: Option<BorrowedFd<'_>>) -> Check {
    let flags = if cgroup.is_some() {
        platform::CLONE_INTO_CGROUP
    } else {
        0
    };
    // The plain wrapper (no fallback): doctor must see a refusal, not hide it.
    let ret = platform::clone3(flags, cgroup);
    match ret {
        // SAFETY: the child leaves at once without running any Rust code.
        Ok(0) => unsafe { libc::_exit(0) },
        Ok(pid) => match wait_exit(pid) {
            Ok(_) if cgroup.is_some() => {
                Check::yes("tried: a child started in a probe leaf and exited")
            }
            Ok(_) => Check::yes("tried"),
            Err(e) => Check::no(format!("the child did not exit normally: {e}")),
        },
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            let hint = match errno {
                libc::ENOSYS => {
                    "clone3 is missing or filtered: Docker's default seccomp profile answers \
                     ENOSYS; cg-test forks and the child enters the leaf by cgroup.procs"
                }
                libc::E2BIG | libc::EINVAL if cgroup.is_some() => {
                    "no CLONE_INTO_CGROUP (Linux before 5.7); cg-test forks instead"
                }
                libc::EPERM | libc::EACCES if cgroup.is_some() => {
                    "not allowed to start a child in the leaf"
                }
                _ => "",
            };
            Check::no(errno_text(errno, hint))
        }
    }
}

/// A forked child writes "0" (itself) into the leaf's cgroup.procs, as the spawn path
/// does where clone3 cannot place it.
fn try_migrate(procs: BorrowedFd<'_>) -> Check {
    let fd = procs.as_raw_fd();
    let check = in_child_check(|| {
        // SAFETY: write of a static buffer to an open descriptor.
        let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        errno_of(if n == 1 { 0 } else { -1 })
    });
    if check.works() {
        Check::yes("tried: a forked child wrote itself into the probe leaf's cgroup.procs")
    } else {
        check
    }
}

fn try_pidfd_open() -> Check {
    // SAFETY: pidfd_open on our own pid; the descriptor is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd >= 0 {
        // SAFETY: we own this fresh descriptor.
        unsafe { libc::close(fd as i32) };
        Check::yes("")
    } else {
        let errno = last_errno();
        Check::no(errno_text(
            errno,
            if errno == libc::ENOSYS {
                "Linux before 5.3, or filtered"
            } else {
                ""
            },
        ))
    }
}

/// Add what the sysctls say to a failed unprivileged user-namespace try.
fn explain_userns(c: Check) -> Check {
    if c.ok != Some(false) {
        return c;
    }
    let knobs: Vec<String> = [
        "/proc/sys/user/max_user_namespaces",
        "/proc/sys/kernel/unprivileged_userns_clone",
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    ]
    .iter()
    .filter_map(|p| {
        let v = std::fs::read_to_string(p).ok()?;
        Some(format!(
            "{}={}",
            p.trim_start_matches("/proc/sys/"),
            v.trim()
        ))
    })
    .collect();
    if knobs.is_empty() {
        return c;
    }
    Check::no(format!("{}; {}", c.detail, knobs.join(", ")))
}

/// In a child: drop every group and become uid/gid 65534.
fn drop_to_nobody() -> bool {
    // SAFETY: credential syscalls in a child that exits right after.
    unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(NOBODY) == 0
            && libc::setuid(NOBODY) == 0
    }
}

/// unshare(flags) in the calling (child) process; the errno, 0 on success.
fn unshare(flags: libc::c_int) -> i32 {
    // SAFETY: unshare only affects the calling process, a child that exits next.
    errno_of(unsafe { libc::unshare(flags) })
}

/// 0 when a syscall returned 0 or more, else the errno.
fn errno_of(ret: libc::c_int) -> i32 {
    if ret >= 0 {
        0
    } else {
        last_errno()
    }
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Run `f` in a forked child and return its result (0..=255) as the child's exit code.
/// `f` must only make async-signal-safe calls: the child ends with `_exit`.
fn in_child(f: impl FnOnce() -> i32) -> io::Result<i32> {
    // SAFETY: doctor is single-threaded, so the child is a consistent copy; it runs
    // only `f` (raw syscalls) and _exit.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = f();
            // SAFETY: leave without unwinding or flushing the parent's buffers.
            unsafe { libc::_exit(code.clamp(0, 255)) }
        }
        pid => wait_exit(pid),
    }
}

/// [`in_child`] where the child returns an errno (0 = it worked).
fn in_child_check(f: impl FnOnce() -> i32) -> Check {
    match in_child(f) {
        Ok(code) => errno_check(code, ""),
        Err(e) => Check::untried(format!("fork: {e}")),
    }
}

fn errno_check(errno: i32, hint: &str) -> Check {
    if errno == 0 {
        Check::yes("")
    } else {
        let hint = if hint.is_empty() {
            match errno {
                libc::EPERM => "seccomp, or a missing capability",
                libc::ENOSPC | libc::EUSERS => "namespace limit reached or disabled by sysctl",
                libc::EINVAL => "not supported by this kernel",
                _ => "",
            }
        } else {
            hint
        };
        Check::no(errno_text(errno, hint))
    }
}

/// `ENOSYS: Function not implemented — hint`.
fn errno_text(errno: i32, hint: &str) -> String {
    let msg = io::Error::from_raw_os_error(errno).to_string();
    let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
    let name = errno_name(errno).map_or(String::new(), |n| format!("{n}: "));
    if hint.is_empty() {
        format!("{name}{msg}")
    } else {
        format!("{name}{msg}; {hint}")
    }
}

fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::E2BIG => "E2BIG",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EUSERS => "EUSERS",
        libc::EAGAIN => "EAGAIN",
        _ => return None,
    })
}

/// Wait for `pid` and return its exit code; an error if it died of a signal.
fn wait_exit(pid: libc::pid_t) -> io::Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return Ok(libc::WEXITSTATUS(status));
            }
            return Err(io::Error::other(format!(
                "killed by signal {}",
                libc::WTERMSIG(status)
            )));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn access_w(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access on a valid C string. It reports EROFS for a read-only mount too.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// The inode of /proc/self/ns/<name> (`cgroup:[4026531835]`).
fn namespace_inode(name: &str) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/ns/{name}")).ok()?;
    let s = link.to_str()?;
    s.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(key))
}

fn kernel_release() -> Option<String> {
    // SAFETY: uname fills a struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates release.
    let c = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    Some(c.to_string_lossy().into_owned())
}

/// A file's text, or empty when it cannot be read (doctor reports what it can).
fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
