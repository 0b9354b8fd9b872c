//! Property tests of cg-test's parsers (issue 18's fuzz lane, on stable; `fuzz/` holds
//! the cargo-fuzz targets for nightly): durations, sizes, signals, every value flag
//! through the real clap parser.
//!
//! A small hand-written PRNG (no crates) generates thousands of inputs per parser,
//! biased toward its grammar: digits, units, signs, dots, exponents, huge numbers,
//! unicode look-alikes (Arabic-Indic and mathematical digits, the Kelvin sign, `ſ`),
//! empty words and whitespace, valid examples with one character changed, and raw
//! bytes. Every input must parse without a panic, and what parses must keep the
//! parser's invariants (a positive duration is never zero; a value is what the
//! documented grammar says it is; a signal's name parses back to it). The binary test
//! runs cg-test itself on a sample of the inputs the parser refuses: exit 125 and
//! exactly one stderr line, which names the flag.
//!
//! CG_TEST_PROPERTY_CASES (4000 per property) and CG_TEST_PROPERTY_SEED (printed on a
//! failure) replay or lengthen a run. `test = false` in Cargo.toml: ci/test.sh runs it
//! as a step of its own (`cargo test --test properties`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cg_test::cli::{self, parse_duration, parse_signal, parse_size, signal_name, Invocation};

const CG_TEST: &str = env!("CARGO_BIN_EXE_cg-test");

// ---------------------------------------------------------------------------------
// Generation.

/// xorshift64*, seeded through splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// Pieces every grammar sees: whitespace, signs, dots, exponents, numbers at the edges
/// of every integer type, float specials, unicode that looks like digits or letters.
const COMMON: &[&str] = &[
    "",
    " ",
    "  ",
    "\t",
    "\n",
    "\r",
    "\u{a0}",
    "\u{2003}",
    "\u{feff}",
    "+",
    "-",
    "--",
    ".",
    "..",
    "e",
    "E",
    "e-",
    "e+",
    "_",
    ",",
    ":",
    "/",
    "0",
    "00",
    "1",
    "2",
    "5",
    "9",
    "10",
    "007",
    "0.5",
    ".5",
    "5.",
    "0.0",
    "-0",
    "1e3",
    "1e-10",
    "1E+2",
    "1e308",
    "1e309",
    "1e-320",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "2147483647",
    "2147483648",
    "-2147483648",
    "9007199254740993",
    "inf",
    "-inf",
    "infinity",
    "NaN",
    "nan",
    "0x10",
    "0x1p3",
    "0b1",
    "\u{661}",
    "\u{663}",
    "\u{1d7d7}",
    "\u{bd}",
    "\u{b5}",
    "\u{17f}",
    "\u{212a}",
    "\u{fb00}",
    "\u{e9}",
    "\u{0}",
    "\u{1f642}",
    "\u{202e}",
    "\u{ff15}",
];

const DURATION_TOKENS: &[&str] = &[
    "ms", "s", "m", "h", "d", "us", "\u{b5}s", "ns", "sec", "min", "S", "MS", "H", "D", "1", "15",
    "90", "500", "1.5", "30", "0",
];
const DURATION_EXAMPLES: &[&str] = &[
    "90s",
    "15m",
    "1h30m",
    "500ms",
    "1.5s",
    "2",
    "0",
    "1d",
    "0.25s",
    "1h0m0s",
    "3.2e9",
    "0.0000000001",
    "1e-10",
];

const SIZE_TOKENS: &[&str] = &[
    "b", "B", "k", "K", "kib", "KiB", "KIB", "m", "M", "MiB", "g", "G", "GiB", "t", "T", "TiB",
    "p", "P", "PiB", "MB", "kB", "i", "iB", "1", "64", "512", "1.5", "1024", "0",
];
const SIZE_EXAMPLES: &[&str] = &[
    "512M", "2G", "1.5G", "1000", "1000B", "4K", "1T", "64MiB", "0", "16383T", "0.5B",
];

