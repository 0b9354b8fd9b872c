//! What cg-test says: the outcome of a run, the one summary line, the leak and
//! timeout tables, notes and errors, all on stderr with a `cg-test: ` prefix; GitHub
//! Actions annotations ([`annotate`]); and the `--report` file ([`json`]).
//!
//! Writes never panic: cg-test blocks SIGPIPE (so a closed stderr cannot kill it in the
//! middle of a teardown), and a failed write to stderr is ignored rather than turned into
//! a panic as `eprintln!` would.

pub mod annotate;
pub mod json;
pub mod tree;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use crate::cli::{signal_name, Verbosity};
use crate::exit::ExitStatus;
use crate::snapshot::{Cause, ProcRow, SHOWN};
use crate::usage::{MemoryScope, Usage};

/// A process found in the run's boundary after the command exited.
pub type LeakedProcess = ProcRow;

/// What happened in one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The status cg-test exits with.
    pub status: ExitStatus,
    /// `cgroup` or `pgroup`.
    pub isolation: &'static str,
    /// The boundary in words, e.g. the leaf's path.
    pub boundary: String,
    /// The leaf's directory (cgroup mode).
    pub boundary_path: Option<PathBuf>,
    /// The run id (`CG_TEST_RUN_ID`).
    pub run_id: String,
    /// When the run started, on the wall clock.
    pub started_at: SystemTime,
    /// Wall time from start to the end of teardown.
    pub wall: Duration,
    /// The command's raw wait status; None if it never ran.
    pub command_exit: Option<i32>,
    /// What the run cost.
    pub usage: Usage,
    /// Processes that outlived the command by more than `--leak-timeout`.
    pub leaked: Vec<LeakedProcess>,
    /// What was running when the timeout fired (empty unless it did).
    pub at_timeout: Vec<ProcRow>,
    /// cg-test's own failure after the command started (`status` is then
    /// `OwnError`): the one error line, already formatted.
    pub error: Option<String>,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(1);
static ANNOTATE: AtomicBool = AtomicBool::new(false);

/// Set how much later calls print, and whether they add GitHub Actions annotations
/// (when `GITHUB_ACTIONS=true`).
pub fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, Ordering::Relaxed);
    ANNOTATE.store(annotate::in_github_actions(), Ordering::Relaxed);
}

fn verbosity_at_least(v: Verbosity) -> bool {
    VERBOSITY.load(Ordering::Relaxed) >= v as u8
}

/// Are notes (and the summary) shown, i.e. not `--quiet`?
pub fn shows_notes() -> bool {
    verbosity_at_least(Verbosity::Normal)
}

/// Are steps shown (`--verbose`)?
pub fn shows_steps() -> bool {
    verbosity_at_least(Verbosity::Verbose)
}

/// Are GitHub Actions annotations written?
pub fn annotating() -> bool {
    ANNOTATE.load(Ordering::Relaxed)
}

/// Write one line to stderr as it is (an annotation), ignoring failure.
fn raw_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
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

/// Report the leaked processes: the count, then the table (busiest first, as a
/// tree, capped), and the CI annotation. Shown even with `--quiet`.
pub fn leaks(leaked: &[LeakedProcess], boundary: &str, report_file: bool) {
    if leaked.is_empty() {
        return;
    }
    line(format_args!(
        "{} process(es) outlived the command in {boundary}; killing them:",
        leaked.len()
    ));
    table(leaked, report_file);
    if annotating() {
        raw_line(&annotate::leak(leaked));
    }
}

/// The teardown snapshot: what was running when the timeout fired (or, with `-v`,
/// when a signal arrived), as a capped tree; for a timeout also the CI annotation.
pub fn teardown_snapshot(cause: Cause, rows: &[ProcRow], report_file: bool) {
    let show = match cause {
        Cause::Timeout(_) => shows_notes(),
        Cause::Signal(_) => shows_steps(),
    };
    if show && !rows.is_empty() {
        let when = match cause {
            Cause::Timeout(_) => "at the timeout".to_string(),
            Cause::Signal(sig) => format!("when {} arrived", signal_name(sig)),
        };
        line(format_args!(
            "running {when}: {} process(es), busiest first:",
            rows.len()
        ));
        table(rows, report_file);
    }
    if let (Cause::Timeout(after), true) = (cause, annotating()) {
        raw_line(&annotate::timeout(after, rows));
    }
}

