//! Starting the command: everything between "we have a boundary" and "the command is
//! running in it".
//!
//! The child side runs between fork and exec, so it is written for that: all memory
//! (argv, envp, PATH candidates) is prepared in the parent, and the child only makes
//! async-signal-safe calls, in this order:
//! 1. enter the cgroup leaf, if clone3 could not put it there already;
//! 2. lead its own process group;
//! 3. ask for SIGKILL on the supervisor's death (Linux), then check it is not too late;
//! 4. take the terminal's foreground, if cg-test had it;
//! 5. restore the signal mask and ignored signals cg-test was started with;
//! 6. exec, searching PATH like execvp.
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
}

/// The result of the spawn step.
#[derive(Debug)]
pub enum Spawned {
    /// The command is running as this pid (its process group id too).
    Running { pid: i32 },
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
}

/// Fork and exec the command as the request says.
pub fn spawn(req: &SpawnRequest<'_>) -> Result<Spawned> {
    let mut prep = Prepared::new(req.command, req.run_id)?;
    let (read_end, write_end) = platform::cloexec_pipe().context("pipe2 for the exec status")?;
    // SAFETY: getpid cannot fail.
    let parent_pid = unsafe { libc::getpid() };
    let into_cgroup = match req.placement {
        Placement::Cgroup {
            dir,
            force_fork: false,
            ..
        } => Some(dir),
        _ => None,
    };
    // Into a leaf: the child shares our memory until it execs (see
    // platform::spawn_shared), which saves copying the page tables; where that path is
    // unavailable, a fork (clone3 into the leaf, or a plain fork whose child writes
    // itself into cgroup.procs).
    let report_fd = write_end.as_raw_fd();
    let shared = match into_cgroup {
        Some(dir) => platform::spawn_shared(dir, &mut || {
            child_main(&mut prep, req, true, parent_pid, report_fd)
        })
        .context("clone3 (CLONE_VM) into the leaf")?,
        None => None,
    };
    let fork = match shared {
        Some(pid) => Fork::Parent { pid, placed: true },
        None => platform::fork_child(into_cgroup, req.signals).context("fork (clone3)")?,
    };
    let (pid, placed) = match fork {
        Fork::Child { placed } => {
            child_main(&mut prep, req, placed, parent_pid, write_end.as_raw_fd())
        }
        Fork::Parent { pid, placed } => (pid, placed),
    };
    drop(write_end);
    crate::step!(
        "spawned pid {pid} ({})",
        if placed {
            "clone3 into the leaf"
        } else {
            "fork"
        }
    );
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
        None => Ok(Spawned::Running { pid }),
        Some((stage, errno)) => {
            reap(pid);
            Ok(Spawned::Failed(classify(stage, errno, req.command)))
        }
    }
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
