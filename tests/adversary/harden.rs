//! Adversary scenarios for `--harden` (issue 18, item 2): every route found by which a
//! root process of a hardened run could leave its leaf, raise its leaf's limits, reach
//! the namespace's init, or have the kernel start a program outside the run. Each is
//! tried under `--harden` and, as its control, without the defence that closes it
//! (a plain run, `--pid-ns` alone, or the old defence: a cgroup namespace and a cgroup2
//! mount showing only the leaf, with the capability kept), where it works.
//!
//! Routes out of the leaf: a root child of the command tries the route, then becomes a
//! marked sleeper with a late file. Under `--harden` the route fails, the process stays
//! in the leaf and dies at the timeout (its late file never appears). In the control it
//! is found alive in the test's cgroup after the run, and the test kills it by pid.
//! - `/proc/<cg-test's pid>/root/<cgroup2 mount>/.../cgroup.procs` (control: no flags);
//! - `/proc/1/root/...`, the namespace's init (control: `--pid-ns`);
//! - `/proc/1/fd/<the leaf's directory>/../cgroup.procs` (control: `--pid-ns`);
//! - open_by_handle_at on a handle of the test's cgroup taken outside (control: no
//!   flags; and `unshare --cgroup` with cgroup2 remounted, CAP_DAC_READ_SEARCH kept).
//!
//! Probes (tests/adversary/harden_probe.py prints one line per thing tried):
//! - the init: ptrace, /proc/1/{root,cwd,fd,ns/cgroup,mem} (control: `--pid-ns`);
//! - the leaf's own files: limits written, control files opened for writing, the
//!   delegatable ones still writable (control: no flags);
//! - a user namespace of the command's own, in which a fresh cgroup2 mount shows the
//!   leaf's files writable (control: no flags, CAP_SYS_ADMIN dropped with setpriv);
//! - the usermode-helper files (kernel.core_pattern, kernel.modprobe, ...,
//!   /proc/sysrq-trigger, /sys/kernel/uevent_helper) and a cgroup v1 hierarchy's
//!   `cgroup.procs` and `release_agent`, only ever opened for writing, never written
//!   (control: no flags);
//! - what the command sees: no process outside the run but the init, no descriptor on a
//!   cgroup filesystem (control: no flags, where the host's processes are visible);
//! - TIOCSTI on the controlling terminal, which would type a command into the shell
//!   outside (control: no flags, where dev.tty.legacy_tiocsti is 1).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::pid_ns::host_pids;
use crate::util::fixture::sh_quote;
use crate::util::*;

const PROBE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/adversary/harden_probe.py"
);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Flags {
    Plain,
    PidNs,
    Harden,
}

impl Flags {
    fn args(self) -> &'static [&'static str] {
        match self {
            Flags::Plain => &[],
            Flags::PidNs => &["--pid-ns"],
            Flags::Harden => &["--harden"],
        }
    }

    /// Does the command run in a pid namespace (so announces pids of it)?
    fn pid_ns(self) -> bool {
        self != Flags::Plain
    }
}

fn q(p: &Path) -> String {
    sh_quote(&p.display().to_string())
}

struct Escape {
    flags: Flags,
    /// The route's snippet exited 0 (it wrote itself into the test's cgroup).
    escaped: bool,
    /// Once it had tried, the process was in the test's cgroup, outside the leaf.
    left_leaf: bool,
    /// The process that tried outlived the run (then the test killed it by pid).
    survived: bool,
    out: run::Finished,
    /// What the route's snippet printed.
    said: String,
}

