//! cg-test: run a command so that nothing it starts can outlive it.
//!
//! The run is one straight flow (see [`supervisor`]): pick an isolation boundary
//! ([`isolation`]), spawn the command inside it ([`spawn`]), wait for it under a
//! deadline and signals ([`events`]), tear down whatever is left with the kill ladder,
//! and report ([`report`]). Platform differences live behind [`platform`]; cgroupfs
//! access behind [`cgroupfs`].

pub mod cgroupfs;
pub mod cli;
pub mod doctor;
pub mod events;
pub mod exit;
pub mod gc;
pub mod isolation;
pub mod namespaces;
pub mod phases;
pub mod platform;
pub mod report;
pub mod run_id;
pub mod snapshot;
pub mod spawn;
pub mod supervisor;
pub mod usage;
pub mod watchdog;

pub use cli::Config;
pub use exit::ExitStatus;
pub use report::Outcome;
pub use supervisor::run;
