//! The cgroup v2 strategy: one fresh leaf per run, directly below the cgroup cg-test
//! itself is in, named `cg-test-<pid>-<start>-<nonce>` (see [`crate::run_id`]).
//!
//! [`Leaf`] controls any existing leaf: freeze, signal, kill, remove, all through a
//! descriptor of the leaf's directory (so a mount vanishing under a live run changes
//! nothing it acts on). The run uses it through [`CgroupLeaf`] (which also holds what
//! the spawn needs, and the leaf's liveness lock); the watchdog, `cg-test gc` and the
//! start-up sweep of stale leaves use it on leaves whose cg-test is gone, as [`judge`]
//! decides: by pid and start time *and* by the liveness lock, which holds across pid
//! and time namespaces.
//!
//! Every state change is confirmed by `cgroup.events`, which raises POLLPRI when
//! `populated` or `frozen` changes: after writing `cgroup.freeze` we wait for
//! `frozen 1`; after `cgroup.kill`, for `populated 0`. Waits are bounded, so a task
//! stuck in uninterruptible sleep makes cg-test report it instead of hanging.
//!
//! The kill never depends on the freeze. `cgroup.kill` needs none; the pid-by-pid kill
//! of kernels before 5.14 signals members directly only while `frozen 1` is confirmed
//! (a frozen task cannot exit by itself, so its pid cannot be reused), and otherwise
//! pins each pid with a pidfd and checks it is still listed in the leaf before
//! signalling through the pidfd.
//!
//! Why the leaf sits directly below our own cgroup: we may only create cgroups where
//! we are (never at a hierarchy root we were not placed in), and a child of our own
//! cgroup is always a legal destination. The no-internal-process rule does not get in
//! the way: it forbids processes in a cgroup that *distributes domain controllers* to
//! its children, and cg-test enables none (freeze, kill and events are core files
//! every non-root cgroup has). Limits change that: they need controllers, and
//! [`super::limits`] says how cg-test gets them (moving itself into a leaf of its own
//! beside the run's leaf when it is alone in its cgroup). docs/DESIGN.md has the longer
//! story.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::limits::{self, Grant, Limits, Policy};
use super::{Isolation, Options, Reaper, Unavailable};
use crate::cgroupfs::{self, DirFd, Events};
use crate::platform;
use crate::run_id::RunId;
use crate::spawn::Placement;

/// How long a freeze may take before cg-test goes on without it (a task in
/// uninterruptible sleep cannot reach the freezer's trap until it wakes).
const FREEZE_LIMIT: Duration = Duration::from_secs(2);
/// How long the kernel may take to empty the leaf after a kill.
const KILL_LIMIT: Duration = Duration::from_secs(10);
/// How often the kill is repeated while waiting (covers signal-kill's race with a
/// fork that was already past the freezer).
const KILL_REPEAT: Duration = Duration::from_secs(1);
/// rmdir can briefly report EBUSY right after the last member left.
const RMDIR_LIMIT: Duration = Duration::from_secs(2);

/// Control of one existing cgroup v2 leaf (and whatever a nested run made below it),
/// through a descriptor of its directory: every file it reads or writes is opened
/// relative to that descriptor, so a mount vanishing under a live run (`umount -l` of
/// the mount cg-test reached the leaf through) cannot change what is acted on, and
/// ENOENT never passes for "already removed" unless the cgroup is confirmed gone.
pub struct Leaf {
    path: PathBuf,
    dir: DirFd,
    events: File,
    events_path: PathBuf,
    /// Whether the kill is one write to `cgroup.kill`: None until first needed (the
    /// lookup of a new leaf's file costs tens of microseconds, and most runs never
    /// kill).
    has_kill: Option<bool>,
    signal_kill: bool,
    freeze_gives_up: bool,
    /// The last freeze was confirmed (`frozen 1`) and nothing has thawed the leaf since.
    frozen: bool,
    /// A pid-by-pid round could not pin pids (no pidfd); said once.
    said_no_pidfd: bool,
}

/// Why a leaf could not be opened.
pub enum OpenError {
    /// The cgroup was removed (confirmed: its directory lists nothing, or its parent
    /// no longer lists it).
    Gone,
    Failed(anyhow::Error),
}

impl Leaf {
    /// Open an existing leaf by path. The error names the file that could not be
    /// opened.
    pub fn open(path: &Path, opts: &Options) -> Result<Leaf> {
        match Self::open_checked(path, opts) {
            Ok(leaf) => Ok(leaf),
            Err(OpenError::Gone) => Err(anyhow!("{} was removed", path.display())),
            Err(OpenError::Failed(e)) => Err(e),
        }
    }

