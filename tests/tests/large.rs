//! No size limit but memory: a 2.3 GiB result and a 2.3 GiB argument (more than one MPI
//! message carries) cross whole under `mpirun -n 2`, in spawn mode, in one process (no MPI
//! message at all) and under MPICH (`scripts/test.sh` runs this file again with MPICH's
//! launcher).
//!
//! Each run needs about 10 GiB at its peak (the value and its frame on each side) and takes
//! 5-25 s here, so the runs go one after another, and the default suite runs one of them;
//! `cargo test -p tests --test large -- --ignored` runs the others.

mod common;

use std::process::Command;

use common::{Mpi, Run, mpirun, run};

const LARGE: &str = env!("CARGO_BIN_EXE_large");

fn check(r: &Run, what: &str) {
    r.assert_success();
    let line = format!("large {what} of 2469606195 bytes passed with 1 workers");
    assert!(r.stdout.contains(&line), "{}", r.describe());
}

/// Large results, several to a chunk, sent from their own memory by the workers, and results
/// of a size that repeats, received into memory the master prepared or an owned input left:
/// right in every mode (`mpirun -n 1..4`, spawn mode, one process).
#[test]
fn large_results_several_to_a_chunk() {
    for n in 1..=4 {
        let r = mpirun(n, LARGE, &["mixed"]);
        r.assert_success();
        // `mpirun -n 1`: one process, on worker threads.
        let line = match n {
            1 => "large mixed passed with ".to_owned(),
            _ => format!("large mixed passed with {} workers", n - 1),
        };
        assert!(r.stdout.contains(&line), "{}", r.describe());
    }
    if !common::skip_unless_open_mpi(
        "large::large_results_several_to_a_chunk in spawn mode",
        "MPICH 4.0 cannot spawn from a single process",
    ) {
        mixed_alone("POOL_WORKERS");
    }
    mixed_alone("POOL_THREADS");
}

/// `large mixed` started alone, with 2 workers: spawned ranks (`POOL_WORKERS`) or threads
/// (`POOL_THREADS`).
fn mixed_alone(workers: &str) {
    let mut cmd = Command::new(LARGE);
    cmd.arg("mixed").env(workers, "2");
    let r = run(cmd);
    r.assert_success();
    assert!(
        r.stdout.contains("large mixed passed with 2 workers"),
        "{}",
        r.describe()
    );
}

/// The representative: a 2.3 GiB result, in three pieces, under mpirun.
#[test]
fn a_result_over_2_gib_crosses_under_mpirun() {
    check(&mpirun(2, LARGE, &["result"]), "result");
}

#[test]
#[ignore = "needs ~10 GiB of memory per run and about a minute in all; run with --ignored"]
fn values_over_2_gib_cross_in_every_mode() {
    for what in ["result", "argument"] {
        if what != "result" {
            check(&mpirun(2, LARGE, &[what]), what);
        }
        if common::mpi() == Mpi::OpenMpi {
            // Spawn mode is Open MPI's (MPICH refuses it with a clear error: tests/spawn.rs).
            let mut cmd = Command::new(LARGE);
            cmd.arg(what).env("POOL_WORKERS", "1");
            check(&run(cmd), what);
            // One process, one worker thread: no MPI message at all.
            let mut cmd = Command::new(LARGE);
            cmd.arg(what).env("POOL_THREADS", "1");
            check(&run(cmd), what);
        }
    }
}
