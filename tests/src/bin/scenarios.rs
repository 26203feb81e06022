//! Test program: runs the scenario named by its first argument and exits 0 when every check
//! passes. Run by `tests/mpi.rs` under `mpirun -n 1..4` and as a single process.
#![deny(warnings)]

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use pool_runtime::TaskErrorKind;
use pool_runtime::prelude::*;
use tests::{
    abort_on_five, add, broken_on_first_worker, echo, even_only, exit_on_five, flaky_once, here,
    logged_even_only, logged_square, panic_on_three, segfault_on_five, sigkill_on_five, sleep_ms,
    square, whereami, worker_pid,
};

/// A task in the binary itself, next to the library's.
#[pool_task]
fn negate(x: i64) -> i64 {
    -x
}

fn results(pool: &Pool) -> Result<(), Error> {
    // Ordered map, across crates and argument shapes.
    let squares = pool.map(square, 0..1000)?;
    assert_eq!(squares, (0..1000).map(|x| x * x).collect::<Vec<u64>>());
    assert_eq!(
        pool.map(add, (0..100).map(|i| (i, 2 * i)))?,
        (0..100).map(|i| 3 * i).collect::<Vec<_>>()
    );
    assert_eq!(pool.map(negate, [1, -2, 3])?, [-1, 2, -3]);
    // Empty input. (Its item type must be known: `u64` or `&u64`, both are inputs.)
    assert!(pool.map(square, std::iter::empty::<u64>())?.is_empty());
    assert_eq!(pool.map_unordered(square, Vec::<u64>::new()).count(), 0);
    // Borrowed inputs: nothing is cloned, and the caller keeps its data.
    let inputs: Vec<u64> = (0..100).collect();
    assert_eq!(
        pool.map(square, &inputs)?,
        pool.map(square, inputs.clone())?
    );
    assert_eq!(
        pool.map(square, inputs.iter().filter(|&&x| x > 97))?,
        [98 * 98, 99 * 99]
    );
    assert_eq!(pool.map_unordered(square, &inputs[..10]).count(), 10);
    let seven: &u64 = &inputs[7];
    assert_eq!(pool.submit(square, seven).wait()?, 49);
    // Unordered: every index exactly once, values right.
    let mut seen = HashSet::new();
    for (index, value) in pool.map_unordered(square, 0..500) {
        assert_eq!(value.expect("square never fails"), (index * index) as u64);
        assert!(seen.insert(index), "index {index} twice");
    }
    assert_eq!(seen.len(), 500);
    // Zero arguments, submit, and several handles at once.
    let pids = pool.map(worker_pid, (0..50).map(|_| ()))?;
    let expected_pids = if pool_is_mpi(pool) { pool.workers() } else { 1 };
    assert!(pids.iter().collect::<HashSet<_>>().len() <= expected_pids.max(1));
    let a = pool.submit(square, 12);
    let b = pool.submit(add, (1, 2));
    let c = pool.submit(echo, vec![7; 100_000]);
    assert_eq!(c.wait()?, vec![7; 100_000]);
    assert_eq!(b.wait()?, 3);
    assert_eq!(a.wait()?, 144);
    // A handle dropped without waiting does not disturb what follows.
    drop(pool.submit(sleep_ms, 20));
    // Interleaving: a submit waited in the middle of a stream.
    let mut stream = pool.map_unordered(square, 0..100);
    let first = stream.next().expect("100 items");
    assert!(first.1.is_ok());
    assert_eq!(pool.submit(negate, 5).wait()?, -5);
    assert_eq!(stream.count(), 99);
    // Options.
    let big = pool.map_with(square, 0..10_000, Options::new().chunksize(100).prefetch(3))?;
    assert_eq!(big[9_999], 9_999 * 9_999);
    // The task is still a function.
    assert_eq!(square(9), 81);
    assert_eq!(add(1, 1), 2);
    Ok(())
}

