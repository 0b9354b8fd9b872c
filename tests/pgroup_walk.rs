//! The pgroup strategy with a subreaper finds the run by walking cg-test's subtree
//! (`/proc/<pid>/task/<tid>/children`), not by reading every process on the machine.
//! These runs put processes where only a complete walk finds them: a double-forked
//! setsid daemon that cleared its environment (no token to sweep for: only its place
//! below cg-test, the subreaper, gives it away), next to one that kept it, and a child
//! forked by a second thread, which only that thread's children list names.

use std::path::{Path, PathBuf};

use crate::util::fixture::sh_wait_ready;
use crate::util::run::Finished;
use crate::util::*;

/// Run `command_of(fixture)` in pgroup mode with a long leak timeout; the command
/// exits 0 once `n` processes announced themselves. Returns the run and the pids.
fn leak_in_pgroup(
    name: &str,
    n: usize,
    command: impl FnOnce(&Fixture) -> String,
) -> (Guard, Finished, Ready, PathBuf) {
    let g = Guard::new(name);
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let script = format!("{}; {}; exit 0", command(&fx), sh_wait_ready(&ready_dir, n));
    let mut args: Vec<String> = Mode::Pgroup.args().iter().map(|s| s.to_string()).collect();
    args.extend(["--leak-timeout", "2s", "--", "sh", "-c", &script].map(String::from));
    let run = g.start(g.cg_test(&args));
    let ready = wait_ready(&ready_dir, n);
    assert_alive_with_marker(&ready.pids, g.marker());
    let out = run.finish();
    Mode::Pgroup.assert_ran(&out);
    (g, out, ready, late)
}

fn assert_all_leaked_and_gone(g: &Guard, out: &Finished, ready: &Ready, late: &Path) {
    out.assert_code(0);
    out.assert_summary("leaked", &ready.pids.len().to_string());
    let mut leaked = out.leaked_pids();
    leaked.sort();
    assert_eq!(
        leaked, ready.pids,
        "leak table rows; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_late_never(late, late_due(ready, LATE_SECS));
}

#[test]
fn double_forked_setsid_daemons_are_found_by_the_walk() {
    let (g, out, ready, late) = leak_in_pgroup("walk_daemons", 2, |fx| {
        format!(
            "{} >/dev/null 2>&1; {} >/dev/null 2>&1",
            fx.sh(&["scrub-env"]),
            fx.sh(&["daemon", "--exit", "0"])
        )
    });
    // Both reparented to cg-test, the subreaper: that is where the walk finds them.
    for row in out.table_after("outlived the command in") {
        assert_eq!(row.ppid, out.pid, "parent of {row:?}");
    }
    assert_all_leaked_and_gone(&g, &out, &ready, &late);
}

#[test]
fn a_child_of_a_second_thread_is_found_by_the_walk() {
    let (g, out, ready, late) = leak_in_pgroup("walk_thread_child", 2, |fx| {
        format!("{} >/dev/null 2>&1 & true", fx.sh(&["thread-child"]))
    });
    // The fixture (two threads) was reparented to cg-test when sh exited; its child
    // is listed only under the fixture's second thread.
    let rows = out.table_after("outlived the command in");
    let parent = rows
        .iter()
        .find(|r| r.ppid == out.pid)
        .unwrap_or_else(|| panic!("no row below cg-test; stderr:\n{}", out.stderr));
    assert!(
        rows.iter().any(|r| r.ppid == parent.pid),
        "the second thread's child is missing; stderr:\n{}",
        out.stderr
    );
    assert_all_leaked_and_gone(&g, &out, &ready, &late);
}
