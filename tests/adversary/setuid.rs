//! Adversary scenarios: privileged entry points (issue 18, item 8).
//!
//! A setuid-root (or setgid-root) cg-test run by uid 65534 once wrote its `--report`
//! file as root into a directory only root may write. cg-test now refuses any exec the
//! kernel marks secure (AT_SECURE: setuid, setgid, file capabilities) with one line
//! and 125, before it reads its arguments or touches a file. Control: a setuid (or
//! setgid) copy of `id` in the same directory really runs with euid (egid) 0, so the
//! directory's mount honours the bits and the refusal is cg-test's own.
//!
//! The hidden teardown entry that the watchdog used to exec (`cg-test
//! --cg-test-watchdog-teardown ...`, which acted on any cgroup on its command line)
//! is gone with the watchdog's exec: that argument vector is now a bad command line,
//! and the arbitrary cgroup it names, with its process, is left alone.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::unprivileged::NOBODY;
use crate::util::*;

/// The mount options of the mount that holds `path` (the longest mount point that is
/// a prefix of it, in /proc/self/mountinfo).
fn mount_options(path: &Path) -> String {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (point, options) = (Path::new(f.get(4)?), f.get(5)?);
            path.starts_with(point)
                .then(|| (point.as_os_str().len(), options.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, options)| options)
        .unwrap_or_default()
}

/// A directory of the test's own, searchable by uid 65534, on a mount without
/// `nosuid` (the test's temporary directory, or else cargo's target tmpdir).
fn suid_dir(g: &Guard) -> PathBuf {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap();
    let tmp = g.subdir("suid");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("suid-{}", g.marker()));
    for dir in [tmp, target] {
        let _ = std::fs::create_dir_all(&dir);
        if mount_options(&canonical(&dir))
            .split(',')
            .all(|o| o != "nosuid")
        {
            for d in [g.dir(), dir.as_path()] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            return dir;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    panic!("neither the temporary directory nor the target tmpdir is on a mount without nosuid");
}

/// Copy `src` to `dir/name`, root-owned, with `mode` (04755 or 02755).
fn install(src: &Path, dir: &Path, name: &str, mode: u32) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("copying {src:?}: {e}"));
    std::os::unix::fs::chown(&dst, Some(0), Some(0)).unwrap();
    // chmod after chown: chown clears the set-id bits.
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode)).unwrap();
    dst
}

fn as_nobody(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ])
    .arg(program)
    .env_remove("GITHUB_ACTIONS");
    c
}

/// A set-id cg-test (`mode`: 04755 setuid, 02755 setgid) run as uid 65534 with a
/// `--report` in a directory only root may write, and a command that would leave a
/// file: exit 125, one line naming AT_SECURE, no report, no probe file, no command,
/// no leaf.
fn set_id_cg_test_is_refused(tag: &str, mode: u32, id_flag: &str) {
    let g = Guard::new(&format!("adv_setuid_{tag}"));
    let dir = suid_dir(&g);

    // Control: the same bits on `id` in the same directory raise it.
    let id = install(Path::new("/usr/bin/id"), &dir, "id", mode);
    let out = as_nobody(&id)
        .arg(id_flag)
        .stderr(Stdio::inherit())
        .output()
        .expect("running the set-id id");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the control: a set-id copy of id in {dir:?} should run with id 0 ({id_flag})"
    );
    std::fs::remove_file(&id).unwrap();

    let cg_test = install(Path::new(CG_TEST), &dir, "cg-test", mode);
    let root_only = g.path("root-only");
    std::fs::create_dir(&root_only).unwrap();
    std::fs::set_permissions(&root_only, std::fs::Permissions::from_mode(0o700)).unwrap();
    let report = root_only.join("report.json");
    let ran = g.path("ran");
    std::fs::set_permissions(g.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = as_nobody(&cg_test);
    cmd.arg("--report")
        .arg(&report)
        .args(["--", "touch"])
        .arg(&ran)
        .arg(g.marker());
    let out = g.start(cmd).finish();
    std::fs::remove_file(&cg_test).unwrap();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    for needle in ["setuid, setgid", "AT_SECURE", "chmod u-s,g-s"] {
        assert!(line.contains(needle), "{needle:?} missing in {line:?}");
    }
    assert!(!report.exists(), "the report was written as root");
    assert_eq!(
        std::fs::read_dir(&root_only).unwrap().count(),
        0,
        "nothing may be created in the root-only directory (not even a probe)"
    );
    assert!(!ran.exists(), "the command ran");
    assert_no_leaf(out.pid);
    if !dir.starts_with(g.dir()) {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_setuid_cg_test_is_refused_before_it_writes_anything() {
    set_id_cg_test_is_refused("uid", 0o4755, "-u");
}

#[test]
fn a_setgid_cg_test_is_refused_before_it_writes_anything() {
    set_id_cg_test_is_refused("gid", 0o2755, "-g");
}

/// What the watchdog used to exec (`--cg-test-watchdog-teardown killed|exiting PID
/// LEAF-NAME FLAGS VERBOSITY LEAF ...`), aimed at an arbitrary cgroup of the test's
/// own (not named `cg-test-*`) with a process in it: refused as a bad command line
/// (125), the process alive and the cgroup in place. Both are removed here.
#[test]
fn the_old_teardown_entry_acts_on_nothing() {
    let g = Guard::new("adv_setuid_entry");
    let ready_dir = g.subdir("ready");
    let cg = TestCgroup::new(&g, "arbitrary");
    let mut victim = Run::spawn(cg.command(
        FIXTURE,
        &g.fixture().ready(&ready_dir).argv(&["sleep"])[1..],
    ));
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());
    let leaf_name = format!("cg-test-{}-1-0badcafe", std::process::id());
    let cg_dir = cg.path.display().to_string();
    let args = [
        "--cg-test-watchdog-teardown",
        "killed",
        "1",
        &leaf_name,
        "--",
        "v",
        &cg_dir,
        "",
        "",
        "",
        "",
        "0",
        "0",
        "",
    ];
    let out = g.start(g.cg_test(&args)).finish();
    out.assert_code(125);
    assert!(
        out.stderr.contains("--cg-test-watchdog-teardown"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("watchdog: "), "{}", out.stderr);
    assert_alive_with_marker(&ready.pids, g.marker());
    assert!(cg.path.is_dir(), "the cgroup was removed");
    assert_eq!(cgroup::member_pids(&cg.path), ready.pids);
    procs::kill(ready.pids[0], libc::SIGKILL);
    victim.wait_exit();
    assert_no_survivors(g.marker());
}
