//! `links = "pool-runtime"` needs a build script; this one does nothing.
fn main() {}