fn pool_is_mpi(_pool: &Pool) -> bool {
    std::env::var("OMPI_COMM_WORLD_SIZE").is_ok_and(|n| n != "1")
        || std::env::var("PMI_SIZE").is_ok_and(|n| n != "1") // MPICH's launcher (Hydra)
        // Slurm's srun, ranks started through PMIx (tests/slurm.rs)
        || std::env::var_os("PMIX_RANK").is_some()
            && std::env::var("SLURM_STEP_NUM_TASKS").is_ok_and(|n| n != "1")
        || std::env::var_os("POOL_WORKERS").is_some()
}

fn errors(pool: &Pool) -> Result<(), Error> {
    let mpi = pool_is_mpi(pool);
    // map: the first failure (lowest index) after the running tasks drained.
    let err = pool.map(even_only, 0..20).expect_err("odd numbers fail");
    let Error::Task(e) = err else {
        panic!("expected a task error, got {err}")
    };
    assert_eq!(e.index, 1);
    assert_eq!(e.task, "tests::even_only");
    assert_eq!(e.kind, TaskErrorKind::Failed);
    assert_eq!(e.message, "1 is odd");
    assert!(!e.host.is_empty());
    assert_eq!(e.rank == 0, !mpi, "rank {} in mpi mode {mpi}", e.rank);
    assert_eq!(
        e.to_string(),
        format!(
            "task tests::even_only failed on item 1 (rank {} on {}): 1 is odd",
            e.rank, e.host
        )
    );

    // A panic is caught, reported with its message and location, and the pool goes on.
    let err = pool.map(panic_on_three, 0..10).expect_err("3 panics");
    let Error::Task(e) = err else {
        panic!("expected a task error, got {err}")
    };
    assert_eq!((e.index, e.kind), (3, TaskErrorKind::Panicked));
    assert!(
        e.message
            .starts_with("assertion `left != right` failed: three is not allowed"),
        "{}",
        e.message
    );
    assert!(e.message.contains("tests/src/lib.rs:"), "{}", e.message);

    // Unordered: every item reported, failures and values alike.
    let outcomes: Vec<_> = pool.map_unordered(even_only, 0..10).collect();
    assert_eq!(outcomes.len(), 10);
    for (index, outcome) in outcomes {
        match outcome {
            Ok(v) => assert_eq!(v as usize, index),
            Err(e) => {
                assert_eq!(index % 2, 1);
                assert_eq!(e.index, index);
            }
        }
    }
    // Every outcome in input order, failures included: nothing stops at the first.
    let outcomes = pool.map_outcomes(even_only, 0..10)?;
    assert_eq!(outcomes.len(), 10);
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(v) => assert_eq!((v as usize, index % 2), (index, 0)),
            Err(e) => assert_eq!((e.index, e.message), (index, format!("{index} is odd"))),
        }
    }
    // Inputs that cannot be read: the first one stops the map, nothing is sent for it.
    let inputs = (0..10u64).map(|x| {
        if x == 6 {
            Err(std::io::Error::other("row 6 is corrupt"))
        } else {
            Ok(x)
        }
    });
    match pool.try_map(square, inputs) {
        Err(Error::Input { index, source }) => {
            assert_eq!(
                (index, source.to_string()),
                (6, "row 6 is corrupt".to_owned())
            );
        }
        other => panic!("expected input 6's error, got {other:?}"),
    }
    let readable = pool.try_map(square, (0..10u64).map(Ok::<_, std::io::Error>))?;
    assert_eq!(readable, (0..10u64).map(|x| x * x).collect::<Vec<_>>());
    // A submitted task that fails.
    let e = pool.submit(panic_on_three, 3).wait().expect_err("panics");
    assert_eq!(e.kind, TaskErrorKind::Panicked);
    // After all that the pool still works.
    assert_eq!(pool.map(square, 0..100)?.len(), 100);
    Ok(())
}

