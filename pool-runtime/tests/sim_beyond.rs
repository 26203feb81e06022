//! Issue 12 on the simulated transport, deterministically: `map_iter`'s reorder buffer stays
//! bounded behind one slow item, and a fold answers with far fewer messages than chunks.

use std::time::Duration;

use pool_runtime::prelude::*;
use pool_runtime::sim::Simulation;

#[pool_task]
fn ident(x: u64) -> u64 {
    x
}

#[pool_task]
fn plus(a: u64, b: u64) -> u64 {
    a + b
}

#[pool_task]
fn scaled(table: Shared<Vec<u64>>, x: u64) -> u64 {
    table[0] * x
}

#[test]
fn a_slow_early_item_stops_dispatch_instead_of_filling_memory() {
    let n = 300_000u64;
    let (max_buffered, report) = Simulation::new(4)
        .charge_master_time(false)
        .cost(|_, i| {
            if i == 10 {
                Duration::from_secs(10)
            } else {
                Duration::from_micros(1)
            }
        })
        .run(|pool| {
            let mut it = pool.map_iter(ident, 0..n);
            let mut max_buffered = 0;
            for i in 0..n {
                assert_eq!(it.next().unwrap().unwrap(), i);
                max_buffered = max_buffered.max(it.buffered());
            }
            assert!(it.next().is_none());
            max_buffered
        })
        .expect("handshake");
    // Without the bound every other item (299,989) would wait behind item 10.
    assert!(max_buffered > 1000, "{max_buffered}");
    assert!(max_buffered <= 2 * 65_536, "{max_buffered}");
    // The others waited: 10 s for item 10, then the rest.
    assert!(report.makespan > Duration::from_secs(10), "{report:?}");
}

#[test]
fn a_fold_answers_several_chunks_at_once() {
    let run = |fold: bool| {
        Simulation::new(8)
            .charge_master_time(false)
            .cost(|_, _| Duration::from_micros(50))
            .run(|pool| {
                if fold {
                    pool.fold(ident, 0..100_000, plus).unwrap().unwrap()
                } else {
                    pool.map(ident, 0..100_000).unwrap().iter().sum()
                }
            })
            .expect("handshake")
    };
    let (total, folded) = run(true);
    let (mapped_total, mapped) = run(false);
    assert_eq!(total, 100_000 * 99_999 / 2);
    assert_eq!(total, mapped_total);
    // Each simulated chunk is acknowledged on its own (a simulated worker sees no queue), so
    // messages are as many as for a map, plus FOLD, FOLD_END and PARTIAL per worker.
    assert!(folded.chunks > 0 && mapped.chunks > 0);
    assert!(folded.messages <= 2 * folded.chunks + 3 * 8, "{folded:?}");
}

#[test]
fn shared_values_in_a_simulation() {
    let (out, _) = Simulation::new(16)
        .charge_master_time(false)
        .run(|pool| {
            let table = pool.share(vec![3u64]).unwrap();
            let out = pool
                .map(scaled, (0..100).map(|x| (table.clone(), x)))
                .unwrap();
            drop(table);
            pool.map(ident, [1]).unwrap();
            out
        })
        .expect("handshake");
    assert_eq!(out, (0..100).map(|x| 3 * x).collect::<Vec<_>>());
}
