//! The exit status cg-test reports, in one enum with one conversion to a process exit
//! code. The numbering follows GNU `timeout` and POSIX shells: the command's own code,
//! 128+N for death by signal N, 124 for a timeout, 125 for cg-test's own failure, 126
//! for a command that was found but could not be executed, 127 for one not found.

use std::fmt;

/// Exit code of a run whose command succeeded but left processes behind, with
/// `--fail-on-leak`. 123 sits just below `timeout`'s reserved 124..=127 block; xargs
/// uses it for "a command failed", a meaning close to ours. Test runners exit 0 or 1
/// (sometimes 2), so 123 does not collide with them in practice.
pub const LEAK_EXIT_CODE: u8 = 123;

/// How a run ended, as the process exit code cg-test returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command exited with this code.
    Exited(u8),
    /// The command was killed by this signal number (reported as 128+N).
    Signaled(i32),
    /// The `--timeout` expired (124).
    TimedOut,
    /// cg-test received this signal and tore the run down (reported as 128+N).
    Interrupted(i32),
    /// The command succeeded but leaked processes, and `--fail-on-leak` was given.
    Leaked,
    /// cg-test itself failed: bad flag, isolation could not be set up (125).
    OwnError,
    /// The command was found but could not be executed (126).
    NotExecutable,
    /// The command was not found (127).
    NotFound,
}

impl ExitStatus {
    /// The one conversion to the number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(sig) | ExitStatus::Interrupted(sig) => signal_code(sig),
            ExitStatus::TimedOut => 124,
            ExitStatus::Leaked => LEAK_EXIT_CODE,
            ExitStatus::OwnError => 125,
            ExitStatus::NotExecutable => 126,
            ExitStatus::NotFound => 127,
        }
    }

    /// A short word for the summary line and the report.
    pub fn outcome(self) -> &'static str {
        match self {
            ExitStatus::Exited(0) => "success",
            ExitStatus::Exited(_) => "failure",
            ExitStatus::Signaled(_) => "killed-by-signal",
            ExitStatus::TimedOut => "timeout",
            ExitStatus::Interrupted(_) => "interrupted",
            ExitStatus::Leaked => "leaked",
            ExitStatus::OwnError => "error",
            ExitStatus::NotExecutable => "not-executable",
            ExitStatus::NotFound => "not-found",
        }
    }
}

/// 128 + N, as shells report death by signal N; saturates rather than wrapping for
/// the real-time signals above 127, which cannot be expressed in 8 bits.
fn signal_code(sig: i32) -> u8 {
    u8::try_from(128 + sig.clamp(0, 127)).unwrap_or(255)
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_timeout_and_shell_conventions() {
        assert_eq!(ExitStatus::Exited(7).code(), 7);
        assert_eq!(ExitStatus::Signaled(11).code(), 139);
        assert_eq!(ExitStatus::Interrupted(15).code(), 143);
        assert_eq!(ExitStatus::TimedOut.code(), 124);
        assert_eq!(ExitStatus::OwnError.code(), 125);
        assert_eq!(ExitStatus::NotExecutable.code(), 126);
        assert_eq!(ExitStatus::NotFound.code(), 127);
        assert_eq!(ExitStatus::Leaked.code(), 123);
    }
}
