//! The test process's own cgroup v2 directory and the leaves cg-test makes in it.
//!
//! cg-test puts its leaf directly below its own cgroup, which is ours (the test starts
//! it without moving it). The directory is found the way cg-test finds it, from the
//! cgroup2 mount in /proc/self/mountinfo and the `0::` line of /proc/self/cgroup, so
//! nothing here assumes /sys/fs/cgroup.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The cgroup2 mount point and the root it shows, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<(PathBuf, String)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mut f = left.split_whitespace();
        let root = f.nth(3)?.to_string();
        let mount_point = PathBuf::from(f.next()?);
        Some((mount_point, root))
    })
}

/// Where the cgroup2 filesystem is mounted.
pub fn mount_point() -> PathBuf {
    cgroup2_mount()
        .expect("no cgroup2 mount in /proc/self/mountinfo")
        .0
}

/// A cgroup path as /proc/<pid>/cgroup names it (`0::/a/b`), as a directory.
pub fn dir_of(cgroup_path: &str) -> PathBuf {
    let (mount_point, root) = cgroup2_mount().expect("no cgroup2 mount in /proc/self/mountinfo");
    let rel = cgroup_path
        .strip_prefix(root.trim_end_matches('/'))
        .unwrap_or(cgroup_path)
        .trim_start_matches('/');
    if rel.is_empty() {
        mount_point
    } else {
        mount_point.join(rel)
    }
}

/// The `0::` path of a /proc/<pid>/cgroup text.
pub fn unified_path(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_string())
}

/// The `0::` path of this test process.
pub fn own_path() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").expect("reading /proc/self/cgroup");
    unified_path(&text).expect("/proc/self/cgroup has no 0:: line")
}

/// The directory of this test process's cgroup v2 (where cg-test makes its leaves).
pub fn own_dir() -> PathBuf {
    dir_of(&own_path())
}

/// The leaves of the cg-test process `pid`: `cg-test-<pid>-*` in our cgroup.
pub fn leaves_of(pid: i32) -> Vec<PathBuf> {
    let prefix = format!("cg-test-{pid}-");
    let Ok(dir) = std::fs::read_dir(own_dir()) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Every cg-test leaf in our cgroup, whoever made it.
pub fn all_leaves() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(own_dir()) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("cg-test-"))
        .map(|e| e.path())
        .collect()
}

fn populated(leaf: &Path) -> bool {
    std::fs::read_to_string(leaf.join("cgroup.events"))
        .map(|t| t.lines().any(|l| l == "populated 1"))
        .unwrap_or(false)
}

/// Kill everything in a leaf our test's cg-test made and remove it with whatever a
/// nested run left below it. Only for leaves attributed to a cg-test pid the test
/// started (see [`leaves_of`]).
pub fn kill_and_remove(leaf: &Path) {
    if leaf.join("cgroup.kill").exists() {
        let _ = std::fs::write(leaf.join("cgroup.kill"), "1");
    } else {
        let _ = std::fs::write(leaf.join("cgroup.freeze"), "1");
        for pid in member_pids(leaf) {
            super::procs::kill(pid, libc::SIGKILL);
        }
        let _ = std::fs::write(leaf.join("cgroup.freeze"), "0");
    }
    let until = Instant::now() + Duration::from_secs(5);
    while populated(leaf) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut dirs = subdirs(leaf);
    dirs.reverse();
    for d in dirs {
        let until = Instant::now() + Duration::from_secs(2);
        while std::fs::remove_dir(&d).is_err() && d.exists() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn member_pids(leaf: &Path) -> Vec<i32> {
    subdirs(leaf)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// A directory and every directory below it, parents first.
fn subdirs(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = std::fs::read_dir(&out[i]) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}
