//! Issue 9: at a timeout cg-test shows what was running, as a tree with the busiest
//! branch first (pid, parent, state, CPU, age, RSS, command line), and the report
//! file lists every process; with `-v` a teardown by signal shows the same table. A
//! 1,000-process run is capped at 40 lines for humans and complete in the report.

use std::path::PathBuf;

use crate::util::report::{self, args_of, f64_of, str_of};
use crate::util::*;

use crate::util::procs;

/// The timeout used by the hang tests, and when their late marker is due (after the
/// timeout plus a kill-after of 1 s, with room to spare).
const HANG_TIMEOUT: &str = "3s";
const HANG_LATE: f64 = 7.0;

/// A script named after the marker that starts three busy loops in the background
/// and then waits in a sleeper: the process a user hunting a hang looks for.
fn hang_script(g: &Guard, fx: &Fixture) -> PathBuf {
    let path = g.path(&format!("hang_{}.sh", g.marker()));
    let spin = fx.sh(&["spin"]);
    std::fs::write(
        &path,
        format!("{spin} &\n{spin} &\n{spin} &\n{}\n", fx.sh(&["sleep"])),
    )
    .expect("writing the hang script");
    path
}

fn seconds(col: &str) -> f64 {
    col.strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a duration under a minute in seconds: {col:?}"))
}

