//! cgroup v2 filesystem access: finding the cgroup2 mount and our own cgroup, reading
//! `cgroup.events`, and file reads and writes whose every error names the file.
//!
//! Nothing here assumes /sys/fs/cgroup: the mount comes from /proc/self/mountinfo (pure
//! v2 hosts mount it at /sys/fs/cgroup, hybrid ones at /sys/fs/cgroup/unified,
//! containers wherever they like), and the parsers take text so they are unit-tested
//! on strings and temp dirs. Only the callers decide to read the real /proc.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

/// A mounted cgroup2 filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup2Mount {
    /// Where it is mounted, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy the mount shows at its mount point (`/` unless
    /// it is a bind mount of a subtree).
    pub root: String,
}

/// Every cgroup2 mount in a mountinfo text, in order.
pub fn cgroup2_mounts(mountinfo: &str) -> Vec<Cgroup2Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // Fields: id parent major:minor root mount_point options [optional...] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            if fstype != "cgroup2" {
                return None;
            }
            let mut fields = left.split_whitespace();
            let root = unescape_mountinfo(fields.nth(3)?);
            let mount_point = PathBuf::from(unescape_mountinfo(fields.next()?));
            Some(Cgroup2Mount { mount_point, root })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path of a process from its /proc/<pid>/cgroup text: the `0::` line.
pub fn unified_path(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_string())
}

/// The directory of cgroup `path` (as /proc/self/cgroup names it) under one of the
/// mounts: the mount whose root is the longest prefix of the path.
pub fn cgroup_dir(mounts: &[Cgroup2Mount], path: &str) -> Result<PathBuf> {
    if path.split('/').any(|c| c == "..") {
        // In a cgroup namespace, a cgroup outside the namespace root shows as /../x.
        return Err(anyhow!(
            "our cgroup {path:?} is outside this cgroup namespace's root (from \
             /proc/self/cgroup); run cg-test inside the namespace's cgroups or use \
             --isolation pgroup"
        ));
    }
    let best = mounts
        .iter()
        .filter(|m| path_within(path, &m.root))
        .max_by_key(|m| m.root.len())
        .ok_or_else(|| {
            anyhow!(
                "no cgroup2 mount in /proc/self/mountinfo contains our cgroup {path:?}; \
                 mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup) or use --isolation pgroup"
            )
        })?;
    let rel = path[best.root.len()..].trim_start_matches('/');
    Ok(if rel.is_empty() {
        best.mount_point.clone()
    } else {
        best.mount_point.join(rel)
    })
}

fn path_within(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    root.is_empty() || path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

/// The directory of the cgroup this process is in, from the real /proc.
pub fn own_cgroup_dir() -> Result<PathBuf> {
    let mountinfo = read("/proc/self/mountinfo")?;
    let mounts = cgroup2_mounts(&mountinfo);
    if mounts.is_empty() {
        return Err(anyhow!(
            "no cgroup2 filesystem is mounted (none in /proc/self/mountinfo); \
             mount one or use --isolation pgroup"
        ));
    }
    let proc_cgroup = read("/proc/self/cgroup")?;
    let path = unified_path(&proc_cgroup).ok_or_else(|| {
        anyhow!("/proc/self/cgroup has no cgroup v2 (`0::`) line; use --isolation pgroup")
    })?;
    cgroup_dir(&mounts, &path)
}

/// The two keys of `cgroup.events` cg-test acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// Some process is in this cgroup or a descendant.
    pub populated: bool,
    /// The cgroup and all its descendants are frozen.
    pub frozen: bool,
}

/// Parse the text of `cgroup.events`.
pub fn parse_events(text: &str) -> Events {
    let mut ev = Events::default();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("populated", v)) => ev.populated = v.trim() == "1",
            Some(("frozen", v)) => ev.frozen = v.trim() == "1",
            _ => {}
        }
    }
    ev
}

/// Re-read an open `cgroup.events` from its start. Reading also re-arms POLLPRI on
/// that descriptor (kernfs reports an event until the file is read again).
///
/// One `pread` at offset 0 into a stack buffer (the file is two short lines): the
/// waits of every teardown re-read it, and a seek plus `read_to_string` took five
/// system calls where this takes one.
pub fn reread_events(file: &mut std::fs::File, path: &Path) -> Result<Events> {
    Ok(parse_events(&reread_events_text(file, path)?))
}

