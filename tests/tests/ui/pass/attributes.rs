use pool_runtime::prelude::*;

/// Doc comments stay on the task.
///
/// # Examples
///
/// ```ignore
/// assert_eq!(documented(2), 4);
/// ```
#[pool_task]
#[allow(clippy::needless_pass_by_value)]
#[inline]
#[must_use]
fn documented(x: u32) -> u32 {
    x * 2
}

/// Attributes before the macro work too.
#[allow(unused_mut)]
#[pool_task]
#[deny(unused_variables)]
fn before(mut v: Vec<u32>) -> usize {
    v.len()
}

#[pool_task]
#[cfg(any(unix, windows))]
fn enabled(x: u8) -> u8 {
    x
}

#[pool_task]
#[cfg(any())]
fn disabled(x: u8) -> u8 {
    x
}

#[pool_task]
#[deprecated = "use `documented`"]
fn old(x: u32) -> u32 {
    x
}

// Pattern arguments and `mut` bindings.
#[pool_task]
fn patterns((a, b): (u32, u32), [c, _]: [u32; 2], _: String, mut d: u32) -> u32 {
    d += 1;
    a + b + c + d
}

#[pool_task]
const fn constant(x: u32) -> u32 {
    x + 1
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    assert_eq!(pool.map(documented, [1])?, [2]);
    assert_eq!(pool.map(before, [vec![1, 2]])?, [2]);
    assert_eq!(pool.map(enabled, [3])?, [3]);
    assert_eq!(
        pool.map(patterns, [((1, 2), [3, 4], String::new(), 4)])?,
        [11]
    );
    assert_eq!(pool.map(constant, [1])?, [2]);
    #[allow(deprecated)]
    let v = pool.map(old, [1])?;
    assert_eq!(v, [1]);
    Ok(())
}
