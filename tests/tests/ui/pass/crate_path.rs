//! `crate = "..."` names the runtime when it is known under another name.
extern crate pool_runtime as my_pool;

use my_pool::{Pool, pool_main, pool_task};

#[pool_task(crate = "::my_pool")]
fn square(x: u64) -> u64 {
    x * x
}

#[pool_task(crate = "my_pool", name = "crate_path::cube")]
fn cube(x: u64) -> u64 {
    x * x * x
}

#[pool_main(crate = "::my_pool")]
fn main(pool: &mut Pool) -> Result<(), my_pool::Error> {
    assert_eq!(pool.map(square, [3])?, [9]);
    assert_eq!(pool.map(cube, [2])?, [8]);
    Ok(())
}
