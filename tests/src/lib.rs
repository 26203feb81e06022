//! Tasks in a library crate, used by the test binaries.
