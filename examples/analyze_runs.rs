//! Many synthetic experiment runs, analysed independently on the workers.
//!
//! Each run is a deterministic series of noisy samples (so every execution gives the same
//! numbers); `analyze` computes its summary statistics. Inputs are generated lazily: the master
//! never holds all runs in memory.
//!
//! ```text
//! cargo run --release --example analyze_runs                  # one process, all cores
//! mpirun -n 4 target/release/examples/analyze_runs [RUNS]     # 1 master + 3 workers
//! ```

use std::time::Instant;

use pool_runtime::prelude::*;
use serde::{Deserialize, Serialize};

/// One experiment run: an id and its samples.
#[derive(Serialize, Deserialize)]
struct Run {
    id: u32,
    samples: Vec<f64>,
}

/// The statistics of one run.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Summary {
    id: u32,
    n: usize,
    mean: f64,
    std_dev: f64,
    min: f64,
    max: f64,
}

/// Generates run `id`: 20,000 samples around a mean that depends on the id (splitmix64 noise).
fn load_run(id: u32) -> Run {
    let mut state = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xd1b5_4a32_d192_ed03;
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    };
    let centre = f64::from(id % 100) / 10.0;
    let samples = (0..20_000)
        .map(|_| centre + (0..4).map(|_| uniform() - 0.5).sum::<f64>())
        .collect();
    Run { id, samples }
}

/// Summarises one run; runs on a worker.
#[pool_task]
fn analyze(run: Run) -> Summary {
    let n = run.samples.len();
    let mean = run.samples.iter().sum::<f64>() / n as f64;
    let var = run.samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Summary {
        id: run.id,
        n,
        mean,
        std_dev: var.sqrt(),
        min: run.samples.iter().copied().fold(f64::INFINITY, f64::min),
        max: run
            .samples
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max),
    }
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    let runs: u32 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| format!("usage: analyze_runs [NUMBER_OF_RUNS]: {e}"))?,
        None => 2_000,
    };
    let start = Instant::now();
    let summaries = pool.map(analyze, (0..runs).map(load_run))?;
    let seconds = start.elapsed().as_secs_f64();

    // Results come back in input order, and equal a direct call of the same function.
    assert!(
        summaries
            .iter()
            .enumerate()
            .all(|(i, s)| s.id as usize == i)
    );
    assert_eq!(summaries[0], analyze(load_run(0)));

    println!(
        "{:>6} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "run", "n", "mean", "std_dev", "min", "max"
    );
    for s in summaries.iter().take(5) {
        println!(
            "{:>6} {:>8} {:>9.4} {:>9.4} {:>9.4} {:>9.4}",
            s.id, s.n, s.mean, s.std_dev, s.min, s.max
        );
    }
    let grand_mean = summaries.iter().map(|s| s.mean).sum::<f64>() / summaries.len() as f64;
    let widest = summaries
        .iter()
        .max_by(|a, b| (a.max - a.min).total_cmp(&(b.max - b.min)))
        .expect("at least one run");
    println!(
        "analysed {} runs on {} workers in {seconds:.2} s; grand mean {grand_mean:.4}; widest run {} ({:.4}..{:.4})",
        summaries.len(),
        pool.workers(),
        widest.id,
        widest.min,
        widest.max
    );
    Ok(())
}
