//! Command-line parsing: the raw clap flags and the validated [`Config`] the rest of
//! cg-test works from. Durations, signals and the isolation mode are parsed here, once,
//! so every later step can trust its input; a bad value becomes one line naming the
//! flag and exit 125 (see `main.rs`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Parser, ValueEnum};

use crate::isolation;

/// Which isolation strategy a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IsolationMode {
    /// cgroup v2 when a leaf can be created and entered, else process group (with a note).
    Auto,
    /// A cgroup v2 leaf; an error (125) when none can be had.
    Cgroup,
    /// Process group + child subreaper + environment-token sweep.
    Pgroup,
}

/// Which processes get the signals cg-test passes on without a teardown (USR1, USR2,
/// WINCH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ForwardTo {
    /// USR1 and USR2 to the command alone, WINCH to its process group (as a terminal
    /// sends it).
    Command,
    /// All three to the command's process group (tini -g, dumb-init's default).
    Group,
    /// All three to every process of the run.
    All,
}

/// What a limit the host cannot apply does to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LimitsPolicy {
    /// Refuse the run (exit 125) with the reason.
    Strict,
    /// Warn in one line and run without limits.
    BestEffort,
}

/// How much cg-test says on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors and leak reports only.
    Quiet,
    /// Plus fallback notes and the one summary line.
    Normal,
    /// Plus each step of setup and teardown.
    Verbose,
}

/// Run COMMAND so that nothing it starts can outlive it: a fresh cgroup v2 leaf per
/// run, its own process group and a parent-death signal; timeouts and cleanup freeze
/// the cgroup and kill it whole.
#[derive(Parser, Debug)]
#[command(
    name = "cg-test",
    version,
    override_usage = "cg-test [OPTIONS] -- COMMAND [ARG]...",
    after_help = "Exit status: the command's own code; 128+N if it died of signal N or cg-test \
was stopped by signal N; 123 leaked with --fail-on-leak; 124 timeout; 125 cg-test's own \
error; 126 command not executable; 127 command not found.\n\n\
Tools (as the first argument): `cg-test gc [--dry-run] [PATH]` kills and removes the \
cgroup leaves of runs whose cg-test is gone; `cg-test doctor [--json]` shows what this \
host offers and what --isolation auto would pick; `cg-test completions SHELL` prints a \
shell completion script; `cg-test manpage` prints the man page. To run a program named \
like a tool, write `cg-test -- gc`."
)]
pub struct Args {
    /// Hard wall-clock limit (90s, 15m, 1h30m, 500ms; a bare number is seconds; 0 = none).
    #[arg(short = 't', long, value_name = "DURATION", value_parser = utf8(parse_duration), allow_hyphen_values = true)]
    pub timeout: Option<Duration>,

    /// Grace between the polite signal and the kill; 0 kills at once, without the
    /// polite signal (the run stays frozen from the deadline to the kill).
    #[arg(short = 'k', long, value_name = "DURATION", value_parser = utf8(parse_duration), default_value = "5s", allow_hyphen_values = true)]
    pub kill_after: Duration,

    /// The polite signal sent to every process of the run first (TERM, SIGTERM or 15;
    /// on Linux also RTMIN+N and RTMAX-N).
    #[arg(short = 's', long, value_name = "SIGNAL", value_parser = utf8(parse_signal), default_value = "TERM", allow_hyphen_values = true)]
    pub signal: i32,

    /// How long the command's descendants may linger after it exits before they count
    /// as leaked.
    #[arg(long, value_name = "DURATION", value_parser = utf8(parse_duration), default_value = "100ms", allow_hyphen_values = true)]
    pub leak_timeout: Duration,

    /// Fail (exit 123) when the command succeeded but left processes behind.
    #[arg(long)]
    pub fail_on_leak: bool,

    /// Isolation strategy.
    #[arg(long, value_enum, default_value_t = IsolationMode::Auto)]
    pub isolation: IsolationMode,

    /// Limit the run's memory (cgroup v2 memory.max): 512M, 2G, 1.5G or bytes; K, M, G,
    /// T are powers of 1024. Swap is limited to 0 as well unless --memory-swap-max.
    #[arg(long, value_name = "SIZE", value_parser = utf8(parse_memory_max), allow_hyphen_values = true)]
    pub memory_max: Option<u64>,

    /// Swap the run may use on top of --memory-max (memory.swap.max): a size, 0 (the
    /// default) or max.
    #[arg(long, value_name = "SIZE", value_parser = utf8(parse_swap_max), requires = "memory_max", allow_hyphen_values = true)]
    pub memory_swap_max: Option<isolation::limits::SwapMax>,

    /// Limit the number of processes and threads in the run (pids.max); forks beyond it
    /// fail with EAGAIN.
    #[arg(long, value_name = "N", value_parser = utf8(parse_pids_max), allow_hyphen_values = true)]
    pub pids_max: Option<u32>,

