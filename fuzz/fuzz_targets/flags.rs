//! Every value flag through the real command-line parser: the first byte picks the flag,
//! the rest is its value (any bytes but NUL). No panic; a refusal names the flag.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;

use cg_test::cli::{self, Invocation};

const FLAGS: &[(&str, &[&str], &str)] = &[
    ("-t", &[], "--timeout"),
    ("-k", &[], "--kill-after"),
    ("--leak-timeout", &[], "--leak-timeout"),
    ("-s", &[], "--signal"),
    ("--memory-max", &[], "--memory-max"),
    ("--memory-swap-max", &["--memory-max", "1G"], "--memory-swap-max"),
    ("--pids-max", &[], "--pids-max"),
    ("--cpus", &[], "--cpus"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, value)) = data.split_first() else {
        return;
    };
    let (flag, before, name) = FLAGS[which as usize % FLAGS.len()];
    let mut argv: Vec<OsString> = vec!["cg-test".into()];
    argv.extend(before.iter().map(OsString::from));
    argv.push(flag.into());
    argv.push(OsString::from_vec(value.iter().copied().filter(|&b| b != 0).collect()));
    argv.extend(["--", "true"].map(OsString::from));
    let refused = match cli::parse(argv) {
        Ok(Invocation::Run(args)) => cg_test::Config::from_args(args).err().map(|e| format!("{e:#}")),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    if let Some(e) = refused {
        assert!(e.contains(name), "{flag} {value:?}: the error names no {name}: {e:?}");
    }
});
