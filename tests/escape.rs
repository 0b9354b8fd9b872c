//! Timeouts against processes built to escape: every process the command started is
//! gone when cg-test returns 124, whatever it did to get away, in every isolation mode.
//!
//! One table-driven set: `escape_tests!` expands to one `#[test]` per mode × scenario,
//! so cargo runs them in parallel. Each test checks the victims were alive before the
//! timeout, that nothing carrying its marker survives, that no leaf is left, and that
//! the late marker (due two seconds after the kill) never appears.
//!
//! Negative controls at the end show the scenarios really escape without cg-test.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// What the command does to escape.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    /// Double fork + setsid; both the original and the daemon stay.
    Daemon,
    /// Ignores TERM, INT, HUP and QUIT: only the kill after the grace ends it.
    IgnoreTerm,
    /// A background process that moves to its own process group and blocks every
    /// blockable signal.
    BlockAll,
    /// Forks into a fresh session every 5 ms, the old generation exiting: its pid
    /// keeps moving.
    Hopper,
    /// 40 sleepers spread over several sessions and process groups.
    Sleepers,
}

struct Setup {
    command: Vec<String>,
    /// cg-test's `--timeout`, in seconds.
    timeout: f64,
    /// Processes that announce themselves in the ready directory.
    ready: usize,
    /// Whether the announced pids stay the same until the kill (a hopper's do not).
    stable_pids: bool,
}

impl Scenario {
    fn setup(self, fx: &Fixture) -> Setup {
        let sh = |script: String| vec!["sh".to_string(), "-c".to_string(), script];
        match self {
            Scenario::Daemon => Setup {
                command: fx.argv(&["daemon"]),
                timeout: 1.0,
                ready: 2,
                stable_pids: true,
            },
            Scenario::IgnoreTerm => Setup {
                command: fx.argv(&["ignore-term"]),
                timeout: 1.0,
                ready: 1,
                stable_pids: true,
            },
            Scenario::BlockAll => Setup {
                command: sh(format!("{} & wait", fx.sh(&["block-all"]))),
                timeout: 1.0,
                ready: 1,
                stable_pids: true,
            },
            Scenario::Hopper => Setup {
                command: sh(format!(
                    "{} & exec {}",
                    fx.sh(&["hopper"]),
                    fx.sh(&["sleep"])
                )),
                // Its pids move, so it is seen alive by scanning /proc, which must
                // happen before the timeout kills it: a window of 1 s was too short on a
                // loaded machine once cg-test itself no longer counted as a victim.
                timeout: HOPPER_TIMEOUT,
                ready: 2,
                stable_pids: false,
            },
            Scenario::Sleepers => Setup {
                command: fx.argv(&["sleepers", "40"]),
                timeout: 1.0,
                ready: 41,
                stable_pids: true,
            },
        }
    }
}

/// The hopper's timeout, in seconds (see `Setup::timeout`).
const HOPPER_TIMEOUT: f64 = 4.0;

fn timeout_kills_everything(mode: Mode, scenario: Scenario) {
    let g = Guard::new(&format!("escape_{}_{scenario:?}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    // The late marker is due a little after the end of the `-t T -k 1s` ladder:
    // LATE_SECS fits T = 1 s, a longer timeout moves it by the difference.
    let late_after = LATE_SECS + (scenario.setup(&g.fixture()).timeout - 1.0);
    let fx = g.fixture().ready(&ready_dir).late(&late, late_after);
    let setup = scenario.setup(&fx);

    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    let timeout = format!("{}s", setup.timeout);
    args.extend(["-t", &timeout, "-k", "1s", "--"].map(String::from));
    args.extend(setup.command);
    let run = g.start(g.cg_test(&args));

    let ready = wait_ready(&ready_dir, setup.ready);
    if setup.stable_pids {
        assert_alive_with_marker(&ready.pids, g.marker());
    } else {
        // One /proc scan can miss a process that changes pid every 5 ms; a few cannot.
        // Only fixtures count: cg-test's own argv (and the shell's, before it execs)
        // carries the marker too, and must not stand in for a victim.
        wait_for(
            "the hopper and the sleeper to be seen alive",
            Duration::from_secs(5),
            || (procs::fixtures_with_marker(g.marker()).len() >= 2).then_some(()),
        );
    }

    let out = run.finish();
    out.assert_code(124);
    out.assert_summary("isolation", mode.kind());
    out.assert_summary("outcome", "timeout");
    mode.assert_ran(&out);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, late_after));
}

macro_rules! escape_tests {
    ($($module:ident => $mode:expr),* $(,)?) => {$(
        mod $module {
            use super::*;
            #[test] fn daemon() { timeout_kills_everything($mode, Scenario::Daemon) }
            #[test] fn ignore_term() { timeout_kills_everything($mode, Scenario::IgnoreTerm) }
            #[test] fn block_all() { timeout_kills_everything($mode, Scenario::BlockAll) }
            #[test] fn hopper() { timeout_kills_everything($mode, Scenario::Hopper) }
            #[test] fn sleepers() { timeout_kills_everything($mode, Scenario::Sleepers) }
        }
    )*};
}

escape_tests! {
    cgroup => Mode::Cgroup,
    cgroup_compat => Mode::CgroupCompat,
    pgroup => Mode::Pgroup,
    pgroup_no_subreaper => Mode::PgroupNoSubreaper,
}

/// Negative control: without cg-test the daemon outlives the process that started it,
/// in a session of its own.
#[test]
fn control_daemon_outlives_its_parent() {
    let g = Guard::new("escape_control_daemon");
    let ready_dir = g.subdir("ready");
    let fx = g.fixture().ready(&ready_dir);
    let argv = fx.argv(&["daemon", "--exit", "0"]);
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running the daemon fixture");
    assert!(status.success());
    let ready = wait_ready(&ready_dir, 1);
    let daemon = ready.pids[0];
    assert_alive_with_marker(&[daemon], g.marker());
    let own_session = procs::stat(std::process::id() as i32).unwrap().session;
    assert_ne!(
        procs::stat(daemon).unwrap().session,
        own_session,
        "the daemon should be in a session of its own"
    );
    procs::kill(daemon, libc::SIGKILL);
    wait_for("the daemon to die", Duration::from_secs(5), || {
        (!procs::is_alive(daemon)).then_some(())
    });
}

/// Negative control: GNU timeout (process-group kill) times the same daemon out but
/// leaves the escaped grandchild running.
#[test]
fn control_plain_timeout_leaves_the_daemon() {
    let g = Guard::new("escape_control_timeout");
    let ready_dir = g.subdir("ready");
    let fx = g.fixture().ready(&ready_dir);
    let status = Command::new("timeout")
        .args(["-k", "1", "1"])
        .args(fx.argv(&["daemon"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running GNU timeout");
    assert_eq!(status.code(), Some(124));
    let ready = wait_ready(&ready_dir, 2);
    let survivors = procs::with_marker(g.marker());
    assert_eq!(
        survivors.len(),
        1,
        "the escaped daemon (one of {:?}) should survive GNU timeout",
        ready.pids
    );
    procs::kill(survivors[0], libc::SIGKILL);
    wait_for("the daemon to die", Duration::from_secs(5), || {
        (!procs::is_alive(survivors[0])).then_some(())
    });
}
