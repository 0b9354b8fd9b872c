//! `teardown_floor`: the kernel's own floor for tearing a process tree down, the
//! reference `scripts/bench.sh` sets cg-test's timeout teardown against. A benchmark
//! tool only (an example target, so `cargo install` never installs it).
//!
//!     teardown_floor DEADLINE_SECS -- COMMAND [ARG]...
//!
//! It does only what no supervisor can avoid: become a child subreaper, make a cgroup
//! v2 leaf below its own cgroup (`teardown-floor-<pid>`), start COMMAND in it (fork,
//! the child writes itself into `cgroup.procs`, execs), sleep until the deadline, then
//! freeze → wait for `frozen 1` → `cgroup.kill` → wait for `populated 0` (both waits by
//! poll(POLLPRI) on `cgroup.events`) → reap every child, orphans included → rmdir.
//! No polite signal, no grace, no snapshot, no watchdog, no report. With
//! `FLOOR_PHASE_TIMES=1` it prints `floor: members=N freeze=… kill=… reap=… rmdir=…`
//! (milliseconds; the member count read while frozen, so the benchmark can check the
//! whole tree was up at the deadline).

use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

fn die(msg: &str) -> ! {
    eprintln!("teardown_floor: {msg}");
    std::process::exit(125)
}

fn events(f: &fs::File) -> String {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 256];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Sleep in poll(POLLPRI) on cgroup.events until `key` has `value`.
fn wait_for(f: &fs::File, key: &str, value: &str) {
    let want = format!("{key} {value}");
    let until = Instant::now() + Duration::from_secs(10);
    while !events(f).lines().any(|l| l == want) {
        if Instant::now() > until {
            die(&format!("no `{want}` after 10 s"));
        }
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 1000) };
    }
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() < 4 || args[2] != "--" {
        die("usage: teardown_floor DEADLINE_SECS -- COMMAND [ARG]...");
    }
    let deadline: f64 = args[1]
        .to_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| die("DEADLINE_SECS: a number of seconds"));
    let argv: Vec<CString> = args[3..]
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_else(|_| die("NUL in COMMAND")))
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());

    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    let parent = cg_test::cgroupfs::own_cgroup_dir().unwrap_or_else(|e| die(&format!("{e:#}")));
    let leaf = parent.join(format!("teardown-floor-{}", std::process::id()));
    fs::create_dir(&leaf).unwrap_or_else(|e| die(&format!("mkdir {}: {e}", leaf.display())));
    let procs = CString::new(leaf.join("cgroup.procs").as_os_str().as_bytes())
        .unwrap_or_else(|_| die("NUL in path"));
    let ev = fs::File::open(leaf.join("cgroup.events"))
        .unwrap_or_else(|e| die(&format!("cgroup.events: {e}")));

    let started = Instant::now();
    // SAFETY: single-threaded; the child only makes async-signal-safe calls.
    match unsafe { libc::fork() } {
        -1 => die("fork failed"),
        0 => unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                libc::_exit(125);
            }
            libc::close(fd);
            libc::setpgid(0, 0);
            libc::execvp(ptrs[0], ptrs.as_ptr());
            libc::_exit(127)
        },
        _ => {}
    }
    let at = started + Duration::from_secs_f64(deadline);
    std::thread::sleep(at.saturating_duration_since(Instant::now()));

    let t0 = Instant::now();
    fs::write(leaf.join("cgroup.freeze"), "1").unwrap_or_else(|e| die(&format!("freeze: {e}")));
    wait_for(&ev, "frozen", "1");
    let t1 = Instant::now();
    let members = fs::read_to_string(leaf.join("cgroup.procs"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let t1b = Instant::now();
    fs::write(leaf.join("cgroup.kill"), "1").unwrap_or_else(|e| die(&format!("kill: {e}")));
    wait_for(&ev, "populated", "0");
    let t2 = Instant::now();
    // Every member is dead; reap our children (the command and every orphan) until
    // none is left.
    loop {
        // SAFETY: waitpid on any child.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let t3 = Instant::now();
    let until = t3 + Duration::from_secs(2);
    while let Err(e) = fs::remove_dir(&leaf) {
        if e.raw_os_error() != Some(libc::EBUSY) || Instant::now() > until {
            die(&format!("rmdir {}: {e}", leaf.display()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let t4 = Instant::now();
    if std::env::var_os("FLOOR_PHASE_TIMES").is_some_and(|v| v == "1") {
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
        eprintln!(
            "floor: members={members} freeze={:.3} kill={:.3} reap={:.3} rmdir={:.3}",
            ms(t0, t1),
            ms(t1b, t2),
            ms(t2, t3),
            ms(t3, t4)
        );
    }
}
