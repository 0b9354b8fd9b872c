//! Issue 18 item 6, and the `-supervisor` leaf point: `cg-test gc` (and the start-up
//! sweep) must never collect a leaf whose cg-test, or whose watchdog, may still be at
//! work, however the collector sees the process table.
//!
//! - gc in a new pid namespace beside a live run (`unshare -p -f --mount-proc`, and the
//!   issue's `cg-test --pid-ns -- cg-test gc`), with and without `--dry-run`: the run's
//!   leaf stays, its processes live, and the run ends normally. Control: from inside
//!   the namespace the owner's pid is not visible and the leaf's `cgroup.procs` lists
//!   only 0s, so a judgement by pid and start time calls the run stale.
//! - gc in a new time namespace: the same. Control: the owner's start time reads
//!   differently there than the one its leaf's name carries.
//! - a stale leaf (cg-test and its watchdog SIGKILLed) is still collected from inside a
//!   pid namespace, its members killed although that namespace cannot see them.
//! - a leaf whose cg-test is dead but whose watchdog has not finished (stopped here),
//!   and a `-supervisor` leaf whose lock is still held: left alone by gc and by a
//!   start-up sweep until the holder is done. Control: the owner is dead by pid.
//! - a leaf gc cannot judge (a cgroup whose making lock stays held): one line, left
//!   alone, collected once it can be judged.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::gc::make_stale_leaf;
use crate::supervisor_death::assert_all_gone_soon;
use crate::util::fixture::{sh_quote, sh_wait_file};
use crate::util::*;

/// A live run in `cg` whose command starts a marked sleeper, waits for `go`, then
/// exits 7. Returns the run, its leaf and the sleeper (alive, in the leaf).
fn live_run(g: &Guard, cg: &TestCgroup, go: &Path) -> (Run, PathBuf, Vec<i32>) {
    let marker = g.extra_marker("live");
    let ready_dir = g.subdir("live_ready");
    let fx = Fixture::new(&marker).ready(&ready_dir);
    let args: Vec<String> = vec![
        "--isolation".into(),
        "cgroup".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!(
            "{} & {}; kill $!; wait; exit 7",
            fx.sh(&["sleep"]),
            sh_wait_file(go)
        ),
    ];
    let before = cg.leaves();
    let run = g.start(cg.cg_test(&args));
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, &marker);
    let leaf = cg
        .leaves()
        .into_iter()
        .find(|l| !before.contains(l))
        .expect("the live run's leaf");
    let members = cgroup::member_pids(&leaf);
    assert!(
        ready.pids.iter().all(|p| members.contains(p)),
        "{members:?}"
    );
    (run, leaf, ready.pids)
}

fn gc_args(dry_run: bool, dir: &Path) -> Vec<String> {
    let mut a = vec!["gc".to_string()];
    if dry_run {
        a.push("--dry-run".into());
    }
    a.push(dir.display().to_string());
    a
}

/// `PREFIX... cg-test ARGS...` with the suite's environment for cg-test.
fn wrapped(prefix: &[&str], args: &[String]) -> Command {
    let mut c = Command::new(prefix[0]);
    c.args(&prefix[1..])
        .arg(CG_TEST)
        .args(args)
        .env_remove("GITHUB_ACTIONS");
    c
}

/// A gc (or cg-test) run that must have collected nothing and left `leaf` and
/// `members` as they were.
fn assert_nothing_collected(out: &run::Finished, leaf: &Path, members: &[i32], what: &str) {
    for word in [
        "would kill",
        "would remove",
        "killed pid",
        "removed stale",
        "not visible",
    ] {
        assert!(
            !out.stderr.contains(word),
            "{what} judged the live run stale; stderr:\n{}",
            out.stderr
        );
    }
    assert!(
        leaf.is_dir(),
        "{what} removed the live leaf {}",
        leaf.display()
    );
    for &p in members {
        assert!(procs::is_alive(p), "{what} killed pid {p} of the live run");
    }
}

const PID_NS: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc"];

