//! The assertions every kill test makes: the victims were alive before, nothing
//! carrying the marker survives, no leaf is left, and the late marker never appears.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{cgroup, procs, READY_LIMIT};

/// Processes that announced themselves in a ready directory.
#[derive(Debug)]
pub struct Ready {
    pub pids: Vec<i32>,
    /// When the test saw the last announcement: every announcing process started
    /// before this, so its late marker is due no later than `seen + late_after`.
    pub seen: Instant,
}

/// Wait until `dir` holds at least `n` pid files; bounded by [`READY_LIMIT`].
pub fn wait_ready(dir: &Path, n: usize) -> Ready {
    let until = Instant::now() + READY_LIMIT;
    loop {
        let pids = ready_pids(dir);
        if pids.len() >= n {
            return Ready {
                pids,
                seen: Instant::now(),
            };
        }
        assert!(
            Instant::now() < until,
            "only {} of {n} processes announced themselves in {} within {READY_LIMIT:?}",
            pids.len(),
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The pids announced in a ready directory so far.
pub fn ready_pids(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort();
    pids
}

/// Each pid is alive now and carries `marker` (it is the test's process, not a reused
/// pid).
pub fn assert_alive_with_marker(pids: &[i32], marker: &str) {
    for &p in pids {
        assert!(
            procs::is_alive(p),
            "process {p} should be alive before the kill"
        );
        let cmd = procs::cmdline(p).unwrap_or_default();
        assert!(
            cmd.contains(marker),
            "process {p} does not carry the marker {marker}: {cmd:?}"
        );
    }
}

/// No live process carries `marker`. Scans several times: one scan reads /proc's
/// listing first and each process after, so a process that forks and exits every few
/// milliseconds (the hopper) can slip between the two; it cannot do so every time.
pub fn assert_no_survivors(marker: &str) {
    let mut left = Vec::new();
    for _ in 0..10 {
        left = procs::with_marker(marker);
        if !left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let described: Vec<String> = left
        .iter()
        .map(|&p| format!("{p}: {}", procs::cmdline(p).unwrap_or_default()))
        .collect();
    assert!(
        left.is_empty(),
        "processes carrying {marker} survived:\n{}",
        described.join("\n")
    );
}

/// No `cg-test-<pid>-*` directory is left in our cgroup.
pub fn assert_no_leaf(cg_test_pid: i32) {
    let left = cgroup::leaves_of(cg_test_pid);
    assert!(left.is_empty(), "leaves left behind: {left:?}");
}

/// Wait until `due` (when the late marker would have been written, plus a margin)
/// and assert the file never appeared.
pub fn assert_late_never(file: &Path, due: Instant) {
    while Instant::now() < due {
        assert!(
            !file.exists(),
            "late marker {} appeared: a victim outlived the kill",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !file.exists(),
        "late marker {} appeared: a victim outlived the kill",
        file.display()
    );
}

/// When a late marker set `after` seconds past the fixture's start is due, given the
/// fixture announced itself by `ready.seen`; the margin covers the fixture's 0.2 s
/// check interval.
pub fn late_due(ready: &Ready, after: f64) -> Instant {
    ready.seen + Duration::from_secs_f64(after) + Duration::from_millis(700)
}

/// Poll `f` until it returns Some, or fail with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// For victims started with [`Fixture::late_on`]: make the trigger now (after the kill),
/// give any survivor time to notice it (the fixture looks every 0.2 s), and assert the
/// late marker never appeared.
pub fn assert_late_never_after(trigger: &Path, file: &Path) {
    std::fs::write(trigger, "").expect("creating the late trigger");
    assert_late_never(file, Instant::now() + Duration::from_millis(1000));
}
