//! Fifty runs at once, every fifth in pgroup mode: each run is up (its daemon
//! announced itself) before any may end, then each exits with its own code, reports
//! exactly its own leaked daemon, kills it, and leaves no leaf. The pgroup runs walk
//! only their own subtree, so fifty of them side by side must never count, stop or kill
//! each other's processes. (What fifty runs cost per run is measured by
//! scripts/bench.sh, never here.)

use std::path::PathBuf;

use crate::util::fixture::sh_wait_file;
use crate::util::*;

const RUNS: usize = 50;

struct Slot {
    marker: String,
    ready_dir: PathBuf,
    late: PathBuf,
    code: i32,
    mode: Mode,
    run: Option<Run>,
}

#[test]
fn fifty_runs_at_once_keep_to_themselves() {
    let g = Guard::new("scale");
    let go = g.path("go");
    let after = g.path("after");
    let mut slots: Vec<Slot> = (0..RUNS)
        .map(|i| {
            let marker = g.extra_marker(&format!("s{i}"));
            let ready_dir = g.subdir(&format!("ready{i}"));
            let late = g.path(&format!("late{i}"));
            let fx = Fixture::new(&marker)
                .ready(&ready_dir)
                .late_on(&late, &after);
            let code = 1 + i as i32;
            let mode = if i % 5 == 0 {
                Mode::Pgroup
            } else {
                Mode::Cgroup
            };
            let script = format!(
                "{} >/dev/null 2>&1; {}; exit {code}",
                fx.sh(&["daemon", "--exit", "0"]),
                sh_wait_file(&go)
            );
            let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
            args.extend(["--", "sh", "-c", &script].map(String::from));
            Slot {
                marker,
                ready_dir,
                late,
                code,
                mode,
                run: Some(g.start(g.cg_test(&args))),
            }
        })
        .collect();

    let readies: Vec<Ready> = slots
        .iter()
        .map(|s| {
            let ready = wait_ready(&s.ready_dir, 1);
            assert_alive_with_marker(&ready.pids, &s.marker);
            ready
        })
        .collect();
    // Every run is up; now they may all end at once.
    std::fs::write(&go, "").unwrap();
    for (s, ready) in slots.iter_mut().zip(&readies) {
        let out = s.run.take().unwrap().finish();
        out.assert_code(s.code);
        s.mode.assert_ran(&out);
        out.assert_summary("leaked", "1");
        assert_eq!(
            out.leaked_pids(),
            ready.pids,
            "run {} reported another run's process; stderr:\n{}",
            s.code,
            out.stderr
        );
        assert_no_survivors(&s.marker);
        assert_no_leaf(out.pid);
    }
    // Every run has ended: arm the late markers. A daemon still alive would write
    // its own within a second.
    std::fs::write(&after, "").unwrap();
    let due = std::time::Instant::now() + std::time::Duration::from_secs(1);
    for s in &slots {
        assert_late_never(&s.late, due);
    }
}
