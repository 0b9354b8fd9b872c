//! `cg-test doctor [--json]`: what this host offers cg-test, and what
//! `--isolation auto` would pick here and why.
//!
//! Facts are read (mountinfo, /proc/self/cgroup, cgroupfs files, /proc/self/status) and,
//! where reading cannot tell, tried for real: the verdict comes from creating the very
//! leaf a run would create (`CgroupLeaf::create`, so doctor and `auto` cannot disagree),
//! a child is cloned into it with clone3(CLONE_INTO_CGROUP) and another writes itself
//! into its `cgroup.procs`, and the leaf is removed again (unlike a run's start, making
//! it leaves stale leaves of dead runs alone: doctor kills nothing). Namespaces, the
//! subreaper and pidfd_open are tried in short-lived forked children, so nothing about
//! cg-test's own process changes. A seccomp filter (Docker's answers ENOSYS to clone3) or a
//! missing capability shows up as the errno the kernel really gave.
//!
//! This file holds the report (its JSON field names are a stable interface, documented
//! in docs/DOCTOR.md), the text rendering, and the reasoning that needs no kernel
//! (layout, which controllers a leaf could get, and why not), unit-tested on strings.
//! The probes are Linux-only and live in `doctor/linux.rs`; elsewhere the report says
//! "not Linux" and that `auto` uses the process group.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli::DoctorArgs;
use crate::exit::ExitStatus;

#[cfg(target_os = "linux")]
mod linux;

/// The JSON schema version. Bumped only when a field is removed or changes meaning;
/// new fields may appear without a bump.
pub const SCHEMA: u32 = 1;

/// Everything doctor found. Field names are the JSON interface (docs/DOCTOR.md).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    /// `linux`, `macos`, ... (Rust's `std::env::consts::OS`).
    pub os: &'static str,
    /// The kernel release (`uname -r`).
    pub kernel: Option<String>,
    pub pid: u32,
    /// cg-test is PID 1 of its pid namespace (a container's entrypoint, a VM's init).
    pub pid1: bool,
    pub euid: Option<u32>,
    pub cgroup: CgroupReport,
    /// clone3 without flags (a seccomp filter may answer ENOSYS).
    pub clone3: Check,
    /// clone3(CLONE_INTO_CGROUP) into a probe leaf.
    pub clone_into_cgroup: Check,
    /// A forked child writing itself into the probe leaf's cgroup.procs (the spawn
    /// path where clone3 is missing).
    pub migrate: Check,
    pub pidfd_open: Check,
    pub subreaper: Check,
    /// `none`, `strict` or `filter` (Seccomp: in /proc/self/status).
    pub seccomp: Option<String>,
    pub no_new_privs: Option<bool>,
    /// CAP_SYS_ADMIN in the effective set.
    pub cap_sys_admin: Option<bool>,
    /// unshare(CLONE_NEWUSER) as we are.
    pub user_namespace: Check,
    /// unshare(CLONE_NEWUSER) as uid/gid 65534 (tried as root by dropping to it in a
    /// child; as another user it is the same as `user_namespace`).
    pub unprivileged_user_namespace: Check,
    pub pid_namespace: PidNamespace,
    pub auto: Auto,
}

/// One thing tried: `ok` is true (works), false (the kernel said no: `detail` has the
/// errno and what it likely means) or null (not tried: `detail` says why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub ok: Option<bool>,
    pub detail: String,
}

impl Check {
    pub fn yes(detail: impl Into<String>) -> Check {
        Check {
            ok: Some(true),
            detail: detail.into(),
        }
    }

    pub fn no(detail: impl Into<String>) -> Check {
        Check {
            ok: Some(false),
            detail: detail.into(),
        }
    }

    pub fn untried(why: impl Into<String>) -> Check {
        Check {
            ok: None,
            detail: why.into(),
        }
    }

    /// True only when it was tried and worked.
    pub fn works(&self) -> bool {
        self.ok == Some(true)
    }
}