fn many(pool: &Pool) -> Result<(), Error> {
    let n: u64 = 100_000;
    let sum: u64 = pool
        .map_unordered(square, 0..n)
        .map(|(_, r)| r.expect("square"))
        .sum();
    assert_eq!(sum, (0..n).map(|x| x * x).sum::<u64>());
    let ordered = pool.map(add, (0..n).map(|i| (i, 1)))?;
    assert!(ordered.iter().enumerate().all(|(i, &v)| v == i as u64 + 1));
    Ok(())
}

fn lazy(pool: &Pool) -> Result<(), Error> {
    // The master reads inputs lazily and keeps a bounded window in flight.
    let pulled = Cell::new(0usize);
    let inputs = (0..20_000u64).inspect(|_| pulled.set(pulled.get() + 1));
    let mut consumed = 0usize;
    let mut max_ahead = 0usize;
    let options = Options::new().chunksize(4).prefetch(2);
    for (_, r) in pool.map_unordered_with(square, inputs, options)? {
        r.expect("square");
        consumed += 1;
        max_ahead = max_ahead.max(pulled.get() - consumed);
    }
    assert_eq!(consumed, 20_000);
    // In flight: one window (workers x prefetch x chunksize); arrived but not read: at most
    // about one more.
    let window = pool.workers() * 2 * 4;
    assert!(
        max_ahead <= 2 * window,
        "{max_ahead} inputs read ahead, window {window}"
    );
    // An infinite input is fine when the consumer stops.
    let firsts: Vec<_> = pool.map_unordered(square, 0..).take(10).collect();
    assert_eq!(firsts.len(), 10);
    Ok(())
}

/// One input per chunk, one chunk in flight per worker: a crash names exactly one item.
fn one_by_one() -> Options {
    Options::new().chunksize(1).prefetch(1)
}

/// `journal PATH N MS`: squares 0..N through a journal at PATH, each task taking MS ms, and
/// prints the sum of the results.
fn journal(pool: &Pool) -> Result<(), Error> {
    let arg = |i: usize| std::env::args().nth(i).expect("journal PATH N MS");
    let path = arg(2);
    let n: u64 = arg(3).parse().expect("N");
    let ms: u64 = arg(4).parse().expect("MS");
    let options = Options::new().journal(&path);
    // For tests that signal the master itself, under a launcher.
    if let Some(file) = std::env::var_os("POOL_TEST_MASTER_PID") {
        std::fs::write(file, std::process::id().to_string()).expect("write the master's PID");
    }
    // The sleep reaches the workers through POOL_TEST_SLEEP_MS (set by the test): a run
    // slowed down for a test has the same inputs as the run that resumes it.
    let _ = ms;
    let squares = pool.map_with(logged_square, (0..n).map(|x| (x, 0)), options)?;
    assert_eq!(squares.len() as u64, n);
    for (x, &sq) in squares.iter().enumerate() {
        assert_eq!(sq, (x * x) as u64, "result of input {x}");
    }
    let sum = squares.iter().fold(0u64, |a, &b| a.wrapping_add(b));
    println!("journal sum {sum}");
    Ok(())
}

/// `sweep PATH N CHANGED map|unordered`: squares of N inputs with a journal at PATH, where
/// the last CHANGED inputs are `x + 1000` instead of `x` (a sweep whose parameters changed
/// under the same journal); prints the sum of the results, checked against the inputs.
fn sweep(pool: &Pool) -> Result<(), Error> {
    let arg = |i: usize| std::env::args().nth(i).expect("sweep PATH N CHANGED MODE");
    let path = arg(2);
    let n: u64 = arg(3).parse().expect("N");
    let changed: u64 = arg(4).parse().expect("CHANGED");
    let value = |x: u64| if x >= n - changed { x + 1000 } else { x };
    let inputs = (0..n).map(|x| (value(x), 0));
    let options = Options::new().journal(&path);
    let results: Vec<(u64, u64)> = match arg(5).as_str() {
        "map" => pool
            .map_with(logged_square, inputs, options)?
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i as u64, r))
            .collect(),
        _ => {
            let mut seen = HashSet::new();
            let mut results = Vec::new();
            for (i, r) in pool.map_unordered_with(logged_square, inputs, options)? {
                assert!(seen.insert(i), "index {i} twice");
                results.push((i as u64, r.expect("square")));
            }
            results
        }
    };
    assert_eq!(results.len() as u64, n);
    for &(i, r) in &results {
        assert_eq!(
            r,
            value(i) * value(i),
            "the result of input {i} is for its arguments"
        );
    }
    let sum = results.iter().fold(0u64, |a, &(_, r)| a.wrapping_add(r));
    println!("sweep sum {sum}");
    Ok(())
}

