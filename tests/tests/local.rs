//! `pool_runtime::local`: a pool of worker threads that returns, used from ordinary
//! `#[test]`s, several times in one process (and in parallel: the test harness runs these
//! tests on several threads). No MPI, no process started, except by the last test, which runs
//! this test program again to see how the harness reports a failing pool test.

mod common;

use std::process::Command;

use anyhow::Context as _;
use pool_runtime::prelude::*;
use pool_runtime::{TaskErrorKind, local};
use tests::{even_only, square};

#[test]
fn a_pool_in_a_test() {
    let squares = local(2, |pool: &mut Pool| pool.map(square, 0..100)).unwrap();
    assert_eq!(squares[99], 99 * 99);
}

#[test]
fn any_number_of_pools_in_one_process() {
    for threads in [1, 2, 3, 0] {
        let workers = local(threads, |pool: &mut Pool| {
            assert_eq!(pool.map(square, [7]).unwrap(), [49]);
            pool.workers()
        });
        if threads > 0 {
            assert_eq!(workers, threads);
        } else {
            assert!(workers >= 1);
        }
    }
}

#[test]
fn task_errors_are_values() {
    let err = local(2, |pool: &mut Pool| pool.map(even_only, 0..10)).unwrap_err();
    let Error::Task(e) = err else {
        panic!("expected a task error, got {err}")
    };
    assert_eq!((e.index, e.kind), (1, TaskErrorKind::Failed));
    assert_eq!(e.message, "1 is odd");
}

#[test]
#[should_panic(
    expected = "assertion `left == right` failed: a wrong expectation\n  left: [4]\n right: [5]"
)]
fn a_failed_assert_fails_the_test_with_its_message() {
    local(2, |pool: &mut Pool| {
        assert_eq!(pool.map(square, [2]).unwrap(), [5], "a wrong expectation");
    });
}

#[test]
#[should_panic(expected = "task tests::even_only failed on item 1 (rank 0 on ")]
fn an_unwrapped_task_error_fails_the_test_with_its_message() {
    local(1, |pool: &mut Pool| pool.map(even_only, [0, 1]).unwrap());
}

/// Reads a file, as a task in a user's crate would, with `anyhow` context.
#[pool_task]
fn read_csv(path: String) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(text.lines().count())
}

/// A `Box<dyn Error>` keeps its causes too.
#[pool_task]
fn read_boxed(path: String) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let n = read_csv(path).map_err(Box::<dyn std::error::Error + Send + Sync>::from)?;
    Ok(n)
}

#[test]
fn a_task_error_keeps_its_causes() {
    let (anyhow, boxed) = local(2, |pool: &mut Pool| {
        (
            pool.submit(read_csv, "data/nope.csv".to_owned()).wait(),
            pool.submit(read_boxed, "data/nope.csv".to_owned()).wait(),
        )
    });
    for outcome in [anyhow, boxed] {
        let e = outcome.expect_err("no such file");
        assert_eq!(e.kind, TaskErrorKind::Failed);
        assert_eq!(
            e.message,
            "reading data/nope.csv: No such file or directory (os error 2)"
        );
    }
}

/// Starts a pool inside a task.
#[pool_task]
fn pool_in_a_task(x: u64) -> u64 {
    local(1, |pool: &mut Pool| pool.map(square, [x]).unwrap()[0])
}

#[test]
fn a_pool_inside_a_task_fails_that_task() {
    let (nested, after) = local(2, |pool: &mut Pool| {
        (
            pool.submit(pool_in_a_task, 3).wait(),
            pool.map(square, [3]).unwrap(),
        )
    });
    let e = nested.expect_err("refused");
    assert_eq!(e.kind, TaskErrorKind::Panicked);
    assert!(
        e.message.starts_with(
            "pool_runtime::local was called inside a pool task: a task can't start a pool"
        ) && e.message.contains("tests/local.rs:"),
        "{e}"
    );
    assert_eq!(after, [9], "the pool goes on");
}

/// Run by [`the_harness_reports_a_failing_pool_test`] only.
#[test]
#[ignore = "fails on purpose; run by the_harness_reports_a_failing_pool_test"]
fn fails_on_purpose() {
    local(2, |pool: &mut Pool| {
        assert_eq!(
            pool.map(square, [3]).unwrap(),
            [10],
            "three squared, on purpose"
        );
    });
}

/// Run by [`the_harness_reports_a_failing_pool_test`] only, after [`fails_on_purpose`].
#[test]
#[ignore = "run by the_harness_reports_a_failing_pool_test"]
fn no_worker_thread_outlives_its_pool() {
    let panicked = std::panic::catch_unwind(|| {
        local(3, |_pool: &mut Pool| panic!("before any task"));
    });
    assert!(panicked.is_err());
    // Worker threads are named `pool-worker-N`; none is left.
    let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap())
        .collect();
    assert!(
        !threads.iter().any(|t| t.starts_with("pool-worker")),
        "{threads:?}"
    );
}

#[test]
fn the_harness_reports_a_failing_pool_test() {
    let mut cmd = Command::new(std::env::current_exe().expect("this test program"));
    cmd.args(["--ignored", "--test-threads", "1"]);
    let r = common::run(cmd);
    assert_eq!(r.status, Some(101), "{}", r.describe());
    let out = format!("{}{}", r.stdout, r.stderr);
    for line in [
        "running 2 tests",
        "test fails_on_purpose ... FAILED",
        "test no_worker_thread_outlives_its_pool ... ok",
        "assertion `left == right` failed: three squared, on purpose",
        "test result: FAILED. 1 passed; 1 failed",
    ] {
        assert!(out.contains(line), "{line}: {}", r.describe());
    }
}
