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
    let g = Guard::new(name);
    let mut sh = Session::start();
    let job = sh.start_job(&g, flags, "", "exit 7");
    sh.type_text("\x1a");
    sh.wait_screen("bash to report the job stopped", "Stopped");
    sh.type_text("echo back-$((40+2))\n");
    sh.wait_screen("the prompt to come back", "back-42");
    job.go();
    sh.type_text("fg\n");
    sh.type_text("echo rc=$?\n");
    sh.wait_screen("the job to finish with its own code", "rc=7");
    sh.exit();
    job.assert_gone();
}

/// Ctrl-Z, then `bg`: the job runs on in the background and the shell keeps the
/// terminal, both while cg-test runs and after it exits (cg-test neither hands the
/// terminal to the command on SIGCONT nor takes it back at exit unless its own job is
/// in the foreground). The old code gave the command the foreground on every SIGCONT:
/// the shell's next read failed (EIO: bash ignores SIGTTIN) and bash exited, 3 of 3
/// times; this test failed there with "bash exited".
#[test]
fn ctrl_z_then_bg_leaves_the_shell_the_terminal() {
    let g = Guard::new("tty_bg");
    let mut sh = Session::start();
    let during = g.path("during");
    let job = sh.start_job(
        &g,
        "",
        "",
        &format!("cat /proc/self/stat > {}; exit 7", q(&during)),
    );
    sh.type_text("\x1a");
    sh.wait_screen("bash to report the job stopped", "Stopped");
    sh.type_text("bg\n");
    sh.type_text("echo alive-$((40+2))\n");
    sh.wait_screen("the shell to read a command after bg", "alive-42");
    job.go();
    wait_for("cg-test to exit in the background", RUN_LIMIT, || {
        (!procs::is_alive(job.cg_test)).then_some(())
    });
    sh.type_text("echo after-$((40+3))\n");
    sh.wait_screen(
        "the shell to read a command after cg-test's exit",
        "after-43",
    );
    sh.wait_screen("bash to report the job's own exit code", "Exit 7");
    let stat = procs::parse_stat(&std::fs::read_to_string(&during).unwrap()).unwrap();
    assert_eq!(
        stat.tpgid, sh.pid,
        "while the job ran in the background the shell's group had the terminal: {stat:?}"
    );
    assert_ne!(stat.pgrp, sh.pid, "the command ran in a group of its own");
    sh.exit();
    job.assert_gone();
}

/// Ctrl-Z, then `fg`: the command has the terminal's foreground again, so it can read
/// a line from it (a read from the background would stop it with SIGTTIN).
#[test]
fn ctrl_z_then_fg_gives_the_command_the_terminal() {
    let g = Guard::new("tty_fg");
    let mut sh = Session::start();
    let got = g.path("got");
    let job = sh.start_job(&g, "", "", &read_line_then_exit(&got));
    sh.type_text("\x1a");
    sh.wait_screen("bash to report the job stopped", "Stopped");
    sh.type_text("echo back-$((40+2))\n");
    sh.wait_screen("the prompt to come back", "back-42");
    job.go();
    sh.type_text("fg\n");
    job.wait_foreground(&mut sh);
    sh.type_text("typed-line\n");
    sh.type_text("echo rc=$?\n");
    sh.wait_screen("the job to finish with its own code", "rc=7");
    assert_eq!(
        std::fs::read_to_string(&got).unwrap().trim(),
        "got:typed-line"
    );
    sh.exit();
    job.assert_gone();
}

/// Ctrl-Z, `bg`, then `fg`: in the background the command's read stops it (SIGTTIN),
/// cg-test stops with it so the shell reports the job stopped; `fg` gives the
/// command the terminal and it reads its line.
#[test]
fn ctrl_z_bg_then_fg() {
    bg_then_fg("tty_bg_fg", "");
}

/// The same under `--pid-ns` (the command's stops reach cg-test through the init).
#[test]
fn ctrl_z_bg_then_fg_pid_ns() {
    bg_then_fg("tty_bg_fg_pidns", "--pid-ns");
}

