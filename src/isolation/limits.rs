//! Resource limits on the run's leaf (`--memory-max`, `--memory-swap-max`, `--pids-max`,
//! `--cpus`) and the controllers they need.
//!
//! A limit is a file of the leaf (`memory.max`, `memory.swap.max`, `pids.max`,
//! `cpu.max`), which the leaf only has while its parent — cg-test's own cgroup P — lists
//! the controller in `cgroup.subtree_control`. cgroup v2's no-internal-process rule lets
//! a cgroup other than the root enable controllers there only while it holds no
//! processes, and cg-test is in P. So, under an exclusive `flock` on
//! `P/cgroup.subtree_control` (the *mutex*; every change to P's controllers by any
//! cg-test happens inside it):
//! 1. controllers bound to cgroup v1 (a hybrid host) or not offered to P are refused;
//! 2. a shared `flock` on P's directory (the *presence*) is taken and held for the run:
//!    it tells others that a limited run at P needs P's controllers;
//! 3. the missing controllers are recorded in P's `user.cg-test.controllers` attribute
//!    (the *record*: what cg-test, and not someone else, enabled), then enabled with one
//!    write. At the real root (exempt from the rule) cg-test stays where it is.
//!    Anywhere else it first moves itself into a leaf of its own beside the run's leaf
//!    (`cg-test-<id>-supervisor`) if it is the only process in P, and refuses if any
//!    other process is there (it never moves processes it did not start).
//!
//! At the end, inside the mutex: if the presence can be turned exclusive (no other
//! limited run at P), the recorded controllers are disabled and the record removed;
//! cg-test and its watchdog move back into P and the supervisor leaf is removed. The
//! watchdog does the same if cg-test is killed, and `cg-test gc` and the start-up
//! sweep do it for a record whose runs are all gone. docs/DESIGN.md has the failure
//! modes.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::cgroupfs;
use crate::platform;
use crate::run_id::RunId;

/// The period of `cpu.max` in microseconds: the kernel's default (100 ms). `--cpus N`
/// becomes `N × 100000` µs of CPU time per 100 ms: short enough that a throttled run
/// still gets CPU ten times a second, long enough that the quota of `--cpus 0.01` is
/// the kernel's minimum of 1 ms.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest and largest `--cpus`: the kernel's minimum quota of 1 ms per period,
/// and a bound far above any machine's core count that still catches typos.
pub const MIN_CPUS: f64 = 0.01;
pub const MAX_CPUS: f64 = 1024.0;
/// The largest `--pids-max` the kernel accepts (PID_MAX_LIMIT).
pub const MAX_PIDS: u32 = 4_194_304;

/// How long to wait for another cg-test's change of P's controllers to finish. Each
/// takes a few writes; the bound only matters for one that was stopped halfway.
const LOCK_LIMIT: Duration = Duration::from_secs(10);

/// The record of which controllers cg-test enabled in a cgroup's `subtree_control`.
const RECORD: &CStr = c"user.cg-test.controllers";

/// What a limit the host cannot apply does to the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Refuse the run (exit 125) with the reason.
    #[default]
    Strict,
    /// Say why in one line and run without any limit.
    BestEffort,
}

/// `memory.swap.max` alongside `memory.max`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SwapMax {
    /// No swap at all (the default), so `memory.max` is a real bound.
    #[default]
    None,
    /// At most this many bytes of swap.
    Bytes(u64),
    /// Swap is not limited (`max`).
    Unlimited,
}

/// The limits a run asks for. At least one is set when the options carry a `Limits`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// `memory.max`, bytes.
    pub memory_max: Option<u64>,
    /// `memory.swap.max`, written whenever `memory_max` is.
    pub memory_swap_max: SwapMax,
    /// `pids.max`.
    pub pids_max: Option<u32>,
    /// `cpu.max` quota in µs per [`CPU_PERIOD_US`].
    pub cpu_quota_us: Option<u64>,
    pub policy: Policy,
}

impl Limits {
    /// The controllers these limits need, in the kernel's order.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut c = Vec::new();
        if self.cpu_quota_us.is_some() {
            c.push("cpu");
        }
        if self.memory_max.is_some() {
            c.push("memory");
        }
        if self.pids_max.is_some() {
            c.push("pids");
        }
        c
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.controllers().is_empty()
    }

    /// The flags that asked for these limits, for messages (`--memory-max, --cpus`).
    pub fn flags(&self) -> String {
        flags_of(&self.controllers())
    }

    /// `--cpus N` as a quota per [`CPU_PERIOD_US`].
    pub fn cpu_quota_of(cpus: f64) -> u64 {
        (cpus * CPU_PERIOD_US as f64).round() as u64
    }
}

