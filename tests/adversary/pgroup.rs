//! Adversary scenarios: pgroup (to be written).