fn bg_then_fg(name: &str, flags: &str) {
    let g = Guard::new(name);
    let mut sh = Session::start();
    let got = g.path("got");
    let job = sh.start_job(&g, flags, "", &read_line_then_exit(&got));
    sh.type_text("\x1a");
    sh.wait_screen("bash to report the job stopped", "Stopped");
    sh.type_text("bg\n");
    sh.type_text("echo alive-$((40+2))\n");
    sh.wait_screen("the shell to read a command after bg", "alive-42");
    job.go();
    job.wait_stopped_in_background(&mut sh);
    sh.type_text("fg\n");
    job.wait_foreground(&mut sh);
    sh.type_text("typed-line\n");
    sh.type_text("echo rc=$?\n");
    sh.wait_screen("the job to finish with its own code", "rc=7");
    assert_eq!(
        std::fs::read_to_string(&got).unwrap().trim(),
        "got:typed-line"
    );
    sh.exit();
    job.assert_gone();
}

/// Started in the background (`&`): the command's read stops it, cg-test stops with
/// it, and `fg` gives the command the terminal. (The old code gave a job started in
/// the background no terminal handling at all: the command stayed stopped after
/// `fg`, and the run hung.)
#[test]
fn started_in_the_background_then_fg() {
    let g = Guard::new("tty_amp_fg");
    let mut sh = Session::start();
    let got = g.path("got");
    let job = sh.start_job(&g, "", " &", &read_line_then_exit(&got));
    sh.type_text("echo alive-$((40+2))\n");
    sh.wait_screen("the shell to read a command", "alive-42");
    job.go();
    job.wait_stopped_in_background(&mut sh);
    sh.type_text("fg\n");
    job.wait_foreground(&mut sh);
    sh.type_text("typed-line\n");
    sh.type_text("echo rc=$?\n");
    sh.wait_screen("the job to finish with its own code", "rc=7");
    assert_eq!(
        std::fs::read_to_string(&got).unwrap().trim(),
        "got:typed-line"
    );
    sh.exit();
    job.assert_gone();
}

/// The last pid of `NSpid:` in /proc/<pid>/status: the pid in its own namespace.
fn innermost_pid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

fn q(path: &std::path::Path) -> String {
    sh_quote(path.to_str().unwrap())
}

/// The end of a job's script: read a line from the terminal into `got`, exit 7.
fn read_line_then_exit(got: &std::path::Path) -> String {
    format!("read -r line; echo \"got:$line\" > {}; exit 7", q(got))
}

/// An interactive bash (`--norc -i`) leading a new session on a pty, its screen
/// collected by a thread. Killed and reaped on drop, so a failing test leaves no
/// shell behind.
struct Session {
    shell: std::process::Child,
    pid: i32,
    master: std::fs::File,
    screen: std::sync::Arc<std::sync::Mutex<String>>,
}

/// A job started by [`Session::start_job`].
struct Job<'g> {
    g: &'g Guard,
    /// The shell running the job's script (the command, its group's leader).
    command: i32,
    cg_test: i32,
    go: std::path::PathBuf,
}

impl Session {
    fn start() -> Session {
        use std::io::Read;
        let pty = crate::util::pty::open_pty();
        let mut cmd = Command::new("bash");
        cmd.args(["--norc", "--noprofile", "-i"])
            .env("TERM", "dumb")
            .env("PS1", "$ ");
        on_pty(&mut cmd, &pty.slave);
        let shell = cmd
            .spawn()
            .expect("starting an interactive bash on the pty");
        drop(pty.slave);
        let master = std::fs::File::from(pty.master);
        let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = std::sync::Arc::clone(&screen);
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
        Session {
            pid: shell.id() as i32,
            shell,
            master,
            screen,
        }
    }

    fn type_text(&mut self, text: &str) {
        use std::io::Write;
        self.master.write_all(text.as_bytes()).expect("typing");
    }

    /// Fail at once if bash has exited (the failure this file guards against), else
    /// describe the screen.
    fn check_shell(&mut self, what: &str) {
        if let Some(status) = self.shell.try_wait().expect("waiting for bash") {
            panic!(
                "bash exited ({status:?}) while waiting for {what}; the terminal showed:\n{}",
                self.screen.lock().unwrap()
            );
        }
    }

