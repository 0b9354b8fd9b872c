//! The exit status contract: the command's own code, 128+N for death by signal N, 127
//! for a command that does not exist, 126 for one that cannot be executed, 125 for
//! cg-test's own errors, 124 for a timeout.

use std::os::unix::fs::PermissionsExt;

use crate::util::*;

fn run_plain(g: &Guard, args: &[&str]) -> crate::util::run::Finished {
    g.start(g.cg_test(args)).finish()
}

#[test]
fn command_code_passes_through() {
    let g = Guard::new("exit_code_7");
    let out = run_plain(&g, &["--", "sh", "-c", "exit 7"]);
    out.assert_code(7);
    out.assert_summary("outcome", "failure");
    assert_no_leaf(out.pid);
}

#[test]
fn success_is_zero() {
    let g = Guard::new("exit_code_0");
    let out = run_plain(&g, &["--", "true"]);
    out.assert_code(0);
    out.assert_summary("outcome", "success");
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let g = Guard::new("exit_code_segv");
    let out = run_plain(&g, &["--", "sh", "-c", "kill -SEGV $$"]);
    out.assert_code(139);
    out.assert_summary("outcome", "killed-by-signal");
    assert_no_leaf(out.pid);
}

#[test]
fn missing_command_is_127() {
    let g = Guard::new("exit_code_127");
    for cmd in ["cg-test-no-such-command-xyz", "/nonexistent/dir/cmd"] {
        let out = run_plain(&g, &["--", cmd]);
        out.assert_code(127);
        assert!(
            out.stderr.contains(cmd),
            "the error should name the command; stderr:\n{}",
            out.stderr
        );
        assert_no_leaf(out.pid);
    }
}

#[test]
fn non_executable_file_is_126() {
    let g = Guard::new("exit_code_126");
    let file = g.path("not-executable");
    std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_plain(&g, &["--", file.to_str().unwrap()]);
    out.assert_code(126);
    assert_no_leaf(out.pid);
    // A directory cannot be executed either.
    let out = run_plain(&g, &["--", g.dir().to_str().unwrap()]);
    out.assert_code(126);
    assert_no_leaf(out.pid);
}

#[test]
fn bad_flag_value_is_125_with_one_line() {
    let g = Guard::new("exit_code_125");
    let out = run_plain(&g, &["--timeout", "banana", "--", "true"]);
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(
        line.contains("--timeout"),
        "should name --timeout: {line:?}"
    );
    assert_no_leaf(out.pid);
}

#[test]
fn timeout_is_124() {
    let g = Guard::new("exit_code_124");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut args = vec![
        "-t".to_string(),
        "1s".into(),
        "-k".into(),
        "1s".into(),
        "--".into(),
    ];
    args.extend(fx.argv(&["sleep"]));
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());
    let out = run.finish();
    out.assert_code(124);
    out.assert_summary("outcome", "timeout");
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}
