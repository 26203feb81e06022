//! Without the macro: `Launch` runs a closure (it may capture) on every rank before the pool
//! starts.
use pool_runtime::{Error, Launch, Pool, pool_task};

#[pool_task]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let level = String::from("debug");
    Launch::new()
        .init(move || assert_eq!(level, "debug"))
        .run(|pool: &mut Pool| -> Result<(), Error> {
            assert_eq!(pool.map(square, [3])?, [9]);
            // In the same process, a pool of threads that returns.
            let again = pool_runtime::local(1, |local: &mut Pool| local.map(square, [4]))?;
            assert_eq!(again, [16]);
            Ok(())
        })
}
