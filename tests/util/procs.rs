//! Reading the process table: finding processes by marker, liveness, and the few
//! /proc fields the tests compare (process group, session, terminal group, CPU time,
//! context switches).

use std::path::Path;

use super::FIXTURE;

/// Fields of /proc/<pid>/stat the tests use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub tpgid: i32,
    pub utime: u64,
    pub stime: u64,
}

/// Parse the text of a /proc/<pid>/stat file. `comm` may contain spaces and
/// parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After `(comm)`: state is field 3, so field N is f[N - 3].
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        tpgid: f.get(5)?.parse().ok()?,
        utime: f.get(11)?.parse().ok()?,
        stime: f.get(12)?.parse().ok()?,
    })
}

pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Alive: present in /proc and not a zombie (a zombie has already died; it only waits
/// for its parent to read its status).
pub fn is_alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X' | 'x'))
}

/// The command line with NULs turned into spaces (empty for zombies and kernel threads).
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Every pid in /proc.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live processes (not this test process) whose command line contains `marker`.
pub fn with_marker(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|&p| cmdline(p).is_some_and(|c| c.contains(marker)))
        .filter(|&p| is_alive(p))
        .collect()
}

/// The first word of a process's argv (None for zombies and kernel threads).
pub fn argv0(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = raw.split(|&b| b == 0).next()?;
    (!first.is_empty()).then(|| String::from_utf8_lossy(first).into_owned())
}

/// Is `argv0` the fixture binary? Tests start it by its full path; its re-exec
/// (`scrub-env`) uses /proc/self/exe, the same file by its canonical path.
pub fn is_fixture_path(argv0: &str) -> bool {
    argv0 == FIXTURE
        || std::fs::canonicalize(FIXTURE)
            .is_ok_and(|canonical| canonical.as_os_str() == std::ffi::OsStr::new(argv0))
}

/// Live victims carrying `marker`: like [`with_marker`], but only processes whose
/// argv[0] is the fixture binary. cg-test itself and the shells that start fixtures
/// carry the marker in their argv too, so counting them would make a liveness check
/// pass with no victim alive.
pub fn fixtures_with_marker(marker: &str) -> Vec<i32> {
    with_marker(marker)
        .into_iter()
        .filter(|&p| argv0(p).is_some_and(|a| is_fixture_path(&a)))
        .collect()
}

/// Voluntary + non-voluntary context switches of a process, from /proc/<pid>/status.
pub fn context_switches(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut total = 0;
    let mut seen = 0;
    for line in status.lines() {
        if let Some(v) = line
            .strip_prefix("voluntary_ctxt_switches:")
            .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
        {
            total += v.trim().parse::<u64>().ok()?;
            seen += 1;
        }
    }
    (seen == 2).then_some(total)
}

/// SIGKILL a process by pid; a pid that is already gone is fine.
pub fn kill(pid: i32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill has no memory effects; pid > 1 never addresses a group.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Does this path exist (file or directory)?
pub fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_comm_with_spaces_and_parens() {
        let s = parse_stat("42 (a b) c) S 1 42 40 34816 43 4194560 0 0 0 0 7 3 0 0").unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!((s.ppid, s.pgrp, s.session, s.tpgid), (1, 42, 40, 43));
        assert_eq!((s.utime, s.stime), (7, 3));
    }
}
