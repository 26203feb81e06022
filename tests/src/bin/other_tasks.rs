//! Test program with a different set of tasks than `scenarios`: started as a worker next to a
//! `scenarios` master (MPMD), it must make the start-up handshake fail with a clear error.
#![deny(warnings)]

use pool_runtime::prelude::*;

/// A task only this program has.
#[pool_task]
fn only_here(x: u8) -> u8 {
    x
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    assert_eq!(pool.map(only_here, [1])?, [1]);
    Ok(())
}