/// The text of an open `cgroup.events`, read from its start (see [`reread_events`]).
pub fn reread_events_text(file: &mut std::fs::File, path: &Path) -> Result<String> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 256];
    let mut len = 0;
    while len < buf.len() {
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// Read a file to a string; the error names the file.
pub fn read(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    read_text(path).with_context(|| format!("reading {}", path.display()))
}

/// Read a /proc or cgroupfs file whole. These report a size of 0, so
/// `std::fs::read_to_string` starts with a 32-byte probe and doubles from there:
/// eight reads for /proc/self/mountinfo on a hybrid host. With room for 16 KiB up
/// front, such a file takes one read and the end-of-file read.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// Write a value to a cgroupfs file in one write; the error names the file.
pub fn write(path: impl AsRef<Path>, value: &str) -> Result<()> {
    let path = path.as_ref();
    std::fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

/// Pids listed in a `cgroup.procs` text.
pub fn parse_procs(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// Controllers bound to a v1 hierarchy, by their v2 names, from /proc/cgroups
/// (`subsys hierarchy num_cgroups enabled`; hierarchy 0 means v2 or unbound). v1
/// controllers without a v2 counterpart (devices, freezer, net_cls, ...) are left out.
pub fn v1_bound_controllers(proc_cgroups: &str) -> Vec<String> {
    let mut out: Vec<String> = proc_cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (name, hierarchy, enabled) = (f.first()?, f.get(1)?, f.get(3)?);
            if *hierarchy == "0" || *enabled != "1" {
                return None;
            }
            let v2 = match *name {
                "cpu" | "cpuacct" => "cpu",
                "blkio" => "io",
                "cpuset" | "memory" | "pids" | "hugetlb" | "rdma" | "misc" => name,
                _ => return None,
            };
            Some(v2.to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The value of `key` in a flat keyed cgroup file (`memory.events`: `oom_kill 1`,
/// `pids.events`: `max 3`).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PURE: &str = "\
25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn finds_the_cgroup2_mount_on_hybrid_and_pure_hosts() {
        let m = cgroup2_mounts(HYBRID);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(
            cgroup_dir(&m, "/").unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        let m = cgroup2_mounts(PURE);
        assert_eq!(
            cgroup_dir(&m, "/user.slice/session-1.scope").unwrap(),
            PathBuf::from("/sys/fs/cgroup/user.slice/session-1.scope")
        );
    }

    #[test]
    fn bind_mounted_subtree_and_escapes() {
        let mi = "50 1 0:22 /ci/job\\0401 /mnt/cg\\040x rw - cgroup2 cgroup2 rw\n";
        let m = cgroup2_mounts(mi);
        assert_eq!(m[0].root, "/ci/job 1");
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/cg x"));
        assert_eq!(
            cgroup_dir(&m, "/ci/job 1/a").unwrap(),
            PathBuf::from("/mnt/cg x/a")
        );
        assert!(
            cgroup_dir(&m, "/ci/job 10").is_err(),
            "a sibling with a longer name is not inside"
        );
        assert!(cgroup_dir(&m, "/elsewhere").is_err());
        assert!(cgroup_dir(&m, "/../outside").is_err());
    }

    #[test]
    fn no_cgroup2_mount() {
        assert!(cgroup2_mounts("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n").is_empty());
    }

    #[test]
    fn unified_line() {
        assert_eq!(
            unified_path("4:memory:/x\n0::/a/b\n").as_deref(),
            Some("/a/b")
        );
        assert_eq!(unified_path("1:name=systemd:/\n"), None);
    }

    #[test]
    fn events_and_procs() {
        let e = parse_events("populated 1\nfrozen 0\n");
        assert!(e.populated && !e.frozen);
        let e = parse_events("populated 0\nfrozen 1\n");
        assert!(!e.populated && e.frozen);
        assert_eq!(parse_procs("12\n345\n"), vec![12, 345]);
        assert!(parse_procs("").is_empty());
    }

    #[test]
    fn keyed_values() {
        let t = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(t, "oom_kill"), Some(1));
        assert_eq!(keyed_value(t, "max"), Some(12));
        assert_eq!(keyed_value(t, "oom"), Some(1));
        assert_eq!(keyed_value(t, "nope"), None);
        assert_eq!(keyed_value("max max\n", "max"), None);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("cg-test-unit-{}", std::process::id()));
        let err = read(dir.join("cgroup.events")).unwrap_err();
        assert!(format!("{err:#}").contains("cgroup.events"));
        let err = write(dir.join("cgroup.kill"), "1").unwrap_err();
        assert!(format!("{err:#}").contains("cgroup.kill"));
    }
}
