//! Failure policy: retries (a flaky task succeeds, attempts are reported) and quarantine (a
//! worker whose tasks all fail is taken out while the others finish), in one process and
//! under `mpirun -n 1..4`.

mod common;

use std::process::Command;

use common::{Mpi, Run, mpi, mpirun_command, run, skip};

const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");

/// The `retries` scenario: `ranks` 0 is spawn mode (3 workers), 1 one process on `threads`
/// worker threads, more `mpirun -n ranks`; `mpirun -n 1` with `under_mpirun`.
fn retries(ranks: usize, threads: usize) -> Run {
    retries_in(ranks, threads, false)
}

fn retries_in(ranks: usize, threads: usize, under_mpirun: bool) -> Run {
    let dir = common::scratch(&format!("retries-{ranks}-{threads}-{under_mpirun}"));
    let mut cmd = if ranks <= 1 && !under_mpirun {
        let mut cmd = Command::new(SCENARIOS);
        if ranks == 0 {
            // Spawn mode, 3 workers.
            cmd.env("POOL_WORKERS", "3");
        }
        cmd
    } else {
        let mut cmd = mpirun_command(ranks);
        cmd.arg(SCENARIOS);
        cmd
    };
    cmd.arg("retries")
        .arg(&dir)
        .env("POOL_THREADS", threads.to_string());
    let r = run(cmd);
    r.assert_success();
    std::fs::remove_dir_all(&dir).ok();
    r
}

#[test]
fn retries_and_quarantine_in_one_process() {
    retries(1, 1);
    let r = retries(1, 3);
    assert!(
        r.stderr.contains(
            "pool: warning: worker thread 0 on " // then the host
        ) && r
            .stderr
            .contains("tasks in a row that then succeeded on other workers: it gets no more tasks"),
        "{}",
        r.describe()
    );
}

#[test]
fn retries_and_quarantine_under_mpirun() {
    // `mpirun -n 1`: one process, on worker threads (one per core it was given).
    retries_in(1, 1, true);
    for ranks in 2..=4 {
        let r = retries(ranks, 1);
        if ranks > 2 {
            assert!(
                r.stderr.contains("pool: warning: rank 1 on ")
                    && r.stderr
                        .contains("tasks in a row that then succeeded on other workers"),
                "{}",
                r.describe()
            );
        }
    }
}

#[test]
fn retries_and_quarantine_in_spawn_mode() {
    if mpi() == Mpi::Mpich {
        skip(
            "failures::retries_and_quarantine_in_spawn_mode under MPICH: MPICH 4.0 cannot spawn from a single process",
        );
        return;
    }
    let r = retries(0, 1);
    assert!(
        r.stderr.contains("pool: warning: rank ")
            && r.stderr
                .contains("tasks in a row that then succeeded on other workers"),
        "{}",
        r.describe()
    );
}
