//! Adversary scenarios: watchdog (to be written).
