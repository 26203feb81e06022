//! The expansion needs no `#[allow]` of these lints, so even `forbid` works.
#![forbid(
    non_camel_case_types,
    non_snake_case,
    unused_qualifications,
    missing_docs,
    deprecated,
    unused
)]
#![deny(warnings)]

use pool_runtime::prelude::*;

/// A lowercase task name becomes a lowercase type name without a lint.
#[pool_task]
pub fn square(x: u64) -> u64 {
    x * x
}

/// A fallible task.
///
/// # Errors
///
/// When `s` is empty.
#[pool_task]
pub fn length(s: String) -> Result<usize, String> {
    if s.is_empty() {
        Err("empty".to_owned())
    } else {
        Ok(s.len())
    }
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    assert_eq!(pool.map(square, [2])?, [4]);
    assert_eq!(pool.map(length, ["ab".to_owned()])?, [2]);
    Ok(())
}
