use pool_runtime::prelude::*;

#[pool_main]
fn main() {}

#[pool_main]
fn two(_pool: &mut Pool, _extra: u32) {}

#[pool_main]
fn by_value(_pool: Pool) {}

#[pool_main]
fn shared(_pool: &Pool) {}

#[pool_main]
async fn asynchronous(_pool: &mut Pool) {}

#[pool_main]
fn generic<T>(_pool: &mut Pool) {}

#[pool_main(threads = 4)]
fn bad_args(_pool: &mut Pool) {}