fn timeout_snapshot_names_the_hung_process(mode: Mode) {
    let g = Guard::new(&format!("snapshot_{}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, HANG_LATE);
    let script = hang_script(&g, &fx);
    let report_path = g.path("report.json");
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["-t", HANG_TIMEOUT, "-k", "1s", "--report"].map(String::from));
    args.push(report_path.display().to_string());
    args.extend(["--".into(), "sh".into(), script.display().to_string()]);
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 4);
    assert_alive_with_marker(&ready.pids, g.marker());
    let out = run.finish();
    out.assert_code(124);

    // The report lists the processes with their full command lines; the table cuts
    // them to 200 characters, so roles are told by pid.
    let r = report::read(&report_path);
    report::assert_keys(&r);
    assert_eq!(str_of(&r, "outcome"), "timed_out");
    assert_eq!(r["exit_code"], 124);
    assert_eq!(
        r["command_exit"],
        serde_json::json!({ "signal": libc::SIGTERM })
    );
    let at = r["at_timeout"].as_array().expect("at_timeout is an array");
    assert_eq!(at.len(), 5, "at_timeout: {at:#?}");
    let mode_of = |pid: i32| -> String {
        let p = at
            .iter()
            .find(|p| p["pid"] == pid)
            .unwrap_or_else(|| panic!("pid {pid} is in the report: {at:#?}"));
        args_of(&p["cmdline"]).last().cloned().unwrap_or_default()
    };

    // The table: the script, its three spinners (busiest first), then the sleeper that
    // hung. In cgroup mode the states are read just before the freeze (running,
    // sleeping); the pgroup strategy's stop-the-world shows every member stopped.
    // (The sleeper wakes every 0.2 s, so it may be caught running.)
    let (busy, idle): (char, &[char]) = match mode.kind() {
        "cgroup" => ('R', &['S', 'R']),
        _ => ('T', &['T']),
    };
    let heading = "running at the timeout: 5 process(es), busiest first:";
    assert!(out.stderr.contains(heading), "stderr:\n{}", out.stderr);
    let rows = out.table_after("running at the timeout");
    assert_eq!(rows.len(), 5, "stderr:\n{}", out.stderr);
    let script_name = format!("hang_{}.sh", g.marker());
    assert!(rows[0].command.ends_with(&script_name), "{:?}", rows[0]);
    assert_eq!(
        (rows[0].depth(), rows[0].ppid),
        (0, out.pid),
        "{:?}",
        rows[0]
    );
    for r in &rows[1..4] {
        assert_eq!(mode_of(r.pid), "spin", "the busy ones first: {r:?}");
        assert!(r.command.starts_with(&format!("\\_ {FIXTURE}")), "{r:?}");
        assert_eq!(
            (r.depth(), r.ppid, r.state),
            (1, rows[0].pid, busy),
            "{r:?}"
        );
        assert!(seconds(&r.cpu) > 0.0, "a spinner used CPU: {r:?}");
    }
    let sleeper = &rows[4];
    assert_eq!(
        mode_of(sleeper.pid),
        "sleep",
        "the hung one last: {sleeper:?}"
    );
    assert!(sleeper.command.starts_with(&format!("\\_ {FIXTURE}")));
    assert_eq!((sleeper.depth(), sleeper.ppid), (1, rows[0].pid));
    assert!(idle.contains(&sleeper.state), "{sleeper:?}");
    assert!(seconds(&sleeper.cpu) < 0.1, "{sleeper:?}");
    let mut table_pids: Vec<i32> = rows[1..].iter().map(|r| r.pid).collect();
    table_pids.sort();
    assert_eq!(
        table_pids, ready.pids,
        "the table shows the fixture's processes"
    );

    // The report's figures: the same parents and states, plausible CPU, age, memory.
    let mut spin_cpu = 0.0;
    for p in at {
        let pid = p["pid"].as_i64().unwrap() as i32;
        let row = rows
            .iter()
            .find(|r| r.pid == pid)
            .expect("same pids as the table");
        assert_eq!(p["ppid"].as_i64().unwrap() as i32, row.ppid, "{p}");
        assert_eq!(str_of(p, "state"), row.state.to_string(), "{p}");
        let cmdline = args_of(&p["cmdline"]);
        assert!(cmdline.iter().any(|a| a.contains(g.marker())), "{p}");
        let (cpu, age) = (f64_of(p, "cpu_seconds"), f64_of(p, "age_seconds"));
        // Every process started before the fixture was ready and lived to the
        // deadline; a single-threaded process cannot use more CPU than it lived.
        assert!((1.0..30.0).contains(&age), "age: {p}");
        assert!(cpu <= age + 0.05, "cpu within age: {p}");
        let rss = p["rss_bytes"].as_u64().expect("rss_bytes");
        assert!((64 << 10..256 << 20).contains(&rss), "rss: {p}");
        if cmdline.last().map(String::as_str) == Some("spin") {
            assert!(cpu > 0.0, "a spinner used CPU: {p}");
            spin_cpu += cpu;
        } else {
            assert!(cpu < 0.1, "the script and the sleeper hardly ran: {p}");
        }
    }
    // Three spinners on a shared 2-core machine for ~3 s: well above 0.3 s together.
    assert!(spin_cpu > 0.3, "spinners' CPU {spin_cpu}");
    let total = f64_of(&r, "cpu_user_seconds") + f64_of(&r, "cpu_system_seconds");
    assert!(
        total + 0.05 >= spin_cpu,
        "the run's CPU ({total}) covers its processes' ({spin_cpu})"
    );

    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, HANG_LATE));
}

#[test]
fn timeout_snapshot_names_the_hung_process_cgroup() {
    timeout_snapshot_names_the_hung_process(Mode::Cgroup);
}

#[test]
fn timeout_snapshot_names_the_hung_process_pgroup() {
    timeout_snapshot_names_the_hung_process(Mode::Pgroup);
}

