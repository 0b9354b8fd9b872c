//! The adversarial lane (issue 18): one scenario per route out of a run, or into what
//! is not the run's, each with a control that shows the route is real without the
//! defence. Every scenario follows the suite's rules (bounded helpers with markers, a
//! guard that fails the test on a survivor, kills by pid or by our own cgroup only,
//! mounts only in a private mount namespace).

mod fuzz;
mod gc_ns;
mod harden;
mod mounts;
mod pgroup;
mod setuid;
mod soak;
mod watchdog;
