//! Adversary scenarios: setuid (to be written).
