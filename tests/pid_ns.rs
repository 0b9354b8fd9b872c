//! `--pid-ns` (issue 12): the command runs as pid 2 of a new pid namespace whose init
//! dies with cg-test.
//!
//! - SIGKILL of cg-test: every process of the run (an escaped setsid daemon, a
//!   TERM-ignorer, a session hopper) is gone within 1 s, with the watchdog turned off
//!   (`--compat no-watchdog`), so the pid namespace alone is shown to do it; the
//!   negative control is the same run without `--pid-ns`, where they survive.
//! - `ps` inside sees the run and its init, nothing of the host.
//! - exit codes and signals as without the namespace: the command is not PID 1, so a
//!   signal with a default action still kills it.
//! - a timeout with escaped daemons and a TERM-ignorer, in both isolation modes.
//! - without CAP_SYS_ADMIN: an unprivileged user namespace where there is one (the
//!   command keeps its uid); where there is none (a user namespace with
//!   user.max_user_namespaces = 0 around a uid-65534 cg-test), exit 125 with one line
//!   and nothing run.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::supervisor_death::{assert_all_gone_soon, victims};
use crate::unprivileged::{binaries_for_nobody, NOBODY};
use crate::util::fixture::sh_quote;
use crate::util::*;

/// The session hopper is alive: it holds the newest pids (each generation forks a
/// fresh one every few milliseconds), so look at the newest first, before it moves on;
/// a scan in pid order on a loaded machine can miss it every time.
fn assert_hopper_alive(marker: &str) {
    wait_for(
        "the hopper to be seen alive",
        Duration::from_secs(10),
        || {
            let mut pids = procs::all_pids();
            pids.sort_unstable_by(|a, b| b.cmp(a));
            pids.into_iter()
                .take(64)
                .any(|p| {
                    procs::cmdline(p).is_some_and(|c| c.contains(marker) && c.ends_with(" hopper "))
                })
                .then_some(())
        },
    );
}

/// The fixture announces itself by its own pid, which inside the namespace is not the
/// pid the host sees: map each to the host pid whose innermost `NSpid` it is, among
/// the processes carrying the marker.
pub(crate) fn host_pids(ready: &Ready, marker: &str) -> Vec<i32> {
    let candidates = procs::with_marker(marker);
    ready
        .pids
        .iter()
        .map(|&ns_pid| {
            *candidates
                .iter()
                .find(|&&p| {
                    std::fs::read_to_string(format!("/proc/{p}/status"))
                        .ok()
                        .and_then(|s| {
                            let l = s.lines().find(|l| l.starts_with("NSpid:"))?.to_owned();
                            let f: Vec<&str> = l.split_whitespace().collect();
                            Some(f.len() == 3 && f[2] == ns_pid.to_string())
                        })
                        .unwrap_or(false)
                })
                .unwrap_or_else(|| panic!("no host pid for pid {ns_pid} of the namespace"))
        })
        .collect()
}