/// The flag that asks for a controller.
fn flag_of(controller: &str) -> &'static str {
    match controller {
        "cpu" => "--cpus",
        "memory" => "--memory-max",
        "pids" => "--pids-max",
        _ => "a limit",
    }
}

fn flags_of<S: AsRef<str>>(controllers: &[S]) -> String {
    let flags: Vec<&str> = controllers.iter().map(|c| flag_of(c.as_ref())).collect();
    flags.join(", ")
}

/// "memory", "memory and pids", "cpu, memory and pids".
fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<&str> = items.iter().map(|s| s.as_ref()).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Why the limits cannot be applied here, in parts, so the strict refusal and the
/// best-effort warning can say it in their own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The flags concerned (`--memory-max, --pids-max`).
    pub flags: String,
    /// What stands in the way, and why.
    pub what: String,
    /// How to make it work (may be empty).
    pub fix: String,
}

impl Refusal {
    /// The one line of `--limits strict` (exit 125).
    pub fn strict_message(&self) -> String {
        let fix = if self.fix.is_empty() {
            String::new()
        } else {
            format!("; {}", self.fix)
        };
        format!(
            "{}: {}{fix}; or pass --limits best-effort to run without limits",
            self.flags, self.what
        )
    }

    /// The one line of `--limits best-effort`; the run goes on without limits.
    pub fn warn(&self) {
        crate::report::line(format_args!(
            "warning: {}: {}; running without limits (--limits best-effort)",
            self.flags, self.what
        ));
    }
}

/// Say that a best-effort run goes on without its limits because no leaf can be had.
pub fn warn_no_leaf(limits: &Limits, why: &str) {
    Refusal {
        flags: limits.flags(),
        what: format!("limits need a cgroup v2 leaf, and this run uses {why}"),
        fix: String::new(),
    }
    .warn();
}

/// What the watchdog (or anyone after cg-test's death) needs to put P back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undo {
    /// cg-test's own cgroup, where the run's leaf is.
    pub parent: PathBuf,
    /// cg-test's own leaf, when it had to move there.
    pub supervisor: Option<PathBuf>,
    /// The controllers this run enabled, in case the record could not be written.
    pub enabled_here: Vec<String>,
}

/// What putting P back did.
#[derive(Debug, Default)]
pub struct Restored {
    /// Controllers disabled in P's `subtree_control`.
    pub disabled: Vec<String>,
    /// Controllers that stayed enabled although cg-test had enabled them (a child
    /// cgroup uses them now).
    pub kept: Vec<String>,
    /// Processes moved from the supervisor leaf back into P.
    pub moved_back: usize,
    /// The supervisor leaf was removed.
    pub removed_supervisor: bool,
}

