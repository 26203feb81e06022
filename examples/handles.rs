//! `submit` at scale: N handles submitted, then waited, for N up to 100,000; one JSON line
//! per N with the seconds it took. Linear time means a constant time per handle.
//!
//! ```text
//! cargo run --release -p examples --example handles            # one process
//! mpirun -n 3 target/release/examples/handles                   # 2 worker processes
//! ```

use std::time::Instant;

use pool_runtime::prelude::*;

#[pool_task]
fn double(x: u64) -> u64 {
    2 * x
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    for n in [5_000u64, 20_000, 40_000, 100_000] {
        let started = Instant::now();
        let handles: Vec<_> = (0..n).map(|x| pool.submit(double, x)).collect();
        let mut sum = 0u64;
        for handle in handles {
            sum += handle.wait()?;
        }
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(sum, n * (n - 1));
        println!(
            "{{\"handles\":{n},\"workers\":{},\"seconds\":{seconds:.4},\"us_per_handle\":{:.2}}}",
            pool.workers(),
            seconds * 1e6 / n as f64
        );
    }
    Ok(())
}
