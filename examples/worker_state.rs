//! `WorkerState`: an expensive set-up (here, a table of twiddle factors, as an FFT plan
//! would be) built once per worker and used by every task that runs there.
//!
//! `mpirun -n 4 target/release/examples/worker_state`

use std::sync::atomic::{AtomicUsize, Ordering};

use pool_runtime::prelude::*;

/// Built once per worker process (once per worker thread in one process).
static BUILT: AtomicUsize = AtomicUsize::new(0);

/// A precomputed plan: cosines of one period.
struct Plan {
    cosines: Vec<f64>,
}

impl WorkerState for Plan {
    fn init(ctx: &WorkerContext) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        BUILT.fetch_add(1, Ordering::SeqCst);
        let n = 4096;
        let cosines = (0..n)
            .map(|k| (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos())
            .collect();
        eprintln!("worker {} of {}: plan built", ctx.worker(), ctx.workers());
        Ok(Plan { cosines })
    }
}

/// The power at one frequency of a synthetic run; uses the worker's plan.
#[pool_task]
fn power(plan: &Plan, freq: usize) -> (f64, usize) {
    let n = plan.cosines.len();
    let p: f64 = (0..n)
        .map(|t| plan.cosines[(freq * t) % n] * plan.cosines[(3 * t) % n])
        .sum();
    (p / n as f64, BUILT.load(Ordering::SeqCst))
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    let out = pool.map(power, 0..2000)?;
    let peak = out
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.0.total_cmp(&b.1.0))
        .map(|(f, _)| f);
    assert_eq!(peak, Some(3), "the synthetic signal's frequency");
    // Every process built at most as many plans as it has workers: one under mpirun.
    let builds = out.iter().map(|o| o.1).max().unwrap_or(0);
    assert!(builds >= 1 && builds <= pool.workers());
    println!(
        "peak at frequency 3; {} workers, each built its plan once",
        pool.workers()
    );
    Ok(())
}