/// SIGKILL of cg-test while the victims run, without the watchdog. `pid_ns`: the
/// namespace kills them; without it (the control), they survive the kill.
fn sigkill_without_watchdog(mode: Mode, pid_ns: bool) {
    let g = Guard::new(&format!("pidns_kill_{}_{pid_ns}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    if pid_ns {
        args.push("--pid-ns".into());
    }
    args.extend(["--compat", "no-watchdog", "--"].map(String::from));
    let command = if pid_ns {
        victims(&fx, &ready_dir, false)
    } else {
        // The control's survivors: no hopper (the test must kill them by pid after),
        // and not holding the pipes the test reads cg-test's output from, or
        // collecting it would wait for their end.
        let script = format!(
            "exec >/dev/null 2>&1; {} & {} & wait",
            fx.sh(&["daemon"]),
            fx.sh(&["ignore-term"])
        );
        vec!["sh".into(), "-c".into(), script]
    };
    args.extend(command);
    let mut run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 3);
    run.wait_stderr("spawned pid", Duration::from_secs(20));
    let victims = if pid_ns {
        host_pids(&ready, g.marker())
    } else {
        ready.pids.clone()
    };
    assert_alive_with_marker(&victims, g.marker());
    if pid_ns {
        assert_hopper_alive(g.marker());
    }

    run.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    // Before the output is collected: the victims hold cg-test's stderr until they die.
    run.wait_exit();
    if pid_ns {
        assert_all_gone_soon(g.marker(), killed_at);
    }
    let out = run.finish();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL)
    );
    if pid_ns {
        assert_late_never(&late, late_due(&ready, LATE_SECS));
    } else {
        // Give the kernel the same second, then the victims must still be there: the
        // positive result above is the namespace's doing.
        std::thread::sleep(Duration::from_secs(1));
        let alive: Vec<i32> = victims
            .iter()
            .copied()
            .filter(|&p| procs::is_alive(p))
            .collect();
        assert!(
            !alive.is_empty(),
            "without --pid-ns and without the watchdog, the daemons should outlive cg-test \
             ({victims:?}); stderr:\n{}",
            out.stderr
        );
        // The control's survivors: ours by their marker, killed by pid. The hopper's pid
        // moves and one scan can miss it mid-fork: until three scans in a row find none.
        wait_for(
            "the control's survivors to die",
            Duration::from_secs(10),
            || {
                (0..3)
                    .all(|_| {
                        let left = procs::with_marker(g.marker());
                        left.iter().for_each(|&p| procs::kill(p, libc::SIGKILL));
                        left.is_empty()
                    })
                    .then_some(())
            },
        );
        assert_no_survivors(g.marker());
    }
    // No watchdog: the (empty) leaf of a cgroup run stays for `cg-test gc`; remove it.
    for leaf in cgroup::leaves_of(out.pid) {
        let events = std::fs::read_to_string(leaf.join("cgroup.events")).unwrap_or_default();
        assert!(
            !pid_ns || events.contains("populated 0"),
            "the leaf {} still has processes: {events}",
            leaf.display()
        );
        cgroup::kill_and_remove(&leaf);
    }
}

#[test]
fn sigkill_of_cg_test_kills_the_namespace_cgroup() {
    sigkill_without_watchdog(Mode::Cgroup, true);
}

#[test]
fn sigkill_of_cg_test_kills_the_namespace_pgroup() {
    sigkill_without_watchdog(Mode::Pgroup, true);
}

#[test]
fn sigkill_without_the_namespace_or_watchdog_leaves_them() {
    sigkill_without_watchdog(Mode::Pgroup, false);
}

/// With the watchdog too (the default): both guarantees act; the leaf is removed.
#[test]
fn sigkill_with_the_watchdog_removes_the_leaf() {
    let g = Guard::new("pidns_kill_watchdog");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args: Vec<String> = ["--isolation", "cgroup", "--pid-ns", "-v", "--"]
        .map(String::from)
        .to_vec();
    args.extend(victims(&fx, &ready_dir, false));
    // A cgroup of the test's own: only the watchdog can collect the leaf there.
    let cg = TestCgroup::new(&g, "pidns");
    let mut run = g.start(cg.cg_test(&args));
    let ready = wait_ready(&ready_dir, 3);
    run.wait_stderr("spawned pid", Duration::from_secs(20));
    assert_alive_with_marker(&host_pids(&ready, g.marker()), g.marker());
    run.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    // Before the output is collected: the victims hold cg-test's stderr until they die.
    run.wait_exit();
    assert_all_gone_soon(g.marker(), killed_at);
    let _ = run.finish();
    wait_for(
        "the watchdog to remove the leaf",
        Duration::from_secs(2),
        || cg.leaves().is_empty().then_some(()),
    );
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

/// `ps` inside lists the namespace's init (cg-test's, pid 1), the command (pid 2) and
/// what it started; the host has many more processes.
#[test]
fn ps_inside_sees_only_the_run() {
    let g = Guard::new("pidns_ps");
    let ready_dir = g.subdir("ready");
    let fx = g.fixture().ready(&ready_dir);
    let script = format!(
        "{sleeper} & {wait}; ps -e -o pid= -o ppid= -o comm=",
        sleeper = fx.sh(&["sleep"]),
        wait = fixture::sh_wait_ready(&ready_dir, 1),
    );
    let out = g
        .start(g.cg_test(&["--pid-ns", "--", "sh", "-c", &script]))
        .finish();
    out.assert_code(0);
    let rows: Vec<(i32, i32, String)> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
                f.next()?.to_string(),
            ))
        })
        .collect();
    let pids: Vec<i32> = rows.iter().map(|r| r.0).collect();
    assert!(
        rows.iter()
            .any(|r| r.0 == 1 && r.1 == 0 && r.2 == "cg-test"),
        "pid 1 is cg-test's init: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.0 == 2 && r.1 == 1 && r.2 == "sh"),
        "pid 2 is the command: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.2 == "ps") && rows.iter().any(|r| r.2.starts_with("cg-test-fix"))
    );
    // Every process listed descends from pid 1: nothing of the host is visible.
    for (pid, ppid, comm) in &rows {
        assert!(
            *pid == 1 || pids.contains(ppid),
            "{pid} ({comm}) has a parent outside the run: {rows:?}"
        );
    }
    assert!(rows.len() <= 6, "only the run: {rows:?}");
    assert!(procs::all_pids().len() > rows.len());
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
}

