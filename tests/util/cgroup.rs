//! The test process's own cgroup v2 directory and the leaves cg-test makes in it.
//!
//! cg-test puts its leaf directly below its own cgroup, which is ours (the test starts
//! it without moving it). The directory is found here without the crate's own mount
//! choice, so that a wrong choice in cg-test cannot agree with itself: this module
//! parses /proc/self/mountinfo on its own, and takes the first cgroup2 mount whose
//! directory for our `0::` path lists this very process in its `cgroup.procs` and is
//! writable (a read-only view cannot be cleaned up through). Tests that compare the
//! two compare the cgroup itself (device and inode), not the path. Nothing here
//! assumes /sys/fs/cgroup. A directory that cannot be read is an error, never an empty
//! list: "no leaf left" must not pass because nothing could be seen.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One cgroup2 line of a mountinfo text: (root, mount point), unescaped.
pub fn cgroup2_lines(mountinfo: &str) -> Vec<(String, PathBuf)> {
    let unescape = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let octal = b[i] == b'\\'
                && b.len() >= i + 4
                && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c));
            if octal {
                out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
                i += 4;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let f: Vec<&str> = left.split_whitespace().collect();
            Some((unescape(f.get(3)?), PathBuf::from(unescape(f.get(4)?))))
        })
        .collect()
}

/// The directory of `cgroup_path` under a mount showing `root` at `mount_point`, if
/// the mount shows it.
fn under(root: &str, mount_point: &Path, cgroup_path: &str) -> Option<PathBuf> {
    let root = root.trim_end_matches('/');
    let rest = cgroup_path.strip_prefix(root)?;
    if !(rest.is_empty() || rest.starts_with('/') || root.is_empty()) {
        return None;
    }
    let rest = rest.trim_start_matches('/');
    Some(if rest.is_empty() {
        mount_point.to_path_buf()
    } else {
        mount_point.join(rest)
    })
}

fn writable(dir: &Path) -> bool {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: access on a valid C string (EROFS for a read-only mount, even as root).
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// (mount point, our cgroup's directory there): the first cgroup2 mount whose
/// directory for our path lists our pid and is writable.
fn ours() -> (PathBuf, PathBuf) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_else(|e| panic!("reading /proc/self/mountinfo: {e}"));
    let path = own_path();
    let me = std::process::id().to_string();
    let lines = cgroup2_lines(&mountinfo);
    assert!(
        !lines.is_empty(),
        "no cgroup2 mount in /proc/self/mountinfo"
    );
    for (root, point) in &lines {
        let Some(dir) = under(root, point, &path) else {
            continue;
        };
        let lists_us = std::fs::read_to_string(dir.join("cgroup.procs"))
            .is_ok_and(|t| t.lines().any(|l| l.trim() == me));
        if lists_us && writable(&dir) {
            return (point.clone(), dir);
        }
    }
    panic!(
        "no writable cgroup2 mount in /proc/self/mountinfo lists this process in {path}: {lines:?}"
    )
}

/// Where the cgroup2 filesystem that holds our cgroup is mounted (see the module doc).
pub fn mount_point() -> PathBuf {
    ours().0
}

/// A cgroup path as /proc/<pid>/cgroup names it (`0::/a/b`), as a directory under
/// [`mount_point`].
pub fn dir_of(cgroup_path: &str) -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let point = mount_point();
    cgroup2_lines(&mountinfo)
        .into_iter()
        .filter(|(_, p)| *p == point)
        .find_map(|(root, p)| under(&root, &p, cgroup_path))
        .unwrap_or_else(|| panic!("cgroup {cgroup_path:?} is not under {}", point.display()))
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
    ours().1
}

/// The cgroup a directory is, whichever mount it is reached through.
pub fn identity(dir: &Path) -> (u64, u64) {
    let m = std::fs::metadata(dir).unwrap_or_else(|e| panic!("stat {}: {e}", dir.display()));
    (m.dev(), m.ino())
}

/// Entries of our cgroup whose name starts with `prefix`.
fn leaves_with_prefix(prefix: &str) -> io::Result<Vec<PathBuf>> {
    entries_with_prefix(&own_dir(), prefix)
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
        // The same cgroup as cg-test's own choice, compared as a cgroup (device and
        // inode), not as a path: the two may reach it through different mounts.
        let product = cg_test::cgroupfs::own_cgroup_dir().unwrap();
        assert_eq!(identity(&own_dir()), identity(&product));
        assert!(own_dir().starts_with(mount_point()));
        assert_eq!(dir_of(&own_path()), own_dir());
        entries_with_prefix(&own_dir(), "cg-test-").expect("our cgroup is readable");
    }

    #[test]
    fn mountinfo_lines_are_read_on_their_own() {
        let mi = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                  50 1 0:38 /ci\\040job /mnt/a\\040b ro - cgroup2 none rw\n\
                  35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let lines = cgroup2_lines(mi);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], ("/ci job".to_string(), PathBuf::from("/mnt/a b")));
        assert_eq!(
            under(&lines[1].0, &lines[1].1, "/ci job/x"),
            Some(PathBuf::from("/mnt/a b/x"))
        );
        assert_eq!(under(&lines[1].0, &lines[1].1, "/ci jobs"), None);
        assert_eq!(under("/", Path::new("/u"), "/"), Some(PathBuf::from("/u")));
    }
}