/// How cgroups are mounted here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Only cgroup2 (most current distributions).
    PureV2,
    /// cgroup v1 controller hierarchies and a cgroup2 mount (systemd's "hybrid").
    Hybrid,
    /// Only cgroup v1 hierarchies.
    V1Only,
    /// No cgroup filesystem mounted in this mount namespace.
    None,
}

impl Layout {
    fn words(self) -> &'static str {
        match self {
            Layout::PureV2 => "pure v2",
            Layout::Hybrid => "hybrid (cgroup v1 controllers + cgroup2)",
            Layout::V1Only => "v1 only",
            Layout::None => "none (no cgroup filesystem mounted)",
        }
    }
}

/// Where our own cgroup sits in the hierarchy; it decides the no-internal-process rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    /// The root of the whole hierarchy (initial cgroup namespace, `0::/`): exempt from
    /// the no-internal-process rule.
    Root,
    /// The root of a private cgroup namespace (a container's `0::/`): looks like the
    /// root but is not exempt.
    NamespaceRoot,
    /// Anywhere below.
    Nested,
}

/// The cgroup v2 facts.
#[derive(Clone, Debug, Serialize)]
pub struct CgroupReport {
    pub layout: Layout,
    /// Where the cgroup2 filesystem that holds our cgroup is mounted.
    pub cgroup2_mount: Option<PathBuf>,
    pub cgroup2_read_only: Option<bool>,
    /// Mounted cgroup v1 hierarchies, by their controllers (`name=systemd` for named).
    pub v1_hierarchies: Vec<String>,
    /// Our cgroup as /proc/self/cgroup's `0::` line names it.
    pub own_path: Option<String>,
    /// Its directory under the cgroup2 mount.
    pub own_dir: Option<PathBuf>,
    pub position: Option<Position>,
    /// `initial` or `private` cgroup namespace.
    pub namespace: Option<String>,
    /// Processes in our cgroup (cg-test among them).
    pub processes: Option<usize>,
    /// A child cgroup may be created (write access to the directory, read-write mount).
    pub writable: Option<bool>,
    /// Our cgroup.procs is writable (moving the command into a leaf needs it).
    pub procs_writable: Option<bool>,
    /// The cgroup is delegated to us: owned by our non-root uid.
    pub delegated: Option<bool>,
    pub owner_uid: Option<u32>,
    pub controllers: Controllers,
    /// `cgroup.kill` exists (Linux 5.14); null when no non-root cgroup could be looked at.
    pub kill: Option<bool>,
    /// `cgroup.freeze` exists (Linux 5.2).
    pub freeze: Option<bool>,
}

/// Which cgroup v2 controllers a leaf below our cgroup could get.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Controllers {
    /// Our cgroup's `cgroup.controllers`.
    pub available: Vec<String>,
    /// Our cgroup's `cgroup.subtree_control`: what a leaf gets today.
    pub enabled: Vec<String>,
    /// What a leaf gets without cg-test moving: all of `available` at the real root,
    /// else what is enabled already (a run with limits moves cg-test out of the way
    /// when it is alone: see `why_not`).
    pub leaf_could_get: Vec<String>,
    /// Controllers bound to a cgroup v1 hierarchy (by their v2 names), which cgroup v2
    /// cannot offer.
    pub v1_bound: Vec<String>,
    /// Why a leaf cannot get the usual controllers (cpu, io, memory, pids); null when it can.
    pub why_not: Option<String>,
}

/// Pid namespace facts.
#[derive(Clone, Debug, Serialize)]
pub struct PidNamespace {
    /// We are in the initial pid namespace (not in a container's).
    pub initial: Option<bool>,
    /// unshare(CLONE_NEWPID) as we are.
    pub unshare: Check,
    /// unshare(CLONE_NEWUSER | CLONE_NEWPID): the way without CAP_SYS_ADMIN.
    pub with_user_namespace: Check,
}

