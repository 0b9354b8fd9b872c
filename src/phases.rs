//! Teardown phase timings, for `scripts/bench.sh` only: with `CG_TEST_PHASE_TIMES=1`
//! in its environment, cg-test prints one line at the end,
//! `cg-test: phases: snapshot=… polite=… grace=… freeze=… kill=… reap=… rmdir=…`
//! (milliseconds, each phase as often as it ran, summed; a run that needed no teardown
//! shows `rmdir` alone), so the benchmark can set each phase of a teardown against the
//! kernel's own floor (examples/teardown_floor.rs). Off, a mark is one relaxed atomic
//! load.
//!
//! Phases, in ladder order: `snapshot` (the "what was running" rows read around the
//! first freeze), `polite` (freeze, read the members, send the polite signal and
//! SIGCONT to each, thaw), `grace`, `freeze` (the second freeze, until `frozen 1`),
//! `kill` (`cgroup.kill` or the pid-by-pid kill, until `populated 0`), `reap` (waiting
//! for and reaping the dead), `rmdir` (removing the leaf).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 0: not decided yet, 1: off, 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);
/// When the current phase started, and each phase's total so far.
struct Times {
    since: Option<Instant>,
    totals: Vec<(&'static str, Duration)>,
}
static TIMES: Mutex<Times> = Mutex::new(Times {
    since: None,
    totals: Vec::new(),
});

fn on() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var_os("CG_TEST_PHASE_TIMES").is_some_and(|v| v == "1");
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        s => s == 2,
    }
}

/// A phase starts now (the previous one, if any, is not counted).
pub fn start() {
    if on() {
        if let Ok(mut t) = TIMES.lock() {
            t.since = Some(Instant::now());
        }
    }
}

/// The phase `name` ends now; the next starts.
pub fn end(name: &'static str) {
    if !on() {
        return;
    }
    if let Ok(mut t) = TIMES.lock() {
        let now = Instant::now();
        if let Some(since) = t.since.replace(now) {
            match t.totals.iter_mut().find(|(n, _)| *n == name) {
                Some((_, d)) => *d += now - since,
                None => t.totals.push((name, now - since)),
            }
        }
    }
}

/// Print the line (only when asked for, and only if a teardown ran).
pub fn report() {
    if !on() {
        return;
    }
    let Ok(t) = TIMES.lock() else { return };
    if t.totals.is_empty() {
        return;
    }
    let parts: Vec<String> = t
        .totals
        .iter()
        .map(|(n, d)| format!("{n}={:.3}", d.as_secs_f64() * 1000.0))
        .collect();
    crate::report::line(format_args!("phases: {}", parts.join(" ")));
}
