//! Starting the command: everything between "we have a boundary" and "the command is
//! running in it".
//!
//! The child side runs between fork and exec, so it is written for that: all memory
//! (argv, envp, PATH candidates) is prepared in the parent, and the child only makes
//! async-signal-safe calls, in this order:
//! 1. enter the cgroup leaf, if clone3 could not put it there already;
//! 2. `--harden`: enter a new cgroup namespace, rooted at the leaf, and a mount
//!    namespace in which cgroup2 shows only the leaf, its limit files read-only;
//! 3. lead its own process group;
//! 4. ask for SIGKILL on the supervisor's death (Linux), then check it is not too late;
//! 5. take the terminal's foreground, if cg-test had it;
//! 6. `--harden`: drop the capabilities, set no_new_privs, install the seccomp filter;
//! 7. restore the signal mask and ignored signals cg-test was started with;
//! 8. exec, searching PATH like execvp.
//!
//! With `--pid-ns` the command's parent is not cg-test but the init of a new pid
//! namespace ([`crate::namespaces`]), a clone of cg-test made here: it sets the
//! namespaces up (and with `--harden` seals itself), forks the command with the same
//! placement and the same child side,
//! and reports to cg-test over a pipe. The init, too, only makes syscalls: it is a fork
//! of cg-test that never execs.
//!
//! Any failure is written to a close-on-exec pipe as (stage, errno); an empty read in
//! the parent means exec succeeded. That is how 126/127 are told apart from cg-test's
//! own failures without guessing from exit codes.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use anyhow::{anyhow, Context, Result};

use crate::events::SignalPlan;
use crate::namespaces::{self, Confinement, HardenStep, InitRecord, NsInit, NsStep, PidNs};
use crate::platform::{self, Fork};
use crate::run_id::{self, RunId};

/// Where the child must be before it runs the command.
#[derive(Clone, Copy)]
pub enum Placement<'a> {
    /// Nowhere special (the pgroup strategy).
    Anywhere,
    /// In a cgroup leaf: `dir` for clone3(CLONE_INTO_CGROUP), `procs` (its
    /// `cgroup.procs`, open for writing) for the fork fallback.
    Cgroup {
        dir: BorrowedFd<'a>,
        procs: BorrowedFd<'a>,
        force_fork: bool,
    },
}

/// Everything the spawn step needs.
pub struct SpawnRequest<'a> {
    pub command: &'a [OsString],
    pub run_id: &'a RunId,
    pub placement: Placement<'a>,
    pub signals: &'a SignalPlan,
    /// A terminal whose foreground the command's process group should get.
    pub terminal: Option<RawFd>,
    /// `--pid-ns`, `--harden`.
    pub confinement: &'a Confinement,
}

/// The result of the spawn step.
#[derive(Debug)]
pub enum Spawned {
    /// The command is running as this pid (its process group id too). With
    /// `--pid-ns`, `init` is the namespace's init, which is the command's parent.
    Running { pid: i32, init: Option<NsInit> },
    /// The command never started; the child has been reaped.
    Failed(SpawnFailure),
}

/// Why the command never started.
#[derive(Debug)]
pub enum SpawnFailure {
    /// exec said ENOENT everywhere (exit 127).
    NotFound(String),
    /// exec found it but could not run it (exit 126).
    NotExecutable(String),
    /// The child could not enter the cgroup leaf (auto mode falls back to pgroup).
    PlacementDenied(String),
    /// Another setup step failed (exit 125).
    Setup(String),
}

#[repr(u32)]
#[derive(Clone, Copy)]
enum Stage {
    Cgroup = 1,
    ProcessGroup = 2,
    ParentDeath = 3,
    Exec = 4,
    UserMaps = 5,
    PrivateMounts = 6,
    MountProc = 7,
    InitFork = 8,
    CgroupNamespace = 9,
    DropPrivileges = 10,
    HardenInitDumpable = 11,
    HardenInitDetach = 12,
    HardenInitReadOnly = 13,
    HardenMountCgroup2 = 14,
    HardenSealLeaf = 15,
    HardenSeccomp = 16,
}

