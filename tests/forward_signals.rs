//! USR1 sent to cg-test reaches the command and starts no teardown: the command
//! handles it and goes on to exit with its own code.

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
