//! Building command lines for the fixture program, as an argv or as a quoted string
//! for `sh -c` scripts.

use std::path::{Path, PathBuf};

use super::{FIXTURE, LIFE_SECS};

/// The common options of one fixture invocation.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub marker: String,
    pub life: f64,
    pub ready: Option<PathBuf>,
    pub late: Option<(PathBuf, f64)>,
    /// (late marker, trigger): the marker is written once the trigger exists.
    pub late_on: Option<(PathBuf, PathBuf)>,
}

impl Fixture {
    pub fn new(marker: &str) -> Fixture {
        Fixture {
            marker: marker.to_string(),
            life: LIFE_SECS,
            ready: None,
            late: None,
            late_on: None,
        }
    }

    /// Each long-lived process creates DIR/<pid> once in its final state.
    pub fn ready(mut self, dir: &Path) -> Fixture {
        self.ready = Some(dir.to_path_buf());
        self
    }

    /// Each long-lived process still alive `after` seconds after the first one started
    /// creates FILE.
    pub fn late(mut self, file: &Path, after: f64) -> Fixture {
        self.late = Some((file.to_path_buf(), after));
        self
    }

    /// Each long-lived process still alive once `trigger` exists creates `file`: for
    /// victims that must live until a kill whose moment load may delay (the test makes
    /// the trigger after the kill; see [`super::check::assert_late_never_after`]).
    pub fn late_on(mut self, file: &Path, trigger: &Path) -> Fixture {
        self.late_on = Some((file.to_path_buf(), trigger.to_path_buf()));
        self
    }

    /// The full argv: the fixture binary, the options, then `mode`.
    pub fn argv(&self, mode: &[&str]) -> Vec<String> {
        let mut v = vec![
            FIXTURE.to_string(),
            "--marker".into(),
            self.marker.clone(),
            "--life".into(),
            format!("{}", self.life),
        ];
        if let Some(r) = &self.ready {
            v.push("--ready".into());
            v.push(r.display().to_string());
        }
        if let Some((f, after)) = &self.late {
            v.push("--late".into());
            v.push(f.display().to_string());
            v.push("--late-after".into());
            v.push(format!("{after}"));
        }
        if let Some((f, trigger)) = &self.late_on {
            v.push("--late".into());
            v.push(f.display().to_string());
            v.push("--late-on".into());
            v.push(trigger.display().to_string());
        }
        v.extend(mode.iter().map(|s| s.to_string()));
        v
    }

    /// The same argv, quoted for a `sh -c` script.
    pub fn sh(&self, mode: &[&str]) -> String {
        self.argv(mode)
            .iter()
            .map(|a| sh_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Single-quote a word for sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A bounded sh loop that waits until `dir` holds at least `n` entries (at most ~10 s),
/// so a command can exit only once its daemons announced themselves.
pub fn sh_wait_ready(dir: &Path, n: usize) -> String {
    let d = sh_quote(&dir.display().to_string());
    format!(
        "i=0; while [ \"$(ls {d} | wc -l)\" -lt {n} ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done"
    )
}

/// A bounded sh loop that waits until `file` exists (at most ~20 s).
pub fn sh_wait_file(file: &Path) -> String {
    let f = sh_quote(&file.display().to_string());
    format!("i=0; while [ ! -e {f} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done")
}