/// Exit codes and signals are as without the namespace: the command is pid 2, not
/// PID 1, so `kill -TERM $$` and a forwarded USR1 still kill it by their default
/// action, and TERM to cg-test tears down a command that has no handler.
#[test]
fn exit_codes_and_signals_as_without_it() {
    let g = Guard::new("pidns_codes");
    let m = g.marker();
    for (mode, script, code, outcome) in [
        (Mode::Cgroup, format!(": {m}; exit 0"), 0, "success"),
        (Mode::Cgroup, format!(": {m}; exit 42"), 42, "failure"),
        (Mode::Pgroup, format!(": {m}; exit 255"), 255, "failure"),
        (
            Mode::Cgroup,
            format!(": {m}; kill -TERM $$; sleep 5"),
            143,
            "killed-by-signal",
        ),
        (
            Mode::Pgroup,
            format!(": {m}; kill -SEGV $$; sleep 5"),
            139,
            "killed-by-signal",
        ),
    ] {
        let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
        args.extend(["--pid-ns", "--", "sh", "-c", &script].map(String::from));
        let out = g.start(g.cg_test(&args)).finish();
        out.assert_code(code);
        out.assert_summary("outcome", outcome);
        // The namespace's init is cg-test's, never a process of the run.
        out.assert_summary("leaked", "0");
        assert_no_leaf(out.pid);
    }
    assert_eq!(
        g.start(g.cg_test(&["--pid-ns", "--", "/nonexistent/cmd"]))
            .finish()
            .code(),
        127
    );

    // USR1 forwarded to a command without a handler: it dies of it (138).
    let ready_dir = g.subdir("ready");
    let fx = g.fixture().ready(&ready_dir);
    let mut args = vec!["--pid-ns".to_string(), "--".into()];
    args.extend(fx.argv(&["sleep"]));
    let run = g.start(g.cg_test(&args));
    wait_ready(&ready_dir, 1);
    run.signal(libc::SIGUSR1);
    let out = run.finish();
    out.assert_code(138);
    out.assert_summary("outcome", "killed-by-signal");

    // TERM to cg-test: the ladder, 143, the command (no handler) gone at once.
    let ready_dir = g.subdir("ready2");
    let fx = g.fixture().ready(&ready_dir);
    let mut args = vec![
        "--pid-ns".to_string(),
        "-k".into(),
        "30s".into(),
        "--".into(),
    ];
    args.extend(fx.argv(&["sleep"]));
    let run = g.start(g.cg_test(&args));
    wait_ready(&ready_dir, 1);
    run.signal(libc::SIGTERM);
    let out = run.finish_within(Duration::from_secs(20));
    out.assert_code(143);
    assert!(
        out.elapsed < Duration::from_secs(20),
        "TERM must end the command without waiting out -k 30s"
    );
    assert_no_survivors(g.marker());
}

/// A timeout with an escaped daemon and a TERM-ignorer: 124, nothing left, and in the
/// pgroup mode the kill is the namespace's (SIGKILL to its init).
fn timeout(mode: Mode) {
    let g = Guard::new(&format!("pidns_timeout_{}", mode.name()));
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let script = format!(
        "{} ; {} & wait",
        fx.sh(&["daemon", "--exit", "0"]),
        fx.sh(&["ignore-term"])
    );
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["-t", "1s", "-k", "1s", "--", "sh", "-c", &script].map(String::from));
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 2);
    assert_alive_with_marker(&host_pids(&ready, g.marker()), g.marker());
    let out = run.finish();
    out.assert_code(124);
    out.assert_summary("isolation", mode.kind());
    if mode == Mode::PgroupPidNs {
        assert!(
            out.stderr.contains("SIGKILL to the pid namespace's init"),
            "stderr:\n{}",
            out.stderr
        );
    }
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn timeout_cgroup() {
    timeout(Mode::CgroupPidNs);
}

