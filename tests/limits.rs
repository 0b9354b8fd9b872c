//! Issue 10 on this host: `--memory-max`, `--pids-max` and `--cpus` need cgroup v2
//! controllers, and a hybrid host (memory, pids and cpu bound to cgroup v1) has none.
//! Each limit is refused with exit 125 and the reason, before the command runs and
//! without leaving a leaf, cg-test's own leaf or a change to the cgroup's controllers;
//! `--limits best-effort` runs the command without limits after one warning; bad
//! values are refused as bad input. `cg-test gc` collects a stale `-supervisor` leaf
//! and a stale record of enabled controllers (the flock and the extended attribute on
//! a real cgroupfs). The applied path (OOM, fork storm, CPU quota, the
//! no-internal-process rule, parallel runs, SIGKILL of cg-test) runs in the VM lane:
//! tests/vm/scenarios/3*-limits-*.sh.
//!
//! Every cg-test here runs in a cgroup the test creates below its own (`TestCgroup`),
//! so that "exactly as before" can be checked on a cgroup nobody else uses.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::util::*;

/// The controllers this host binds to cgroup v1 (from /proc/cgroups), by v2 name.
fn v1_bound() -> Vec<&'static str> {
    let text = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[1] == "0" || f[3] != "1" {
            continue;
        }
        match f[0] {
            "memory" => out.push("memory"),
            "pids" => out.push("pids"),
            "cpu" => out.push("cpu"),
            _ => {}
        }
    }
    out
}

/// The `user.cg-test.controllers` record on a cgroup directory, if any.
fn record_of(dir: &Path) -> Option<String> {
    let path = CString::new(dir.as_os_str().as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: getxattr writes at most buf.len() bytes into buf.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"user.cg-test.controllers".as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    (n >= 0).then(|| String::from_utf8_lossy(&buf[..n as usize]).into_owned())
}

fn set_record(dir: &Path, value: &str) {
    let path = CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: setxattr reads value.len() bytes.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"user.cg-test.controllers".as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr on {}: {}",
        dir.display(),
        std::io::Error::last_os_error()
    );
}

