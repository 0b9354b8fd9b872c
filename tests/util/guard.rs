//! The per-test cleanup guard. A test creates one first thing; everything the test
//! starts carries one of the guard's markers and every cg-test it starts is registered
//! with it. When the guard drops (also when the test panics) it SIGKILLs, by pid, any
//! live process carrying one of its markers, removes the leaves of its own cg-test
//! processes (cgroup.kill, then rmdir) and deletes its temporary directory. So a
//! failing test reports its failure but leaks nothing. A test that did not fail but
//! left something for the guard to clean up fails there: the guard is a backstop, not
//! the test's cleanup.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{cgroup, procs, Fixture, Run, CG_TEST};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct Guard {
    name: String,
    marker: String,
    dir: PathBuf,
    markers: Mutex<Vec<String>>,
    cg_test_pids: Mutex<Vec<i32>>,
}

impl Guard {
    /// A guard for the test `name`, with a marker unique to this test and this run of
    /// the test binary, and a fresh temporary directory.
    pub fn new(name: &str) -> Guard {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // The trailing `_` keeps one marker from being a prefix of another (`..._1_`
        // is not inside `..._11_`).
        let marker = format!("cgtm_{pid}_{name}_{n}_");
        let dir = std::env::temp_dir().join(format!("cgt_{pid}_{name}_{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the test's temp dir");
        Guard {
            name: name.to_string(),
            markers: Mutex::new(vec![marker.clone()]),
            marker,
            dir,
            cg_test_pids: Mutex::new(Vec::new()),
        }
    }

    /// The test's main marker.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// Another marker, for tests that run several independent trees.
    pub fn extra_marker(&self, tag: &str) -> String {
        let m = format!("{}{tag}_", self.marker);
        self.markers.lock().unwrap().push(m.clone());
        m
    }

    /// The fixture with the main marker.
    pub fn fixture(&self) -> Fixture {
        Fixture::new(&self.marker)
    }

    /// The test's temporary directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path in the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A fresh empty directory in the temporary directory (for `--ready`).
    pub fn subdir(&self, name: &str) -> PathBuf {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).expect("creating a ready dir");
        d
    }

    /// Make the temporary directory and `sub` writable by every user (for runs as an
    /// unprivileged uid).
    pub fn open_to_all(&self, sub: &Path) {
        for p in [self.dir.as_path(), sub] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777))
                .expect("chmod 0777");
        }
    }

    /// A `cg-test ARGS...` command (not yet started). Without GITHUB_ACTIONS: when the
    /// suite itself runs as a GitHub Actions step, the leaks and timeouts it provokes
    /// on purpose must not become annotations of the job (tests/annotations.rs sets
    /// it where it is the point).
    pub fn cg_test<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(CG_TEST);
        c.args(args).env_remove("GITHUB_ACTIONS");
        c
    }

    /// Start a command whose process is a cg-test (possibly behind setpriv, which execs
    /// it under the same pid), registered for leaf cleanup.
    pub fn start(&self, cmd: Command) -> Run {
        let run = Run::spawn(cmd);
        self.watch_cg_test(run.pid);
        run
    }

    /// Register a cg-test pid whose leaves this test may remove.
    pub fn watch_cg_test(&self, pid: i32) {
        self.cg_test_pids.lock().unwrap().push(pid);
    }

    fn kill_marked(&self) -> usize {
        let markers = self.markers.lock().unwrap().clone();
        let mut killed = 0;
        // A hopper forks every few ms: repeat until a scan finds nobody.
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let pids: Vec<i32> = markers.iter().flat_map(|m| procs::with_marker(m)).collect();
            if pids.is_empty() || Instant::now() > until {
                return killed;
            }
            for p in pids {
                procs::kill(p, libc::SIGKILL);
                killed += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let killed = self.kill_marked();
        let mut leaves = 0;
        let mut unreadable = None;
        for &pid in self.cg_test_pids.lock().unwrap().iter() {
            match cgroup::try_leaves_of(pid) {
                Ok(found) => {
                    for leaf in found {
                        cgroup::kill_and_remove(&leaf);
                        leaves += 1;
                    }
                }
                Err(e) => unreadable = Some(e),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if std::thread::panicking() {
            // The test already failed; panicking again while it unwinds would abort the
            // whole binary. Say what the cleanup could not see.
            if let Some(e) = unreadable {
                eprintln!("guard {}: {e}", self.name);
            }
            return;
        }
        if let Some(e) = unreadable {
            panic!("guard {}: cannot look for leftover leaves: {e}", self.name);
        }
        if killed > 0 || leaves > 0 {
            // Tests assert no survivors and no leaf themselves; reaching here with
            // leftovers means a test forgot to, or its assertions missed a leak. libtest
            // hides a passing test's stderr, so a warning would go unseen: fail the test
            // (after the cleanup above, so the failure leaks nothing either).
            panic!(
                "guard {}: the test left marked processes ({killed} SIGKILL(s) sent) and \
                 {leaves} leaf(s) behind, now killed and removed; a test must finish its \
                 runs and check assert_no_survivors/assert_no_leaf itself",
                self.name
            );
        }
    }
}
