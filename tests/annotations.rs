//! Issue 9: with `GITHUB_ACTIONS=true` a timeout adds one `::error title=cg-test
//! timeout::…` line naming the busiest processes, a leak one `::warning title=cg-test
//! leak::…` line, each escaped by the workflow-command rules (`%` → `%25`, newlines
//! never raw) with bytes that are not UTF-8 shown as `\xNN`. Without it (unset, or any
//! other value) there is no `::` line at all.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use crate::util::fixture::sh_quote;
use crate::util::*;

/// The stderr lines that are workflow commands.
fn workflow_commands(out: &run::Finished) -> Vec<String> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("::"))
        .map(String::from)
        .collect()
}

/// A command that leaves one daemon whose argv holds a newline, `%` and a byte that
/// is not UTF-8. The fixture runs through a short symlink so that its command line,
/// hostile arguments last, fits the annotation's 200 characters.
fn leak_command(g: &Guard, github_actions: Option<&str>) -> Command {
    let short = g.path("fx");
    std::os::unix::fs::symlink(FIXTURE, &short).expect("symlink to the fixture");
    let mut fx = g.fixture();
    fx.life = 20.0;
    let argv = fx.argv(&["daemon", "--exit", "0"]);
    let daemon = std::iter::once(short.display().to_string())
        .chain(argv[1..].iter().cloned())
        .map(|a| sh_quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    // The hostile arguments come in as $1..$3 so the shell passes them on untouched.
    // The original process exits only after the daemon is forked, so the leak is
    // certain; the leak table is the proof it was alive.
    let script = format!("{daemon} \"$1\" \"$2\" \"$3\"");
    let mut cmd = g.cg_test(&["--isolation", "cgroup", "--", "sh", "-c", &script, "sh"]);
    cmd.arg("two\nlines")
        .arg("50%")
        .arg(OsStr::from_bytes(b"\xffend"));
    if let Some(v) = github_actions {
        cmd.env("GITHUB_ACTIONS", v);
    }
    cmd
}

#[test]
fn leak_annotation_is_one_escaped_warning() {
    let g = Guard::new("annotate_leak");
    let out = g.start(leak_command(&g, Some("true"))).finish();
    out.assert_code(0);
    let leaked = out.leaked_pids();
    assert_eq!(leaked.len(), 1, "stderr:\n{}", out.stderr);
    let daemon = leaked[0];
    let lines = workflow_commands(&out);
    assert_eq!(lines.len(), 1, "one annotation; stderr:\n{}", out.stderr);
    let line = &lines[0];
    let prefix =
        "::warning title=cg-test leak::1 process(es) outlived the command and were killed: ";
    assert!(line.starts_with(prefix), "{line:?}");
    // A sleeper; it wakes every 0.2 s, so it may be caught running.
    let named = [format!("pid {daemon} (S, "), format!("pid {daemon} (R, ")];
    assert!(
        named.iter().any(|n| line.contains(n)),
        "names the daemon: {line:?}"
    );
    assert!(
        line.ends_with(" daemon --exit 0 two\\nlines 50%25 \\xffend"),
        "the argv escaped: newline as \\n, % as %25, the byte as \\xff: {line:?}"
    );
    assert!(!line.contains('\r') && !line.contains("50% "), "{line:?}");
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
}

#[test]
fn no_annotation_outside_github_actions() {
    for (i, value) in [None, Some("false"), Some("1")].into_iter().enumerate() {
        let g = Guard::new(&format!("annotate_none_{i}"));
        let out = g.start(leak_command(&g, value)).finish();
        out.assert_code(0);
        assert_eq!(out.leaked_pids().len(), 1, "stderr:\n{}", out.stderr);
        assert!(
            workflow_commands(&out).is_empty(),
            "GITHUB_ACTIONS={value:?}: no annotation; stderr:\n{}",
            out.stderr
        );
        assert_no_survivors(g.marker());
        assert_no_leaf(out.pid);
    }
}

/// A timeout with a spinner and a sleeper: one `::error` line, the spinner named
/// first (the busiest), the sleeper named too; no warning. Also in quiet mode, where
/// the table itself is not shown.
fn timeout_annotation(quiet: bool) {
    let g = Guard::new(if quiet {
        "annotate_timeout_q"
    } else {
        "annotate_timeout"
    });
    let ready_dir = g.subdir("ready");
    let late = g.path("late");
    let fx = g.fixture().ready(&ready_dir).late(&late, 5.0);
    let mut args = vec!["-t", "2s", "-k", "1s"];
    if quiet {
        args.push("-q");
    }
    let script = format!("{} & {}", fx.sh(&["spin"]), fx.sh(&["sleep"]));
    args.extend(["--", "sh", "-c", script.as_str()]);
    let mut cmd = g.cg_test(&args);
    cmd.env("GITHUB_ACTIONS", "true");
    let run = g.start(cmd);
    let ready = wait_ready(&ready_dir, 2);
    let spinner = *ready
        .pids
        .iter()
        .find(|&&p| procs::cmdline(p).is_some_and(|c| c.trim_end().ends_with(" spin")))
        .expect("the spinner");
    let sleeper = *ready.pids.iter().find(|&&p| p != spinner).unwrap();
    let out = run.finish();
    out.assert_code(124);
    let lines = workflow_commands(&out);
    assert_eq!(lines.len(), 1, "one annotation; stderr:\n{}", out.stderr);
    let line = &lines[0];
    let head = format!(
        "::error title=cg-test timeout::timed out after 2s; 3 process(es) were running, \
         busiest first: pid {spinner} (R, "
    );
    assert!(line.starts_with(&head), "{line:?}");
    assert!(
        line.contains(&format!("; pid {sleeper} (S, "))
            || line.contains(&format!("; pid {sleeper} (R, ")),
        "{line:?}"
    );
    assert_eq!(
        out.table_after("running at the timeout").is_empty(),
        quiet,
        "the table is a note: shown unless -q; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    assert_late_never(&late, late_due(&ready, 5.0));
}

#[test]
fn timeout_annotation_names_the_busiest() {
    timeout_annotation(false);
}

#[test]
fn timeout_annotation_also_when_quiet() {
    timeout_annotation(true);
}
