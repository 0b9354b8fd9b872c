//! `cg-test gc [--dry-run] [PATH]`: collect the leaves of runs whose cg-test is gone.
//!
//! For what neither cg-test's own teardown nor its watchdog can catch: a machine that
//! lost power mid-run keeps no cgroups, but a cg-test SIGKILLed together with its
//! watchdog (a kill of everything cg-test started for itself), or a cg-test from before
//! the watchdog existed, leaves a `cg-test-<pid>-<start>-<nonce>` leaf behind, possibly
//! with processes in it. gc walks the cgroup2 hierarchy (or PATH, a directory of any
//! cgroup2 mount), and for each such leaf whose owner is gone freezes it, kills what
//! is inside, and removes it with whatever a nested run made below it, printing one
//! line per process and one per leaf. A leaf whose owner is alive is never touched (gc
//! still looks inside it for stale leaves of nested runs).
//!
//! "Gone" needs two things ([`crate::isolation::cgroup::judge`]): no process with that
//! pid and start time as gc sees it (never judged by pid alone), and the leaf's
//! liveness lock free. cg-test holds that `flock` for the whole run, and its watchdog
//! until its teardown is done; the lock is what still tells from another pid
//! namespace (where the owner's pid is not visible) or time namespace (where start
//! times read differently). A leaf gc cannot judge (the lock cannot be tried) is named
//! in one line and left alone.
//!
//! The same goes for a `cg-test-<id>-supervisor` leaf (where a limited run's cg-test
//! moved itself), and for controllers such a run enabled in its cgroup: a directory
//! whose `user.cg-test.controllers` record lists controllers, with no live limited run
//! holding it, gets them disabled again (see [`crate::isolation::limits`]).
//!
//! Every ordinary cg-test start does the same for the leaves directly beside its own
//! (one directory read when there are none): see
//! [`crate::isolation::cgroup::collect_stale_beside`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use crate::cgroupfs::{self, DirFd};
use crate::cli::GcArgs;
use crate::exit::ExitStatus;
use crate::isolation::cgroup::{
    collect_dir, judge, leaf_owner, owner_alive, report_collected, report_settled, Verdict,
};
use crate::isolation::{limits, Options};
use crate::run_id::RunId;

/// Run `cg-test gc`. `Err` is bad input (exit 125); a leaf that could not be collected
/// is reported and makes the exit status 125 too. A leaf gc cannot judge is reported in
/// one line and left alone.
pub fn gc(args: &GcArgs) -> Result<ExitStatus> {
    let mounts = cgroupfs::read("/proc/self/mountinfo")
        .map(|m| cgroupfs::cgroup2_mounts(&m))
        .unwrap_or_default();
    let roots = match &args.path {
        Some(path) => vec![within_cgroup2(path, &mounts)?],
        None if mounts.is_empty() => {
            crate::report::line(format_args!(
                "gc: no cgroup2 filesystem is mounted (none in /proc/self/mountinfo); nothing to collect"
            ));
            return Ok(ExitStatus::Exited(0));
        }
        None => cgroupfs::hierarchy_roots(&mounts, cgroupfs::check_on_disk),
    };
    let opts = Options::default();
    let mut tally = Tally::default();
    for root in &roots {
        let records = walk(root, &opts, args.dry_run, &mut tally);
        // After the leaves: a stale leaf could hold a nested run's subtree_control,
        // which keeps a controller from being disabled in its parent.
        for dir in records {
            match limits::settle(&dir, args.dry_run) {
                Ok(d) if d.is_empty() => {}
                Ok(d) => {
                    report_settled("gc: ", &dir, &d, args.dry_run);
                    tally.collected += 1;
                }
                Err(e) => {
                    crate::report::line(format_args!("gc: {e:#}"));
                    tally.failed += 1;
                }
            }
        }
    }
    if tally.collected == 0 && tally.failed == 0 && tally.unknown == 0 {
        let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        crate::report::line(format_args!(
            "gc: no stale cg-test leaves under {}; nothing to collect",
            shown.join(", ")
        ));
    }
    Ok(if tally.failed > 0 {
        ExitStatus::OwnError
    } else {
        ExitStatus::Exited(0)
    })
}

