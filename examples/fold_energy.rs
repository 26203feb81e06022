//! `Pool::fold`: a sum over many samples, combined on the workers; the master receives one
//! partial value per worker, so its memory does not grow with the number of samples.
//!
//! `mpirun -n 4 target/release/examples/fold_energy [--items 10000000]`
//!
//! Prints one JSON line: the items, the chunks sent and replies received (from `Stats`), and
//! the master's peak resident memory.

use pool_runtime::prelude::*;

/// The energy of one sample (synthetic).
#[pool_task]
fn energy(sample: u64) -> f64 {
    let x = (sample % 1000) as f64 / 1000.0;
    x * x
}

/// Combines two partial energies: associative and commutative.
#[pool_task]
fn add(a: f64, b: f64) -> f64 {
    a + b
}

/// This process's peak resident memory, in MB.
fn peak_rss_mb() -> f64 {
    // SAFETY: `getrusage` fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let items: u64 = args
        .iter()
        .position(|a| a == "--items")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(1_000_000), |v| v.parse())?;
    let before = pool.stats();
    let started = std::time::Instant::now();
    let total = pool.fold(energy, 0..items, add)?.unwrap_or(0.0);
    let seconds = started.elapsed().as_secs_f64();
    let stats = pool.stats().since(&before);
    let per_thousand: f64 = (0..1000).map(|s| (s as f64 / 1000.0).powi(2)).sum();
    let expected = per_thousand * (items / 1000) as f64
        + (0..items % 1000)
            .map(|s| (s as f64 / 1000.0).powi(2))
            .sum::<f64>();
    assert!(
        (total - expected).abs() <= 1e-6 * expected.max(1.0),
        "{total} != {expected}"
    );
    println!(
        "{{\"example\":\"fold_energy\",\"workers\":{},\"items\":{items},\"seconds\":{seconds:.3},\"chunks\":{},\"replies\":{},\"master_peak_rss_mb\":{:.1}}}",
        pool.workers(),
        stats.chunks,
        stats.replies,
        peak_rss_mb()
    );
    Ok(())
}
