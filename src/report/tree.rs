//! The process table a human reads: the busiest processes of a snapshot or a leak,
//! indented by parentage (`ps --forest` style), one line each, capped.
//!
//! Columns: pid, parent pid, state, CPU time, age, resident memory, command line. The
//! cap keeps a 1,000-process run to a screenful: the `cap` busiest rows (most CPU,
//! then the oldest) are shown, each under its nearest shown ancestor, and the rest are
//! counted on one last line. Siblings are ordered by the busiest process in their
//! subtree, so the branch that spins comes first.
//!
//! Everything here is pure (rows in, lines out), so it is unit-tested on made-up rows.

use std::cmp::Reverse;
use std::time::Duration;

use crate::snapshot::ProcRow;

/// A command line is cut to this many characters when the terminal width is unknown.
pub const CMDLINE_MAX: usize = 200;
/// The narrowest a command line is cut to, however narrow the terminal.
const CMDLINE_MIN: usize = 20;

/// What rows are sorted by: larger first for the two durations, then the smaller pid.
type SortKey = (Reverse<Option<Duration>>, Reverse<Option<Duration>>, i32);

/// Sort row indices by a key. Every sort here goes through this one function (a
/// `dyn` key, one instantiation of the sort): each generic sort would otherwise add
/// several kilobytes to a binary meant to stay small.
fn sort_indices(indices: &mut [usize], key: &dyn Fn(usize) -> SortKey) {
    indices.sort_unstable_by_key(|&i| key(i));
}

/// Row indices, busiest first: most CPU, then the oldest, then the lowest pid.
fn busiest_order(rows: &[ProcRow]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    sort_indices(&mut order, &|i| {
        (Reverse(rows[i].cpu), Reverse(rows[i].age), rows[i].pid)
    });
    order
}

/// The pids of the `n` busiest rows, busiest first.
pub fn busiest(rows: &[ProcRow], n: usize) -> Vec<i32> {
    busiest_order(rows)
        .into_iter()
        .take(n)
        .map(|i| rows[i].pid)
        .collect()
}

/// How wide a line may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// A terminal this many columns wide, `prefix` of them taken before our text.
    Terminal { columns: usize, prefix: usize },
    /// Not a terminal: only the command line is cut, to [`CMDLINE_MAX`].
    Unlimited,
}

/// The table's lines (without the `cg-test: ` prefix): a header, one line per shown
/// process, and `… and N more` when the cap hid some. `hidden_hint` ends that last
/// line (where the full list is).
pub fn render(rows: &[ProcRow], cap: usize, width: Width, hidden_hint: &str) -> Vec<String> {
    let n = rows.len();
    let mut shown = vec![false; n];
    for i in busiest_order(rows).into_iter().take(cap) {
        shown[i] = true;
    }
    let mut by_pid: Vec<usize> = (0..n).collect();
    sort_indices(&mut by_pid, &|i| {
        (Reverse(None), Reverse(None), rows[i].pid)
    });
    let index_of = |pid: i32| {
        by_pid
            .binary_search_by_key(&pid, |&i| rows[i].pid)
            .ok()
            .map(|k| by_pid[k])
    };

    // Each shown process hangs under its nearest shown ancestor (a hidden parent is
    // skipped over); with none, it is a root. Walks are bounded by the row count:
    // pids reused between two reads could in principle make a loop.
    let mut parent: Vec<Option<usize>> = vec![None; n];
    for i in (0..n).filter(|&i| shown[i]) {
        let mut up = rows[i].ppid;
        for _ in 0..n {
            match index_of(up) {
                Some(j) if j == i => break,
                Some(j) if shown[j] => {
                    parent[i] = Some(j);
                    break;
                }
                Some(j) => up = rows[j].ppid,
                None => break,
            }
        }
    }
    // A branch weighs as much as its busiest process.
    let mut weight: Vec<Option<Duration>> = rows.iter().map(|r| r.cpu).collect();
    for i in (0..n).filter(|&i| shown[i]) {
        let mut up = parent[i];
        for _ in 0..n {
            let Some(j) = up else { break };
            weight[j] = weight[j].max(rows[i].cpu);
            up = parent[j];
        }
    }
    let mut roots = Vec::new();
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in (0..n).filter(|&i| shown[i]) {
        match parent[i] {
            Some(j) => kids[j].push(i),
            None => roots.push(i),
        }
    }
    let heavier_first = |i: usize| (Reverse(weight[i]), Reverse(None), rows[i].pid);
    sort_indices(&mut roots, &heavier_first);
    for list in &mut kids {
        sort_indices(list, &heavier_first);
    }

    let mut lines = vec![format!(
        "{:>7} {:>7} {} {:>7} {:>7} {:>6}  {}",
        "PID", "PPID", "S", "CPU", "AGE", "RSS", "COMMAND"
    )];
    // Depth-first, parents before children; each row printed once even if the parent
    // links were inconsistent, and anything a loop cut off from the roots at the end.
    let mut printed = vec![false; n];
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut printed[i], true) {
            continue;
        }
        lines.push(row_line(&rows[i], depth, width));
        stack.extend(kids[i].iter().rev().map(|&c| (c, depth + 1)));
    }
    for i in (0..n).filter(|&i| shown[i] && !printed[i]) {
        lines.push(row_line(&rows[i], 0, width));
    }
    let hidden = shown.iter().filter(|s| !**s).count();
    if hidden > 0 {
        lines.push(format!("… and {hidden} more{hidden_hint}"));
    }
    lines
}

