//! `Pool::share`: a large table sent to the workers once, then many small tasks that use it.
//!
//! `mpirun -n 4 target/release/examples/shared_table [--mib 100] [--tasks 10000] [--inline]`
//!
//! With `--inline` the table travels inside every task instead (the way without `share`),
//! for comparison; the program prints one JSON line with the time and the bytes sent.

use pool_runtime::prelude::*;

/// The calibrated value of sample `i`: one lookup in the shared table.
#[pool_task]
fn correct(table: Shared<Vec<f64>>, i: u64) -> f64 {
    table[(i as usize * 7919) % table.len()] * 2.0
}

/// The same, with the table inside the task's arguments.
#[pool_task]
fn correct_inline(table: Vec<f64>, i: u64) -> f64 {
    table[(i as usize * 7919) % table.len()] * 2.0
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    let mib = arg("--mib", 8.0);
    let tasks = arg("--tasks", 1000.0) as u64;
    let inline = std::env::args().any(|a| a == "--inline");
    let len = (mib * 1024.0 * 1024.0 / 8.0) as usize;
    let table: Vec<f64> = (0..len).map(|i| i as f64).collect();
    let before = pool.stats();
    let started = std::time::Instant::now();
    let sum: f64 = if inline {
        let inputs = (0..tasks).map(|i| (table.clone(), i));
        pool.map(correct_inline, inputs)?.iter().sum()
    } else {
        let shared = pool.share(table.clone())?; // sent once
        pool.map(correct, (0..tasks).map(|i| (shared.clone(), i)))?
            .iter()
            .sum()
    };
    let seconds = started.elapsed().as_secs_f64();
    let stats = pool.stats().since(&before);
    let expected: f64 = (0..tasks)
        .map(|i| table[(i as usize * 7919) % len] * 2.0)
        .sum();
    assert!((sum - expected).abs() <= 1e-9 * expected.abs().max(1.0));
    println!(
        "{{\"example\":\"shared_table\",\"mode\":\"{}\",\"workers\":{},\"mib\":{mib},\"tasks\":{tasks},\"seconds\":{seconds:.3},\"task_bytes_sent\":{}}}",
        if inline { "inline" } else { "share" },
        pool.workers(),
        stats.input_bytes
    );
    Ok(())
}