impl Restored {
    /// "disabled memory, pids in P/cgroup.subtree_control, moved 2 process(es) back
    /// into P and removed S", or nothing when nothing was to be done.
    pub fn describe(&self, u: &Undo) -> Option<String> {
        let mut parts = Vec::new();
        if !self.disabled.is_empty() {
            parts.push(format!(
                "disabled {} in {}",
                self.disabled.join(", "),
                u.parent.join("cgroup.subtree_control").display()
            ));
        }
        if let (true, Some(s)) = (self.removed_supervisor, &u.supervisor) {
            parts.push(format!(
                "moved {} process(es) back into {} and removed {}",
                self.moved_back,
                u.parent.display(),
                s.display()
            ));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The controllers this run may use in P, held until [`Grant::release`] (or Drop).
#[derive(Debug)]
pub struct Grant {
    undo: Undo,
    /// P's directory with a shared flock: "a limited run at P uses its controllers".
    presence: Option<File>,
    /// cg-test's own leaf (`cg-test-<id>-supervisor`) with its liveness lock (see
    /// [`super::cgroup::judge`]), held until that leaf is removed; the watchdog
    /// inherits it.
    supervisor_lock: Option<cgroupfs::DirFd>,
    released: bool,
}

impl Grant {
    /// Make `limits`' controllers available to a leaf of `parent` (cg-test's own
    /// cgroup; see the module docs), or say why not. Nothing is changed on refusal.
    pub fn acquire(parent: &Path, limits: &Limits, run_id: &RunId) -> Result<Grant, Refusal> {
        let needed = limits.controllers();
        refuse_v1_bound(parent, &needed)?;
        refuse_not_offered(parent, &needed)?;
        let refuse = |what: String| Refusal {
            flags: flags_of(&needed),
            what,
            fix: String::new(),
        };
        let lock = SubtreeLock::acquire(parent).map_err(|e| refuse(format!("{e:#}")))?;
        let presence = File::open(parent)
            .and_then(|f| flock(&f, libc::LOCK_SH | libc::LOCK_NB).map(|()| f))
            .map_err(|e| refuse(format!("cannot lock {}: {e}", parent.display())))?;
        let mut grant = Grant {
            undo: Undo {
                parent: parent.to_path_buf(),
                supervisor: None,
                enabled_here: Vec::new(),
            },
            presence: Some(presence),
            supervisor_lock: None,
            released: false,
        };
        let subtree = parent.join("cgroup.subtree_control");
        let enabled = words(&subtree).map_err(|e| refuse(format!("{e:#}")))?;
        let missing: Vec<String> = needed
            .iter()
            .filter(|c| !enabled.iter().any(|e| e == *c))
            .map(|c| c.to_string())
            .collect();
        if missing.is_empty() {
            crate::step!("{} already in {}", needed.join(", "), subtree.display());
            return Ok(grant);
        }
        let record_before = read_record(parent);
        match grant.enable(&lock, &missing, run_id) {
            Ok(()) => Ok(grant),
            Err(refusal) => {
                // Nothing was enabled (the one write that enables is all or nothing):
                // put the record back as it was, and cg-test back into P, still under
                // the lock.
                grant.undo.enabled_here.clear();
                if let Ok(before) = record_before {
                    let _ = write_record(parent, &before);
                }
                if let Err(e) = grant.undo_locked(&lock) {
                    crate::note!("{e:#}");
                }
                Err(refusal)
            }
        }
    }

    /// Record, then enable `missing` in P's subtree_control (moving cg-test into a leaf
    /// of its own first where the no-internal-process rule asks for it).
    fn enable(
        &mut self,
        _lock: &SubtreeLock,
        missing: &[String],
        run_id: &RunId,
    ) -> Result<(), Refusal> {
        let parent = self.undo.parent.clone();
        let refuse = |what: String, fix: &str| Refusal {
            flags: flags_of(missing),
            what,
            fix: fix.to_string(),
        };
        // Record first: a crash right after the write below must not leave a controller
        // enabled that no record says cg-test enabled. Disabling one that is not
        // enabled later is harmless.
        match read_record(&parent) {
            Ok(mut record) => {
                for c in missing {
                    if !record.contains(c) {
                        record.push(c.clone());
                    }
                }
                if let Err(e) = write_record(&parent, &record) {
                    crate::step!(
                        "cannot record the controllers cg-test enables on {} ({e}); \
                         only this run will know to disable them",
                        parent.display()
                    );
                }
            }
            Err(e) => crate::step!(
                "cannot read {} of {} ({e}); only this run will know to disable what it enables",
                RECORD.to_string_lossy(),
                parent.display()
            ),
        }
        self.undo.enabled_here = missing.to_vec();
        if !is_real_root(&parent) {
            self.move_out_of(&parent, missing, run_id)?;
        }
        let subtree = parent.join("cgroup.subtree_control");
        let plus: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
        let plus = plus.join(" ");
        std::fs::write(&subtree, &plus).map_err(|e| {
            let why = if e.raw_os_error() == Some(libc::EBUSY) {
                " (another process entered it meanwhile)"
            } else {
                ""
            };
            refuse(
                format!("writing {plus:?} to {}: {e}{why}", subtree.display()),
                "",
            )
        })?;
        crate::step!("enabled {} in {}", missing.join(", "), subtree.display());
        Ok(())
    }

    /// The no-internal-process rule, in P other than the real root: cg-test must not be
    /// in P when it enables controllers there. For a domain controller (memory) the
    /// kernel would refuse with EBUSY; for cpu and pids, which can also run threaded,
    /// it would accept, but make P a thread root whose domain children (the run's
    /// leaf) take no processes at all (EOPNOTSUPP). So cg-test moves itself into a leaf
    /// of its own first — only when it is alone in P: it never moves other processes.
    fn move_out_of(
        &mut self,
        parent: &Path,
        missing: &[String],
        run_id: &RunId,
    ) -> Result<(), Refusal> {
        let refuse = |what: String, fix: &str| Refusal {
            flags: flags_of(missing),
            what,
            fix: fix.to_string(),
        };
        let others = other_processes(parent).map_err(|e| refuse(format!("{e:#}"), ""))?;
        if !others.is_empty() {
            return Err(refuse(
                not_alone(parent, missing, &others),
                "run cg-test alone in a cgroup of its own \
                 (systemd-run --scope -p Delegate=yes cg-test ..., or as a \
                 container's PID 1)",
            ));
        }
        let s = parent.join(run_id.supervisor_leaf_name());
        std::fs::create_dir(&s)
            .map_err(|e| refuse(format!("cannot create cgroup {}: {e}", s.display()), ""))?;
        self.undo.supervisor = Some(s.clone());
        // Its liveness lock, as for the run's leaf: gc and the start-up sweep leave it
        // alone while cg-test, or its watchdog putting things back, holds it.
        match cgroupfs::DirFd::open(&s) {
            Ok(d) => match d.flock(libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => self.supervisor_lock = Some(d),
                Err(e) => crate::note!("cannot lock {} (flock: {e})", s.display()),
            },
            Err(e) => crate::note!("cannot open {}: {e}", s.display()),
        }
        cgroupfs::write(s.join("cgroup.procs"), "0")
            .map_err(|e| refuse(format!("moving cg-test into its own leaf: {e:#}"), ""))?;
        crate::step!(
            "moved cg-test into {} (the no-internal-process rule: {} may pass \
             controllers down only while it holds no processes)",
            s.display(),
            parent.display()
        );
        Ok(())
    }

    /// What to put back if cg-test dies before releasing (for the watchdog).
    pub fn undo(&self) -> Undo {
        self.undo.clone()
    }

    /// The descriptor of cg-test's own leaf that carries its liveness lock, if cg-test
    /// moved into one (the watchdog must hold it until it has put everything back).
    pub fn supervisor_lock(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.supervisor_lock.as_ref().map(|d| d.as_fd())
    }

    /// Put P back: under the mutex, disable what cg-test enabled if no other limited run
    /// at P is left, move cg-test (and its watchdog) back into P and remove the
    /// supervisor leaf. Call after the run's leaf is gone. Idempotent; may be called
    /// again after a failure.
    pub fn release(&mut self) -> Result<()> {
        if self.released {
            return Ok(());
        }
        let lock = SubtreeLock::acquire(&self.undo.parent)?;
        self.undo_locked(&lock)
    }

    fn undo_locked(&mut self, _lock: &SubtreeLock) -> Result<()> {
        let restored = restore_locked(&self.undo, self.presence.take())?;
        self.released = true;
        // Only now: cg-test's own leaf is removed.
        self.supervisor_lock = None;
        if let Some(what) = restored.describe(&self.undo) {
            crate::step!("{what}");
        }
        Ok(())
    }
}

impl Drop for Grant {
    /// A backstop for paths that never reached `release`.
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            crate::note!("{e:#}");
        }
    }
}

/// cg-test is gone (the watchdog, after removing the run's leaf): put P back as
/// [`Grant::release`] would. The dead cg-test's presence died with it.
pub fn restore_after_death(u: &Undo) -> Result<Restored> {
    let _lock = SubtreeLock::acquire(&u.parent)?;
    restore_locked(u, None)
}

fn restore_locked(u: &Undo, presence: Option<File>) -> Result<Restored> {
    let mut r = Restored::default();
    let presence = match presence {
        Some(f) => f,
        None => File::open(&u.parent).with_context(|| format!("opening {}", u.parent.display()))?,
    };
    // Turning our shared lock exclusive succeeds only if no other limited run at P
    // holds one (a failed attempt drops ours, which is what leaving means anyway).
    if flock(&presence, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
        (r.disabled, r.kept) = disable_recorded(&u.parent, &u.enabled_here)?;
    }
    drop(presence);
    if let Some(s) = &u.supervisor {
        if s.exists() {
            r.moved_back = move_all(s, &u.parent)?;
            super::cgroup::rmdir_retrying(s)?;
        }
        r.removed_supervisor = true;
    }
    Ok(r)
}

/// Disable the recorded controllers (and `extra`) that are enabled in `dir`, and keep
/// in the record only those that could not be (a child cgroup enabled them for its
/// own children meanwhile: EBUSY). Returns (disabled, kept).
fn disable_recorded(dir: &Path, extra: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let mut todo = read_record(dir).unwrap_or_default();
    for c in extra {
        if !todo.contains(c) {
            todo.push(c.clone());
        }
    }
    if todo.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let subtree = dir.join("cgroup.subtree_control");
    let enabled = words(&subtree)?;
    let (mut disabled, mut kept) = (Vec::new(), Vec::new());
    for c in todo {
        if !enabled.contains(&c) {
            continue;
        }
        match std::fs::write(&subtree, format!("-{c}")) {
            Ok(()) => disabled.push(c),
            Err(e) => {
                crate::note!(
                    "{c} stays enabled in {} (writing \"-{c}\": {e}{}); cg-test gc or a later \
                     limited run disables it once nothing needs it",
                    subtree.display(),
                    if e.raw_os_error() == Some(libc::EBUSY) {
                        ": a child cgroup passes it down to its own children"
                    } else {
                        ""
                    }
                );
                kept.push(c);
            }
        }
    }
    if let Err(e) = write_record(dir, &kept) {
        if e.raw_os_error() != Some(libc::ENOTSUP) && e.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(e).with_context(|| {
                format!("updating {} of {}", RECORD.to_string_lossy(), dir.display())
            });
        }
    }
    Ok((disabled, kept))
}