    /// Open an existing leaf by path, telling a leaf that is gone from one that could
    /// not be opened: ENOENT counts as gone only if the parent directory opens and no
    /// longer lists the leaf.
    pub fn open_checked(path: &Path, opts: &Options) -> Result<Leaf, OpenError> {
        let dir = match DirFd::open(path) {
            Ok(d) => d,
            Err(e) => {
                let gone = e.kind() == io::ErrorKind::NotFound
                    && match (path.parent(), path.file_name()) {
                        (Some(parent), Some(name)) => DirFd::open(parent).is_ok_and(|p| {
                            p.subdirs()
                                .is_ok_and(|names| !names.iter().any(|n| n == name))
                        }),
                        _ => false,
                    };
                return Err(if gone {
                    OpenError::Gone
                } else {
                    OpenError::Failed(anyhow!("opening {}: {e}", path.display()))
                });
            }
        };
        Self::from_dir(dir, opts)
    }

    /// A leaf whose directory is open already (the watchdog's inherited descriptor, a
    /// leaf gc has locked). Gone when the directory lists nothing (removed).
    pub fn from_dir(dir: DirFd, opts: &Options) -> Result<Leaf, OpenError> {
        let path = dir.path().to_path_buf();
        let events_path = path.join("cgroup.events");
        let events = match dir.file("cgroup.events", false) {
            Ok(f) => f,
            Err(_) if dir.is_removed() => return Err(OpenError::Gone),
            Err(e) => {
                return Err(OpenError::Failed(anyhow!(
                    "opening {}: {e}",
                    events_path.display()
                )))
            }
        };
        Ok(Leaf {
            path,
            dir,
            events,
            events_path,
            has_kill: None,
            signal_kill: opts.signal_kill,
            freeze_gives_up: opts.freeze_gives_up,
            frozen: false,
            said_no_pidfd: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The leaf's directory descriptor (the one its liveness lock is on).
    pub fn dir(&self) -> &DirFd {
        &self.dir
    }

    /// Whether the kill is one write to `cgroup.kill` (else pid by pid while frozen).
    pub fn has_kill(&mut self) -> bool {
        let (signal_kill, dir) = (self.signal_kill, &self.dir);
        *self
            .has_kill
            .get_or_insert_with(|| !signal_kill && dir.has("cgroup.kill"))
    }

    /// Whether the kernel has the cgroup v2 freezer (Linux 5.2): it added the `frozen`
    /// key to `cgroup.events` along with `cgroup.freeze`, and the open events file is
    /// cheaper to read than a new leaf's `cgroup.freeze` is to look up.
    fn has_freezer(&mut self) -> Result<bool> {
        let text = cgroupfs::reread_events_text(&mut self.events, &self.events_path)?;
        Ok(text.lines().any(|l| l.starts_with("frozen ")))
    }

    fn events(&mut self) -> Result<Events> {
        cgroupfs::reread_events(&mut self.events, &self.events_path)
    }

    /// Whether the cgroup itself was removed: its open `cgroup.events` reads ENODEV
    /// once the kernel has removed the cgroup.
    fn confirmed_removed(&self) -> bool {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 64];
        matches!(
            self.events.read_at(&mut buf, 0),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV)
        )
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
        self.dir.write(file, value)
    }

    /// Every pid in the leaf and in any cgroup the run created below it (a nested
    /// cg-test makes its own leaf inside ours). A member in a pid namespace that
    /// cannot see it (its pid reads as 0 in `cgroup.procs`) is left out: see
    /// [`Leaf::members`].
    pub fn all_pids(&self) -> Result<Vec<i32>> {
        Ok(self.members()?.0)
    }

    /// The visible pids of the leaf's members, and how many members are not visible
    /// from this pid namespace (the kernel lists them as 0).
    pub fn members(&self) -> Result<(Vec<i32>, usize)> {
        let mut pids = Vec::new();
        let mut hidden = 0;
        for (dir, _) in self.subtree()? {
            match dir.read("cgroup.procs") {
                Ok(text) => {
                    for pid in cgroupfs::parse_procs(&text) {
                        if pid > 0 {
                            pids.push(pid);
                        } else {
                            hidden += 1;
                        }
                    }
                }
                // A nested run may remove its leaf while we walk (ENODEV once removed).
                Err(_) if dir.is_removed() => {}
                Err(e) => return Err(e),
            }
        }
        Ok((pids, hidden))
    }

    /// The leaf and every cgroup below it, parents before children, each with the
    /// index of its parent in the list (None for the leaf).
    fn subtree(&self) -> Result<Vec<(DirFd, Option<usize>)>> {
        let root = DirFd::from_owned(
            self.dir
                .as_fd()
                .try_clone_to_owned()
                .with_context(|| format!("dup of the descriptor of {}", self.path.display()))?,
            self.path.clone(),
        );
        let mut out = vec![(root, None)];
        let mut i = 0;
        while i < out.len() {
            let names = match out[i].0.subdirs() {
                Ok(n) => n,
                Err(e) => {
                    return Err(e).with_context(|| format!("listing {}", out[i].0.path().display()))
                }
            };
            for name in names {
                match out[i].0.open_at(&name) {
                    Ok(d) => out.push((d, Some(i))),
                    // Removed since it was listed (nothing can rename a cgroup v2).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("opening {}", out[i].0.path().join(&name).display())
                        })
                    }
                }
            }
            i += 1;
        }
        Ok(out)
    }

    pub fn is_empty(&mut self) -> Result<bool> {
        Ok(!self.events()?.populated)
    }

    /// Freeze and wait for `frozen 1`; false (noted) when it fails or is not confirmed.
    pub fn freeze(&mut self) -> bool {
        self.frozen = false;
        if self.freeze_gives_up {
            crate::note!(
                "freezing {} gave up (forced by --compat freeze-gives-up); going on without it",
                self.path.display()
            );
            return false;
        }
        if let Err(e) = self.write_control("cgroup.freeze", "1") {
            crate::note!("{e:#}; going on without a freeze");
            return false;
        }
        match self.wait_events(FREEZE_LIMIT, |e| e.frozen || !e.populated) {
            Ok(true) => self.frozen = true,
            Ok(false) => crate::note!(
                "{} did not report frozen within {FREEZE_LIMIT:?} (a task in uninterruptible \
                 sleep?); going on without a confirmed freeze",
                self.path.display()
            ),
            Err(e) => crate::note!("{e:#}; going on without a confirmed freeze"),
        }
        self.frozen
    }

    pub fn thaw(&mut self) {
        self.frozen = false;
        if let Err(e) = self.write_control("cgroup.freeze", "0") {
            crate::note!("{e:#}");
            return;
        }
        let _ = self.wait_events(FREEZE_LIMIT, |e| !e.frozen || !e.populated);
    }

    /// Send each signal in turn to `pids`, read from the leaf since the last freeze;
    /// see [`Isolation::signal`].
    pub fn signal(&mut self, pids: &[i32], signals: &[i32]) -> Result<usize> {
        if self.frozen {
            // A frozen task cannot exit by itself, so every pid is still the one read.
            for &sig in signals {
                for &pid in pids {
                    super::send(super::Target::Process(pid), sig);
                }
            }
            return Ok(pids.len());
        }
        // Not frozen: a pid read above may have exited and been given to another
        // process since.
        let path = self.path.clone();
        let relisted = || Ok(self.all_pids()?.into_iter().collect());
        match super::signal_pinned(pids, signals, relisted)? {
            Some(n) => Ok(n),
            None => {
                if !std::mem::replace(&mut self.said_no_pidfd, true) {
                    crate::note!(
                        "cannot pin pids in the unfrozen {} (no pidfd_open); \
                         not signalling them pid by pid",
                        path.display()
                    );
                }
                Ok(0)
            }
        }
    }

    /// Kill everything in the leaf and wait for `populated 0`; see
    /// [`Isolation::kill_all`].
    pub fn kill_all(&mut self, reaper: &mut Reaper) -> Result<()> {
        let until = Instant::now() + KILL_LIMIT;
        loop {
            if self.has_kill() {
                self.write_control("cgroup.kill", "1")?;
            } else {
                // Pid by pid: re-freeze first unless the freeze still holds (a member
                // could otherwise fork a child the round misses, or exit and have its
                // pid reused); `signal` pins pids if the freeze fails.
                if !self.frozen {
                    self.freeze();
                }
                let pids = self.all_pids()?;
                self.signal(&pids, &[libc::SIGKILL])?;
            }
            let left = until.saturating_duration_since(Instant::now());
            if self.wait_events(left.min(KILL_REPEAT), |e| !e.populated)? {
                break;
            }
            if left.is_zero() {
                let (stuck, hidden) = self.members().unwrap_or_default();
                let hidden = if hidden > 0 {
                    format!(
                        " and {hidden} process(es) this pid namespace cannot see (without \
                         cgroup.kill they can only be killed from where they are visible)"
                    )
                } else {
                    String::new()
                };
                return Err(anyhow!(
                    "{} still holds pids {stuck:?}{hidden} {KILL_LIMIT:?} after the kill \
                     (uninterruptible sleep? see `ps -o pid,stat,wchan -p PID`); the leaf \
                     is left in place for `cg-test gc` once they are gone",
                    self.path.display()
                ));
            }
        }
        crate::phases::end("kill");
        // Every member is dead; the ones that were our children (the command, orphans
        // reparented to us) become zombies a moment later.
        reaper.reap_all(Duration::from_secs(1));
        Ok(())
    }

    /// Remove the cgroups a nested run left below ours, deepest first, then the leaf,
    /// each by name relative to its parent's descriptor. The leaf counts as removed
    /// already (ENOENT) only when its open `cgroup.events` confirms the cgroup is gone.
    pub fn remove_tree(&self) -> Result<()> {
        let name = self
            .path
            .file_name()
            .ok_or_else(|| anyhow!("{} names no cgroup", self.path.display()))?
            .to_os_string();
        let parent = self
            .dir
            .parent()
            .with_context(|| format!("opening the parent of {}", self.path.display()))?;
        // The common case, a leaf nothing made cgroups below: one rmdir, no listing.
        // ENOTEMPTY means there are some; EBUSY is left to the retries below.
        match parent.rmdir(&name) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.removed_or(e),
            Err(_) => {}
        }
        let dirs = self.subtree()?;
        for (dir, up) in dirs.iter().rev() {
            let (Some(up), Some(sub)) = (up, dir.path().file_name()) else {
                continue;
            };
            // A nested cgroup that is gone was removed by its own run (it was listed a
            // moment ago, and nothing renames a cgroup v2).
            match rmdir_retrying_at(&dirs[*up].0, sub) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                r => r.map_err(|e| rmdir_error(dir.path(), e))?,
            }
        }
        match rmdir_retrying_at(&parent, &name) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.removed_or(e),
            Err(e) => Err(rmdir_error(&self.path, e)),
        }
    }

    /// After an rmdir said ENOENT: fine if the cgroup is confirmed gone, else the
    /// error (the name no longer leads to the cgroup this descriptor holds).
    fn removed_or(&self, e: io::Error) -> Result<()> {
        if self.confirmed_removed() {
            return Ok(());
        }
        Err(anyhow!(
            "removing cgroup {}: {e}, yet the cgroup still exists (its cgroup.events \
             still reads); `cg-test gc` removes it once it can be reached",
            self.path.display()
        ))
    }
}

