//! `--forward-to command|group|all` (issue 12): who gets USR1 sent to cg-test. The run
//! holds three shells that each record a USR1: the command itself, a child in the
//! command's process group, and a setsid'ed daemon in a session of its own. `command`
//! reaches the first alone (today's behaviour, the negative control for the others),
//! `group` the first two (tini -g, dumb-init), `all` every process of the run. No
//! forwarded signal ends the run: the command exits with its own code afterwards.

use std::time::Duration;

use crate::util::fixture::{sh_quote, sh_wait_file};
use crate::util::*;

/// Which of the three shells recorded a USR1.
#[derive(Debug, PartialEq, Eq)]
struct Got {
    command: bool,
    group_child: bool,
    daemon: bool,
}

fn usr1_reaches(whom: &str, mode: Mode) -> Got {
    let g = Guard::new(&format!("fwd_{whom}_{}", mode.name()));
    let stop = g.path("stop");
    let armed_dir = g.subdir("armed");
    // The ready helpers count numeric file names: 1, 2, 3.
    let shell = |name: &str, n: u32| {
        format!(
            ": {marker}; trap 'echo usr1 > {got}' USR1; touch {armed}; {wait}",
            marker = g.marker(),
            got = sh_quote(g.path(name).to_str().unwrap()),
            armed = sh_quote(armed_dir.join(n.to_string()).to_str().unwrap()),
            wait = sh_wait_file(&stop),
        )
    };
    let script = format!(
        "sh -c {child} & setsid sh -c {daemon} & {command}; wait; exit 3",
        child = sh_quote(&shell("group_child", 2)),
        daemon = sh_quote(&shell("daemon", 3)),
        command = shell("command", 1),
    );
    let mut args: Vec<String> = mode.args().iter().map(|s| s.to_string()).collect();
    args.extend(["--forward-to", whom, "--", "sh", "-c", &script].map(String::from));
    let mut run = g.start(g.cg_test(&args));

    wait_ready(&armed_dir, 3);
    run.signal(libc::SIGUSR1);
    // The expected receivers answer within moments; the others must stay silent for
    // as long as it took plus a margin (nothing to wait for when nothing happens).
    let got = |name: &str| g.path(name).exists();
    let expected: &[&str] = match whom {
        "command" => &["command"],
        "group" => &["command", "group_child"],
        _ => &["command", "group_child", "daemon"],
    };
    wait_for("the USR1 to arrive", Duration::from_secs(10), || {
        expected.iter().all(|n| got(n)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!run.has_exited(), "USR1 must not end the run");
    let result = Got {
        command: got("command"),
        group_child: got("group_child"),
        daemon: got("daemon"),
    };
    std::fs::write(&stop, "").unwrap();
    let out = run.finish();
    out.assert_code(3);
    assert!(
        !out.stderr.contains("received SIGUSR1"),
        "USR1 is not a teardown signal; stderr:\n{}",
        out.stderr
    );
    assert_no_survivors(g.marker());
    assert_no_leaf(out.pid);
    result
}

#[test]
fn command_alone_by_default() {
    let got = usr1_reaches("command", Mode::Cgroup);
    assert_eq!(
        got,
        Got {
            command: true,
            group_child: false,
            daemon: false
        }
    );
}

#[test]
fn group_reaches_the_command_group() {
    for mode in [Mode::Cgroup, Mode::Pgroup, Mode::CgroupPidNs] {
        let got = usr1_reaches("group", mode);
        assert_eq!(
            got,
            Got {
                command: true,
                group_child: true,
                daemon: false
            },
            "{mode:?}"
        );
    }
}

#[test]
fn all_reaches_every_process_of_the_run() {
    for mode in [Mode::Cgroup, Mode::Pgroup, Mode::PgroupPidNs] {
        let got = usr1_reaches("all", mode);
        assert_eq!(
            got,
            Got {
                command: true,
                group_child: true,
                daemon: true
            },
            "{mode:?}"
        );
    }
}

#[test]
fn forward_to_banana_is_refused() {
    let g = Guard::new("fwd_banana");
    let out = g
        .start(g.cg_test(&[
            "--forward-to",
            "banana",
            "--",
            "sh",
            "-c",
            &format!(": {}", g.marker()),
        ]))
        .finish();
    out.assert_code(125);
    let line = out.assert_one_error_line();
    assert!(line.contains("--forward-to"), "{line:?}");
    assert!(out.stdout.is_empty());
    assert_no_leaf(out.pid);
}