/// Whether `dir` carries a record of controllers cg-test enabled.
pub fn has_record(dir: &Path) -> bool {
    read_record(dir).is_ok_and(|r| !r.is_empty())
}

/// For `cg-test gc` and the start-up sweep: disable the controllers cg-test runs that
/// are gone enabled in `dir`, unless a live limited run there still uses them. Returns
/// the controllers disabled (or, for a dry run, that would be). One read of an
/// attribute when there is no record.
pub fn settle(dir: &Path, dry_run: bool) -> Result<Vec<String>> {
    let record = match read_record(dir) {
        Ok(r) if !r.is_empty() => r,
        _ => return Ok(Vec::new()),
    };
    let _lock = SubtreeLock::acquire(dir)?;
    let presence = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    if flock(&presence, libc::LOCK_EX | libc::LOCK_NB).is_err() {
        return Ok(Vec::new()); // a live limited run uses them
    }
    if dry_run {
        let enabled = words(&dir.join("cgroup.subtree_control"))?;
        return Ok(record.into_iter().filter(|c| enabled.contains(c)).collect());
    }
    Ok(disable_recorded(dir, &[])?.0)
}

/// Write the limits into the run's fresh leaf. Every error names its file.
pub fn apply(leaf: &Path, limits: &Limits) -> Result<()> {
    if let Some(bytes) = limits.memory_max {
        cgroupfs::write(leaf.join("memory.max"), &bytes.to_string())?;
        let swap = leaf.join("memory.swap.max");
        let value = match limits.memory_swap_max {
            SwapMax::None => "0".to_string(),
            SwapMax::Bytes(b) => b.to_string(),
            SwapMax::Unlimited => "max".to_string(),
        };
        if swap.exists() {
            cgroupfs::write(&swap, &value)?;
        } else if limits.memory_swap_max == SwapMax::None {
            // No swap accounting in this kernel: there is nothing to limit it with.
            crate::step!("{} does not exist (no swap accounting)", swap.display());
        } else {
            return Err(anyhow!(
                "{} does not exist (this kernel has no swap accounting), so --memory-swap-max \
                 cannot be applied",
                swap.display()
            ));
        }
    }
    if let Some(n) = limits.pids_max {
        cgroupfs::write(leaf.join("pids.max"), &n.to_string())?;
    }
    if let Some(q) = limits.cpu_quota_us {
        cgroupfs::write(leaf.join("cpu.max"), &format!("{q} {CPU_PERIOD_US}"))?;
    }
    crate::step!("limits on {}: {}", leaf.display(), describe(limits));
    Ok(())
}

