//! What the command gets beyond its isolation boundary: `--pid-ns` and `--harden`.
//!
//! - `--pid-ns`: the command runs in a new pid namespace, and a new mount namespace in
//!   which /proc is mounted afresh (so `ps` inside sees only the run). Its PID 1 is a
//!   small init of cg-test's own ([`NsInit`]), not the command: the kernel drops
//!   signals to a namespace's PID 1 that it has no handler for, so a command that
//!   relies on the default action of TERM would no longer die of `kill -TERM`. The
//!   init is cg-test's child with PR_SET_PDEATHSIG(SIGKILL); when cg-test dies, even
//!   by SIGKILL, the kernel kills the init and with it every process of the
//!   namespace. It lives outside the run's cgroup leaf (in cg-test's own cgroup, like
//!   the watchdog); it spawns the command into the leaf exactly as cg-test would
//!   (clone3 with CLONE_INTO_CGROUP, or fork + `cgroup.procs`), reaps the run's
//!   orphans, and reports the command's wait status to cg-test over a pipe. cg-test
//!   signals the command by its pid as seen from outside, so the rest of the run
//!   (forwarding, the ladder, the terminal) is unchanged. Needs CAP_SYS_ADMIN, or an
//!   unprivileged user namespace (then made with the pid namespace, mapping cg-test's
//!   own uid and gid to themselves).
//! - `--harden` (implies `--pid-ns`): the init seals itself (not dumpable, no cgroup2
//!   mount, /sys, the cgroup v1 mounts, /proc/sys and /proc/sysrq-trigger read-only);
//!   between fork and exec the command enters a new cgroup namespace rooted at its
//!   leaf, mounts cgroup2 again from inside it with the leaf's non-delegatable files
//!   bound read-only, drops the `DROPPED` capabilities from every set, sets
//!   no_new_privs and installs a seccomp filter (no user namespaces, no TIOCSTI), so
//!   that a root command cannot leave its leaf, raise its limits, or have the kernel
//!   start a program outside the run (docs/DESIGN.md has every route). Needs
//!   CAP_SYS_ADMIN and CAP_SETPCAP, mount_setattr (Linux 5.12), and a cgroup leaf.
//!
//! Everything the child side needs is prepared before fork ([`Confinement::prepare`],
//! which also checks the privileges, so a missing one is one line and exit 125 before
//! anything is made); the child side makes only syscalls. Linux only: elsewhere the
//! flags are refused.

#[cfg(target_os = "linux")]
#[path = "namespaces/linux.rs"]
mod imp;

#[cfg(not(target_os = "linux"))]
#[path = "namespaces/other.rs"]
mod imp;

use anyhow::Result;

pub use imp::{host_pid, init_main, Harden, HardenStep, NsInit, NsStep, PidNs};

/// What the command's process gets beyond the boundary, prepared before fork.
#[derive(Default)]
pub struct Confinement {
    /// `--pid-ns`.
    pub pid_ns: Option<PidNs>,
    /// `--harden`.
    pub harden: Option<Harden>,
}

impl Confinement {
    /// Check the privileges the flags need and prepare what the child side uses. An
    /// error names the flag and what is missing; nothing has been made then.
    /// `--harden` implies `--pid-ns`: outside a pid namespace of its own the command
    /// could reach the outside through /proc/<pid>/root of any process it sees.
    pub fn prepare(pid_ns: bool, harden: bool) -> Result<Confinement> {
        let harden = harden.then(Harden::prepare).transpose()?;
        Ok(Confinement {
            pid_ns: (pid_ns || harden.is_some())
                .then(PidNs::prepare)
                .transpose()?,
            harden,
        })
    }
}

/// One record the init writes to cg-test about the command: 8 bytes, a kind and a
/// value, in one `write` (shorter than PIPE_BUF, so never torn).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitRecord {
    /// The command was spawned with this pid inside the namespace; `placed`: by
    /// clone3 straight into the leaf.
    Spawned { ns_pid: i32, placed: bool },
    /// The command was stopped by a signal (job control).
    Stopped,
    /// The command is gone; its raw wait status.
    Exited(i32),
}

impl InitRecord {
    pub const SIZE: usize = 8;

    pub fn encode(self) -> [u8; Self::SIZE] {
        let (kind, value): (u32, i32) = match self {
            InitRecord::Spawned { ns_pid, placed } => (1 + u32::from(placed), ns_pid),
            InitRecord::Stopped => (3, 0),
            InitRecord::Exited(raw) => (4, raw),
        };
        let mut b = [0u8; Self::SIZE];
        b[..4].copy_from_slice(&kind.to_ne_bytes());
        b[4..].copy_from_slice(&value.to_ne_bytes());
        b
    }

    pub fn decode(b: [u8; Self::SIZE]) -> Option<InitRecord> {
        let kind = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let value = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
        match kind {
            1 | 2 => Some(InitRecord::Spawned {
                ns_pid: value,
                placed: kind == 2,
            }),
            3 => Some(InitRecord::Stopped),
            4 => Some(InitRecord::Exited(value)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for r in [
            InitRecord::Spawned {
                ns_pid: 2,
                placed: true,
            },
            InitRecord::Spawned {
                ns_pid: 7,
                placed: false,
            },
            InitRecord::Stopped,
            InitRecord::Exited(0x0f00),
        ] {
            assert_eq!(InitRecord::decode(r.encode()), Some(r));
        }
        assert_eq!(InitRecord::decode([9, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}
