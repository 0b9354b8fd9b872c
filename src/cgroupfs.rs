//! cgroup v2 filesystem access: finding the cgroup2 mount and our own cgroup, reading
//! `cgroup.events`, and file reads and writes whose every error names the file.
//!
//! Nothing here assumes /sys/fs/cgroup: the mount comes from /proc/self/mountinfo (pure
//! v2 hosts mount it at /sys/fs/cgroup, hybrid ones at /sys/fs/cgroup/unified,
//! containers wherever they like), and the parsers take text so they are unit-tested
//! on strings and temp dirs. Only the callers decide to read the real /proc.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
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
    /// The filesystem's device (`major:minor`), what `stat` gives every file on it.
    pub dev: (u32, u32),
    /// Mounted read-only: `ro` in the mount's own options or the superblock's.
    pub read_only: bool,
}

/// Every cgroup2 mount in a mountinfo text, in order.
pub fn cgroup2_mounts(mountinfo: &str) -> Vec<Cgroup2Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // Fields: id parent major:minor root mount_point options [optional...] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let mut r = right.split_whitespace();
            if r.next()? != "cgroup2" {
                return None;
            }
            let super_opts = r.nth(1).unwrap_or("");
            let mut fields = left.split_whitespace();
            let (major, minor) = fields.nth(2)?.split_once(':')?;
            let dev = (major.parse().ok()?, minor.parse().ok()?);
            let root = unescape_mountinfo(fields.next()?);
            let mount_point = PathBuf::from(unescape_mountinfo(fields.next()?));
            let mount_opts = fields.next().unwrap_or("");
            let ro = |opts: &str| opts.split(',').any(|o| o == "ro");
            Some(Cgroup2Mount {
                mount_point,
                root,
                dev,
                read_only: ro(mount_opts) || ro(super_opts),
            })
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

impl Cgroup2Mount {
    /// Whether cgroup `path` (as /proc/self/cgroup names it) is shown by this mount.
    pub fn holds(&self, path: &str) -> bool {
        path_within(path, &self.root)
    }

    /// The directory of cgroup `path` under this mount (which must hold it).
    pub fn dir_of(&self, path: &str) -> PathBuf {
        dir_under(self, path)
    }
}

/// The directory of cgroup `path` under mount `m` (whose root must contain it).
fn dir_under(m: &Cgroup2Mount, path: &str) -> PathBuf {
    let rel = path[m.root.trim_end_matches('/').len()..].trim_start_matches('/');
    if rel.is_empty() {
        m.mount_point.clone()
    } else {
        m.mount_point.join(rel)
    }
}