/// Set every file `apply` may have written back to "no limit" (for `--limits
/// best-effort` after a write failed halfway). A file that is not there limits nothing.
pub fn unlimit(leaf: &Path, limits: &Limits) -> Result<()> {
    let mut files = Vec::new();
    if limits.memory_max.is_some() {
        files.extend([("memory.max", "max"), ("memory.swap.max", "max")]);
    }
    if limits.pids_max.is_some() {
        files.push(("pids.max", "max"));
    }
    if limits.cpu_quota_us.is_some() {
        files.push(("cpu.max", "max"));
    }
    for (file, value) in files {
        let path = leaf.join(file);
        if path.exists() {
            cgroupfs::write(&path, value)?;
        }
    }
    Ok(())
}

/// The limits in the leaf's own words: `memory.max=64M memory.swap.max=0 pids.max=20`.
pub fn describe(limits: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(b) = limits.memory_max {
        parts.push(format!("memory.max={}", human_size(b)));
        parts.push(format!(
            "memory.swap.max={}",
            match limits.memory_swap_max {
                SwapMax::None => "0".to_string(),
                SwapMax::Bytes(b) => human_size(b),
                SwapMax::Unlimited => "max".to_string(),
            }
        ));
    }
    if let Some(n) = limits.pids_max {
        parts.push(format!("pids.max={n}"));
    }
    if let Some(q) = limits.cpu_quota_us {
        parts.push(format!("cpu.max=\"{q} {CPU_PERIOD_US}\""));
    }
    parts.join(" ")
}

