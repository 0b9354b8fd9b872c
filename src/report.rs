//! What cg-test says: the outcome of a run, the one summary line, leak lines, notes and
//! errors, all on stderr with a `cg-test: ` prefix.
//!
//! Writes never panic: cg-test blocks SIGPIPE (so a closed stderr cannot kill it in the
//! middle of a teardown), and a failed write to stderr is ignored rather than turned into
//! a panic as `eprintln!` would.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::cli::Verbosity;
use crate::exit::ExitStatus;

/// A process found in the run's boundary after the command exited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakedProcess {
    pub pid: i32,
    pub cmdline: String,
}

/// What happened in one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The status cg-test exits with.
    pub status: ExitStatus,
    /// `cgroup` or `pgroup`.
    pub isolation: &'static str,
    /// The boundary in words, e.g. the leaf's path.
    pub boundary: String,
    /// Wall time from start to the end of teardown.
    pub wall: Duration,
    /// Processes that outlived the command by more than `--leak-timeout`.
    pub leaked: Vec<LeakedProcess>,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Set how much later calls print.
pub fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, Ordering::Relaxed);
}

fn verbosity_at_least(v: Verbosity) -> bool {
    VERBOSITY.load(Ordering::Relaxed) >= v as u8
}

/// Write one `cg-test: ` line to stderr, ignoring failure.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "cg-test: {args}");
}

/// A note shown unless `--quiet` (fallbacks, warnings).
pub fn note(args: std::fmt::Arguments<'_>) {
    if verbosity_at_least(Verbosity::Normal) {
        line(args);
    }
}

/// A step shown only with `--verbose`.
pub fn step(args: std::fmt::Arguments<'_>) {
    if verbosity_at_least(Verbosity::Verbose) {
        line(args);
    }
}

/// Print an error chain once, on one line (`{:#}` joins the causes with `: `).
pub fn error(err: &anyhow::Error) {
    line(format_args!("{err:#}"));
}

/// Print a command-line error as one line and choose its exit status; `--help` and
/// `--version` print normally and succeed.
pub fn clap_error(err: &clap::Error) -> ExitStatus {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{err}");
        let _ = out.flush();
        return ExitStatus::Exited(0);
    }
    line(format_args!(
        "{} (see cg-test --help)",
        one_line_clap_message(&err.to_string())
    ));
    ExitStatus::OwnError
}

/// The first paragraph of a clap message, without its `error: ` prefix, folded into one
/// line.
fn one_line_clap_message(rendered: &str) -> String {
    let first = rendered.split("\n\n").next().unwrap_or(rendered);
    let first = first.trim().strip_prefix("error: ").unwrap_or(first.trim());
    first.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Report the leaked processes, one line each, then the count.
pub fn leaks(leaked: &[LeakedProcess], boundary: &str) {
    for p in leaked {
        line(format_args!("leaked pid {}: {}", p.pid, p.cmdline));
    }
    if !leaked.is_empty() {
        line(format_args!(
            "{} process(es) outlived the command in {boundary}; killing them",
            leaked.len()
        ));
    }
}

/// The one summary line at the end of a run (unless `--quiet`).
pub fn summary(o: &Outcome) {
    note(format_args!(
        "done: isolation={} outcome={} exit={} wall={:.3}s leaked={}",
        o.isolation,
        o.status.outcome(),
        o.status.code(),
        o.wall.as_secs_f64(),
        o.leaked.len()
    ));
}

/// Flush stdout before the process exits (the C `main` skips Rust's own flush), and
/// wait until a terminal on stderr has sent everything: as a machine's PID 1 on a
/// serial console, the kernel halts the moment cg-test exits, and lines still in the
/// terminal's output queue (the summary) would be lost.
pub fn flush() {
    let _ = std::io::stdout().flush();
    // SAFETY: isatty and tcdrain on our own stderr; SIGTTOU is blocked, so a
    // background cg-test is not stopped by it.
    unsafe {
        if libc::isatty(2) == 1 {
            libc::tcdrain(2);
        }
    }
}

/// `note!`/`step!`-style helpers with format arguments.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => { $crate::report::note(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! step {
    ($($arg:tt)*) => { $crate::report::step(format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_messages_fold_to_one_line() {
        let m = "error: the following required arguments were not provided:\n  <COMMAND>...\n\nUsage: cg-test\n";
        assert_eq!(
            one_line_clap_message(m),
            "the following required arguments were not provided: <COMMAND>..."
        );
        let m = "error: invalid value 'banana' for '--timeout <DURATION>': expected x\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line_clap_message(m),
            "invalid value 'banana' for '--timeout <DURATION>': expected x"
        );
    }
}
