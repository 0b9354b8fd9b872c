//! The isolation modes a behaviour is checked under.

/// One way of running cg-test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A cgroup v2 leaf, clone3 into it, cgroup.kill.
    Cgroup,
    /// A cgroup v2 leaf on the old-kernel paths: fork + write cgroup.procs, and SIGKILL
    /// to each member of the frozen leaf instead of cgroup.kill.
    CgroupCompat,
    /// Process group + child subreaper + token sweep.
    Pgroup,
    /// Process group + token sweep without a subreaper (the non-Linux algorithm).
    PgroupNoSubreaper,
    /// A cgroup leaf, the command in a new pid namespace (`--pid-ns`).
    CgroupPidNs,
    /// Process group + subreaper + token sweep, the command in a new pid namespace.
    PgroupPidNs,
}

impl Mode {
    /// The cg-test flags that select this mode.
    pub fn args(self) -> Vec<&'static str> {
        match self {
            Mode::Cgroup => vec!["--isolation", "cgroup"],
            Mode::CgroupCompat => vec![
                "--isolation",
                "cgroup",
                "--compat",
                "fork-spawn,signal-kill",
            ],
            Mode::Pgroup => vec!["--isolation", "pgroup"],
            Mode::PgroupNoSubreaper => vec!["--isolation", "pgroup", "--compat", "no-subreaper"],
            Mode::CgroupPidNs => vec!["--isolation", "cgroup", "--pid-ns"],
            Mode::PgroupPidNs => vec!["--isolation", "pgroup", "--pid-ns"],
        }
    }

    /// The `isolation=` word of the summary line.
    pub fn kind(self) -> &'static str {
        match self {
            Mode::Cgroup | Mode::CgroupCompat | Mode::CgroupPidNs => "cgroup",
            Mode::Pgroup | Mode::PgroupNoSubreaper | Mode::PgroupPidNs => "pgroup",
        }
    }

    /// A short name for markers and messages.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Cgroup => "cgroup",
            Mode::CgroupCompat => "cgcompat",
            Mode::Pgroup => "pgroup",
            Mode::PgroupNoSubreaper => "pgnosub",
            Mode::CgroupPidNs => "cgpidns",
            Mode::PgroupPidNs => "pgpidns",
        }
    }
}
