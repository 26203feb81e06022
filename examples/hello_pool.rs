//! The smallest pool program: square numbers on the workers.
//!
//! `cargo run --release --example hello_pool` (in-process) or
//! `mpirun -n 4 target/release/examples/hello_pool`.

use pool_runtime::prelude::*;

/// Squares a number; runs on a worker.
#[pool_task]
fn square(x: u64) -> u64 {
    x * x
}

// `Box<dyn Error>`: `?` works on the pool's errors and on any other (I/O, parsing, ...).
#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    let squares = pool.map(square, 0..10)?;
    println!("{} workers squared 0..10: {squares:?}", pool.workers());
    assert_eq!(square(7), 49, "a task is still an ordinary function");
    Ok(())
}