impl From<HardenStep> for Stage {
    fn from(s: HardenStep) -> Stage {
        match s {
            HardenStep::InitDumpable => Stage::HardenInitDumpable,
            HardenStep::InitDetach => Stage::HardenInitDetach,
            HardenStep::InitReadOnly => Stage::HardenInitReadOnly,
            HardenStep::Unshare => Stage::CgroupNamespace,
            HardenStep::MountCgroup2 => Stage::HardenMountCgroup2,
            HardenStep::SealLeaf => Stage::HardenSealLeaf,
            HardenStep::DropCapabilities => Stage::DropPrivileges,
            HardenStep::Seccomp => Stage::HardenSeccomp,
        }
    }
}

impl From<NsStep> for Stage {
    fn from(s: NsStep) -> Stage {
        match s {
            NsStep::UserMaps => Stage::UserMaps,
            NsStep::PrivateMounts => Stage::PrivateMounts,
            NsStep::MountProc => Stage::MountProc,
        }
    }
}

/// Fork and exec the command as the request says.
pub fn spawn(req: &SpawnRequest<'_>) -> Result<Spawned> {
    let mut prep = Prepared::new(req.command, req.run_id)?;
    let (read_end, write_end) = platform::cloexec_pipe().context("pipe2 for the exec status")?;
    match &req.confinement.pid_ns {
        Some(ns) => spawn_via_init(&mut prep, req, ns, read_end, write_end),
        None => spawn_direct(&mut prep, req, read_end, write_end),
    }
}

/// The cgroup to clone the child straight into, if any.
fn into_cgroup<'a>(req: &SpawnRequest<'a>) -> Option<BorrowedFd<'a>> {
    match req.placement {
        Placement::Cgroup {
            dir,
            force_fork: false,
            ..
        } => Some(dir),
        _ => None,
    }
}

fn how(placed: bool) -> &'static str {
    if placed {
        "clone3 into the leaf"
    } else {
        "fork"
    }
}

/// The command as cg-test's own child.
fn spawn_direct(
    prep: &mut Prepared,
    req: &SpawnRequest<'_>,
    read_end: OwnedFd,
    write_end: OwnedFd,
) -> Result<Spawned> {
    // SAFETY: getpid cannot fail.
    let parent_pid = unsafe { libc::getpid() };
    // Into a leaf: the child shares our memory until it execs (see
    // platform::spawn_shared), which saves copying the page tables; where that path is
    // unavailable, a fork (clone3 into the leaf, or a plain fork whose child writes
    // itself into cgroup.procs). `--harden` always forks: its child calls into the caps
    // crate, which is not written for a child that shares its parent's memory.
    let report_fd = write_end.as_raw_fd();
    let shared = match into_cgroup(req) {
        Some(dir) if req.confinement.harden.is_none() => platform::spawn_shared(dir, &mut || {
            child_main(prep, req, true, parent_pid, report_fd)
        })
        .context("clone3 (CLONE_VM) into the leaf")?,
        _ => None,
    };
    let fork = match shared {
        Some(pid) => Fork::Parent { pid, placed: true },
        None => platform::fork_child(into_cgroup(req), req.signals).context("fork (clone3)")?,
    };
    let (pid, placed) = match fork {
        Fork::Child { placed } => child_main(prep, req, placed, parent_pid, write_end.as_raw_fd()),
        Fork::Parent { pid, placed } => (pid, placed),
    };
    drop(write_end);
    crate::step!("spawned pid {pid} ({})", how(placed));
    // Both sides call setpgid (and tcsetpgrp) so neither order of scheduling leaves a
    // window where the child is outside its group; errors here (the child already
    // exec'd or died) are expected and harmless.
    // SAFETY: plain syscalls on the child's pid.
    unsafe {
        libc::setpgid(pid, pid);
        if let Some(tty) = req.terminal {
            libc::tcsetpgrp(tty, pid);
        }
    }
    match read_child_report(&read_end) {
        None => Ok(Spawned::Running { pid, init: None }),
        Some((stage, errno)) => {
            reap(pid);
            Ok(Spawned::Failed(classify(stage, errno, req.command)))
        }
    }
}

