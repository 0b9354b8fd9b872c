//! While the command runs, cg-test sleeps in poll: no CPU time at all and only a
//! handful of context switches over two seconds. (CPU ticks, not wall time: the
//! only timing this suite measures, because the spec requires an idle supervisor.)

use std::time::Duration;

use crate::util::*;

#[test]
fn supervisor_is_idle_while_the_command_runs() {
    let g = Guard::new("idle");
    let ready_dir = g.subdir("ready");
    let mut fx = g.fixture().ready(&ready_dir);
    fx.life = 3.0;
    let mut args = vec!["--isolation".to_string(), "cgroup".into(), "--".into()];
    args.extend(fx.argv(&["sleep"]));
    let run = g.start(g.cg_test(&args));
    wait_ready(&ready_dir, 1);

    let wake = run.started + Duration::from_millis(500);
    std::thread::sleep(wake.saturating_duration_since(std::time::Instant::now()));
    let before = procs::stat(run.pid).expect("cg-test's stat");
    let ctx_before = procs::context_switches(run.pid).expect("cg-test's status");
    std::thread::sleep(Duration::from_secs(2));
    let after = procs::stat(run.pid).expect("cg-test still running");
    let ctx_after = procs::context_switches(run.pid).expect("cg-test's status");

    let out = run.finish();
    out.assert_code(0);
    assert_eq!(
        after.utime + after.stime,
        before.utime + before.stime,
        "cg-test used CPU while idle: {before:?} -> {after:?}"
    );
    assert!(
        ctx_after - ctx_before < 10,
        "cg-test woke up {} times while idle",
        ctx_after - ctx_before
    );
    assert_no_leaf(out.pid);
}
