//! The suite's closing check: after the integration tests, no `cg-test-*` leaf and no
//! marked process of theirs is left on the machine.
//!
//! A separate test target (`zz_leftovers` in Cargo.toml) because libtest has no "after
//! all tests" hook: cargo runs test targets one after another in name order, so this
//! one runs once the `integration` binary has exited, and ci/test.sh runs it again
//! explicitly after `cargo test`.
//!
//! The machine is shared with other suites that may be running right now, so only
//! what no running process owns any more counts:
//! - a `cg-test-<pid>-<start>-<nonce>` leaf (at any depth below our cgroup, where
//!   cg-test makes its leaves) whose owner, cg-test `<pid>` started at `<start>`, is
//!   gone;
//! - a process whose argv carries a test marker `cgtm_<pid>_...` while test binary
//!   `<pid>` is no longer running;
//! - a process whose environment holds `CG_TEST_RUN_ID=<pid>-<start>-<nonce>` while
//!   that cg-test is gone.
//!
//! A test of another suite may be between killing its cg-test and cleaning up (the
//! PDEATHSIG test leaves its leaf for a few seconds on purpose), so whatever is found
//! is looked at again for a while; only what stays is reported.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cg_test::cgroupfs;
use cg_test::run_id::{RunId, ENV_VAR, LEAF_PREFIX};

/// How long something orphaned may still be on its way out (another suite's test
/// cleaning up after itself) before it counts as left behind.
const SETTLE: Duration = Duration::from_secs(20);

/// The marker prefix every test helper process carries (tests/util/guard.rs).
const MARKER_PREFIX: &str = "cgtm_";

/// Something left behind, described for the failure message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Leftover {
    Leaf(PathBuf),
    Process { pid: i32, why: String },
}

/// Field 22 (start time) and field 3 (state) of /proc/<pid>/stat.
fn start_and_state(pid: i32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After `(comm)`, field 3 (state) is index 0, so field 22 is index 19.
    Some((
        fields.get(19)?.parse().ok()?,
        fields.first()?.chars().next()?,
    ))
}

fn is_running(pid: i32) -> bool {
    start_and_state(pid).is_some_and(|(_, state)| !matches!(state, 'Z' | 'X' | 'x'))
}

/// Is the cg-test of run `id` still running (same pid, same start time)?
fn owner_running(id: &RunId) -> bool {
    let pid = id.pid as i32;
    start_and_state(pid)
        .is_some_and(|(start, state)| start == id.start && !matches!(state, 'Z' | 'X' | 'x'))
}

/// Is `pid` a running cargo test binary (`target/.../deps/<name>-<16 hex digits>`)?
/// A reused pid that now belongs to anything else does not own the marker.
fn test_binary_running(pid: i32) -> bool {
    if !is_running(pid) {
        return false;
    }
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    let name = exe.file_name().unwrap_or_default().to_string_lossy();
    let name = name.trim_end_matches(" (deleted)");
    name.rsplit_once('-').is_some_and(|(stem, hash)| {
        !stem.is_empty() && hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The test binary pids named by `cgtm_<pid>_` markers in a command line.
fn marker_owners(cmdline: &str) -> Vec<i32> {
    cmdline
        .match_indices(MARKER_PREFIX)
        .filter_map(|(i, _)| {
            let rest = &cmdline[i + MARKER_PREFIX.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            rest[digits.len()..]
                .starts_with('_')
                .then(|| digits.parse().ok())
                .flatten()
        })
        .collect()
}

/// The run id in an environment block, if it holds `CG_TEST_RUN_ID=`.
fn env_run_id(environ: &[u8]) -> Option<Result<RunId, String>> {
    let prefix = format!("{ENV_VAR}=");
    environ.split(|&b| b == 0).find_map(|entry| {
        let value = entry.strip_prefix(prefix.as_bytes())?;
        let value = String::from_utf8_lossy(value).into_owned();
        Some(RunId::from_leaf_name(&format!("{LEAF_PREFIX}{value}")).ok_or(value))
    })
}

/// Marked processes whose test binary or cg-test is gone.
fn orphaned_processes() -> Vec<Leftover> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        panic!("cannot read /proc");
    };
    for entry in proc_dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me || !is_running(pid) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
            .unwrap_or_default();
        let mut why = Vec::new();
        for owner in marker_owners(&cmdline) {
            if !test_binary_running(owner) {
                why.push(format!(
                    "carries a marker of test binary {owner}, which has exited"
                ));
            }
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        match env_run_id(&environ) {
            Some(Ok(id)) if !owner_running(&id) => {
                why.push(format!("{ENV_VAR}={id}, whose cg-test has exited"))
            }
            Some(Err(value)) => why.push(format!("{ENV_VAR}={value} (not a run id)")),
            _ => {}
        }
        if !why.is_empty() && is_running(pid) {
            out.push(Leftover::Process {
                pid,
                why: format!("{}: {}", why.join("; "), cmdline.trim_end()),
            });
        }
    }
    out
}

/// `cg-test-*` directories at any depth below `root` whose owner is gone.
fn orphaned_leaves(root: &Path) -> Vec<Leftover> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A leaf removed while we walk is fine; our own cgroup must be readable.
            Err(e) if dir != root && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("reading {}: {e}", dir.display()),
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(LEAF_PREFIX) {
                let owned = RunId::from_leaf_name(&name).is_some_and(|id| owner_running(&id));
                if !owned {
                    out.push(Leftover::Leaf(e.path()));
                }
            }
            dirs.push(e.path());
        }
    }
    out
}

