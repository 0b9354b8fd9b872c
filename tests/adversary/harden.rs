//! Adversary scenarios: harden (to be written).
