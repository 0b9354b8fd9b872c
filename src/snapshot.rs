//! What the run's processes were doing: one row per process (pid, parent, state, CPU
//! time, age, resident memory, command line), for the "what hung" snapshot of a
//! timeout (and, with `-v`, of a teardown started by a signal) and for the leak report.
//!
//! When the snapshot is read. The ladder freezes the run before it signals anything,
//! and the member list it reads while frozen decides who is in the snapshot. In
//! cgroup mode the per-process rows, though, are read just *before* the freeze: the
//! cgroup freezer shows every frozen task as sleeping (`S`), so a row read afterwards
//! could not tell a busy loop from a process waiting on a lock. Reading first and
//! reconciling with the frozen list after (dropping who exited in between, reading
//! who was forked in between) keeps both the true state and the exact membership, for
//! one extra read of `cgroup.procs`. In pgroup mode listing the members means walking
//! the whole process table (~100 ms with 2,000 processes on the machine), so the rows
//! are read after the stop-the-world freeze, and show every member stopped (`T`).
//!
//! What it costs: one read of `/proc/<pid>/stat` per process (about 10–15 µs on the
//! development machines, so ~12 ms for a 1,000-process run). Command lines are read
//! (while frozen) only for the rows a human will see, the 40 busiest, unless
//! `--report` asks for the complete list. Nothing here runs unless a snapshot was
//! asked for: a run that ends by itself never reads a row.
//!
//! Platform code: the Linux reader is `snapshot/linux.rs` (/proc); elsewhere
//! `snapshot/other.rs` makes do with the platform facade's process table (parent,
//! stopped/zombie, command line) and leaves CPU, age and memory unknown.

#[cfg(target_os = "linux")]
#[path = "snapshot/linux.rs"]
mod imp;

#[cfg(not(target_os = "linux"))]
#[path = "snapshot/other.rs"]
mod imp;

use std::collections::HashSet;
use std::time::Duration;

use crate::isolation::Isolation;
use crate::report::{self, tree};

/// How many processes a human sees, busiest first; the rest are counted (`… and N
/// more`) and listed in full only in the `--report` file.
pub const SHOWN: usize = 40;

/// One process of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcRow {
    pub pid: i32,
    pub ppid: i32,
    /// The state letter as `ps` shows it (R, S, D, T, Z, ...); `?` when unknown.
    pub state: char,
    /// User + system CPU time the process has used (its threads included).
    pub cpu: Option<Duration>,
    /// Time since the process started.
    pub age: Option<Duration>,
    /// Resident memory, in bytes.
    pub rss: Option<u64>,
    /// The argv as the process shows it (`[comm]` when it has none, e.g. a zombie);
    /// None where it was not read (a row no human sees, without `--report`).
    pub cmdline: Option<Vec<Vec<u8>>>,
}

/// Rows for these pids, without command lines; pids that are gone are skipped.
pub fn read_rows(pids: &[i32]) -> Vec<ProcRow> {
    let reader = imp::Reader::new();
    let mut rows = Vec::with_capacity(pids.len());
    rows.extend(pids.iter().filter_map(|&pid| reader.row(pid)));
    rows
}

/// Read the command lines of the rows that will be shown (the [`SHOWN`] busiest), or
/// of every row when `all`.
pub fn read_cmdlines(rows: &mut [ProcRow], all: bool) {
    let wanted: HashSet<i32> = if all {
        rows.iter().map(|r| r.pid).collect()
    } else {
        tree::busiest(rows, SHOWN).into_iter().collect()
    };
    for row in rows.iter_mut().filter(|r| wanted.contains(&r.pid)) {
        row.cmdline = Some(imp::cmdline(row.pid).unwrap_or_else(|| vec![b"?".to_vec()]));
    }
}

/// Just before a freeze: the rows of the current members where listing them is cheap
/// (a cgroup leaf's `cgroup.procs`), else none (see the module docs).
pub fn read_before_freeze(boundary: &mut dyn Isolation) -> Vec<ProcRow> {
    if boundary.kind() != "cgroup" {
        return Vec::new();
    }
    read_rows(&boundary.members().unwrap_or_default())
}

/// The rows of exactly `members`: rows read earlier are kept for the pids still
/// there, the others read now.
pub fn reconcile(early: Vec<ProcRow>, members: &[i32]) -> Vec<ProcRow> {
    // Usually nobody came or went between the two reads of cgroup.procs.
    if early.len() == members.len() && early.iter().zip(members).all(|(r, &m)| r.pid == m) {
        return early;
    }
    let members_set: HashSet<i32> = members.iter().copied().collect();
    let mut rows: Vec<ProcRow> = early
        .into_iter()
        .filter(|r| members_set.contains(&r.pid))
        .collect();
    let known: HashSet<i32> = rows.iter().map(|r| r.pid).collect();
    let missing: Vec<i32> = members
        .iter()
        .copied()
        .filter(|p| !known.contains(p))
        .collect();
    rows.extend(read_rows(&missing));
    rows
}