fn rmdir_error(dir: &Path, e: io::Error) -> anyhow::Error {
    anyhow!(
        "removing cgroup {}: {e}; `cg-test gc` removes it once it is empty",
        dir.display()
    )
}

/// rmdir `name` in `parent`, retrying a brief EBUSY.
fn rmdir_retrying_at(parent: &DirFd, name: &std::ffi::OsStr) -> io::Result<()> {
    let until = Instant::now() + RMDIR_LIMIT;
    loop {
        match parent.rmdir(name) {
            // EBUSY: the last member left a moment ago and the kernel has not finished
            // with it. There is no event for that, so a short sleep is the only way.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

/// A cgroup v2 leaf owned by this run.
pub struct CgroupLeaf {
    leaf: Leaf,
    procs: File,
    force_fork: bool,
    released: bool,
    /// The limits written into the leaf, and the controllers they hold in our own
    /// cgroup (released after the leaf is removed).
    limits: Option<Limits>,
    grant: Option<Grant>,
}

/// Why no leaf was made.
#[derive(Debug)]
pub enum CreateError {
    /// No cgroup leaf can be had here; `auto` may fall back.
    Unavailable(Unavailable),
    /// A leaf could be had, but its limits cannot be applied (`--limits strict`): the
    /// one line to exit 125 with.
    Limits(String),
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::Unavailable(u) => write!(f, "{u}"),
            CreateError::Limits(msg) => f.write_str(msg),
        }
    }
}

impl From<Unavailable> for CreateError {
    fn from(u: Unavailable) -> Self {
        CreateError::Unavailable(u)
    }
}

impl CgroupLeaf {
    /// Create and open the run's leaf below our own cgroup with the limits the options
    /// ask for, or say why it cannot be had. Stale leaves beside it (their cg-test is
    /// gone) are collected first. Nothing is left behind on failure.
    pub fn create(opts: &Options, run_id: &RunId) -> Result<CgroupLeaf, CreateError> {
        if !platform::IS_LINUX {
            return Err(Unavailable("cgroups exist only on Linux".into()).into());
        }
        let parent_path = cgroupfs::own_cgroup_dir().map_err(|e| Unavailable(format!("{e:#}")))?;
        if !opts.keep_stale {
            collect_stale_beside(&parent_path, opts);
        }
        let parent = DirFd::open(&parent_path).map_err(|e| {
            Unavailable(format!("cannot open cgroup {}: {e}", parent_path.display()))
        })?;
        // Held until the leaf (and cg-test's own leaf, if the limits make one) is
        // locked: gc judges no leaf of this cgroup meanwhile, so it never finds ours
        // made but not yet locked.
        let making = MakingLock::take(&parent, false)
            .map_err(|why| {
                crate::step!("{why}; making the leaf without it");
            })
            .ok();
        // The controllers first (cg-test may move itself into a leaf of its own), so a
        // refusal never leaves a leaf behind; the grant is released by its Drop on
        // every early return below.
        let grant = match &opts.limits {
            None => None,
            Some(l) => match Grant::acquire(&parent_path, l, run_id) {
                Ok(g) => Some(g),
                Err(r) if l.policy == Policy::Strict => {
                    return Err(CreateError::Limits(r.strict_message()))
                }
                Err(r) => {
                    r.warn();
                    None
                }
            },
        };
        let name = std::ffi::OsString::from(run_id.leaf_name());
        let path = parent_path.join(&name);
        parent.mkdir(&name).map_err(|e| {
            Unavailable(format!(
                "cannot create cgroup {}: {e}{}",
                path.display(),
                mkdir_hint(&e)
            ))
        })?;
        let mut leaf = match Self::open(&parent, &name, opts) {
            Ok(leaf) => leaf,
            Err(u) => {
                // Not ours to keep: remove what we just made.
                let _ = parent.rmdir(&name);
                return Err(u.into());
            }
        };
        drop(making);
        if let (Some(grant), Some(l)) = (grant, &opts.limits) {
            leaf.limit(grant, l)?;
        }
        Ok(leaf)
    }

    /// Write the limits into the fresh leaf. A failure removes the leaf (strict) or
    /// sets what was written back to no limit (best-effort); either way the grant is
    /// given back at once.
    fn limit(&mut self, grant: Grant, l: &Limits) -> Result<(), CreateError> {
        self.grant = Some(grant);
        let Err(e) = limits::apply(self.leaf.path(), l) else {
            self.limits = Some(l.clone());
            return Ok(());
        };
        let refusal = limits::Refusal {
            flags: l.flags(),
            what: format!("{e:#}"),
            fix: String::new(),
        };
        if l.policy == Policy::Strict {
            // Drop removes the leaf, then gives the grant back.
            return Err(CreateError::Limits(refusal.strict_message()));
        }
        refusal.warn();
        // The files written so far would still limit the run (while another limited
        // run keeps the controllers enabled). The leaf itself stays: its descriptors
        // are open for the spawn.
        limits::unlimit(self.leaf.path(), l).map_err(|e| Unavailable(format!("{e:#}")))?;
        if let Some(mut g) = self.grant.take() {
            g.release().map_err(|e| Unavailable(format!("{e:#}")))?;
        }
        Ok(())
    }

    fn open(
        parent: &DirFd,
        name: &std::ffi::OsStr,
        opts: &Options,
    ) -> Result<CgroupLeaf, Unavailable> {
        let path = parent.path().join(name);
        let unavailable = |what: &str, p: &Path, e: io::Error| {
            Unavailable(format!("cannot {what} {}: {e}", p.display()))
        };
        // Moving a process between cgroups needs write access to cgroup.procs of their
        // common ancestor: our own cgroup.
        let parent_procs = parent.path().join("cgroup.procs");
        if !writable(&parent_procs) {
            return Err(Unavailable(format!(
                "cannot move processes out of {}: {} is not writable \
                 (delegate that cgroup to this user, or run as root)",
                parent.path().display(),
                parent_procs.display()
            )));
        }
        let dir = parent
            .open_at(name)
            .map_err(|e| unavailable("open", &path, e))?;
        // The liveness lock, held for the whole run (and by the watchdog until its
        // teardown is done): gc in any namespace collects a leaf only once it can take
        // this lock. A leaf that cannot be locked still works; only gc from another pid
        // or time namespace could then take the run for gone.
        if let Err(e) = dir.flock(libc::LOCK_EX | libc::LOCK_NB) {
            crate::note!(
                "cannot lock {} (flock: {e}); `cg-test gc` run in another pid or time \
                 namespace could take this run for gone",
                path.display()
            );
        }
        let procs_path = path.join("cgroup.procs");
        let procs = dir
            .file("cgroup.procs", true)
            .map_err(|e| unavailable("open for writing", &procs_path, e))?;
        let mut leaf = match Leaf::from_dir(dir, opts) {
            Ok(leaf) => leaf,
            Err(OpenError::Gone) => {
                return Err(Unavailable(format!(
                    "{} was removed meanwhile",
                    path.display()
                )))
            }
            Err(OpenError::Failed(e)) => return Err(Unavailable(format!("{e:#}"))),
        };
        if !leaf
            .has_freezer()
            .map_err(|e| Unavailable(format!("{e:#}")))?
        {
            return Err(Unavailable(format!(
                "{} has no cgroup.freeze (the cgroup v2 freezer needs Linux 5.2)",
                path.display()
            )));
        }
        if crate::report::shows_steps() {
            crate::step!(
                "created {} (cgroup.kill: {})",
                path.display(),
                if leaf.has_kill() {
                    "yes"
                } else {
                    "no, killing each member while frozen"
                }
            );
        }
        Ok(CgroupLeaf {
            leaf,
            procs,
            force_fork: opts.fork_spawn,
            released: false,
            limits: None,
            grant: None,
        })
    }

    /// The leaf's directory.
    pub fn path(&self) -> &Path {
        self.leaf.path()
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

pub(crate) fn rmdir_retrying(dir: &Path) -> Result<()> {
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
                return Err(anyhow!(
                    "removing cgroup {}: {e}; `cg-test gc` removes it once it is empty",
                    dir.display()
                ));
            }
        }
    }
}