#[derive(Default)]
struct Tally {
    collected: usize,
    failed: usize,
    unknown: usize,
}

/// PATH, resolved, if it is a directory on a cgroup2 filesystem, through whichever
/// mount (a bind mount, a second mount of the hierarchy): judged by the filesystem the
/// path is on, not by one mount's prefix.
fn within_cgroup2(path: &Path, mounts: &[cgroupfs::Cgroup2Mount]) -> Result<PathBuf> {
    let not_cgroup2 = || {
        let shown: Vec<String> = mounts
            .iter()
            .map(|m| m.mount_point.display().to_string())
            .collect();
        anyhow!(
            "gc: {} is not a directory of a cgroup2 filesystem ({}); give a directory \
             under a cgroup2 mount, or no PATH to search them all",
            path.display(),
            if shown.is_empty() {
                "none is mounted".to_string()
            } else {
                format!("mounted at {}", shown.join(", "))
            }
        )
    };
    let real = path.canonicalize().map_err(|_| not_cgroup2())?;
    if !real.is_dir() || !cgroupfs::is_cgroup2(&real) {
        return Err(not_cgroup2());
    }
    Ok(real)
}

/// Collect the stale leaves below `root` (or `root` itself), and return the
/// directories with a record of enabled controllers. Live leaves are searched for
/// stale nested leaves; stale ones are collected whole, so not entered. Each
/// directory's leaves are judged together ([`judge`]), a run's leaf before its
/// cg-test's own (`…-supervisor` sorts after it).
fn walk(root: &Path, opts: &Options, dry_run: bool, tally: &mut Tally) -> Vec<PathBuf> {
    let mut records = Vec::new();
    // PATH may name a leaf itself.
    if let (Some(parent), Some(id)) = (
        root.parent(),
        root.file_name()
            .and_then(|n| n.to_str())
            .and_then(leaf_owner),
    ) {
        if let Ok(parent) = DirFd::open(parent) {
            let name = root.file_name().unwrap_or_default().to_os_string();
            let mut live = false;
            settle_verdicts(&parent, vec![(name, id)], opts, dry_run, tally, &mut |_| {
                live = true
            });
            if !live {
                return records;
            }
        }
    }
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        if limits::has_record(&dir) {
            records.push(dir.clone());
        }
        let Ok(fd) = DirFd::open(&dir) else {
            continue;
        };
        let Ok(mut names) = fd.subdirs() else {
            continue;
        };
        names.sort();
        let mut suspects = Vec::new();
        for name in names {
            match name.to_str().and_then(leaf_owner) {
                Some(id) if !owner_alive(&id) => suspects.push((name, id)),
                _ => dirs.push(dir.join(&name)),
            }
        }
        settle_verdicts(&fd, suspects, opts, dry_run, tally, &mut |name| {
            dirs.push(dir.join(name))
        });
    }
    // Deeper records before the records of their ancestors.
    records.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    records
}

/// Judge `suspects` of `parent` and act on each verdict: collect the stale, report
/// what cannot be judged, and hand the live to `live` (to be searched for nested
/// leaves).
fn settle_verdicts(
    parent: &DirFd,
    suspects: Vec<(OsString, RunId)>,
    opts: &Options,
    dry_run: bool,
    tally: &mut Tally,
    live: &mut dyn FnMut(&OsString),
) {
    for (name, id, verdict) in judge(parent, suspects) {
        let path = parent.path().join(&name);
        match verdict {
            Verdict::Live => live(&name),
            Verdict::Unknown(why) => {
                crate::report::line(format_args!("gc: {why}"));
                tally.unknown += 1;
            }
            Verdict::Stale(dir) => match collect_dir(dir, opts, dry_run) {
                Ok(c) => {
                    report_collected("gc: ", &path, &id, &c);
                    tally.collected += 1;
                }
                Err(e) => {
                    crate::report::line(format_args!("gc: {e:#}"));
                    tally.failed += 1;
                }
            },
        }
    }
}