/// While frozen: the rows of exactly `members` (see [`reconcile`]), with the command
/// lines that will be needed.
pub fn settle(early: Vec<ProcRow>, members: &[i32], all_cmdlines: bool) -> Vec<ProcRow> {
    let mut rows = reconcile(early, members);
    read_cmdlines(&mut rows, all_cmdlines);
    rows
}

/// Why a teardown snapshot is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// `--timeout` expired after this long.
    Timeout(Duration),
    /// cg-test received this signal.
    Signal(i32),
}

/// The one teardown snapshot of a run: armed when the teardown starts, read around
/// the ladder's first freeze, shown once the run is thawed again (writing to a
/// terminal or pipe while frozen could block on a reader inside the run).
#[derive(Debug, Default)]
pub struct Snapshots {
    /// `--report` wants every command line.
    full: bool,
    armed: Option<Cause>,
    early: Option<Vec<ProcRow>>,
    taken: Option<(Cause, Vec<ProcRow>)>,
    shown: bool,
}

impl Snapshots {
    pub fn new(report_file: bool) -> Snapshots {
        Snapshots {
            full: report_file,
            ..Snapshots::default()
        }
    }

    /// Ask for a snapshot at the next freeze. A timeout's is taken whenever someone
    /// will read it (the text unless `-q`, the report file, a CI annotation); a
    /// signal's only with `-v`, since it goes to the terminal alone.
    pub fn arm(&mut self, cause: Cause) {
        let wanted = match cause {
            Cause::Timeout(_) => report::shows_notes() || self.full || report::annotating(),
            Cause::Signal(_) => report::shows_steps(),
        };
        if wanted && self.taken.is_none() {
            self.armed = Some(cause);
        }
    }

    /// Just before the ladder freezes: read the rows of the current members.
    pub fn before_freeze(&mut self, boundary: &mut dyn Isolation) {
        if self.armed.is_some() {
            self.early = Some(read_before_freeze(boundary));
        }
    }

    /// While frozen: settle the rows on the frozen member list and read the command
    /// lines that will be needed.
    pub fn after_freeze(&mut self, members: &[i32]) {
        let Some(cause) = self.armed.take() else {
            return;
        };
        let rows = settle(self.early.take().unwrap_or_default(), members, self.full);
        self.taken = Some((cause, rows));
    }

    /// After the thaw: print the snapshot (and the CI annotation for a timeout), once.
    pub fn show(&mut self) {
        if self.shown {
            return;
        }
        if let Some((cause, rows)) = &self.taken {
            self.shown = true;
            report::teardown_snapshot(*cause, rows, self.full);
        }
    }

    /// The rows taken at a timeout (empty for any other teardown), for the report.
    pub fn at_timeout(&self) -> &[ProcRow] {
        match &self.taken {
            Some((Cause::Timeout(_), rows)) => rows,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_row() {
        let me = std::process::id() as i32;
        let mut rows = read_rows(&[me, i32::MAX]);
        assert_eq!(rows.len(), 1, "a pid that does not exist is skipped");
        read_cmdlines(&mut rows, true);
        let r = &rows[0];
        assert_eq!(r.pid, me);
        // SAFETY: getppid cannot fail.
        assert_eq!(r.ppid, unsafe { libc::getppid() });
        assert!(r.cmdline.as_ref().is_some_and(|c| !c.is_empty()));
        if crate::platform::IS_LINUX {
            // The state is the main thread's: running, or waiting for the test threads.
            assert!(matches!(r.state, 'R' | 'S'), "state {:?}", r.state);
            assert!(r.rss.is_some_and(|b| b > 100 * 1024));
            assert!(r.age.is_some() && r.cpu.is_some());
        }
    }

    #[test]
    fn reconcile_keeps_members_only_and_reads_newcomers() {
        let me = std::process::id() as i32;
        let gone = ProcRow {
            pid: i32::MAX - 1,
            ppid: 1,
            state: 'S',
            cpu: None,
            age: None,
            rss: None,
            cmdline: None,
        };
        let rows = reconcile(vec![gone], &[me]);
        assert_eq!(rows.iter().map(|r| r.pid).collect::<Vec<_>>(), vec![me]);
    }
}