impl Isolation for CgroupLeaf {
    fn kind(&self) -> &'static str {
        "cgroup"
    }

    fn describe(&self) -> String {
        format!("cgroup {}", self.leaf.path.display())
    }

    fn limits(&self) -> Option<&Limits> {
        self.limits.as_ref()
    }

    fn limits_undo(&self) -> Option<limits::Undo> {
        self.grant.as_ref().map(Grant::undo)
    }

    fn liveness_fds(&self) -> [Option<BorrowedFd<'_>>; 2] {
        [
            Some(self.leaf.dir.as_fd()),
            self.grant.as_ref().and_then(Grant::supervisor_lock),
        ]
    }

    fn placement(&self) -> Placement<'_> {
        Placement::Cgroup {
            dir: self.leaf.dir.as_fd(),
            procs: self.procs.as_fd(),
            force_fork: self.force_fork,
        }
    }

    fn adopt(&mut self, _pid: i32) {}

    fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.leaf.events.as_fd())
    }

    fn poll_interval(&self) -> Option<Duration> {
        None
    }

    fn is_empty(&mut self) -> Result<bool> {
        self.leaf.is_empty()
    }

    fn freeze(&mut self) -> bool {
        self.leaf.freeze()
    }

    fn thaw(&mut self) {
        self.leaf.thaw()
    }

    fn holds_frozen(&self) -> bool {
        self.leaf.frozen
    }

    fn members(&mut self) -> Result<Vec<i32>> {
        self.leaf.all_pids()
    }

    fn signal(&mut self, pids: &[i32], signals: &[i32]) -> Result<usize> {
        self.leaf.signal(pids, signals)
    }

    fn kill_all(&mut self, reaper: &mut Reaper) -> Result<()> {
        self.leaf.kill_all(reaper)
    }

    fn release(&mut self) -> Result<()> {
        if !self.released {
            self.leaf.remove_tree()?;
            // Only now: a failed rmdir leaves `released` false, so the Drop backstop
            // tries again.
            self.released = true;
            crate::step!("removed {}", self.leaf.path.display());
        }
        // Our own cgroup's controllers and cg-test's own leaf go back only once the
        // run's leaf is gone (a nested run's subtree_control in it would block them).
        if let Some(g) = &mut self.grant {
            g.release()?;
        }
        Ok(())
    }

    fn cgroup_dir(&self) -> Option<&Path> {
        Some(self.leaf.path())
    }
}

