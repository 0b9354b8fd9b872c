//! Twelve runs at once: some time out, some exit with their own codes. Each run gets
//! its own exit code and leaf, and no run's teardown touches another run's processes.

use std::path::PathBuf;

use crate::util::fixture::sh_wait_file;
use crate::util::*;

struct Slot {
    marker: String,
    ready_dir: PathBuf,
    late: PathBuf,
    late_after: f64,
    expected: i32,
    times_out: bool,
    run: Option<Run>,
}

#[test]
fn twelve_runs_keep_to_themselves() {
    let g = Guard::new("parallel");
    let go = g.path("go");
    let mut slots: Vec<Slot> = (0..12)
        .map(|i| {
            let marker = g.extra_marker(&format!("r{i}"));
            let ready_dir = g.subdir(&format!("ready{i}"));
            let late = g.path(&format!("late{i}"));
            let times_out = i % 3 == 0;
            // The timing-out runs die ~2 s in; the others when the test says go, ~1 s
            // after every run is up.
            let late_after = if times_out { 4.0 } else { 6.0 };
            let fx = Fixture::new(&marker)
                .ready(&ready_dir)
                .late(&late, late_after);
            let (args, expected) = if times_out {
                let mut a: Vec<String> = ["--isolation", "cgroup", "-t", "2s", "-k", "1s", "--"]
                    .map(String::from)
                    .to_vec();
                a.extend(fx.argv(&["daemon"]));
                (a, 124)
            } else {
                let code = 10 + i;
                let script = format!("{} & {}; exit {code}", fx.sh(&["sleep"]), sh_wait_file(&go));
                let a: Vec<String> = ["--isolation", "cgroup", "--", "sh", "-c", &script]
                    .map(String::from)
                    .to_vec();
                (a, code)
            };
            let run = g.start(g.cg_test(&args));
            Slot {
                marker,
                ready_dir,
                late,
                late_after,
                expected,
                times_out,
                run: Some(run),
            }
        })
        .collect();

    let mut readies = Vec::new();
    for s in &slots {
        let ready = wait_ready(&s.ready_dir, if s.times_out { 2 } else { 1 });
        assert_alive_with_marker(&ready.pids, &s.marker);
        readies.push(ready);
    }

    // Let the timing-out runs tear down while the others keep running.
    for s in slots.iter_mut().filter(|s| s.times_out) {
        let out = s.run.take().unwrap().finish();
        out.assert_code(s.expected);
        assert_no_survivors(&s.marker);
        assert_no_leaf(out.pid);
    }
    for (s, ready) in slots.iter().zip(&readies).filter(|(s, _)| !s.times_out) {
        assert_alive_with_marker(&ready.pids, &s.marker);
    }

    std::fs::write(&go, "").unwrap();
    for s in slots.iter_mut().filter(|s| !s.times_out) {
        let out = s.run.take().unwrap().finish();
        out.assert_code(s.expected);
        out.assert_summary("leaked", "1");
        assert_no_survivors(&s.marker);
        assert_no_leaf(out.pid);
    }
    for (s, ready) in slots.iter().zip(&readies) {
        assert_late_never(&s.late, late_due(ready, s.late_after));
    }
}
