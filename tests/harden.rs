//! `--harden` (issue 12): a root command cannot move itself out of its leaf by the
//! plain path. Every other route is tried in tests/adversary/harden.rs.
//!
//! cg-test runs in a cgroup of the test's own; a child of the command (root) tries to
//! write its pid into that cgroup's `cgroup.procs` (the leaf's parent), then becomes a
//! sleeper with a marker, a late file and a bounded life. Under `--harden` the write fails, the
//! process stays in the leaf and dies at the timeout. Without `--harden` (the negative
//! control) the same write succeeds, the process is outside the leaf and survives the
//! run, and the test kills it by pid. Also: what the hardened command has (a cgroup
//! namespace rooted at the leaf, none of the dropped capabilities in any set,
//! no_new_privs, a seccomp filter), a nested cg-test inside it, and the refusals (no
//! privilege, --isolation pgroup).

use std::time::Duration;

use crate::unprivileged::{binaries_for_nobody, NOBODY};
use crate::util::fixture::sh_quote;
use crate::util::*;

/// The capabilities --harden drops, as bits of the /proc/<pid>/status masks:
/// CAP_DAC_READ_SEARCH 2, CAP_SYS_MODULE 16, CAP_SYS_RAWIO 17, CAP_SYS_PTRACE 19,
/// CAP_SYS_ADMIN 21, CAP_SYS_BOOT 22, CAP_SYS_TTY_CONFIG 26, CAP_PERFMON 38, CAP_BPF 39.
pub(crate) const DROPPED_BITS: u64 =
    1 << 2 | 1 << 16 | 1 << 17 | 1 << 19 | 1 << 21 | 1 << 22 | 1 << 26 | 1 << 38 | 1 << 39;

struct Escape {
    /// The command's write into the parent's cgroup.procs succeeded.
    escaped: bool,
    out: run::Finished,
    /// The process that tried, and whether it outlived the run.
    pid: i32,
    survived: bool,
    /// The command's /proc/self/cgroup and capability lines, as it saw them.
    seen: String,
}

fn try_to_escape(g: &Guard, harden: bool) -> Escape {
    let parent = TestCgroup::new(g, if harden { "hard" } else { "soft" });
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let escaped = g.path("escaped");
    let seen = g.path("seen");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let procs = parent.path.join("cgroup.procs");
    // A child of the command tries (the command itself would die with cg-test anyway,
    // of its parent-death signal); it then becomes the sleeper, same pid.
    let child = format!(
        ": {marker}; {{ grep '^0::' /proc/self/cgroup; \
         grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; }} > {seen}; \
         if echo $$ > {procs}; then touch {escaped}; fi; \
         exec {sleeper} >/dev/null 2>&1",
        marker = g.marker(),
        seen = sh_quote(seen.to_str().unwrap()),
        procs = sh_quote(procs.to_str().unwrap()),
        escaped = sh_quote(escaped.to_str().unwrap()),
        sleeper = fx.sh(&["sleep"]),
    );
    let script = format!(": {}; sh -c {} & wait", g.marker(), sh_quote(&child));
    let mut args = vec!["-v", "-t", "2s", "-k", "1s"];
    if harden {
        args.push("--harden");
    }
    args.extend(["--", "sh", "-c", &script]);
    let run = g.start(parent.cg_test(&args));
    let ready = wait_ready(&ready_dir, 1);
    // --harden implies a pid namespace: the fixture announced its pid inside it.
    let pid = if harden {
        crate::pid_ns::host_pids(&ready, g.marker())[0]
    } else {
        ready.pids[0]
    };
    assert_alive_with_marker(&[pid], g.marker());
    let out = run.finish();
    let survived = procs::is_alive(pid);
    let in_parent = std::fs::read_to_string(&procs)
        .unwrap_or_default()
        .lines()
        .any(|l| l.trim() == pid.to_string());
    if survived {
        assert!(in_parent, "a survivor should be in the test's cgroup");
        // The negative control's escapee: ours (marker checked above), killed by pid.
        procs::kill(pid, libc::SIGKILL);
        wait_for(
            "the escaped process to die",
            Duration::from_secs(10),
            || (!procs::is_alive(pid)).then_some(()),
        );
    } else {
        assert_late_never(&late, late_due(&ready, LATE_SECS));
    }
    assert_no_survivors(g.marker());
    assert!(
        parent.leaves().is_empty(),
        "leaves left: {:?}",
        parent.leaves()
    );
    Escape {
        escaped: escaped.exists(),
        out,
        pid,
        survived,
        seen: std::fs::read_to_string(&seen).unwrap_or_default(),
    }
}

