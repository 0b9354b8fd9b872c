//! Bad input never starts anything: each mistake is one `cg-test: ` line on stderr,
//! exit 125, and no leaf is created.

use crate::util::*;

fn rejected(name: &str, args: &[&str], must_name: Option<&str>) {
    let g = Guard::new(name);
    let out = g.start(g.cg_test(args)).finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    if let Some(word) = must_name {
        assert!(
            line.contains(word),
            "the error should name {word}: {line:?}"
        );
    }
    assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", out.stdout);
    assert_no_leaf(out.pid);
}

#[test]
fn invalid_durations() {
    for (i, bad) in ["banana", "5x", "-1s", ""].iter().enumerate() {
        // As a separate word, `-1s` reads like flags; the one line need not name
        // --timeout then (the `=` form below must).
        let must_name = (!bad.starts_with('-')).then_some("--timeout");
        rejected(
            &format!("bad_duration_{i}"),
            &["--timeout", bad, "--", "true"],
            must_name,
        );
        let eq = format!("--timeout={bad}");
        rejected(
            &format!("bad_duration_eq_{i}"),
            &[&eq, "--", "true"],
            Some("--timeout"),
        );
    }
    rejected(
        "bad_kill_after",
        &["-k", "5x", "--", "true"],
        Some("--kill-after"),
    );
    rejected(
        "bad_leak_timeout",
        &["--leak-timeout", "banana", "--", "true"],
        Some("--leak-timeout"),
    );
}

#[test]
fn invalid_signal() {
    rejected(
        "bad_signal",
        &["-s", "NOPE", "--", "true"],
        Some("--signal"),
    );
    rejected(
        "bad_signal_num",
        &["-s", "999", "--", "true"],
        Some("--signal"),
    );
}

#[test]
fn invalid_isolation() {
    rejected(
        "bad_isolation",
        &["--isolation", "jail", "--", "true"],
        Some("--isolation"),
    );
}

#[test]
fn empty_command() {
    rejected("empty_after_dashes", &["--"], None);
    rejected("empty_string_command", &["--", ""], Some("COMMAND"));
}

#[test]
fn missing_command() {
    rejected("no_command", &[], None);
    rejected("only_flags", &["-t", "1s"], None);
}

#[test]
fn unknown_flag() {
    rejected(
        "unknown_flag",
        &["--frobnicate", "--", "true"],
        Some("--frobnicate"),
    );
}