#[test]
fn timeout_pgroup() {
    timeout(Mode::PgroupPidNs);
}

/// uid 65534 without CAP_SYS_ADMIN: an unprivileged user namespace is made with the
/// pid namespace, mapping its uid to itself, so the command runs as 65534.
#[test]
fn unprivileged_user_gets_a_user_namespace() {
    let g = Guard::new("pidns_nobody");
    let (cg_test, _) = binaries_for_nobody(&g);
    let script = format!(": {}; id -u; echo $$", g.marker());
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ])
    .arg(&cg_test)
    .args(["-v", "--pid-ns", "--", "sh", "-c", &script]);
    let out = g.start(cmd).finish();
    out.assert_code(0);
    assert_eq!(
        out.stdout,
        format!("{NOBODY}\n2\n"),
        "stderr:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("user namespace"),
        "stderr:\n{}",
        out.stderr
    );
}

/// Without CAP_SYS_ADMIN and without user namespaces: one line naming --pid-ns, exit
/// 125, the command never ran. The user namespaces are taken away for this test only:
/// a user namespace of its own (ids 0-65535 mapped to themselves, written by the test
/// from outside) with user.max_user_namespaces = 0 in it, and cg-test in there as uid
/// 65534.
#[test]
fn without_the_privilege_it_refuses() {
    let g = Guard::new("pidns_refused");
    let (cg_test, _) = binaries_for_nobody(&g);
    let ran = g.path("ran");
    let go = g.path("go");
    g.open_to_all(g.dir());
    let inner = format!(
        ": {marker}; echo 0 > /proc/sys/user/max_user_namespaces || exit 99; \
         exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups {cg} --pid-ns -- \
         sh -c {cmd}",
        marker = g.marker(),
        cg = sh_quote(&cg_test.display().to_string()),
        cmd = sh_quote(&format!(": {}; touch {}", g.marker(), ran.display())),
    );
    // The shell unshare starts is not root in the namespace until its ids are mapped,
    // and an exec before that dropped its capabilities: exec again once mapped.
    let script = format!(
        ": {marker}; {wait}; exec sh -c {inner}",
        marker = g.marker(),
        wait = fixture::sh_wait_file(&go),
        inner = sh_quote(&inner),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--", "sh", "-c", &script]);
    let run = g.start(cmd);
    // unshare execs the shell under its own pid; map ids for it from outside (root may
    // map any range), then let it go on.
    for (file, what) in [("uid_map", "0 0 65536"), ("gid_map", "0 0 65536")] {
        let path = format!("/proc/{}/{file}", run.pid);
        wait_for(
            "unshare to make the user namespace",
            Duration::from_secs(10),
            || std::fs::write(&path, what).ok(),
        );
    }
    std::fs::write(&go, "").unwrap();
    let out = run.finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(
        line.contains("--pid-ns") && line.contains("CAP_SYS_ADMIN"),
        "{line:?}"
    );
    assert!(!ran.exists(), "the command must not have run");
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
}

/// cg-test as the init of a pid namespace (a container's entrypoint), in the pgroup
/// mode: it starts no watchdog (its death kills the namespace anyway), and the kill of
/// the ladder is kill(-1, SIGKILL), which reaches every process of the namespace, and
/// says so with -v.
#[test]
fn as_pid_1_the_pgroup_kill_is_kill_minus_one() {
    let g = Guard::new("pidns_pid1");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let script = format!(
        "{} ; {} & wait",
        fx.sh(&["daemon", "--exit", "0"]),
        fx.sh(&["ignore-term"])
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", CG_TEST])
        .args(["-v", "--isolation", "pgroup", "-t", "1s", "-k", "1s", "--"])
        .args(["sh", "-c", &script]);
    let run = g.start(cmd);
    let ready = wait_ready(&ready_dir, 2);
    assert_alive_with_marker(&host_pids(&ready, g.marker()), g.marker());
    let out = run.finish();
    out.assert_code(124);
    for line in [
        "no watchdog: cg-test is the init of its pid namespace",
        "kill(-1, SIGKILL): cg-test is the init of its pid namespace",
    ] {
        assert!(
            out.stderr.contains(line),
            "{line:?}; stderr:\n{}",
            out.stderr
        );
    }
    assert_no_survivors(g.marker());
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}