/// What `--isolation auto` would do here.
#[derive(Clone, Debug, Serialize)]
pub struct Auto {
    /// `cgroup` or `pgroup`.
    pub isolation: &'static str,
    /// Where the leaf would be made (its parent directory), for `cgroup`.
    pub leaf_parent: Option<PathBuf>,
    /// Why not a cgroup: the note auto prints when it falls back.
    pub reason: Option<String>,
    /// How the command is started: `clone3` (into the leaf) or `fork`.
    pub spawn: &'static str,
    /// How the run is killed: `cgroup.kill`, or `signal` (SIGKILL to each member).
    pub kill: &'static str,
    /// cg-test can be a child subreaper (orphans reparent to it).
    pub subreaper: bool,
}

/// `cg-test doctor`: collect, print, exit 0.
pub fn run(args: &DoctorArgs) -> ExitStatus {
    let report = collect();
    let text = if args.json {
        // Serializing plain structs of strings, numbers and booleans cannot fail.
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        render_text(&report)
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    ExitStatus::Exited(0)
}

/// Look at this host.
pub fn collect() -> Report {
    #[cfg(target_os = "linux")]
    {
        linux::collect()
    }
    #[cfg(not(target_os = "linux"))]
    {
        not_linux()
    }
}

/// The report on a system without cgroups: everything null, auto = pgroup.
#[cfg(not(target_os = "linux"))]
fn not_linux() -> Report {
    let na = || Check::untried("not Linux");
    Report {
        schema: SCHEMA,
        os: std::env::consts::OS,
        kernel: None,
        pid: std::process::id(),
        pid1: std::process::id() == 1,
        euid: None,
        cgroup: CgroupReport {
            layout: Layout::None,
            cgroup2_mount: None,
            cgroup2_read_only: None,
            v1_hierarchies: Vec::new(),
            own_path: None,
            own_dir: None,
            position: None,
            namespace: None,
            processes: None,
            writable: None,
            procs_writable: None,
            delegated: None,
            owner_uid: None,
            controllers: Controllers::default(),
            kill: None,
            freeze: None,
        },
        clone3: na(),
        clone_into_cgroup: na(),
        migrate: na(),
        pidfd_open: na(),
        subreaper: na(),
        seccomp: None,
        no_new_privs: None,
        cap_sys_admin: None,
        user_namespace: na(),
        unprivileged_user_namespace: na(),
        pid_namespace: PidNamespace {
            initial: None,
            unshare: na(),
            with_user_namespace: na(),
        },
        auto: Auto {
            isolation: "pgroup",
            leaf_parent: None,
            reason: Some("not Linux: there are no cgroups here".into()),
            spawn: "fork",
            kill: "signal",
            subreaper: false,
        },
    }
}

/// One cgroup or cgroup2 line of /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMount {
    /// `cgroup2` or `cgroup`.
    pub fstype: String,
    pub mount_point: String,
    /// Mounted read-only (per-mount or superblock option `ro`).
    pub read_only: bool,
    /// For v1: the controllers or `name=...` of the hierarchy.
    pub controllers: Vec<String>,
}

/// Every cgroup (v1) and cgroup2 mount in a mountinfo text.
pub fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // id parent major:minor root mount_point mount_opts [optional...] - fstype source super_opts
            let (left, right) = line.split_once(" - ")?;
            let mut r = right.split_whitespace();
            let fstype = r.next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let super_opts: Vec<&str> = r.nth(1).unwrap_or("").split(',').collect();
            let mut l = left.split_whitespace();
            let mount_point = l.nth(4)?.to_string();
            let mount_opts: Vec<&str> = l.next().unwrap_or("").split(',').collect();
            let read_only = mount_opts.contains(&"ro") || super_opts.contains(&"ro");
            // v1 superblock options name the hierarchy's controllers among generic ones.
            const GENERIC: &[&str] = &[
                "rw",
                "ro",
                "relatime",
                "noatime",
                "nosuid",
                "nodev",
                "noexec",
                "xattr",
                "clone_children",
                "noprefix",
                "cpuset_v2_mode",
                "favordynmods",
            ];
            let controllers = if fstype == "cgroup" {
                super_opts
                    .iter()
                    .filter(|o| !GENERIC.contains(o) && !o.starts_with("release_agent="))
                    .map(|o| o.to_string())
                    .collect()
            } else {
                Vec::new()
            };
            Some(CgroupMount {
                fstype: fstype.to_string(),
                mount_point,
                read_only,
                controllers,
            })
        })
        .collect()
}

