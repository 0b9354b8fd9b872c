//! `parse_signal` on arbitrary bytes: no panic; a signal that parses has a name that
//! parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;

use cg_test::cli::{parse_signal, signal_name};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(n) = parse_signal(&s) {
        assert!((1..=libc_sigrtmax()).contains(&n), "{s:?} parsed to {n}");
        let name = signal_name(n);
        assert_eq!(parse_signal(&name), Ok(n), "{s:?} -> {n} -> {name:?}");
    }
});

/// SIGRTMAX, read back through the parser itself (the fuzz crate has no libc).
fn libc_sigrtmax() -> i32 {
    parse_signal("RTMAX").unwrap_or(64)
}