/// `--pid-ns`: clone the namespace's init, which spawns the command (see the module
/// docs); then find the command's pid as cg-test sees it and let the init go on.
fn spawn_via_init(
    prep: &mut Prepared,
    req: &SpawnRequest<'_>,
    ns: &PidNs,
    read_end: OwnedFd,
    write_end: OwnedFd,
) -> Result<Spawned> {
    let (status_r, status_w) = platform::cloexec_pipe().context("pipe2 for the init")?;
    let (control_r, control_w) = platform::cloexec_pipe().context("pipe2 for the init")?;
    let init = ns
        .clone_init()
        .map_err(|e| anyhow!("--pid-ns: clone(CLONE_NEWPID|CLONE_NEWNS) for the init: {e}"))?;
    if init == 0 {
        let theirs = [
            read_end.as_raw_fd(),
            status_r.as_raw_fd(),
            control_w.as_raw_fd(),
        ];
        init_side(
            prep,
            req,
            ns,
            theirs,
            (
                write_end.as_raw_fd(),
                status_w.as_raw_fd(),
                control_r.as_raw_fd(),
            ),
        );
    }
    drop((write_end, status_w, control_r));
    let mut handle = NsInit::new(init, status_r, control_w);
    // The init reports the command right after forking it, before the command execs
    // (it writes nothing when its own set-up failed: then the exec report says why).
    let Some(InitRecord::Spawned { ns_pid, placed }) = handle.read_first() else {
        let report = read_child_report(&read_end);
        kill_and_reap(init);
        return match report {
            Some((stage, errno)) => Ok(Spawned::Failed(classify(stage, errno, req.command))),
            None => Err(anyhow!(
                "--pid-ns: the namespace's init (pid {init}) ended before it reported the \
                 command"
            )),
        };
    };
    // The init reaps nothing before the go-ahead, so the command is its child still.
    let Some(pid) = namespaces::host_pid(init, ns_pid) else {
        kill_and_reap(init);
        return Err(anyhow!(
            "--pid-ns: cannot find the command (pid {ns_pid} in the namespace) among the \
             children of its init (pid {init}) in /proc"
        ));
    };
    crate::step!("spawned pid {pid} ({})", how(placed));
    crate::step!("pid {pid} is pid {ns_pid} of a new pid namespace whose init is pid {init}");
    if let Some((stage, errno)) = read_child_report(&read_end) {
        kill_and_reap(init);
        return Ok(Spawned::Failed(classify(stage, errno, req.command)));
    }
    handle.go_ahead();
    if let Some(tty) = req.terminal {
        // SAFETY: tcsetpgrp on our terminal with SIGTTOU blocked; the child does the
        // same, so either order works.
        unsafe { libc::tcsetpgrp(tty, pid) };
    }
    Ok(Spawned::Running {
        pid,
        init: Some(handle),
    })
}

