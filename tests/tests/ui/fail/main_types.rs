use pool_runtime::prelude::*;

#[pool_main]
fn main(pool: &mut Pool) -> i32 {
    pool.workers() as i32
}

#[pool_main]
fn not_a_pool(pool: &mut String) {
    pool.clear();
}

#[derive(Debug)]
struct Done;

#[pool_main]
fn ok_value(_pool: &mut Pool) -> Result<u32, Done> {
    Ok(1)
}
