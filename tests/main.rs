//! The integration suite: one binary, one behaviour per module.