/// Field 22 of /proc/<pid>/stat (after the parenthesised command name).
fn start_time(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// What "exactly as before" compares: the cgroup's controllers, its record, and the
/// cgroups inside it.
fn state_of(dir: &Path) -> (String, Option<String>, Vec<String>) {
    let subtree = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap();
    let mut children: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    children.sort();
    (subtree, record_of(dir), children)
}

#[test]
fn each_limit_is_refused_where_its_controller_is_bound_to_cgroup_v1() {
    let bound = v1_bound();
    if skip_on_other_host(
        bound.len() >= 3,
        "hybrid",
        &format!(
            "memory, pids and cpu must be bound to cgroup v1, and /proc/cgroups binds only \
             {bound:?} here (the VM lane covers pure cgroup v2)"
        ),
    ) {
        return;
    }
    let g = Guard::new("limits_v1_bound");
    let cg = TestCgroup::new(&g, "lim");
    let before = state_of(&cg.path);
    for (flag, value, controller) in [
        ("--memory-max", "64M", "memory"),
        ("--pids-max", "20", "pids"),
        ("--cpus", "0.5", "cpu"),
    ] {
        let ran = g.path(&format!("ran_{controller}"));
        let script = format!(
            "echo ran > {}",
            fixture::sh_quote(&ran.display().to_string())
        );
        let out = g
            .start(cg.cg_test(&[flag, value, "--", "sh", "-c", &script]))
            .finish();
        out.assert_code(125);
        let line = out.assert_one_error_line();
        for needle in [
            &format!(
                "cg-test: {flag}: the {controller} controller is bound to a cgroup v1 hierarchy"
            ),
            "hybrid",
            "pure cgroup v2",
            "--limits best-effort",
        ] {
            assert!(line.contains(needle), "{needle:?} missing in {line:?}");
        }
        assert!(
            !ran.exists(),
            "{flag}: the command ran although the limit was refused"
        );
        assert!(
            cg.leaves().is_empty(),
            "{flag}: a leaf was left: {:?}",
            cg.leaves()
        );
        assert_eq!(state_of(&cg.path), before, "{flag}: the cgroup changed");
    }
    // All three at once: one line naming all three flags.
    let out = g
        .start(cg.cg_test(&[
            "--memory-max",
            "64M",
            "--pids-max",
            "20",
            "--cpus",
            "0.5",
            "--",
            "true",
        ]))
        .finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(
        line.contains(
            "--cpus, --memory-max, --pids-max: the cpu, memory and pids controllers are bound"
        ),
        "{line:?}"
    );
    assert_eq!(state_of(&cg.path), before);
}

#[test]
fn best_effort_runs_without_limits_after_one_warning() {
    if skip_on_other_host(
        !v1_bound().is_empty(),
        "hybrid",
        "this host binds no limit controller to cgroup v1 (the VM lane covers pure cgroup v2)",
    ) {
        return;
    }
    let g = Guard::new("limits_best_effort");
    let cg = TestCgroup::new(&g, "lim");
    let before = state_of(&cg.path);
    let ran = g.path("ran");
    let script = format!(
        "cat /proc/self/cgroup > {}",
        fixture::sh_quote(&ran.display().to_string())
    );
    let out = g
        .start(cg.cg_test(&[
            "--limits",
            "best-effort",
            "--memory-max",
            "64M",
            "--pids-max",
            "20",
            "--cpus",
            "0.5",
            "--",
            "sh",
            "-c",
            &script,
        ]))
        .finish();
    out.assert_code(0);
    let lines = out.stderr_lines();
    assert_eq!(
        lines.len(),
        2,
        "one warning and the summary:\n{}",
        out.stderr
    );
    assert!(
        lines[0].starts_with("cg-test: warning: --")
            && lines[0].ends_with("running without limits (--limits best-effort)"),
        "{:?}",
        lines[0]
    );
    out.assert_summary("isolation", "cgroup");
    out.assert_summary("outcome", "success");
    // It ran in a leaf of its own all the same.
    let seen = std::fs::read_to_string(&ran).expect("the command ran");
    assert!(seen.contains("/cg-test-"), "the command's cgroup: {seen}");
    assert!(cg.leaves().is_empty());
    assert_eq!(state_of(&cg.path), before);
}

/// Bad values never start anything: one line naming the flag and what it accepts,
/// exit 125, no leaf, the command never runs.
#[test]
fn bad_limit_values_are_refused_before_anything_starts() {
    let g = Guard::new("limits_bad_input");
    let cg = TestCgroup::new(&g, "lim");
    let ran = g.path("ran");
    let script = format!(
        "echo ran > {}",
        fixture::sh_quote(&ran.display().to_string())
    );
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--memory-max", "0"], "--memory-max", "a size above zero"),
        (
            &["--memory-max", "banana"],
            "--memory-max",
            "a size above zero",
        ),
        (&["--memory-max", "64MB"], "--memory-max", "powers of 1024"),
        (&["--pids-max", "-1"], "--pids-max", "from 1 to 4194304"),
        (&["--pids-max", "0"], "--pids-max", "from 1 to 4194304"),
        (&["--cpus", "0"], "--cpus", "from 0.01 to 1024"),
        (&["--cpus", "1e9"], "--cpus", "from 0.01 to 1024"),
        (&["--cpus", "-0.5"], "--cpus", "from 0.01 to 1024"),
        (
            &["--memory-max", "64M", "--memory-swap-max", "x"],
            "--memory-swap-max",
            "0 or max",
        ),
        (&["--memory-swap-max", "1G"], "--memory-max", "required"),
        (
            &["--limits", "sometimes", "--cpus", "1"],
            "--limits",
            "best-effort",
        ),
        (
            &["--pids-max", "20", "--isolation", "pgroup"],
            "--pids-max",
            "--isolation pgroup has none",
        ),
        (
            &[
                "--memory-max",
                "1G",
                "--isolation",
                "pgroup",
                "--limits",
                "best-effort",
            ],
            "--memory-max",
            "--isolation pgroup has none",
        ),
    ];
    for (args, flag, accepted) in cases {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--", "sh", "-c", &script]);
        let out = g.start(cg.cg_test(&a)).finish();
        out.assert_code(125);
        let line = out.assert_one_error_line();
        assert!(
            line.contains(flag),
            "{args:?}: the line should name {flag}: {line:?}"
        );
        assert!(
            line.contains(accepted),
            "{args:?}: the line should say {accepted:?}: {line:?}"
        );
        assert!(out.stdout.is_empty());
        assert!(!ran.exists(), "{args:?}: the command ran");
        assert!(cg.leaves().is_empty(), "{args:?}: a leaf was made");
    }
}

/// A limited run whose cg-test and watchdog both died leaves its own leaf
/// (`cg-test-<id>-supervisor`) and the record of the controllers it enabled. gc removes
/// the leaf and disables what the record lists (here nothing is enabled any more, so
/// only the record goes) — but not while a live limited run at that cgroup holds the
/// presence lock (a shared flock on the directory), the negative control.
#[test]
fn gc_collects_a_stale_supervisor_leaf_and_record() {
    let g = Guard::new("limits_gc_supervisor");
    let cg = TestCgroup::new(&g, "lim");
    // A dead owner: a process that was alive (pid + start time) and is gone now.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let start = start_time(pid);
    child.kill().unwrap();
    child.wait().unwrap();
    let supervisor = cg
        .path
        .join(format!("cg-test-{pid}-{start}-0badcafe-supervisor"));
    std::fs::create_dir(&supervisor).unwrap();
    set_record(&cg.path, "memory pids");

    // A live limited run holds the presence: gc leaves the record alone.
    let presence = std::fs::File::open(&cg.path).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&presence), libc::LOCK_SH) },
        0
    );
    let out = g
        .start(g.cg_test(&["gc", &cg.path.display().to_string()]))
        .finish();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains(&format!("removed stale leaf {}", supervisor.display())),
        "{}",
        out.stderr
    );
    assert!(!supervisor.exists());
    assert_eq!(
        record_of(&cg.path).as_deref(),
        Some("memory pids"),
        "in use: kept"
    );
    drop(presence);

    // Nobody holds it: the record goes (nothing it lists is enabled, so nothing to
    // disable and no line for it).
    let out = g
        .start(g.cg_test(&["gc", &cg.path.display().to_string()]))
        .finish();
    out.assert_code(0);
    assert_eq!(record_of(&cg.path), None, "gc: {}", out.stderr);
    assert!(cg.leaves().is_empty());
}
