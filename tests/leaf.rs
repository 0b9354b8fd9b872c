//! The command runs inside its own leaf, `cg-test-<cg-test pid>-<start>-<nonce>`
//! directly below cg-test's cgroup, and gets the run id as CG_TEST_RUN_ID.

use crate::util::*;

fn command_runs_in_the_leaf(mode: Mode) {
    let g = Guard::new(&format!("leaf_{}", mode.name()));
    let mut args: Vec<&str> = mode.args();
    args.extend([
        "--",
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo \"id=$CG_TEST_RUN_ID\"",
    ]);
    let out = g.start(g.cg_test(&args)).finish();
    out.assert_code(0);
    mode.assert_ran(&out);
    let path = cgroup::unified_path(&out.stdout).expect("a 0:: line");
    let id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("id="))
        .expect("CG_TEST_RUN_ID line");
    let own = cgroup::own_path();
    let expected = format!("{}/cg-test-{id}", own.trim_end_matches('/'));
    assert_eq!(path, expected, "the command's cgroup");
    assert!(
        id.starts_with(&format!("{}-", out.pid)),
        "CG_TEST_RUN_ID {id} should start with cg-test's pid {}",
        out.pid
    );
    assert_eq!(id.split('-').count(), 3, "<pid>-<start>-<nonce>: {id}");
    assert_no_leaf(out.pid);
}

#[test]
fn command_runs_in_the_leaf_clone3() {
    command_runs_in_the_leaf(Mode::Cgroup);
}

#[test]
fn command_runs_in_the_leaf_fork_spawn() {
    command_runs_in_the_leaf(Mode::CgroupCompat);
}

/// The pgroup strategy makes no leaf but still hands out the run id.
#[test]
fn pgroup_run_has_an_id_and_no_leaf() {
    let g = Guard::new("leaf_pgroup");
    let out = g
        .start(g.cg_test(&[
            "--isolation",
            "pgroup",
            "--",
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo \"id=$CG_TEST_RUN_ID\"",
        ]))
        .finish();
    out.assert_code(0);
    assert_eq!(
        cgroup::unified_path(&out.stdout).as_deref(),
        Some(cgroup::own_path().as_str()),
        "without a leaf the command stays in cg-test's cgroup"
    );
    assert!(out.stdout.contains(&format!("id={}-", out.pid)));
    assert_no_leaf(out.pid);
}
