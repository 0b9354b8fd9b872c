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

use cg_test::cli::{self, Config, Invocation};
use cg_test::exit::ExitStatus;
use cg_test::report;

/// The C entry point. Not for calling from Rust: the C runtime passes `argv`.
#[no_mangle]
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    if cg_test::platform::exec_is_secure() {
        return c_int::from(refuse_secure_exec().code());
    }
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

/// A setuid or setgid cg-test, or one with file capabilities (the kernel marks such an
/// exec AT_SECURE): refused before anything else, argv unread and no file touched.
/// cg-test acts on cgroups, processes and a `--report` path its caller names; raised
/// privileges would let any user kill another's processes or write files as root.
fn refuse_secure_exec() -> ExitStatus {
    report::line(format_args!(
        "refusing to run setuid, setgid or with file capabilities (the kernel marked this \
         exec AT_SECURE): cg-test would act on cgroups, processes and files with privileges \
         its caller does not have; remove them (chmod u-s,g-s or setcap -r on the binary) \
         and run cg-test as the user it should act as"
    ));
    ExitStatus::OwnError
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
        Ok(Invocation::Completions(c)) => return print_completions(c.shell),
        Ok(Invocation::Manpage(_)) => return print_manpage(),
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

/// `cg-test completions SHELL`.
#[cfg(feature = "docs")]
fn print_completions(shell: cli::Shell) -> ExitStatus {
    use clap_complete::Shell as S;
    let shell = match shell {
        cli::Shell::Bash => S::Bash,
        cli::Shell::Zsh => S::Zsh,
        cli::Shell::Fish => S::Fish,
        cli::Shell::Elvish => S::Elvish,
        cli::Shell::PowerShell => S::PowerShell,
    };
    let mut cmd = cli::documented_command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "cg-test", &mut out);
    ExitStatus::Exited(0)
}

/// `cg-test manpage`.
#[cfg(feature = "docs")]
fn print_manpage() -> ExitStatus {
    let man = clap_mangen::Man::new(cli::documented_command());
    match man.render(&mut std::io::stdout().lock()) {
        Ok(()) => ExitStatus::Exited(0),
        Err(err) => {
            report::error(&anyhow::Error::new(err).context("writing the man page"));
            ExitStatus::OwnError
        }
    }
}

#[cfg(not(feature = "docs"))]
fn print_completions(_shell: cli::Shell) -> ExitStatus {
    no_docs("completions")
}

#[cfg(not(feature = "docs"))]
fn print_manpage() -> ExitStatus {
    no_docs("manpage")
}

/// The static build leaves the generators out (see Cargo.toml's `docs` feature).
#[cfg(not(feature = "docs"))]
fn no_docs(tool: &str) -> ExitStatus {
    report::line(format_args!(
        "{tool}: this cg-test was built without the `docs` feature (the small static \
         build); run `cg-test {tool}` from a `cargo install` build"
    ));
    ExitStatus::OwnError
}