impl Drop for CgroupLeaf {
    /// A backstop for paths that bail out before `release`, or whose release failed:
    /// kill whatever is inside (cgroup.kill needs no freeze, and the pid-by-pid kill
    /// re-freezes or pins by itself) and remove the leaf, so an error in cg-test never
    /// leaves a run behind.
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if !self.leaf.is_empty().unwrap_or(false) {
            let _ = self.leaf.kill_all(&mut Reaper::new());
        }
        if let Err(e) = self.release() {
            crate::note!("{e:#}");
        }
    }
}

/// What happened to one stale leaf.
#[derive(Debug, Default)]
pub struct Collected {
    /// Processes killed (or, for a dry run, that would be), with their command lines.
    pub processes: Vec<(i32, String)>,
    /// Members killed (or that would be) that this pid namespace cannot see: the
    /// kernel lists them as pid 0 (`cgroup.kill` reaches them all the same).
    pub hidden: usize,
    /// The leaf was removed (a dry run removes nothing).
    pub removed: bool,
}

/// Whether a directory name is a cg-test leaf (a run's, or cg-test's own beside it),
/// and whose. Both are collected the same way once their owner is gone.
pub fn leaf_owner(name: &str) -> Option<RunId> {
    RunId::parse_leaf(name).map(|(id, _)| id)
}

