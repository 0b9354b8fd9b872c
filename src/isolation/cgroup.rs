//! The cgroup v2 strategy: one fresh leaf per run, directly below the cgroup cg-test
//! itself is in, named `cg-test-<pid>-<start>-<nonce>` (see [`crate::run_id`]).
//!
//! Every state change is confirmed by `cgroup.events`, which raises POLLPRI when
//! `populated` or `frozen` changes: after writing `cgroup.freeze` we wait for
//! `frozen 1`; after `cgroup.kill`, for `populated 0`. Waits are bounded, so a task
//! stuck in uninterruptible sleep makes cg-test report it instead of hanging.
//!
//! Why the leaf sits directly below our own cgroup: we may only create cgroups where
//! we are (never at a hierarchy root we were not placed in), and a child of our own
//! cgroup is always a legal destination. The no-internal-process rule does not get in
//! the way: it forbids processes in a cgroup that *distributes domain controllers* to
//! its children, and cg-test enables none (freeze, kill and events are core files
//! every non-root cgroup has). A cgroup we are in cannot have controllers enabled in
//! its subtree_control (the kernel refuses one or the other) unless it is the root,
//! where the rule does not apply. docs/DESIGN.md has the longer story.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::{Isolation, Reaper, Unavailable};
use crate::cgroupfs::{self, Events};
use crate::cli::{Compat, Config};
use crate::run_id::RunId;
use crate::spawn::Placement;

/// How long a freeze may take before cg-test kills without it (a task in
/// uninterruptible sleep cannot reach the freezer's trap until it wakes).
const FREEZE_LIMIT: Duration = Duration::from_secs(2);
/// How long the kernel may take to empty the leaf after a kill.
const KILL_LIMIT: Duration = Duration::from_secs(10);
/// How often the kill is repeated while waiting (covers signal-kill's race with a
/// fork that was already past the freezer).
const KILL_REPEAT: Duration = Duration::from_secs(1);
/// rmdir can briefly report EBUSY right after the last member left.
const RMDIR_LIMIT: Duration = Duration::from_secs(2);

/// A cgroup v2 leaf owned by this run.
pub struct CgroupLeaf {
    path: PathBuf,
    dir: File,
    procs: File,
    events: File,
    events_path: PathBuf,
    has_kill: bool,
    force_fork: bool,
    released: bool,
}

impl CgroupLeaf {
    /// Create and open the run's leaf below our own cgroup, or say why it cannot be
    /// had. Nothing is left behind on failure.
    pub fn create(cfg: &Config, run_id: &RunId) -> Result<CgroupLeaf, Unavailable> {
        if !crate::platform::IS_LINUX {
            return Err(Unavailable("cgroups exist only on Linux".into()));
        }
        let parent = cgroupfs::own_cgroup_dir().map_err(|e| Unavailable(format!("{e:#}")))?;
        let path = parent.join(run_id.leaf_name());
        std::fs::create_dir(&path).map_err(|e| {
            Unavailable(format!(
                "cannot create cgroup {}: {e}{}",
                path.display(),
                mkdir_hint(&e)
            ))
        })?;
        let leaf = Self::open(path, &parent, cfg);
        if let Err(Unavailable(_)) = &leaf {
            // Not ours to keep: remove what we just made.
            let _ = std::fs::remove_dir(parent.join(run_id.leaf_name()));
        }
        leaf
    }

    fn open(path: PathBuf, parent: &Path, cfg: &Config) -> Result<CgroupLeaf, Unavailable> {
        let unavailable = |what: &str, p: &Path, e: io::Error| {
            Unavailable(format!("cannot {what} {}: {e}", p.display()))
        };
        if !path.join("cgroup.freeze").exists() {
            return Err(Unavailable(format!(
                "{} has no cgroup.freeze (the cgroup v2 freezer needs Linux 5.2)",
                path.display()
            )));
        }
        // Moving a process between cgroups needs write access to cgroup.procs of their
        // common ancestor: our own cgroup.
        let parent_procs = parent.join("cgroup.procs");
        if !writable(&parent_procs) {
            return Err(Unavailable(format!(
                "cannot move processes out of {}: {} is not writable \
                 (delegate that cgroup to this user, or run as root)",
                parent.display(),
                parent_procs.display()
            )));
        }
        let dir = File::open(&path).map_err(|e| unavailable("open", &path, e))?;
        let procs_path = path.join("cgroup.procs");
        let procs = OpenOptions::new()
            .write(true)
            .open(&procs_path)
            .map_err(|e| unavailable("open for writing", &procs_path, e))?;
        let events_path = path.join("cgroup.events");
        let events = File::open(&events_path).map_err(|e| unavailable("open", &events_path, e))?;
        let has_kill = path.join("cgroup.kill").exists() && !cfg.forces(Compat::SignalKill);
        crate::step!(
            "created {} (cgroup.kill: {})",
            path.display(),
            if has_kill {
                "yes"
            } else {
                "no, killing each member while frozen"
            }
        );
        Ok(CgroupLeaf {
            path,
            dir,
            procs,
            events,
            events_path,
            has_kill,
            force_fork: cfg.forces(Compat::ForkSpawn),
            released: false,
        })
    }

    fn events(&mut self) -> Result<Events> {
        cgroupfs::reread_events(&mut self.events, &self.events_path)
    }