/// Bytes as the largest binary unit that divides them (`64M`, `1536K`, `1000`).
pub fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// What the limits did during the run, from the leaf's event counters (which the
/// usage report reads too). Zero where a counter is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitEvents {
    /// `oom_kill` of `memory.events`: processes the OOM killer killed in the run
    /// (hierarchical: nested runs' leaves included).
    pub oom_kills: u64,
    /// `max` of `pids.events`: forks refused because `pids.max` was reached.
    pub pids_refused: u64,
}

impl LimitEvents {
    pub fn read(leaf: &Path, limits: &Limits) -> LimitEvents {
        let counter = |file: &str, key: &str| {
            std::fs::read_to_string(leaf.join(file))
                .ok()
                .and_then(|t| cgroupfs::keyed_value(&t, key))
                .unwrap_or(0)
        };
        LimitEvents {
            oom_kills: limits
                .memory_max
                .map_or(0, |_| counter("memory.events", "oom_kill")),
            pids_refused: limits.pids_max.map_or(0, |_| counter("pids.events", "max")),
        }
    }
}

/// Refuse controllers bound to a cgroup v1 hierarchy (a hybrid or v1 host): cgroup v2
/// cannot offer them at all.
fn refuse_v1_bound(parent: &Path, needed: &[&str]) -> Result<(), Refusal> {
    let bound = cgroupfs::v1_bound_controllers(
        &std::fs::read_to_string("/proc/cgroups").unwrap_or_default(),
    );
    let v1: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|c| bound.iter().any(|b| b == c))
        .collect();
    if v1.is_empty() {
        return Ok(());
    }
    let offers = words(&parent.join("cgroup.controllers")).unwrap_or_default();
    Err(Refusal {
        flags: flags_of(&v1),
        what: format!(
            "the {} controller{} {} bound to a cgroup v1 hierarchy on this host (a hybrid \
             layout: the cgroup v2 tree, {}, offers {}), so cgroup v2 cannot apply {} to \
             the run's leaf",
            and_list(&v1),
            if v1.len() == 1 { "" } else { "s" },
            if v1.len() == 1 { "is" } else { "are" },
            parent.display(),
            if offers.is_empty() {
                "no controllers".to_string()
            } else {
                format!("only {}", offers.join(" "))
            },
            if v1.len() == 1 { "it" } else { "them" },
        ),
        fix: "run on a pure cgroup v2 host (boot with systemd.unified_cgroup_hierarchy=1)".into(),
    })
}

