//! `--report FILE`: the whole run as one JSON document, in a version-tagged schema
//! (docs/REPORT.md), written atomically on every path once the flags are valid.
//!
//! - The path is checked before anything runs ([`check_writable`]): its directory
//!   must exist and take a new file, and the path must not be a directory. A bad
//!   path is one error line naming it, and exit 125.
//! - The file is written next to its final name and renamed over it, so a reader
//!   sees either the previous file or the complete new one, never a partial write.
//! - Strings that come from the system (the command, process command lines) are
//!   bytes, not necessarily UTF-8. Each argument that is valid UTF-8 is a JSON string;
//!   one that is not is `{"hex": "…"}` with its exact bytes, so nothing is lost or
//!   replaced.
//!
//! serde and serde_json are only reached through [`write`]: a run without `--report`
//! serialises nothing.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::Outcome;
use crate::exit::ExitStatus;
use crate::snapshot::ProcRow;

/// The schema version; bumped when a field changes meaning or disappears (adding a
/// field does not bump it).
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Report<'a> {
    version: u32,
    cg_test_version: &'static str,
    command: Vec<Arg<'a>>,
    run_id: Option<String>,
    isolation: Option<&'static str>,
    boundary: Option<Arg<'a>>,
    outcome: &'static str,
    exit_code: u8,
    command_exit: Option<CommandExit>,
    started_at: String,
    wall_seconds: f64,
    cpu_user_seconds: Option<f64>,
    cpu_system_seconds: Option<f64>,
    cpu_source: Option<&'static str>,
    memory_peak_bytes: Option<u64>,
    memory_peak_scope: Option<&'static str>,
    pids_peak: Option<u64>,
    oom_kills: Option<u64>,
    leaked: Vec<Process<'a>>,
    at_timeout: Vec<Process<'a>>,
    error: Option<&'a str>,
}

/// One argument: a string when it is UTF-8, else its bytes in hex.
#[derive(Serialize, Debug, PartialEq)]
#[serde(untagged)]
enum Arg<'a> {
    Text(&'a str),
    Bytes { hex: String },
}

fn arg(bytes: &[u8]) -> Arg<'_> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Arg::Text(s),
        Err(_) => Arg::Bytes {
            hex: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        },
    }
}

/// How the command itself ended: `{"code": N}` or `{"signal": N}`.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum CommandExit {
    Code(i32),
    Signal(i32),
}

#[derive(Serialize)]
struct Process<'a> {
    pid: i32,
    ppid: i32,
    state: char,
    cpu_seconds: Option<f64>,
    age_seconds: Option<f64>,
    rss_bytes: Option<u64>,
    cmdline: Option<Vec<Arg<'a>>>,
}

fn process(r: &ProcRow) -> Process<'_> {
    Process {
        pid: r.pid,
        ppid: r.ppid,
        state: r.state,
        cpu_seconds: r.cpu.map(seconds),
        age_seconds: r.age.map(seconds),
        rss_bytes: r.rss,
        cmdline: r
            .cmdline
            .as_ref()
            .map(|args| args.iter().map(|a| arg(a)).collect()),
    }
}

/// The report's word for how the run ended.
pub fn outcome_name(status: ExitStatus) -> &'static str {
    match status {
        ExitStatus::Exited(_) => "exited",
        ExitStatus::Signaled(_) => "signaled",
        ExitStatus::TimedOut => "timed_out",
        ExitStatus::Interrupted(_) => "interrupted",
        ExitStatus::Leaked => "leaked",
        ExitStatus::NotFound => "not_found",
        ExitStatus::NotExecutable => "not_executable",
        ExitStatus::OwnError => "error",
    }
}

/// Seconds as a float, to the microsecond.
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e6
}

fn command_args(command: &[OsString]) -> Vec<Arg<'_>> {
    command.iter().map(|a| arg(a.as_bytes())).collect()
}

/// The report of a run (finished, or ended by cg-test's own error after it started).
fn from_outcome<'a>(command: &'a [OsString], o: &'a Outcome) -> Report<'a> {
    let raw_exit = o.command_exit;
    Report {
        version: VERSION,
        cg_test_version: env!("CARGO_PKG_VERSION"),
        command: command_args(command),
        run_id: Some(o.run_id.clone()),
        isolation: Some(o.isolation),
        boundary: o
            .boundary_path
            .as_deref()
            .map(|p| arg(p.as_os_str().as_bytes())),
        outcome: outcome_name(o.status),
        exit_code: o.status.code(),
        command_exit: raw_exit.map(|raw| {
            if libc::WIFSIGNALED(raw) {
                CommandExit::Signal(libc::WTERMSIG(raw))
            } else {
                CommandExit::Code(libc::WEXITSTATUS(raw))
            }
        }),
        started_at: rfc3339(o.started_at),
        wall_seconds: seconds(o.wall),
        cpu_user_seconds: o.usage.cpu.map(|c| seconds(c.user)),
        cpu_system_seconds: o.usage.cpu.map(|c| seconds(c.system)),
        cpu_source: o.usage.cpu.map(|c| c.source.as_str()),
        memory_peak_bytes: o.usage.memory.map(|m| m.bytes),
        memory_peak_scope: o.usage.memory.map(|m| m.scope.as_str()),
        pids_peak: o.usage.pids_peak,
        oom_kills: o.usage.oom_kills,
        leaked: o.leaked.iter().map(process).collect(),
        at_timeout: o.at_timeout.iter().map(process).collect(),
        error: o.error.as_deref(),
    }
}

/// Write the report of a run to `path`.
pub fn write(path: &Path, command: &[OsString], outcome: &Outcome) -> Result<()> {
    write_report(path, &from_outcome(command, outcome))
}

