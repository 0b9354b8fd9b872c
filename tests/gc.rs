//! Issue 7: stale leaves. A leaf whose cg-test is gone (here made honestly: a run whose
//! cg-test and watchdog were both SIGKILLed, so its daemons live on in the leaf) is
//! reaped by `cg-test gc` and by the start of any cg-test beside it; a live run's leaf
//! next to it is never touched, and that run still ends normally; `--dry-run` changes
//! nothing.
//!
//! Every cg-test in these tests runs in a cgroup the test creates below its own, so
//! that the start-up sweep of other tests' runs (which run in the test process's own
//! cgroup) never sees these leaves, and these tests never touch theirs.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::util::*;

/// A stale leaf in `cg`: a run whose cg-test and watchdog are both SIGKILLed (cg-test
/// stopped first, so it cannot replace the watchdog; then the watchdog, so it cannot
/// act; then cg-test: as if both died at the same instant), leaving an escaped daemon and a TERM-ignorer alive
/// in the leaf. Returns the leaf, the victims (alive), and their late marker and its
/// trigger (they live until gc, whose moment load can delay: see
/// [`Fixture::late_on`]).
pub(crate) fn make_stale_leaf(
    g: &Guard,
    cg: &TestCgroup,
    tag: &str,
) -> (PathBuf, Vec<i32>, PathBuf, PathBuf) {
    let marker = g.extra_marker(tag);
    let ready_dir = g.subdir(&format!("ready_{tag}"));
    let late = g.path(&format!("late_{tag}"));
    let trigger = g.path(&format!("late_trigger_{tag}"));
    let fx = Fixture::new(&marker)
        .ready(&ready_dir)
        .late_on(&late, &trigger);
    let before = cg.leaves();
    let mut args: Vec<String> = vec!["-v".into(), "--isolation".into(), "cgroup".into()];
    args.push("--".into());
    args.extend([
        "sh".to_string(),
        "-c".to_string(),
        // The victims outlive cg-test, so they must not hold the pipes the test reads
        // cg-test's output from.
        format!(
            "{} >/dev/null 2>&1 & {} >/dev/null 2>&1 & wait",
            fx.sh(&["daemon"]),
            fx.sh(&["ignore-term"])
        ),
    ]);
    let mut run = g.start(cg.cg_test(&args));
    let ready = wait_ready(&ready_dir, 3);
    assert_alive_with_marker(&ready.pids, &marker);
    let line = run.wait_stderr("watchdog pid", Duration::from_secs(20));
    let watchdog: i32 = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("the watchdog's pid in the -v line");
    run.signal(libc::SIGSTOP);
    wait_for("cg-test to stop", Duration::from_secs(10), || {
        procs::stat(run.pid)
            .is_some_and(|s| s.state == 'T')
            .then_some(())
    });
    procs::kill(watchdog, libc::SIGKILL);
    wait_for("the watchdog to die", Duration::from_secs(10), || {
        (!procs::is_alive(watchdog)).then_some(())
    });
    run.signal(libc::SIGKILL);
    let out = run.finish();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL)
    );
    let leaf = cg
        .leaves()
        .into_iter()
        .find(|l| !before.contains(l))
        .expect("the killed run's leaf is left behind");
    // The command (cg-test's direct child) died of its parent-death signal; the
    // daemon pair and the ignorer live on in the leaf.
    std::thread::sleep(Duration::from_millis(200));
    assert_alive_with_marker(&ready.pids, &marker);
    (leaf, ready.pids, late, trigger)
}

fn gc(g: &Guard, args: &[&str]) -> run::Finished {
    let mut a = vec!["gc".to_string()];
    a.extend(args.iter().map(|s| s.to_string()));
    g.start(g.cg_test(&a)).finish()
}

