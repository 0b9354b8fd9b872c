//! With a terminal on stdin and cg-test in its foreground, the command's process group
//! becomes the terminal's foreground group (so Ctrl-C and prompts reach it), and the
//! terminal goes back to cg-test's parent's group when the run ends; Ctrl-Z and `fg`
//! in an interactive shell stop and resume the whole job.
//!
//! The terminal is a pty whose slave is the controlling terminal of a fresh session
//! led by `sh -c` (non-interactive, so no job control: cg-test runs in the shell's own
//! group, the foreground one, as in a CI step or a Makefile). The shell records
//! `/proc/self/stat` of a plain child before and after cg-test, and the command under
//! cg-test records its own.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::util::fixture::{sh_quote, sh_wait_file};
use crate::util::*;

/// Run `cmd` as the leader of a new session whose controlling terminal is the pty
/// `slave`, with the slave as stdin, stdout and stderr.
fn on_pty(cmd: &mut Command, slave: &std::os::fd::OwnedFd) {
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// cg-test's pid, from the name of the leaf (`.../cg-test-<pid>-<start>-<nonce>`) the
/// command found itself in.
fn cg_test_pid_of_leaf(leaf: &str) -> i32 {
    leaf.rsplit('/')
        .next()
        .and_then(|n| n.strip_prefix("cg-test-"))
        .and_then(|n| n.split('-').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the command was not in a cg-test leaf: {leaf}"))
}

#[test]
fn command_gets_the_terminal_and_gives_it_back() {
    let g = Guard::new("tty");
    let pty = crate::util::pty::open_pty();
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
    cmd.args(["-c", &script]);
    on_pty(&mut cmd, &pty.slave);
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
    let cg_test_pid = cg_test_pid_of_leaf(&leaf);
    g.watch_cg_test(cg_test_pid);
    assert_no_leaf(cg_test_pid);
    assert_no_survivors(g.marker());
}

/// Job control passes through: in an interactive shell, Ctrl-Z stops the command *and*
/// cg-test, so the shell reports the job stopped and gets the terminal back; `fg`
/// continues both, and the command finishes with its own exit code.
#[test]
fn ctrl_z_stops_the_job_and_fg_resumes_it() {
    job_control("tty_job_control", "");
}

/// The same with the command in a pid namespace (`--pid-ns`): its stop reaches cg-test
/// through the namespace's init.
#[test]
fn ctrl_z_stops_the_job_and_fg_resumes_it_pid_ns() {
    job_control("tty_job_control_pidns", "--pid-ns");
}

fn job_control(name: &str, flags: &str) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let g = Guard::new(name);
    let armed = g.path("armed");
    let pty = crate::util::pty::open_pty();
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-i"])
        .env("TERM", "dumb")
        .env("PS1", "$ ");
    on_pty(&mut cmd, &pty.slave);
    // Killed and reaped on drop, so a failing test leaves no shell behind.
    struct Shell(std::process::Child);
    impl Drop for Shell {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut shell = Shell(
        cmd.spawn()
            .expect("starting an interactive bash on the pty"),
    );
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let screen = Arc::new(Mutex::new(String::new()));
    let mut reader = master.try_clone().unwrap();
    let sink = Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut type_line = |text: &str| master.write_all(text.as_bytes()).expect("typing");
    let wait_screen = |what: &str, needle: &str| {
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while !screen.lock().unwrap().contains(needle) {
            assert!(
                std::time::Instant::now() < until,
                "timed out after 20s waiting for {what}; the terminal showed:\n{}",
                screen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    let cgroup_file = g.path("cgroup");
    // The command waits for `go` (bounded) rather than sleeping a fixed time, so a
    // loaded machine cannot let it finish before Ctrl-Z arrives.
    let go = g.path("go");
    let command = format!(
        ": {marker}; cat /proc/self/cgroup > {cgf}; touch {armed}; {wait}; exit 7",
        marker = g.marker(),
        cgf = sh_quote(cgroup_file.to_str().unwrap()),
        armed = sh_quote(armed.to_str().unwrap()),
        wait = sh_wait_file(&go),
    );
    type_line(&format!(
        "{cg} --isolation cgroup {flags} -q -- sh -c {command}\n",
        cg = sh_quote(CG_TEST),
        command = sh_quote(&command),
    ));
    wait_for("the command to start", Duration::from_secs(20), || {
        armed.exists().then_some(())
    });
    // cg-test's pid is in its leaf's name: watch it, so the guard removes the leaf
    // after a failure (cg-test's own argv carries the marker, so the guard may kill it).
    let leaf = cgroup::unified_path(&std::fs::read_to_string(&cgroup_file).unwrap())
        .expect("the command's cgroup");
    let cg_test_pid = cg_test_pid_of_leaf(&leaf);
    g.watch_cg_test(cg_test_pid);
    type_line("\x1a");
    wait_screen("bash to report the job stopped", "Stopped");
    type_line("echo back-$((40+2))\n");
    wait_screen("the prompt to come back", "back-42");
    std::fs::write(&go, "").unwrap();
    type_line("fg\n");
    type_line("echo rc=$?\n");
    wait_screen("the job to finish with its own code", "rc=7");
    type_line("exit\n");
    let status = wait_for("bash to exit", RUN_LIMIT, || {
        shell.0.try_wait().expect("waiting for bash")
    });
    assert!(
        status.success(),
        "bash: {status:?}\n{}",
        screen.lock().unwrap()
    );
    assert_no_leaf(cg_test_pid);
    assert_no_survivors(g.marker());
}
