//! The integration suite: one binary, one behaviour per module, helpers in `util`.
//!
//! Rules every test follows (the product's point is that nothing leaks, so the suite
//! must not leak either): each helper process has a bounded life and a marker unique
//! to the test and to this run of the binary; a kill test checks its victims were
//! alive before and that their late marker never appears; a per-test [`util::Guard`]
//! SIGKILLs survivors by pid and removes its own cg-test's leaves even when the test
//! fails.

mod util;

mod adversary;
mod annotations;
mod bad_input;
mod core_reliability;
mod docs_tools;
mod doctor;
mod escape;
mod exit_codes;
mod forward_signals;
mod forward_to;
mod gc;
mod harden;
mod hygiene;
mod idle;
mod leaf;
mod leaks;
mod limits;
mod nested;
mod parallel;
mod pdeathsig;
mod pgroup_walk;
mod pid_ns;
mod polite_signal;
mod report_file;
mod scale;
mod snapshot;
mod stopped_terminal;
mod supervisor_death;
mod teardown_signals;
mod token_sweep;
mod transparency;
mod tty;
mod unprivileged;
mod usage;