#[test]
fn gc_in_a_pid_namespace_leaves_a_live_run_alone() {
    let g = Guard::new("gcns_pid");
    let cg = TestCgroup::new(&g, "gcns");
    let go = g.path("go");
    let (live, leaf, members) = live_run(&g, &cg, &go);
    let owner = live.pid;

    // The control: from inside a new pid namespace the owner is not visible and the
    // leaf's members read as pid 0, so a judgement by pid (and start time) alone calls
    // the run stale.
    let probe = format!(
        "if [ -e /proc/{owner}/stat ]; then echo owner=visible; else echo owner=invisible; fi; \
         echo procs=$(cat {})",
        sh_quote(leaf.join("cgroup.procs").to_str().unwrap())
    );
    let seen = Command::new(PID_NS[0])
        .args(&PID_NS[1..])
        .args(["sh", "-c", &probe])
        .output()
        .expect("unshare");
    let seen = String::from_utf8_lossy(&seen.stdout);
    assert!(seen.contains("owner=invisible"), "{seen}");
    let procs = seen
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap_or_default();
    assert!(
        !procs.is_empty() && procs.split_whitespace().all(|p| p == "0"),
        "the leaf's members should read as 0 there: {seen}"
    );

    for dry_run in [true, false] {
        let what = format!("gc in a pid namespace (dry run: {dry_run})");
        let out = g
            .start(wrapped(PID_NS, &gc_args(dry_run, &cg.path)))
            .finish();
        out.assert_code(0);
        assert!(out.stderr.contains("nothing to collect"), "{}", out.stderr);
        assert_nothing_collected(&out, &leaf, &members, &what);
    }
    // The issue's own route: gc as the command of a `--pid-ns` run beside the live one
    // (its own run's leaf is live too).
    for dry_run in [true, false] {
        let what = format!("cg-test --pid-ns -- cg-test gc (dry run: {dry_run})");
        let mut args: Vec<String> = ["--isolation", "cgroup", "--pid-ns", "--", CG_TEST]
            .map(String::from)
            .to_vec();
        args.extend(gc_args(dry_run, &cg.path));
        let out = g.start(cg.cg_test(&args)).finish();
        out.assert_code(0);
        out.assert_summary("outcome", "success");
        assert_nothing_collected(&out, &leaf, &members, &what);
    }

    std::fs::write(&go, "").unwrap();
    let out = live.finish();
    out.assert_code(7);
    out.assert_summary("outcome", "failure");
    assert!(cg.leaves().is_empty(), "{:?}", cg.leaves());
}

