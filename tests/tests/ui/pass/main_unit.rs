use pool_runtime::prelude::*;

#[pool_task]
fn square(x: u64) -> u64 {
    x * x
}

#[pool_main]
fn main(pool: &mut Pool) {
    assert_eq!(pool.map(square, [2, 3]).unwrap(), [4, 9]);
}
