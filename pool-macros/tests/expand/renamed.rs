// The runtime under another name: `[dependencies] my_pool = { package = "pool-runtime" }`.
#[my_pool::pool_task(crate = "::my_pool")]
fn negate(x: i64) -> i64 {
    -x
}

#[my_pool::pool_main(crate = "::my_pool")]
fn main(pool: &mut my_pool::Pool) {
    println!("{} workers", pool.workers());
}
