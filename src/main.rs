//! The `cg-test` binary: a dispatcher. It turns argv into a [`Config`], runs it, prints
//! an error once, and chooses the exit code in one place.
//!
//! `#![no_main]` is deliberate: Rust's own runtime start-up (`lang_start`) sets SIGPIPE
//! to SIG_IGN and reopens closed standard descriptors on /dev/null before `main` runs.
//! cg-test must hand the command the signal dispositions and descriptors it was given
//! itself, so it starts from the C `main` and takes argv from there.
#![no_main]

use std::ffi::{CStr, OsString};
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStringExt;

use cg_test::cli::{self, Config, Invocation};
use cg_test::exit::ExitStatus;
use cg_test::report;

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
    let parsed = match cli::parse(args) {
        Ok(Invocation::Run(parsed)) => parsed,
        Ok(Invocation::Gc(gc)) => {
            return cg_test::gc::gc(&gc).unwrap_or_else(|err| {
                report::error(&err);
                ExitStatus::OwnError
            })
        }
        Ok(Invocation::Doctor(doctor)) => return cg_test::doctor::run(&doctor),
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
    match cg_test::run(&config) {
        Ok(outcome) => {
            report::summary(&outcome);
            outcome.status
        }
        Err(err) => {
            report::error(&err);
            ExitStatus::OwnError
        }
    }
}
