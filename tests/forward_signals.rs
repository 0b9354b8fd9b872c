//! Signals that do not end the run. USR1 sent to cg-test reaches the command and
//! starts no teardown: the command handles it and goes on to exit with its own code.
//! A teardown signal that was ignored when cg-test started (as `nohup` ignores HUP)
//! stays ignored: it neither ends the run nor reaches the command. WINCH reaches the
//! command's whole process group.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::util::fixture::{sh_quote, sh_wait_file};
use crate::util::*;

fn usr1_reaches_the_command(mode: Mode) {
    let g = Guard::new(&format!("forward_usr1_{}", mode.name()));
    let got = g.path("got");
    let armed = g.path("armed");
    let stop = g.path("stop");
    // The marker in a no-op keeps the shell findable by the guard.
    let script = format!(
        ": {marker}; trap 'echo got > {got}' USR1; touch {armed}; {wait}; exit 3",
        marker = g.marker(),
        got = sh_quote(got.to_str().unwrap()),
        armed = sh_quote(armed.to_str().unwrap()),
        wait = sh_wait_file(&stop),
    );
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["--", "sh", "-c", &script].map(String::from));
    let mut run = g.start(g.cg_test(&args));

    wait_for("the trap to be set", Duration::from_secs(10), || {
        armed.exists().then_some(())
    });
    run.signal(libc::SIGUSR1);
    wait_for(
        "the command to handle USR1",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&got)
                .ok()
                .filter(|s| s.trim() == "got")
        },
    );
    assert!(!run.has_exited(), "USR1 must not end the run");
    std::fs::write(&stop, "").unwrap();

    let out = run.finish();
    out.assert_code(3);
    mode.assert_ran(&out);
    assert!(
        !out.stderr.contains("received SIGUSR1"),
        "USR1 is not a teardown signal; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
}

#[test]
fn usr1_reaches_the_command_cgroup() {
    usr1_reaches_the_command(Mode::Cgroup);
}

#[test]
fn usr1_reaches_the_command_pgroup() {
    usr1_reaches_the_command(Mode::Pgroup);
}

#[test]
fn hup_ignored_at_start_stays_ignored() {
    let g = Guard::new("forward_nohup");
    let armed = g.path("armed");
    let stop = g.path("stop");
    let script = format!(
        ": {marker}; touch {armed}; {wait}; exit 4",
        marker = g.marker(),
        armed = sh_quote(armed.to_str().unwrap()),
        wait = sh_wait_file(&stop),
    );
    let mut cmd = g.cg_test(&["--isolation", "cgroup", "--", "sh", "-c", &script]);
    // SAFETY: signal is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut run = g.start(cmd);
    wait_for("the command to start", Duration::from_secs(10), || {
        armed.exists().then_some(())
    });
    run.signal(libc::SIGHUP);
    // Nothing to wait for when nothing happens: give a HUP that was wrongly handled
    // time to show, then check the run is still going.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!run.has_exited(), "an ignored HUP must not end the run");
    std::fs::write(&stop, "").unwrap();
    let out = run.finish();
    out.assert_code(4);
    assert!(!out.stderr.contains("SIGHUP"), "stderr:\n{}", out.stderr);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
}

/// WINCH goes to the command's whole process group, as a terminal sends it: a
/// background child of the command (same group, not the command itself) sees it.
#[test]
fn winch_reaches_the_command_group() {
    let g = Guard::new("forward_winch");
    let got = g.path("got");
    let armed = g.path("armed");
    let stop = g.path("stop");
    let child = format!(
        ": {marker}; trap 'echo winch > {got}' WINCH; touch {armed}; {wait}",
        marker = g.marker(),
        got = sh_quote(got.to_str().unwrap()),
        armed = sh_quote(armed.to_str().unwrap()),
        wait = sh_wait_file(&stop),
    );
    let script = format!(
        ": {marker}; sh -c {child} & wait; exit 6",
        marker = g.marker(),
        child = sh_quote(&child),
    );
    let mut run = g.start(g.cg_test(&["--isolation", "cgroup", "--", "sh", "-c", &script]));
    wait_for(
        "the child's trap to be set",
        Duration::from_secs(10),
        || armed.exists().then_some(()),
    );
    run.signal(libc::SIGWINCH);
    wait_for("the group to get WINCH", Duration::from_secs(10), || {
        std::fs::read_to_string(&got)
            .ok()
            .filter(|s| s.trim() == "winch")
    });
    assert!(!run.has_exited(), "WINCH must not end the run");
    std::fs::write(&stop, "").unwrap();
    let out = run.finish();
    out.assert_code(6);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
}
