//! Test program for issue 16's launcher features, run by `tests/ergonomics.rs` as one process,
//! under `mpirun` and in spawn mode:
//!
//! - `#[pool_main(init = setup)]`: `setup` runs once in every process before the pool starts
//!   (it says so on stderr and installs a `tracing` subscriber), so a task's log line shows on
//!   every rank;
//! - one process starts without MPI; `mpirun` and spawn mode start it;
//! - a pool started inside a task fails that task, with a clear message;
//! - a task's error message keeps its `source()` chain;
//! - `pool_runtime::local` works inside a pool program too, and `main` returns a boxed error,
//!   so `?` works on any error.
#![deny(warnings)]

use std::error::Error as StdError;
use std::fmt;

use pool_runtime::TaskErrorKind;
use pool_runtime::prelude::*;
use tests::square;

/// Runs in every process before the pool starts.
fn setup() {
    use std::io::Write;
    // One write, so that lines of processes sharing mpirun's stderr do not interleave.
    let line = format!("setup ran in pid {}\n", std::process::id());
    std::io::stderr()
        .write_all(line.as_bytes())
        .expect("write to stderr");
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
}

/// Logs one line, and says which process ran it.
#[pool_task]
fn log_line(item: u64) -> u32 {
    tracing::info!(pid = std::process::id(), item, "task log line");
    std::process::id()
}

/// Starts a pool inside a task: refused.
#[pool_task]
fn nested_run(x: u64) -> u64 {
    let _ = x;
    pool_runtime::run(|_pool: &mut Pool| {})
}

/// Starts an in-process pool inside a task: refused.
#[pool_task]
fn nested_local(x: u64) -> u64 {
    pool_runtime::local(1, |pool: &mut Pool| pool.map(square, [x]).map(|v| v[0])).unwrap_or(0)
}

/// An error with a cause, as `thiserror`'s `#[source]` makes them.
#[derive(Debug)]
struct Reading {
    path: String,
    source: std::io::Error,
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading {}", self.path)
    }
}

impl StdError for Reading {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// Reads a file; fails with a [`Reading`] error.
#[pool_task]
fn read_file(path: String) -> Result<usize, Reading> {
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.len()),
        Err(source) => Err(Reading { path, source }),
    }
}

#[pool_main(init = setup)]
fn main(pool: &mut Pool) -> Result<(), Box<dyn StdError>> {
    println!("master pid {}", std::process::id());
    println!("mpi initialized: {}", mpi::environment::is_initialized());

    // Every worker logs through the subscriber its own process installed.
    let items = 4 * pool.workers() as u64;
    let pids = pool.map_with(log_line, 0..items, Options::new().chunksize(1))?;
    assert_eq!(pids.len() as u64, items);

    // A pool inside a task fails that task only.
    for (result, call) in [
        (pool.submit(nested_run, 1).wait(), "pool_runtime::run"),
        (pool.submit(nested_local, 2).wait(), "pool_runtime::local"),
    ] {
        let e = result.expect_err("a pool inside a task is refused");
        assert_eq!(e.kind, TaskErrorKind::Panicked, "{e}");
        assert!(
            e.message.starts_with(&format!(
                "{call} was called inside a pool task: a task can't start a pool (it runs on a \
                 worker, which belongs to a pool already); do the work in the task itself"
            )),
            "{e}"
        );
        // At the task's own call, not somewhere in the runtime.
        assert!(e.message.contains("src/bin/ergonomics.rs:"), "{e}");
    }

    // The whole chain of causes, and the host the kernel names.
    let e = pool
        .submit(read_file, "data/nope.csv".to_owned())
        .wait()
        .expect_err("no such file");
    assert_eq!(
        e.message,
        "reading data/nope.csv: No such file or directory (os error 2)"
    );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    assert_eq!(e.host, kernel.trim());

    // An in-process pool, inside a pool program, returns.
    let local = pool_runtime::local(2, |local: &mut Pool| local.map(square, 0..10))?;
    assert_eq!(local[9], 81);

    // `?` on an error that is not the pool's.
    let here = std::env::current_dir()?;
    assert!(here.is_absolute());
    println!("ergonomics passed with {} workers", pool.workers());
    Ok(())
}
