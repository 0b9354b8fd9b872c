//! Issue 18 item 4: the cgroup2 hierarchy mounted more than once (a bind mount, a
//! read-only view, a container's extra mount). cg-test used to take the last cgroup2
//! mount in mountinfo and act on the leaf by path; each scenario here is one way that
//! went wrong, with a control that shows the trap is real:
//!
//! - a read-only view listed after the writable mount: `--isolation cgroup` works and
//!   `auto` uses a leaf (control: the last mount in mountinfo is the view, and mkdir
//!   there fails with EROFS);
//! - the writable mount covered by a read-only view on the same mount point, another
//!   writable mount elsewhere: the covered one is passed over (control: mkdir through
//!   the covered path fails);
//! - the mount a live run's leaf was made through unmounted lazily, then cg-test
//!   SIGKILLed: the watchdog still kills a process that cleared its environment (so no
//!   token sweep finds it) and removes the leaf, through the descriptor it inherited
//!   (control: the leaf's path no longer resolves while the leaf is alive and
//!   populated);
//! - `cg-test gc PATH` with PATH under a second mount of the hierarchy: accepted and
//!   collected (control: PATH is not under the mount cg-test itself uses).
//!
//! Every mount is made inside `unshare -m --propagation private`, so none is ever left
//! on the host; the namespace ends with its last process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::gc::make_stale_leaf;
use crate::supervisor_death::assert_all_gone_soon;
use crate::util::fixture::sh_quote;
use crate::util::*;

/// `unshare -m --propagation private sh -c SCRIPT`, the script starting in `cg` (it
/// moves itself there first). The script sees `$CG` (cg-test), `$M` (where this test
/// found the cgroup2 mount), `$D` (an empty directory of the test's, for mount points)
/// and `$CGP` (the test's cgroup, through `$M`). A script that ends in `exec "$CG" ...`
/// keeps the pid the test started (unshare and sh exec), so the guard knows the run.
pub(crate) fn private_mounts(g: &Guard, cg: &TestCgroup, script: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "echo $$ > \"$CGP/cgroup.procs\" || exit 98\n{script}"
        ))
        .env("CG", CG_TEST)
        .env("M", cgroup::mount_point())
        .env("D", g.subdir("mnt"))
        .env("CGP", &cg.path)
        .env_remove("GITHUB_ACTIONS");
    c
}

/// The mount points a test made, as the script names them.
fn mnt(g: &Guard, name: &str) -> PathBuf {
    g.dir().join("mnt").join(name)
}

/// Lines of `text` that start with `key=`, their values.
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

fn cgroup_line_of(cg: &TestCgroup) -> String {
    let name = cg.path.file_name().unwrap().to_string_lossy().into_owned();
    let own = cgroup::own_path();
    format!("0::{}/{name}/cg-test-", own.trim_end_matches('/'))
}

#[test]
fn a_read_only_view_listed_last_is_not_the_one_used() {
    let g = Guard::new("mnt_ro_last");
    let cg = TestCgroup::new(&g, "mnt");
    let script = r#"
set -e
mkdir -p "$D/ro"
mount --bind "$M" "$D/ro"
mount -o remount,bind,ro "$D/ro"
echo "last=$(awk '$0 ~ / - cgroup2 / { p = $5 } END { print p }' /proc/self/mountinfo)"
if mkdir "$D/ro/cgt-probe-$$" 2>/dev/null; then rmdir "$D/ro/cgt-probe-$$"; echo probe=made; else echo probe=refused; fi
set +e
"$CG" --isolation cgroup -- sh -c 'echo "leaf=$(tail -n1 /proc/self/cgroup)"'; echo "cgroup=$?"
"$CG" --isolation auto -- sh -c 'echo "leaf=$(tail -n1 /proc/self/cgroup)"'; echo "auto=$?"
"#;
    let out = g.start(private_mounts(&g, &cg, script)).finish();
    out.assert_code(0);
    // The control: a choice of the last cgroup2 mount takes the read-only view, where
    // no leaf can be made.
    assert_eq!(
        values(&out.stdout, "last"),
        vec![mnt(&g, "ro").to_str().unwrap()],
        "stdout:\n{}",
        out.stdout
    );
    assert_eq!(values(&out.stdout, "probe"), vec!["refused"]);
    // The defence: both runs use a leaf (under the test's cgroup), neither falls back.
    assert_eq!(values(&out.stdout, "cgroup"), vec!["0"], "{}", out.stderr);
    assert_eq!(values(&out.stdout, "auto"), vec!["0"], "{}", out.stderr);
    let leaves = values(&out.stdout, "leaf");
    assert_eq!(leaves.len(), 2, "stdout:\n{}", out.stdout);
    for l in leaves {
        assert!(l.starts_with(&cgroup_line_of(&cg)), "{l:?}");
    }
    assert!(!out.stderr.contains("isolation=pgroup"), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("isolation=cgroup").count(),
        2,
        "{}",
        out.stderr
    );
    assert!(cg.leaves().is_empty());
}

