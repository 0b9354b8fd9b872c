//! The suite's own safety net fails when it should: a guard that has to clean up after
//! a test fails that test (a warning on stderr would be hidden by libtest), and still
//! leaves nothing behind.

use std::time::Duration;

use crate::util::*;

/// A test that forgets a live marked process fails in the guard's Drop, and the
/// process is gone afterwards.
#[test]
fn guard_that_finds_a_survivor_fails_the_test() {
    let marker;
    let victim;
    let result = {
        let g = Guard::new("hygiene_guard_survivor");
        marker = g.marker().to_string();
        let ready_dir = g.subdir("ready");
        let argv = g.fixture().ready(&ready_dir).argv(&["sleep"]);
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("starting the fixture");
        victim = child.id() as i32;
        wait_ready(&ready_dir, 1);
        assert_alive_with_marker(&[victim], &marker);
        // Reap it once the guard has killed it, so it does not linger as a zombie.
        let reaper = std::thread::spawn(move || child.wait());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(g)));
        let _ = reaper.join();
        result
    };
    let err = result.expect_err("the guard should fail a test that left a marked process");
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        msg.contains("left marked processes"),
        "panic message: {msg:?}"
    );
    wait_for(
        "the forgotten fixture to die",
        Duration::from_secs(5),
        || (!procs::is_alive(victim)).then_some(()),
    );
    assert_no_survivors(&marker);
}

/// Negative control: a guard with nothing to clean up drops quietly.
#[test]
fn guard_with_nothing_left_passes() {
    let g = Guard::new("hygiene_guard_clean");
    let out = g.start(g.cg_test(&["--", "true"])).finish();
    out.assert_code(0);
    assert_no_leaf(out.pid);
    drop(g);
}

/// A liveness count of victims counts fixtures only: a cg-test whose argv carries the
/// marker, running a shell that carries it too, has no victim alive.
#[test]
fn victims_are_fixtures_not_cg_test_or_its_shell() {
    let g = Guard::new("hygiene_victims");
    let ready_dir = g.subdir("ready");
    let stop = g.path("stop");
    let script = format!(
        ": {marker}; {fixture} & {wait}; kill $!; wait",
        marker = g.marker(),
        fixture = g.fixture().ready(&ready_dir).sh(&["sleep"]),
        wait = crate::util::fixture::sh_wait_file(&stop),
    );
    let run = g.start(g.cg_test(&["--", "sh", "-c", &script]));
    let ready = wait_ready(&ready_dir, 1);
    let marked = procs::with_marker(g.marker());
    assert!(
        marked.contains(&run.pid) && marked.len() >= 3,
        "cg-test, its shell and the fixture all carry the marker: {marked:?}"
    );
    assert_eq!(procs::fixtures_with_marker(g.marker()), ready.pids);
    std::fs::write(&stop, "").unwrap();
    let out = run.finish();
    out.assert_code(0);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
}

/// The path check tells the native paths from the compat ones: a native run fails the
/// compat mode's check and the other way round, so a `--compat` that stopped working
/// would fail every CgroupCompat test instead of quietly testing clone3 + cgroup.kill.
#[test]
fn mode_path_check_tells_native_from_compat() {
    let g = Guard::new("hygiene_mode_paths");
    let run_in = |mode: Mode| {
        let mut args = mode.args();
        args.extend(["--", "true"]);
        let out = g.start(g.cg_test(&args)).finish();
        out.assert_code(0);
        assert_no_leaf(out.pid);
        out
    };
    let fails = |mode: Mode, out: &crate::util::run::Finished| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mode.assert_ran(out))).is_err()
    };
    let native = run_in(Mode::Cgroup);
    let compat = run_in(Mode::CgroupCompat);
    let pgroup = run_in(Mode::Pgroup);
    Mode::Cgroup.assert_ran(&native);
    Mode::CgroupCompat.assert_ran(&compat);
    Mode::Pgroup.assert_ran(&pgroup);
    assert!(fails(Mode::CgroupCompat, &native), "{}", native.stderr);
    assert!(fails(Mode::Cgroup, &compat), "{}", compat.stderr);
    assert!(fails(Mode::Cgroup, &pgroup), "{}", pgroup.stderr);
    assert!(fails(Mode::Pgroup, &native), "{}", native.stderr);
    // Only -v shows the paths: a run without it proves nothing and fails the check.
    let quiet = g
        .start(g.cg_test(&["--isolation", "cgroup", "--", "true"]))
        .finish();
    quiet.assert_code(0);
    assert_no_leaf(quiet.pid);
    assert!(fails(Mode::Cgroup, &quiet), "{}", quiet.stderr);
}
