//! Adversary scenarios: mounts (to be written).
