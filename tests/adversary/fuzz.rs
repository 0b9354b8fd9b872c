//! Adversary scenarios: fuzz (to be written).
