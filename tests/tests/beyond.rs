//! Issue 12, beyond `map`: `Pool::share`, `WorkerState`, `Pool::fold`, `Pool::map_iter` and
//! `WorkerContext`, in every mode. `src/bin/beyond.rs` checks all five itself (it says
//! "beyond passed") as one process, under `mpirun -n 1..4` and in spawn mode; the tests
//! below it count, with `pool_runtime::local`, what must happen exactly so many times.

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Mpi, Run, mpi, mpirun, run, skip};
use pool_runtime::prelude::*;
use pool_runtime::{TaskErrorKind, local};

const PROGRAM: &str = env!("CARGO_BIN_EXE_beyond");

fn check(r: &Run, workers: usize) {
    r.assert_success();
    assert!(
        r.stdout
            .contains(&format!("beyond passed with {workers} workers\n")),
        "{}",
        r.describe()
    );
}

#[test]
fn one_process() {
    let mut cmd = Command::new(PROGRAM);
    cmd.env("POOL_THREADS", "3");
    check(&run(cmd), 3);
}

#[test]
fn under_mpirun() {
    for n in 1..=4 {
        // `mpirun -n 1`: one process, on worker threads (POOL_THREADS is not passed on).
        let r = mpirun(n, PROGRAM, &[]);
        if n == 1 {
            r.assert_success();
            assert!(r.stdout.contains("beyond passed with "), "{}", r.describe());
        } else {
            check(&r, n - 1);
        }
    }
}

#[test]
fn spawn_mode() {
    if mpi() == Mpi::Mpich {
        skip("beyond::spawn_mode under MPICH: MPICH 4.0 cannot spawn from a single process");
        return;
    }
    for n in [1, 3] {
        let mut cmd = Command::new(PROGRAM);
        cmd.env("POOL_WORKERS", n.to_string());
        check(&run(cmd), n);
    }
}

// Exact counts, in one process.

static INITS: AtomicUsize = AtomicUsize::new(0);
/// The tests below count builds of `Tally` and share `INITS`: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Tally(u64);

impl WorkerState for Tally {
    fn init(_: &WorkerContext) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        INITS.fetch_add(1, Ordering::SeqCst);
        Ok(Tally(0))
    }
}

#[pool_task]
fn tally(state: &mut Tally, x: u64) -> u64 {
    state.0 += 1;
    x
}

#[pool_task]
fn seen(state: &Tally) -> u64 {
    state.0
}

#[test]
fn init_runs_once_per_worker() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    INITS.store(0, Ordering::SeqCst);
    let out = local(3, |pool: &mut Pool| pool.map(tally, 0..10_000)).unwrap();
    assert_eq!(out.len(), 10_000);
    assert_eq!(
        INITS.load(Ordering::SeqCst),
        3,
        "10,000 tasks on 3 workers: 3 inits"
    );
    // The state lives until the pool stops: the next pool builds its own.
    INITS.store(0, Ordering::SeqCst);
    let counts = local(2, |pool: &mut Pool| {
        pool.map(tally, 0..100).unwrap();
        pool.map(seen, vec![(); 20]).unwrap()
    });
    assert_eq!(INITS.load(Ordering::SeqCst), 2);
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
}

struct Broken;

impl WorkerState for Broken {
    fn init(ctx: &WorkerContext) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        INITS.fetch_add(1, Ordering::SeqCst);
        Err(format!("no GPU for worker {}", ctx.worker()).into())
    }
}

#[pool_task]
fn on_gpu(_gpu: &mut Broken, x: u64) -> u64 {
    x
}

#[test]
fn a_failing_init_fails_its_items_once_per_worker() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    INITS.store(0, Ordering::SeqCst);
    let errors = local(2, |pool: &mut Pool| {
        let errors: Vec<_> = pool
            .map_unordered(on_gpu, 0..1000)
            .map(|(_, o)| o.unwrap_err())
            .collect();
        // The pool goes on.
        assert_eq!(pool.map(tally, [5]).unwrap(), [5]);
        errors
    });
    assert_eq!(errors.len(), 1000);
    assert!(errors.iter().all(|e| e.kind == TaskErrorKind::StateInit));
    assert!(
        errors[0]
            .to_string()
            .contains("could not build its worker state")
    );
    assert!(
        errors[0]
            .message
            .contains("init failed: no GPU for worker ")
    );
    // Not retried per item: at most once per worker (plus the one `Tally`).
    assert!(
        INITS.load(Ordering::SeqCst) <= 3,
        "{}",
        INITS.load(Ordering::SeqCst)
    );
}

#[pool_task]
fn where_am_i() -> (usize, usize, usize, usize) {
    std::thread::sleep(std::time::Duration::from_millis(1));
    let c = WorkerContext::current().expect("in a task");
    (c.worker(), c.workers(), c.node_worker(), c.node_workers())
}

#[test]
fn context_in_one_process() {
    assert!(WorkerContext::current().is_none(), "not a worker");
    let mut places = local(3, |pool: &mut Pool| {
        pool.map(where_am_i, vec![(); 30]).unwrap()
    });
    places.sort_unstable();
    places.dedup();
    assert_eq!(places, [(0, 3, 0, 3), (1, 3, 1, 3), (2, 3, 2, 3)]);
}

#[pool_task]
fn weigh(table: Shared<Vec<u8>>, i: usize) -> u64 {
    u64::from(table[i])
}

#[test]
fn a_shared_value_is_not_copied_in_one_process() {
    local(2, |pool: &mut Pool| {
        let big = pool.share(vec![7u8; 10 << 20]).unwrap();
        let before = pool.stats();
        let out = pool
            .map(weigh, (0..1000).map(|i| (big.clone(), i)))
            .unwrap();
        assert!(out.iter().all(|&w| w == 7));
        // Ids, not 10 MiB per task.
        assert!(pool.stats().since(&before).input_bytes < 100_000);
    });
}

#[pool_task]
fn one(x: u64) -> u64 {
    x % 7
}

#[pool_task]
fn sum(a: u64, b: u64) -> u64 {
    a + b
}

#[test]
fn fold_sends_partials_not_results() {
    local(2, |pool: &mut Pool| {
        let before = pool.stats();
        let total = pool.fold(one, 0..2_000_000, sum).unwrap();
        let stats = pool.stats().since(&before);
        assert_eq!(total, Some((0..2_000_000u64).map(|x| x % 7).sum()));
        assert_eq!(stats.tasks, 2_000_000);
        // A map sends one reply per chunk; a fold fewer (how many fewer depends on how the
        // threads were scheduled; the batching is tested in `pool-runtime`'s `worker::tests`).
        assert!(
            stats.replies < stats.chunks,
            "{} replies for {} chunks",
            stats.replies,
            stats.chunks
        );
        assert_eq!(pool.fold(one, Vec::<u64>::new(), sum).unwrap(), None);
    });
}

#[test]
fn map_iter_is_ordered_and_lazy() {
    local(2, |pool: &mut Pool| {
        let mut read = 0u64;
        // An endless input: only a bounded part of it is ever read.
        let mut it = pool.map_iter(one, 0..);
        for i in 0..100_000u64 {
            assert_eq!(it.next().unwrap().unwrap(), i % 7);
            read += 1;
        }
        assert!(it.buffered() <= 200_000, "{}", it.buffered());
        drop(it);
        assert_eq!(read, 100_000);
        assert_eq!(pool.map(one, [8]).unwrap(), [1], "the pool goes on");
    });
}