    /// Limit the run's CPU time to N CPUs (cpu.max: N × 100 ms per 100 ms period;
    /// fractional, e.g. 0.5 or 2).
    #[arg(long, value_name = "N", value_parser = utf8(parse_cpus), allow_hyphen_values = true)]
    pub cpus: Option<f64>,

    /// What a limit this host cannot apply does: strict refuses the run (exit 125),
    /// best-effort warns in one line and runs without limits.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = LimitsPolicy::Strict)]
    pub limits: LimitsPolicy,

    /// Tear the run down (as on SIGTERM: exit 143) when cg-test's parent dies, e.g. the
    /// shell or harness that started it is SIGKILLed (Linux).
    #[arg(long)]
    pub die_with_parent: bool,

    /// Which processes get USR1, USR2 and WINCH sent to cg-test: the command alone
    /// (WINCH: its process group), the command's process group, or every process of the
    /// run. Teardown signals (INT, TERM, HUP, QUIT) always go to every process.
    #[arg(long, value_enum, value_name = "WHOM", default_value_t = ForwardTo::Command)]
    pub forward_to: ForwardTo,

    /// Run the command in a new pid namespace (and mount namespace with /proc remounted)
    /// whose init dies with cg-test, so the kernel kills everything in it when cg-test
    /// dies, even by SIGKILL (Linux; needs CAP_SYS_ADMIN or unprivileged user namespaces).
    #[arg(long)]
    pub pid_ns: bool,

    /// Keep a root command inside its cgroup leaf, its limits as set, and the kernel
    /// from starting programs for it outside the run: implies --pid-ns; a cgroup
    /// namespace rooted at the leaf, the leaf's limit files, /sys and /proc/sys
    /// read-only, CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH and six more
    /// dropped, no_new_privs, a seccomp filter (no user namespaces, no TIOCSTI). README
    /// lists what remains (Linux 5.12+; needs CAP_SYS_ADMIN and a cgroup leaf).
    #[arg(long)]
    pub harden: bool,

    /// Write the whole run as JSON to FILE (atomically, on every path; the schema is
    /// in docs/REPORT.md). Checked before the command starts; a relative FILE is
    /// relative to the directory cg-test starts in.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Say nothing but errors and leaks.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Describe each step of setup and teardown.
    #[arg(short, long)]
    pub verbose: bool,

    /// Test-only: force compatibility paths normally used on older kernels or other
    /// systems, or failure paths (comma-separated: fork-spawn, signal-kill,
    /// no-subreaper, no-watchdog, freeze-gives-up, stop-before-kill).
    #[arg(long, hide = true, value_name = "LIST", value_delimiter = ',', value_parser = parse_compat)]
    pub compat: Vec<Compat>,

    /// The command to run, and its arguments.
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true, num_args = 1..)]
    pub command: Vec<OsString>,
}

/// `cg-test gc`: collect the leaves of runs whose cg-test is gone (SIGKILLed together
/// with its watchdog, a machine that lost power, an older cg-test).
#[derive(Parser, Debug)]
#[command(
    name = "gc",
    bin_name = "cg-test gc",
    about = "Kill the processes in, and remove, every cg-test-* cgroup leaf whose owner \
             (the cg-test that made it: pid and start time) is gone. Leaves of live runs \
             are never touched."
)]
pub struct GcArgs {
    /// Print what would be killed and removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Look only below this directory of a cgroup2 mount (default: every cgroup2 mount).
    #[arg(value_name = "PATH")]
    pub path: Option<std::path::PathBuf>,
}