/// Classify the mounts: v1 hierarchies that carry controllers next to a cgroup2 mount
/// are hybrid; a v1 `name=systemd` hierarchy alone does not make a host hybrid (it
/// offers no controllers).
pub fn classify_layout(mounts: &[CgroupMount]) -> Layout {
    let v2 = mounts.iter().any(|m| m.fstype == "cgroup2");
    let v1_controllers = mounts
        .iter()
        .any(|m| m.fstype == "cgroup" && m.controllers.iter().any(|c| !c.starts_with("name=")));
    let v1_any = mounts.iter().any(|m| m.fstype == "cgroup");
    match (v2, v1_controllers, v1_any) {
        (true, true, _) => Layout::Hybrid,
        (true, false, _) => Layout::PureV2,
        (false, _, true) => Layout::V1Only,
        (false, _, false) => Layout::None,
    }
}

/// The v1 hierarchies as names: each mount's controllers joined by commas.
pub fn v1_hierarchy_names(mounts: &[CgroupMount]) -> Vec<String> {
    let mut names: Vec<String> = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup")
        .map(|m| m.controllers.join(","))
        .collect();
    names.dedup();
    names
}

/// Shared with the limits (src/isolation/limits.rs), which refuse a controller bound to v1.
pub use crate::cgroupfs::v1_bound_controllers;

/// The cgroup v2 controllers a user wants a leaf to have (limits, accounting).
const USUAL_CONTROLLERS: &[&str] = &["cpu", "io", "memory", "pids"];

/// What a leaf below our cgroup could get, and why not the usual ones.
///
/// cgroup v2 gives a child the controllers in its parent's `cgroup.subtree_control`,
/// and the no-internal-process rule lets a non-root cgroup enable controllers there
/// only while it holds no processes. Our cgroup holds cg-test itself, so unless it is
/// the hierarchy's true root (exempt; a cgroup namespace's root is *not*) a leaf gets
/// exactly what is enabled today, which for a cgroup with processes is nothing.
pub fn plan_controllers(
    available: Vec<String>,
    enabled: Vec<String>,
    v1_bound: Vec<String>,
    position: Option<Position>,
    processes: usize,
    own_dir: &str,
) -> Controllers {
    let leaf_could_get = if position == Some(Position::Root) {
        available.clone()
    } else {
        enabled.clone()
    };
    let missing: Vec<&str> = USUAL_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !leaf_could_get.iter().any(|g| g == c))
        .collect();
    let mut why = Vec::new();
    let bound: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|c| v1_bound.iter().any(|b| b == c))
        .collect();
    if !bound.is_empty() {
        why.push(format!(
            "{} {} bound to cgroup v1 hierarchies (a hybrid or v1 host), so cgroup v2 cannot offer {}",
            bound.join(", "),
            if bound.len() == 1 { "is" } else { "are" },
            if bound.len() == 1 { "it" } else { "them" },
        ));
    }
    let held_back: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|c| available.iter().any(|a| a == c))
        .collect();
    if !held_back.is_empty() {
        why.push(format!(
            "{own_dir} holds {processes} process(es), cg-test among them, so the \
             no-internal-process rule forbids enabling {} for its children{}: {}",
            held_back.join(", "),
            if position == Some(Position::NamespaceRoot) {
                " (a cgroup namespace's root is not exempt, only the real root is)"
            } else {
                ""
            },
            if processes <= 1 {
                "a run with limits moves cg-test into a leaf of its own first, as it is \
                 alone here"
            } else {
                "a run with limits is refused here (run cg-test alone in a cgroup: \
                 systemd-run --scope -p Delegate=yes, or as a container's PID 1)"
            }
        ));
    }
    let elsewhere: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|c| !bound.contains(c) && !held_back.contains(c))
        .collect();
    if !elsewhere.is_empty() {
        why.push(format!(
            "{} {} not in {own_dir}/cgroup.controllers (the parent cgroup does not \
             enable {} for us)",
            elsewhere.join(", "),
            if elsewhere.len() == 1 { "is" } else { "are" },
            if elsewhere.len() == 1 { "it" } else { "them" },
        ));
    }
    Controllers {
        available,
        enabled,
        leaf_could_get,
        v1_bound,
        why_not: (!why.is_empty()).then(|| why.join("; ")),
    }
}