/// Print rows as the capped tree table.
fn table(rows: &[ProcRow], report_file: bool) {
    let hint = if report_file {
        " (the --report file lists every one)"
    } else {
        " (--report FILE lists every one)"
    };
    // One write for the whole table (a 1,000-process timeout prints it on the
    // teardown's path).
    let mut text = String::new();
    for l in tree::render(rows, SHOWN, stderr_width(), hint) {
        text.push_str("cg-test: ");
        text.push_str(&l);
        text.push('\n');
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// How wide a table line may be: the terminal's width when stderr is one.
fn stderr_width() -> tree::Width {
    // SAFETY: isatty and TIOCGWINSZ only read into the winsize we own.
    let columns = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::isatty(2) == 1 && libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0)
            .then_some(usize::from(ws.ws_col))
    };
    match columns {
        Some(columns) => tree::Width::Terminal {
            columns,
            prefix: "cg-test: ".len(),
        },
        None => tree::Width::Unlimited,
    }
}

/// The one summary line at the end of a run (unless `--quiet`).
pub fn summary(o: &Outcome) {
    note(format_args!("done: {}", summary_fields(o)));
}

/// The summary's `key=value` fields. Usage figures say what they are: `largest_rss`
/// is the largest single process (getrusage), `peak_mem` the whole run at its peak
/// (the leaf's memory.peak); what cannot be known here is `n/a`, never 0.
fn summary_fields(o: &Outcome) -> String {
    let na = || "n/a".to_string();
    let secs = |d: Duration| format!("{:.3}s", d.as_secs_f64());
    let memory = match o.usage.memory {
        Some(m) if m.scope == MemoryScope::Run => format!("peak_mem={}", tree::bytes_long(m.bytes)),
        Some(m) => format!("largest_rss={}", tree::bytes_long(m.bytes)),
        None => "peak_mem=n/a".to_string(),
    };
    format!(
        "isolation={} outcome={} exit={} wall={:.3}s user={} sys={} {memory} peak_pids={} oom_kills={} leaked={}",
        o.isolation,
        o.status.outcome(),
        o.status.code(),
        o.wall.as_secs_f64(),
        o.usage.cpu.map(|c| secs(c.user)).unwrap_or_else(na),
        o.usage.cpu.map(|c| secs(c.system)).unwrap_or_else(na),
        o.usage.pids_peak.map(|p| p.to_string()).unwrap_or_else(na),
        o.usage.oom_kills.map(|p| p.to_string()).unwrap_or_else(na),
        o.leaked.len()
    )
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
    use crate::usage::{Cpu, CpuSource, Memory};

    fn outcome(usage: Usage) -> Outcome {
        Outcome {
            status: ExitStatus::Exited(0),
            isolation: "cgroup",
            boundary: String::new(),
            boundary_path: None,
            run_id: "1-2-3".into(),
            started_at: SystemTime::UNIX_EPOCH,
            wall: Duration::from_millis(1500),
            command_exit: Some(0),
            usage,
            leaked: Vec::new(),
            at_timeout: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn summary_labels_each_figure_and_keeps_unknown_unknown() {
        let unknown = outcome(Usage::default());
        assert_eq!(
            summary_fields(&unknown),
            "isolation=cgroup outcome=success exit=0 wall=1.500s user=n/a sys=n/a \
             peak_mem=n/a peak_pids=n/a oom_kills=n/a leaked=0"
        );
        let here = outcome(Usage {
            cpu: Some(Cpu {
                user: Duration::from_millis(1010),
                system: Duration::from_millis(20),
                source: CpuSource::Cgroup,
            }),
            memory: Some(Memory {
                bytes: 109_261_619,
                scope: MemoryScope::LargestProcess,
            }),
            pids_peak: None,
            oom_kills: None,
        });
        assert_eq!(
            summary_fields(&here),
            "isolation=cgroup outcome=success exit=0 wall=1.500s user=1.010s sys=0.020s \
             largest_rss=104.2MiB peak_pids=n/a oom_kills=n/a leaked=0"
        );
        let run = outcome(Usage {
            memory: Some(Memory {
                bytes: 3 << 30,
                scope: MemoryScope::Run,
            }),
            pids_peak: Some(12),
            oom_kills: Some(0),
            ..here.usage
        });
        assert!(summary_fields(&run).contains(" peak_mem=3.0GiB peak_pids=12 oom_kills=0 leaked=0"));
    }

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