/// Field 22 of /proc/<pid>/stat (the start time), from a stat text.
fn start_field(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[test]
fn gc_in_a_time_namespace_leaves_a_live_run_alone() {
    let g = Guard::new("gcns_time");
    let cg = TestCgroup::new(&g, "gcns");
    // A boot-time offset of a day: every start time in /proc reads 86400 s later.
    const TIME_NS: &[&str] = &["unshare", "--time", "--fork", "--boottime", "86400"];
    let go = g.path("go");
    let (live, leaf, members) = live_run(&g, &cg, &go);
    let name = leaf.file_name().unwrap().to_str().unwrap().to_string();
    // cg-test-<pid>-<start>-<nonce>
    let named_start: u64 = name.split('-').nth(3).unwrap().parse().unwrap();

    // The control: the owner is visible there, but with another start time than its
    // leaf's name carries, so the pid-and-start-time check calls it gone.
    let seen = Command::new(TIME_NS[0])
        .args(&TIME_NS[1..])
        .args(["cat", &format!("/proc/{}/stat", live.pid)])
        .output()
        .expect("unshare --time");
    assert!(seen.status.success(), "unshare --time: {seen:?}");
    let there = start_field(&String::from_utf8_lossy(&seen.stdout)).expect("a start time");
    assert_ne!(
        there, named_start,
        "the time namespace should shift start times"
    );

    for dry_run in [true, false] {
        let what = format!("gc in a time namespace (dry run: {dry_run})");
        let out = g
            .start(wrapped(TIME_NS, &gc_args(dry_run, &cg.path)))
            .finish();
        out.assert_code(0);
        assert_nothing_collected(&out, &leaf, &members, &what);
    }
    std::fs::write(&go, "").unwrap();
    live.finish().assert_code(7);
    assert!(cg.leaves().is_empty());
}

#[test]
fn a_stale_leaf_is_still_collected_from_a_pid_namespace() {
    let g = Guard::new("gcns_stale");
    let cg = TestCgroup::new(&g, "gcns");
    let (stale, victims, late, trigger) = make_stale_leaf(&g, &cg, "stale");
    // The control for "stale": nobody holds the leaf's lock any more.
    let dir = std::fs::File::open(&stale).unwrap();
    // SAFETY: flock on a descriptor we own; closed (and so released) right after.
    let free = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    drop(dir);
    assert!(free, "the stale leaf's lock should be free");

    let out = g.start(wrapped(PID_NS, &gc_args(false, &cg.path))).finish();
    out.assert_code(0);
    let hidden = format!(
        "killed {} process(es) not visible from this pid namespace in the stale leaf {}",
        victims.len(),
        stale.display()
    );
    assert!(
        out.stderr.contains(&hidden),
        "want {hidden:?}; stderr:\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("removed stale leaf {}", stale.display())),
        "{}",
        out.stderr
    );
    assert!(cg.leaves().is_empty());
    assert_no_survivors(&format!("{}stale_", g.marker()));
    assert_late_never_after(&trigger, &late);
}

#[test]
fn gc_leaves_a_leaf_alone_while_its_watchdog_is_at_work() {
    let g = Guard::new("gcns_watchdog");
    let cg = TestCgroup::new(&g, "gcns");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let trigger = g.path("late_trigger");
    let fx = g.fixture().ready(&ready_dir).late_on(&late, &trigger);
    let args: Vec<String> = vec![
        "-v".into(),
        "--isolation".into(),
        "cgroup".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!("{} >/dev/null 2>&1 & wait", fx.sh(&["daemon"])),
    ];
    let mut run = g.start(cg.cg_test(&args));
    let line = run.wait_stderr("watchdog pid", Duration::from_secs(20));
    let watchdog: i32 = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("the watchdog's pid");
    let ready = wait_ready(&ready_dir, 1);
    assert_alive_with_marker(&ready.pids, g.marker());
    let leaf = cg.leaves().into_iter().next().expect("the run's leaf");

    // The watchdog is held up (stopped) before it can act, then cg-test is killed: the
    // leaf's owner is gone, its watchdog not done.
    procs::kill(watchdog, libc::SIGSTOP);
    run.signal(libc::SIGKILL);
    run.wait_exit();
    // The control: by pid the owner is gone, so a pid-only judgement collects the leaf
    // (and would kill the watchdog's work from under it).
    assert!(!procs::is_alive(run.pid));

    let out = g.start(g.cg_test(&gc_args(false, &cg.path))).finish();
    out.assert_code(0);
    assert_nothing_collected(&out, &leaf, &ready.pids, "gc beside a stopped watchdog");
    // A start-up sweep beside it judges the same way.
    let start = g
        .start(cg.cg_test(&["--isolation", "cgroup", "--", "true"]))
        .finish();
    start.assert_code(0);
    assert_nothing_collected(
        &start,
        &leaf,
        &ready.pids,
        "a start beside a stopped watchdog",
    );

    procs::kill(watchdog, libc::SIGCONT);
    let killed_at = Instant::now();
    let out = run.finish();
    assert!(
        out.stderr.contains("watchdog: cg-test (pid"),
        "the watchdog does the teardown itself; stderr:\n{}",
        out.stderr
    );
    assert_all_gone_soon(g.marker(), killed_at);
    assert!(cg.leaves().is_empty(), "{:?}", cg.leaves());
    assert_late_never_after(&trigger, &late);
}

/// A pid that is dead now and the start time it had.
fn dead_pid() -> (i32, u64) {
    let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
    let pid = child.id() as i32;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = start_field(&stat).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    (pid, start)
}

/// This host has no cgroup v2 controller the limits use, so no run here makes cg-test
/// a leaf of its own; the scenario is built by hand: a `-supervisor` leaf named for a
/// dead cg-test, with a process in it and its liveness lock held (by this test, as a
/// watchdog still putting things back holds it).
#[test]
fn a_supervisor_leaf_whose_lock_is_held_is_left_alone() {
    let g = Guard::new("gcns_supervisor");
    let cg = TestCgroup::new(&g, "gcns");
    let (pid, start) = dead_pid();
    // The control: its owner is gone by pid and start time.
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| start_field(&s))
            != Some(start)
    );
    let sup = cg
        .path
        .join(format!("cg-test-{pid}-{start}-0badf00d-supervisor"));
    std::fs::create_dir(&sup).unwrap();
    let ready_dir = g.subdir("ready");
    let fx = g.fixture().ready(&ready_dir);
    let mut inside = Command::new("sh");
    inside.args([
        "-c",
        &format!(
            "echo $$ > {} && exec {}",
            sh_quote(sup.join("cgroup.procs").to_str().unwrap()),
            fx.sh(&["sleep"])
        ),
    ]);
    let mut child = inside.spawn().expect("a process in the supervisor leaf");
    let ready = wait_ready(&ready_dir, 1);
    assert_eq!(cgroup::member_pids(&sup), ready.pids);

    let lock = std::fs::File::open(&sup).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let out = g.start(g.cg_test(&gc_args(false, &cg.path))).finish();
    out.assert_code(0);
    assert_nothing_collected(&out, &sup, &ready.pids, "gc beside a held supervisor leaf");
    let start_run = g
        .start(cg.cg_test(&["--isolation", "cgroup", "--", "true"]))
        .finish();
    start_run.assert_code(0);
    assert_nothing_collected(&start_run, &sup, &ready.pids, "a start beside it");

    // Its holder is done: now it is stale, and collected.
    drop(lock);
    let out = g.start(g.cg_test(&gc_args(false, &cg.path))).finish();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains(&format!("killed pid {} (", ready.pids[0]))
            && out
                .stderr
                .contains(&format!("removed stale leaf {}", sup.display())),
        "{}",
        out.stderr
    );
    child.wait().unwrap();
    assert!(!sup.exists());
    assert_no_survivors(g.marker());
}

