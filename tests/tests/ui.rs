//! Compile-time tests of `#[pool_task]` and `#[pool_main]`: programs that must build (and
//! run) in `tests/ui/pass`, and misuses whose diagnostics are pinned in `tests/ui/fail`.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p tests --test ui`
//! and review the diff of every `.stderr` file.

#[rustversion::stable]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
