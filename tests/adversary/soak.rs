//! Adversary scenarios: soak (to be written).