/// The real-time forms several times over: they are where the grammar has structure.
const SIGNAL_TOKENS: &[&str] = &[
    "SIG",
    "sig",
    "Sig",
    "RTMIN",
    "RTMAX",
    "rtmin",
    "RtMax",
    "RTMIN+",
    "RTMAX-",
    "RTMIN+",
    "RTMAX-",
    "rtmin+",
    "SIGRTMAX-",
    "TERM",
    "KILL",
    "HUP",
    "INT",
    "QUIT",
    "USR1",
    "IOT",
    "CLD",
    "POLL",
    "PWR",
    "STKFLT",
    "WINCH",
    "ZERO",
    "EXIT",
    "0",
    "1",
    "3",
    "15",
    "16",
    "30",
    "31",
    "32",
    "33",
    "34",
    "35",
    "64",
    "65",
    "-1",
    "+15",
];
const SIGNAL_EXAMPLES: &[&str] = &[
    "TERM", "SIGTERM", "term", "15", "KILL", "IOT", "RTMIN", "RTMIN+3", "RTMAX-2", "SIGRTMAX",
    "POLL", "CLD", "PWR",
];

/// Numbers at the edges of integer types, for the pieces of a grammar that take one
/// (`RTMIN+2147483647`).
#[rustfmt::skip]
const EDGES: &[&str] = &[
    "127", "128", "255", "256", "32767", "32768", "65535", "65536", "2147483614",
    "2147483620", "2147483647", "2147483648", "4294967295", "4294967296",
    "9223372036854775807", "9223372036854775808", "18446744073709551615",
    "18446744073709551616",
];

/// One input for a grammar: mostly tokens of the grammar and common pieces glued
/// together; also mutated examples, huge digit runs, grammar pieces around edge
/// numbers, and arbitrary characters.
fn input(rng: &mut Rng, tokens: &[&str], examples: &[&str]) -> String {
    match rng.below(9) {
        0 => {
            // A valid example with one piece inserted, deleted or replaced.
            let mut s: Vec<char> = rng.pick(examples).chars().collect();
            let at = rng.below(s.len() + 1);
            match rng.below(3) {
                0 => s.splice(at..at, rng.pick(COMMON).chars()).for_each(drop),
                1 if at < s.len() => {
                    s.remove(at);
                }
                _ if at < s.len() => {
                    s.splice(at..=at, rng.pick(tokens).chars()).for_each(drop);
                }
                _ => s.extend(rng.pick(tokens).chars()),
            }
            s.into_iter().collect()
        }
        1 => {
            // A huge number, maybe with a fraction and a unit.
            let digits: String = (0..20 + rng.below(380))
                .map(|_| char::from(b'0' + rng.below(10) as u8))
                .collect();
            let frac = if rng.chance(30) { ".5" } else { "" };
            format!("{digits}{frac}{}", rng.pick(tokens))
        }
        2 => {
            // A piece of the grammar, an edge number, maybe another piece.
            let after = if rng.chance(50) { "" } else { rng.pick(tokens) };
            format!("{}{}{after}", rng.pick(tokens), rng.pick(EDGES))
        }
        3 => {
            // Arbitrary characters, from ASCII to the astral planes.
            (0..rng.below(8))
                .map(|_| {
                    let c = match rng.below(3) {
                        0 => rng.below(0x80) as u32,
                        1 => rng.below(0x3000) as u32,
                        _ => rng.below(0x11_0000) as u32,
                    };
                    char::from_u32(c).unwrap_or('\u{fffd}')
                })
                .collect()
        }
        _ => (0..1 + rng.below(6))
            .map(|_| {
                if rng.chance(60) {
                    rng.pick(tokens)
                } else {
                    rng.pick(COMMON)
                }
            })
            .collect(),
    }
}

