//! `cg-test doctor [--json]` (issue 12): it names this host's cgroup layout and cgroup2
//! mount, says what `auto` would pick, exits 0, and leaves nothing behind (its probe
//! leaf is removed, its probe children are gone). `--json` parses and has every field
//! docs/DOCTOR.md documents. `cg-test -- doctor` still runs a program named doctor.
//!
//! The expected layout is worked out here from /proc/self/mountinfo independently of
//! cg-test's code, so the tests hold on a hybrid host (the development machines) and
//! on a pure v2 one alike.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::util::run::Finished;
use crate::util::*;

/// The layout as docs/DOCTOR.md names it, from our own reading of mountinfo.
fn expected_layout() -> &'static str {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let fstype = |l: &str| {
        l.split_once(" - ")
            .and_then(|(_, r)| r.split_whitespace().next().map(String::from))
    };
    let v2 = mi.lines().any(|l| fstype(l).as_deref() == Some("cgroup2"));
    let v1_controllers = mi
        .lines()
        .any(|l| fstype(l).as_deref() == Some("cgroup") && !l.ends_with("name=systemd"));
    match (v2, v1_controllers) {
        (true, true) => "hybrid",
        (true, false) => "pure-v2",
        (false, true) => "v1-only",
        (false, false) => "none",
    }
}

/// Run doctor with `args`, a marker in its environment (inherited by every probe child,
/// so a leftover child would be found), and check it exits 0 and leaves nothing.
fn doctor(g: &Guard, cmd: Command) -> Finished {
    let out = g.start(cmd).finish();
    out.assert_code(0);
    assert_no_leaf(out.pid);
    assert!(
        procs_with_env(g.marker()).is_empty(),
        "a doctor probe child outlived doctor"
    );
    out
}

fn doctor_cmd(g: &Guard, args: &[&str]) -> Command {
    let mut c = g.cg_test(&[&["doctor"], args].concat());
    c.env("CG_TEST_DOCTOR_TEST_MARK", g.marker());
    c
}

/// Live processes whose environment contains `marker`.
fn procs_with_env(marker: &str) -> Vec<i32> {
    procs::all_pids()
        .into_iter()
        .filter(|&p| p != std::process::id() as i32)
        .filter(|&p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|e| String::from_utf8_lossy(&e).contains(marker))
        })
        .filter(|&p| procs::is_alive(p))
        .collect()
}

#[test]
fn text_names_the_layout_the_mount_and_the_verdict() {
    let g = Guard::new("doctor_text");
    let out = doctor(&g, doctor_cmd(&g, &[]));
    let mount = cgroup::mount_point();
    let layout_words = match expected_layout() {
        "pure-v2" => "pure v2",
        other => other,
    };
    let line = |key: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no `{key}:` line in:\n{}", out.stdout))
            .to_string()
    };
    assert!(
        line("cgroup layout").contains(layout_words),
        "{}",
        out.stdout
    );
    assert!(
        line("cgroup2 mount").contains(&format!("{} (read-write)", mount.display())),
        "{}",
        out.stdout
    );
    // As root on a read-write cgroup2 mount with clone3, a run gets a leaf.
    assert!(
        line("auto would pick").contains(&format!(
            "cgroup: a leaf in {}, started by clone3(CLONE_INTO_CGROUP), killed by cgroup.kill",
            cgroup::own_dir().display()
        )),
        "{}",
        out.stdout
    );
    // stderr is for nothing but the stale leaves of dead runs that doctor, like a run's
    // start, collects beside its own (another test may have left one a moment ago).
    assert!(
        out.stderr.lines().all(|l| l.contains("stale leaf")),
        "doctor says nothing else on stderr: {}",
        out.stderr
    );
}

/// The top-level and nested fields docs/DOCTOR.md documents, each with its JSON type.
const FIELDS: &[(&str, &str)] = &[
    ("schema", "number"),
    ("os", "string"),
    ("kernel", "string"),
    ("pid", "number"),
    ("pid1", "bool"),
    ("euid", "number"),
    ("cgroup", "object"),
    ("cgroup.layout", "string"),
    ("cgroup.cgroup2_mount", "string"),
    ("cgroup.cgroup2_read_only", "bool"),
    ("cgroup.v1_hierarchies", "array"),
    ("cgroup.own_path", "string"),
    ("cgroup.own_dir", "string"),
    ("cgroup.position", "string"),
    ("cgroup.namespace", "string"),
    ("cgroup.processes", "number"),
    ("cgroup.writable", "bool"),
    ("cgroup.procs_writable", "bool"),
    ("cgroup.delegated", "bool"),
    ("cgroup.owner_uid", "number"),
    ("cgroup.controllers.available", "array"),
    ("cgroup.controllers.enabled", "array"),
    ("cgroup.controllers.leaf_could_get", "array"),
    ("cgroup.controllers.v1_bound", "array"),
    ("cgroup.controllers.why_not", "string|null"),
    ("cgroup.kill", "bool"),
    ("cgroup.freeze", "bool"),
    ("clone3.ok", "bool"),
    ("clone3.detail", "string"),
    ("clone_into_cgroup.ok", "bool"),
    ("migrate.ok", "bool"),
    ("pidfd_open.ok", "bool"),
    ("subreaper.ok", "bool"),
    ("seccomp", "string"),
    ("no_new_privs", "bool"),
    ("cap_sys_admin", "bool"),
    ("user_namespace.ok", "bool"),
    ("unprivileged_user_namespace.ok", "bool|null"),
    ("pid_namespace.initial", "bool"),
    ("pid_namespace.unshare.ok", "bool"),
    ("pid_namespace.with_user_namespace.ok", "bool"),
    ("auto.isolation", "string"),
    ("auto.leaf_parent", "string"),
    ("auto.reason", "null"),
    ("auto.spawn", "string"),
    ("auto.kill", "string"),
    ("auto.subreaper", "bool"),
];

