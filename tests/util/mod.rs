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