/// Refuse controllers P's own parent does not pass down to P.
fn refuse_not_offered(parent: &Path, needed: &[&str]) -> Result<(), Refusal> {
    let file = parent.join("cgroup.controllers");
    let available = words(&file).map_err(|e| Refusal {
        flags: flags_of(needed),
        what: format!("{e:#}"),
        fix: String::new(),
    })?;
    let absent: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|c| !available.iter().any(|a| a == c))
        .collect();
    if absent.is_empty() {
        return Ok(());
    }
    let grandparent = parent.parent().unwrap_or(parent);
    let plus: Vec<String> = absent.iter().map(|c| format!("+{c}")).collect();
    Err(Refusal {
        flags: flags_of(&absent),
        what: format!(
            "the {} controller{} not in {} (its parent cgroup, {}, does not pass {} down)",
            and_list(&absent),
            if absent.len() == 1 { " is" } else { "s are" },
            file.display(),
            grandparent.display(),
            if absent.len() == 1 { "it" } else { "them" },
        ),
        fix: format!(
            "enable {} there (echo '{}' > {}) or run cg-test where {} delegated",
            if absent.len() == 1 { "it" } else { "them" },
            plus.join(" "),
            grandparent.join("cgroup.subtree_control").display(),
            if absent.len() == 1 {
                "it is"
            } else {
                "they are"
            },
        ),
    })
}

/// The real root of a cgroup hierarchy (exempt from the no-internal-process rule) has
/// no `cgroup.type`; every other cgroup has one, a cgroup namespace's root included.
fn is_real_root(dir: &Path) -> bool {
    !dir.join("cgroup.type").exists()
}

/// Processes in `dir` other than cg-test itself (its watchdog is not forked yet).
fn other_processes(dir: &Path) -> Result<Vec<i32>> {
    let me = std::process::id() as i32;
    let text = cgroupfs::read(dir.join("cgroup.procs"))?;
    Ok(cgroupfs::parse_procs(&text)
        .into_iter()
        .filter(|&p| p != me)
        .collect())
}

/// The refusal when cg-test shares P with other processes.
fn not_alone(parent: &Path, missing: &[String], others: &[i32]) -> String {
    let shown: Vec<String> = others
        .iter()
        .take(3)
        .map(|&p| match platform::cmdline(p) {
            Some(c) => format!("pid {p}: {c}"),
            None => format!("pid {p}"),
        })
        .collect();
    format!(
        "cannot enable the {} controller{} for the run's leaf: {} holds {} other \
         process(es) besides cg-test ({}{}), and cgroup v2's no-internal-process rule lets \
         a cgroup pass controllers to its children only while it holds no processes; \
         cg-test moves only itself, never processes it did not start",
        and_list(missing),
        if missing.len() == 1 { "" } else { "s" },
        parent.display(),
        others.len(),
        shown.join("; "),
        if others.len() > shown.len() {
            "; ..."
        } else {
            ""
        },
    )
}

/// Move every process of `from` (cg-test and its watchdog) into `to`. Returns how many
/// moved; one that exited meanwhile is not an error.
fn move_all(from: &Path, to: &Path) -> Result<usize> {
    let procs = to.join("cgroup.procs");
    let pids = cgroupfs::parse_procs(&cgroupfs::read(from.join("cgroup.procs"))?);
    let mut moved = 0;
    for pid in pids {
        match std::fs::write(&procs, pid.to_string()) {
            Ok(()) => moved += 1,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => {
                return Err(anyhow!(
                    "moving pid {pid} back into {}: writing {}: {e}",
                    to.display(),
                    procs.display()
                ))
            }
        }
    }
    Ok(moved)
}

/// The whitespace-separated words of a cgroupfs file (`cgroup.controllers`).
fn words(file: &Path) -> Result<Vec<String>> {
    Ok(cgroupfs::read(file)?
        .split_whitespace()
        .map(String::from)
        .collect())
}