/// `cg-test doctor [--json]`: what this host offers cg-test and what `--isolation
/// auto` would pick here, and why (src/doctor.rs, docs/DOCTOR.md).
#[derive(Parser, Debug)]
#[command(
    name = "doctor",
    bin_name = "cg-test doctor",
    version,
    about = "Show what this host offers cg-test and what --isolation auto would pick here, and why.",
    after_help = "Field names of --json are stable; docs/DOCTOR.md describes them. \
`cg-test -- doctor` runs a program named doctor instead."
)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cg-test completions SHELL`: a completion script generated from the clap definitions.
#[derive(Parser, Debug)]
#[command(
    name = "completions",
    bin_name = "cg-test completions",
    about = "Print a completion script for SHELL on stdout, generated from cg-test's own \
             flag definitions (e.g. cg-test completions bash > /etc/bash_completion.d/cg-test)."
)]
pub struct CompletionsArgs {
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// The shells `cg-test completions` writes scripts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    #[value(name = "powershell")]
    PowerShell,
}

/// `cg-test manpage`: the man page (roff), generated from the clap definitions.
#[derive(Parser, Debug)]
#[command(
    name = "manpage",
    bin_name = "cg-test manpage",
    about = "Print cg-test's man page (roff) on stdout, generated from its own flag \
             definitions (e.g. cg-test manpage > /usr/local/share/man/man1/cg-test.1)."
)]
pub struct ManpageArgs {}

/// What the command line asks for: a run, or one of the tools.
#[derive(Debug)]
pub enum Invocation {
    Run(Args),
    Gc(GcArgs),
    Doctor(DoctorArgs),
    Completions(CompletionsArgs),
    Manpage(ManpageArgs),
}

/// Parse argv. A tool is recognised only as the very first argument, so `cg-test -- gc`
/// and `cg-test -t 5s gc` still run a program named gc (the other tools likewise).
pub fn parse(args: Vec<OsString>) -> Result<Invocation, clap::Error> {
    let tool = || args.iter().skip(1).cloned();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("gc") => GcArgs::try_parse_from(tool()).map(Invocation::Gc),
        Some("doctor") => DoctorArgs::try_parse_from(tool()).map(Invocation::Doctor),
        Some("completions") => CompletionsArgs::try_parse_from(tool()).map(Invocation::Completions),
        Some("manpage") => ManpageArgs::try_parse_from(tool()).map(Invocation::Manpage),
        _ => Args::try_parse_from(args).map(Invocation::Run),
    }
}

/// The whole command line as one clap command, the tools as its subcommands: only for
/// generating completions and the man page (the parsing above dispatches by hand, so
/// that a command after the options can never be taken for a tool).
pub fn documented_command() -> clap::Command {
    use clap::CommandFactory;
    Args::command()
        .subcommand(GcArgs::command().bin_name("gc"))
        .subcommand(DoctorArgs::command().bin_name("doctor"))
        .subcommand(CompletionsArgs::command().bin_name("completions"))
        .subcommand(ManpageArgs::command().bin_name("manpage"))
}

/// A compatibility path a test can force on a kernel that would not need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compat {
    /// Spawn with plain fork and let the child write itself into `cgroup.procs`
    /// instead of clone3(CLONE_INTO_CGROUP) (kernels before 5.7, seccomp'd clone3).
    ForkSpawn,
    /// Kill each member with SIGKILL while frozen instead of writing `cgroup.kill`
    /// (kernels before 5.14).
    SignalKill,
    /// Do not become a child subreaper: the algorithm of systems that have none.
    NoSubreaper,
    /// Start no watchdog (for benchmarks that compare the cost with and without it).
    NoWatchdog,
    /// Every freeze gives up (the pgroup walk after one round), as one that never
    /// converges would: the kill must still happen.
    FreezeGivesUp,
    /// cg-test stops itself (SIGSTOP) between the final freeze and the kill, so a test
    /// can kill it at exactly that moment.
    StopBeforeKill,
}

fn parse_compat(s: &str) -> Result<Compat, String> {
    match s {
        "fork-spawn" => Ok(Compat::ForkSpawn),
        "signal-kill" => Ok(Compat::SignalKill),
        "no-subreaper" => Ok(Compat::NoSubreaper),
        "no-watchdog" => Ok(Compat::NoWatchdog),
        "freeze-gives-up" => Ok(Compat::FreezeGivesUp),
        "stop-before-kill" => Ok(Compat::StopBeforeKill),
        _ => Err(
            "expected fork-spawn, signal-kill, no-subreaper, no-watchdog, \
                  freeze-gives-up or stop-before-kill"
                .into(),
        ),
    }
}

/// Everything a run needs, validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub command: Vec<OsString>,
    pub timeout: Option<Duration>,
    pub kill_after: Duration,
    pub signal: i32,
    pub leak_timeout: Duration,
    pub fail_on_leak: bool,
    pub isolation: IsolationMode,
    pub die_with_parent: bool,
    pub forward_to: ForwardTo,
    pub pid_ns: bool,
    pub harden: bool,
    pub verbosity: Verbosity,
    pub compat: Vec<Compat>,
    /// The resource limits asked for (None: none).
    pub limits: Option<isolation::Limits>,
    /// `--report FILE`, checked writable.
    pub report: Option<PathBuf>,
}

impl Config {
    /// Validate parsed flags into a config.
    pub fn from_args(args: Args) -> Result<Config> {
        if args.command.first().is_none_or(|c| c.is_empty()) {
            bail!(
                "COMMAND is empty: give the program to run after `--`, e.g. cg-test -- make test"
            );
        }
        if args.harden && args.isolation == IsolationMode::Pgroup {
            bail!(
                "--harden keeps the command inside its cgroup leaf, which --isolation pgroup \
                 does not make; use --isolation auto or cgroup, or drop --harden"
            );
        }
        // Resolved once, here, against the directory cg-test was started in: every
        // later user of the path (cg-test's own report, its watchdog's, which runs in
        // `/`) gets the same file.
        let report = args
            .report
            .as_deref()
            .map(absolute_report_path)
            .transpose()?;
        if let Some(path) = &report {
            crate::report::json::check_writable(path)?;
        }
        let verbosity = if args.quiet {
            Verbosity::Quiet
        } else if args.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        let limits = limits_of(&args);
        if let (Some(l), IsolationMode::Pgroup) = (&limits, args.isolation) {
            bail!(
                "{}: limits are files of a cgroup v2 leaf, and --isolation pgroup has none; \
                 use --isolation auto or cgroup, or drop the limit",
                l.flags()
            );
        }
        Ok(Config {
            limits,
            command: args.command,
            // `--timeout 0` disables the limit, as in GNU timeout.
            timeout: args.timeout.filter(|d| !d.is_zero()),
            kill_after: args.kill_after,
            signal: args.signal,
            leak_timeout: args.leak_timeout,
            fail_on_leak: args.fail_on_leak,
            isolation: args.isolation,
            die_with_parent: args.die_with_parent,
            forward_to: args.forward_to,
            pid_ns: args.pid_ns,
            harden: args.harden,
            verbosity,
            compat: args.compat,
            report,
        })
    }

    /// Whether a test forced this compatibility path.
    pub fn forces(&self, c: Compat) -> bool {
        self.compat.contains(&c)
    }

    /// What the isolation layer is asked to do, in its own terms (it knows no CLI).
    pub fn isolation_options(&self) -> isolation::Options {
        isolation::Options {
            // --harden confines the command to its leaf: without one there is nothing to
            // harden, so auto may not fall back.
            mode: match self.isolation {
                IsolationMode::Auto if self.harden => isolation::Mode::Cgroup,
                IsolationMode::Auto => isolation::Mode::Auto,
                IsolationMode::Cgroup => isolation::Mode::Cgroup,
                IsolationMode::Pgroup => isolation::Mode::Pgroup,
            },
            fork_spawn: self.forces(Compat::ForkSpawn),
            signal_kill: self.forces(Compat::SignalKill),
            subreaper: crate::platform::IS_LINUX && !self.forces(Compat::NoSubreaper),
            freeze_gives_up: self.forces(Compat::FreezeGivesUp),
            keep_stale: false,
            leaf_required_by: if self.harden { Some("--harden") } else { None },
            limits: self.limits.clone(),
        }
    }
}

/// `--report FILE` as an absolute path (a relative one joined to the current
/// directory; `..` and symbolic links are left as they are, for the kernel to follow).
fn absolute_report_path(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() || path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::path::absolute(path).map_err(|e| {
        anyhow!(
            "--report {}: a relative path needs the current directory, which cannot be read \
             ({e}); give an absolute path",
            path.display()
        )
    })
}

/// The limits the flags ask for, or None when no limit flag was given.
fn limits_of(args: &Args) -> Option<isolation::Limits> {
    let l = isolation::Limits {
        memory_max: args.memory_max,
        memory_swap_max: args.memory_swap_max.unwrap_or_default(),
        pids_max: args.pids_max,
        cpu_quota_us: args.cpus.map(isolation::Limits::cpu_quota_of),
        policy: match args.limits {
            LimitsPolicy::Strict => isolation::Policy::Strict,
            LimitsPolicy::BestEffort => isolation::Policy::BestEffort,
        },
    };
    (!l.is_empty()).then_some(l)
}

/// A flag's value parser (`fn(&str)`) that names the flag when the value is not UTF-8:
/// clap's own message for that, "invalid UTF-8 was detected in one or more arguments",
/// names none. Values that start with `-` reach the parser too (`allow_hyphen_values`
/// on each such flag), so `-t -5` is refused by the flag's own hint rather than as
/// "unexpected argument '-5'".
#[derive(Clone)]
struct Utf8<F>(F);

fn utf8<T, F>(parse: F) -> Utf8<F>
where
    F: Fn(&str) -> Result<T, String>,
{
    Utf8(parse)
}

impl<T, F> clap::builder::TypedValueParser for Utf8<F>
where
    F: Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        if value.to_str().is_none() {
            let flag = arg.map_or_else(|| "a flag".to_string(), |a| format!("'{a}'"));
            return Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidUtf8,
                format!(
                    "invalid value '{}' for {flag}: not valid UTF-8\n",
                    value.to_string_lossy()
                ),
            )
            .with_cmd(cmd));
        }
        self.0.parse_ref(cmd, arg, value)
    }
}

const SIZE_HINT: &str =
    "expected a size like 512M, 2G, 1.5G or a number of bytes (K, M, G, T are powers of 1024)";

/// Parse a size: a number of bytes, or a number (decimals allowed) with a binary unit
/// `K`, `M`, `G`, `T` (also `KiB`... and lowercase); `B` is bytes. `MB` and friends are
/// refused: whether they mean 1000² or 1024² is a matter of opinion.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => return Err(SIZE_HINT.into()),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(SIZE_HINT.into());
    }
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(1u64 << shift).ok_or_else(|| SIZE_HINT.into());
    }
    let n: f64 = number.parse().map_err(|_| SIZE_HINT.to_string())?;
    let bytes = n * (1u64 << shift) as f64;
    // Below 2^64 by a margin f64 can express; a fraction of a byte is dropped.
    (bytes.is_finite() && bytes < 1.8e19)
        .then_some(bytes as u64)
        .ok_or_else(|| SIZE_HINT.into())
}

/// `--memory-max`: a size above zero.
fn parse_memory_max(s: &str) -> Result<u64, String> {
    match parse_size(s) {
        Ok(0) | Err(_) => Err(SIZE_HINT.replacen("a size", "a size above zero", 1)),
        Ok(n) => Ok(n),
    }
}

/// `--memory-swap-max`: a size (0 allowed) or `max`.
fn parse_swap_max(s: &str) -> Result<isolation::limits::SwapMax, String> {
    use isolation::limits::SwapMax;
    if s.trim() == "max" {
        return Ok(SwapMax::Unlimited);
    }
    match parse_size(s) {
        Ok(0) => Ok(SwapMax::None),
        Ok(n) => Ok(SwapMax::Bytes(n)),
        Err(e) => Err(format!("{e}, 0 or max")),
    }
}

/// `--pids-max`: a whole number from 1 to the kernel's PID_MAX_LIMIT.
fn parse_pids_max(s: &str) -> Result<u32, String> {
    let max = isolation::limits::MAX_PIDS;
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("expected a whole number of processes from 1 to {max}"))
}

/// `--cpus`: a number of CPUs from 0.01 (the kernel's 1 ms quota per 100 ms period)
/// to 1024.
fn parse_cpus(s: &str) -> Result<f64, String> {
    use isolation::limits::{MAX_CPUS, MIN_CPUS};
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && (MIN_CPUS..=MAX_CPUS).contains(n))
        .ok_or_else(|| {
            format!("expected a number of CPUs from {MIN_CPUS} to {MAX_CPUS}, e.g. 0.5 or 2")
        })
}

/// Parse a duration: one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h`,
/// `d` (`90s`, `15m`, `1h30m`, `500ms`, `1.5s`), or a bare number of seconds as GNU
/// timeout accepts.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a duration like 90s, 15m, 1h30m, 500ms or a number of seconds";
    let s = s.trim();
    if s.is_empty() {
        return Err(HINT.into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return seconds_to_duration(secs).ok_or_else(|| HINT.into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{HINT} (missing unit after {rest:?})"))?;
        if num_len == 0 {
            return Err(HINT.into());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| HINT.to_string())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            unit => return Err(format!("{HINT} (unknown unit {unit:?})")),
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    seconds_to_duration(total).ok_or_else(|| HINT.into())
}

fn seconds_to_duration(secs: f64) -> Option<Duration> {
    // Cap at ~100 years so Instant arithmetic can never overflow.
    if !(secs.is_finite() && (0.0..=3.2e9).contains(&secs)) {
        return None;
    }
    // A positive value below one nanosecond is one nanosecond, never zero: `--timeout
    // 1e-10` is a limit that fires at once, not "no limit" (0 alone means that); as
    // GNU timeout rounds it up to its smallest step.
    let d = Duration::from_secs_f64(secs);
    Some(if d.is_zero() && secs > 0.0 {
        Duration::from_nanos(1)
    } else {
        d
    })
}

/// Signal names cg-test accepts, with their numbers on this platform.
pub const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("SYS", libc::SIGSYS),
];

/// Signals only Linux has, with the names it prints for them.
#[cfg(target_os = "linux")]
const PLATFORM_SIGNALS: &[(&str, i32)] = &[("STKFLT", libc::SIGSTKFLT), ("PWR", libc::SIGPWR)];
#[cfg(not(target_os = "linux"))]
const PLATFORM_SIGNALS: &[(&str, i32)] = &[];

/// Other names for signals above: accepted, never printed (`kill -l` prints the first
/// name, and so does cg-test).
#[cfg(target_os = "linux")]
const ALIASES: &[(&str, i32)] = &[
    ("IOT", libc::SIGIOT),
    ("POLL", libc::SIGPOLL),
    ("CLD", libc::SIGCHLD),
];
#[cfg(not(target_os = "linux"))]
const ALIASES: &[(&str, i32)] = &[("IOT", libc::SIGIOT)];

/// The real-time signals, SIGRTMIN..=SIGRTMAX, where the system has them. The C
/// library decides the bounds at run time (glibc keeps the first two for its threads,
/// musl three), so they are read, never hard-coded.
#[cfg(target_os = "linux")]
fn realtime_range() -> Option<(i32, i32)> {
    Some((libc::SIGRTMIN(), libc::SIGRTMAX()))
}
#[cfg(not(target_os = "linux"))]
fn realtime_range() -> Option<(i32, i32)> {
    None
}

/// The number of a named signal (without `SIG`, upper case), aliases included.
fn named_signal(name: &str) -> Option<i32> {
    SIGNALS
        .iter()
        .chain(PLATFORM_SIGNALS)
        .chain(ALIASES)
        .find(|&&(n, _)| n == name)
        .map(|&(_, num)| num)
}

/// Parse `RTMIN`, `RTMIN+n`, `RTMAX` or `RTMAX-n` (upper case, without `SIG`). None
/// when `name` is not of that form; an error when it is but names no real-time signal
/// here.
fn parse_realtime(name: &str) -> Option<Result<i32, String>> {
    let (base, rest, sign) = if let Some(rest) = name.strip_prefix("RTMIN") {
        ("RTMIN", rest, 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        ("RTMAX", rest, -1)
    } else {
        return None;
    };
    let Some((min, max)) = realtime_range() else {
        return Some(Err(format!(
            "{base}: this system has no real-time signals; use a name like TERM or a number"
        )));
    };
    let step = if sign > 0 { '+' } else { '-' };
    let offset = if rest.is_empty() {
        0
    } else {
        let digits = rest
            .strip_prefix(step)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match digits.and_then(|n| n.parse::<i32>().ok()) {
            Some(n) => n,
            None => {
                return Some(Err(format!(
                    "expected {base}, or {base}{step}N with a number N, e.g. RTMIN+3 or RTMAX-1"
                )))
            }
        }
    };
    // Checked: an offset near i32::MAX (RTMIN+2147483647) must be refused, not overflow.
    let sig = if sign > 0 {
        min.checked_add(offset)
    } else {
        max.checked_sub(offset)
    };
    if let Some(sig) = sig.filter(|s| (min..=max).contains(s)) {
        Some(Ok(sig))
    } else {
        Some(Err(format!(
            "{name} is outside the real-time signals here (RTMIN+0..RTMIN+{n} = {min}..{max})",
            n = max - min
        )))
    }
}

/// Parse a signal given as `TERM`, `SIGTERM`, `term` or `15`; also the aliases `IOT`,
/// and on Linux `POLL`, `CLD` and the real-time signals `RTMIN`, `RTMIN+n`, `RTMAX`,
/// `RTMAX-n`.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let upper = s.trim().to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        let realtime = realtime_range().is_some_and(|(min, max)| (min..=max).contains(&n));
        if realtime || named_signal_number(n) {
            return Ok(n);
        }
        return Err(format!("{n} is not a signal number cg-test can send"));
    }
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(sig) = named_signal(name) {
        return Ok(sig);
    }
    parse_realtime(name).unwrap_or_else(|| {
        Err("expected a signal name or number like TERM, SIGINT, KILL, RTMIN+3 or 15".into())
    })
}

