//! Issue 9: `--report FILE` writes the whole run as JSON (docs/REPORT.md) on every
//! path: a clean exit, an exit with a leak, a teardown by signal, a command that was
//! not found or not executable, cg-test's own error. Each report is parsed and checked
//! field by field. A path that cannot be written is refused before anything runs
//! (125, the path named); the file is replaced atomically; arguments that are not
//! UTF-8 are kept exactly.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::util::fixture::{sh_quote, sh_wait_ready};
use crate::util::report::{self, args_of, f64_of, str_of, Value};
use crate::util::*;

/// The fields every report of a run that got as far as its command shares: version,
/// cg-test's version, the argv, the run id (naming cg-test's pid), the isolation and
/// its leaf, the start time (within the test's own window) and the wall time.
fn assert_common(r: &Value, out: &run::Finished, argv: &[String], before: SystemTime) {
    report::assert_keys(r);
    assert_eq!(r["version"], 1);
    assert_eq!(str_of(r, "cg_test_version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(args_of(&r["command"]), argv);
    let run_id = str_of(r, "run_id");
    let parts: Vec<&str> = run_id.split('-').collect();
    assert_eq!(parts.len(), 3, "run_id {run_id}");
    assert_eq!(
        parts[0],
        out.pid.to_string(),
        "the run id starts with cg-test's pid"
    );
    assert!(parts[2].len() == 8 && parts[2].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(str_of(r, "isolation"), "cgroup");
    let leaf = cgroup::own_dir().join(format!("cg-test-{run_id}"));
    assert_eq!(str_of(r, "boundary"), leaf.to_str().unwrap());
    let started = report::parse_rfc3339(str_of(r, "started_at"));
    // Milliseconds are truncated; the clock may be read a moment before ours.
    assert!(
        started + Duration::from_millis(1) >= before && started <= SystemTime::now(),
        "started_at {} outside the test's window",
        str_of(r, "started_at")
    );
    let wall = f64_of(r, "wall_seconds");
    assert!(
        wall > 0.0 && wall <= out.elapsed.as_secs_f64(),
        "wall_seconds {wall} vs the test's {:?}",
        out.elapsed
    );
    assert!(f64_of(r, "cpu_user_seconds") >= 0.0 && f64_of(r, "cpu_system_seconds") >= 0.0);
    assert_eq!(str_of(r, "cpu_source"), "cgroup");
}

fn cg_args(report: &Path, extra: &[&str], command: &[String]) -> Vec<String> {
    let mut v = vec![
        "--isolation".to_string(),
        "cgroup".into(),
        "--report".into(),
        report.display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push("--".into());
    v.extend(command.iter().cloned());
    v
}

/// A clean exit; the report replaces an older file whole and leaves no temporary
/// file beside it.
#[test]
fn clean_exit() {
    let g = Guard::new("report_clean");
    let dir = g.subdir("out");
    let path = dir.join("run.json");
    std::fs::write(&path, "an older report\n").unwrap();
    let argv = g.fixture().argv(&["exit", "0"]);
    let before = SystemTime::now();
    let out = g.start(g.cg_test(&cg_args(&path, &[], &argv))).finish();
    out.assert_code(0);
    let r = report::read(&path);
    assert_common(&r, &out, &argv, before);
    assert_eq!(str_of(&r, "outcome"), "exited");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["command_exit"], serde_json::json!({ "code": 0 }));
    assert!(r["memory_peak_bytes"].as_u64().is_some_and(|b| b > 0));
    assert!(matches!(
        str_of(&r, "memory_peak_scope"),
        "run" | "largest_process"
    ));
    assert_eq!(r["leaked"], serde_json::json!([]));
    assert_eq!(r["at_timeout"], serde_json::json!([]));
    assert_eq!(r["error"], Value::Null);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["run.json"], "no temporary file is left");
    assert_no_leaf(out.pid);
}

/// An exit that leaves two daemons: both are in `leaked` with their parent (cg-test,
/// the subreaper), age, state and full command line; the command's own status is
/// kept, and with `--fail-on-leak` the outcome is `leaked`.
fn check_exit_with_leak(fail_on_leak: bool) {
    let g = Guard::new(if fail_on_leak {
        "report_leak_strict"
    } else {
        "report_leak"
    });
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let d = fx.sh(&["daemon", "--exit", "0"]);
    let argv = vec![
        "sh".to_string(),
        "-c".into(),
        format!("{d}; {d}; {}; exit 0", sh_wait_ready(&ready_dir, 2)),
    ];
    let path = g.path("run.json");
    let extra: &[&str] = if fail_on_leak {
        &["--leak-timeout", "300ms", "--fail-on-leak"]
    } else {
        &["--leak-timeout", "300ms"]
    };
    let before = SystemTime::now();
    let out = g.start(g.cg_test(&cg_args(&path, extra, &argv))).finish();
    let ready = wait_ready(&ready_dir, 2);
    let code = if fail_on_leak { 123 } else { 0 };
    out.assert_code(code);
    let r = report::read(&path);
    assert_common(&r, &out, &argv, before);
    let outcome = if fail_on_leak { "leaked" } else { "exited" };
    assert_eq!(str_of(&r, "outcome"), outcome);
    assert_eq!(r["exit_code"], code);
    assert_eq!(r["command_exit"], serde_json::json!({ "code": 0 }));
    let leaked = r["leaked"].as_array().expect("leaked");
    let mut pids: Vec<i32> = leaked
        .iter()
        .map(|p| p["pid"].as_i64().unwrap() as i32)
        .collect();
    pids.sort();
    assert_eq!(pids, ready.pids, "{leaked:#?}");
    for p in leaked {
        assert_eq!(p["ppid"], out.pid, "reparented to cg-test: {p}");
        // Sleeping, or caught in one of its 0.2 s wake-ups.
        assert!(matches!(str_of(p, "state"), "S" | "R"), "{p}");
        let age = f64_of(p, "age_seconds");
        assert!(
            (0.3..20.0).contains(&age),
            "outlived the 300 ms leak timeout: {p}"
        );
        assert!(f64_of(p, "cpu_seconds") < 0.5, "{p}");
        assert!(p["rss_bytes"].as_u64().is_some_and(|b| b > 0), "{p}");
        let cmdline = args_of(&p["cmdline"]);
        assert_eq!(cmdline[..3], [FIXTURE, "--marker", g.marker()], "{p}");
        assert_eq!(
            cmdline[cmdline.len() - 3..],
            ["daemon", "--exit", "0"],
            "{p}"
        );
    }
    assert_eq!(r["at_timeout"], serde_json::json!([]));
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn exit_with_leak() {
    check_exit_with_leak(false);
}

#[test]
fn exit_with_leak_fail_on_leak() {
    check_exit_with_leak(true);
}

/// SIGTERM to cg-test: `interrupted`, 143, and the command died of the forwarded TERM.
#[test]
fn signal_teardown() {
    let g = Guard::new("report_signal");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let argv = g
        .fixture()
        .ready(&ready_dir)
        .late(&late, LATE_SECS)
        .argv(&["sleep"]);
    let path = g.path("run.json");
    let before = SystemTime::now();
    let run = g.start(g.cg_test(&cg_args(&path, &[], &argv)));
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());
    run.signal(libc::SIGTERM);
    let out = run.finish();
    out.assert_code(128 + libc::SIGTERM);
    let r = report::read(&path);
    assert_common(&r, &out, &argv, before);
    assert_eq!(str_of(&r, "outcome"), "interrupted");
    assert_eq!(r["exit_code"], 128 + libc::SIGTERM);
    assert_eq!(
        r["command_exit"],
        serde_json::json!({ "signal": libc::SIGTERM })
    );
    assert_eq!(r["leaked"], serde_json::json!([]));
    assert_eq!(r["at_timeout"], serde_json::json!([]));
    assert_eq!(r["error"], Value::Null);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

/// A command that is not there (127) or cannot be executed (126): the report says
/// so, and the command never ran (`command_exit` null).
#[test]
fn command_not_found_or_not_executable() {
    let g = Guard::new("report_not_found");
    let missing = g.path(&format!("no-such-command-{}", g.marker()));
    let not_exec = g.path("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (cmd, code, outcome) in [
        (&missing, 127, "not_found"),
        (&not_exec, 126, "not_executable"),
    ] {
        let path = g.path(&format!("{outcome}.json"));
        let argv = vec![cmd.display().to_string(), "arg".into()];
        let before = SystemTime::now();
        let out = g.start(g.cg_test(&cg_args(&path, &[], &argv))).finish();
        out.assert_code(code);
        let r = report::read(&path);
        assert_common(&r, &out, &argv, before);
        assert_eq!(str_of(&r, "outcome"), outcome);
        assert_eq!(r["exit_code"], code);
        assert_eq!(r["command_exit"], Value::Null, "it never ran");
        assert_eq!(r["leaked"], serde_json::json!([]));
        assert_eq!(r["at_timeout"], serde_json::json!([]));
        assert_no_leaf(out.pid);
    }
}

/// cg-test's own error: `--isolation cgroup` where the cgroup filesystem is read-only
/// (a private mount namespace, as in a container). Nothing ran, and the report says
/// why rather than leaving an older file that looks like this run's.
#[test]
fn own_error_is_reported() {
    let g = Guard::new("report_own_error");
    let path = g.path("run.json");
    std::fs::write(&path, "an older report\n").unwrap();
    let ran = g.path("ran");
    let script = format!(
        "mount -o remount,ro,bind {m} || exit 99; exec {cg} --isolation cgroup --report {p} -- touch {ran}",
        m = sh_quote(cgroup::mount_point().to_str().unwrap()),
        cg = sh_quote(CG_TEST),
        p = sh_quote(path.to_str().unwrap()),
        ran = sh_quote(ran.to_str().unwrap()),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_remove("GITHUB_ACTIONS");
    let out = g.start(cmd).finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(line.contains("--isolation cgroup"), "{line:?}");
    assert!(!ran.exists(), "the command never ran");
    let r = report::read(&path);
    report::assert_keys(&r);
    assert_eq!(str_of(&r, "outcome"), "error");
    assert_eq!(r["exit_code"], 125);
    assert_eq!(r["command_exit"], Value::Null);
    assert_eq!(args_of(&r["command"]), ["touch", ran.to_str().unwrap()]);
    assert_eq!(
        str_of(&r, "error"),
        line.strip_prefix("cg-test: ").unwrap(),
        "the report carries the error line"
    );
    for unknown in [
        "run_id",
        "isolation",
        "boundary",
        "cpu_user_seconds",
        "memory_peak_bytes",
    ] {
        assert_eq!(r[unknown], Value::Null, "{unknown} is unknown");
    }
    assert_no_leaf(out.pid);
}

/// Refused before anything runs: one line naming the path, 125, no leaf, the
/// command's marker file never made, and nothing created at the path.
fn refused(g: &Guard, mut cmd: Command, path: &Path, ran: &Path, must_say: &str) {
    cmd.env_remove("GITHUB_ACTIONS");
    let out = g.start(cmd).finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(
        line.contains(path.to_str().unwrap()) && line.contains("--report"),
        "the error names the flag and the path: {line:?}"
    );
    assert!(line.contains(must_say), "{line:?} should say {must_say:?}");
    assert!(!ran.exists(), "the command must not run");
    assert!(!path.is_file(), "nothing written at {}", path.display());
    assert_no_leaf(out.pid);
}

fn touch_args(report: &Path, ran: &Path) -> Vec<String> {
    vec![
        "--report".into(),
        report.display().to_string(),
        "--".into(),
        "touch".into(),
        ran.display().to_string(),
    ]
}

#[test]
fn unwritable_report_paths_are_refused_before_the_command_runs() {
    let g = Guard::new("report_bad_paths");
    let ran = g.path("ran");

    let missing = g.path("missing-dir").join("r.json");
    refused(
        &g,
        g.cg_test(&touch_args(&missing, &ran)),
        &missing,
        &ran,
        "does not exist",
    );

    let dir = g.subdir("a-directory");
    refused(
        &g,
        g.cg_test(&touch_args(&dir, &ran)),
        &dir,
        &ran,
        "is a directory",
    );

    // A read-only filesystem: the directory bind-mounted read-only in a private
    // mount namespace (gone with it).
    let ro = g.subdir("read-only");
    let in_ro = ro.join("r.json");
    let script = format!(
        "mount --bind {d} {d} && mount -o remount,bind,ro {d} || exit 99; exec {cg} {args}",
        d = sh_quote(ro.to_str().unwrap()),
        cg = sh_quote(CG_TEST),
        args = touch_args(&in_ro, &ran)
            .iter()
            .map(|a| sh_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    refused(&g, cmd, &in_ro, &ran, "Read-only file system");

    // A directory its user may not write (uid 65534, mode 0555).
    let locked = g.subdir("locked");
    std::fs::set_permissions(g.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let in_locked = locked.join("r.json");
    let cg_test_for_nobody = world_runnable_copy(&g);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&cg_test_for_nobody)
        .args(touch_args(&in_locked, &g.path("ran-as-nobody")));
    refused(
        &g,
        cmd,
        &in_locked,
        &g.path("ran-as-nobody"),
        "Permission denied",
    );
}

/// cg-test where uid 65534 can run it.
fn world_runnable_copy(g: &Guard) -> PathBuf {
    let dst = g.path("cg-test");
    std::fs::copy(CG_TEST, &dst).expect("copying cg-test");
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    dst
}

/// Arguments with a newline, `%` and bytes that are not UTF-8 reach the command as
/// they are and the report keeps them exactly: strings where they are UTF-8, the
/// exact bytes in hex where not.
#[test]
fn command_with_newlines_percent_and_invalid_utf8_is_kept_exactly() {
    let g = Guard::new("report_bytes");
    let path = g.path("run.json");
    let fx = g.fixture();
    let mut cmd = g.cg_test(&[
        "--isolation",
        "cgroup",
        "--report",
        path.to_str().unwrap(),
        "--",
    ]);
    cmd.args(fx.argv(&["exit", "0"]));
    cmd.arg("line one\nline two");
    cmd.arg("100%");
    cmd.arg(OsStr::from_bytes(b"caf\xe9 \xff"));
    let out = g.start(cmd).finish();
    out.assert_code(0);
    let r = report::read(&path);
    let command = r["command"].as_array().expect("command").clone();
    let n = command.len();
    assert_eq!(command[n - 3], "line one\nline two");
    assert_eq!(command[n - 2], "100%");
    assert_eq!(command[n - 1], serde_json::json!({ "hex": "636166e920ff" }));
    assert_eq!(report::unhex("636166e920ff"), b"caf\xe9 \xff");
    assert_no_leaf(out.pid);
}
