//! cg-test's exit never waits on a terminal that cannot send. cg-test used to `tcdrain`
//! any terminal on stderr before exiting, which waits forever on a line stopped by XOFF;
//! now only PID 1 (whose summary the kernel would drop when it halts) waits, and at
//! most a couple of seconds.
//!
//! The terminal here is a pty with IXON whose output was stopped with ^S from the
//! master, which nobody reads. What this can and cannot show on a pty: a `write` to a
//! stopped pty blocks by itself (as it would for any program: that is what ^S is for),
//! so the runs are `-q` and write nothing; and Linux keeps no output queue for a pty
//! (TIOCOUTQ is 0), so the old unconditional `tcdrain` returned at once here too. The
//! hang itself needs a serial port whose transmitter is stopped: the VM lane's
//! scenario 25 (tests/vm/scenarios/25-stopped-serial-stderr.sh) gives cg-test such a
//! line, and fails on the old code. The bound is also unit-tested in `report`.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::termios::{self, InputFlags, SetArg};

use crate::util::*;

/// A pty with IXON on the slave and its output stopped by ^S; returns (master, slave).
fn stopped_pty() -> (std::fs::File, OwnedFd) {
    let pty = crate::util::pty::open_pty();
    let mut t = termios::tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
    t.input_flags |= InputFlags::IXON;
    termios::tcsetattr(pty.slave.as_fd(), SetArg::TCSANOW, &t).expect("tcsetattr");
    let mut master = std::fs::File::from(pty.master);
    master.write_all(b"\x13").expect("typing ^S");
    // The line discipline handles ^S asynchronously: wait until a non-blocking write
    // to the slave is refused, which proves output is stopped.
    let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
        .expect("the slave's path");
    let mut probe = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
        .expect("opening the slave again");
    wait_for(
        "the pty's output to stop",
        Duration::from_secs(10),
        || match probe.write(b"x") {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(()),
            _ => None,
        },
    );
    (master, pty.slave)
}

/// A bound far above a normal run and far below "forever".
const EXIT_LIMIT: Duration = Duration::from_secs(30);

#[test]
fn exits_with_stderr_on_a_stopped_terminal() {
    let g = Guard::new("stopped_tty");
    let (_master, slave) = stopped_pty();
    let script = format!(": {}; exit 3", g.marker());
    let cmd = g.cg_test(&["-q", "--", "sh", "-c", &script]);
    let run = Run::spawn_with_stderr(cmd, Stdio::from(slave));
    g.watch_cg_test(run.pid);
    let out = run.finish_within(EXIT_LIMIT);
    out.assert_code(3);
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
}

/// The path that does wait: cg-test as PID 1 (of a fresh pid namespace, with its own
/// /proc so the pgroup strategy reads its own processes) still exits.
#[test]
fn pid1_exits_with_stderr_on_a_stopped_terminal() {
    let g = Guard::new("stopped_tty_pid1");
    let (_master, slave) = stopped_pty();
    // The command checks that its parent, cg-test, is PID 1 of the namespace.
    let script = format!(": {}; [ \"$PPID\" = 1 ] || exit 9; exit 4", g.marker());
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", CG_TEST])
        .args(["-q", "--isolation", "pgroup", "--", "sh", "-c", &script]);
    let run = Run::spawn_with_stderr(cmd, Stdio::from(slave));
    let out = run.finish_within(EXIT_LIMIT);
    out.assert_code(4);
    assert_no_survivors(g.marker());
}
