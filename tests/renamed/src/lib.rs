//! Renamed crate check.
