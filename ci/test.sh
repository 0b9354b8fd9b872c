#!/usr/bin/env bash
# The whole test suite, in the order CI runs it. The README's test command and .ci/run
# both run exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --all-targets --locked -- -D warnings

# Which kind of host this is, so a host-specific test fails instead of skipping
# (tests/util: skip_on_other_host): hybrid when the memory controller is bound to a
# cgroup v1 hierarchy (its /proc/cgroups hierarchy id is not 0), else pure-v2.
if awk '$1 == "memory" && $2 != 0 { found = 1 } END { exit !found }' /proc/cgroups; then
  export CG_TEST_HOST=hybrid
else
  export CG_TEST_HOST=pure-v2
fi

step "unit + integration tests (real processes, real cgroups; CG_TEST_HOST=$CG_TEST_HOST)"
cargo test --locked

# Its own target (`test = false`): thousands of generated inputs per parser (durations,
# sizes, signals, every value flag), and the binary on a
# sample of bad ones (exit 125, one line naming the flag). fuzz/ has the nightly targets.
step "the parsers under generated input (tests/properties.rs)"
cargo test --locked --test properties

# Its own target (`test = false`: plain `cargo test` skips it), about 3 minutes: 520 runs
# SIGKILLed at random moments beside a CPU load of its own. Before the leftovers check,
# which then covers it too. CG_TEST_SOAK_RUNS=N for a longer soak (RELIABILITY.md).
step "chaos soak: 520 runs, each SIGKILLed at a random moment (tests/soak.rs)"
# A known finding of the soak, counted and printed but not failing CI until fixed (the
# issue-18 note): `leaf-before-watchdog` (cg-test killed between its mkdir and the
# watchdog's start leaves an empty leaf, no process, for the next start beside it or gc).
CG_TEST_SOAK_XFAIL="${CG_TEST_SOAK_XFAIL:-leaf-before-watchdog}" \
  cargo test --locked --test soak -- --nocapture

# cargo runs the zz_leftovers target last already; run it once more on its own, so the
# closing check also sees whatever the last tests' processes did after cargo moved on.
step "nothing of the suite is left (no cg-test-* leaf, no marked process)"
cargo test --locked --test zz_leftovers

step "the non-Linux path compiles (x86_64-apple-darwin)"
if ! rustup target add x86_64-apple-darwin >/dev/null 2>&1; then
  echo "ci/test.sh: cannot install the x86_64-apple-darwin target with rustup; the non-Linux path is unchecked" >&2
  exit 1
fi
cargo clippy --target x86_64-apple-darwin --locked -- -D warnings

step "real test suites end to end (vitest, pnpm, pytest, cargo, make; npm and PyPI)"
bash scripts/e2e.sh

step "tini's own test suite against cg-test (tini's test programs, Debian's source package)"
bash scripts/tini-test.sh

step "OCI runtime lane: cg-test as PID 1 of runc containers (Docker's defaults, privileged)"
bash scripts/container-test.sh

step "pure cgroup v2 lane in a VM (Debian 6.1 kernel under qemu TCG)"
bash scripts/vm-test.sh
