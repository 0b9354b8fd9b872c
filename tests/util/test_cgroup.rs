//! A cgroup of a test's own, below the test process's cgroup, for tests whose runs must
//! not sit beside other tests' runs (each cg-test start collects stale leaves beside its
//! own leaf) or that need a cgroup delegated to another user. Dropping it kills
//! whatever is left inside and removes it.

use std::path::PathBuf;
use std::process::Command;

use super::{cgroup, fixture::sh_quote, Guard, CG_TEST};

pub struct TestCgroup {
    pub path: PathBuf,
}

impl TestCgroup {
    pub fn new(g: &Guard, tag: &str) -> TestCgroup {
        let name = format!("cgt-{tag}-{}", g.marker().trim_end_matches('_'));
        let path = cgroup::own_dir().join(name);
        std::fs::create_dir(&path).expect("creating the test's cgroup");
        TestCgroup { path }
    }

    /// Delegate it to `uid` as cgroup v2 delegation asks: the directory and its
    /// cgroup.procs, cgroup.threads and cgroup.subtree_control.
    pub fn delegate_to(&self, uid: u32) {
        for f in [
            "",
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.subtree_control",
        ] {
            std::os::unix::fs::chown(self.path.join(f), Some(uid), Some(uid))
                .expect("chown for delegation");
        }
    }

    /// `PROGRAM ARGS...`, started as a process that first moves itself here.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, program: &str, args: &[S]) -> Command {
        let mut c = Command::new("sh");
        let procs = sh_quote(&self.path.join("cgroup.procs").display().to_string());
        c.args([
            "-c",
            &format!("echo $$ > {procs} && exec \"$0\" \"$@\""),
            program,
        ])
        .args(args);
        c
    }

    /// cg-test ARGS..., started in this cgroup.
    pub fn cg_test<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        self.command(CG_TEST, args)
    }

    /// The cg-test leaves in this cgroup.
    pub fn leaves(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .expect("listing the test's cgroup")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("cg-test-"))
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for leaf in self.leaves() {
            cgroup::kill_and_remove(&leaf);
        }
        // Processes left in the cgroup itself (a pgroup run's) are killed with it (it is
        // this test's own cgroup); a test that was passing fails for them.
        let left: Vec<String> = cgroup::member_pids(&self.path)
            .into_iter()
            .map(|p| format!("{p}: {}", super::procs::cmdline(p).unwrap_or_default()))
            .collect();
        cgroup::kill_and_remove(&self.path);
        if !left.is_empty() && !std::thread::panicking() {
            panic!(
                "processes left in the test's cgroup {}: {left:?}",
                self.path.display()
            );
        }
    }
}
