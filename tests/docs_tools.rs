//! `cg-test completions SHELL` and `cg-test manpage`: generated from the clap
//! definitions, so they know every flag and tool; a bad shell is one line and 125.

use crate::util::*;

#[test]
fn completions_know_the_flags_and_the_tools() {
    let g = Guard::new("docs_completions");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = g.start(g.cg_test(&["completions", shell])).finish();
        out.assert_code(0);
        // fish lists long options without their dashes.
        for word in ["die-with-parent", "timeout", "gc", "doctor"] {
            assert!(
                out.stdout.contains(word),
                "{shell} completions lack {word}:\n{}",
                out.stdout
            );
        }
    }
}

#[test]
fn manpage_is_roff_with_every_flag() {
    let g = Guard::new("docs_manpage");
    let out = g.start(g.cg_test(&["manpage"])).finish();
    out.assert_code(0);
    assert!(out.stdout.starts_with(".ie") || out.stdout.contains(".TH cg-test 1"));
    for flag in [
        r"\-\-die\-with\-parent",
        r"\-\-kill\-after",
        r"\-\-isolation",
    ] {
        assert!(out.stdout.contains(flag), "man page lacks {flag}");
    }
    assert!(out.stdout.contains("gc"), "man page lacks the gc tool");
}

#[test]
fn completions_for_an_unknown_shell_are_refused() {
    let g = Guard::new("docs_bad_shell");
    let out = g.start(g.cg_test(&["completions", "tcsh"])).finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(line.contains("tcsh"), "{line:?}");
}