/// Is the cg-test that made a leaf still alive, as this process sees it? Never judged
/// by pid alone: the start time must match too. A leaf whose name carries no start
/// time (0) counts as alive while its pid exists.
///
/// A `false` here is not enough to collect a leaf: from another pid namespace the
/// owner's pid is not visible, and from another time namespace its start time reads
/// differently. [`judge`] adds the leaf's liveness lock.
pub fn owner_alive(id: &RunId) -> bool {
    if id.start == 0 {
        return platform::process_start_time(id.pid).is_some();
    }
    platform::process_alive(id.pid, id.start)
}

/// How long gc waits for cg-tests that are making leaves in a cgroup (each holds the
/// shared lock for the few syscalls between its mkdir and its leaf's lock).
const MAKING_LIMIT: Duration = Duration::from_secs(2);

/// `P/cgroup.procs` under `flock`: shared while a cg-test makes and locks a leaf in P
/// (and cg-test's own leaf beside it), exclusive while gc or a start-up sweep judges
/// the leaves of P. So gc never finds a leaf between its mkdir and its liveness lock.
/// `cgroup.procs` because every cgroup has one, the root too; the directory itself
/// carries the limits' presence lock, `cgroup.subtree_control` their mutex.
pub struct MakingLock(#[allow(dead_code)] File);

impl MakingLock {
    /// Take it (bounded; polls, as flock has no timeout), or say why not.
    pub fn take(parent: &DirFd, exclusive: bool) -> Result<MakingLock, String> {
        let shown = parent.path().join("cgroup.procs");
        let f = parent
            .file("cgroup.procs", false)
            .map_err(|e| format!("opening {}: {e}", shown.display()))?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        } | libc::LOCK_NB;
        let until = Instant::now() + MAKING_LIMIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match cgroupfs::flock_fd(f.as_fd(), op) {
                Ok(()) => return Ok(MakingLock(f)),
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) && Instant::now() < until => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                    return Err(format!(
                        "{} stayed locked for {MAKING_LIMIT:?} (a cg-test or gc stopped \
                         halfway?)",
                        shown.display()
                    ))
                }
                Err(e) => return Err(format!("flock on {}: {e}", shown.display())),
            }
        }
    }
}

