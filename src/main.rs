//! The `cg-test` binary: a dispatcher. It turns argv into a [`Config`], runs it, prints
//! an error once, writes the `--report` file, and chooses the exit code in one place.
//!
//! `#![no_main]` is deliberate: Rust's own runtime start-up (`lang_start`) sets SIGPIPE
//! to SIG_IGN and reopens closed standard descriptors on /dev/null before `main` runs.
//! cg-test must hand the command the signal dispositions and descriptors it was given
//! itself, so it starts from the C `main` and takes argv from there.
#![no_main]

use std::ffi::{CStr, OsString};
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStringExt;
use std::time::{Instant, SystemTime};

use cg_test::cli::{Args, Config};
use cg_test::exit::ExitStatus;
use cg_test::report;
use clap::Parser;

/// The C entry point. Not for calling from Rust: the C runtime passes `argv`.
#[no_mangle]
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    cg_test::platform::reserve_closed_std_fds();
    // SAFETY: the C runtime passes argc valid, NUL-terminated strings in argv.
    let args = unsafe { collect_args(argc, argv) };
    let status = dispatch(args);
    report::flush();
    c_int::from(status.code())
}

unsafe fn collect_args(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| unsafe { *argv.add(i) })
        .filter(|p| !p.is_null())
        .map(|p| OsString::from_vec(unsafe { CStr::from_ptr(p) }.to_bytes().to_vec()))
        .collect()
}

fn dispatch(args: Vec<OsString>) -> ExitStatus {
    let parsed = match Args::try_parse_from(args) {
        Ok(parsed) => parsed,
        Err(err) => return report::clap_error(&err),
    };
    let config = match Config::from_args(parsed) {
        Ok(config) => config,
        Err(err) => {
            report::error(&err);
            return ExitStatus::OwnError;
        }
    };
    report::set_verbosity(config.verbosity);
    let started_at = SystemTime::now();
    let started = Instant::now();
    match cg_test::run(&config) {
        Ok(outcome) => {
            match &outcome.error {
                Some(msg) => report::line(format_args!("{msg}")),
                None => report::summary(&outcome),
            }
            let written = config
                .report
                .as_deref()
                .map(|path| report::json::write(path, &config.command, &outcome));
            match written {
                Some(Err(err)) => {
                    report::error(&err);
                    ExitStatus::OwnError
                }
                _ => outcome.status,
            }
        }
        Err(err) => {
            report::error(&err);
            // The command never started, but a report was asked for: say so in it
            // rather than leave a previous run's file looking like this one's.
            if let Some(path) = &config.report {
                let msg = format!("{err:#}");
                let wall = started.elapsed();
                if let Err(e) =
                    report::json::write_setup_failure(path, &config.command, started_at, wall, &msg)
                {
                    report::error(&e);
                }
            }
            ExitStatus::OwnError
        }
    }
}
