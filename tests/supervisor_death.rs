//! Issue 7: nothing outlives the run even when cg-test itself is killed.
//!
//! SIGKILL of cg-test at each moment of a run (while the command runs, during the
//! grace, between the final freeze and the kill, during the leak wait), and SIGKILL of
//! the whole process group of the shell that runs cg-test: the watchdog kills every
//! process of the run within 1 s and removes the leaf within 2 s. `--die-with-parent`
//! turns the death of cg-test's parent into a full ladder. The victims are an escaped
//! setsid daemon, a TERM-ignorer and a session hopper; each test checks they were alive
//! before, that none is alive 1 s after, that none writes its late marker, and that no
//! leaf is left. The victims must live until the kill, whose moment load can delay, so
//! their late marker is armed by a trigger the test makes after the kill
//! ([`Fixture::late_on`]), not by a time.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// Every process of the run must be gone this soon after cg-test was killed.
pub(crate) const GONE_WITHIN: Duration = Duration::from_secs(1);
/// ... and the leaf removed this soon.
const LEAF_GONE_WITHIN: Duration = Duration::from_secs(2);

/// When cg-test is killed.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// While the command runs.
    Running,
    /// During the grace after the polite signal (WINCH, which nobody acts on, so every
    /// victim is still alive).
    Grace,
    /// Between the final freeze and the kill (`--compat stop-before-kill` makes cg-test
    /// stop itself there).
    Kill,
    /// While cg-test waits out `--leak-timeout` after the command exited.
    LeakWait,
}

/// A shell running the three victims: a double-forked setsid daemon (two processes
/// announce), a TERM-ignorer (announces) and a session hopper (whose pid keeps moving,
/// so it announces nothing; tests find it by its marker). With `exit_after`, the shell
/// exits once the three announced themselves (the leak case); otherwise it waits.
pub(crate) fn victims(fx: &Fixture, ready_dir: &Path, exit_after: bool) -> Vec<String> {
    let mut hopper = fx.clone();
    hopper.ready = None;
    let start = format!(
        "{} & {} & {} &",
        fx.sh(&["daemon"]),
        fx.sh(&["ignore-term"]),
        hopper.sh(&["hopper"])
    );
    let end = if exit_after {
        format!("{}; exit 0", fixture::sh_wait_ready(ready_dir, 3))
    } else {
        "wait".to_string()
    };
    vec!["sh".into(), "-c".into(), format!("{start} {end}")]
}

pub(crate) fn assert_hopper_alive(marker: &str) {
    wait_for(
        "the hopper to be seen alive",
        Duration::from_secs(5),
        || {
            procs::with_marker(marker)
                .into_iter()
                .any(|p| procs::cmdline(p).is_some_and(|c| c.ends_with(" hopper ")))
                .then_some(())
        },
    );
}

