//! The chaos soak is a test target of its own, `tests/soak.rs` (it runs for minutes, so
//! plain `cargo test` skips it; ci/test.sh runs it as a step of its own, and
//! RELIABILITY.md keeps its figures).