/// The init, right after the clone: close cg-test's ends of the pipes, set the
/// namespaces up, fork the command, report it, and become the namespace's reaper.
/// `mine` is (exec report, status, control). Never returns.
fn init_side(
    prep: &mut Prepared,
    req: &SpawnRequest<'_>,
    ns: &PidNs,
    theirs: [RawFd; 3],
    mine: (RawFd, RawFd, RawFd),
) -> ! {
    let (report_fd, status_fd, control_fd) = mine;
    // SAFETY (whole function): syscalls on descriptors of this process and memory
    // prepared before the clone.
    unsafe {
        for fd in theirs {
            libc::close(fd);
        }
        if let Err((step, errno)) = ns.enter(control_fd) {
            child_report(report_fd, step.into(), errno);
        }
        if let Some(Err((step, errno))) = req.confinement.harden.as_ref().map(|h| h.seal_init()) {
            child_report(report_fd, step.into(), errno);
        }
        // 1: the command's parent, as the command sees it.
        let me = libc::getpid();
        match platform::fork_child(into_cgroup(req), req.signals) {
            Err(e) => child_report(report_fd, Stage::InitFork, e.raw_os_error().unwrap_or(0)),
            Ok(Fork::Child { placed }) => child_main(prep, req, placed, me, report_fd),
            Ok(Fork::Parent { pid, placed }) => {
                libc::setpgid(pid, pid);
                if let Some(tty) = req.terminal {
                    libc::tcsetpgrp(tty, pid);
                }
                libc::close(report_fd);
                let rec = InitRecord::Spawned {
                    ns_pid: pid,
                    placed,
                }
                .encode();
                libc::write(status_fd, rec.as_ptr() as *const libc::c_void, rec.len());
                namespaces::init_main(pid, status_fd, control_fd)
            }
        }
    }
}

/// SIGKILL and reap a child of ours (the init, when the spawn failed): the kernel kills
/// what was in its namespace with it.
fn kill_and_reap(pid: i32) {
    // SAFETY: signalling our own unreaped child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid);
}

fn classify(stage: u32, errno: i32, command: &[OsString]) -> SpawnFailure {
    let err = io::Error::from_raw_os_error(errno);
    let cmd = command
        .first()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stage {
        s if s == Stage::Exec as u32 && errno == libc::ENOENT => {
            SpawnFailure::NotFound(format!("failed to run command {cmd:?}: {err}"))
        }
        s if s == Stage::Exec as u32 => {
            SpawnFailure::NotExecutable(format!("failed to run command {cmd:?}: {err}"))
        }
        s if s == Stage::Cgroup as u32 => SpawnFailure::PlacementDenied(format!(
            "the child could not enter its cgroup leaf (writing its pid to cgroup.procs): {err}"
        )),
        s if s == Stage::ProcessGroup as u32 => {
            SpawnFailure::Setup(format!("setpgid in the child: {err}"))
        }
        s if s == Stage::UserMaps as u32 => SpawnFailure::Setup(format!(
            "--pid-ns: writing the new user namespace's uid_map and gid_map: {err}"
        )),
        s if s == Stage::PrivateMounts as u32 => SpawnFailure::Setup(format!(
            "--pid-ns: making the mounts of the new mount namespace private: {err}"
        )),
        s if s == Stage::MountProc as u32 => SpawnFailure::Setup(format!(
            "--pid-ns: mounting a fresh proc on /proc: {err} (where parts of /proc are masked, \
             as in a container, this needs CAP_SYS_ADMIN)"
        )),
        s if s == Stage::InitFork as u32 => SpawnFailure::Setup(format!(
            "--pid-ns: the namespace's init could not fork the command: {err}"
        )),
        s if s == Stage::CgroupNamespace as u32 => SpawnFailure::Setup(format!(
            "--harden: unshare(CLONE_NEWCGROUP|CLONE_NEWNS) in the child: {err}"
        )),
        s if s == Stage::DropPrivileges as u32 => SpawnFailure::Setup(format!(
            "--harden: dropping capabilities (prctl PR_CAPBSET_DROP, capset) or setting \
             no_new_privs in the child: {err}"
        )),
        s if s == Stage::HardenInitDumpable as u32 => SpawnFailure::Setup(format!(
            "--harden: prctl(PR_SET_DUMPABLE, 0) in the namespace's init: {err}"
        )),
        s if s == Stage::HardenInitDetach as u32 => SpawnFailure::Setup(format!(
            "--harden: detaching the cgroup2 mounts (umount2 MNT_DETACH) in the namespace's \
             init: {err}"
        )),
        s if s == Stage::HardenInitReadOnly as u32 => SpawnFailure::Setup(format!(
            "--harden: making sysfs, the cgroup v1 mounts, /proc/sys and /proc/sysrq-trigger \
             read-only (mount MS_BIND, mount_setattr) in the namespace's init: {err}"
        )),
        s if s == Stage::HardenMountCgroup2 as u32 => SpawnFailure::Setup(format!(
            "--harden: mounting cgroup2 inside the child's cgroup namespace: {err}"
        )),
        s if s == Stage::HardenSealLeaf as u32 => SpawnFailure::Setup(format!(
            "--harden: binding the leaf's interface files read-only (mount MS_BIND, \
             mount_setattr) in the child: {err}"
        )),
        s if s == Stage::HardenSeccomp as u32 => SpawnFailure::Setup(format!(
            "--harden: installing the seccomp filter (prctl PR_SET_SECCOMP) in the child: {err}"
        )),
        _ => SpawnFailure::Setup(format!("prctl(PR_SET_PDEATHSIG) in the child: {err}")),
    }
}

fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waiting for our own child, which has exited or is about to.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

/// Read the child's (stage, errno) report; None when the pipe closed empty (exec
/// succeeded).
fn read_child_report(fd: &OwnedFd) -> Option<(u32, i32)> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into our buffer's remaining space.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf[got..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - got,
            )
        };
        match n {
            0 => break,
            n if n > 0 => got += n as usize,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    (got == buf.len()).then(|| {
        let stage = u32::from_ne_bytes(buf[..4].try_into().unwrap_or_default());
        let errno = i32::from_ne_bytes(buf[4..].try_into().unwrap_or_default());
        (stage, errno)
    })
}

/// The command's argv, envp and the list of paths to try, built before fork.
struct Prepared {
    _argv: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp: Vec<*const libc::c_char>,
    candidates: Vec<CString>,
    /// ["/bin/sh", <candidate>, args...]: for a file exec rejects with ENOEXEC (a script
    /// without `#!`), which execvp hands to the shell. Slot 1 is filled in the child.
    sh_argv: Vec<*const libc::c_char>,
    sh: CString,
    /// Did the command name contain a slash (no PATH search)?
    direct: bool,
}

impl Prepared {
    fn new(command: &[OsString], run_id: &RunId) -> Result<Prepared> {
        let argv_c: Vec<CString> = command
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow!("COMMAND arguments must not contain NUL bytes"))?;
        let name = command.first().ok_or_else(|| anyhow!("COMMAND is empty"))?;
        let envp_c = child_environment(run_id);
        let direct = name.as_bytes().contains(&b'/');
        let candidates = if direct {
            vec![argv_c[0].clone()]
        } else {
            path_candidates(name, std::env::var_os("PATH").as_deref())
        };
        let sh = CString::new("/bin/sh").unwrap_or_default();
        let mut prep = Prepared {
            argv: null_terminated(&argv_c),
            _argv: argv_c,
            envp: null_terminated(&envp_c),
            _envp: envp_c,
            candidates,
            sh_argv: Vec::new(),
            sh,
            direct,
        };
        prep.sh_argv = std::iter::once(prep.sh.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .chain(prep.argv[1..].iter().copied())
            .collect();
        Ok(prep)
    }
}

/// Our environment as the child should see it: unchanged, plus `CG_TEST_RUN_ID`
/// (replacing an outer run's value when runs are nested).
fn child_environment(run_id: &RunId) -> Vec<CString> {
    let key = run_id::ENV_VAR.as_bytes();
    std::env::vars_os()
        .filter(|(k, _)| k.as_bytes() != key)
        .filter_map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            CString::new(e).ok()
        })
        .chain(CString::new(format!("{}={run_id}", run_id::ENV_VAR)).ok())
        .collect()
}

