//! Journals that never return a stale result: a recorded outcome is reused only for the
//! arguments it was computed from; changed inputs run again; failures are recorded, and on
//! resume run again or are returned as they were. In one process and under `mpirun`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Mpi, Run, mpi, mpirun_command, run, scratch, skip};
use pool_runtime::journal;

const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");

/// Runs scenario `args` with `ranks` processes (1: a single process, no launcher; 0: spawn
/// mode with 2 workers), with the execution log `log`.
fn scenario(ranks: usize, args: &[&str], log: &Path) -> Run {
    let mut cmd = if ranks <= 1 {
        let mut cmd = Command::new(SCENARIOS);
        if ranks == 0 {
            cmd.env("POOL_WORKERS", "2");
        }
        cmd
    } else {
        let mut cmd = mpirun_command(ranks);
        cmd.arg(SCENARIOS);
        cmd
    };
    cmd.args(args).env("POOL_TEST_EXEC_LOG", log);
    let r = run(cmd);
    r.assert_success();
    r
}

/// The inputs that ran, in the order they ran (one line per run in the log); the log is
/// emptied.
fn executed(log: &Path) -> Vec<u64> {
    let mut ran: Vec<u64> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("an input per line"))
        .collect();
    let _ = std::fs::remove_file(log);
    ran.sort_unstable();
    ran
}

fn changed_inputs_rerun(ranks: usize, mode: &str) {
    let dir = scratch(&format!("changed-{ranks}-{mode}"));
    let (journal, log) = (dir.join("sweep.journal"), dir.join("exec.log"));
    let path = journal.to_str().expect("utf-8");
    let sweep = |changed: &str| scenario(ranks, &["sweep", path, "400", changed, mode], &log);

    let r = sweep("0");
    assert_eq!(executed(&log).len(), 400, "{}", r.describe());
    // The same sweep again: nothing runs.
    let r = sweep("0");
    assert_eq!(executed(&log), Vec::<u64>::new(), "{}", r.describe());
    assert!(!r.stderr.contains("changed since"), "{}", r.describe());
    // The last 10 inputs changed: exactly those run again, with a warning; the results
    // returned are for the new arguments (the scenario checks each one).
    let r = sweep("10");
    assert_eq!(
        executed(&log),
        (1390..1400).collect::<Vec<_>>(),
        "{}",
        r.describe()
    );
    assert!(
        r.stderr.contains(&format!(
            "pool: warning: journal {path}: 10 inputs changed since their outcomes were \
             recorded (other arguments at the same position): they ran again"
        )),
        "{}",
        r.describe()
    );
    // Every input changed (another sweep under the same file name): all run again, none of
    // the old results comes back.
    let r = scenario(ranks, &["sweep", path, "400", "400", mode], &log);
    assert_eq!(executed(&log).len(), 390, "{}", r.describe());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn changed_inputs_run_again_in_one_process() {
    changed_inputs_rerun(1, "map");
    changed_inputs_rerun(1, "unordered");
}

#[test]
fn changed_inputs_run_again_under_mpirun() {
    changed_inputs_rerun(3, "map");
    changed_inputs_rerun(2, "unordered");
}

fn failures(ranks: usize) {
    let dir = scratch(&format!("failing-{ranks}"));
    let (journal, log) = (dir.join("failing.journal"), dir.join("exec.log"));
    let path = journal.to_str().expect("utf-8");
    let r = scenario(ranks, &["failing", path, "keep"], &log);
    assert_eq!(
        executed(&log),
        (0..20).collect::<Vec<_>>(),
        "{}",
        r.describe()
    );
    let summary = journal::inspect(&journal).expect("readable");
    let mut failed = summary.failed.clone();
    failed.sort_unstable();
    assert_eq!(failed, (0..10).map(|k| 2 * k + 1).collect::<Vec<_>>());
    // Kept: the recorded errors come back, nothing runs.
    let r = scenario(ranks, &["failing", path, "keep"], &log);
    assert_eq!(executed(&log), Vec::<u64>::new(), "{}", r.describe());
    // Rerun: only the failed inputs run again (and fail again).
    let r = scenario(ranks, &["failing", path, "rerun"], &log);
    assert_eq!(
        executed(&log),
        (0..10).map(|k| 2 * k + 1).collect::<Vec<_>>(),
        "{}",
        r.describe()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn journals_in_spawn_mode() {
    if mpi() == Mpi::Mpich {
        skip(
            "journal::journals_in_spawn_mode under MPICH: MPICH 4.0 cannot spawn from a single process",
        );
        return;
    }
    changed_inputs_rerun(0, "map");
    failures(0);
}

#[test]
fn failures_are_recorded_and_kept_or_rerun_in_one_process() {
    failures(1);
}

#[test]
fn failures_are_recorded_and_kept_or_rerun_under_mpirun() {
    failures(3);
}
