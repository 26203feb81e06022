//! Test program: two tasks claim the same name, which must stop the pool at start-up.
#![deny(warnings)]

use pool_runtime::prelude::*;

/// One.
#[pool_task(name = "same")]
fn one(x: u8) -> u8 {
    x
}

/// Two.
#[pool_task(name = "same")]
fn two(x: u8) -> u8 {
    x
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    pool.map(one, [1])?;
    pool.map(two, [2])?;
    Ok(())
}
