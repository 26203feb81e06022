#![allow(dead_code)]

use pool_runtime::prelude::*;

fn takes_a_level(_level: u32) {}

fn returns_a_number() -> u32 {
    4
}

const NOT_A_FUNCTION: u32 = 4;

#[pool_main(init = takes_a_level)]
fn wrong_arguments(_pool: &mut Pool) {}

#[pool_main(init = returns_a_number)]
fn wrong_return(_pool: &mut Pool) {}

#[pool_main(init = NOT_A_FUNCTION, workers = 2)]
fn a_constant(_pool: &mut Pool) {}

/// The user's function is kept, and so is `main`'s body: it can still be called.
#[pool_main(init = takes_a_level)]
fn kept(pool: &mut Pool) -> Result<(), Error> {
    let _ = pool.workers();
    Ok(())
}

fn main() {}