#[test]
fn a_writable_mount_covered_by_a_read_only_view_is_passed_over() {
    let g = Guard::new("mnt_covered");
    let cg = TestCgroup::new(&g, "mnt");
    let script = r#"
set -e
mkdir -p "$D/rw"
mount -t cgroup2 none "$D/rw"
mount --bind "$M" "$M"
mount -o remount,bind,ro "$M"
if mkdir "$CGP/cgt-probe" 2>/dev/null; then rmdir "$CGP/cgt-probe"; echo probe=made; else echo probe=refused; fi
set +e
"$CG" -v --isolation cgroup -- sh -c 'echo "leaf=$(tail -n1 /proc/self/cgroup)"'; echo "cgroup=$?"
"#;
    let out = g.start(private_mounts(&g, &cg, script)).finish();
    out.assert_code(0);
    // The control: the path through the first mount in mountinfo leads to the
    // read-only view on top of it.
    assert_eq!(
        values(&out.stdout, "probe"),
        vec!["refused"],
        "{}",
        out.stdout
    );
    assert_eq!(values(&out.stdout, "cgroup"), vec!["0"], "{}", out.stderr);
    let leaf = values(&out.stdout, "leaf");
    assert!(
        leaf.len() == 1 && leaf[0].starts_with(&cgroup_line_of(&cg)),
        "{leaf:?}"
    );
    // Made through the writable mount.
    let created = out
        .stderr
        .lines()
        .find(|l| l.contains("created "))
        .unwrap_or_else(|| panic!("no `created` line:\n{}", out.stderr));
    assert!(
        created.contains(mnt(&g, "rw").to_str().unwrap()),
        "{created:?}"
    );
    assert!(cg.leaves().is_empty());
}

/// Run `ARGS` inside the mount namespace of process `pid` (nsenter).
fn in_mount_ns_of(pid: i32, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "--"])
        .args(args)
        .output()
        .expect("running nsenter")
}

fn populated(leaf: &Path) -> bool {
    std::fs::read_to_string(leaf.join("cgroup.events"))
        .is_ok_and(|t| t.lines().any(|l| l == "populated 1"))
}

#[test]
fn a_mount_unmounted_under_a_live_run_does_not_hide_its_leaf() {
    let g = Guard::new("mnt_lazy");
    let cg = TestCgroup::new(&g, "mnt");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let trigger = g.path("late_trigger");
    let fx = g.fixture().ready(&ready_dir).late_on(&late, &trigger);
    // The test's cgroup bound at $D/sub: the mount that shows our own subtree is the
    // one cg-test makes its leaf through (a container's view of its own cgroup).
    let script = format!(
        "mkdir -p \"$D/sub\" && mount --bind \"$CGP\" \"$D/sub\" || exit 97\n\
         exec \"$CG\" -v --isolation cgroup -- sh -c {}",
        sh_quote(&format!("{} >/dev/null 2>&1 & wait", fx.sh(&["scrub-env"])))
    );
    let mut run = g.start(private_mounts(&g, &cg, &script));
    let created = run.wait_stderr("created ", Duration::from_secs(20));
    let shown: PathBuf = created
        .split_whitespace()
        .find(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no leaf in {created:?}"));
    assert!(
        shown.starts_with(mnt(&g, "sub")),
        "made through the bind: {created:?}"
    );
    let line = run.wait_stderr("watchdog pid", Duration::from_secs(20));
    let watchdog: i32 = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("the watchdog's pid");
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());
    let leaf = cg.leaves().into_iter().next().expect("the run's leaf");

    let umount = in_mount_ns_of(run.pid, &["umount", "-l", mnt(&g, "sub").to_str().unwrap()]);
    assert!(umount.status.success(), "umount -l: {umount:?}");
    // The control: the path the run made its leaf by leads nowhere now, although the
    // leaf lives on with the victim in it (seen through the test's own mount).
    let test = in_mount_ns_of(run.pid, &["test", "-e", shown.to_str().unwrap()]);
    assert_eq!(
        test.status.code(),
        Some(1),
        "{} should be gone",
        shown.display()
    );
    assert!(populated(&leaf), "{} should be populated", leaf.display());

    run.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    // The watchdog keeps cg-test's stderr until it is done.
    let out = run.finish();
    assert!(!procs::is_alive(watchdog));
    assert!(
        out.stderr.contains("watchdog: cg-test (pid")
            && out
                .stderr
                .contains("killed 1 process(es) of its run and removed"),
        "the watchdog should say what it killed and removed; stderr:\n{}",
        out.stderr
    );
    assert_all_gone_soon(g.marker(), killed_at);
    assert!(cg.leaves().is_empty(), "{:?}", cg.leaves());
    assert_late_never_after(&trigger, &late);
}

#[test]
fn gc_takes_a_path_under_any_mount_of_the_hierarchy() {
    let g = Guard::new("mnt_gc_path");
    let cg = TestCgroup::new(&g, "mnt");
    let (stale, victims, late, trigger) = make_stale_leaf(&g, &cg, "stale");
    let name = cg.path.file_name().unwrap().to_str().unwrap().to_string();
    let other = mnt(&g, "second").join(&name);
    // The control: PATH is not under the mount cg-test itself reaches the hierarchy
    // through (a prefix check against that one mount refuses it).
    assert!(!other.starts_with(cgroup::mount_point()));
    let script = format!(
        "mkdir -p \"$D/second\" && mount -t cgroup2 none \"$D/second\" || exit 97\n\
         \"$CG\" gc --dry-run {p}; echo \"dry=$?\"\n\
         exec \"$CG\" gc {p}",
        p = sh_quote(other.to_str().unwrap())
    );
    let out = g.start(private_mounts(&g, &cg, &script)).finish();
    out.assert_code(0);
    assert_eq!(
        values(&out.stdout, "dry"),
        vec!["0"],
        "stderr:\n{}",
        out.stderr
    );
    let shown = other.join(stale.file_name().unwrap());
    assert!(
        out.stderr
            .contains(&format!("would remove stale leaf {}", shown.display()))
            && out
                .stderr
                .contains(&format!("removed stale leaf {}", shown.display())),
        "stderr:\n{}",
        out.stderr
    );
    for v in &victims {
        assert!(
            out.stderr.contains(&format!("killed pid {v} (")),
            "{}",
            out.stderr
        );
    }
    assert!(cg.leaves().is_empty());
    assert_no_survivors(&format!("{}stale_", g.marker()));
    assert_late_never_after(&trigger, &late);
}