/// A root child of a run made with `flags` tries `route` (sh; `$PROCS` is the test's
/// cgroup's cgroup.procs, `$MP` the cgroup2 mount point, `$CGPID` a file that will hold
/// cg-test's pid), then execs a marked sleeper. `prepare` gets the test's cgroup before
/// the run starts. One attempt per `flags` in a test (its files are named by them).
fn attempt(g: &Guard, flags: Flags, route: &str, prepare: impl FnOnce(&TestCgroup)) -> Escape {
    let parent = TestCgroup::new(g, &format!("hardesc{flags:?}"));
    prepare(&parent);
    let name = |what: &str| g.path(&format!("{what}_{flags:?}"));
    let ready_dir = g.subdir(&format!("ready_{flags:?}"));
    let (late, escaped, said, cgpid) = (name("late"), name("escaped"), name("said"), name("cgpid"));
    let fx = g.fixture().ready(&ready_dir).late(&late, LATE_SECS);
    let child = format!(
        ": {marker}; PROCS={procs}; MP={mp}; CGPID={cgpid}; \
         if ( {route} ) > {said} 2>&1; then touch {escaped}; fi; \
         exec {sleeper} >/dev/null 2>&1",
        marker = g.marker(),
        procs = q(&parent.path.join("cgroup.procs")),
        mp = q(&cgroup::mount_point()),
        cgpid = q(&cgpid),
        said = q(&said),
        escaped = q(&escaped),
        sleeper = fx.sh(&["sleep"]),
    );
    // A child of the command tries: the command itself dies with the run anyway (its
    // parent-death signal), and waits for the child, so the run ends at its timeout.
    let script = format!(": {}; sh -c {} & wait", g.marker(), sh_quote(&child));
    let mut args = vec!["-v", "-t", "2s", "-k", "1s"];
    args.extend(flags.args());
    args.extend(["--", "sh", "-c", &script]);
    let run = g.start(parent.cg_test(&args));
    // cg-test's pid, for the route through its /proc entry (written whole, then named).
    let tmp = name("cgpid.tmp");
    std::fs::write(&tmp, run.pid.to_string()).expect("writing cg-test's pid");
    std::fs::rename(&tmp, &cgpid).expect("naming cg-test's pid file");
    let ready = wait_ready(&ready_dir, 1);
    let pid = if flags.pid_ns() {
        host_pids(&ready, g.marker())[0]
    } else {
        ready.pids[0]
    };
    assert_alive_with_marker(&[pid], g.marker());
    // The sleeper is ready, so the route was tried: where is it now?
    let in_parent = || {
        std::fs::read_to_string(parent.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.trim() == pid.to_string())
    };
    let left_leaf = in_parent();
    let out = run.finish();
    let survived = procs::is_alive(pid);
    if survived {
        assert!(
            in_parent(),
            "a survivor should be in the test's cgroup {}",
            parent.path.display()
        );
        // The control's escapee: ours (marker checked above), killed by pid.
        procs::kill(pid, libc::SIGKILL);
        wait_for(
            "the escaped process to die",
            Duration::from_secs(10),
            || (!procs::is_alive(pid)).then_some(()),
        );
    } else {
        assert_late_never(&late, late_due(&ready, LATE_SECS));
    }
    assert_no_survivors(g.marker());
    assert!(
        parent.leaves().is_empty(),
        "leaves left: {:?}",
        parent.leaves()
    );
    Escape {
        flags,
        escaped: escaped.exists(),
        left_leaf,
        survived,
        out,
        said: std::fs::read_to_string(&said).unwrap_or_default(),
    }
}

/// The route works in the control: the process left the leaf (so the leaf's freeze,
/// kill, limits and leak report miss it) and, without a pid namespace, outlived the
/// run. With `--pid-ns` alone the namespace's end kills it when the run ends; that it
/// was outside the leaf until then is the breach.
fn assert_escaped(e: &Escape) {
    let outlived = e.survived || e.flags == Flags::PidNs;
    assert!(
        e.escaped && e.left_leaf && outlived,
        "the control ({:?}) should leave the leaf: escaped={} left_leaf={} survived={}; \
         the route said {:?}; stderr:\n{}",
        e.flags,
        e.escaped,
        e.left_leaf,
        e.survived,
        e.said,
        e.out.stderr
    );
    e.out.assert_code(124);
}

/// Under --harden the route fails, the process stays in the leaf and dies with it.
fn assert_held(e: &Escape, expect: &str) {
    assert!(
        !e.escaped && !e.left_leaf && !e.survived,
        "--harden must hold: escaped={} left_leaf={} survived={}; the route said {:?}; \
         stderr:\n{}",
        e.escaped,
        e.left_leaf,
        e.survived,
        e.said,
        e.out.stderr
    );
    assert!(
        e.said.contains(expect),
        "the route should fail with {expect:?}: {:?}",
        e.said
    );
    e.out.assert_code(124);
    e.out.assert_summary("isolation", "cgroup");
}

#[test]
fn through_the_root_of_cg_test() {
    let g = Guard::new("hardadv_cgroot");
    // cg-test's own /proc entry first, then every process the command can see.
    let route = "i=0; while [ ! -e $CGPID ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
         echo $$ > /proc/$(cat $CGPID)/root$PROCS && exit 0; \
         for p in /proc/[0-9]*; do echo $$ > $p/root$PROCS 2>/dev/null && exit 0; done; \
         exit 1";
    assert_escaped(&attempt(&g, Flags::Plain, route, |_| {}));
    assert_held(&attempt(&g, Flags::Harden, route, |_| {}), "");
}