/// gc cannot judge a stale-looking leaf while a cg-test beside it may be between its
/// leaf's mkdir and its lock (here: this test holds that cgroup's making lock, as a
/// cg-test stopped at that moment would): one line naming the leaf and why, the leaf
/// left alone, exit 0. Once the lock is free, the leaf is collected.
#[test]
fn gc_says_so_and_leaves_a_leaf_it_cannot_judge() {
    let g = Guard::new("gcns_unknown");
    let cg = TestCgroup::new(&g, "gcns");
    let (stale, victims, late, trigger) = make_stale_leaf(&g, &cg, "stale");
    let making = std::fs::File::open(cg.path.join("cgroup.procs")).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(making.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) },
        0
    );

    let out = g.start(g.cg_test(&gc_args(false, &cg.path))).finish();
    out.assert_code(0);
    let line = out.assert_one_error_line();
    assert!(
        line.contains("cannot tell whether the cg-test of")
            && line.contains(&stale.display().to_string())
            && line.contains("left in place"),
        "{line:?}"
    );
    assert!(stale.is_dir());
    assert_alive_with_marker(&victims, g.marker());

    drop(making);
    let out = g.start(g.cg_test(&gc_args(false, &cg.path))).finish();
    out.assert_code(0);
    assert!(
        out.stderr
            .contains(&format!("removed stale leaf {}", stale.display())),
        "{}",
        out.stderr
    );
    assert!(cg.leaves().is_empty());
    assert_no_survivors(&format!("{}stale_", g.marker()));
    assert_late_never_after(&trigger, &late);
}