/// A teardown started by SIGTERM shows the table with `-v` only; the report's
/// `at_timeout` stays empty (it is not a timeout).
fn signal_snapshot(verbose: bool) {
    let g = Guard::new(if verbose {
        "snapshot_signal_v"
    } else {
        "snapshot_signal"
    });
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let report_path = g.path("report.json");
    let mut args = vec!["--report".to_string(), report_path.display().to_string()];
    if verbose {
        args.push("-v".into());
    }
    args.extend(["--", "sh", "-c"].map(String::from));
    args.push(format!("{} & {}", fx.sh(&["spin"]), fx.sh(&["sleep"])));
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 2);
    assert_alive_with_marker(&ready.pids, g.marker());
    let spinner = *ready
        .pids
        .iter()
        .find(|&&p| procs::cmdline(p).is_some_and(|c| c.trim_end().ends_with(" spin")))
        .expect("one of the two is the spinner");
    run.signal(libc::SIGTERM);
    let out = run.finish();
    out.assert_code(128 + libc::SIGTERM);
    let rows = out.table_after("running when SIGTERM arrived");
    if verbose {
        assert_eq!(rows.len(), 3, "stderr:\n{}", out.stderr);
        assert!(rows[0].command.starts_with("sh -c "), "{:?}", rows[0]);
        assert_eq!(
            (rows[1].pid, rows[1].state),
            (spinner, 'R'),
            "{:?}",
            rows[1]
        );
        assert!(
            matches!(rows[2].state, 'S' | 'R'),
            "the sleeper: {:?}",
            rows[2]
        );
        let mut pids = vec![rows[1].pid, rows[2].pid];
        pids.sort();
        assert_eq!(pids, ready.pids);
    } else {
        assert!(
            rows.is_empty(),
            "no table without -v; stderr:\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains("running when"), "{}", out.stderr);
    }
    let r = report::read(&report_path);
    assert_eq!(str_of(&r, "outcome"), "interrupted");
    assert_eq!(r["exit_code"], 128 + libc::SIGTERM);
    assert_eq!(r["at_timeout"], serde_json::json!([]));
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn signal_teardown_shows_the_table_with_verbose() {
    signal_snapshot(true);
}

#[test]
fn signal_teardown_shows_no_table_without_verbose() {
    signal_snapshot(false);
}

/// 1,001 processes at the timeout: the table shows the 40 busiest and counts the
/// rest; the report lists all of them, each with its command line.
#[test]
fn thousand_processes_are_capped_for_humans_and_complete_in_the_report() {
    const PARENTS: usize = 5;
    const CHILDREN: usize = 199;
    const TOTAL: usize = 1 + PARENTS * (1 + CHILDREN);
    const LATE: f64 = 12.0;
    let g = Guard::new("snapshot_thousand");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE);
    let report_path = g.path("report.json");
    let sleepers = fx.sh(&["sleepers", &CHILDREN.to_string()]);
    let script = format!("for i in 1 2 3 4 5; do {sleepers} & done; wait");
    // The deadline leaves time to start 1,000 processes on a busy machine; the test
    // checks they all announced themselves before it.
    let run = g.start(g.cg_test(&[
        "-t",
        "8s",
        "-k",
        "1s",
        "--report",
        report_path.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &script,
    ]));
    // All but the script announce themselves (before the deadline, or the kill
    // would stop them short of it).
    let ready = wait_ready(&ready_dir, TOTAL - 1);
    let out = run.finish();
    out.assert_code(124);
    let heading = format!("running at the timeout: {TOTAL} process(es), busiest first:");
    assert!(out.stderr.contains(&heading), "stderr:\n{}", out.stderr);
    let rows = out.table_after("running at the timeout");
    assert_eq!(rows.len(), 40, "the table is capped");
    assert_eq!(
        out.line_after_table("running at the timeout").as_deref(),
        Some(
            format!(
                "… and {} more (the --report file lists every one)",
                TOTAL - 40
            )
            .as_str()
        )
    );
    assert!(
        out.stderr.lines().count() < 60,
        "a screenful, not a thousand lines: {} lines",
        out.stderr.lines().count()
    );

    let r = report::read(&report_path);
    let at = r["at_timeout"].as_array().expect("at_timeout");
    assert_eq!(at.len(), TOTAL, "the report is complete");
    let mut pids: Vec<i32> = at
        .iter()
        .map(|p| p["pid"].as_i64().unwrap() as i32)
        .collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), TOTAL, "each process once");
    for pid in &ready.pids {
        assert!(
            pids.binary_search(pid).is_ok(),
            "ready pid {pid} is in the report"
        );
    }
    for p in at {
        let cmdline = args_of(&p["cmdline"]).join(" ");
        assert!(cmdline.contains(g.marker()), "{p}");
    }
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE));
}
