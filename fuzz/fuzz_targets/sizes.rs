//! `parse_size` on arbitrary bytes: no panic; a whole number of bytes parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let parsed = cg_test::cli::parse_size(&s);
    if let Ok(n) = s.trim().parse::<u64>() {
        if !s.trim().starts_with('+') {
            assert_eq!(parsed, Ok(n), "{s:?}");
        }
    }
});