/// Write the report of a run that failed before its command could start (the
/// isolation could not be set up): what is known, and the error.
pub fn write_setup_failure(
    path: &Path,
    command: &[OsString],
    started_at: SystemTime,
    wall: Duration,
    error: &str,
) -> Result<()> {
    write_failure(path, command, None, started_at, wall, error)
}

/// What is known of a run whose cg-test could not report it itself (it was killed;
/// its watchdog writes the report).
#[derive(Clone, Debug)]
pub struct RunFacts {
    pub run_id: String,
    pub isolation: &'static str,
    pub boundary: Option<PathBuf>,
}

/// Write the report of a run that cg-test could not finish: outcome `error`, exit code
/// 125, what is known of the run, and the error.
pub fn write_failure(
    path: &Path,
    command: &[OsString],
    run: Option<&RunFacts>,
    started_at: SystemTime,
    wall: Duration,
    error: &str,
) -> Result<()> {
    write_report(
        path,
        &Report {
            version: VERSION,
            cg_test_version: env!("CARGO_PKG_VERSION"),
            command: command_args(command),
            run_id: run.map(|r| r.run_id.clone()),
            isolation: run.map(|r| r.isolation),
            boundary: run
                .and_then(|r| r.boundary.as_deref())
                .map(|b| arg(b.as_os_str().as_bytes())),
            outcome: outcome_name(ExitStatus::OwnError),
            exit_code: ExitStatus::OwnError.code(),
            command_exit: None,
            started_at: rfc3339(started_at),
            wall_seconds: seconds(wall),
            cpu_user_seconds: None,
            cpu_system_seconds: None,
            cpu_source: None,
            memory_peak_bytes: None,
            memory_peak_scope: None,
            pids_peak: None,
            oom_kills: None,
            leaked: Vec::new(),
            at_timeout: Vec::new(),
            error: Some(error),
        },
    )
}

fn write_report(path: &Path, report: &Report<'_>) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(report).context("encoding the report")?;
    bytes.push(b'\n');
    write_atomically(path, &bytes).with_context(|| format!("writing --report {}", path.display()))
}

/// Write `bytes` to a temporary file beside `path` and rename it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let written = create_new(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    // The name carries our pid, so a file already there is a leftover of a cg-test
    // with the same pid that was killed mid-write: ours to replace.
    let _ = std::fs::remove_file(path);
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// `.<name>.cg-test-<pid>.tmp` in the report's directory (the same filesystem, so
/// the rename is atomic).
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    dir_of(path).join(format!(".{name}.cg-test-{}.tmp", std::process::id()))
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Before the command starts: can a report be written at `path`? Creates and removes
/// the temporary file the final write will use, which is the one test that answers
/// for permissions, read-only filesystems and name length alike.
pub fn check_writable(path: &Path) -> Result<()> {
    let shown = path.display();
    if path.as_os_str().is_empty() {
        bail!("--report needs a file name, e.g. --report cg-test-report.json");
    }
    if path.is_dir() {
        bail!(
            "--report {shown} is a directory; give a file in it, e.g. --report {}",
            path.join("cg-test-report.json").display()
        );
    }
    if path.file_name().is_none() {
        bail!("--report {shown} does not name a file; give a file name, e.g. cg-test-report.json");
    }
    let dir = dir_of(path);
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("--report {shown}: {} is not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "--report {shown}: directory {} does not exist; create it first",
            dir.display()
        ),
        Err(e) => bail!(
            "--report {shown}: cannot use directory {}: {e}",
            dir.display()
        ),
    }
    let probe = temp_path(path);
    match create_new(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!(
            "--report {shown}: cannot create a file in {}: {e}; choose a writable directory",
            dir.display()
        ),
    }
}

/// A time as RFC 3339 in UTC, to the millisecond: `2026-11-22T04:30:05.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil_from_days(secs.div_euclid(86400));
    let sod = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        d.subsec_millis()
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm for
/// the proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_000 + 3_723_456);
        assert_eq!(rfc3339(t), "2000-02-29T01:02:03.456Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(rfc3339(t), "2026-12-31T23:59:59.000Z");
    }

    #[test]
    fn arguments_are_strings_or_exact_bytes() {
        assert_eq!(arg(b"a\nb%"), Arg::Text("a\nb%"));
        assert_eq!(arg(b"x\xff"), Arg::Bytes { hex: "78ff".into() });
        let json = serde_json::to_string(&[arg(b"ok"), arg(b"\xfe")]).unwrap();
        assert_eq!(json, r#"["ok",{"hex":"fe"}]"#);
        let exit = serde_json::to_string(&[CommandExit::Code(3), CommandExit::Signal(9)]).unwrap();
        assert_eq!(exit, r#"[{"code":3},{"signal":9}]"#);
    }

    #[test]
    fn bad_paths_are_refused_before_anything_runs() {
        let dir = std::env::temp_dir().join(format!("cg-test-json-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = |p: &Path| format!("{:#}", check_writable(p).unwrap_err());
        assert!(err(&dir).contains("is a directory"));
        assert!(err(&dir.join("missing/r.json")).contains("does not exist"));
        std::fs::write(dir.join("file"), "").unwrap();
        assert!(err(&dir.join("file/r.json")).contains("is not a directory"));
        let ok = dir.join("r.json");
        check_writable(&ok).unwrap();
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "the probe leaves nothing behind: {left:?}");
        write_atomically(&ok, b"{}\n").unwrap();
        write_atomically(&ok, b"{\"v\":2}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&ok).unwrap(), "{\"v\":2}\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
