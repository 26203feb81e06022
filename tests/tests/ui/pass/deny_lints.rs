//! Expansions of `#[pool_task]` and `#[pool_main]` are warning-free under strict lints.
#![deny(warnings)]
#![deny(
    missing_docs,
    missing_debug_implementations,
    missing_copy_implementations,
    unused_qualifications,
    unused_results,
    unused_extern_crates,
    unused_import_braces,
    unreachable_pub,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    rust_2018_idioms,
    elided_lifetimes_in_paths,
    single_use_lifetimes,
    trivial_casts,
    trivial_numeric_casts,
    unused_lifetimes,
    variant_size_differences,
    let_underscore_drop,
    clippy::all,
    clippy::pedantic
)]
#![forbid(unsafe_code)]

use pool_runtime::prelude::*;

/// A documented public task.
#[pool_task]
pub fn square(x: u64) -> u64 {
    x * x
}

/// A documented public task with several arguments and a fallible result.
///
/// # Errors
///
/// When `b` is zero.
#[pool_task]
pub fn divide(a: u64, b: u64) -> Result<u64, String> {
    a.checked_div(b)
        .ok_or_else(|| "division by zero".to_owned())
}

// A private task needs no docs.
#[pool_task]
fn private(s: String) -> usize {
    s.len()
}

/// A task in a private module.
mod inner {
    use pool_runtime::pool_task;

    /// Visible in the crate only.
    #[pool_task]
    pub(crate) fn negate(x: i64) -> i64 {
        -x
    }
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    assert_eq!(pool.map(square, [2])?, [4]);
    assert_eq!(pool.map(divide, [(4, 2)])?, [2]);
    assert_eq!(pool.map(private, ["ab".to_owned()])?, [2]);
    assert_eq!(pool.map(inner::negate, [1])?, [-1]);
    assert_eq!(square(3), 9);
    Ok(())
}