fn field<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| {
        v.get(k)
            .unwrap_or_else(|| panic!("no field {path} in the JSON:\n{v:#}"))
    })
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[test]
fn json_parses_with_the_documented_fields() {
    let g = Guard::new("doctor_json");
    let out = doctor(&g, doctor_cmd(&g, &["--json"]));
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--json is not JSON ({e}):\n{}", out.stdout));
    for (path, types) in FIELDS {
        let t = type_of(field(&v, path));
        assert!(
            types.split('|').any(|x| x == t),
            "{path} is {t}, documented as {types}"
        );
    }
    assert_eq!(v["schema"], 1);
    assert_eq!(v["pid"], out.pid);
    assert_eq!(v["cgroup"]["layout"], expected_layout());
    assert_eq!(
        v["cgroup"]["cgroup2_mount"],
        cgroup::mount_point().display().to_string()
    );
    assert_eq!(
        v["cgroup"]["own_dir"],
        cgroup::own_dir().display().to_string()
    );
    assert_eq!(v["auto"]["isolation"], "cgroup");
    assert_eq!(v["auto"]["spawn"], "clone3");
    assert_eq!(v["clone_into_cgroup"]["ok"], true);
    if expected_layout() == "hybrid" {
        // The development hosts: memory is a v1 controller, so no leaf gets it.
        let bound = v["cgroup"]["controllers"]["v1_bound"].as_array().unwrap();
        assert!(bound.iter().any(|c| c == "memory"), "{v:#}");
        let why = v["cgroup"]["controllers"]["why_not"].as_str().unwrap();
        assert!(why.contains("bound to cgroup v1"), "{why}");
    }
}

/// As uid 65534 no leaf can be made here: doctor says so, and that auto falls back,
/// with the reason a run would print.
#[test]
fn unprivileged_doctor_explains_the_fallback() {
    let g = Guard::new("doctor_nobody");
    let copy = g.path("cg-test");
    std::fs::copy(CG_TEST, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    g.open_to_all(g.dir());
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .args(["doctor", "--json"])
        .env("CG_TEST_DOCTOR_TEST_MARK", g.marker());
    let out = doctor(&g, c);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["euid"], 65534);
    assert_eq!(v["cgroup"]["writable"], false, "{v:#}");
    assert_eq!(v["auto"]["isolation"], "pgroup");
    let reason = v["auto"]["reason"].as_str().unwrap();
    assert!(reason.contains("cannot create cgroup"), "{reason}");
    assert_eq!(v["clone_into_cgroup"]["ok"], Value::Null, "not tried");
}

/// In a private mount namespace whose cgroup2 mount is read-only (a container's usual
/// view), doctor reports the read-only mount and the fallback.
#[test]
fn read_only_cgroupfs_is_reported() {
    let g = Guard::new("doctor_ro");
    let script = format!(
        "mount -o remount,ro,bind {m} || exit 99; exec {cg} doctor --json",
        m = fixture::sh_quote(cgroup::mount_point().to_str().unwrap()),
        cg = fixture::sh_quote(CG_TEST),
    );
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("CG_TEST_DOCTOR_TEST_MARK", g.marker());
    let out = doctor(&g, c);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["cgroup"]["cgroup2_read_only"], true, "{v:#}");
    assert_eq!(v["cgroup"]["writable"], false);
    assert_eq!(v["auto"]["isolation"], "pgroup");
    let reason = v["auto"]["reason"].as_str().unwrap();
    assert!(reason.contains("Read-only file system"), "{reason}");
    // clone3 itself still works; only the leaf is missing.
    assert_eq!(v["clone3"]["ok"], true);
}

#[test]
fn bad_flag_is_one_line_and_125() {
    let g = Guard::new("doctor_bad_flag");
    let out = g.start(g.cg_test(&["doctor", "--bogus"])).finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(line.contains("--bogus"), "{line}");
    assert!(out.stdout.is_empty());
    assert_no_leaf(out.pid);
}

/// `cg-test -- doctor` is a run of a program called doctor, found on PATH.
#[test]
fn dash_dash_doctor_runs_a_program_named_doctor() {
    let g = Guard::new("doctor_program");
    let bin: PathBuf = g.subdir("bin");
    let prog = bin.join("doctor");
    std::fs::write(&prog, "#!/bin/sh\necho \"I am the program: $*\"\nexit 42\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = g.cg_test(&["--", "doctor", "--json"]);
    c.env("PATH", &path);
    let out = g.start(c).finish();
    out.assert_code(42);
    assert_eq!(out.stdout, "I am the program: --json\n");
    out.assert_summary("exit", "42");
    assert_no_leaf(out.pid);
}