fn or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(" ")
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

fn check_text(c: &Check) -> String {
    let word = match c.ok {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not tried",
    };
    if c.detail.is_empty() {
        word.into()
    } else {
        format!("{word} ({})", c.detail)
    }
}

/// The human-readable report: one `key: value` line per fact, the verdict last.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let mut row = |k: &str, v: String| {
        let _ = writeln!(s, "{:<24} {v}", format!("{k}:"));
    };
    let cg = &r.cgroup;
    row(
        "system",
        format!(
            "{} {}, pid {}, euid {}",
            r.os,
            r.kernel.as_deref().unwrap_or("?"),
            r.pid,
            r.euid.map_or("?".into(), |u| u.to_string())
        ),
    );
    row("PID 1", if r.pid1 { "yes" } else { "no" }.into());
    row("cgroup layout", cg.layout.words().into());
    row(
        "cgroup2 mount",
        match &cg.cgroup2_mount {
            Some(m) => format!(
                "{} ({})",
                m.display(),
                match cg.cgroup2_read_only {
                    Some(true) => "read-only",
                    Some(false) => "read-write",
                    None => "?",
                }
            ),
            None => "none".into(),
        },
    );
    if !cg.v1_hierarchies.is_empty() {
        row("cgroup v1 hierarchies", cg.v1_hierarchies.join(" "));
    }
    row(
        "own cgroup",
        match (&cg.own_path, &cg.own_dir) {
            (Some(p), Some(d)) => format!("{p} = {}", d.display()),
            (Some(p), None) => format!("{p} (not under any cgroup2 mount here)"),
            _ => "unknown (no `0::` line in /proc/self/cgroup)".into(),
        },
    );
    if let Some(pos) = cg.position {
        row(
            "position",
            format!(
                "{} ({} cgroup namespace)",
                match pos {
                    Position::Root => "the hierarchy's root",
                    Position::NamespaceRoot => "a cgroup namespace's root",
                    Position::Nested => "below the root",
                },
                cg.namespace.as_deref().unwrap_or("unknown")
            ),
        );
    }
    if let Some(n) = cg.processes {
        row("processes in it", n.to_string());
    }
    if cg.own_dir.is_some() {
        row(
            "writable",
            format!(
                "{} (cgroup.procs: {})",
                yes_no(cg.writable),
                yes_no(cg.procs_writable)
            ),
        );
        row(
            "delegated",
            format!(
                "{} (owner uid {})",
                yes_no(cg.delegated),
                cg.owner_uid.map_or("?".into(), |u| u.to_string())
            ),
        );
        let c = &cg.controllers;
        row("controllers", or_none(&c.available));
        row("  enabled for children", or_none(&c.enabled));
        row("  a leaf could get", or_none(&c.leaf_could_get));
        if let Some(why) = &c.why_not {
            row("  why not more", why.clone());
        }
        row("cgroup.kill", yes_no(cg.kill).into());
        row("cgroup.freeze", yes_no(cg.freeze).into());
    }
    row("clone3", check_text(&r.clone3));
    row("clone3 into cgroup", check_text(&r.clone_into_cgroup));
    row("enter by cgroup.procs", check_text(&r.migrate));
    row("pidfd_open", check_text(&r.pidfd_open));
    row("child subreaper", check_text(&r.subreaper));
    row(
        "seccomp",
        r.seccomp.clone().unwrap_or_else(|| "unknown".into()),
    );
    row("no_new_privs", yes_no(r.no_new_privs).into());
    row("CAP_SYS_ADMIN", yes_no(r.cap_sys_admin).into());
    row("user namespace", check_text(&r.user_namespace));
    row("  as uid 65534", check_text(&r.unprivileged_user_namespace));
    row(
        "pid namespace",
        match r.pid_namespace.initial {
            Some(true) => "initial".into(),
            Some(false) => "private (a container's)".into(),
            None => "unknown".into(),
        },
    );
    row("  unshare", check_text(&r.pid_namespace.unshare));
    row(
        "  with a user namespace",
        check_text(&r.pid_namespace.with_user_namespace),
    );
    let a = &r.auto;
    let verdict = if a.isolation == "cgroup" {
        format!(
            "cgroup: a leaf in {}, started by {}, killed by {}",
            a.leaf_parent
                .as_ref()
                .map_or("?".into(), |p| p.display().to_string()),
            if a.spawn == "clone3" {
                "clone3(CLONE_INTO_CGROUP)"
            } else {
                "fork + cgroup.procs"
            },
            a.kill
        )
    } else {
        format!(
            "pgroup: process group + {}token sweep, because {}",
            if a.subreaper { "subreaper + " } else { "" },
            a.reason.as_deref().unwrap_or("?")
        )
    };
    row("auto would pick", verdict);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PURE: &str = "\
25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";
    const DOCKER_V1: &str = "\
73 72 0:29 / /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
76 72 0:32 / /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
";
    const DOCKER_V2: &str = "\
72 71 0:38 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn layouts() {
        let m = cgroup_mounts(HYBRID);
        assert_eq!(classify_layout(&m), Layout::Hybrid);
        assert_eq!(v1_hierarchy_names(&m), ["cpu", "memory", "name=systemd"]);
        assert!(!m.iter().any(|m| m.read_only));
        assert_eq!(classify_layout(&cgroup_mounts(PURE)), Layout::PureV2);
        assert_eq!(classify_layout(&cgroup_mounts(DOCKER_V1)), Layout::V1Only);
        assert!(cgroup_mounts(DOCKER_V1).iter().all(|m| m.read_only));
        let v2 = cgroup_mounts(DOCKER_V2);
        assert_eq!(classify_layout(&v2), Layout::PureV2);
        assert!(v2[0].read_only, "per-mount ro counts");
        assert_eq!(classify_layout(&[]), Layout::None);
        let named_only = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
                          41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            classify_layout(&cgroup_mounts(named_only)),
            Layout::PureV2,
            "a name=systemd hierarchy offers no controllers"
        );
    }

    #[test]
    fn v1_bound_from_proc_cgroups() {
        let text = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
                    cpuset\t3\t1\t1\ncpu\t1\t1\t1\ncpuacct\t2\t1\t1\nblkio\t7\t1\t1\n\
                    memory\t4\t13\t1\ndevices\t5\t1\t1\nnet_cls\t0\t2\t1\nhugetlb\t0\t2\t1\n\
                    pids\t8\t1\t1\nrdma\t9\t1\t0\n";
        assert_eq!(
            v1_bound_controllers(text),
            ["cpu", "cpuset", "io", "memory", "pids"]
        );
        assert!(v1_bound_controllers("cpu\t0\t1\t1\n").is_empty());
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn controllers_on_a_hybrid_root() {
        let c = plan_controllers(
            v(&["hugetlb"]),
            v(&[]),
            v(&["cpu", "cpuset", "io", "memory", "pids"]),
            Some(Position::Root),
            73,
            "/sys/fs/cgroup/unified",
        );
        assert_eq!(c.leaf_could_get, ["hugetlb"]);
        let why = c.why_not.unwrap();
        assert!(
            why.starts_with("cpu, io, memory, pids are bound to cgroup v1"),
            "{why}"
        );
        assert!(!why.contains("no-internal-process"), "{why}");
    }

    #[test]
    fn controllers_on_a_pure_v2_root_and_in_a_container() {
        let all = v(&["cpuset", "cpu", "io", "memory", "hugetlb", "pids"]);
        let c = plan_controllers(
            all.clone(),
            v(&[]),
            v(&[]),
            Some(Position::Root),
            5,
            "/sys/fs/cgroup",
        );
        assert_eq!(c.leaf_could_get, all);
        assert_eq!(c.why_not, None);
        // A container: the namespace root holds cg-test and has memory, pids available.
        let c = plan_controllers(
            v(&["memory", "pids"]),
            v(&[]),
            v(&[]),
            Some(Position::NamespaceRoot),
            1,
            "/sys/fs/cgroup",
        );
        assert!(c.leaf_could_get.is_empty());
        let why = c.why_not.unwrap();
        assert!(
            why.contains("/sys/fs/cgroup holds 1 process(es)")
                && why.contains("forbids enabling memory, pids")
                && why.contains("not exempt")
                && why.contains("cpu, io are not in /sys/fs/cgroup/cgroup.controllers"),
            "{why}"
        );
    }

    #[test]
    fn text_names_layout_mount_and_verdict() {
        let r = Report {
            schema: SCHEMA,
            os: "linux",
            kernel: Some("6.18.0".into()),
            pid: 7,
            pid1: false,
            euid: Some(0),
            cgroup: CgroupReport {
                layout: Layout::Hybrid,
                cgroup2_mount: Some("/sys/fs/cgroup/unified".into()),
                cgroup2_read_only: Some(false),
                v1_hierarchies: v(&["cpu", "memory"]),
                own_path: Some("/".into()),
                own_dir: Some("/sys/fs/cgroup/unified".into()),
                position: Some(Position::Root),
                namespace: Some("initial".into()),
                processes: Some(3),
                writable: Some(true),
                procs_writable: Some(true),
                delegated: Some(false),
                owner_uid: Some(0),
                controllers: Controllers::default(),
                kill: Some(true),
                freeze: Some(true),
            },
            clone3: Check::yes(""),
            clone_into_cgroup: Check::yes("tried"),
            migrate: Check::yes("tried"),
            pidfd_open: Check::yes(""),
            subreaper: Check::yes(""),
            seccomp: Some("none".into()),
            no_new_privs: Some(false),
            cap_sys_admin: Some(true),
            user_namespace: Check::yes(""),
            unprivileged_user_namespace: Check::untried("x"),
            pid_namespace: PidNamespace {
                initial: Some(true),
                unshare: Check::yes(""),
                with_user_namespace: Check::no("EPERM"),
            },
            auto: Auto {
                isolation: "cgroup",
                leaf_parent: Some("/sys/fs/cgroup/unified".into()),
                reason: None,
                spawn: "clone3",
                kill: "cgroup.kill",
                subreaper: true,
            },
        };
        let t = render_text(&r);
        assert!(t.contains("cgroup layout:           hybrid"), "{t}");
        assert!(t.contains("/sys/fs/cgroup/unified (read-write)"), "{t}");
        assert!(t.contains("auto would pick:         cgroup: a leaf in /sys/fs/cgroup/unified, started by clone3(CLONE_INTO_CGROUP), killed by cgroup.kill"), "{t}");
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(json["cgroup"]["layout"], "hybrid");
        assert_eq!(json["cgroup"]["position"], "root");
        assert_eq!(json["pid_namespace"]["with_user_namespace"]["ok"], false);
        assert_eq!(
            json["unprivileged_user_namespace"]["ok"],
            serde_json::Value::Null
        );
    }
}