fn read_record(dir: &Path) -> io::Result<Vec<String>> {
    Ok(platform::get_xattr(dir, RECORD)?
        .map(|v| {
            String::from_utf8_lossy(&v)
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default())
}

fn write_record(dir: &Path, controllers: &[String]) -> io::Result<()> {
    if controllers.is_empty() {
        platform::remove_xattr(dir, RECORD)
    } else {
        let mut sorted = controllers.to_vec();
        sorted.sort();
        platform::set_xattr(dir, RECORD, sorted.join(" ").as_bytes())
    }
}

fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The mutex: an exclusive flock on `P/cgroup.subtree_control`, released when dropped
/// (closing the descriptor). Waiting is bounded and polls, so a signal to cg-test is
/// never held up by a blocked flock for long, and a cg-test stopped halfway through a
/// change cannot hang every other one.
struct SubtreeLock(#[allow(dead_code)] File);

impl SubtreeLock {
    fn acquire(dir: &Path) -> Result<SubtreeLock> {
        let path = dir.join("cgroup.subtree_control");
        let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let until = Instant::now() + LOCK_LIMIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match flock(&f, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => return Ok(SubtreeLock(f)),
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) && Instant::now() < until => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                    return Err(anyhow!(
                        "{} stayed locked by another cg-test for {LOCK_LIMIT:?} (one stopped \
                         while changing its controllers?)",
                        path.display()
                    ))
                }
                Err(e) => return Err(e).with_context(|| format!("flock on {}", path.display())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_and_flags() {
        let l = Limits {
            memory_max: Some(64 << 20),
            pids_max: Some(20),
            cpu_quota_us: Some(50_000),
            ..Limits::default()
        };
        assert_eq!(l.controllers(), ["cpu", "memory", "pids"]);
        assert_eq!(l.flags(), "--cpus, --memory-max, --pids-max");
        assert!(Limits::default().is_empty());
        assert_eq!(Limits::cpu_quota_of(0.5), 50_000);
        assert_eq!(Limits::cpu_quota_of(MIN_CPUS), 1_000);
        assert_eq!(
            describe(&l),
            "memory.max=64M memory.swap.max=0 pids.max=20 cpu.max=\"50000 100000\""
        );
    }

    #[test]
    fn sizes_read_back_in_binary_units() {
        assert_eq!(human_size(64 << 20), "64M");
        assert_eq!(human_size(3 << 30), "3G");
        assert_eq!(human_size(1536 << 10), "1536K");
        assert_eq!(human_size(1000), "1000");
        assert_eq!(human_size(0), "0");
    }

    #[test]
    fn refusals_say_it_two_ways() {
        let r = Refusal {
            flags: "--memory-max".into(),
            what: "the memory controller is bound to v1".into(),
            fix: "run on a pure cgroup v2 host".into(),
        };
        assert_eq!(
            r.strict_message(),
            "--memory-max: the memory controller is bound to v1; run on a pure cgroup v2 \
             host; or pass --limits best-effort to run without limits"
        );
        assert_eq!(and_list(&["memory"]), "memory");
        assert_eq!(and_list(&["memory", "pids"]), "memory and pids");
        assert_eq!(and_list(&["cpu", "memory", "pids"]), "cpu, memory and pids");
    }

    /// The v1 check reads the real /proc/cgroups, so it is exercised by the host's
    /// integration tests; the not-offered check only needs a directory.
    #[test]
    fn a_controller_the_parent_does_not_offer_is_refused() {
        let dir = std::env::temp_dir().join(format!("cg-test-unit-offer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.controllers"), "cpu io memory\n").unwrap();
        assert!(refuse_not_offered(&dir, &["cpu", "memory"]).is_ok());
        let r = refuse_not_offered(&dir, &["memory", "pids"]).unwrap_err();
        assert_eq!(r.flags, "--pids-max");
        assert!(r.what.contains("the pids controller is not in"), "{r:?}");
        assert!(r.fix.contains("echo '+pids' >"), "{r:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The record and what gets disabled, on a temp dir standing in for a cgroup (tmpfs
    /// and most disk filesystems keep user.* attributes; where the temp dir does not,
    /// there is nothing to test). The kernel's side is tested in the VM lane.
    #[test]
    fn the_record_keeps_what_could_not_be_disabled() {
        let dir = std::env::temp_dir().join(format!("cg-test-unit-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if write_record(&dir, &["pids".into(), "memory".into()]).is_err() {
            std::fs::remove_dir_all(&dir).unwrap();
            return;
        }
        assert_eq!(read_record(&dir).unwrap(), ["memory", "pids"]);
        assert!(has_record(&dir));
        // A regular file cannot take "-memory" the way subtree_control does, but it can
        // show that a controller which is not enabled any more is simply dropped.
        std::fs::write(dir.join("cgroup.subtree_control"), "cpu\n").unwrap();
        let (disabled, kept) = disable_recorded(&dir, &[]).unwrap();
        assert!(disabled.is_empty() && kept.is_empty());
        assert!(
            !has_record(&dir),
            "the record is removed once nothing is kept"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
