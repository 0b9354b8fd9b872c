//! The isolation modes a behaviour is checked under, and the proof that a run really
//! took its mode's code paths.
//!
//! Every mode runs cg-test with `-v`, whose step lines name the spawn path
//! (`spawned pid N (clone3 into the leaf)` or `(fork)`) and the kill path
//! (`created <leaf> (cgroup.kill: yes|no, ...)`). [`Mode::assert_ran`] reads them: if
//! `--compat` stopped working, the compat tests would otherwise pass on the native
//! clone3 + cgroup.kill paths without anyone noticing (the VM lane's `expect_paths`
//! does the same in the guest).

use super::run::Finished;

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
    /// The cg-test flags that select this mode, with `-v` so that [`Mode::assert_ran`]
    /// can check the paths. (A test that asserts the shape of stderr, such as one error
    /// line, passes its own flags instead.)
    pub fn args(self) -> Vec<&'static str> {
        let mut v = match self {
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
        };
        v.push("-v");
        v
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

    /// The spawn path (`clone3 into the leaf` or `fork`) and, for a leaf, whether
    /// `cgroup.kill` is used, that a run in this mode must show.
    fn expected_paths(self) -> (&'static str, Option<&'static str>) {
        match self {
            Mode::Cgroup | Mode::CgroupPidNs => ("clone3 into the leaf", Some("cgroup.kill: yes")),
            Mode::CgroupCompat => ("fork", Some("cgroup.kill: no")),
            Mode::Pgroup | Mode::PgroupNoSubreaper | Mode::PgroupPidNs => ("fork", None),
        }
    }

    /// Assert from the `-v` lines of a finished run that it took this mode's spawn and
    /// kill paths: exactly one `spawned pid N (<path>)` line with the expected path,
    /// and the leaf's `created` line saying whether cgroup.kill is used (or no leaf at
    /// all for the pgroup modes).
    pub fn assert_ran(self, out: &Finished) {
        let (spawn_path, kill_path) = self.expected_paths();
        // The command shares stderr and runs by the time cg-test says it spawned it
        // (cg-test resumes once the child has exec'd), so its output may stand before
        // the line on the same line.
        let spawned: Vec<&str> = out
            .stderr
            .lines()
            .filter_map(|l| l.find("cg-test: spawned pid ").map(|i| &l[i..]))
            .collect();
        assert!(
            spawned.len() == 1 && spawned[0].ends_with(&format!(" ({spawn_path})")),
            "mode {self:?}: expected one `spawned pid N ({spawn_path})` line (is -v in \
             the flags, and did --compat take effect?); stderr:\n{}",
            out.stderr
        );
        let created: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("cg-test: created "))
            .collect();
        match kill_path {
            Some(kill) => assert!(
                created.len() == 1 && created[0].contains(&format!("({kill}")),
                "mode {self:?}: expected one `created <leaf> ({kill}...)` line; stderr:\n{}",
                out.stderr
            ),
            None => assert!(
                created.is_empty(),
                "mode {self:?} makes no leaf; stderr:\n{}",
                out.stderr
            ),
        }
    }
}
