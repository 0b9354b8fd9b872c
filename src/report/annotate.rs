//! GitHub Actions annotations: when `GITHUB_ACTIONS=true`, a timeout adds one
//! `::error title=cg-test timeout::…` line naming the busiest processes that were
//! running, and a leak one `::warning title=cg-test leak::…` line, so the job's
//! summary page says what hung without anyone opening the log.
//!
//! The lines go to stderr, like everything else cg-test says: the runner reads
//! workflow commands from a step's stderr as well as its stdout, and the command's
//! stdout may be data (`vitest --reporter=json > results.json`) that an extra line
//! would corrupt.
//!
//! Escaping follows the workflow-command rules (actions/toolkit `command.ts`): in the
//! message `%`, `\r` and `\n` become `%25`, `%0D` and `%0A`; in a property value `:`
//! and `,` also become `%3A` and `%2C`. Command lines are first made one line the
//! way the table shows them (`\n`, `\xff`), so a newline or a byte that is not UTF-8
//! in an argument can neither end the annotation nor garble it.

use std::time::Duration;

use super::tree::{self, cmdline_text, cut, CMDLINE_MAX};
use crate::snapshot::ProcRow;

/// How many processes an annotation names.
const NAMED: usize = 5;

/// Is cg-test running as a GitHub Actions step?
pub fn in_github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// A workflow command's message, escaped.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value, escaped.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One `::kind title=…::message` line.
pub fn command(kind: &str, title: &str, message: &str) -> String {
    format!(
        "::{kind} title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

/// The annotation for a timeout.
pub fn timeout(after: Duration, rows: &[ProcRow]) -> String {
    command(
        "error",
        "cg-test timeout",
        &format!(
            "timed out after {}; {} process(es) were running, busiest first: {}",
            seconds(after),
            rows.len(),
            name_busiest(rows)
        ),
    )
}

/// The annotation for a leak.
pub fn leak(rows: &[ProcRow]) -> String {
    command(
        "warning",
        "cg-test leak",
        &format!(
            "{} process(es) outlived the command and were killed: {}",
            rows.len(),
            name_busiest(rows)
        ),
    )
}

/// `pid (state, CPU, age) command; …` for the busiest few, then how many more.
fn name_busiest(rows: &[ProcRow]) -> String {
    let order = tree::busiest(rows, NAMED);
    let mut parts: Vec<String> = order
        .iter()
        .filter_map(|pid| rows.iter().find(|r| r.pid == *pid))
        .map(|r| {
            format!(
                "pid {} ({}, {} CPU, {} old) {}",
                r.pid,
                r.state,
                r.cpu.map(tree::duration).unwrap_or_else(|| "?".into()),
                r.age.map(tree::duration).unwrap_or_else(|| "?".into()),
                cut(&cmdline_text(r.cmdline.as_deref()), CMDLINE_MAX)
            )
        })
        .collect();
    if rows.len() > order.len() {
        parts.push(format!("and {} more", rows.len() - order.len()));
    }
    parts.join("; ")
}

fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_workflow_command_rules() {
        assert_eq!(escape_data("50% a\r\nb: c,d"), "50%25 a%0D%0Ab: c,d");
        assert_eq!(escape_property("a: b, 100%\n"), "a%3A b%2C 100%25%0A");
        assert_eq!(
            command("warning", "x:y,z", "m%\n"),
            "::warning title=x%3Ay%2Cz::m%25%0A"
        );
    }

    #[test]
    fn names_the_busiest_with_escaped_command_lines() {
        let row = |pid, cpu_ms, cmd: &[&[u8]]| ProcRow {
            pid,
            ppid: 1,
            state: 'R',
            cpu: Some(Duration::from_millis(cpu_ms)),
            age: Some(Duration::from_secs(2)),
            rss: Some(1 << 20),
            cmdline: Some(cmd.iter().map(|a| a.to_vec()).collect()),
        };
        let mut rows: Vec<ProcRow> = (0..7).map(|i| row(100 + i, i as u64, &[b"w"])).collect();
        rows.push(row(99, 5000, &[b"evil", b"50%\nnext\xff"]));
        let line = timeout(Duration::from_secs(15 * 60), &rows);
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with(
                "::error title=cg-test timeout::timed out after 900s; 8 process(es) were running, \
                 busiest first: pid 99 (R, 5.00s CPU, 2.00s old) evil 50%25\\nnext\\xff; pid 106"
            ),
            "{line}"
        );
        assert!(line.ends_with("; and 3 more"), "{line}");
        assert!(leak(&rows[..1]).starts_with("::warning title=cg-test leak::1 process(es)"));
    }
}
