//! The test process's own cgroup v2 directory and the leaves cg-test makes in it.
//!
//! cg-test puts its leaf directly below its own cgroup, which is ours (the test starts
//! it without moving it). The directory is found with the crate's own
//! [`cg_test::cgroupfs`] (the cgroup2 mount from /proc/self/mountinfo and the `0::` line
//! of /proc/self/cgroup), so the tests look exactly where cg-test looks and nothing
//! here assumes /sys/fs/cgroup. A directory that cannot be read is an error, never an
//! empty list: "no leaf left" must not pass because nothing could be seen.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cg_test::cgroupfs;

fn mounts() -> Vec<cgroupfs::Cgroup2Mount> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_else(|e| panic!("reading /proc/self/mountinfo: {e}"));
    let mounts = cgroupfs::cgroup2_mounts(&mountinfo);
    assert!(
        !mounts.is_empty(),
        "no cgroup2 mount in /proc/self/mountinfo"
    );
    mounts
}

/// Where the cgroup2 filesystem that holds our cgroup is mounted.
pub fn mount_point() -> PathBuf {
    let own = own_dir();
    mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| own.starts_with(p))
        .max_by_key(|p| p.as_os_str().len())
        .unwrap_or_else(|| panic!("no cgroup2 mount contains our cgroup {}", own.display()))
}

/// A cgroup path as /proc/<pid>/cgroup names it (`0::/a/b`), as a directory.
pub fn dir_of(cgroup_path: &str) -> PathBuf {
    cgroupfs::cgroup_dir(&mounts(), cgroup_path)
        .unwrap_or_else(|e| panic!("the directory of cgroup {cgroup_path:?}: {e:#}"))
}

/// The `0::` path of a /proc/<pid>/cgroup text.
pub fn unified_path(proc_cgroup: &str) -> Option<String> {
    cgroupfs::unified_path(proc_cgroup)
}

/// The `0::` path of this test process.
pub fn own_path() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").expect("reading /proc/self/cgroup");
    unified_path(&text).expect("/proc/self/cgroup has no 0:: line")
}

/// The directory of this test process's cgroup v2 (where cg-test makes its leaves).
pub fn own_dir() -> PathBuf {
    cgroupfs::own_cgroup_dir().unwrap_or_else(|e| panic!("our own cgroup v2 directory: {e:#}"))
}

/// Entries of our cgroup whose name starts with `prefix`.
fn leaves_with_prefix(prefix: &str) -> io::Result<Vec<PathBuf>> {
    let dir = cgroupfs::own_cgroup_dir()
        .map_err(|e| io::Error::other(format!("our own cgroup v2 directory: {e:#}")))?;
    entries_with_prefix(&dir, prefix)
}

/// Entries of `dir` whose name starts with `prefix`; an unreadable directory is an
/// error that names it.
fn entries_with_prefix(dir: &Path, prefix: &str) -> io::Result<Vec<PathBuf>> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("reading {}: {e}", dir.display()));
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(named)? {
        let e = e.map_err(named)?;
        if e.file_name().to_string_lossy().starts_with(prefix) {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// The leaves of the cg-test process `pid`: `cg-test-<pid>-*` in our cgroup, or the
/// error that kept us from reading the directory (for callers that must not panic,
/// such as a guard dropping during a panic).
pub fn try_leaves_of(pid: i32) -> io::Result<Vec<PathBuf>> {
    leaves_with_prefix(&format!("cg-test-{pid}-"))
}

/// The leaves of the cg-test process `pid`: `cg-test-<pid>-*` in our cgroup. Fails the
/// test when the directory cannot be read.
pub fn leaves_of(pid: i32) -> Vec<PathBuf> {
    try_leaves_of(pid).unwrap_or_else(|e| panic!("{e}"))
}

/// Every cg-test leaf in our cgroup, whoever made it. Fails the test when the
/// directory cannot be read.
pub fn all_leaves() -> Vec<PathBuf> {
    leaves_with_prefix("cg-test-").unwrap_or_else(|e| panic!("{e}"))
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

pub fn member_pids(leaf: &Path) -> Vec<i32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_directory_is_an_error_not_an_empty_list() {
        let missing = std::env::temp_dir().join(format!("cgt_no_such_dir_{}", std::process::id()));
        let err = entries_with_prefix(&missing, "cg-test-").unwrap_err();
        assert!(
            err.to_string().contains(missing.to_str().unwrap()),
            "the error names the directory: {err}"
        );
    }

    #[test]
    fn own_dir_is_where_cg_test_makes_its_leaves() {
        assert_eq!(own_dir(), cgroupfs::own_cgroup_dir().unwrap());
        assert!(own_dir().starts_with(mount_point()));
        assert_eq!(dir_of(&own_path()), own_dir());
        entries_with_prefix(&own_dir(), "cg-test-").expect("our cgroup is readable");
    }
}