/// The victims (and cg-test's watchdog, whose argv is cg-test's and so carries the
/// marker) must all be gone within [`GONE_WITHIN`] of `killed_at`, and stay gone.
pub(crate) fn assert_all_gone_soon(marker: &str, killed_at: Instant) {
    loop {
        // Three empty scans in a row: one scan can miss a hopper mid-fork.
        if (0..3).all(|_| procs::with_marker(marker).is_empty()) {
            break;
        }
        let left = procs::with_marker(marker);
        assert!(
            killed_at.elapsed() < GONE_WITHIN,
            "processes of the run still alive {GONE_WITHIN:?} after cg-test was killed: {:?}",
            left.iter()
                .map(|&p| format!("{p}: {}", procs::cmdline(p).unwrap_or_default()))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_no_survivors(marker);
}

/// No leaf of the killed cg-test in `cg` (the cgroup it ran in, a cgroup of the test's
/// own, so only the watchdog can have collected it) within [`LEAF_GONE_WITHIN`] of
/// `killed_at`.
fn assert_leaf_gone_soon(cg: &TestCgroup, killed_at: Instant) {
    while !cg.leaves().is_empty() {
        assert!(
            killed_at.elapsed() < LEAF_GONE_WITHIN,
            "the leaf of the killed cg-test is still there {LEAF_GONE_WITHIN:?} after the \
             kill: {:?}",
            cg.leaves()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait until the process is stopped (state T).
fn wait_stopped(pid: i32) {
    wait_for("cg-test to stop itself", Duration::from_secs(20), || {
        procs::stat(pid)
            .is_some_and(|s| s.state == 'T')
            .then_some(())
    });
}

fn sigkill_of_cg_test(mode: Mode, moment: Moment) {
    let g = Guard::new(&format!("death_{}_{moment:?}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let trigger = g.path("late-trigger");
    let fx = g.fixture().ready(&ready_dir).late_on(&late, &trigger);

    // Mode::args has -v: the steps show the moment of the kill.
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(
        match moment {
            Moment::Running => vec![],
            Moment::Grace => vec!["-t", "0.5s", "-s", "WINCH", "-k", "30s"],
            Moment::Kill => vec![
                "-t",
                "0.5s",
                "-s",
                "WINCH",
                "-k",
                "0",
                "--compat",
                "stop-before-kill",
            ],
            Moment::LeakWait => vec!["--leak-timeout", "30s"],
        }
        .into_iter()
        .map(String::from),
    );
    args.push("--".into());
    args.extend(victims(&fx, &ready_dir, matches!(moment, Moment::LeakWait)));
    // In a cgroup of the test's own: no other test's cg-test starts beside this leaf, so
    // only the watchdog can collect it.
    let cg = TestCgroup::new(&g, "death");
    let mut run = g.start(cg.cg_test(&args));

    let ready = wait_ready(&ready_dir, 3);
    let limit = Duration::from_secs(20);
    match moment {
        Moment::Running => {}
        Moment::Grace => {
            run.wait_stderr("sent SIGWINCH to", limit);
        }
        Moment::Kill => {
            run.wait_stderr("killing ", limit);
            wait_stopped(run.pid);
        }
        Moment::LeakWait => {
            run.wait_stderr("the command exited", limit);
        }
    }
    // Alive before: the daemon pair and the ignorer by pid, the hopper (whose pid
    // moves) by its command line.
    assert_alive_with_marker(&ready.pids, g.marker());
    assert_hopper_alive(g.marker());

    run.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    // Before the output is collected: the victims hold cg-test's stderr until they die.
    run.wait_exit();
    assert_all_gone_soon(g.marker(), killed_at);
    assert_leaf_gone_soon(&cg, killed_at);
    let out = run.finish();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL)
    );
    mode.assert_ran(&out);
    assert!(
        out.stderr
            .contains(&format!("watchdog: cg-test (pid {}) is gone", out.pid)),
        "the watchdog says what it did; stderr:\n{}",
        out.stderr
    );
    assert_late_never_after(&trigger, &late);
}

macro_rules! death_tests {
    ($($module:ident => $mode:expr),* $(,)?) => {$(
        mod $module {
            use super::*;
            #[test] fn while_running() { sigkill_of_cg_test($mode, Moment::Running) }
            #[test] fn during_the_grace() { sigkill_of_cg_test($mode, Moment::Grace) }
            #[test] fn during_the_kill() { sigkill_of_cg_test($mode, Moment::Kill) }
            #[test] fn during_the_leak_wait() { sigkill_of_cg_test($mode, Moment::LeakWait) }
        }
    )*};
}

death_tests! {
    cgroup => Mode::Cgroup,
    cgroup_compat => Mode::CgroupCompat,
    pgroup => Mode::Pgroup,
}

/// The pid of the one live process whose parent is `parent` (the cg-test a shell runs
/// in the foreground).
fn child_of(parent: i32) -> i32 {
    wait_for("the shell's cg-test", Duration::from_secs(20), || {
        let kids: Vec<i32> = procs::all_pids()
            .into_iter()
            .filter(|&p| procs::stat(p).is_some_and(|s| s.ppid == parent))
            .collect();
        (kids.len() == 1).then(|| kids[0])
    })
}

/// `kill -9 -PGID` of a non-interactive script that runs cg-test in the foreground:
/// what many CI runners do on cancel. cg-test dies with the shell; the command is in
/// its own process group (and dies of its parent-death signal), the watchdog in its
/// own session, so it survives to tear the rest down.
fn sigkill_of_the_process_group(mode: Mode) {
    let g = Guard::new(&format!("death_pgid_{}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let trigger = g.path("late-trigger");
    let after = g.path("after");
    let fx = g.fixture().ready(&ready_dir).late_on(&late, &trigger);
    let mut cg: Vec<String> = vec![CG_TEST.to_string()];
    cg.extend(mode.args().iter().map(|s| s.to_string()));
    cg.push("--".into());
    cg.extend(victims(&fx, &ready_dir, false));
    let script = format!(
        "{}; echo done > {}",
        cg.iter()
            .map(|a| fixture::sh_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
        fixture::sh_quote(&after.display().to_string())
    );
    let cg = TestCgroup::new(&g, "pgkill");
    let mut sh = cg.command("sh", &["-c", &script, g.marker()]);
    sh.process_group(0);
    let mut run = Run::spawn(sh);
    let cg_test = child_of(run.pid);
    g.watch_cg_test(cg_test);

    let ready = wait_ready(&ready_dir, 3);
    assert_alive_with_marker(&ready.pids, g.marker());
    assert_hopper_alive(g.marker());
    assert_eq!(
        procs::stat(cg_test).map(|s| s.pgrp),
        Some(run.pid),
        "cg-test runs in the shell's process group"
    );

    // SAFETY: kill of the process group this test created (the shell leads it).
    assert_eq!(unsafe { libc::kill(-run.pid, libc::SIGKILL) }, 0);
    let killed_at = Instant::now();
    run.wait_exit();
    assert_all_gone_soon(g.marker(), killed_at);
    assert_leaf_gone_soon(&cg, killed_at);
    let out = run.finish();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL)
    );
    assert!(!after.exists(), "the shell went on after cg-test");
    assert_late_never_after(&trigger, &late);
}

#[test]
fn sigkill_of_the_process_group_cgroup() {
    sigkill_of_the_process_group(Mode::Cgroup);
}

#[test]
fn sigkill_of_the_process_group_pgroup() {
    sigkill_of_the_process_group(Mode::Pgroup);
}

/// `--die-with-parent`: the shell that started cg-test is SIGKILLed; cg-test runs the
/// full ladder (the run gets TERM, which a handler records; the grace; the kill) and
/// exits 143, as on SIGTERM.
fn dies_with_parent(mode: Mode) {
    let g = Guard::new(&format!("death_parent_{}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let trigger = g.path("late-trigger");
    let termed = g.path("termed");
    let fx = g.fixture().ready(&ready_dir).late_on(&late, &trigger);
    let mut cg: Vec<String> = vec![CG_TEST.to_string()];
    cg.extend(mode.args().iter().map(|s| s.to_string()));
    cg.extend(["--die-with-parent", "-k", "1s", "--"].map(String::from));
    cg.extend(fx.argv(&["trap-term", &termed.display().to_string()]));
    let script = format!(
        "{}; echo never",
        cg.iter()
            .map(|a| fixture::sh_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", &script, g.marker()]);
    let run = Run::spawn(sh);
    let cg_test = child_of(run.pid);
    g.watch_cg_test(cg_test);
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());

    run.signal(libc::SIGKILL);
    // The shell is gone at once; cg-test lives on through the ladder and its last
    // lines still reach the pipe the test reads.
    let out = run.finish();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL)
    );
    wait_for(
        "cg-test to finish its ladder",
        Duration::from_secs(20),
        || (!procs::is_alive(cg_test)).then_some(()),
    );
    assert!(
        out.stderr.contains("parent") && out.stderr.contains("died"),
        "cg-test should say its parent died; stderr:\n{}",
        out.stderr
    );
    out.assert_summary("outcome", "interrupted");
    out.assert_summary("exit", "143");
    assert!(
        termed.exists(),
        "the run should have got the polite SIGTERM; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(cg_test);
    assert_late_never_after(&trigger, &late);
}

#[test]
fn dies_with_parent_cgroup() {
    dies_with_parent(Mode::Cgroup);
}

#[test]
fn dies_with_parent_pgroup() {
    dies_with_parent(Mode::Pgroup);
}

/// `--die-with-parent` when the parent is already gone at start (cg-test was handed to
/// init): exit 125 before the command runs. The orphaned cg-test's exit code goes to
/// init, so the test sees its one error line and that the command never ran.
#[test]
fn die_with_parent_refuses_a_parent_already_gone() {
    let g = Guard::new("death_parent_gone");
    let ready_dir = g.subdir("ready");
    let fx = g.fixture().ready(&ready_dir);
    let mut cg: Vec<String> = vec![CG_TEST.to_string(), "--die-with-parent".into(), "--".into()];
    cg.extend(fx.argv(&["sleep"]));
    let quoted = cg
        .iter()
        .map(|a| fixture::sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    // The subshell outlives its parent, which exits at once; then it execs cg-test.
    let script = format!("(sleep 0.3; exec {quoted}) & exit 0");
    let mut sh = Command::new("sh");
    sh.args(["-c", &script, g.marker()]);
    let out = Run::spawn(sh).finish();
    assert_eq!(out.code(), 0, "the parent shell exits at once");
    // The pipe closes when the orphaned cg-test exits.
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("cg-test: "))
        .unwrap_or_else(|| panic!("no cg-test line; stderr:\n{}", out.stderr));
    assert!(
        line.contains("--die-with-parent") && line.contains("already gone"),
        "{line:?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "one line: {:?}", out.stderr);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        ready_pids(&ready_dir).is_empty(),
        "the command must not have run"
    );
    assert_no_survivors(g.marker());
}

/// The same guarantee for an unprivileged user in a cgroup delegated to it (uid 65534,
/// as `systemd-run --user -p Delegate=yes` would give): the watchdog has exactly the
/// run's privileges and still kills and removes the leaf.
#[test]
fn sigkill_in_a_delegated_cgroup_as_an_unprivileged_user() {
    let g = Guard::new("death_delegated");
    let ready_dir = g.subdir("ready");
    g.open_to_all(&ready_dir);
    let (cg_test, fixture_bin) = crate::unprivileged::binaries_for_nobody(&g);
    let late = ready_dir.join("late");
    let trigger = ready_dir.join("late-trigger");
    let fx = g.fixture().ready(&ready_dir).late_on(&late, &trigger);
    let cg = TestCgroup::new(&g, "deleg");
    let uid: u32 = crate::unprivileged::NOBODY.parse().unwrap();
    cg.delegate_to(uid);

    let mut args: Vec<String> = [
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".into(),
        cg_test.display().to_string(),
        "-v".into(),
        "--isolation".into(),
        "cgroup".into(),
        "--".into(),
    ]
    .to_vec();
    let mut command = victims(&fx, &ready_dir, false);
    command[2] = command[2].replace(FIXTURE, &fixture_bin.display().to_string());
    args.extend(command);
    let mut run = g.start(cg.command("setpriv", &args));
    let ready = wait_ready(&ready_dir, 3);
    assert_alive_with_marker(&ready.pids, g.marker());
    assert_hopper_alive(g.marker());
    run.wait_stderr("watchdog pid", Duration::from_secs(20));
    let leaves = cg.leaves();
    assert_eq!(
        leaves.len(),
        1,
        "cg-test made its leaf in the delegated cgroup"
    );
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&leaves[0]).unwrap());
    assert_eq!(owner, uid, "the leaf was made by the unprivileged cg-test");

    run.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    run.wait_exit();
    assert_all_gone_soon(g.marker(), killed_at);
    assert_leaf_gone_soon(&cg, killed_at);
    assert_late_never_after(&trigger, &late);
}

/// With `--report FILE`, a killed cg-test cannot write its report; its watchdog does
/// (outcome `error`, naming what it killed), so an older file is never taken for this
/// run's. A run that ends normally keeps cg-test's own report (the report tests).
#[test]
fn the_watchdog_writes_the_report_of_a_killed_cg_test() {
    let g = Guard::new("death_report");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let trigger = g.path("late-trigger");
    let report = g.path("report.json");
    std::fs::write(&report, "{\"stale\": true}\n").unwrap();
    let fx = g.fixture().ready(&ready_dir).late_on(&late, &trigger);
    let mut args: Vec<String> = ["--isolation", "cgroup", "--report"]
        .map(String::from)
        .to_vec();
    args.push(report.display().to_string());
    args.push("--".into());
    args.extend(victims(&fx, &ready_dir, false));
    let cg = TestCgroup::new(&g, "report");
    let mut run = g.start(cg.cg_test(&args));
    let ready = wait_ready(&ready_dir, 3);
    assert_alive_with_marker(&ready.pids, g.marker());

    run.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    run.wait_exit();
    assert_all_gone_soon(g.marker(), killed_at);
    assert_leaf_gone_soon(&cg, killed_at);
    let out = run.finish();
    let json: serde_json::Value = wait_for("the watchdog's report", Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&report).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v.get("outcome").is_some().then_some(v)
    });
    assert_eq!(json["outcome"], "error", "{json:#}");
    assert_eq!(json["exit_code"], 125);
    assert_eq!(json["isolation"], "cgroup");
    let error = json["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("cg-test (pid {})", out.pid)) && error.contains("killed"),
        "{error:?}"
    );
    assert!(json["run_id"]
        .as_str()
        .is_some_and(|id| id.starts_with(&format!("{}-", out.pid))));
    assert_late_never_after(&trigger, &late);
}