/// The mount cg-test reaches cgroup `path` (as /proc/self/cgroup names it) through,
/// and the cgroup's directory there. One choice, made the same way everywhere (the
/// run, its watchdog through the run, gc, doctor, the start-up sweep):
///
/// - only mounts whose root contains the path, and none mounted read-only (a
///   read-only bind of the hierarchy is common, and refuses mkdir with EROFS);
/// - of those, the one showing the deepest root (a bind of our own subtree shows
///   nothing we may not touch), then the first in mountinfo (the original mount comes
///   before bind mounts and a container's extra views, which may be unmounted
///   under us);
/// - and `usable` must accept the directory as it is now: [`own_cgroup`] checks it
///   is on that filesystem and not read-only, which a path covered by a later mount
///   on top of it fails.
///
/// The error says why no mount would do: none holds the path, or each that does is
/// read-only or refused (with `usable`'s reason).
pub fn choose_mount<'a>(
    mounts: &'a [Cgroup2Mount],
    path: &str,
    usable: impl Fn(&Cgroup2Mount, &Path) -> Result<(), String>,
) -> Result<(&'a Cgroup2Mount, PathBuf)> {
    if path.split('/').any(|c| c == "..") {
        // In a cgroup namespace, a cgroup outside the namespace root shows as /../x.
        return Err(anyhow!(
            "our cgroup {path:?} is outside this cgroup namespace's root (from \
             /proc/self/cgroup); run cg-test inside the namespace's cgroups or use \
             --isolation pgroup"
        ));
    }
    let mut holding: Vec<&Cgroup2Mount> = mounts
        .iter()
        .filter(|m| path_within(path, &m.root))
        .collect();
    if holding.is_empty() {
        return Err(anyhow!(
            "no cgroup2 mount in /proc/self/mountinfo contains our cgroup {path:?}; \
             mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup) or use --isolation pgroup"
        ));
    }
    // Stable: equal roots keep their mountinfo order.
    holding.sort_by_key(|m| std::cmp::Reverse(m.root.trim_end_matches('/').len()));
    let mut refused = Vec::new();
    for m in holding {
        let dir = dir_under(m, path);
        if m.read_only {
            refused.push(format!(
                "{} is mounted read-only (mkdir there fails with EROFS, Read-only file \
                 system, as in an unprivileged container)",
                m.mount_point.display()
            ));
            continue;
        }
        match usable(m, &dir) {
            Ok(()) => return Ok((m, dir)),
            Err(why) => refused.push(why),
        }
    }
    Err(anyhow!(
        "no cgroup2 mount in /proc/self/mountinfo that holds our cgroup {path:?} can be \
         used: {}; mount cgroup2 read-write or use --isolation pgroup",
        refused.join("; ")
    ))
}

/// The directory of cgroup `path` as [`choose_mount`] chooses it, judged by
/// mountinfo alone (for parsers' tests and for reports; a run uses [`own_cgroup`]).
pub fn cgroup_dir(mounts: &[Cgroup2Mount], path: &str) -> Result<PathBuf> {
    choose_mount(mounts, path, |_, _| Ok(())).map(|(_, dir)| dir)
}

fn path_within(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    root.is_empty() || path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

/// `(major, minor)` of a `st_dev` (glibc's gnu_dev_major/minor encoding).
pub fn dev_parts(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// Whether `dir`, as the path resolves now, is on mount `m`'s filesystem and
/// writable: a later mount on top of `m` (another filesystem, or a read-only view
/// of this one) fails this although mountinfo lists `m`.
pub fn check_on_disk(m: &Cgroup2Mount, dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if dev_parts(meta.dev()) != m.dev {
        return Err(format!(
            "{} is covered by another mount",
            m.mount_point.display()
        ));
    }
    match statvfs_flags(dir) {
        Ok(flags) if flags & libc::ST_RDONLY != 0 => Err(format!(
            "{} is read-only where {} resolves",
            m.mount_point.display(),
            dir.display()
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("statvfs {}: {e}", dir.display())),
    }
}

fn statvfs_flags(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: statvfs into a zeroed struct we own, on a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_flag as u64)
}

/// Whether `path` is on a cgroup2 filesystem (`statfs` says CGROUP2_SUPER_MAGIC),
/// whichever mount it is reached through.
pub fn is_cgroup2(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs into a zeroed struct we own, on a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) }) == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC
}

/// The cgroup this process is in, and how cg-test reaches it.
#[derive(Clone, Debug)]
pub struct OwnCgroup {
    /// As /proc/self/cgroup names it.
    pub path: String,
    /// Its directory under [`OwnCgroup::mount`].
    pub dir: PathBuf,
    /// The mount [`choose_mount`] chose.
    pub mount: Cgroup2Mount,
    /// Every cgroup2 mount in /proc/self/mountinfo.
    pub mounts: Vec<Cgroup2Mount>,
}

/// The cgroup this process is in, from the real /proc, through the mount
/// [`choose_mount`] chooses (checked on disk with [`check_on_disk`]).
pub fn own_cgroup() -> Result<OwnCgroup> {
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
    let (mount, dir) = choose_mount(&mounts, &path, check_on_disk)?;
    let mount = mount.clone();
    Ok(OwnCgroup {
        path,
        dir,
        mount,
        mounts,
    })
}