fn named_signal_number(n: i32) -> bool {
    SIGNALS
        .iter()
        .chain(PLATFORM_SIGNALS)
        .any(|&(_, num)| num == n)
}

/// The name of a signal number (`SIGTERM`, `SIGRTMIN+3`), or the number itself.
/// Real-time signals are named from the nearer end of their range, as `kill -l` does.
pub fn signal_name(sig: i32) -> String {
    if let Some(&(name, _)) = SIGNALS
        .iter()
        .chain(PLATFORM_SIGNALS)
        .find(|&&(_, n)| n == sig)
    {
        return format!("SIG{name}");
    }
    match realtime_range() {
        Some((min, max)) if (min..=max).contains(&sig) => {
            if sig == min {
                "SIGRTMIN".into()
            } else if sig == max {
                "SIGRTMAX".into()
            } else if sig - min <= max - sig {
                format!("SIGRTMIN+{}", sig - min)
            } else {
                format!("SIGRTMAX-{}", max - sig)
            }
        }
        _ => sig.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        // A positive duration too small for a nanosecond is one, never "none".
        for tiny in [
            "1e-10",
            ".0000000001",
            "0.0000000001s",
            "0.0000001ms",
            "5e-300",
        ] {
            assert_eq!(parse_duration(tiny), Ok(Duration::from_nanos(1)), "{tiny}");
        }
        assert_eq!(parse_duration("-0"), Ok(Duration::ZERO));
        for bad in [
            "banana", "", "5x", "s", "-3s", "1h-", "..s", "inf", "NaN", "1e99",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn command_keeps_its_own_flags() {
        let a = Args::try_parse_from(["cg-test", "-t", "3s", "sh", "-c", "x", "-a", "--", "b"])
            .unwrap();
        assert_eq!(a.command, ["sh", "-c", "x", "-a", "--", "b"]);
        let a = Args::try_parse_from(["cg-test", "--", "ls", "--version"]).unwrap();
        assert_eq!(a.command, ["ls", "--version"]);
        assert!(Args::try_parse_from(["cg-test", "--bogus", "--", "true"]).is_err());
        assert!(Args::try_parse_from(["cg-test", "--"]).is_err());
        let c = Config::from_args(Args::try_parse_from(["cg-test", "-t", "0", "true"]).unwrap())
            .unwrap();
        assert_eq!(c.timeout, None, "--timeout 0 disables the limit");
        assert!(Config::from_args(Args::try_parse_from(["cg-test", "--", ""]).unwrap()).is_err());
    }

    #[test]
    fn gc_is_a_tool_only_as_the_first_argument() {
        let gc = parse(vec!["cg-test".into(), "gc".into(), "--dry-run".into()]).unwrap();
        assert!(matches!(
            gc,
            Invocation::Gc(GcArgs {
                dry_run: true,
                path: None
            })
        ));
        let run = parse(vec!["cg-test".into(), "--".into(), "gc".into()]).unwrap();
        assert!(matches!(run, Invocation::Run(a) if a.command == ["gc"]));
        let run = parse(["cg-test", "-t", "5s", "gc"].map(OsString::from).to_vec()).unwrap();
        assert!(matches!(run, Invocation::Run(a) if a.command == ["gc"]));
    }

    #[test]
    fn doctor_is_a_tool_only_as_the_first_argument() {
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let d = parse(argv(&["cg-test", "doctor", "--json"])).unwrap();
        assert!(matches!(d, Invocation::Doctor(DoctorArgs { json: true })));
        let d = parse(argv(&["cg-test", "doctor"])).unwrap();
        assert!(matches!(d, Invocation::Doctor(DoctorArgs { json: false })));
        assert!(parse(argv(&["cg-test", "doctor", "--bogus"])).is_err());
        // `cg-test -- doctor` and `cg-test -t 5s doctor` run a program named doctor.
        let run = parse(argv(&["cg-test", "--", "doctor", "--json"])).unwrap();
        assert!(matches!(run, Invocation::Run(a) if a.command == ["doctor", "--json"]));
        let run = parse(argv(&["cg-test", "-t", "5s", "doctor"])).unwrap();
        assert!(matches!(run, Invocation::Run(a) if a.command == ["doctor"]));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("1000B"), Ok(1000));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in [
            "banana",
            "",
            "M",
            "-1",
            "-1M",
            "1.2.3G",
            ".5G",
            "5.G",
            "64MB",
            "1e9",
            "5X",
            "99999999999T",
            "1 G",
            "inf",
            "NaN",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_memory_max("0").is_err());
        assert!(parse_memory_max("banana")
            .unwrap_err()
            .contains("above zero"));
        assert_eq!(parse_memory_max("64M"), Ok(64 << 20));
        use isolation::limits::SwapMax;
        assert_eq!(parse_swap_max("0"), Ok(SwapMax::None));
        assert_eq!(parse_swap_max("max"), Ok(SwapMax::Unlimited));
        assert_eq!(parse_swap_max("1G"), Ok(SwapMax::Bytes(1 << 30)));
        assert!(parse_swap_max("lots").is_err());
    }

    #[test]
    fn pids_and_cpus() {
        assert_eq!(parse_pids_max("20"), Ok(20));
        assert_eq!(parse_pids_max("4194304"), Ok(4_194_304));
        for bad in ["0", "-1", "4194305", "1.5", "many", ""] {
            assert!(parse_pids_max(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        assert_eq!(parse_cpus("2"), Ok(2.0));
        assert_eq!(parse_cpus("0.01"), Ok(0.01));
        for bad in ["0", "0.009", "-1", "1e9", "1025", "inf", "NaN", "half"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn limits_from_flags() {
        let cfg = |a: &[&str]| {
            let mut argv = vec!["cg-test"];
            argv.extend_from_slice(a);
            argv.extend_from_slice(&["--", "true"]);
            Config::from_args(Args::try_parse_from(argv).unwrap())
        };
        assert_eq!(cfg(&[]).unwrap().limits, None, "no flag, no limits");
        let l = cfg(&[
            "--memory-max",
            "64M",
            "--cpus",
            "0.5",
            "--limits",
            "best-effort",
        ])
        .unwrap()
        .limits
        .unwrap();
        assert_eq!(l.memory_max, Some(64 << 20));
        assert_eq!(l.memory_swap_max, isolation::limits::SwapMax::None);
        assert_eq!(l.cpu_quota_us, Some(50_000));
        assert_eq!(l.pids_max, None);
        assert_eq!(l.policy, isolation::Policy::BestEffort);
        let err = cfg(&["--pids-max", "20", "--isolation", "pgroup"]).unwrap_err();
        assert!(format!("{err}").starts_with("--pids-max: "), "{err}");
        // --memory-swap-max alone is refused by clap (it needs --memory-max).
        assert!(
            Args::try_parse_from(["cg-test", "--memory-swap-max", "1G", "--", "true"]).is_err()
        );
        // A negative number reaches the value parser (its message names the flag).
        let e = Args::try_parse_from(["cg-test", "--pids-max", "-1", "--", "true"]).unwrap_err();
        assert!(e.to_string().contains("--pids-max"), "{e}");
    }

    #[test]
    fn completions_and_manpage_are_tools_only_first() {
        let c = parse(
            ["cg-test", "completions", "bash"]
                .map(OsString::from)
                .to_vec(),
        )
        .unwrap();
        assert!(matches!(c, Invocation::Completions(_)));
        let m = parse(["cg-test", "manpage"].map(OsString::from).to_vec()).unwrap();
        assert!(matches!(m, Invocation::Manpage(_)));
        let run = parse(["cg-test", "--", "manpage"].map(OsString::from).to_vec()).unwrap();
        assert!(matches!(run, Invocation::Run(a) if a.command == ["manpage"]));
        assert!(parse(
            ["cg-test", "completions", "tcsh"]
                .map(OsString::from)
                .to_vec()
        )
        .is_err());
        documented_command().debug_assert();
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("SIGTERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("term"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("15"), Ok(15));
        assert_eq!(parse_signal("kill"), Ok(libc::SIGKILL));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("999").is_err());
        assert_eq!(signal_name(libc::SIGINT), "SIGINT");
    }

    #[test]
    fn signal_aliases() {
        assert_eq!(parse_signal("IOT"), Ok(libc::SIGABRT));
        assert_eq!(parse_signal("SIGIOT"), Ok(libc::SIGABRT));
        // An alias is accepted but the signal keeps its first name.
        assert_eq!(signal_name(libc::SIGIOT), "SIGABRT");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_signal_names() {
        assert_eq!(parse_signal("POLL"), Ok(libc::SIGIO));
        assert_eq!(parse_signal("sigpoll"), Ok(libc::SIGIO));
        assert_eq!(parse_signal("CLD"), Ok(libc::SIGCHLD));
        assert_eq!(parse_signal("PWR"), Ok(libc::SIGPWR));
        assert_eq!(parse_signal("SIGPWR"), Ok(libc::SIGPWR));
        assert_eq!(parse_signal("STKFLT"), Ok(libc::SIGSTKFLT));
        assert_eq!(parse_signal("16"), Ok(libc::SIGSTKFLT));
        assert_eq!(signal_name(libc::SIGIO), "SIGIO");
        assert_eq!(signal_name(libc::SIGCHLD), "SIGCHLD");
        assert_eq!(signal_name(libc::SIGPWR), "SIGPWR");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn realtime_signals() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert!(min > 31 && max > min, "{min}..{max}");
        assert_eq!(parse_signal("RTMIN"), Ok(min));
        assert_eq!(parse_signal("SIGRTMIN"), Ok(min));
        assert_eq!(parse_signal("rtmin+3"), Ok(min + 3));
        assert_eq!(parse_signal("SIGRTMIN+0"), Ok(min));
        assert_eq!(parse_signal("RTMAX"), Ok(max));
        assert_eq!(parse_signal("RTMAX-2"), Ok(max - 2));
        assert_eq!(parse_signal(&format!("RTMIN+{}", max - min)), Ok(max));
        assert_eq!(parse_signal(&(min + 3).to_string()), Ok(min + 3));
        for bad in [
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "RTMIN+x",
            "RTMIN3",
            "RTMIN++3",
            "RTMIN+-3",
            "RTMAX--1",
            "RTMAX-999",
            "RTMIN+2147483647",
            "RTMAX-2147483647",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_signal(&format!("RTMIN+{}", max - min + 1)).is_err());
        assert!(parse_signal(&(max + 1).to_string()).is_err());
        assert_eq!(signal_name(min), "SIGRTMIN");
        assert_eq!(signal_name(min + 3), "SIGRTMIN+3");
        assert_eq!(signal_name(max - 2), "SIGRTMAX-2");
        assert_eq!(signal_name(max), "SIGRTMAX");
        // Every real-time name parses back to its number.
        for sig in min..=max {
            let name = signal_name(sig);
            assert_eq!(parse_signal(&name), Ok(sig), "{name}");
        }
    }

    #[test]
    fn signal_names_round_trip() {
        for &(_, sig) in SIGNALS.iter().chain(PLATFORM_SIGNALS) {
            assert_eq!(parse_signal(&signal_name(sig)), Ok(sig));
            assert_eq!(parse_signal(&sig.to_string()), Ok(sig));
        }
    }
}
