//! Issue 8: paths of the core that could leave a run alive or touch a process that is
//! not the run's.
//! - A freeze that gives up (forced with `--compat freeze-gives-up`) must not stop the
//!   kill: every victim is gone, on the timeout path and on the leak path, in every
//!   mode (the pid-by-pid kill of `--compat signal-kill` then pins pids with pidfds).
//! - The pgroup strategy must not take a reused process-group id for the run's: an
//!   unrelated session leader that gets the command's pid after the command was reaped
//!   survives the leak check.
//! - INT and TERM read in one batch still count as two: the second skips the grace.
//! - The library refuses to run in a multi-threaded process.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::fixture::sh_wait_ready;
use crate::util::*;

/// A daemon pair, a TERM-ignorer and a hopper (which announces nothing: its pid moves).
fn victims(fx: &Fixture) -> Vec<String> {
    let mut hopper = fx.clone();
    hopper.ready = None;
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "{} & {} & {} & wait",
            fx.sh(&["daemon"]),
            fx.sh(&["ignore-term"]),
            hopper.sh(&["hopper"])
        ),
    ]
}

fn timeout_without_a_freeze(mode: Mode) {
    let g = Guard::new(&format!("nofreeze_{}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["--compat", "freeze-gives-up", "-t", "1s", "-k", "1s", "--"].map(String::from));
    args.extend(victims(&fx));
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 3);
    assert_alive_with_marker(&ready.pids, g.marker());

    let out = run.finish();
    out.assert_code(124);
    mode.assert_ran(&out);
    assert!(
        out.stderr.contains("freeze-gives-up"),
        "the freeze should have given up; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn timeout_without_a_freeze_cgroup() {
    timeout_without_a_freeze(Mode::Cgroup);
}

#[test]
fn timeout_without_a_freeze_cgroup_compat() {
    timeout_without_a_freeze(Mode::CgroupCompat);
}

#[test]
fn timeout_without_a_freeze_pgroup() {
    timeout_without_a_freeze(Mode::Pgroup);
}

#[test]
fn timeout_without_a_freeze_pgroup_no_subreaper() {
    timeout_without_a_freeze(Mode::PgroupNoSubreaper);
}

/// The leak check freezes to read the leaked processes; when that gives up they are
/// still reported and killed.
fn leak_without_a_freeze(mode: Mode) {
    let g = Guard::new(&format!("nofreeze_leak_{}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["--compat", "freeze-gives-up", "-k", "1s", "--"].map(String::from));
    args.extend([
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "{} & {} & {}; exit 0",
            fx.sh(&["daemon", "--exit", "0"]),
            fx.sh(&["ignore-term"]),
            sh_wait_ready(&ready_dir, 2)
        ),
    ]);
    let out = g.start(g.cg_test(&args)).finish();
    let ready = wait_ready(&ready_dir, 2);
    out.assert_code(0);
    mode.assert_ran(&out);
    let mut leaked = out.leaked_pids();
    leaked.sort();
    assert_eq!(leaked, ready.pids, "stderr:\n{}", out.stderr);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn leak_without_a_freeze_cgroup_compat() {
    leak_without_a_freeze(Mode::CgroupCompat);
}

#[test]
fn leak_without_a_freeze_pgroup() {
    leak_without_a_freeze(Mode::Pgroup);
}

/// Start `argv` as a new session leader whose pid is `want`, using
/// /proc/sys/kernel/ns_last_pid (the next pid is that number + 1). Other processes on
/// the machine may take the pid first, so this retries; a process that got another
/// pid is killed (by its pid) and reaped.
fn spawn_with_pid(want: i32, argv: &[String]) -> Option<std::process::Child> {
    for _ in 0..200 {
        if !procs::exists(std::path::Path::new(&format!("/proc/{want}"))) {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string()).ok()?;
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: setsid is async-signal-safe.
            unsafe {
                c.pre_exec(|| {
                    libc::setsid();
                    Ok(())
                });
            }
            let mut child = c.spawn().ok()?;
            if child.id() as i32 == want {
                return Some(child);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// The command (a process-group leader, group id = its pid) leaves a daemon in its own
/// session and exits; cg-test reaps it and waits out the leak timeout. Meanwhile an
/// unrelated process takes the command's pid and starts a session (so its group id is
/// the command's old group id). The leak check must stop and kill the daemon only.
fn reused_group_is_not_the_run(mode: Mode) {
    let g = Guard::new(&format!("pgid_reuse_{}", mode.name()));
    let ready_dir = g.subdir("ready");
    let fx = g.fixture().ready(&ready_dir);
    let outsider_marker = g.extra_marker("outsider");
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["--leak-timeout", "3s", "--"].map(String::from));
    args.extend([
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "{} >/dev/null 2>&1; {}; exit 0",
            fx.sh(&["daemon", "--exit", "0"]),
            sh_wait_ready(&ready_dir, 1)
        ),
    ]);
    let mut run = g.start(g.cg_test(&args));
    let line = run.wait_stderr("spawned pid ", Duration::from_secs(20));
    let command: i32 = line
        .split("spawned pid ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("the command's pid in the -v line");
    run.wait_stderr("the command exited", Duration::from_secs(20));
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());
    // cg-test reaped the command; wait until its pid is free, then take it.
    wait_for(
        "the command's pid to be free",
        Duration::from_secs(5),
        || (!procs::exists(std::path::Path::new(&format!("/proc/{command}")))).then_some(()),
    );
    let outsider_fx = Fixture::new(&outsider_marker);
    let mut outsider = spawn_with_pid(command, &outsider_fx.argv(&["sleep"]))
        .expect("could not start a process with the command's old pid");
    let outsider_pid = outsider.id() as i32;
    assert_eq!(procs::stat(outsider_pid).map(|s| s.pgrp), Some(command));

    let out = run.finish();
    out.assert_code(0);
    mode.assert_ran(&out);
    assert_eq!(
        out.leaked_pids(),
        ready.pids,
        "only the daemon leaked; stderr:\n{}",
        out.stderr
    );
    let alive = procs::stat(outsider_pid);
    assert!(
        alive
            .as_ref()
            .is_some_and(|s| s.state != 'T' && s.state != 'Z'),
        "the unrelated process in group {command} was stopped or killed: {alive:?}"
    );
    procs::kill(outsider_pid, libc::SIGKILL);
    let _ = outsider.wait();
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
}

#[test]
fn reused_group_is_not_the_run_pgroup() {
    reused_group_is_not_the_run(Mode::Pgroup);
}

#[test]
fn reused_group_is_not_the_run_pgroup_no_subreaper() {
    reused_group_is_not_the_run(Mode::PgroupNoSubreaper);
}

/// INT and TERM that arrive while cg-test cannot read them (it is stopped) come out of
/// the signal source in one batch; the second still ends the grace at once.
#[test]
fn two_teardown_signals_in_one_batch() {
    let g = Guard::new("batch_int_term");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args: Vec<String> = ["--isolation", "cgroup", "-k", "30s", "--"]
        .map(String::from)
        .to_vec();
    args.extend(fx.argv(&["ignore-term"]));
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());

    run.signal(libc::SIGSTOP);
    wait_for("cg-test to stop", Duration::from_secs(10), || {
        procs::stat(run.pid)
            .is_some_and(|s| s.state == 'T')
            .then_some(())
    });
    run.signal(libc::SIGINT);
    run.signal(libc::SIGTERM);
    run.signal(libc::SIGCONT);

    // Far below the 30 s grace.
    let out = run.finish_within(Duration::from_secs(15));
    out.assert_code(130);
    assert!(
        out.stderr.contains("killing now"),
        "the second signal should end the grace; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

/// `cg_test::run` forks and owns the process's signal state: from a multi-threaded
/// process (this test binary) it refuses before doing anything.
#[test]
fn the_library_refuses_a_multithreaded_process() {
    use clap::Parser;
    let args = cg_test::cli::Args::try_parse_from(["cg-test", "--", "true"]).unwrap();
    let cfg = cg_test::Config::from_args(args).unwrap();
    let err = cg_test::run(&cfg).expect_err("run from a multi-threaded process");
    assert!(format!("{err:#}").contains("single-threaded"), "{err:#}");
}
