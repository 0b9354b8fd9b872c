//! Issue 3: as an unprivileged user (uid 65534) no cgroup leaf can be made here.
//! `auto` falls back to the process-group strategy with a note and still reaps a
//! daemon the command left (keeping the command's exit code); `--isolation cgroup`
//! refuses with one line and exit 125. Neither leaves a leaf. The same holds where
//! the cgroup filesystem is read-only, as in an unprivileged container.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::fixture::sh_wait_ready;
use crate::util::*;

pub(crate) const NOBODY: &str = "65534";

/// Can uid 65534 execute `path` (every ancestor searchable, the file readable and
/// executable by others)?
fn world_executable(path: &Path) -> bool {
    let mode = |p: &Path| p.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
    mode(path) & 0o005 == 0o005 && path.ancestors().skip(1).all(|a| mode(a) & 0o001 != 0)
}

/// The two binaries, copied to the test's directory (mode 0755) unless uid 65534 can
/// already run them where they are.
pub(crate) fn binaries_for_nobody(g: &Guard) -> (PathBuf, PathBuf) {
    let place = |src: &str, name: &str| {
        let src = PathBuf::from(src);
        if world_executable(&src) {
            return src;
        }
        let dst = g.path(name);
        std::fs::copy(&src, &dst).expect("copying a binary for uid 65534");
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        dst
    };
    (place(CG_TEST, "cg-test"), place(FIXTURE, "cg-test-fixture"))
}

fn as_nobody(cg_test: &Path, args: &[String]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ])
    .arg(cg_test)
    .args(args);
    c
}

fn uid_of(pid: i32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(String::from))
}

#[test]
fn auto_falls_back_and_reaps_the_daemon() {
    let g = Guard::new("unpriv_auto");
    let ready_dir = g.subdir("ready");
    g.open_to_all(&ready_dir);
    let (cg_test, fixture) = binaries_for_nobody(&g);
    let late = ready_dir.join("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let mut argv = fx.argv(&["daemon", "--exit", "0"]);
    argv[0] = fixture.display().to_string();
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| crate::util::fixture::sh_quote(a))
        .collect();
    let script = format!(
        "{}; {}; exit 5",
        quoted.join(" "),
        sh_wait_ready(&ready_dir, 1)
    );
    let args: Vec<String> = [
        "--isolation",
        "auto",
        "--leak-timeout",
        "2s",
        "--",
        "sh",
        "-c",
        &script,
    ]
    .map(String::from)
    .to_vec();
    let run = g.start(as_nobody(&cg_test, &args));

    let ready = wait_ready(&ready_dir, 1);
    let daemon = ready.pids[0];
    assert_alive_with_marker(&[daemon], g.marker());
    assert_eq!(
        uid_of(daemon).as_deref(),
        Some(NOBODY),
        "the daemon runs as nobody"
    );

    let out = run.finish();
    out.assert_code(5);
    assert!(
        out.stderr.contains("using process group"),
        "auto should say it falls back; stderr:\n{}",
        out.stderr
    );
    out.assert_summary("isolation", "pgroup");
    out.assert_summary("leaked", "1");
    assert_eq!(out.leaked_pids(), vec![daemon]);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}

#[test]
fn cgroup_mode_refuses_with_one_line() {
    let g = Guard::new("unpriv_cgroup");
    let (cg_test, _) = binaries_for_nobody(&g);
    let args: Vec<String> = ["--isolation", "cgroup", "--", "true"]
        .map(String::from)
        .to_vec();
    let out = g.start(as_nobody(&cg_test, &args)).finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(line.contains("cgroup"), "{line:?}");
    assert_no_leaf(out.pid);
}

/// A container's usual situation: the cgroup filesystem is mounted read-only. Recreated
/// with a private mount namespace in which the cgroup2 mount is remounted read-only
/// (the host's mount is untouched). `auto` says why and falls back; `cgroup` refuses.
#[test]
fn read_only_cgroupfs_falls_back_with_its_reason() {
    let g = Guard::new("readonly_cgroupfs");
    let mount = cgroup::mount_point();
    let script = format!(
        "mount -o remount,ro,bind {m} || exit 99; \
         {cg} --isolation auto -- sh -c 'exit 5'; echo auto=$?; \
         {cg} --isolation cgroup -- true; echo cgroup=$?",
        m = crate::util::fixture::sh_quote(mount.to_str().unwrap()),
        cg = crate::util::fixture::sh_quote(CG_TEST),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let out = g.start(cmd).finish();
    out.assert_code(0);
    assert!(out.stdout.contains("auto=5"), "stdout:\n{}", out.stdout);
    assert!(out.stdout.contains("cgroup=125"), "stdout:\n{}", out.stdout);
    assert!(
        out.stderr.contains("Read-only file system") && out.stderr.contains("using process group"),
        "auto should name the read-only mount and fall back; stderr:\n{}",
        out.stderr
    );
    let refusals: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("--isolation cgroup"))
        .collect();
    assert_eq!(refusals.len(), 1, "stderr:\n{}", out.stderr);
}
