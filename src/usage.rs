//! What the run cost: CPU time, peak memory, peak process count, OOM kills, each from
//! the best source there is and labelled as what it is.
//!
//! Sources, in order:
//! - cgroup mode: the leaf's `cpu.stat` (a core file of every cgroup v2, no controller
//!   needed), and `memory.peak`, `memory.events` (`oom_kill`) and `pids.peak` where
//!   the leaf has the memory and pids controllers. They cover every process that was
//!   ever in the leaf, and must be read before the leaf is removed.
//! - otherwise `getrusage(RUSAGE_CHILDREN)`: the processes cg-test reaped and what
//!   they reaped themselves. cg-test is a child subreaper on Linux, so orphans count
//!   too. Its `ru_maxrss` is the largest *single* process, not the run's total, so it
//!   is reported with the scope `largest_process` and never as the run's peak.
//! - anything else is unknown: `None` (`n/a` on the summary line, `null` in the
//!   report), never 0.
//!
//! Read once, at the end of the run, after the last process is reaped.

use std::path::Path;
use std::time::Duration;

/// Where the CPU figures come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuSource {
    /// The leaf's `cpu.stat`: every process of the run.
    Cgroup,
    /// `getrusage(RUSAGE_CHILDREN)`: every process cg-test (or a reaped process)
    /// reaped.
    ReapedChildren,
}

impl CpuSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CpuSource::Cgroup => "cgroup",
            CpuSource::ReapedChildren => "reaped_children",
        }
    }
}

/// What a memory figure covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryScope {
    /// The whole run at its peak (`memory.peak`).
    Run,
    /// The largest single process (`ru_maxrss`).
    LargestProcess,
}

impl MemoryScope {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryScope::Run => "run",
            MemoryScope::LargestProcess => "largest_process",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    pub user: Duration,
    pub system: Duration,
    pub source: CpuSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    pub bytes: u64,
    pub scope: MemoryScope,
}

/// The run's usage; None is "unknown here".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub pids_peak: Option<u64>,
    pub oom_kills: Option<u64>,
}

/// Collect the usage of a finished run whose leaf (if any) is `cgroup`.
pub fn collect(cgroup: Option<&Path>) -> Usage {
    let read = |file: &str| cgroup.and_then(|dir| crate::cgroupfs::read_text(&dir.join(file)).ok());
    let children = children_rusage();
    let cpu = read("cpu.stat")
        .and_then(|t| parse_cpu_stat(&t))
        .map(|(user, system)| Cpu {
            user,
            system,
            source: CpuSource::Cgroup,
        })
        .or(children.map(|c| c.cpu));
    let memory = read("memory.peak")
        .and_then(|t| t.trim().parse().ok())
        .map(|bytes| Memory {
            bytes,
            scope: MemoryScope::Run,
        })
        .or(children.and_then(|c| c.largest));
    Usage {
        cpu,
        memory,
        pids_peak: read("pids.peak").and_then(|t| t.trim().parse().ok()),
        oom_kills: read("memory.events").and_then(|t| keyed_value(&t, "oom_kill")),
    }
}

/// `user_usec` and `system_usec` of a `cpu.stat` text.
pub fn parse_cpu_stat(text: &str) -> Option<(Duration, Duration)> {
    let user = keyed_value(text, "user_usec")?;
    let system = keyed_value(text, "system_usec")?;
    Some((Duration::from_micros(user), Duration::from_micros(system)))
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[derive(Clone, Copy)]
struct Children {
    cpu: Cpu,
    largest: Option<Memory>,
}

fn children_rusage() -> Option<Children> {
    // SAFETY: getrusage fills the struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) != 0 {
            return None;
        }
        ru
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    // ru_maxrss is in kilobytes on Linux and the BSDs, in bytes on macOS. A run whose
    // command never got to run reaped no one: 0 means unknown, not zero bytes.
    let unit = if cfg!(target_vendor = "apple") {
        1
    } else {
        1024
    };
    let largest = u64::try_from(ru.ru_maxrss)
        .ok()
        .filter(|&m| m > 0)
        .map(|m| Memory {
            bytes: m * unit,
            scope: MemoryScope::LargestProcess,
        });
    Some(Children {
        cpu: Cpu {
            user: tv(ru.ru_utime),
            system: tv(ru.ru_stime),
            source: CpuSource::ReapedChildren,
        },
        largest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stat_and_keyed_files() {
        let t = "usage_usec 1500000\nuser_usec 1200000\nsystem_usec 300000\nnice_usec 0\n";
        assert_eq!(
            parse_cpu_stat(t),
            Some((Duration::from_millis(1200), Duration::from_millis(300)))
        );
        assert_eq!(parse_cpu_stat("usage_usec 5\n"), None);
        let events = "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(1));
        assert_eq!(
            keyed_value(events, "oom"),
            Some(2),
            "a key is not its prefix"
        );
        assert_eq!(keyed_value(events, "nope"), None);
    }

    #[test]
    fn missing_files_stay_unknown() {
        let dir = std::env::temp_dir().join(format!("cg-test-usage-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cpu.stat"), "user_usec 7\nsystem_usec 3\n").unwrap();
        let u = collect(Some(&dir));
        assert_eq!(
            u.cpu.map(|c| (c.user, c.system, c.source)),
            Some((
                Duration::from_micros(7),
                Duration::from_micros(3),
                CpuSource::Cgroup
            ))
        );
        assert_eq!(u.pids_peak, None);
        assert_eq!(u.oom_kills, None);
        assert_ne!(u.memory.map(|m| m.scope), Some(MemoryScope::Run));
        std::fs::write(dir.join("memory.peak"), "104857600\n").unwrap();
        std::fs::write(dir.join("pids.peak"), "17\n").unwrap();
        std::fs::write(dir.join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
        let u = collect(Some(&dir));
        assert_eq!(
            u.memory,
            Some(Memory {
                bytes: 104857600,
                scope: MemoryScope::Run
            })
        );
        assert_eq!((u.pids_peak, u.oom_kills), (Some(17), Some(0)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