#[test]
fn through_the_root_of_the_init() {
    let g = Guard::new("hardadv_initroot");
    let route = "echo $$ > /proc/1/root$PROCS";
    assert_escaped(&attempt(&g, Flags::PidNs, route, |_| {}));
    assert_held(
        &attempt(&g, Flags::Harden, route, |_| {}),
        "Permission denied",
    );
}

#[test]
fn through_the_descriptors_of_the_init() {
    let g = Guard::new("hardadv_initfd");
    // The init is a fork of cg-test that never execs: it holds the leaf's directory,
    // whose `..` is the test's cgroup.
    let route = "ls /proc/1/fd/ >/dev/null && \
                 for fd in /proc/1/fd/*; do \
                   ls -d $fd/.. >/dev/null && echo $$ > $fd/../cgroup.procs && exit 0; \
                 done; exit 1";
    assert_escaped(&attempt(&g, Flags::PidNs, route, |_| {}));
    assert_held(
        &attempt(&g, Flags::Harden, route, |_| {}),
        "Permission denied",
    );
}

fn python(g: &Guard, probe: &str, args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg(PROBE).arg(probe).arg(g.marker()).args(args);
    c
}

#[test]
fn by_a_file_handle() {
    let g = Guard::new("hardadv_handle");
    let handle = g.path("handle");
    // The handle of the test's cgroup, taken outside the run, as a process of the run
    // could get it from anything that talks to it (a file, a socket).
    let save = |parent: &TestCgroup| {
        let out = python(
            &g,
            "save-handle",
            &[parent.path.to_str().unwrap(), handle.to_str().unwrap()],
        )
        .output()
        .expect("python3");
        assert!(out.status.success(), "{out:?}");
    };
    let route = format!(
        "python3 {} move-by-handle {} {} $MP $$",
        sh_quote(PROBE),
        sh_quote(g.marker()),
        q(&handle)
    );
    assert_escaped(&attempt(&g, Flags::Plain, &route, save));
    assert_held(
        &attempt(&g, Flags::Harden, &route, save),
        "open_by_handle_at EPERM",
    );
}

/// The control for the handle with what `--harden` used to be: a cgroup namespace
/// rooted at the process's cgroup and cgroup2 mounted again from inside it (so the
/// outside cgroups are out of sight), CAP_DAC_READ_SEARCH kept. The handle still opens
/// the cgroup above, and the process moves there. No cg-test: this is the kernel's
/// behaviour that makes dropping the capability necessary.
#[test]
fn a_file_handle_passes_the_cgroup_namespace() {
    let g = Guard::new("hardadv_handle_ns");
    let parent = TestCgroup::new(&g, "fhns");
    let inner = parent.path.join("inner");
    std::fs::create_dir(&inner).expect("mkdir inner");
    let handle = g.path("handle");
    let out = python(
        &g,
        "save-handle",
        &[parent.path.to_str().unwrap(), handle.to_str().unwrap()],
    )
    .output()
    .expect("python3");
    assert!(out.status.success(), "{out:?}");
    let mp = cgroup::mount_point();
    // In a private mount namespace only (the brief's rule for mounts).
    let inside = format!(
        ": {marker}; umount -l {mp} && mount -t cgroup2 none {mp} && \
         grep '^0::' /proc/self/cgroup && ls {mp}/cgroup.procs && \
         python3 {probe} move-by-handle {marker} {handle} {mp} $$; \
         grep '^0::' /proc/self/cgroup",
        marker = sh_quote(g.marker()),
        mp = q(&mp),
        probe = sh_quote(PROBE),
        handle = q(&handle),
    );
    let outer = format!(
        ": {}; echo $$ > {} && exec unshare -m --propagation private -C sh -c {}",
        g.marker(),
        q(&inner.join("cgroup.procs")),
        sh_quote(&inside)
    );
    let out = Command::new("sh")
        .args(["-c", &outer])
        .output()
        .expect("sh");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.first() == Some(&"0::/")
            && lines.contains(&"open_by_handle_at ok")
            && lines.last() == Some(&"0::/.."),
        "rooted at its cgroup, the handle opened the one above and it moved there: \
         {text:?} {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_survivors(g.marker());
    std::fs::remove_dir(&inner).expect("rmdir inner");
}

