//! The run's identity: `<pid>-<start>-<random>`, unique per run and readable by a later
//! `cg-test gc`. It names the cgroup leaf (`cg-test-<id>`) and is exported to the
//! command as `CG_TEST_RUN_ID`, the token the process-group fallback sweeps for.
//!
//! `<start>` is the supervisor's start time as the kernel records it (clock ticks
//! since boot, field 22 of /proc/<pid>/stat) where there is one, so a gc can tell a
//! leaf whose owner is gone from one whose pid was merely reused.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

use crate::platform;

/// The environment variable carrying the run id to the command.
pub const ENV_VAR: &str = "CG_TEST_RUN_ID";

/// Prefix of every cgroup leaf cg-test creates.
pub const LEAF_PREFIX: &str = "cg-test-";

/// Suffix of the leaf cg-test moves itself into when a run's limits need controllers
/// its own cgroup can only pass down while it holds no processes (see
/// [`crate::isolation::limits`]): `cg-test-<id>-supervisor`, beside the run's leaf.
pub const SUPERVISOR_SUFFIX: &str = "-supervisor";

/// What a cg-test directory is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    /// The run's leaf: the command and everything it starts.
    Run,
    /// cg-test's own leaf (cg-test and its watchdog), beside the run's leaf.
    Supervisor,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunId {
    pub pid: u32,
    pub start: u64,
    pub nonce: u32,
}

impl RunId {
    /// A fresh id for this process.
    pub fn new() -> RunId {
        let pid = std::process::id();
        RunId {
            pid,
            start: platform::process_start_time(pid).unwrap_or(0),
            nonce: random_u32(),
        }
    }

    /// The leaf directory name for this run.
    pub fn leaf_name(&self) -> String {
        format!("{LEAF_PREFIX}{self}")
    }

    /// The name of cg-test's own leaf for this run.
    pub fn supervisor_leaf_name(&self) -> String {
        format!("{LEAF_PREFIX}{self}{SUPERVISOR_SUFFIX}")
    }

    /// Parse any cg-test directory name (a run's leaf or cg-test's own) into its owner's
    /// id and what it is for (for gc and the start-up sweep).
    pub fn parse_leaf(name: &str) -> Option<(RunId, LeafKind)> {
        match name.strip_suffix(SUPERVISOR_SUFFIX) {
            Some(run) => RunId::from_leaf_name(run).map(|id| (id, LeafKind::Supervisor)),
            None => RunId::from_leaf_name(name).map(|id| (id, LeafKind::Run)),
        }
    }

    /// Parse a run's leaf name back into the id (for gc and tests).
    pub fn from_leaf_name(name: &str) -> Option<RunId> {
        let mut parts = name.strip_prefix(LEAF_PREFIX)?.split('-');
        let id = RunId {
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
            nonce: u32::from_str_radix(parts.next()?, 16).ok()?,
        };
        parts.next().is_none().then_some(id)
    }
}

impl Default for RunId {
    fn default() -> Self {
        RunId::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:08x}", self.pid, self.start, self.nonce)
    }
}

/// 32 random bits without a dependency: std seeds every `RandomState` from the OS.
fn random_u32() -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_name_round_trips() {
        let id = RunId {
            pid: 42,
            start: 1234,
            nonce: 0xdead_beef,
        };
        assert_eq!(id.leaf_name(), "cg-test-42-1234-deadbeef");
        assert_eq!(RunId::from_leaf_name(&id.leaf_name()), Some(id));
        assert_eq!(RunId::from_leaf_name("cg-test-x-1-2"), None);
        assert_eq!(RunId::from_leaf_name("other-42-1-2"), None);
        assert_ne!(RunId::new().nonce, RunId::new().nonce);
    }

    #[test]
    fn supervisor_leaf_name_round_trips() {
        let id = RunId {
            pid: 42,
            start: 1234,
            nonce: 0xdead_beef,
        };
        let sup = id.supervisor_leaf_name();
        assert_eq!(sup, "cg-test-42-1234-deadbeef-supervisor");
        assert_eq!(
            RunId::parse_leaf(&sup),
            Some((id.clone(), LeafKind::Supervisor))
        );
        assert_eq!(
            RunId::parse_leaf(&id.leaf_name()),
            Some((id.clone(), LeafKind::Run))
        );
        // Only the exact suffix makes a supervisor leaf; a run's leaf parser refuses it.
        assert_eq!(RunId::from_leaf_name(&sup), None);
        assert_eq!(RunId::parse_leaf("cg-test-42-1234-deadbeef-other"), None);
        assert_eq!(RunId::parse_leaf("cg-test-42-1234-supervisor"), None);
        assert_eq!(
            RunId::parse_leaf("x-cg-test-42-1234-deadbeef-supervisor"),
            None
        );
    }
}