/// `failing PATH keep|rerun`: 20 inputs, the odd ones fail, with a journal at PATH; on
/// resume the recorded failures are returned (`keep`) or run again (`rerun`).
fn failing(pool: &Pool) -> Result<(), Error> {
    let arg = |i: usize| std::env::args().nth(i).expect("failing PATH keep|rerun");
    let options = Options::new()
        .journal(arg(2))
        .rerun_failed(arg(3) == "rerun");
    let mut failed = Vec::new();
    for (i, outcome) in pool.map_unordered_with(logged_even_only, 0..20u64, options)? {
        match outcome {
            Ok(v) => assert_eq!(v, i as u64),
            Err(e) => {
                assert_eq!(e.message, format!("{i} is odd"));
                failed.push(i);
            }
        }
    }
    failed.sort_unstable();
    assert_eq!(failed, (0..10).map(|k| 2 * k + 1).collect::<Vec<_>>());
    Ok(())
}

/// `retries DIR`: a task that fails once per input succeeds with retries, and says how many
/// attempts a task that always fails had; a worker whose tasks all fail is taken out while
/// the others finish (with 2 workers or more).
fn retries(pool: &Pool) -> Result<(), Error> {
    let dir = std::env::args().nth(2).expect("retries DIR");
    let inputs = || (0..40u64).map(|x| (dir.clone(), x));
    // Without retries, the first attempts of one input in five fail.
    let failed = pool
        .map_outcomes(flaky_once, inputs())?
        .iter()
        .filter(|o| o.is_err())
        .count();
    assert_eq!(failed, 8);
    // (Each input has been tried once now: start again with fresh marks.)
    let dir2 = format!("{dir}/again");
    std::fs::create_dir_all(&dir2).expect("mark dir");
    let before = pool.stats();
    let values = pool.map_with(
        flaky_once,
        (0..40u64).map(|x| (dir2.clone(), x)),
        Options::new().retries(1),
    )?;
    assert_eq!(values, (0..40).collect::<Vec<_>>());
    assert_eq!(pool.stats().since(&before).retried, 8);
    // Always failing: every attempt is reported.
    let e = pool
        .map_with(panic_on_three, [3u64], Options::new().retries(2))
        .expect_err("3 always panics");
    let Error::Task(e) = e else {
        panic!("a task error, got {e}")
    };
    assert_eq!((e.attempts, e.earlier.len()), (3, 2));
    assert!(e.to_string().contains("(attempt 3 of 3; earlier: "), "{e}");
    // A broken node: its worker is quarantined, the others finish every input.
    if pool.workers() > 1 {
        let outcomes = pool.map_outcomes_with(
            broken_on_first_worker,
            0..200u64,
            Options::new().retries(5).chunksize(1),
        )?;
        assert!(
            outcomes.iter().all(Result::is_ok),
            "every input succeeded elsewhere"
        );
    }
    Ok(())
}