#[test]
fn gc_reaps_a_stale_leaf_and_leaves_a_live_run_alone() {
    let g = Guard::new("gc_stale");
    let cg = TestCgroup::new(&g, "gc");
    let dir = cg.path.display().to_string();

    // A live run first (a start sweeps stale leaves beside it, so it must come before
    // the stale leaf exists): it waits for a file, then exits 7.
    let go = g.path("go");
    let live_marker = g.extra_marker("live");
    let live_args: Vec<String> = vec![
        "--isolation".into(),
        "cgroup".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!("{}; exit 7", fixture::sh_wait_file(&go)),
        live_marker.clone(),
    ];
    let live = g.start(cg.cg_test(&live_args));
    let live_leaf = wait_for("the live run's leaf", Duration::from_secs(20), || {
        cg.leaves().into_iter().next()
    });

    let (stale, victims, late, trigger) = make_stale_leaf(&g, &cg, "stale");
    assert_eq!(cg.leaves().len(), 2);

    // --dry-run: says what it would do, changes nothing.
    let dry = gc(&g, &["--dry-run", &dir]);
    dry.assert_code(0);
    for &v in &victims {
        assert!(
            dry.stderr.contains(&format!("would kill pid {v} (")),
            "dry run should name pid {v}; stderr:\n{}",
            dry.stderr
        );
    }
    assert!(
        dry.stderr
            .contains(&format!("would remove stale leaf {}", stale.display())),
        "{}",
        dry.stderr
    );
    assert!(!dry.stderr.contains(&live_leaf.display().to_string()));
    assert_eq!(cg.leaves(), {
        let mut v = vec![live_leaf.clone(), stale.clone()];
        v.sort();
        v
    });
    assert_alive_with_marker(&victims, g.marker());

    // The real thing: every victim killed and named, the stale leaf gone, the live
    // run's leaf untouched.
    let out = gc(&g, &[&dir]);
    out.assert_code(0);
    for &v in &victims {
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(&format!("killed pid {v} (")))
            .unwrap_or_else(|| panic!("no line for pid {v}; stderr:\n{}", out.stderr));
        assert!(line.contains(g.marker()), "the command line: {line:?}");
    }
    assert!(
        out.stderr
            .contains(&format!("removed stale leaf {}", stale.display())),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.lines().count(),
        victims.len() + 1,
        "one line per process and one per leaf:\n{}",
        out.stderr
    );
    assert_eq!(cg.leaves(), vec![live_leaf]);
    assert_no_survivors(&format!("{}stale_", g.marker()));
    assert_late_never_after(&trigger, &late);

    // The live run was never touched: it ends normally.
    std::fs::write(&go, "").unwrap();
    let out = live.finish();
    out.assert_code(7);
    out.assert_summary("outcome", "failure");
    assert!(cg.leaves().is_empty());
}

#[test]
fn a_start_reaps_stale_leaves_beside_its_own() {
    let g = Guard::new("gc_start_sweep");
    let cg = TestCgroup::new(&g, "gc");
    let (stale, victims, late, trigger) = make_stale_leaf(&g, &cg, "stale");

    let out = g.start(cg.cg_test(&["--", "true"])).finish();
    out.assert_code(0);
    for &v in &victims {
        assert!(
            out.stderr.contains(&format!("killed pid {v} (")),
            "the start should name pid {v}; stderr:\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .contains(&format!("removed stale leaf {}", stale.display())),
        "{}",
        out.stderr
    );
    out.assert_summary("outcome", "success");
    assert!(cg.leaves().is_empty());
    assert_no_survivors(g.marker());
    assert_late_never_after(&trigger, &late);
}

#[test]
fn gc_with_nothing_to_collect() {
    let g = Guard::new("gc_nothing");
    let cg = TestCgroup::new(&g, "gc");
    let out = gc(&g, &[&cg.path.display().to_string()]);
    out.assert_code(0);
    let line = out.assert_one_error_line();
    assert!(line.contains("nothing to collect"), "{line:?}");
}

#[test]
fn gc_outside_a_cgroup2_mount_is_refused() {
    let g = Guard::new("gc_outside");
    for bad in [g.dir().display().to_string(), "/nonexistent/x".to_string()] {
        let out = gc(&g, &[&bad]);
        out.assert_code(125);
        let line = out.assert_one_error_line();
        assert!(line.contains(&bad), "the error should name {bad}: {line:?}");
    }
}

/// Where no cgroup2 is mounted (here: a mount namespace with it unmounted), gc says so
/// and succeeds.
#[test]
fn gc_without_cgroup2() {
    let g = Guard::new("gc_no_cgroup2");
    let mount = cgroup::mount_point();
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("umount -l \"$1\" && exec \"$2\" gc")
        .args(["sh", &mount.display().to_string(), CG_TEST]);
    let out = g.start(c).finish();
    out.assert_code(0);
    let line = out.assert_one_error_line();
    assert!(line.contains("no cgroup2 filesystem"), "{line:?}");
}

/// `gc` is a tool only as the first argument: after `--` it is the command.
#[test]
fn gc_after_the_separator_is_a_command() {
    let g = Guard::new("gc_as_command");
    let out = g
        .start(g.cg_test(&["--isolation", "cgroup", "--", "gc"]))
        .finish();
    out.assert_code(127);
}
