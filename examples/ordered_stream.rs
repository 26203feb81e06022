//! `Pool::map_iter`: results in input order as soon as each is next in line, with a bounded
//! reorder buffer. One slow item early in a long input holds the stream up; the pool then
//! stops sending inputs instead of piling up results behind it.
//!
//! `mpirun -n 4 target/release/examples/ordered_stream [--items 1000000] [--slow-ms 2000]`
//!
//! Prints one JSON line with the largest reorder buffer seen and the master's peak resident
//! memory.

use pool_runtime::prelude::*;

/// Tiny, except item 10, which takes `slow_ms`.
#[pool_task]
fn step(x: u64, slow_ms: u64) -> u64 {
    if x == 10 {
        std::thread::sleep(std::time::Duration::from_millis(slow_ms));
    }
    x.wrapping_mul(2654435761) >> 7
}

fn peak_rss_mb() -> f64 {
    // SAFETY: `getrusage` fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    let items = arg("--items", 200_000);
    let slow_ms = arg("--slow-ms", 500);
    let started = std::time::Instant::now();
    let mut stream = pool.map_iter(step, (0..items).map(|x| (x, slow_ms)));
    let mut max_buffered = 0;
    let mut checksum = 0u64;
    for x in 0..items {
        let value = stream.next().expect("one per input")?; // in input order
        assert_eq!(value, x.wrapping_mul(2654435761) >> 7);
        checksum = checksum.wrapping_add(value);
        max_buffered = max_buffered.max(stream.buffered());
    }
    assert!(stream.next().is_none());
    println!(
        "{{\"example\":\"ordered_stream\",\"workers\":{},\"items\":{items},\"slow_ms\":{slow_ms},\"seconds\":{:.3},\"max_buffered\":{max_buffered},\"master_peak_rss_mb\":{:.1},\"checksum\":{checksum}}}",
        pool.workers(),
        started.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    Ok(())
}
