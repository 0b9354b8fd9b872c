//! If cg-test itself is SIGKILLed (no chance to clean up), its direct child still dies
//! by itself: the child asked for SIGKILL on its parent's death before exec. Checked
//! without the watchdog (`--compat no-watchdog`), which would otherwise kill the child
//! too (tests/supervisor_death.rs covers it); what the killed run left (its leaf) is
//! then the test's to clean up.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use crate::util::*;

fn child_dies_with_cg_test(mode: Mode) {
    let g = Guard::new(&format!("pdeathsig_{}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["--compat", "no-watchdog", "--"].map(String::from));
    args.extend(fx.argv(&["sleep"]));
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 1);
    let child = ready.pids[0];
    assert_alive_with_marker(&[child], g.marker());
    assert_eq!(
        procs::stat(child).unwrap().ppid,
        run.pid,
        "the fixture should be cg-test's direct child"
    );

    run.signal(libc::SIGKILL);
    let out = run.finish();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL));
    mode.assert_ran(&out);
    wait_for(
        "cg-test's child to die with it",
        Duration::from_secs(10),
        || (!procs::is_alive(child)).then_some(()),
    );
    assert_no_survivors(g.marker());
    assert_late_never(&late, late_due(&ready, LATE_SECS));

    // cg-test had no chance to remove its leaf; this test's cg-test made it, so the
    // test may remove it.
    for leaf in cgroup::leaves_of(out.pid) {
        cgroup::kill_and_remove(&leaf);
    }
    assert_no_leaf(out.pid);
}

#[test]
fn child_dies_with_cg_test_cgroup() {
    child_dies_with_cg_test(Mode::Cgroup);
}

#[test]
fn child_dies_with_cg_test_pgroup() {
    child_dies_with_cg_test(Mode::Pgroup);
}
