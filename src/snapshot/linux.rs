//! Linux rows from /proc: `stat` for parent, state, CPU, start time and RSS,
//! `cmdline` for the argv.
//!
//! `stat` is read with one open, one read and a close into a stack buffer rather than
//! `fs::read_to_string` (which adds a statx and a read to see the end): at a
//! 1,000-process timeout the snapshot is on the teardown's critical path, and on the
//! development machines that saves about a third of its cost.

use std::io::Write;
use std::time::Duration;

use super::ProcRow;

/// Reads rows; holds what is the same for every process of one snapshot.
pub struct Reader {
    /// Clock ticks per second (the unit of utime, stime and starttime).
    ticks: u64,
    page_size: u64,
    /// Now, on the clock `starttime` counts from (boot, including suspend).
    now_since_boot: Duration,
}

impl Reader {
    pub fn new() -> Reader {
        // SAFETY: sysconf and clock_gettime only fill in values we own.
        let (ticks, page_size, now) = unsafe {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts);
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
                Duration::new(
                    ts.tv_sec.max(0) as u64,
                    ts.tv_nsec.clamp(0, 999_999_999) as u32,
                ),
            )
        };
        Reader {
            ticks: u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100),
            page_size: u64::try_from(page_size)
                .ok()
                .filter(|&p| p > 0)
                .unwrap_or(4096),
            now_since_boot: now,
        }
    }

    /// The row of one process, or None if it is gone.
    pub fn row(&self, pid: i32) -> Option<ProcRow> {
        let mut buf = [0u8; 2048];
        let len = read_small(pid, b"stat", &mut buf)?;
        let fields = parse_stat(&buf[..len])?;
        let ticks = |t: u64| Duration::from_secs_f64(t as f64 / self.ticks as f64);
        Some(ProcRow {
            pid,
            ppid: fields.ppid,
            state: fields.state,
            cpu: Some(ticks(fields.utime + fields.stime)),
            age: Some(self.now_since_boot.saturating_sub(ticks(fields.starttime))),
            rss: Some(fields.rss_pages * self.page_size),
            cmdline: None,
        })
    }
}

/// Read /proc/<pid>/<file> into `buf` with one open, read and close; the length read.
fn read_small(pid: i32, file: &[u8], buf: &mut [u8]) -> Option<usize> {
    let mut path = [0u8; 48];
    let mut w = &mut path[..];
    write!(w, "/proc/{pid}/").ok()?;
    w.write_all(file).ok()?;
    w.write_all(b"\0").ok()?;
    // SAFETY: `path` is NUL-terminated; read writes at most buf.len() bytes into it;
    // the fd is ours and closed on every path.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        // procfs hands out a `stat` line whole in one read when the buffer holds it
        // (it always ends with a newline); only a longer one needs a second read.
        let mut len = 0;
        while len < buf.len() {
            let n = libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len);
            if n <= 0 {
                break;
            }
            len += n as usize;
            if buf[len - 1] == b'\n' {
                break;
            }
        }
        libc::close(fd);
        (len > 0).then_some(len)
    }
}

/// The fields of /proc/<pid>/stat a row needs.
#[derive(Debug, PartialEq, Eq)]
struct StatFields {
    state: char,
    ppid: i32,
    utime: u64,
    stime: u64,
    starttime: u64,
    rss_pages: u64,
}

/// Parse a stat line. `comm` may hold spaces and parentheses, so fields are counted
/// from the last `)`: after it, field 3 (state) is the first.
fn parse_stat(text: &[u8]) -> Option<StatFields> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let after = std::str::from_utf8(&text[close + 1..]).ok()?;
    // Walk the fields once, in order, without collecting them.
    let mut f = after.split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let mut skip_to = |n: usize| f.nth(n)?.parse::<u64>().ok();
    let utime = skip_to(9)?; // field 14
    let stime = skip_to(0)?; // field 15
    let starttime = skip_to(6)?; // field 22
    let rss_pages = skip_to(1)?; // field 24
    Some(StatFields {
        state,
        ppid,
        utime,
        stime,
        starttime,
        rss_pages,
    })
}

/// The argv of a process; `[comm]` when it has none (kernel threads, zombies).
pub fn cmdline(pid: i32) -> Option<Vec<Vec<u8>>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args: Vec<Vec<u8>> = raw.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    // The argv ends with a NUL, which leaves one empty piece behind.
    if args.last().is_some_and(Vec::is_empty) {
        args.pop();
    }
    if args.is_empty() {
        let comm = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
        let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
        args.push([b"[", comm, b"]"].concat());
    }
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_comm() {
        let line = b"42 (a) b) R 7 42 40 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 12345 9999 321 18446744073709551615\n";
        assert_eq!(
            parse_stat(line),
            Some(StatFields {
                state: 'R',
                ppid: 7,
                utime: 250,
                stime: 50,
                starttime: 12345,
                rss_pages: 321,
            })
        );
        assert_eq!(parse_stat(b"42 (x) S 1"), None, "truncated");
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn cmdline_keeps_arguments_apart_and_bytes_intact() {
        let me = std::process::id() as i32;
        let args = cmdline(me).unwrap();
        let expected: Vec<Vec<u8>> = std::env::args_os()
            .map(|a| std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()).to_vec())
            .collect();
        assert_eq!(args, expected);
    }
}
