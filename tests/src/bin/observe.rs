//! Test program for statistics, progress and tracing, run by `tests/observe.rs`.
//!
//! `observe [trace] [call-stats]`: with `trace`, installs a `tracing` subscriber that prints
//! the pool's events at debug level on stderr, before the pool starts (so without
//! `#[pool_main]`: this is how a program sees the start-up events); with `call-stats`, the
//! second call prints its own statistics (`Options::stats`).
#![deny(warnings)]

use pool_runtime::prelude::*;
use tests::{even_only, square};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "trace") {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .without_time()
            .init();
    }
    let call_stats = args.iter().any(|a| a == "call-stats");
    pool_runtime::run(|pool: &mut Pool| -> Result<(), Error> {
        // 20 tasks, the 10 odd ones fail.
        let failed = pool
            .map_unordered(even_only, 0..20)
            .filter(|(_, outcome)| outcome.is_err())
            .count();
        assert_eq!(failed, 10);
        let before = pool.stats();
        let squares = pool.map_with(square, 0..2000, Options::new().stats(call_stats))?;
        assert_eq!(squares.len(), 2000);
        let stats = pool.stats();
        assert_eq!((stats.tasks, stats.failed), (2020, 10));
        assert_eq!(stats.workers.len(), pool.workers());
        assert_eq!(stats.workers.iter().map(|w| w.tasks).sum::<u64>(), 2020);
        let call = stats.since(&before);
        assert_eq!((call.tasks, call.failed), (2000, 0));
        assert!(call.wall_s > 0.0 && call.wall_s <= stats.wall_s);
        assert!((0.0..=1.0).contains(&stats.efficiency), "{stats:?}");
        println!("observe passed with {} workers", pool.workers());
        Ok(())
    })
}
