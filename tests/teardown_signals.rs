//! INT, TERM, HUP and QUIT sent to cg-test mid-run tear the whole run down, escapees
//! included, and cg-test exits 128+N; a second TERM during the grace skips the rest of
//! it.

use std::time::{Duration, Instant};

use crate::util::*;

/// An escaping daemon tree (original + setsid'ed grandchild) and a TERM-ignorer,
/// started from a shell that waits: three processes announce themselves.
fn daemon_tree_and_ignorer(fx: &Fixture) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "{} & {} & wait",
            fx.sh(&["daemon"]),
            fx.sh(&["ignore-term"])
        ),
    ]
}

fn signal_tears_down(mode: Mode, sig: i32, name: &str) {
    let g = Guard::new(&format!("teardown_{}_{name}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["-k", "1s", "--"].map(String::from));
    args.extend(daemon_tree_and_ignorer(&fx));
    let run = g.start(g.cg_test(&args));

    // cg-test handles signals from before it spawns, so once the command's processes
    // exist the signal cannot hit cg-test's default disposition.
    let ready = wait_ready(&ready_dir, 3);
    assert_alive_with_marker(&ready.pids, g.marker());
    run.signal(sig);

    let out = run.finish();
    out.assert_code(128 + sig);
    out.assert_summary("outcome", "interrupted");
    mode.assert_ran(&out);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn sigterm_cgroup() {
    signal_tears_down(Mode::Cgroup, libc::SIGTERM, "term");
}

#[test]
fn sigint_cgroup() {
    signal_tears_down(Mode::Cgroup, libc::SIGINT, "int");
}

#[test]
fn sighup_cgroup() {
    signal_tears_down(Mode::Cgroup, libc::SIGHUP, "hup");
}

#[test]
fn sigquit_cgroup() {
    signal_tears_down(Mode::Cgroup, libc::SIGQUIT, "quit");
}

#[test]
fn sigterm_pgroup() {
    signal_tears_down(Mode::Pgroup, libc::SIGTERM, "term");
}

#[test]
fn sigint_pgroup() {
    signal_tears_down(Mode::Pgroup, libc::SIGINT, "int");
}

#[test]
fn sighup_pgroup() {
    signal_tears_down(Mode::Pgroup, libc::SIGHUP, "hup");
}

#[test]
fn sigquit_pgroup() {
    signal_tears_down(Mode::Pgroup, libc::SIGQUIT, "quit");
}

/// With a 30 s grace and a TERM-ignorer, a second TERM ends the run at once: cg-test
/// says `killing now` and exits long before the grace (or the ignorer's own 25 s life)
/// would have ended it.
#[test]
fn second_sigterm_skips_the_grace() {
    let g = Guard::new("teardown_second_term");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args: Vec<String> = ["--isolation", "cgroup", "-k", "30s", "--"]
        .map(String::from)
        .to_vec();
    args.extend(daemon_tree_and_ignorer(&fx));
    let mut run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 3);
    assert_alive_with_marker(&ready.pids, g.marker());

    let first = Instant::now();
    run.signal(libc::SIGTERM);
    // Two TERMs sent before cg-test reads the first would merge into one pending
    // signal; cg-test's note says it took the first (and starts the ladder), so the
    // second is a separate signal whenever it arrives.
    run.wait_stderr("received SIGTERM", Duration::from_secs(10));
    let ignorer = procs::fixtures_with_marker(g.marker());
    assert!(
        !ignorer.is_empty() && !run.has_exited(),
        "the TERM-ignorer should hold the run in its grace"
    );
    run.signal(libc::SIGTERM);
    // Only this substring is pinned: the rest of the note's wording may change.
    run.wait_stderr("killing now", Duration::from_secs(10));

    let out = run.finish_within(Duration::from_secs(15));
    let took = first.elapsed();
    out.assert_code(143);
    // The grace is 30 s and the ignorer would die by itself at 25 s: ending within 15 s
    // of the first TERM can only be the second TERM's doing.
    assert!(
        took < Duration::from_secs(15),
        "the run took {took:?} after the first TERM; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}