/// What gc (or a start-up sweep) may do with a leaf named for a cg-test.
pub enum Verdict {
    /// Its cg-test or its watchdog is at work, or the leaf is gone: leave it.
    Live,
    /// Both are gone. The leaf's directory, with its liveness lock now ours until it
    /// is collected (so no other gc collects it at the same time).
    Stale(DirFd),
    /// It cannot be told: leave the leaf, and say why (this line).
    Unknown(String),
}

/// Judge the leaves `names` of `parent` (each with the run id its name carries).
/// A leaf is stale only when both say so: its owner is not alive as this process
/// sees it ([`owner_alive`]: pid and start time), and its liveness lock can be taken
/// (nobody holds it: not cg-test, which holds it for the whole run, nor the watchdog,
/// which inherits it and holds it until its teardown is done). The lock is what holds
/// across pid and time namespaces; the pid check is what holds for a leaf of a cg-test
/// from before the lock existed, seen from its own namespace.
pub fn judge(
    parent: &DirFd,
    names: Vec<(std::ffi::OsString, RunId)>,
) -> Vec<(std::ffi::OsString, RunId, Verdict)> {
    let mut out = Vec::with_capacity(names.len());
    let mut suspects = Vec::new();
    for (name, id) in names {
        if owner_alive(&id) {
            out.push((name, id, Verdict::Live));
        } else {
            suspects.push((name, id));
        }
    }
    if suspects.is_empty() {
        return out;
    }
    let making = MakingLock::take(parent, true);
    for (name, id) in suspects {
        let path = parent.path().join(&name);
        let cannot = |why: String| {
            Verdict::Unknown(format!(
                "cannot tell whether the cg-test of {} (pid {}) is gone ({why}); left in place",
                path.display(),
                id.pid
            ))
        };
        let verdict = match &making {
            Err(why) => cannot(why.clone()),
            Ok(_) => match parent.open_at(&name) {
                Ok(dir) => match dir.flock(libc::LOCK_EX | libc::LOCK_NB) {
                    Ok(()) => Verdict::Stale(dir),
                    Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                        crate::step!(
                            "{}: its cg-test (pid {}) is not alive as seen from here, but \
                             the leaf is locked by it or its watchdog (another pid or time \
                             namespace?): left alone",
                            path.display(),
                            id.pid
                        );
                        Verdict::Live
                    }
                    Err(e) => cannot(format!("flock on {}: {e}", path.display())),
                },
                // Removed meanwhile (nothing renames a cgroup v2): nothing to do.
                Err(e) if e.kind() == io::ErrorKind::NotFound => Verdict::Live,
                Err(e) => cannot(format!("opening {}: {e}", path.display())),
            },
        };
        out.push((name, id, verdict));
    }
    out
}

/// Kill everything in a stale leaf (freeze, read the members with their command lines,
/// kill, wait for `populated 0`) and remove it with what a nested run left below it.
/// A dry run only reads the members. A leaf that is confirmed gone already is nothing
/// to collect.
pub fn collect_leaf(path: &Path, opts: &Options, dry_run: bool) -> Result<Collected> {
    match Leaf::open_checked(path, opts) {
        Ok(leaf) => collect(leaf, dry_run),
        Err(OpenError::Gone) => Ok(Collected::default()),
        Err(OpenError::Failed(e)) => Err(e),
    }
}

/// [`collect_leaf`] on a leaf whose directory is open already: one [`judge`] found
/// stale, or the one the watchdog inherited from cg-test (reached whatever happened to
/// the mount cg-test made it through).
pub fn collect_dir(dir: DirFd, opts: &Options, dry_run: bool) -> Result<Collected> {
    match Leaf::from_dir(dir, opts) {
        Ok(leaf) => collect(leaf, dry_run),
        Err(OpenError::Gone) => Ok(Collected::default()),
        Err(OpenError::Failed(e)) => Err(e),
    }
}

