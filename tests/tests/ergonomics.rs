//! Issue 16's launcher features, on `src/bin/ergonomics.rs` as one process, under `mpirun`
//! and in spawn mode (which checks the rest itself and says "ergonomics passed"): a setup
//! function on every rank makes every worker's logs show, and one process starts without
//! MPI. Every run has the harness's timeout.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{Run, mpirun, run, skip_unless_open_mpi};

const PROGRAM: &str = env!("CARGO_BIN_EXE_ergonomics");

/// The numbers that follow `prefix` in `text`, one per occurrence.
fn numbers_after(text: &str, prefix: &str) -> Vec<u32> {
    text.match_indices(prefix)
        .map(|(at, _)| {
            let digits: String = text[at + prefix.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("no number after {prefix:?}"))
        })
        .collect()
}

/// Checks a run of `processes` processes (master included), with or without MPI.
fn check(r: &Run, processes: usize, mpi: bool) {
    r.assert_success();
    let workers = numbers_after(&r.stdout, "ergonomics passed with ");
    assert_eq!(workers.len(), 1, "{}", r.describe());
    assert!(
        r.stdout.contains(&format!("mpi initialized: {mpi}\n")),
        "{}",
        r.describe()
    );
    // The setup ran once in every process.
    let setups = numbers_after(&r.stderr, "setup ran in pid ");
    let distinct: BTreeSet<u32> = setups.iter().copied().collect();
    assert_eq!(
        (setups.len(), distinct.len()),
        (processes, processes),
        "{}",
        r.describe()
    );
    let master = numbers_after(&r.stdout, "master pid ");
    assert_eq!(master.len(), 1, "{}", r.describe());
    assert!(distinct.contains(&master[0]), "{}", r.describe());
    // Every task's log line shows, logged by the processes that ran the tasks.
    let logged = numbers_after(&r.stderr, "task log line pid=");
    assert_eq!(logged.len() as u32, 4 * workers[0], "{}", r.describe());
    let loggers: BTreeSet<u32> = logged.into_iter().collect();
    if processes == 1 {
        assert_eq!(loggers, distinct, "{}", r.describe());
    } else {
        let workers: BTreeSet<u32> = distinct
            .iter()
            .copied()
            .filter(|&p| p != master[0])
            .collect();
        assert!(loggers.is_subset(&workers), "{}", r.describe());
        assert!(!loggers.is_empty(), "{}", r.describe());
    }
}

#[test]
fn one_process_starts_without_mpi() {
    let mut cmd = Command::new(PROGRAM);
    cmd.env("POOL_THREADS", "2");
    check(&run(cmd), 1, false);
}

#[test]
fn setup_runs_on_every_rank_under_mpirun() {
    for n in [1, 3] {
        check(&mpirun(n, PROGRAM, &[]), n, true);
    }
}

#[test]
fn spawned_workers_run_the_setup_too() {
    if skip_unless_open_mpi(
        "spawned_workers_run_the_setup_too",
        "spawn mode needs Open MPI",
    ) {
        return;
    }
    let mut cmd = Command::new(PROGRAM);
    cmd.env("POOL_WORKERS", "2");
    check(&run(cmd), 3, true);
}

#[test]
fn pool_mpi_starts_mpi_without_a_launcher() {
    let mut cmd = Command::new(PROGRAM);
    cmd.env("POOL_THREADS", "2").env("POOL_MPI", "1");
    check(&run(cmd), 1, true);
}