/// The directory of the cgroup this process is in (see [`own_cgroup`]).
pub fn own_cgroup_dir() -> Result<PathBuf> {
    own_cgroup().map(|c| c.dir)
}

/// Where `cg-test gc` looks when given no PATH: each part of each cgroup2
/// filesystem once, through a writable mount where there is one. A mount whose root
/// lies within the root of one already chosen on the same filesystem shows nothing
/// new (a bind mount, a second mount of the hierarchy). `usable` as for
/// [`choose_mount`]; mounts it refuses are left out unless nothing else shows their
/// part (then gc reports what it cannot remove there rather than skip it silently).
pub fn hierarchy_roots(
    mounts: &[Cgroup2Mount],
    usable: impl Fn(&Cgroup2Mount, &Path) -> Result<(), String>,
) -> Vec<PathBuf> {
    let mut order: Vec<(bool, &Cgroup2Mount)> = mounts
        .iter()
        .map(|m| (!m.read_only && usable(m, &m.mount_point).is_ok(), m))
        .collect();
    // Widest roots first, writable before not; otherwise mountinfo order.
    order.sort_by_key(|(ok, m)| (m.root.trim_end_matches('/').len(), !*ok));
    let mut chosen: Vec<&Cgroup2Mount> = Vec::new();
    for (_, m) in order {
        let shown = chosen
            .iter()
            .any(|c| c.dev == m.dev && path_within(&m.root, &c.root));
        if !shown {
            chosen.push(m);
        }
    }
    chosen.into_iter().map(|m| m.mount_point.clone()).collect()
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

/// A cgroup directory held open. Every file operation is relative to the descriptor
/// (`openat`, `unlinkat`), so what it acts on is the cgroup opened, whatever happens
/// to the path meanwhile: a mount on the way to it unmounted lazily (`umount -l`),
/// another mount put on top. The path is kept for messages only.
#[derive(Debug)]
pub struct DirFd {
    fd: OwnedFd,
    path: PathBuf,
}

/// The `open(2)` flags of a [`DirFd`]: a plain read-only descriptor (not `O_PATH`:
/// `flock` and `getdents` need a real one), close-on-exec so no command inherits it.
const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;

impl DirFd {
    /// Open a directory by path.
    pub fn open(path: &Path) -> io::Result<DirFd> {
        let c = cstring(path.as_os_str())?;
        // SAFETY: open on a valid C string; the descriptor is owned below.
        let fd = unsafe { libc::open(c.as_ptr(), DIR_FLAGS) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor of ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(DirFd {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// A descriptor this process holds already (the watchdog's, inherited from
    /// cg-test), shown as `path` in messages.
    pub fn from_owned(fd: OwnedFd, path: PathBuf) -> DirFd {
        DirFd { fd, path }
    }

    /// The subdirectory `name`, relative to this one.
    pub fn open_at(&self, name: &OsStr) -> io::Result<DirFd> {
        let fd = self.openat_raw(name, DIR_FLAGS)?;
        Ok(DirFd {
            fd,
            path: self.path.join(name),
        })
    }

    /// The parent directory, through this descriptor (`..` stays inside the mount the
    /// descriptor was opened through, even a detached one).
    pub fn parent(&self) -> io::Result<DirFd> {
        let fd = self.openat_raw(OsStr::new(".."), DIR_FLAGS)?;
        let path = self
            .path
            .parent()
            .map_or_else(|| self.path.clone(), Path::to_path_buf);
        Ok(DirFd { fd, path })
    }

    fn openat_raw(&self, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
        let c = cstring(name)?;
        loop {
            // SAFETY: openat relative to our descriptor on a valid C string.
            let fd = unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), flags) };
            if fd >= 0 {
                // SAFETY: a fresh descriptor of ours.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The file `name` of this directory, open for reading or for writing
    /// (close-on-exec).
    pub fn file(&self, name: &str, write: bool) -> io::Result<File> {
        let mode = if write {
            libc::O_WRONLY
        } else {
            libc::O_RDONLY
        };
        let fd = self.openat_raw(OsStr::new(name), mode | libc::O_CLOEXEC)?;
        Ok(File::from(fd))
    }

    /// Read the file `name` whole; the error names it.
    pub fn read(&self, name: &str) -> Result<String> {
        use std::io::Read;
        let mut text = String::with_capacity(4096);
        self.file(name, false)
            .and_then(|mut f| f.read_to_string(&mut text))
            .with_context(|| format!("reading {}", self.path.join(name).display()))?;
        Ok(text)
    }

    /// Write `value` to the file `name` in one write; the error names it.
    pub fn write(&self, name: &str, value: &str) -> Result<()> {
        use std::io::Write;
        self.file(name, true)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .with_context(|| format!("writing {value:?} to {}", self.path.join(name).display()))
    }

    /// Whether this directory has an entry `name`.
    pub fn has(&self, name: &str) -> bool {
        let Ok(c) = cstring(OsStr::new(name)) else {
            return false;
        };
        // SAFETY: faccessat relative to our descriptor on a valid C string.
        unsafe { libc::faccessat(self.fd.as_raw_fd(), c.as_ptr(), libc::F_OK, 0) == 0 }
    }

    /// The names of the subdirectories (cgroups) directly below this one. A cgroup
    /// that was removed lists nothing at all, not even its control files.
    pub fn subdirs(&self) -> io::Result<Vec<OsString>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, dir)| *dir)
            .map(|(n, _)| n)
            .collect())
    }

    /// Every entry but `.` and `..`, with whether it is a directory.
    fn entries(&self) -> io::Result<Vec<(OsString, bool)>> {
        use std::os::unix::ffi::OsStrExt;
        // fdopendir takes the descriptor over: give it a copy, positioned at the start.
        let dup = self.fd.try_clone()?;
        // SAFETY: fdopendir on a descriptor we own (it owns it from here on, and
        // closedir closes it); readdir entries are read before the next call.
        unsafe {
            let raw = dup.as_raw_fd();
            let dir = libc::fdopendir(raw);
            if dir.is_null() {
                return Err(io::Error::last_os_error());
            }
            std::mem::forget(dup);
            libc::rewinddir(dir);
            let mut out = Vec::new();
            loop {
                let e = libc::readdir(dir);
                if e.is_null() {
                    break;
                }
                let name = std::ffi::CStr::from_ptr((*e).d_name.as_ptr()).to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let is_dir = match (*e).d_type {
                    libc::DT_DIR => true,
                    libc::DT_UNKNOWN => {
                        let mut st: libc::stat = std::mem::zeroed();
                        libc::fstatat(
                            raw,
                            (*e).d_name.as_ptr(),
                            &mut st,
                            libc::AT_SYMLINK_NOFOLLOW,
                        ) == 0
                            && st.st_mode & libc::S_IFMT == libc::S_IFDIR
                    }
                    _ => false,
                };
                out.push((OsStr::from_bytes(name).to_os_string(), is_dir));
            }
            libc::closedir(dir);
            Ok(out)
        }
    }

    /// Whether this cgroup was removed: its directory lists nothing, where a live
    /// cgroup always lists its control files.
    pub fn is_removed(&self) -> bool {
        self.entries().is_ok_and(|e| e.is_empty())
    }

    /// rmdir the subdirectory `name`.
    pub fn rmdir(&self, name: &OsStr) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: unlinkat relative to our descriptor on a valid C string.
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// mkdir the subdirectory `name`.
    pub fn mkdir(&self, name: &OsStr) -> io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: mkdirat relative to our descriptor on a valid C string.
        if unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o755) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// `flock(2)` on the directory, retried on EINTR.
    pub fn flock(&self, op: libc::c_int) -> io::Result<()> {
        flock_fd(self.fd.as_fd(), op)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// `flock(2)`, retried on EINTR.
pub fn flock_fd(fd: BorrowedFd<'_>, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor the caller holds.
        if unsafe { libc::flock(fd.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn cstring(s: &OsStr) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
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

    /// Issue 18 item 4: the hierarchy mounted more than once. A read-only view listed
    /// after the writable mount used to be the one taken (the last); a mount point
    /// covered by another mount is refused by the on-disk check.
    #[test]
    fn the_mount_is_chosen_not_taken_last() {
        let mi = "\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
66 46 0:38 / /tmp/ro-view ro,relatime - cgroup2 cgroup2 rw
67 46 0:38 / /tmp/sb-ro rw,relatime - cgroup2 cgroup2 ro
68 46 0:38 / /tmp/second rw,relatime - cgroup2 none rw
";
        let m = cgroup2_mounts(mi);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].dev, (0, 38));
        assert!(!m[0].read_only && m[1].read_only && m[2].read_only && !m[3].read_only);
        let ok = |_: &Cgroup2Mount, _: &Path| Ok(());
        let (chosen, dir) = choose_mount(&m, "/a", ok).unwrap();
        assert_eq!(chosen.mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup/unified/a"));
        // The first refused on disk (covered): the next writable one.
        let covered = |m: &Cgroup2Mount, _: &Path| {
            if m.mount_point == Path::new("/sys/fs/cgroup/unified") {
                Err("covered".to_string())
            } else {
                Ok(())
            }
        };
        let (chosen, _) = choose_mount(&m, "/a", covered).unwrap();
        assert_eq!(chosen.mount_point, PathBuf::from("/tmp/second"));
        // Only read-only views: refused, naming each and why.
        let views: Vec<Cgroup2Mount> = m.iter().filter(|x| x.read_only).cloned().collect();
        let err = format!("{:#}", choose_mount(&views, "/a", ok).unwrap_err());
        assert!(err.contains("/tmp/ro-view is mounted read-only"), "{err}");
        assert!(err.contains("/tmp/sb-ro is mounted read-only"), "{err}");
        assert!(err.contains("Read-only file system"), "{err}");
    }

    #[test]
    fn a_bind_of_our_own_subtree_is_preferred_and_roots_are_walked_once() {
        let mi = "\
41 31 0:38 / /u rw - cgroup2 cgroup2 rw
50 1 0:38 /ci /mnt/ci rw - cgroup2 cgroup2 rw
51 1 0:38 / /mnt/again rw - cgroup2 cgroup2 rw
52 1 0:38 /ro /mnt/ro ro - cgroup2 cgroup2 rw
53 1 0:99 / /other rw - cgroup2 cgroup2 rw
";
        let m = cgroup2_mounts(mi);
        let ok = |_: &Cgroup2Mount, _: &Path| Ok(());
        let (chosen, dir) = choose_mount(&m, "/ci/job", ok).unwrap();
        assert_eq!(
            (chosen.mount_point.as_path(), dir.as_path()),
            (Path::new("/mnt/ci"), Path::new("/mnt/ci/job"))
        );
        assert_eq!(
            hierarchy_roots(&m, ok),
            vec![PathBuf::from("/u"), PathBuf::from("/other")],
            "/mnt/again and the subtree binds show nothing /u does not"
        );
        let only_ro: Vec<Cgroup2Mount> = m.iter().filter(|x| x.root == "/ro").cloned().collect();
        assert_eq!(
            hierarchy_roots(&only_ro, ok),
            vec![PathBuf::from("/mnt/ro")]
        );
    }

    #[test]
    fn device_numbers() {
        // makedev(0, 38) and makedev(259, 1048577).
        assert_eq!(dev_parts(38), (0, 38));
        let dev: u64 = (259u64 << 8) | 1 | ((1048577u64 & !0xff) << 12);
        assert_eq!(dev_parts(dev), (259, 1048577));
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