    /// Wait until `done(events)` holds or `limit` passes; true if it held. Sleeps in
    /// poll on cgroup.events (POLLPRI), never in a sleep loop. Signals to cg-test stay
    /// queued in the signal source meanwhile.
    fn wait_events(&mut self, limit: Duration, done: impl Fn(Events) -> bool) -> Result<bool> {
        let until = Instant::now() + limit;
        loop {
            if done(self.events()?) {
                return Ok(true);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut pfd = libc::pollfd {
                fd: self.events.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            };
            let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, ms) };
        }
    }

    fn write_control(&self, file: &str, value: &str) -> Result<()> {
        cgroupfs::write(self.path.join(file), value)
    }

    /// Every pid in the leaf and in any cgroup the run created below it (a nested
    /// cg-test makes its own leaf inside ours).
    fn all_pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        for dir in subtree(&self.path)? {
            let procs = dir.join("cgroup.procs");
            match std::fs::read_to_string(&procs) {
                Ok(text) => pids.extend(cgroupfs::parse_procs(&text)),
                // A nested run may remove its leaf while we walk.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("reading {}", procs.display())),
            }
        }
        Ok(pids)
    }

    fn kill_once(&self) -> Result<()> {
        if self.has_kill {
            return self.write_control("cgroup.kill", "1");
        }
        for pid in self.all_pids()? {
            // The leaf is frozen, so the pid cannot have exited and been reused since
            // we read it.
            super::send(super::Target::Process(pid), libc::SIGKILL);
        }
        Ok(())
    }

    /// Remove the cgroups a nested run left below ours, deepest first, then our leaf.
    fn remove_tree(&self) -> Result<()> {
        let mut dirs = subtree(&self.path)?;
        dirs.reverse();
        for dir in dirs {
            rmdir_retrying(&dir)?;
        }
        Ok(())
    }
}

fn mkdir_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EROFS) => {
            " (the cgroup filesystem is mounted read-only, as in an unprivileged container)"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            " (run as root, or inside a cgroup delegated to this user, e.g. systemd-run --user -p Delegate=yes)"
        }
        _ => "",
    }
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access on a valid C string.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// A directory and all directories below it, parents before children.
fn subtree(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        match std::fs::read_dir(&out[i]) {
            Ok(entries) => {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        out.push(e.path());
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && i > 0 => {}
            Err(e) => return Err(e).with_context(|| format!("listing {}", out[i].display())),
        }
        i += 1;
    }
    Ok(out)
}

fn rmdir_retrying(dir: &Path) -> Result<()> {
    let until = Instant::now() + RMDIR_LIMIT;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // EBUSY: the last member left a moment ago and the kernel has not finished
            // with it. There is no event for that, so a short sleep is the only way.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                return Err(anyhow!("removing cgroup {}: {e}", dir.display()));
            }
        }
    }
}

impl Isolation for CgroupLeaf {
    fn kind(&self) -> &'static str {
        "cgroup"
    }

    fn describe(&self) -> String {
        format!("cgroup {}", self.path.display())
    }

    fn placement(&self) -> Placement<'_> {
        Placement::Cgroup {
            dir: self.dir.as_fd(),
            procs: self.procs.as_fd(),
            force_fork: self.force_fork,
        }
    }

    fn adopt(&mut self, _pid: i32) {}

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.events.as_fd())
    }

    fn poll_interval(&self) -> Option<Duration> {
        None
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(!self.events()?.populated)
    }

    fn freeze(&mut self) -> Result<()> {
        self.write_control("cgroup.freeze", "1")?;
        if !self.wait_events(FREEZE_LIMIT, |e| e.frozen || !e.populated)? {
            crate::note!(
                "{} did not report frozen within {FREEZE_LIMIT:?} (a task in uninterruptible sleep?); continuing",
                self.path.display()
            );
        }
        Ok(())
    }

    fn thaw(&mut self) -> Result<()> {
        self.write_control("cgroup.freeze", "0")?;
        self.wait_events(FREEZE_LIMIT, |e| !e.frozen || !e.populated)?;
        Ok(())
    }

    fn members(&mut self) -> Result<Vec<i32>> {
        self.all_pids()
    }

    fn kill_frozen(&mut self, reaper: &mut Reaper) -> Result<()> {
        let until = Instant::now() + KILL_LIMIT;
        loop {
            self.kill_once()?;
            if !self.has_kill {
                // Signal-kill path: SIGKILL is pending on every frozen member; thawing
                // is not needed for a fatal signal, but leaving the leaf frozen would
                // only confuse a reader.
                self.write_control("cgroup.freeze", "0")?;
            }
            let left = until.saturating_duration_since(Instant::now());
            if self.wait_events(left.min(KILL_REPEAT), |e| !e.populated)? {
                break;
            }
            if left.is_zero() {
                let stuck = self.all_pids().unwrap_or_default();
                return Err(anyhow!(
                    "{} still holds pids {stuck:?} {KILL_LIMIT:?} after the kill \
                     (uninterruptible sleep?); the leaf is left in place",
                    self.path.display()
                ));
            }
        }
        // Every member is dead; the ones that were our children (the command, orphans
        // reparented to us) become zombies a moment later.
        reaper.reap_all(Duration::from_secs(1));
        Ok(())
    }

    fn release(&mut self) -> Result<()> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        self.remove_tree()?;
        crate::step!("removed {}", self.path.display());
        Ok(())
    }

    fn cgroup_dir(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

impl Drop for CgroupLeaf {
    /// A backstop for paths that bail out before `release`: kill whatever is inside and
    /// remove the leaf, so an error in cg-test never leaves a run behind.
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if self.is_empty().unwrap_or(false)
            || (self.freeze().is_ok() && self.kill_frozen(&mut Reaper::new()).is_ok())
        {
            let _ = self.release();
        }
    }
}