/// execvp's search list: each PATH entry joined with the name; an empty entry is the
/// current directory; no PATH means glibc's default.
fn path_candidates(name: &OsStr, path: Option<&OsStr>) -> Vec<CString> {
    let path = path.map(|p| p.as_bytes()).unwrap_or(b"/bin:/usr/bin");
    path.split(|&b| b == b':')
        .filter_map(|dir| {
            let mut full = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            full.push(b'/');
            full.extend_from_slice(name.as_bytes());
            CString::new(full).ok()
        })
        .collect()
}

fn null_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The child between fork and exec. Never returns.
fn child_main(
    prep: &mut Prepared,
    req: &SpawnRequest<'_>,
    placed: bool,
    parent_pid: libc::pid_t,
    report_fd: RawFd,
) -> ! {
    // SAFETY (whole function): only async-signal-safe syscalls on memory prepared
    // before fork; no allocation, no locks.
    unsafe {
        if let Placement::Cgroup { procs, .. } = req.placement {
            if !placed
                && libc::write(procs.as_raw_fd(), b"0".as_ptr() as *const libc::c_void, 1) != 1
            {
                child_fail(report_fd, Stage::Cgroup);
            }
        }
        let harden = req.confinement.harden.as_ref();
        if let Some(Err((step, errno))) = harden.map(|h| h.enter_cgroup_namespace()) {
            child_report(report_fd, step.into(), errno);
        }
        if libc::setpgid(0, 0) != 0 {
            child_fail(report_fd, Stage::ProcessGroup);
        }
        if let Err(errno) = platform::child_set_parent_death_signal(parent_pid) {
            child_report(report_fd, Stage::ParentDeath, errno);
        }
        if let Some(tty) = req.terminal {
            // SIGTTOU is still blocked here, so a background group may take the
            // foreground.
            libc::tcsetpgrp(tty, libc::getpid());
        }
        if let Some(Err((step, errno))) = harden.map(|h| h.drop_privileges()) {
            child_report(report_fd, step.into(), errno);
        }
        req.signals.restore_in_child();
        child_exec(prep, report_fd)
    }
}

/// The execvp loop over the prepared candidates.
unsafe fn child_exec(prep: &mut Prepared, report_fd: RawFd) -> ! {
    let mut saw_eacces = false;
    let mut last = libc::ENOENT;
    for i in 0..prep.candidates.len() {
        let path = prep.candidates[i].as_ptr();
        unsafe { libc::execve(path, prep.argv.as_ptr(), prep.envp.as_ptr()) };
        let err = errno();
        match err {
            libc::ENOEXEC => {
                prep.sh_argv[1] = path;
                unsafe {
                    libc::execve(prep.sh.as_ptr(), prep.sh_argv.as_ptr(), prep.envp.as_ptr())
                };
                child_report(report_fd, Stage::Exec, errno());
            }
            libc::EACCES => saw_eacces = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT
                if !prep.direct => {}
            _ => child_report(report_fd, Stage::Exec, err),
        }
        last = err;
    }
    child_report(
        report_fd,
        Stage::Exec,
        if saw_eacces { libc::EACCES } else { last },
    )
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn child_fail(fd: RawFd, stage: Stage) -> ! {
    child_report(fd, stage, errno())
}

fn child_report(fd: RawFd, stage: Stage, errno: i32) -> ! {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
    buf[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len());
        libc::_exit(127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_list() {
        let c = path_candidates(OsStr::new("ls"), Some(OsStr::new("/usr/bin::/bin")));
        let c: Vec<_> = c.iter().map(|s| s.to_str().unwrap().to_string()).collect();
        assert_eq!(c, ["/usr/bin/ls", "./ls", "/bin/ls"]);
    }

    #[test]
    fn environment_adds_the_run_id_once() {
        let id = RunId {
            pid: 1,
            start: 2,
            nonce: 3,
        };
        let env = child_environment(&id);
        let ours: Vec<_> = env
            .iter()
            .filter(|e| e.to_bytes().starts_with(b"CG_TEST_RUN_ID="))
            .collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].to_str().unwrap(), "CG_TEST_RUN_ID=1-2-00000003");
    }
}
