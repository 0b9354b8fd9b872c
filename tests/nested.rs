//! cg-test inside cg-test: the inner run makes its leaf inside the outer one, its exit
//! code passes through both, and an outer timeout kills the inner run's escapees and
//! removes both leaves.

use crate::util::fixture::sh_quote;
use crate::util::*;

#[test]
fn exit_code_passes_through_both_runs() {
    let g = Guard::new("nested_code");
    let out = g
        .start(g.cg_test(&[
            "--isolation",
            "cgroup",
            "--",
            CG_TEST,
            "--isolation",
            "cgroup",
            "--",
            "sh",
            "-c",
            "cat /proc/self/cgroup; exit 9",
        ]))
        .finish();
    out.assert_code(9);
    let path = cgroup::unified_path(&out.stdout).expect("a 0:: line from the command");
    let parts: Vec<&str> = path.rsplit('/').take(2).collect();
    assert!(
        parts.len() == 2
            && parts[0].starts_with("cg-test-")
            && parts[1].starts_with(&format!("cg-test-{}-", out.pid)),
        "the command should be in the inner leaf inside the outer one: {path}"
    );
    assert!(!cgroup::dir_of(&path).exists(), "inner leaf left behind");
    assert_no_leaf(out.pid);
}

#[test]
fn outer_timeout_kills_the_inner_runs_escapees() {
    let g = Guard::new("nested_timeout");
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let where_file = g.path("cgroup");
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let script = format!(
        "cat /proc/self/cgroup > {}; exec {}",
        sh_quote(where_file.to_str().unwrap()),
        fx.sh(&["daemon"])
    );
    let run = g.start(g.cg_test(&[
        "--isolation",
        "cgroup",
        "-t",
        "1s",
        "-k",
        "1s",
        "--",
        CG_TEST,
        "--isolation",
        "cgroup",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    let ready = wait_ready(&ready_dir, 2);
    assert_alive_with_marker(&ready.pids, g.marker());
    let inner_path = cgroup::unified_path(&std::fs::read_to_string(&where_file).unwrap())
        .expect("the inner command's cgroup");
    let inner_leaf = cgroup::dir_of(&inner_path);
    assert!(
        inner_leaf.exists(),
        "{} should exist during the run",
        inner_leaf.display()
    );

    let out = run.finish();
    out.assert_code(124);
    assert_no_survivors(g.marker());
    assert!(
        !inner_leaf.exists(),
        "inner leaf {} left behind",
        inner_leaf.display()
    );
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, LATE_SECS));
}
