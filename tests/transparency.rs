//! cg-test is transparent: the command gets the same argv, environment (plus
//! CG_TEST_RUN_ID), open descriptors, signal mask, ignored signals and umask as it
//! would without cg-test, even when they are unusual.
//!
//! The parent of each probe sets, between fork and exec: a umask of 027, USR1 and ALRM
//! blocked, PIPE, USR2 and HUP ignored (as `nohup` ignores HUP), an extra inherited
//! descriptor 7, and a closed stdin. Each probe is a plain C program that reports on
//! itself (`cat /proc/self/status`, `find /proc/self/fd`, `env`, `printf`), run once
//! directly and once under cg-test; the outputs must be identical. (Rust's
//! `Command` resets SIGPIPE and the mask in the child, so the setup is in pre_exec,
//! which runs after that.)

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::util::*;

/// Give the command the unusual state described in the module docs.
fn unusual_parent(cmd: &mut Command, extra: &File) {
    let extra_fd = extra.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(0o027);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigaddset(&mut set, libc::SIGALRM);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            for sig in [libc::SIGPIPE, libc::SIGUSR2, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_IGN);
            }
            // dup2 clears close-on-exec on the copy: descriptor 7 is inherited.
            if libc::dup2(extra_fd, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(0);
            Ok(())
        });
    }
}

/// Run `argv` with the unusual parent, under cg-test with `mode` or directly; its
/// stdout.
fn probe(g: &Guard, mode: Option<Mode>, argv: &[&str]) -> String {
    let extra = File::open(g.dir().join("extra")).expect("opening the extra file");
    let mut cmd = match mode {
        Some(m) => {
            let mut args: Vec<&str> = m.args();
            args.push("--");
            args.extend(argv);
            g.cg_test(&args)
        }
        None => {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    unusual_parent(&mut cmd, &extra);
    let out = match mode {
        Some(_) => g.start(cmd).finish(),
        None => Run::spawn(cmd).finish(),
    };
    // `find` exits 1 after complaining that its own directory descriptor vanished
    // while it listed; that happens the same way in both runs.
    let code = out.code();
    assert!(code == 0 || (argv[0] == "find" && code == 1), "{out:?}");
    if let Some(m) = mode {
        m.assert_ran(&out);
    }
    out.stdout
}

fn status_lines(out: &str) -> String {
    let keep = ["SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "Umask"];
    out.lines()
        .filter(|l| keep.iter().any(|k| l.starts_with(&format!("{k}:"))))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A signal mask line of /proc/self/status as a number.
fn mask(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// `<fd> <target>` lines with per-run parts (pipe inodes, pids) blanked, sorted.
fn fd_lines(out: &str) -> String {
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| {
            let (fd, target) = l.split_once(' ').unwrap_or((l, ""));
            let target = if target.starts_with("pipe:") {
                "pipe".to_string()
            } else if let Some(rest) = target.strip_prefix("/proc/") {
                let tail = rest.split_once('/').map(|(_, t)| t).unwrap_or("");
                format!("/proc/PID/{tail}")
            } else {
                target.to_string()
            };
            format!("{fd} {target}")
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

fn env_lines(out: &str) -> (String, Vec<String>) {
    let mut ours = Vec::new();
    let mut rest: Vec<&str> = Vec::new();
    for e in out.split('\0').filter(|e| !e.is_empty()) {
        if e.starts_with("CG_TEST_RUN_ID=") {
            ours.push(e.to_string());
        } else {
            rest.push(e);
        }
    }
    rest.sort();
    (rest.join("\n"), ours)
}

fn transparent(mode: Mode) {
    let g = Guard::new(&format!("transparency_{}", mode.name()));
    std::fs::write(g.dir().join("extra"), "extra").unwrap();

    let status = ["cat", "/proc/self/status"];
    let direct = status_lines(&probe(&g, None, &status));
    let under = status_lines(&probe(&g, Some(mode), &status));
    // The setup is really visible to the probe (USR1|ALRM = 0x2200; HUP|USR2|PIPE =
    // 0x1801), so equality below means something.
    assert_eq!(mask(&direct, "SigBlk") & 0x2200, 0x2200, "{direct}");
    assert_eq!(mask(&direct, "SigIgn") & 0x1801, 0x1801, "{direct}");
    assert!(direct.contains("Umask:\t0027"), "{direct}");
    assert_eq!(under, direct, "signal state and umask under cg-test");

    let fds = [
        "find",
        "/proc/self/fd/",
        "-mindepth",
        "1",
        "-maxdepth",
        "1",
        "-printf",
        "%f %l\\n",
    ];
    let direct = fd_lines(&probe(&g, None, &fds));
    let under = fd_lines(&probe(&g, Some(mode), &fds));
    assert!(
        direct
            .lines()
            .any(|l| l.starts_with("7 ") && l.ends_with("/extra")),
        "{direct}"
    );
    assert!(
        !direct
            .lines()
            .any(|l| l.starts_with("0 ") && l.ends_with("/dev/null")),
        "stdin should be closed, not /dev/null: {direct}"
    );
    assert_eq!(under, direct, "open descriptors under cg-test");

    let (direct, none) = env_lines(&probe(&g, None, &["env", "-0"]));
    let (under, ids) = env_lines(&probe(&g, Some(mode), &["env", "-0"]));
    assert!(none.is_empty());
    assert_eq!(ids.len(), 1, "exactly one CG_TEST_RUN_ID: {ids:?}");
    assert_eq!(
        under, direct,
        "environment under cg-test (less CG_TEST_RUN_ID)"
    );

    let args = [
        "/usr/bin/printf",
        "[%s]\\n",
        "a b",
        "",
        "--",
        "-x",
        "--timeout",
        "ü*",
        "$HOME",
    ];
    let direct = probe(&g, None, &args);
    let under = probe(&g, Some(mode), &args);
    assert_eq!(
        direct,
        "[a b]\n[]\n[--]\n[-x]\n[--timeout]\n[ü*]\n[$HOME]\n"
    );
    assert_eq!(under, direct, "argv under cg-test");
}

#[test]
fn transparent_cgroup() {
    transparent(Mode::Cgroup);
}

#[test]
fn transparent_cgroup_fork_spawn() {
    transparent(Mode::CgroupCompat);
}

#[test]
fn transparent_pgroup() {
    transparent(Mode::Pgroup);
}

#[test]
fn transparent_cgroup_pid_ns() {
    transparent(Mode::CgroupPidNs);
}

#[test]
fn transparent_pgroup_pid_ns() {
    transparent(Mode::PgroupPidNs);
}
