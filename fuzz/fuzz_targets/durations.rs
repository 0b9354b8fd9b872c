//! `parse_duration` on arbitrary bytes: no panic; what parses is at most the cap, and a
//! positive number of seconds never parses to zero.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(d) = cg_test::cli::parse_duration(&s) {
        assert!(d.as_secs_f64() <= 3.2e9 + 1.0, "{s:?} parsed to {d:?}");
        if s.trim().parse::<f64>().is_ok_and(|x| x > 0.0) {
            assert!(!d.is_zero(), "{s:?}, a positive duration, parsed to zero");
        }
    }
});