fn row_line(r: &ProcRow, depth: usize, width: Width) -> String {
    let columns = format!(
        "{:>7} {:>7} {} {:>7} {:>7} {:>6}  ",
        r.pid,
        r.ppid,
        r.state,
        r.cpu.map(duration).unwrap_or_else(|| "?".into()),
        r.age.map(duration).unwrap_or_else(|| "?".into()),
        r.rss.map(bytes_short).unwrap_or_else(|| "?".into()),
    );
    let indent = if depth == 0 {
        String::new()
    } else {
        format!("{}\\_ ", "  ".repeat(depth - 1))
    };
    let room = match width {
        Width::Terminal { columns: c, prefix } => c
            .saturating_sub(prefix + columns.chars().count() + indent.chars().count())
            .max(CMDLINE_MIN),
        Width::Unlimited => CMDLINE_MAX,
    };
    format!(
        "{columns}{indent}{}",
        cut(&cmdline_text(r.cmdline.as_deref()), room)
    )
}

/// A command line for a human: arguments joined by spaces, control characters and
/// bytes that are not UTF-8 escaped (`\n`, `\t`, `\xff`), so one process is one line.
pub fn cmdline_text(args: Option<&[Vec<u8>]>) -> String {
    match args {
        Some(args) => args
            .iter()
            .map(|a| escape_arg(a))
            .collect::<Vec<_>>()
            .join(" "),
        None => "?".into(),
    }
}