/// The number of cases per property, the seed (both from the environment; the seed is
/// what CG_TEST_PROPERTY_SEED replays) and the property's own generator.
fn setup(name: &str) -> (usize, u64, Rng) {
    let cases = std::env::var("CG_TEST_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let seed = std::env::var("CG_TEST_PROPERTY_SEED")
        .ok()
        .and_then(|v| {
            let v = v.trim();
            v.strip_prefix("0x")
                .map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    // One stream per property, so that adding a property does not change the others.
    let salt = name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    (cases, seed, Rng::new(seed ^ salt))
}

/// Run `check` on `cases` inputs; collect what failed (a panic is a failure), and fail
/// the test once with every failure and the seed.
fn property(
    name: &str,
    gen: impl Fn(&mut Rng) -> String,
    check: impl Fn(&str) -> Result<(), String>,
) {
    let (cases, seed, mut rng) = setup(name);
    let mut failures = Vec::new();
    // A panic is caught and reported with its input; silence the default hook's
    // message for each one (the report below names them all).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..cases {
        let s = gen(&mut rng);
        match catch_unwind(AssertUnwindSafe(|| check(&s))) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{s:?}: {why}")),
            Err(p) => failures.push(format!("{s:?}: panicked: {}", panic_text(&p))),
        }
    }
    std::panic::set_hook(hook);
    failures.sort();
    failures.dedup();
    assert!(
        failures.is_empty(),
        "{name}: {} of {cases} inputs failed (CG_TEST_PROPERTY_SEED={:#x} replays \
         them):\n{}",
        failures.len(),
        seed,
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{name}: {cases} inputs, seed {seed:#x}: ok");
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------
// The documented grammars, written out again: the parsers must agree with them.

/// `--timeout`'s grammar: a bare number of seconds (what Rust's f64 parser takes), or
/// `<number><unit>` parts (`[0-9.]+` and ms, s, m, h, d). The value in seconds.
fn duration_reference(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(x) = s.parse::<f64>() {
        return Some(x);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .char_indices()
            .find(|&(_, c)| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let scale = match &rest[..u] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Some(total)
}

/// `--memory-max`'s grammar: `[0-9.]+` then nothing, B, K/KiB, M/MiB, G/GiB, T/TiB in
/// any case; no leading or trailing dot. The value in bytes, before rounding down.
fn size_reference(s: &str) -> Option<f64> {
    let s = s.trim();
    let n = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, unit) = s.split_at(n);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => return None,
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    Some(number.parse::<f64>().ok()? * (1u64 << shift) as f64)
}

// ---------------------------------------------------------------------------------
// The properties.

/// The longest duration cg-test takes (about 100 years), in seconds.
const DURATION_CAP: f64 = 3.2e9;

#[test]
fn durations_parse_as_the_grammar_says_and_a_positive_one_is_never_zero() {
    property(
        "durations",
        |rng| input(rng, DURATION_TOKENS, DURATION_EXAMPLES),
        |s| {
            let reference = duration_reference(s).filter(|x| x.is_finite());
            match (parse_duration(s), reference) {
                (Ok(d), Some(x)) => {
                    if x > 0.0 && d.is_zero() {
                        return Err(format!("{x} s, a positive duration, parsed to zero"));
                    }
                    if !(0.0..=DURATION_CAP).contains(&x) {
                        return Err(format!("{x} s is outside 0..={DURATION_CAP} but parsed"));
                    }
                    let got = d.as_secs_f64();
                    // f64 seconds to whole nanoseconds, or 1 ns for a tiny positive one.
                    if (got - x).abs() > 1e-9 + x * 1e-12 && !(got == 1e-9 && x < 1e-9) {
                        return Err(format!("parsed to {got} s, the grammar says {x} s"));
                    }
                    Ok(())
                }
                (Ok(d), None) => Err(format!("parsed to {d:?}, which the grammar refuses")),
                (Err(_), Some(x)) if (0.0..=DURATION_CAP).contains(&x) => {
                    Err(format!("refused, though the grammar says {x} s"))
                }
                (Err(e), _) if e.lines().count() != 1 || e.is_empty() => {
                    Err(format!("the error is not one line: {e:?}"))
                }
                (Err(_), _) => Ok(()),
            }
        },
    );
}

#[test]
fn sizes_parse_as_the_grammar_says() {
    property(
        "sizes",
        |rng| input(rng, SIZE_TOKENS, SIZE_EXAMPLES),
        |s| {
            let reference = size_reference(s).filter(|x| x.is_finite());
            match (parse_size(s), reference) {
                (Ok(n), Some(x)) => {
                    // Exact for whole numbers; a fraction of a byte is dropped, within
                    // f64's precision at that size.
                    let n = n as f64;
                    if n > x + x * 1e-15 || n < (x - 1.0) - x * 1e-15 {
                        return Err(format!("parsed to {n} bytes, the grammar says {x}"));
                    }
                    Ok(())
                }
                (Ok(n), None) => Err(format!("parsed to {n} bytes, which the grammar refuses")),
                (Err(_), Some(x)) if x < 1.8e19 => {
                    Err(format!("refused, though the grammar says {x} bytes"))
                }
                (Err(_), _) => Ok(()),
            }
        },
    );
}

#[test]
fn signals_parse_to_real_signals_whose_names_parse_back() {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    property(
        "signals",
        |rng| input(rng, SIGNAL_TOKENS, SIGNAL_EXAMPLES),
        |s| match parse_signal(s) {
            Ok(n) => {
                if !(1..=max).contains(&n) || (32..min).contains(&n) {
                    return Err(format!("parsed to {n}, not a signal cg-test can send"));
                }
                let name = signal_name(n);
                match parse_signal(&name) {
                    Ok(back) if back == n => Ok(()),
                    other => Err(format!("{n} is named {name:?}, which parses to {other:?}")),
                }
            }
            Err(e) if e.lines().count() != 1 => Err(format!("the error is not one line: {e:?}")),
            Err(_) => Ok(()),
        },
    );
}

/// The value flags, each with what must come before it on the command line, and the
/// name its errors must carry.
const FLAGS: &[(&str, &[&str], &str)] = &[
    ("-t", &[], "--timeout"),
    ("--timeout", &[], "--timeout"),
    ("-k", &[], "--kill-after"),
    ("--leak-timeout", &[], "--leak-timeout"),
    ("-s", &[], "--signal"),
    ("--signal", &[], "--signal"),
    ("--memory-max", &[], "--memory-max"),
    (
        "--memory-swap-max",
        &["--memory-max", "1G"],
        "--memory-swap-max",
    ),
    ("--pids-max", &[], "--pids-max"),
    ("--cpus", &[], "--cpus"),
];

fn grammar_of(flag: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match flag {
        "-t" | "--timeout" | "-k" | "--leak-timeout" => (DURATION_TOKENS, DURATION_EXAMPLES),
        "-s" | "--signal" => (SIGNAL_TOKENS, SIGNAL_EXAMPLES),
        _ => (SIZE_TOKENS, SIZE_EXAMPLES),
    }
}

/// `cg-test [BEFORE...] FLAG VALUE -- true`.
fn argv(flag: &str, before: &[&str], value: &OsStr) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["cg-test".into()];
    v.extend(before.iter().map(OsString::from));
    v.push(flag.into());
    v.push(value.to_os_string());
    v.extend(["--", "true"].map(OsString::from));
    v
}

/// The in-process verdict on a command line: Ok (it would run) or the error text, as
/// the binary prints it before folding it into one line.
fn verdict(argv: Vec<OsString>) -> Result<(), String> {
    match cli::parse(argv) {
        Ok(Invocation::Run(args)) => cg_test::Config::from_args(args)
            .map(drop)
            .map_err(|e| format!("{e:#}")),
        Ok(other) => Err(format!("not a run: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// One value for a flag: a string of its grammar, sometimes bytes that are not UTF-8.
fn value_for(rng: &mut Rng, flag: &str) -> OsString {
    let (tokens, examples) = grammar_of(flag);
    let s = input(rng, tokens, examples);
    if rng.chance(5) {
        let mut b = s.into_bytes();
        b.insert(rng.below(b.len() + 1), [0xff, 0xc3, 0x80][rng.below(3)]);
        b.retain(|&c| c != 0);
        return OsString::from_vec(b);
    }
    OsString::from(s.replace('\0', ""))
}

#[test]
fn every_value_flag_refuses_in_one_line_that_names_it() {
    let (cases, seed, mut rng) = setup("flags");
    let mut failures = Vec::new();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..cases {
        let (flag, before, name) = FLAGS[i % FLAGS.len()];
        let value = value_for(&mut rng, flag);
        let v = argv(flag, before, &value);
        match catch_unwind(AssertUnwindSafe(|| verdict(v))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) if !e.contains(name) => failures.push(format!(
                "{flag} {value:?}: the error names no {name}: {e:?}"
            )),
            Ok(Err(_)) => {}
            Err(p) => failures.push(format!("{flag} {value:?}: panicked: {}", panic_text(&p))),
        }
    }
    std::panic::set_hook(hook);
    failures.sort();
    failures.dedup();
    assert!(
        failures.is_empty(),
        "{} of {cases} flag values failed (CG_TEST_PROPERTY_SEED={seed:#x}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The binary on bad values: a fixed list (each a finding of this lane, or an edge of
/// a grammar) and a generated sample of what the parser refuses.
#[test]
fn the_binary_refuses_bad_values_with_125_and_one_line_naming_the_flag() {
    let fixed: &[(&str, &[u8])] = &[
        ("-t", b""),
        ("-t", b" "),
        ("-t", b"-5"),
        ("-t", b"-0.5s"),
        ("-t", b"5x"),
        ("-t", b"1e99"),
        ("-t", b"inf"),
        ("-t", b"\xff"),
        ("-k", b"-1"),
        ("--leak-timeout", b"NaN"),
        ("-s", b"RTMIN+2147483647"),
        ("-s", b"RTMAX-2147483647"),
        ("-s", b"-9"),
        ("-s", b"0"),
        ("-s", b"SIGSIGTERM"),
        ("--memory-max", b"0"),
        ("--memory-max", b"0.5B"),
        ("--memory-max", b"1e9"),
        ("--memory-max", b"99999999999T"),
        ("--memory-swap-max", b"-1"),
        ("--pids-max", b"0"),
        ("--cpus", b"NaN"),
    ];
    let mut cases: Vec<(&str, &[&str], &str, OsString)> = fixed
        .iter()
        .map(|&(flag, value)| {
            let &(_, before, name) = FLAGS.iter().find(|f| f.0 == flag).unwrap();
            (flag, before, name, OsStr::from_bytes(value).to_os_string())
        })
        .collect();
    let (n, seed, mut rng) = setup("binary");
    // A sample: the binary costs a process per case.
    let sample = (n / 20).max(40);
    let mut tries = 0;
    while cases.len() < fixed.len() + sample && tries < sample * 50 {
        tries += 1;
        let (flag, before, name) = FLAGS[rng.below(FLAGS.len())];
        let value = value_for(&mut rng, flag);
        if verdict(argv(flag, before, &value)).is_err() {
            cases.push((flag, before, name, value));
        }
    }
    let mut failures = Vec::new();
    for (flag, before, name, value) in &cases {
        let out = std::process::Command::new(CG_TEST)
            .args(&argv(flag, before, value)[1..])
            .env_remove("GITHUB_ACTIONS")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running cg-test");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let ok = out.status.code() == Some(125)
            && lines.len() == 1
            && lines[0].starts_with("cg-test: ")
            && lines[0].contains(name)
            && out.stdout.is_empty();
        if !ok {
            failures.push(format!(
                "{flag} {value:?}: exit {:?}, stderr {stderr:?}",
                out.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad values (CG_TEST_PROPERTY_SEED={seed:#x}) did not give exit 125 and one line naming \
         the flag:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("binary: {} bad values, seed {seed:#x}: ok", cases.len());
}

// ---------------------------------------------------------------------------------
