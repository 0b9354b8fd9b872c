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

/// How long cg-test, as PID 1, waits for a terminal on stderr to send what is queued.
const CONSOLE_DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Flush stdout before the process exits (the C `main` skips Rust's own flush). As a
/// machine's PID 1 with a terminal on stderr (a serial console), also wait a bounded
/// time for the terminal to send what is queued: the kernel halts the moment PID 1
/// exits, and lines still in the terminal's output queue (the summary) would be lost.
///
/// Only there, and never unbounded: `tcdrain` waits until the terminal has sent
/// everything, which is forever on a serial line stopped by XOFF or flow control. Any
/// other cg-test exits at once; the terminal sends the rest after it is gone.
pub fn flush() {
    let _ = std::io::stdout().flush();
    // SAFETY: getpid and isatty only query.
    let pid1_on_terminal = unsafe { libc::getpid() == 1 && libc::isatty(2) == 1 };
    if pid1_on_terminal {
        drain_terminal(2, CONSOLE_DRAIN_LIMIT);
    }
}

/// Wait up to `limit` for the output queue of terminal `fd` to empty, then let its
/// driver finish the characters already in the transmitter.
///
/// A terminal has no event for "output queue empty" (POLLOUT means room, not empty),
/// so this polls TIOCOUTQ. Once the queue is empty, `tcdrain` only waits for the
/// driver's transmitter (the UART FIFO), which the serial core bounds by twice the
/// time to send a FIFO; a queue that is still full at `limit` (XOFF, a stalled line)
/// is given up on, and cg-test exits without it.
fn drain_terminal(fd: i32, limit: Duration) {
    let emptied = poll_until(limit, Duration::from_millis(10), || {
        output_queue(fd).is_none_or(|n| n == 0)
    });
    if emptied {
        // SAFETY: tcdrain on our own stderr; SIGTTOU is blocked, so a background
        // cg-test is not stopped by it.
        unsafe { libc::tcdrain(fd) };
    }
}

/// Bytes queued for output on terminal `fd`, or None when it cannot be known.
// Moves behind src/platform with the rest of the per-OS code.
#[cfg(target_os = "linux")]
fn output_queue(fd: i32) -> Option<i32> {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int to the pointer we pass.
    (unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) } == 0).then_some(queued)
}

/// Elsewhere the queue is not read (and cg-test is never a machine's PID 1 there):
/// drain at once, without waiting.
#[cfg(not(target_os = "linux"))]
fn output_queue(_fd: i32) -> Option<i32> {
    None
}

/// Check `done` every `step` until it holds or `limit` has passed; whether it held.
fn poll_until(limit: Duration, step: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= until {
            return false;
        }
        std::thread::sleep(step.min(until - now));
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
    fn a_queue_that_never_empties_is_given_up_on_after_the_limit() {
        let limit = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let mut polls = 0;
        let emptied = poll_until(limit, Duration::from_millis(10), || {
            polls += 1;
            false
        });
        assert!(!emptied);
        assert!(started.elapsed() >= limit);
        assert!(polls > 1, "polled more than once: {polls}");
        let mut left = 3;
        assert!(poll_until(limit, Duration::from_millis(1), || {
            left -= 1;
            left == 0
        }));
    }

    #[test]
    fn output_queue_of_a_non_terminal() {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open("/dev/null").unwrap();
        // /dev/null is no terminal: the queue cannot be read, so nothing waits on it.
        assert_eq!(output_queue(f.as_raw_fd()), None);
    }

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
