//! Helpers shared by the integration tests: where the binaries are, how to run cg-test
//! and watch it, how to find a run's processes and leaves, and the per-test [`Guard`]
//! that makes sure a failing test leaks nothing either.
//!
//! Every process a test starts carries the test's unique marker in its argv (the
//! fixture's `--marker`), so survivors are found by scanning /proc, never by name.

#![allow(dead_code)] // each test module uses its own subset of the helpers

pub mod cgroup;
pub mod check;
pub mod fixture;
pub mod guard;
pub mod mode;
pub mod procs;
pub mod pty;
pub mod report;
pub mod run;
pub mod test_cgroup;

pub use check::*;
pub use fixture::Fixture;
pub use guard::Guard;
pub use mode::Mode;
pub use run::Run;
pub use test_cgroup::TestCgroup;

use std::time::Duration;

/// The cg-test binary under test.
pub const CG_TEST: &str = env!("CARGO_BIN_EXE_cg-test");
/// The misbehaving programs (tests/fixtures/fixture.rs).
pub const FIXTURE: &str = env!("CARGO_BIN_EXE_cg-test-fixture");

/// The life every helper process gets: long enough to outlast any test's kill, short
/// enough that a leak in the suite itself dies on its own soon.
pub const LIFE_SECS: f64 = 25.0;
/// The late marker's delay: a little beyond the end of a `-t 1s -k 1s` ladder.
pub const LATE_SECS: f64 = 3.0;
/// Bound for a cg-test run that should end by itself (never a speed assertion: only a
/// guard against a hung test).
pub const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Bound for waiting on helper processes to announce themselves.
pub const READY_LIMIT: Duration = Duration::from_secs(20);

/// Whether a host-specific test must be skipped here: `applies` false means this host is
/// not the kind the test is for. The skip is printed, and it is a failure where the
/// suite is told which kind it runs on (`CG_TEST_HOST=hybrid` or `pure-v2`, as
/// ci/test.sh sets it from what it checked), so CI never passes a test by skipping it.
pub fn skip_on_other_host(applies: bool, kind: &str, why: &str) -> bool {
    if applies {
        return false;
    }
    if let Some(expected) = std::env::var_os("CG_TEST_HOST") {
        panic!(
            "CG_TEST_HOST={} says this is a {} host, but the test for {kind} hosts cannot \
             run: {why}",
            expected.to_string_lossy(),
            expected.to_string_lossy()
        );
    }
    eprintln!("skipped: this test is for {kind} hosts; {why}");
    true
}
