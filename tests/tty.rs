//! With a terminal on stdin and cg-test in its foreground, the command's process group
//! becomes the terminal's foreground group (so Ctrl-C and prompts reach it), and the
//! terminal goes back to cg-test's parent's group when the run ends.
//!
//! The terminal is a pty whose slave is the controlling terminal of a fresh session
//! led by `sh -c` (non-interactive, so no job control: cg-test runs in the shell's own
//! group, the foreground one, as in a CI step or a Makefile). The shell records
//! `/proc/self/stat` of a plain child before and after cg-test, and the command under
//! cg-test records its own.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::util::fixture::sh_quote;
use crate::util::*;

#[test]
fn command_gets_the_terminal_and_gives_it_back() {
    let g = Guard::new("tty");
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let q = |name: &str| sh_quote(g.path(name).to_str().unwrap());
    let script = format!(
        ": {marker}; cat /proc/self/stat > {before}; \
         {cg} --isolation cgroup -q -- cat /proc/self/stat /proc/self/cgroup > {during}; \
         echo $? > {code}; cat /proc/self/stat > {after}",
        marker = g.marker(),
        cg = sh_quote(CG_TEST),
        before = q("before"),
        during = q("during"),
        code = q("code"),
        after = q("after"),
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
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
    let mut shell = cmd.spawn().expect("starting sh on the pty");
    drop(pty.slave);
    let shell_pid = shell.id() as i32;
    let status = wait_for("the shell to finish", RUN_LIMIT, || {
        shell.try_wait().expect("waiting for sh")
    });
    assert!(status.success(), "sh failed: {status:?}");
    // The master stays open until here so the terminal never hung up on the shell.
    let _ = pty.master.as_raw_fd();

    let read = |name: &str| std::fs::read_to_string(g.path(name)).unwrap();
    assert_eq!(read("code").trim(), "0", "cg-test's exit code");
    let before = procs::parse_stat(&read("before")).unwrap();
    let during_text = read("during");
    let during = procs::parse_stat(during_text.lines().next().unwrap()).unwrap();
    let after = procs::parse_stat(&read("after")).unwrap();

    assert_eq!(before.pgrp, shell_pid, "the shell leads its own group");
    assert_eq!(
        before.tpgid, shell_pid,
        "the shell's group has the terminal"
    );
    assert_ne!(during.pgrp, shell_pid, "the command has a group of its own");
    assert_eq!(
        during.tpgid, during.pgrp,
        "the command's group is the terminal's foreground group"
    );
    assert_eq!(during.session, shell_pid, "same session, same terminal");
    assert_eq!(
        after.tpgid, shell_pid,
        "after cg-test the terminal is back with cg-test's parent's group"
    );

    // cg-test's pid is in its leaf's name; the leaf must be gone.
    let leaf = cgroup::unified_path(&during_text).expect("the command's cgroup");
    let cg_test_pid: i32 = leaf
        .rsplit('/')
        .next()
        .and_then(|n| n.strip_prefix("cg-test-"))
        .and_then(|n| n.split('-').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the command was not in a cg-test leaf: {leaf}"));
    g.watch_cg_test(cg_test_pid);
    assert_no_leaf(cg_test_pid);
    assert_no_survivors(g.marker());
}