/// `million [N]`: N (a million by default) tiny tasks, ordered and unordered, with checksums.
fn million(pool: &Pool) -> Result<(), Error> {
    let n = std::env::args()
        .nth(2)
        .map(|n| n.parse::<u64>().expect("N"));
    #[allow(non_snake_case)]
    let N: u64 = n.unwrap_or(1_000_000);
    let started = std::time::Instant::now();
    let expected = (0..N).fold(0u64, |a, x| a.wrapping_add(x * x));
    let squares = pool.map(square, 0..N)?;
    assert_eq!(squares.len() as u64, N);
    assert!(
        squares
            .iter()
            .enumerate()
            .all(|(i, &s)| s == (i * i) as u64)
    );
    let mut seen = vec![false; N as usize];
    let mut sum = 0u64;
    for (index, out) in pool.map_unordered(square, 0..N) {
        assert!(
            !std::mem::replace(&mut seen[index], true),
            "index {index} twice"
        );
        sum = sum.wrapping_add(out.expect("square"));
    }
    assert_eq!(sum, expected);
    println!(
        "million sum {sum}: {N} tasks ordered and {N} unordered in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `wide`: 20 sleep tasks per worker (10 ms each), in order, every worker busy; for a run of
/// many ranks (32 in `tests/mpi.rs`, on 2 cores).
fn wide(pool: &Pool) -> Result<(), Error> {
    let n = 20 * pool.workers() as u64;
    let slept = pool.map_with(sleep_ms, (0..n).map(|_| 10), one_by_one())?;
    assert_eq!(slept, vec![10; n as usize]);
    let idle: Vec<usize> = pool
        .stats()
        .workers
        .iter()
        .filter(|w| w.tasks == 0)
        .map(|w| w.rank)
        .collect();
    assert!(idle.is_empty(), "ranks {idle:?} ran no task");
    Ok(())
}

/// `hosts`: the `results` and `errors` checks, then where the tasks ran: one line
/// `worker at HOST NETNS: K tasks` per place a worker ran tasks, the hosts that task errors
/// name, and the master's place. Run across network namespaces by `tests/multihost.rs`.
fn hosts(pool: &Pool) -> Result<(), Error> {
    results(pool)?;
    errors(pool)?;
    let mut places = BTreeMap::<(String, String), usize>::new();
    for place in pool.map_with(whereami, (0..120).map(|_| 5), one_by_one())? {
        *places.entry(place).or_default() += 1;
    }
    for ((host, netns), tasks) in &places {
        println!("worker at {host} {netns}: {tasks} tasks");
    }
    let failed_on: BTreeSet<String> = pool
        .map_unordered_with(even_only, 0..60, one_by_one())?
        .filter_map(|(_, outcome)| outcome.err())
        .map(|e| e.host)
        .collect();
    let failed_on: Vec<String> = failed_on.into_iter().collect();
    println!("task errors name hosts: {}", failed_on.join(" "));
    let (host, netns) = here();
    println!("master at {host} {netns}");
    Ok(())
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    match scenario.as_str() {
        "results" => results(pool)?,
        "errors" => errors(pool)?,
        "many" => many(pool)?,
        "lazy" => lazy(pool)?,
        "main_err" => {
            return Err(Error::Protocol {
                rank: 0,
                message: "user error on purpose".into(),
            });
        }
        "main_panic" => panic!("main panics on purpose"),
        "worker_abort" => {
            pool.map_with(abort_on_five, 0..100, one_by_one())?;
            unreachable!("a worker aborted; mpirun ends the job");
        }
        "worker_segfault" => {
            pool.map_with(segfault_on_five, 0..100, one_by_one())?;
            unreachable!("a worker crashed; mpirun ends the job");
        }
        "worker_exit" => {
            pool.map_with(exit_on_five, 0..100, one_by_one())?;
            unreachable!("a worker called exit; the job ends");
        }
        "worker_sigkill" => {
            pool.map_with(sigkill_on_five, 0..100, one_by_one())?;
            unreachable!("a worker was killed; mpirun ends the job");
        }
        "journal" => journal(pool)?,
        "sweep" => sweep(pool)?,
        "retries" => retries(pool)?,
        "failing" => failing(pool)?,
        "million" => million(pool)?,
        "hosts" => hosts(pool)?,
        "wide" => wide(pool)?,
        other => panic!("unknown scenario {other:?}"),
    }
    println!("scenario {scenario} passed with {} workers", pool.workers());
    Ok(())
}
