//! The process-group strategy without a subreaper (the algorithm for systems that have
//! none) finds escapees by the CG_TEST_RUN_ID token in their environment. A daemon that
//! keeps its environment is swept; one that clears it (`scrub-env`) is out of that
//! algorithm's reach, a documented limit this test pins down, while the cgroup
//! strategy and the pgroup strategy with a subreaper still kill it.

use std::time::Duration;

use crate::util::fixture::sh_wait_ready;
use crate::util::*;

/// Run `mode` on a command that starts the fixture in `fixture_mode` (its output sent
/// to /dev/null, so a survivor cannot hold cg-test's stderr open) and exits 0 once the
/// daemon announced itself.
fn daemon_left_behind(
    g: &Guard,
    mode: Mode,
    fx: &Fixture,
    fixture_mode: &[&str],
) -> (crate::util::run::Finished, Ready) {
    let ready_dir = fx.ready.clone().unwrap();
    let script = format!(
        "{} >/dev/null 2>&1; {}; exit 0",
        fx.sh(fixture_mode),
        sh_wait_ready(&ready_dir, 1)
    );
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["--leak-timeout", "2s", "--", "sh", "-c", &script].map(String::from));
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());
    let out = run.finish();
    mode.assert_ran(&out);
    (out, ready)
}

#[test]
fn token_carrying_daemon_is_swept_without_subreaper() {
    let g = Guard::new("sweep_token");
    let late = g.path("late");
    let fx = g.fixture().ready(&g.subdir("ready")).late(&late, LATE_SECS);
    let (out, ready) =
        daemon_left_behind(&g, Mode::PgroupNoSubreaper, &fx, &["daemon", "--exit", "0"]);
    out.assert_code(0);
    out.assert_summary("leaked", "1");
    assert_eq!(out.leaked_pids(), ready.pids);
    assert_no_survivors(g.marker());
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

fn scrub_env_daemon_is_killed(mode: Mode) {
    let g = Guard::new(&format!("sweep_scrub_{}", mode.name()));
    let late = g.path("late");
    let fx = g.fixture().ready(&g.subdir("ready")).late(&late, LATE_SECS);
    let (out, ready) = daemon_left_behind(&g, mode, &fx, &["scrub-env"]);
    out.assert_code(0);
    out.assert_summary("leaked", "1");
    assert_eq!(out.leaked_pids(), ready.pids);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn scrub_env_daemon_is_killed_cgroup() {
    scrub_env_daemon_is_killed(Mode::Cgroup);
}

#[test]
fn scrub_env_daemon_is_killed_pgroup_with_subreaper() {
    scrub_env_daemon_is_killed(Mode::Pgroup);
}

/// The documented limit: with neither a cgroup nor a subreaper, a daemon that left the
/// session, the process tree and its environment cannot be recognised. The test kills
/// it itself.
#[test]
fn scrub_env_daemon_escapes_the_no_subreaper_sweep() {
    let g = Guard::new("sweep_scrub_nosub");
    let fx = g.fixture().ready(&g.subdir("ready"));
    let (out, ready) = daemon_left_behind(&g, Mode::PgroupNoSubreaper, &fx, &["scrub-env"]);
    out.assert_code(0);
    out.assert_summary("leaked", "0");
    let daemon = ready.pids[0];
    assert!(
        procs::is_alive(daemon),
        "the scrub-env daemon was expected to survive the no-subreaper sweep"
    );
    assert_alive_with_marker(&[daemon], g.marker());
    let env = std::fs::read(format!("/proc/{daemon}/environ")).unwrap_or_default();
    assert!(env.is_empty(), "the daemon cleared its environment");
    procs::kill(daemon, libc::SIGKILL);
    wait_for(
        "the surviving daemon to die",
        Duration::from_secs(5),
        || (!procs::is_alive(daemon)).then_some(()),
    );
    assert_no_survivors(g.marker());
}
