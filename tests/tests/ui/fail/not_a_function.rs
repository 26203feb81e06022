use pool_runtime::prelude::*;

#[pool_task]
struct Square;

#[pool_task]
const LIMIT: u32 = 4;

#[pool_main]
struct Main;

fn main() {
    // The items are still emitted.
    let _ = Square;
    let _ = Main;
    let _ = LIMIT;
}
