//! Reading the `--report` file: parse it, fetch fields with a clear failure message,
//! and turn its RFC 3339 timestamps back into times.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use serde_json::Value;

/// Parse the report at `path`; fails the test with the file's text if it is not JSON.
pub fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the report {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the report {} is not JSON ({e}):\n{text}", path.display()))
}

/// The keys every report has, in schema version 1.
pub const KEYS: &[&str] = &[
    "version",
    "cg_test_version",
    "command",
    "run_id",
    "isolation",
    "boundary",
    "outcome",
    "exit_code",
    "command_exit",
    "started_at",
    "wall_seconds",
    "cpu_user_seconds",
    "cpu_system_seconds",
    "cpu_source",
    "memory_peak_bytes",
    "memory_peak_scope",
    "pids_peak",
    "oom_kills",
    "leaked",
    "at_timeout",
    "error",
];

/// Assert the report has exactly the schema's keys.
pub fn assert_keys(r: &Value) {
    let mut keys: Vec<&str> = r
        .as_object()
        .expect("the report is an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    let mut want = KEYS.to_vec();
    want.sort();
    assert_eq!(keys, want, "report keys");
}

/// A number field as f64 (fails the test if it is missing or not a number).
pub fn f64_of(r: &Value, key: &str) -> f64 {
    r[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} should be a number: {}", r[key]))
}

/// A string field (fails the test if it is missing or not a string).
pub fn str_of<'a>(r: &'a Value, key: &str) -> &'a str {
    r[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} should be a string: {}", r[key]))
}

/// An argv array of the report as strings (a `{"hex": …}` argument decoded lossily).
pub fn args_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of arguments: {v}"))
        .iter()
        .map(|a| match a {
            Value::String(s) => s.clone(),
            Value::Object(o) => String::from_utf8_lossy(&unhex(o["hex"].as_str().unwrap())).into(),
            other => panic!("an argument is a string or {{\"hex\": …}}: {other}"),
        })
        .collect()
}

/// The bytes of a hex string.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Parse `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn parse_rfc3339(s: &str) -> SystemTime {
    let bad = || panic!("not an RFC 3339 UTC time with milliseconds: {s:?}");
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[23] != b'Z' {
        bad();
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap_or_else(|_| bad());
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm, ss, ms) = (num(11..13), num(14..16), num(17..19), num(20..23));
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_millis(ms as u64)
}
