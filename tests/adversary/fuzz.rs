//! The parsers' fuzzing is a test target of its own, `tests/properties.rs` (generated
//! inputs on stable, run by ci/test.sh as a step of its own), with cargo-fuzz targets for
//! nightly in `fuzz/`; RELIABILITY.md records the runs.