fn collect(mut leaf: Leaf, dry_run: bool) -> Result<Collected> {
    if !dry_run && !leaf.is_empty()? {
        leaf.freeze();
    }
    let (pids, hidden) = leaf.members()?;
    let processes = pids
        .into_iter()
        .map(|pid| (pid, platform::cmdline(pid).unwrap_or_else(|| "?".into())))
        .collect();
    if dry_run {
        return Ok(Collected {
            processes,
            hidden,
            removed: false,
        });
    }
    if !leaf.is_empty()? {
        leaf.kill_all(&mut Reaper::new())?;
    }
    leaf.remove_tree()?;
    Ok(Collected {
        processes,
        hidden,
        removed: true,
    })
}

/// Collect the stale leaves directly in `dir` (cg-test's own cgroup, before it makes
/// its own leaf there): one directory read when there are none, and no lock taken
/// unless a leaf's owner looks gone. Failures are noted, never fatal: the run goes on.
pub fn collect_stale_beside(dir: &Path, opts: &Options) {
    let Ok(parent) = DirFd::open(dir) else {
        return;
    };
    let Ok(names) = parent.subdirs() else {
        return;
    };
    let mut suspects: Vec<(std::ffi::OsString, RunId)> = names
        .into_iter()
        .filter_map(|name| {
            let id = name.to_str().and_then(leaf_owner)?;
            (!owner_alive(&id)).then_some((name, id))
        })
        .collect();
    if suspects.is_empty() {
        return;
    }
    // A run's leaf before its cg-test's own leaf (`…-supervisor` sorts after it).
    suspects.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, id, verdict) in judge(&parent, suspects) {
        let path = dir.join(&name);
        match verdict {
            Verdict::Live => {}
            Verdict::Unknown(why) => crate::note!("{why}"),
            Verdict::Stale(d) => match collect_dir(d, opts, false) {
                Ok(c) => report_collected("", &path, &id, &c),
                Err(e) => crate::note!("collecting the stale leaf {}: {e:#}", path.display()),
            },
        }
    }
    // A run that died with its watchdog may have left controllers it enabled here.
    match limits::settle(dir, false) {
        Ok(disabled) if !disabled.is_empty() => report_settled("", dir, &disabled, false),
        Ok(_) => {}
        Err(e) => crate::note!("putting back the controllers of {}: {e:#}", dir.display()),
    }
}

/// The line for controllers a gone cg-test had enabled and that were disabled.
pub fn report_settled(prefix: &str, dir: &Path, disabled: &[String], dry_run: bool) {
    crate::report::line(format_args!(
        "{prefix}{} {} in {} (enabled by cg-test runs that are gone)",
        if dry_run { "would disable" } else { "disabled" },
        disabled.join(", "),
        dir.join("cgroup.subtree_control").display()
    ));
}

/// The lines for one collected leaf: one per process, one for the members this pid
/// namespace cannot see (if any), one for the leaf.
pub fn report_collected(prefix: &str, path: &Path, id: &RunId, c: &Collected) {
    let verb = if c.removed { "killed" } else { "would kill" };
    for (pid, cmd) in &c.processes {
        crate::report::line(format_args!(
            "{prefix}{verb} pid {pid} ({cmd}) in the stale leaf {}",
            path.display()
        ));
    }
    if c.hidden > 0 {
        crate::report::line(format_args!(
            "{prefix}{verb} {} process(es) not visible from this pid namespace in the stale \
             leaf {}",
            c.hidden,
            path.display()
        ));
    }
    crate::report::line(format_args!(
        "{prefix}{} {} (its cg-test, pid {}, is gone)",
        if c.removed {
            "removed stale leaf"
        } else {
            "would remove stale leaf"
        },
        path.display(),
        id.pid
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `release` marks the leaf released only once rmdir succeeded, so a failed rmdir
    /// is tried again (by a later call, and by the Drop backstop). A temp dir stands
    /// in for the leaf: a regular file inside makes rmdir fail as a busy cgroup would;
    /// what is tested is the state logic, not the kernel.
    #[test]
    fn a_failed_rmdir_is_tried_again() {
        let dir = std::env::temp_dir().join(format!("cg-test-unit-release-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["cgroup.events", "cgroup.procs"] {
            std::fs::write(dir.join(f), "populated 0\nfrozen 0\n").unwrap();
        }
        let mut leaf = CgroupLeaf {
            leaf: Leaf::open(&dir, &Options::default()).unwrap(),
            procs: File::open(dir.join("cgroup.procs")).unwrap(),
            force_fork: false,
            released: false,
            limits: None,
            grant: None,
        };
        assert!(leaf.release().is_err(), "rmdir of a non-empty dir fails");
        assert!(!leaf.released);
        for f in ["cgroup.events", "cgroup.procs"] {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        leaf.release().expect("the second attempt removes it");
        assert!(leaf.released && !dir.exists());
    }
}
