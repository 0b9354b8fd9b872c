//! `--signal` chooses the polite signal of the teardown: a run that times out with
//! `-s RTMIN+3` delivers real-time signal SIGRTMIN+3 to its processes (then kills what
//! is left, as always).
//!
//! The proof is how the victim died: its parent inside the run, a bash that handles the
//! signal and so outlives the polite round, records the victim's exit status, which
//! must be 128 + SIGRTMIN+3. (bash, because dash cannot trap real-time signals; and it
//! polls rather than `wait`s, since a trapped signal makes `wait` itself return 128+N,
//! the very number a child killed by N gives.)

use crate::util::fixture::sh_quote;
use crate::util::*;

fn timeout_delivers_rtmin_3(mode: Mode) {
    let g = Guard::new(&format!("polite_rtmin3_{}", mode.name()));
    // The C library's SIGRTMIN, as cg-test (same target) and bash (same libc) see it.
    let sig = libc::SIGRTMIN() + 3;
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let status = g.path("status");
    let fixture = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let script = format!(
        ": {marker}; trap : {sig}; {victim} & c=$!; \
         while kill -0 $c 2>/dev/null; do sleep 0.05; done; \
         wait $c; echo $? > {status}",
        marker = g.marker(),
        victim = fixture.sh(&["sleep"]),
        status = sh_quote(status.to_str().unwrap()),
    );
    let mut args = mode.args();
    // A long grace: the run must end because the polite signal worked, not by the kill.
    args.extend([
        "-t", "1s", "-k", "20s", "-s", "RTMIN+3", "--", "bash", "-c", &script,
    ]);
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());

    let out = run.finish();
    out.assert_code(124);
    mode.assert_ran(&out);
    assert!(
        out.stderr.contains("SIGRTMIN+3"),
        "cg-test names the signal it sends; stderr:\n{}",
        out.stderr
    );
    let recorded = std::fs::read_to_string(&status).unwrap_or_else(|e| {
        panic!(
            "bash recorded no status ({e}): it did not outlive the polite round; stderr:\n{}",
            out.stderr
        )
    });
    assert_eq!(
        recorded.trim(),
        (128 + sig).to_string(),
        "the victim should have died of SIGRTMIN+3 ({sig})"
    );
    assert!(
        out.elapsed < std::time::Duration::from_secs(15),
        "the run should end when the polite signal emptied it, not after the 20 s grace: \
         {:?}",
        out.elapsed
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn timeout_delivers_rtmin_3_cgroup() {
    timeout_delivers_rtmin_3(Mode::Cgroup);
}

#[test]
fn timeout_delivers_rtmin_3_pgroup() {
    timeout_delivers_rtmin_3(Mode::Pgroup);
}

/// A shell that traps TERM and writes `handled` from its handler, over a sleeping
/// victim; `-t 1s -k GRACE`. Returns whether the handler ran, and stderr.
fn term_handler_ran(g: &Guard, mode: Mode, grace: &str, round: usize) -> (bool, String) {
    let ready_dir = g.subdir(&format!("ready_{round}"));
    let late = g.path(&format!("late_{round}"));
    let handled = g.path(&format!("handled_{round}"));
    let fixture = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let script = format!(
        ": {marker}; trap 'echo ran > {handled}' TERM; {victim} & wait; wait",
        marker = g.marker(),
        victim = fixture.sh(&["sleep"]),
        handled = sh_quote(handled.to_str().unwrap()),
    );
    let mut args = mode.args();
    args.extend(["-t", "1s", "-k", grace, "--", "bash", "-c", &script]);
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());
    let out = run.finish();
    out.assert_code(124);
    mode.assert_ran(&out);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
    (handled.exists(), out.stderr)
}

/// `-k 0`: the run is killed at once, frozen from the deadline to the kill, so no
/// polite signal is sent and no handler runs (with a thaw between, whether it ran was
/// a race); the note says so. The control: with a grace, the same handler runs.
fn zero_grace_kills_at_once(mode: Mode) {
    let g = Guard::new(&format!("polite_zero_grace_{}", mode.name()));
    let (ran, stderr) = term_handler_ran(&g, mode, "3s", 0);
    assert!(
        ran,
        "control: with a 3 s grace the TERM handler should run; stderr:\n{stderr}"
    );
    for round in 1..=3 {
        let (ran, stderr) = term_handler_ran(&g, mode, "0", round);
        assert!(
            !ran,
            "with -k 0 the run is killed still frozen; no TERM handler may run; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains(
                "timed out after 1s; killing every process of the run at once (-k 0: no grace)"
            ),
            "the note names the kill, not a signal; stderr:\n{stderr}"
        );
    }
}

#[test]
fn zero_grace_kills_at_once_cgroup() {
    zero_grace_kills_at_once(Mode::Cgroup);
}

#[test]
fn zero_grace_kills_at_once_pgroup() {
    zero_grace_kills_at_once(Mode::Pgroup);
}