/// `cg-test FLAGS -- python3 PROBE NAME MARKER ARGS...`: what it printed, by thing tried.
fn probe(g: &Guard, flags: Flags, name: &str, args: &[&str]) -> BTreeMap<String, String> {
    let mut a: Vec<&str> = flags.args().to_vec();
    a.extend(["--", "python3", PROBE, name, g.marker()]);
    a.extend(args);
    let out = g.start(g.cg_test(&a)).finish();
    out.assert_code(0);
    assert_no_leaf(out.pid);
    parse(&out.stdout)
}

fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_init_is_out_of_reach() {
    let g = Guard::new("hardadv_init");
    let things = ["ptrace-seize", "root", "cwd", "fd", "ns-cgroup", "mem"];
    let control = probe(&g, Flags::PidNs, "the-init", &[]);
    let hard = probe(&g, Flags::Harden, "the-init", &[]);
    for t in things {
        assert_eq!(
            control.get(t).map(String::as_str),
            Some("ok"),
            "{t}: {control:?}"
        );
        let want = if t == "ptrace-seize" {
            "EPERM"
        } else {
            "EACCES"
        };
        assert_eq!(hard.get(t).map(String::as_str), Some(want), "{t}: {hard:?}");
    }
}

#[test]
fn the_leaf_s_limits_and_controls_are_read_only() {
    let g = Guard::new("hardadv_leaf");
    let mp = cgroup::mount_point();
    let mp = mp.to_str().unwrap();
    let control = probe(&g, Flags::Plain, "leaf", &[mp]);
    let hard = probe(&g, Flags::Harden, "leaf", &[mp]);
    let limits = ["write cgroup.max.descendants", "write cgroup.max.depth"];
    let controls = ["open cgroup.freeze", "open cgroup.kill", "open cgroup.type"];
    let delegatable = [
        "open cgroup.procs",
        "open cgroup.threads",
        "open cgroup.subtree_control",
    ];
    for t in limits.iter().chain(&controls).chain(&delegatable) {
        assert_eq!(
            control.get(*t).map(String::as_str),
            Some("ok"),
            "{t}: {control:?}"
        );
    }
    for t in limits.iter().chain(&controls) {
        assert_eq!(
            hard.get(*t).map(String::as_str),
            Some("EROFS"),
            "{t}: {hard:?}"
        );
    }
    // Whatever else the leaf has here (pressure files; memory.max, pids.max, cpu.max on
    // a host with those controllers): read-only too.
    for (t, r) in &hard {
        if !delegatable.contains(&t.as_str()) {
            assert_eq!(r, "EROFS", "{t}: {hard:?}");
        }
    }
    // A nested run still places processes and gives them controllers below the leaf.
    for t in delegatable {
        assert_eq!(hard.get(t).map(String::as_str), Some("ok"), "{t}: {hard:?}");
    }
}

/// A user namespace of its own gives a root process without CAP_SYS_ADMIN a cgroup
/// namespace and a cgroup2 mount of its own, which show its leaf's files writable
/// whatever is bound over them outside. --harden's seccomp filter refuses the user
/// namespace.
#[test]
fn no_user_namespace_to_mount_the_leaf_again() {
    let g = Guard::new("hardadv_userns");
    let mnt = g.subdir("mnt");
    let inner = format!(
        "mount -t cgroup2 none {m} && echo 5 > {m}/cgroup.max.descendants && \
         echo value=$(cat {m}/cgroup.max.descendants)",
        m = q(&mnt)
    );
    let userns = format!(
        "unshare -U --map-user=0 --map-group=0 -C -m sh -c {}",
        sh_quote(&inner)
    );
    let run = |flags: Flags, script: String| {
        let script = format!(": {}; {script}; echo rc=$?", g.marker());
        let mut a: Vec<&str> = flags.args().to_vec();
        a.extend(["--", "sh", "-c", &script]);
        let out = g.start(g.cg_test(&a)).finish();
        out.assert_code(0);
        assert_no_leaf(out.pid);
        out
    };
    // The control: no --harden, CAP_SYS_ADMIN gone from every set (as under --harden).
    let control = run(
        Flags::Plain,
        format!(
            "setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin -- sh -c {}",
            sh_quote(&format!("grep CapEff /proc/self/status; {userns}"))
        ),
    );
    let eff = control
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("CapEff");
    assert_eq!(eff & (1 << 21), 0, "the control runs without CAP_SYS_ADMIN");
    assert!(
        control.stdout.contains("value=5\n") && control.stdout.contains("rc=0"),
        "without the filter the user namespace's mount writes the leaf's limit: {:?} {}",
        control.stdout,
        control.stderr
    );
    let hard = run(Flags::Harden, userns);
    assert!(
        !hard.stdout.contains("value=") && !hard.stdout.contains("rc=0"),
        "{:?}",
        hard.stdout
    );
    assert!(
        hard.stderr.contains("Operation not permitted"),
        "unshare(CLONE_NEWUSER) refused: {}",
        hard.stderr
    );
}

