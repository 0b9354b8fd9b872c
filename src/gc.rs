//! `cg-test gc [--dry-run] [PATH]`: collect the leaves of runs whose cg-test is gone.
//!
//! For what neither cg-test's own teardown nor its watchdog can catch: a machine that
//! lost power mid-run keeps no cgroups, but a cg-test SIGKILLed together with its
//! watchdog (a kill of everything cg-test started for itself), or a cg-test from before
//! the watchdog existed, leaves a `cg-test-<pid>-<start>-<nonce>` leaf behind, possibly
//! with processes in it. gc walks the cgroup2 hierarchy (or PATH), and for each such
//! leaf whose owner is gone — no process with that pid, or one with another start
//! time; never judged by pid alone — freezes it, kills what is inside, and removes it
//! with whatever a nested run made below it, printing one line per process and one per
//! leaf. A leaf whose owner is alive is never touched (gc still looks inside it for
//! stale leaves of nested runs).
//!
//! The same goes for a `cg-test-<id>-supervisor` leaf (where a limited run's cg-test
//! moved itself), and for controllers such a run enabled in its cgroup: a directory
//! whose `user.cg-test.controllers` record lists controllers, with no live limited run
//! holding it, gets them disabled again (see [`crate::isolation::limits`]).
//!
//! Every ordinary cg-test start does the same for the leaves directly beside its own
//! (one directory read when there are none): see
//! [`crate::isolation::cgroup::collect_stale_beside`].

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use crate::cgroupfs;
use crate::cli::GcArgs;
use crate::exit::ExitStatus;
use crate::isolation::cgroup::{
    collect_leaf, leaf_owner, owner_alive, report_collected, report_settled,
};
use crate::isolation::{limits, Options};

/// Run `cg-test gc`. `Err` is bad input (exit 125); a leaf that could not be collected
/// is reported and makes the exit status 125 too.
pub fn gc(args: &GcArgs) -> Result<ExitStatus> {
    let mounts = cgroup2_mount_points();
    let roots = match &args.path {
        Some(path) => vec![within_cgroup2(path, &mounts)?],
        None if mounts.is_empty() => {
            crate::report::line(format_args!(
                "gc: no cgroup2 filesystem is mounted (none in /proc/self/mountinfo); nothing to collect"
            ));
            return Ok(ExitStatus::Exited(0));
        }
        None => mounts,
    };
    let opts = Options::default();
    let mut collected = 0;
    let mut failed = 0;
    for root in &roots {
        let found = stale_leaves(root);
        for (path, id) in found.leaves {
            match collect_leaf(&path, &opts, args.dry_run) {
                Ok(c) => {
                    report_collected("gc: ", &path, &id, &c);
                    collected += 1;
                }
                Err(e) => {
                    crate::report::line(format_args!("gc: {e:#}"));
                    failed += 1;
                }
            }
        }
        // After the leaves: a stale leaf could hold a nested run's subtree_control,
        // which keeps a controller from being disabled in its parent.
        for dir in found.records {
            match limits::settle(&dir, args.dry_run) {
                Ok(d) if d.is_empty() => {}
                Ok(d) => {
                    report_settled("gc: ", &dir, &d, args.dry_run);
                    collected += 1;
                }
                Err(e) => {
                    crate::report::line(format_args!("gc: {e:#}"));
                    failed += 1;
                }
            }
        }
    }
    if collected == 0 && failed == 0 {
        let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        crate::report::line(format_args!(
            "gc: no stale cg-test leaves under {}; nothing to collect",
            shown.join(", ")
        ));
    }
    Ok(if failed > 0 {
        ExitStatus::OwnError
    } else {
        ExitStatus::Exited(0)
    })
}

/// Every cgroup2 mount point, each filesystem once.
fn cgroup2_mount_points() -> Vec<PathBuf> {
    let Ok(mountinfo) = cgroupfs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut points: Vec<PathBuf> = Vec::new();
    let mut roots_seen: Vec<String> = Vec::new();
    for m in cgroupfs::cgroup2_mounts(&mountinfo) {
        // A second mount of the same part of the hierarchy (a bind mount) shows the
        // same leaves again.
        if !roots_seen.contains(&m.root) {
            roots_seen.push(m.root);
            points.push(m.mount_point);
        }
    }
    points
}

/// PATH, resolved, if it is a directory on one of the cgroup2 mounts.
fn within_cgroup2(path: &Path, mounts: &[PathBuf]) -> Result<PathBuf> {
    let not_cgroup2 = || {
        let shown: Vec<String> = mounts.iter().map(|m| m.display().to_string()).collect();
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
    if !real.is_dir() || !mounts.iter().any(|m| real.starts_with(m)) {
        return Err(not_cgroup2());
    }
    Ok(real)
}

/// What gc found below one root.
struct Found {
    /// Leaves (a run's, or cg-test's own) whose owner is gone.
    leaves: Vec<(PathBuf, crate::run_id::RunId)>,
    /// Directories whose record lists controllers cg-test enabled.
    records: Vec<PathBuf>,
}

/// Leaves below `root` (or `root` itself) whose owner is gone, and directories with a
/// record of enabled controllers. Live leaves are searched for stale nested leaves;
/// stale ones are collected whole, so not entered.
fn stale_leaves(root: &Path) -> Found {
    let mut found = Found {
        leaves: Vec::new(),
        records: Vec::new(),
    };
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        if let Some(id) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(leaf_owner)
        {
            if !owner_alive(&id) {
                found.leaves.push((dir, id));
                continue;
            }
        }
        if limits::has_record(&dir) {
            found.records.push(dir.clone());
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(e.path());
            }
        }
    }
    // A run's leaf before its cg-test's own (`…-supervisor` sorts after it); deeper
    // records before the records of their ancestors.
    found.leaves.sort_by(|a, b| a.0.cmp(&b.0));
    found
        .records
        .sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    found
}
