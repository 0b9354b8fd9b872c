//! Running cg-test as a child of the test: stdout collected, stderr read line by line
//! as it comes (so a test can wait for a note such as `received SIGTERM` before acting),
//! every wait bounded, and a run that is dropped unfinished SIGKILLed and reaped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{procs, RUN_LIMIT};

pub struct Run {
    child: Option<Child>,
    /// cg-test's pid (setpriv execs it under the same pid).
    pub pid: i32,
    /// When the test started it.
    pub started: Instant,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr_rx: Receiver<String>,
    stderr_lines: Vec<String>,
}

impl Run {
    /// Start `cmd` with stdout and stderr captured; stdin is /dev/null unless the
    /// caller's pre_exec says otherwise.
    pub fn spawn(cmd: Command) -> Run {
        Run::spawn_with_stderr(cmd, Stdio::piped())
    }

    /// Like [`Run::spawn`], with stderr going to `stderr` (a terminal, say); unless
    /// that is a pipe, the run's stderr reads as empty.
    pub fn spawn_with_stderr(mut cmd: Command, stderr: Stdio) -> Run {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let started = Instant::now();
        let mut child = cmd.spawn().expect("starting cg-test");
        let pid = child.id() as i32;
        let mut out = child.stdout.take().expect("stdout pipe");
        let stdout = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        });
        let (tx, stderr_rx) = mpsc::channel();
        let Some(err) = child.stderr.take() else {
            return Run {
                child: Some(child),
                pid,
                started,
                stdout: Some(stdout),
                stderr_rx,
                stderr_lines: Vec::new(),
            };
        };
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        Run {
            child: Some(child),
            pid,
            started,
            stdout: Some(stdout),
            stderr_rx,
            stderr_lines: Vec::new(),
        }
    }

    /// Send a signal to cg-test.
    pub fn signal(&self, sig: i32) {
        procs::kill(self.pid, sig);
    }

    /// Wait until cg-test writes a stderr line containing `needle`; returns that line.
    pub fn wait_stderr(&mut self, needle: &str, limit: Duration) -> String {
        let until = Instant::now() + limit;
        if let Some(l) = self.stderr_lines.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.stderr_rx.recv_timeout(left) {
                Ok(l) => {
                    self.stderr_lines.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "cg-test (pid {}) wrote no stderr line containing {needle:?} within {limit:?}; \
                     stderr so far:\n{}",
                    self.pid,
                    self.stderr_lines.join("\n")
                ),
            }
        }
    }

    /// Has cg-test exited? (Reaps it if so; a later `finish` still reports it.)
    pub fn has_exited(&mut self) -> bool {
        let child = self.child.as_mut().expect("run already finished");
        matches!(child.try_wait(), Ok(Some(_)))
    }

    /// Wait (bounded by [`RUN_LIMIT`]) for cg-test itself to exit, without waiting for
    /// its stderr to close: processes that inherited stderr may outlive cg-test, and a
    /// test of what survives it must look before they die of old age. A later `finish`
    /// still reports the status.
    pub fn wait_exit(&mut self) {
        let child = self.child.as_mut().expect("run already finished");
        let until = Instant::now() + RUN_LIMIT;
        while child.try_wait().expect("waiting for cg-test").is_none() {
            assert!(
                Instant::now() < until,
                "cg-test (pid {}) did not exit within {RUN_LIMIT:?}",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Wait for cg-test to exit (bounded by [`RUN_LIMIT`]) and collect its output.
    pub fn finish(self) -> Finished {
        self.finish_within(RUN_LIMIT)
    }

    /// Wait at most `limit` for cg-test to exit; on timeout SIGKILL it and fail.
    pub fn finish_within(mut self, limit: Duration) -> Finished {
        let mut child = self.child.take().expect("run already finished");
        let until = Instant::now() + limit;
        let status = loop {
            match child.try_wait().expect("waiting for cg-test") {
                Some(s) => break s,
                None if Instant::now() >= until => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let err = self.drain_stderr();
                    panic!(
                        "cg-test (pid {}) did not exit within {limit:?}; killed it. stderr:\n{err}",
                        self.pid
                    );
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        let elapsed = self.started.elapsed();
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let stderr = self.drain_stderr();
        Finished {
            status,
            pid: self.pid,
            elapsed,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr,
        }
    }

    /// All stderr lines, waiting for the pipe to close (bounded: a grandchild that kept
    /// cg-test's stderr open must not hang the test).
    fn drain_stderr(&mut self) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.stderr_rx.recv_timeout(left) {
                Ok(l) => self.stderr_lines.push(l),
                Err(_) => break,
            }
        }
        self.stderr_lines.join("\n")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A finished cg-test run.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub pid: i32,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The exit code; fails the test if cg-test itself died of a signal.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(c) => c,
            None => panic!(
                "cg-test died of signal {:?}; stderr:\n{}",
                self.status.signal(),
                self.stderr
            ),
        }
    }

    /// Assert the exit code, showing stderr and stdout when it differs.
    pub fn assert_code(&self, expected: i32) {
        assert_eq!(
            self.code(),
            expected,
            "cg-test exit code; stderr:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout
        );
    }

    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// The fields of the `cg-test: done: ...` summary line.
    pub fn summary(&self) -> HashMap<String, String> {
        let line = self
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("cg-test: done: "))
            .unwrap_or_else(|| panic!("no summary line in stderr:\n{}", self.stderr));
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Assert one field of the summary line.
    pub fn assert_summary(&self, key: &str, value: &str) {
        let s = self.summary();
        assert_eq!(
            s.get(key).map(String::as_str),
            Some(value),
            "summary field {key}; stderr:\n{}",
            self.stderr
        );
    }

    /// Assert cg-test said exactly one line, a `cg-test: ` error, and return it.
    pub fn assert_one_error_line(&self) -> &str {
        let lines = self.stderr_lines();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one stderr line; got:\n{}",
            self.stderr
        );
        assert!(
            lines[0].starts_with("cg-test: "),
            "error line lacks the `cg-test: ` prefix: {:?}",
            lines[0]
        );
        lines[0]
    }

    /// The pids in the leak table (after `N process(es) outlived the command in …`).
    pub fn leaked_pids(&self) -> Vec<i32> {
        self.table_after("outlived the command in")
            .iter()
            .map(|r| r.pid)
            .collect()
    }

    /// The rows of the process table cg-test printed after the first stderr line
    /// containing `heading` (empty when there is none): `PID PPID S CPU AGE RSS
    /// COMMAND` lines, up to the first line that is not one.
    pub fn table_after(&self, heading: &str) -> Vec<TableRow> {
        let mut lines = self
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("cg-test: "))
            .skip_while(|l| !l.contains(heading));
        if lines.next().is_none() {
            return Vec::new();
        }
        lines
            .skip_while(|l| l.trim_start().starts_with("PID "))
            .map_while(TableRow::parse)
            .collect()
    }

    /// The line after a table (`… and N more …`), if any.
    pub fn line_after_table(&self, heading: &str) -> Option<String> {
        let rows = self.table_after(heading).len();
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("cg-test: "))
            .skip_while(|l| !l.contains(heading))
            .nth(2 + rows)
            .map(str::to_string)
    }
}

/// One row of cg-test's process table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRow {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    pub cpu: String,
    pub age: String,
    pub rss: String,
    /// The COMMAND column, tree prefix (`\_ `) included.
    pub command: String,
}

impl TableRow {
    /// Parse `    PID    PPID S     CPU     AGE    RSS  COMMAND` columns.
    pub fn parse(line: &str) -> Option<TableRow> {
        let mut f = line.split_whitespace();
        let row = TableRow {
            pid: f.next()?.parse().ok()?,
            ppid: f.next()?.parse().ok()?,
            state: f.next()?.chars().next()?,
            cpu: f.next()?.to_string(),
            age: f.next()?.to_string(),
            rss: f.next()?.to_string(),
            command: String::new(),
        };
        // The command starts after the RSS column and two spaces.
        let at = line.find(&format!(" {}  ", row.rss))? + row.rss.len() + 3;
        Some(TableRow {
            command: line.get(at..)?.to_string(),
            ..row
        })
    }

    /// The tree depth: how many `\_ ` levels the command is indented.
    pub fn depth(&self) -> usize {
        match self.command.find("\\_ ") {
            Some(i) => i / 2 + 1,
            None => 0,
        }
    }
}
