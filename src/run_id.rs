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

    /// Parse a leaf name back into the id (for gc and tests).
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
}
