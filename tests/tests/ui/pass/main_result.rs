use std::error::Error as StdError;

use pool_runtime::{Pool, pool_main, pool_task};

#[pool_task]
fn square(x: u64) -> u64 {
    x * x
}

/// Any `Result<(), E>` with `E: Debug` works, as for Rust's own `main`.
#[pool_main]
pub fn main(pool: &mut Pool) -> Result<(), Box<dyn StdError>> {
    let squares = pool.map(square, [2, 3])?;
    assert_eq!(squares, [4, 9]);
    let n: u64 = "12".parse()?;
    assert_eq!(pool.submit(square, n).wait()?, 144);
    Ok(())
}
