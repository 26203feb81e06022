//! The schedule, deterministically: the real master against virtual workers on a virtual
//! clock that moves only with the workers' costs (`charge_master_time(false)`), no MPI.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pool_runtime::prelude::*;
use pool_runtime::sim::{SimReport, Simulation};

#[pool_task]
fn square(x: u64) -> u64 {
    x * x
}

#[pool_task]
fn checked(x: u64) -> Result<u64, String> {
    if x % 100 == 7 {
        Err(format!("{x} is unlucky"))
    } else {
        Ok(x)
    }
}

static COUNTED: AtomicU64 = AtomicU64::new(0);

#[pool_task]
fn counted(x: u64) -> u64 {
    COUNTED.fetch_add(1, Ordering::Relaxed);
    x
}

/// A deterministic simulation: `workers` workers, item `i` takes `cost(i)` µs.
fn sim(workers: usize, cost: fn(u64) -> u64) -> Simulation {
    Simulation::new(workers)
        .charge_master_time(false)
        .cost(move |_, i| Duration::from_micros(cost(i)))
}

fn varied(i: u64) -> u64 {
    100 + (i * 7919) % 900
}

#[test]
fn results_are_in_order_and_runs_repeat_exactly() {
    let run = || {
        sim(7, varied)
            .run(|pool| pool.map(square, 0..10_000u64))
            .expect("handshake")
    };
    let (first, a) = run();
    let (second, b) = run();
    let first = first.expect("map");
    assert_eq!(first, (0..10_000u64).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(first, second.expect("map"));
    let key = |r: &SimReport| (r.makespan, r.chunks, r.messages, r.worker_busy);
    assert_eq!(key(&a), key(&b), "a deterministic run repeats exactly");
}

#[test]
fn adaptive_chunks_finish_together() {
    let (_, report) = sim(10, |_| 500)
        .run(|pool| pool.map(square, 0..20_000u64).map(|v| v.len()))
        .expect("handshake");
    // 20,000 items of 0.5 ms on 10 workers: 1 s of work each.
    assert_eq!(report.ideal, Duration::from_secs(1));
    assert!(report.efficiency() > 0.97, "{report:?}");
    // Chunks of about 1 ms of work (2 items), not one message per item.
    assert!(report.chunks < 12_000, "{report:?}");
}

#[test]
fn the_classic_policy_sends_one_item_per_message() {
    let options = Options::new().chunksize(1).prefetch(1);
    let (_, report) = sim(4, varied)
        .run(|pool| pool.map_with(square, 0..1000u64, options).map(|v| v.len()))
        .expect("handshake");
    assert_eq!(report.chunks, 1000);
}

#[test]
fn inputs_are_read_ahead_a_bounded_window() {
    // 8 workers, 4 items per chunk, 2 chunks each in flight: a window of 64 items.
    let pulled = Rc::new(Cell::new(0u64));
    let counter = Rc::clone(&pulled);
    let inputs = (0..100_000u64).inspect(move |_| counter.set(counter.get() + 1));
    let options = Options::new().chunksize(4).prefetch(2);
    let (max_ahead, _) = sim(8, |_| 100)
        .run(|pool| {
            let mut max_ahead = 0;
            for (read, (_, outcome)) in pool
                .map_unordered_with(square, inputs, options)
                .expect("no journal")
                .enumerate()
            {
                outcome.expect("ok");
                max_ahead = max_ahead.max(pulled.get() - read as u64);
            }
            max_ahead
        })
        .expect("handshake");
    // In flight (64), arrived but unread (at most one more window, 64), cut ahead (4).
    assert!(max_ahead <= 64 + 64 + 4, "{max_ahead} inputs read ahead");
}

#[test]
fn a_slow_reader_holds_back_dispatch() {
    // The reader takes one result, then lets the pool run on with another job for a while:
    // the first job is not fed beyond its window meanwhile.
    let pulled = Rc::new(Cell::new(0u64));
    let counter = Rc::clone(&pulled);
    let inputs = (0..1_000_000u64).inspect(move |_| counter.set(counter.get() + 1));
    let options = Options::new().chunksize(10).prefetch(2);
    let (ahead, _) = sim(4, |_| 10)
        .run(|pool| {
            let mut slow = pool
                .map_unordered_with(square, inputs, options)
                .expect("no journal");
            slow.next();
            // Another job keeps the master busy (and the first job's results arrive).
            let other = pool.map(square, 0..20_000u64).expect("map");
            assert_eq!(other.len(), 20_000);
            let ahead = pulled.get();
            drop(slow);
            ahead
        })
        .expect("handshake");
    assert!(ahead < 1000, "{ahead} inputs read while the reader slept");
}

#[test]
fn jobs_open_at_once_get_their_own_results() {
    let (sums, _) = sim(3, varied)
        .run(|pool| {
            let a = pool.submit(square, 12);
            let mut stream = pool.map_unordered(square, 0..5000u64);
            let b = pool.submit(square, 13);
            let mut sum = 0;
            for _ in 0..100 {
                sum += stream.next().expect("item").1.expect("ok");
            }
            let c = pool.map(square, 0..10u64).expect("map");
            sum += stream.map(|(_, v)| v.expect("ok")).sum::<u64>();
            (a.wait().expect("a"), b.wait().expect("b"), c, sum)
        })
        .expect("handshake");
    let expected: u64 = (0..5000u64).map(|x| x * x).sum();
    assert_eq!(
        sums,
        (144, 169, (0..10u64).map(|x| x * x).collect(), expected)
    );
}

#[test]
fn a_dropped_stream_stops_sending() {
    COUNTED.store(0, Ordering::Relaxed);
    let ((taken, after), _) = sim(4, |_| 100)
        .run(|pool| {
            let taken: Vec<_> = pool
                .map_unordered(counted, 0..1_000_000u64)
                .take(5)
                .collect();
            let after = pool.map(square, 0..100u64).expect("map");
            (taken.len(), after)
        })
        .expect("handshake");
    assert_eq!(taken, 5);
    assert_eq!(after, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
    let ran = COUNTED.load(Ordering::Relaxed);
    assert!(ran < 10_000, "{ran} items ran for a stream dropped after 5");
}

#[test]
fn failures_are_reported_by_index() {
    let ((map, unordered), _) = sim(5, varied)
        .run(|pool| {
            let map = pool.map(checked, 0..1000u64);
            let failed: Vec<usize> = pool
                .map_unordered(checked, 0..1000u64)
                .filter_map(|(i, outcome)| outcome.is_err().then_some(i))
                .collect();
            (map, failed)
        })
        .expect("handshake");
    match map {
        Err(Error::Task(e)) => {
            assert_eq!(e.index, 7);
            assert_eq!(e.message, "7 is unlucky");
            assert_eq!(e.host, format!("sim-node-{}", (e.rank - 1) / 64));
        }
        other => panic!("expected the failure of item 7, got {other:?}"),
    }
    let mut failed = unordered;
    failed.sort_unstable();
    assert_eq!(failed, (0..10).map(|k| k * 100 + 7).collect::<Vec<_>>());
}

#[test]
fn work_does_not_wait_behind_a_straggler() {
    // Worker 0 runs 20 times slower than the three others.
    let mut seen = vec![0u8; 4000];
    let ((), report) = sim(4, |_| 1000)
        .slowdown(|w| if w == 0 { 20.0 } else { 1.0 })
        .run(|pool| {
            for (index, outcome) in pool.map_unordered(square, 0..4000u64) {
                assert_eq!(outcome.expect("ok"), (index * index) as u64);
                seen[index] += 1;
            }
        })
        .expect("handshake");
    assert!(seen.iter().all(|&n| n == 1), "every item exactly once");
    assert!(report.efficiency() > 0.9, "{report:?}");
}

#[test]
fn ten_thousand_workers_start_and_stop() {
    let (workers, report) = Simulation::new(10_000)
        .run(|pool| pool.workers())
        .expect("handshake");
    assert_eq!(workers, 10_000);
    assert_eq!(report.workers, 10_000);
}

#[test]
fn a_chunk_queued_behind_a_long_item_is_copied_to_an_idle_worker() {
    // 50 ms chunks; item 1510 takes 1 s. The chunk queued behind it on the same worker
    // would finish 50 ms after it; an idle worker runs a copy instead.
    let options = Options::new().chunksize(50).prefetch(2).speculative(true);
    let mut seen = vec![0u8; 2000];
    let ((), report) = sim(4, |i| if i == 1510 { 1_000_000 } else { 1000 })
        .run(|pool| {
            for (index, outcome) in pool
                .map_unordered_with(square, 0..2000u64, options)
                .expect("no journal")
            {
                assert_eq!(outcome.expect("ok"), (index * index) as u64);
                seen[index] += 1;
            }
        })
        .expect("handshake");
    assert!(seen.iter().all(|&n| n == 1), "every item exactly once");
    // The chunk holding the long item ends at 1.399 s, and with it the work (1.449 s if
    // the chunk behind it waited).
    assert!(report.makespan < Duration::from_millis(1420), "{report:?}");
    // Not asked for, nothing is copied: every chunk is sent once.
    let options = Options::new().chunksize(50).prefetch(2);
    let ((), report) = sim(4, |i| if i == 1510 { 1_000_000 } else { 1000 })
        .run(|pool| {
            for (_, outcome) in pool
                .map_unordered_with(square, 0..2000u64, options)
                .expect("no journal")
            {
                outcome.expect("ok");
            }
        })
        .expect("handshake");
    assert_eq!(report.chunks, 40);
}