    /// Wait (20 s at most) until the screen shows `needle`.
    fn wait_screen(&mut self, what: &str, needle: &str) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !self.screen.lock().unwrap().contains(needle) {
            self.check_shell(what);
            assert!(
                std::time::Instant::now() < until,
                "timed out after 20s waiting for {what}; the terminal showed:\n{}",
                self.screen.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Type a cg-test command line (`suffix` after it, e.g. ` &`) whose command
    /// records its pid and cgroup, waits for the job's `go` file (bounded, so a loaded
    /// machine cannot let it finish before the test acts), then runs `then`.
    fn start_job<'g>(&mut self, g: &'g Guard, flags: &str, suffix: &str, then: &str) -> Job<'g> {
        let (armed, cgroup_file, go) = (g.path("armed"), g.path("cgroup"), g.path("go"));
        let command = format!(
            ": {marker}; cat /proc/self/cgroup > {cgf}; echo $$ > {armed}; {wait}; {then}",
            marker = g.marker(),
            cgf = q(&cgroup_file),
            armed = q(&armed),
            wait = sh_wait_file(&go),
        );
        self.type_text(&format!(
            "{cg} --isolation cgroup {flags} -q -- sh -c {command}{suffix}\n",
            cg = sh_quote(CG_TEST),
            command = sh_quote(&command),
        ));
        let inner: i32 = wait_for("the command to start", READY_LIMIT, || {
            self.check_shell("the command to start");
            std::fs::read_to_string(&armed).ok()?.trim().parse().ok()
        });
        // cg-test's pid is in its leaf's name: watch it, so the guard removes the leaf
        // after a failure (cg-test's own argv carries the marker, so the guard may kill
        // it).
        let leaf = cgroup::unified_path(&std::fs::read_to_string(&cgroup_file).unwrap())
            .expect("the command's cgroup");
        let cg_test = cg_test_pid_of_leaf(&leaf);
        g.watch_cg_test(cg_test);
        // Under --pid-ns `$$` is the pid inside the namespace: find the member whose
        // innermost pid (NSpid's last) it is.
        let command = cgroup::member_pids(&cgroup::dir_of(&leaf))
            .into_iter()
            .find(|&p| innermost_pid(p) == Some(inner))
            .expect("the command among the leaf's members");
        Job {
            g,
            command,
            cg_test,
            go,
        }
    }

    /// `exit`, and bash exits with 0.
    fn exit(mut self) {
        self.type_text("exit\n");
        let status = wait_for("bash to exit", RUN_LIMIT, || {
            self.shell.try_wait().expect("waiting for bash")
        });
        assert!(
            status.success(),
            "bash: {status:?}\n{}",
            self.screen.lock().unwrap()
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.shell.kill();
        let _ = self.shell.wait();
    }
}

impl Job<'_> {
    fn go(&self) {
        std::fs::write(&self.go, "").unwrap();
    }

    /// Wait until the command's group is the terminal's foreground group and the
    /// command is not stopped.
    fn wait_foreground(&self, sh: &mut Session) {
        wait_for("the command to have the terminal", READY_LIMIT, || {
            sh.check_shell("the command to have the terminal");
            let s = procs::stat(self.command)?;
            (s.tpgid == self.command && s.state != 'T').then_some(())
        });
    }

    /// Wait until the command and cg-test are both stopped while the shell has the
    /// terminal (the command read from the background).
    fn wait_stopped_in_background(&self, sh: &mut Session) {
        wait_for("the job to stop on its read", READY_LIMIT, || {
            sh.check_shell("the job to stop on its read");
            let (c, t) = (procs::stat(self.command)?, procs::stat(self.cg_test)?);
            (c.state == 'T' && t.state == 'T' && c.tpgid == sh.pid).then_some(())
        });
    }

    fn assert_gone(&self) {
        wait_for("cg-test to be reaped", RUN_LIMIT, || {
            (!procs::is_alive(self.cg_test)).then_some(())
        });
        assert_no_leaf(self.cg_test);
        assert_no_survivors(self.g.marker());
    }
}
