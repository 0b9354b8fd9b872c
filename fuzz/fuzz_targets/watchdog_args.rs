//! The watchdog's teardown argument parser on arbitrary words (the input split at NUL
//! bytes): no panic. It acts on nothing (cg_test::watchdog::fuzzing).
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let words: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|w| OsString::from_vec(w.to_vec()))
        .collect();
    let _ = cg_test::watchdog::fuzzing::parse_words(&words);
});
