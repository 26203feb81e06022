//! Test program: `#[pool_main(workers = 2)]`, a program that spawns its own workers when
//! started as a single process. Run by `tests/spawn.rs`.
#![deny(warnings)]

use pool_runtime::prelude::*;
use tests::square;

#[pool_main(workers = 2)]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let squares = pool.map(square, 0..1000)?;
    assert_eq!(squares, (0..1000).map(|x| x * x).collect::<Vec<u64>>());
    println!("squares right with {} workers", pool.workers());
    Ok(())
}