fn scan(root: &Path) -> Vec<Leftover> {
    let mut found = orphaned_leaves(root);
    found.extend(orphaned_processes());
    found.sort();
    found
}

#[test]
fn nothing_is_left_after_the_suite() {
    let root = cgroupfs::own_cgroup_dir()
        .unwrap_or_else(|e| panic!("finding our cgroup v2 directory: {e:#}"));
    check_that_a_leftover_is_seen(&root);
    let mut left = scan(&root);
    // Keep only what stays orphaned throughout: a leftover that goes away was another
    // suite's test cleaning up after itself.
    let until = Instant::now() + SETTLE;
    while !left.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500));
        let now = scan(&root);
        left.retain(|l| now.contains(l));
    }
    let described: Vec<String> = left
        .iter()
        .map(|l| match l {
            Leftover::Leaf(p) => format!("leaf {}", p.display()),
            Leftover::Process { pid, why } => format!("process {pid}: {why}"),
        })
        .collect();
    assert!(
        left.is_empty(),
        "left behind by tests that have finished (nothing here was killed or removed):\n{}",
        described.join("\n")
    );
}

/// Negative control, run first in the same test (so the real check never sees it): a
/// marked process and a leaf whose owners are gone are both reported.
fn check_that_a_leftover_is_seen(root: &Path) {
    // A pid that was just reaped: no process has it now.
    let gone = std::process::Command::new("true")
        .spawn()
        .and_then(|mut c| c.wait().map(|_| c.id() as i32))
        .expect("running true");
    let marker = format!("{MARKER_PREFIX}{gone}_leftovers_control_");
    let mut probe = std::process::Command::new(env!("CARGO_BIN_EXE_cg-test-fixture"))
        .args(["--marker", &marker, "--life", "20", "sleep"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("starting the fixture");
    // spawn() returns once the exec began (vfork), which can be before the kernel set
    // the new command line: until then /proc/PID/cmdline reads empty and the scan could
    // not see the marker (seen once in CI). Wait for it, bounded.
    let until = Instant::now() + Duration::from_secs(5);
    while !std::fs::read(format!("/proc/{}/cmdline", probe.id()))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let leaf = root.join(format!("{LEAF_PREFIX}{gone}-1-00000000"));
    std::fs::create_dir(&leaf)
        .unwrap_or_else(|e| panic!("creating {} for the control: {e}", leaf.display()));
    let found = scan(root);
    let _ = std::fs::remove_dir(&leaf);
    let _ = probe.kill();
    let _ = probe.wait();
    let probe_pid = probe.id() as i32;
    assert!(
        found.contains(&Leftover::Leaf(leaf.clone())),
        "the control leaf {} was not reported: {found:?}",
        leaf.display()
    );
    assert!(
        found
            .iter()
            .any(|l| matches!(l, Leftover::Process { pid, .. } if *pid == probe_pid)),
        "the control process {probe_pid} ({marker}) was not reported: {found:?}"
    );
    assert!(
        !leaf.exists(),
        "control leaf {} not removed",
        leaf.display()
    );
}

#[test]
fn marker_owners_are_read_from_the_marker() {
    assert_eq!(
        marker_owners("fixture --marker cgtm_1234_escape_hopper_3_ sleep"),
        vec![1234]
    );
    assert_eq!(
        marker_owners("sh -c : cgtm_1_a_0_x_; f --marker cgtm_22_b_1_"),
        vec![1, 22]
    );
    assert!(marker_owners("cgtm_ cgtm_x_ cgtm_12").is_empty());
}

#[test]
fn run_ids_are_read_from_the_environment() {
    let env = b"HOME=/root\0CG_TEST_RUN_ID=42-1000-0000abcd\0PATH=/bin\0";
    let id = env_run_id(env).unwrap().unwrap();
    assert_eq!((id.pid, id.start, id.nonce), (42, 1000, 0xabcd));
    assert!(env_run_id(b"CG_TEST_RUN_ID=junk\0").unwrap().is_err());
    assert!(env_run_id(b"HOME=/root\0").is_none());
}

#[test]
fn this_test_binary_counts_as_running() {
    assert!(test_binary_running(std::process::id() as i32));
    assert!(!test_binary_running(1) || std::process::id() == 1);
}