fn mask(seen: &str, key: &str) -> u64 {
    seen.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no {key} in {seen:?}"))
}

#[test]
fn a_hardened_root_command_cannot_leave_its_leaf() {
    let g = Guard::new("harden_stays");
    let e = try_to_escape(&g, true);
    assert!(!e.escaped, "the write must fail; stderr:\n{}", e.out.stderr);
    assert!(!e.survived, "pid {} must die at the timeout", e.pid);
    e.out.assert_code(124);
    e.out.assert_summary("isolation", "cgroup");
    assert!(
        e.seen.lines().any(|l| l == "0::/"),
        "the command's cgroup namespace is rooted at its leaf: {:?}",
        e.seen
    );
    for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            mask(&e.seen, key) & DROPPED_BITS,
            0,
            "{key} still has one of the dropped capabilities: {:?}",
            e.seen
        );
    }
    // Root keeps the rest of what it had (here CAP_KILL and CAP_DAC_OVERRIDE).
    assert_ne!(mask(&e.seen, "CapEff") & (1 << 5), 0, "{:?}", e.seen);
    assert_ne!(mask(&e.seen, "CapEff") & (1 << 1), 0, "{:?}", e.seen);
    for (key, want) in [("NoNewPrivs:", "1"), ("Seccomp:", "2")] {
        assert!(
            e.seen.lines().any(|l| l.split_whitespace().eq([key, want])),
            "{key} {want}: {:?}",
            e.seen
        );
    }
}

/// The negative control: without --harden the same root command moves itself out, and
/// the run's teardown (which kills the leaf) does not reach it.
#[test]
fn without_harden_the_same_command_escapes() {
    let g = Guard::new("harden_control");
    let e = try_to_escape(&g, false);
    assert!(
        e.escaped,
        "the write should succeed; stderr:\n{}",
        e.out.stderr
    );
    assert!(
        e.survived,
        "the escapee outlives the run (the test killed it by pid)"
    );
    e.out.assert_code(124);
    assert!(
        e.seen
            .lines()
            .any(|l| l.starts_with("0::/") && l.contains("cg-test-")),
        "without a cgroup namespace the command sees its leaf's full path: {:?}",
        e.seen
    );
}

/// A cg-test inside a hardened run still works: it sees the leaf as the cgroup root
/// and makes its own leaf below it.
#[test]
fn a_nested_cg_test_works_inside() {
    let g = Guard::new("harden_nested");
    let script = format!(": {}; grep '^0::' /proc/self/cgroup", g.marker());
    let out = g
        .start(g.cg_test(&[
            "--harden",
            "--",
            CG_TEST,
            "-v",
            "--isolation",
            "cgroup",
            "--",
            "sh",
            "-c",
            &script,
        ]))
        .finish();
    out.assert_code(0);
    let inner = out.stdout.trim().strip_prefix("0::/").unwrap_or_default();
    assert!(
        inner.starts_with("cg-test-") && !inner.contains('/'),
        "the inner run's leaf, directly below the outer leaf (the namespace's root): {:?}",
        out.stdout
    );
    assert_no_leaf(out.pid);
}

#[test]
fn without_the_privilege_it_refuses() {
    let g = Guard::new("harden_nobody");
    let (cg_test, _) = binaries_for_nobody(&g);
    let ran = g.path("ran");
    g.open_to_all(g.dir());
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ])
    .arg(&cg_test)
    .args([
        "--harden",
        "--",
        "sh",
        "-c",
        &format!(": {}; touch {}", g.marker(), ran.display()),
    ]);
    let out = g.start(cmd).finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(
        line.contains("--harden") && line.contains("CAP_SYS_ADMIN"),
        "{line:?}"
    );
    assert!(!ran.exists(), "the command must not have run");
    assert_no_leaf(out.pid);
}

#[test]
fn harden_needs_a_leaf() {
    let g = Guard::new("harden_pgroup");
    let out = g
        .start(g.cg_test(&[
            "--harden",
            "--isolation",
            "pgroup",
            "--",
            "sh",
            "-c",
            &format!(": {}", g.marker()),
        ]))
        .finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(
        line.contains("--harden") && line.contains("--isolation pgroup"),
        "{line:?}"
    );
    assert_no_leaf(out.pid);
}
