//! Adversary scenarios: gc_ns (to be written).