/// A cgroup v1 hierarchy's cgroup.procs of our own cgroup there, and its root's
/// release_agent (hybrid hosts), as the host sees them; the mount points are the same
/// inside the run.
fn v1_files() -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrls.is_empty() {
            continue;
        }
        for m in mountinfo.lines() {
            let Some((left, right)) = m.split_once(" - ") else {
                continue;
            };
            let r: Vec<&str> = right.split_whitespace().collect();
            if r.first() != Some(&"cgroup") {
                continue;
            }
            let opts: Vec<&str> = r.get(2).unwrap_or(&"").split(',').collect();
            if ctrls.split(',').all(|c| opts.contains(&c)) {
                let mp = left.split_whitespace().nth(4).unwrap_or("");
                return vec![
                    format!("{mp}{}/cgroup.procs", path.trim_end_matches('/')),
                    format!("{mp}/release_agent"),
                ];
            }
        }
    }
    Vec::new()
}

#[test]
fn usermode_helpers_and_cgroup_v1_are_read_only() {
    let g = Guard::new("hardadv_helpers");
    let extra = v1_files();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let control = probe(&g, Flags::Plain, "helpers", &extra);
    let hard = probe(&g, Flags::Harden, "helpers", &extra);
    assert_eq!(
        control.keys().collect::<Vec<_>>(),
        hard.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        control
            .get("/proc/sys/kernel/core_pattern")
            .map(String::as_str),
        Some("ok"),
        "{control:?}"
    );
    for (path, c) in &control {
        let h = &hard[path];
        if c == "absent" {
            assert_eq!(h, "absent", "{path}");
            continue;
        }
        assert_eq!(
            c, "ok",
            "{path} opens for writing without --harden: {control:?}"
        );
        assert_eq!(h, "EROFS", "{path} under --harden: {hard:?}");
    }
    for f in &extra {
        assert_eq!(control.get(*f).map(String::as_str), Some("ok"), "{f}");
    }
}

#[test]
fn it_sees_only_the_run() {
    let g = Guard::new("hardadv_visible");
    let control = probe(&g, Flags::Plain, "visible", &[]);
    assert!(
        control.contains_key("foreign-pid"),
        "without a pid namespace the host's processes are in sight: {control:?}"
    );
    let hard = probe(&g, Flags::Harden, "visible", &[]);
    assert_eq!(
        hard.keys().collect::<Vec<_>>(),
        ["visible"],
        "no process outside the run but the init, no descriptor on a cgroup filesystem: \
         {hard:?}"
    );
}

/// TIOCSTI: a process whose controlling terminal is the user's can push input into it,
/// which the shell reads and runs once cg-test exits: a process outside the run. Under
/// --harden the seccomp filter refuses the ioctl. cg-test runs as the session leader of
/// a pty here, as in a terminal.
#[test]
fn no_input_pushed_into_the_terminal() {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let g = Guard::new("hardadv_tiocsti");
    let run = |flags: Flags| {
        let pty = crate::util::pty::open_pty();
        let out = g.path(&format!("tiocsti_{flags:?}"));
        let mut a: Vec<&str> = flags.args().to_vec();
        a.extend(["-q", "--", "python3", PROBE, "tiocsti", g.marker()]);
        a.push(out.to_str().unwrap());
        let mut cmd = g.cg_test(&a);
        cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("starting cg-test on the pty");
        drop(pty.slave);
        g.watch_cg_test(child.id() as i32);
        let status = wait_for("cg-test on the pty", RUN_LIMIT, || {
            child.try_wait().expect("waiting for cg-test")
        });
        assert!(status.success(), "{flags:?}: {status:?}");
        // The master stays open until here, so the terminal never hung up on the run.
        drop(pty.master);
        assert_no_leaf(child.id() as i32);
        std::fs::read_to_string(&out).unwrap_or_default()
    };
    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti")
        .map(|s| s.trim() == "1")
        .unwrap_or(true);
    let control = run(Flags::Plain);
    let want = if legacy {
        "tiocsti ok\n"
    } else {
        "tiocsti EIO\n"
    };
    assert_eq!(control, want, "the control, legacy_tiocsti={legacy}");
    assert_eq!(run(Flags::Harden), "tiocsti EPERM\n");
    assert_no_survivors(g.marker());
}