/// One argument with control characters and invalid UTF-8 escaped.
pub fn escape_arg(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    out.push_str(&c.escape_unicode().to_string());
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// At most `max` characters, the last one `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A duration in a few characters: `0.25s`, `12.5s`, `5m03s`, `11h02m`, `3d04h`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    let whole = d.as_secs();
    if s < 10.0 {
        format!("{s:.2}s")
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else if whole < 86400 {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    } else {
        format!("{}d{:02}h", whole / 86400, whole % 86400 / 3600)
    }
}

/// Bytes for a table column: `812K`, `1.2M`, `3.4G` (binary units).
pub fn bytes_short(b: u64) -> String {
    const K: f64 = 1024.0;
    let f = b as f64;
    if f < K * K {
        format!("{}K", b / 1024)
    } else if f < K * K * K {
        format!("{:.1}M", f / (K * K))
    } else {
        format!("{:.1}G", f / (K * K * K))
    }
}

/// Bytes for the summary line: `812KiB`, `104.2MiB`, `3.4GiB`.
pub fn bytes_long(b: u64) -> String {
    let s = bytes_short(b);
    format!("{s}iB")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: i32, ppid: i32, state: char, cpu_ms: u64, cmd: &str) -> ProcRow {
        ProcRow {
            pid,
            ppid,
            state,
            cpu: Some(Duration::from_millis(cpu_ms)),
            age: Some(Duration::from_secs(3)),
            rss: Some(2 * 1024 * 1024),
            cmdline: Some(cmd.split(' ').map(|a| a.as_bytes().to_vec()).collect()),
        }
    }

    /// The COMMAND column of each line after the header.
    fn commands(lines: &[String]) -> Vec<String> {
        lines[1..]
            .iter()
            .map(|l| l.get(42..).unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn tree_puts_busy_branches_first_and_indents_children() {
        let rows = vec![
            row(10, 1, 'S', 0, "sh hang.sh"),
            row(11, 10, 'S', 0, "sleep 30"),
            row(12, 10, 'R', 900, "spin a"),
            row(13, 10, 'R', 1500, "spin b"),
            row(14, 13, 'S', 0, "child-of-b"),
        ];
        let lines = render(&rows, 40, Width::Unlimited, "");
        assert_eq!(
            lines[0],
            "    PID    PPID S     CPU     AGE    RSS  COMMAND"
        );
        assert_eq!(
            commands(&lines),
            [
                "sh hang.sh",
                "\\_ spin b",
                "  \\_ child-of-b",
                "\\_ spin a",
                "\\_ sleep 30"
            ]
        );
        assert!(
            lines[2].starts_with("     13      10 R   1.50s   3.00s   2.0M  "),
            "{:?}",
            lines[2]
        );
    }

    #[test]
    fn cap_keeps_the_busiest_and_counts_the_rest() {
        let mut rows = vec![row(1000, 1, 'S', 0, "root")];
        for i in 0..100 {
            rows.push(row(1001 + i, 1000, 'S', i as u64, &format!("worker {i}")));
        }
        let lines = render(&rows, 40, Width::Unlimited, "; see the report");
        assert_eq!(lines.len(), 1 + 40 + 1);
        assert_eq!(lines[41], "… and 61 more; see the report");
        let cmds = commands(&lines);
        assert_eq!(
            cmds[0], "worker 99",
            "the root is hidden, the busiest first"
        );
        assert_eq!(cmds[39], "worker 60");
        assert!(render(&rows, 200, Width::Unlimited, "")
            .iter()
            .all(|l| !l.starts_with('…')));
    }

    #[test]
    fn hidden_parents_are_skipped_over() {
        let rows = vec![
            row(1, 0, 'S', 0, "idle-root"),
            row(2, 1, 'S', 0, "idle-mid"),
            row(3, 2, 'R', 50, "busy-leaf"),
            row(4, 1, 'R', 40, "busy-2"),
        ];
        let lines = render(&rows, 3, Width::Unlimited, "");
        assert_eq!(
            commands(&lines)[..3],
            ["idle-root", "\\_ busy-leaf", "\\_ busy-2"]
        );
    }

    #[test]
    fn command_lines_are_escaped_and_cut() {
        let mut r = row(5, 1, 'S', 0, "x");
        r.cmdline = Some(vec![
            b"a\nb%".to_vec(),
            b"\xff\xfeok".to_vec(),
            b"\x1b".to_vec(),
        ]);
        let lines = render(std::slice::from_ref(&r), 40, Width::Unlimited, "");
        assert_eq!(commands(&lines), ["a\\nb% \\xff\\xfeok \\u{1b}"]);
        let mut long = row(6, 1, 'S', 0, "x");
        long.cmdline = Some(vec![vec![b'y'; 500]]);
        let l = render(std::slice::from_ref(&long), 40, Width::Unlimited, "");
        assert_eq!(l[1].chars().count(), 42 + CMDLINE_MAX);
        assert!(l[1].ends_with("y…"));
        let t = render(
            &[long],
            40,
            Width::Terminal {
                columns: 100,
                prefix: 9,
            },
            "",
        );
        assert_eq!(t[1].chars().count() + 9, 100);
        let unknown = ProcRow {
            cpu: None,
            age: None,
            rss: None,
            cmdline: None,
            ..row(7, 1, '?', 0, "")
        };
        let u = render(&[unknown], 40, Width::Unlimited, "");
        assert_eq!(u[1], "      7       1 ?       ?       ?      ?  ?");
    }

    #[test]
    fn units() {
        assert_eq!(duration(Duration::from_millis(250)), "0.25s");
        assert_eq!(duration(Duration::from_millis(12_500)), "12.5s");
        assert_eq!(duration(Duration::from_secs(303)), "5m03s");
        assert_eq!(duration(Duration::from_secs(11 * 3600 + 120)), "11h02m");
        assert_eq!(duration(Duration::from_secs(3 * 86400 + 4 * 3600)), "3d04h");
        assert_eq!(bytes_short(812 * 1024), "812K");
        assert_eq!(bytes_short(109_261_619), "104.2M");
        assert_eq!(
            bytes_long(3 * 1024 * 1024 * 1024 + 400 * 1024 * 1024),
            "3.4GiB"
        );
    }
}
