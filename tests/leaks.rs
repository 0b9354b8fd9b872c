//! A command that exits at once and leaves daemons behind: cg-test reports each leaked
//! process (pid and command line) and their count, kills them, and exits with the
//! command's code; `--fail-on-leak` turns a successful command's leak into 123, while a
//! failing command keeps its own code.

use crate::util::fixture::sh_wait_ready;
use crate::util::*;

/// A command that starts two daemons, waits until they announced themselves (so the
/// leak is certain, not a race with `--leak-timeout`), then exits with `code`.
fn two_daemons_then_exit(fx: &Fixture, ready_dir: &std::path::Path, code: i32) -> Vec<String> {
    let d = fx.sh(&["daemon", "--exit", "0"]);
    vec![
        "sh".into(),
        "-c".into(),
        format!("{d}; {d}; {}; exit {code}", sh_wait_ready(ready_dir, 2)),
    ]
}

fn leak_is_reported_and_killed(mode: Mode) {
    let g = Guard::new(&format!("leak_{}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);

    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    // A long leak timeout so the test can see the daemons alive before the kill.
    args.extend(["--leak-timeout", "2s", "--"].map(String::from));
    args.extend(two_daemons_then_exit(&fx, &ready_dir, 0));
    let run = g.start(g.cg_test(&args));

    let ready = wait_ready(&ready_dir, 2);
    assert_alive_with_marker(&ready.pids, g.marker());

    let out = run.finish();
    out.assert_code(0);
    mode.assert_ran(&out);
    out.assert_summary("leaked", "2");
    let mut leaked = out.leaked_pids();
    leaked.sort();
    assert_eq!(
        leaked, ready.pids,
        "leak table rows; stderr:\n{}",
        out.stderr
    );
    // Each row names the process and says who its parent is and how old it is: the
    // double-forked daemons were reparented to cg-test, the run's subreaper, and
    // lived for the 2 s leak timeout at least.
    for row in out.table_after("outlived the command in") {
        // The table cuts a long command line with `…`; how much of the fixture's
        // arguments fit depends on where the checkout lives (CI's path is longer), so
        // "daemon" is required only when the line was not cut.
        assert!(
            row.command.contains(g.marker())
                && (row.command.contains("daemon") || row.command.ends_with('…')),
            "a leak row should name the command line: {row:?}"
        );
        assert_eq!(row.ppid, out.pid, "parent of {row:?}");
        assert_eq!(row.depth(), 0, "siblings under cg-test: {row:?}");
        // Read just before the freeze in cgroup mode: sleeping (the fixture wakes
        // every 0.2 s, so it may be caught running); stopped by the pgroup freeze.
        let states: &[char] = if mode.kind() == "cgroup" {
            &['S', 'R']
        } else {
            &['T']
        };
        assert!(states.contains(&row.state), "a sleeping daemon: {row:?}");
        let age: f64 = row
            .age
            .trim_end_matches('s')
            .parse()
            .expect("age in seconds");
        assert!((1.5..20.0).contains(&age), "age of {row:?}");
    }
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("cg-test: 2 process(es) outlived the command in")),
        "no leak count line; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn leak_is_reported_and_killed_cgroup() {
    leak_is_reported_and_killed(Mode::Cgroup);
}

#[test]
fn leak_is_reported_and_killed_pgroup() {
    leak_is_reported_and_killed(Mode::Pgroup);
}

/// Run the two-daemon command with `extra` flags; check the code, the leak report and
/// the cleanup (with the default 100 ms leak timeout the daemons' liveness is proven by
/// the leak lines: cg-test found them in the run before killing them).
fn leak_with_flags(name: &str, extra: &[&str], command_code: i32, expected: i32) {
    let g = Guard::new(name);
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.push("--".into());
    args.extend(two_daemons_then_exit(&fx, &ready_dir, command_code));
    let run = g.start(g.cg_test(&args));
    let out = run.finish();
    let ready = wait_ready(&ready_dir, 2);
    out.assert_code(expected);
    let mut leaked = out.leaked_pids();
    leaked.sort();
    assert_eq!(
        leaked, ready.pids,
        "leak table rows; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    // The daemons started before the command exited, so before `finish` returned.
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn fail_on_leak_turns_success_into_123() {
    leak_with_flags(
        "leak_fail_on_leak",
        &["--isolation", "cgroup", "--fail-on-leak"],
        0,
        123,
    );
}

#[test]
fn fail_on_leak_pgroup() {
    leak_with_flags(
        "leak_fail_on_leak_pg",
        &["--isolation", "pgroup", "--fail-on-leak"],
        0,
        123,
    );
}

#[test]
fn failing_command_keeps_its_code_despite_a_leak() {
    leak_with_flags(
        "leak_failing_command",
        &["--isolation", "cgroup", "--fail-on-leak"],
        3,
        3,
    );
}
