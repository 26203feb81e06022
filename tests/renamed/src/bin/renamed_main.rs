//! `#[pool_main]` with the runtime renamed.

use my_pool::{Error, Pool};

#[my_pool::pool_main(crate = "::my_pool")]
fn main(pool: &mut Pool) -> Result<(), Error> {
    assert_eq!(pool.map(renamed::double, 0..5)?, [0, 2, 4, 6, 8]);
    println!("renamed ok");
    Ok(())
}
