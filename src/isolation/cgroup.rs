//! The cgroup v2 strategy: one fresh leaf per run, directly below the cgroup cg-test
//! itself is in, named `cg-test-<pid>-<start>-<nonce>` (see [`crate::run_id`]).
//!
//! [`Leaf`] controls any existing leaf: freeze, signal, kill, remove. The run uses it
//! through [`CgroupLeaf`] (which also holds what the spawn needs); the watchdog, `cg-test
//! gc` and the start-up sweep of stale leaves use it on leaves whose cg-test is gone.
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

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::limits::{self, Grant, Limits, Policy};
use super::{Isolation, Options, Reaper, Unavailable};
use crate::cgroupfs::{self, Events};
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

/// Control of one existing cgroup v2 leaf (and whatever a nested run made below it).
pub struct Leaf {
    path: PathBuf,
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

impl Leaf {
    /// Open an existing leaf. The error names the file that could not be opened.
    pub fn open(path: &Path, opts: &Options) -> Result<Leaf> {
        let events_path = path.join("cgroup.events");
        let events = File::open(&events_path)
            .with_context(|| format!("opening {}", events_path.display()))?;
        Ok(Leaf {
            path: path.to_path_buf(),
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

    /// Whether the kill is one write to `cgroup.kill` (else pid by pid while frozen).
    pub fn has_kill(&mut self) -> bool {
        let (signal_kill, path) = (self.signal_kill, &self.path);
        *self
            .has_kill
            .get_or_insert_with(|| !signal_kill && path.join("cgroup.kill").exists())
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
    pub fn all_pids(&self) -> Result<Vec<i32>> {
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
                let stuck = self.all_pids().unwrap_or_default();
                return Err(anyhow!(
                    "{} still holds pids {stuck:?} {KILL_LIMIT:?} after the kill \
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

    /// Remove the cgroups a nested run left below ours, deepest first, then the leaf.
    pub fn remove_tree(&self) -> Result<()> {
        // The common case, a leaf nothing made cgroups below: one rmdir, no listing.
        // ENOTEMPTY means there are some; EBUSY is left to the retries below.
        match std::fs::remove_dir(&self.path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(_) => {}
        }
        let mut dirs = subtree(&self.path)?;
        dirs.reverse();
        for dir in dirs {
            rmdir_retrying(&dir)?;
        }
        Ok(())
    }
}

/// A cgroup v2 leaf owned by this run.
pub struct CgroupLeaf {
    leaf: Leaf,
    dir: File,
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
        let parent = cgroupfs::own_cgroup_dir().map_err(|e| Unavailable(format!("{e:#}")))?;
        if !opts.keep_stale {
            collect_stale_beside(&parent, opts);
        }
        // The controllers first (cg-test may move itself into a leaf of its own), so a
        // refusal never leaves a leaf behind; the grant is released by its Drop on
        // every early return below.
        let grant = match &opts.limits {
            None => None,
            Some(l) => match Grant::acquire(&parent, l, run_id) {
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
        let path = parent.join(run_id.leaf_name());
        std::fs::create_dir(&path).map_err(|e| {
            Unavailable(format!(
                "cannot create cgroup {}: {e}{}",
                path.display(),
                mkdir_hint(&e)
            ))
        })?;
        let mut leaf = match Self::open(path.clone(), &parent, opts) {
            Ok(leaf) => leaf,
            Err(u) => {
                // Not ours to keep: remove what we just made.
                let _ = std::fs::remove_dir(&path);
                return Err(u.into());
            }
        };
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

    fn open(path: PathBuf, parent: &Path, opts: &Options) -> Result<CgroupLeaf, Unavailable> {
        let unavailable = |what: &str, p: &Path, e: io::Error| {
            Unavailable(format!("cannot {what} {}: {e}", p.display()))
        };
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
        let mut leaf = Leaf::open(&path, opts).map_err(|e| Unavailable(format!("{e:#}")))?;
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
            dir,
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

    fn placement(&self) -> Placement<'_> {
        Placement::Cgroup {
            dir: self.dir.as_fd(),
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
    /// The leaf was removed (a dry run removes nothing).
    pub removed: bool,
}

/// Whether a directory name is a cg-test leaf (a run's, or cg-test's own beside it),
/// and whose. Both are collected the same way once their owner is gone.
pub fn leaf_owner(name: &str) -> Option<RunId> {
    RunId::parse_leaf(name).map(|(id, _)| id)
}

/// Is the cg-test that made a leaf still alive? Never judged by pid alone: the start
/// time must match too. A leaf whose name carries no start time (0) counts as alive
/// while its pid exists.
pub fn owner_alive(id: &RunId) -> bool {
    if id.start == 0 {
        return platform::process_start_time(id.pid).is_some();
    }
    platform::process_alive(id.pid, id.start)
}

/// Kill everything in a stale leaf (freeze, read the members with their command lines,
/// kill, wait for `populated 0`) and remove it with what a nested run left below it.
/// A dry run only reads the members.
pub fn collect_leaf(path: &Path, opts: &Options, dry_run: bool) -> Result<Collected> {
    let mut leaf = match Leaf::open(path, opts) {
        Ok(leaf) => leaf,
        // Someone (its watchdog, another gc) removed it meanwhile.
        Err(_) if !path.exists() => return Ok(Collected::default()),
        Err(e) => return Err(e),
    };
    if !dry_run && !leaf.is_empty()? {
        leaf.freeze();
    }
    let processes = leaf
        .all_pids()?
        .into_iter()
        .map(|pid| (pid, platform::cmdline(pid).unwrap_or_else(|| "?".into())))
        .collect();
    if dry_run {
        return Ok(Collected {
            processes,
            removed: false,
        });
    }
    if !leaf.is_empty()? {
        leaf.kill_all(&mut Reaper::new())?;
    }
    leaf.remove_tree()?;
    Ok(Collected {
        processes,
        removed: true,
    })
}

/// Collect the stale leaves directly in `dir` (cg-test's own cgroup, before it makes
/// its own leaf there): one directory read when there are none. Failures are noted,
/// never fatal: the run goes on.
pub fn collect_stale_beside(dir: &Path, opts: &Options) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut stale: Vec<(PathBuf, RunId)> = entries
        .flatten()
        .filter_map(|entry| {
            let id = entry.file_name().to_str().and_then(leaf_owner)?;
            (!owner_alive(&id)).then(|| (entry.path(), id))
        })
        .collect();
    if stale.is_empty() {
        return;
    }
    // A run's leaf before its cg-test's own leaf (`…-supervisor` sorts after it).
    stale.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, id) in &stale {
        match collect_leaf(path, opts, false) {
            Ok(c) => report_collected("", path, id, &c),
            Err(e) => crate::note!("collecting the stale leaf {}: {e:#}", path.display()),
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

/// The lines for one collected leaf: one per process, one for the leaf.
pub fn report_collected(prefix: &str, path: &Path, id: &RunId, c: &Collected) {
    let verb = if c.removed { "killed" } else { "would kill" };
    for (pid, cmd) in &c.processes {
        crate::report::line(format_args!(
            "{prefix}{verb} pid {pid} ({cmd}) in the stale leaf {}",
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
            dir: File::open(&dir).unwrap(),
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
