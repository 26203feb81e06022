//! Runs the test programs of `src/bin/` under `mpirun -n 1..4` and as single processes, each
//! with a timeout, and checks their exit status and output.

mod common;

use std::time::{Duration, Instant};

use common::{mpirun, mpirun_command, run, single};

const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");

fn scenario_everywhere(name: &str) {
    let r = single(SCENARIOS, &[name]);
    r.assert_success();
    assert!(
        r.stdout.contains(&format!("scenario {name} passed")),
        "{}",
        r.describe()
    );
    for n in 1..=4 {
        let r = mpirun(n, SCENARIOS, &[name]);
        r.assert_success();
        let workers = if n == 1 {
            ""
        } else {
            &format!("with {} workers", n - 1)
        };
        assert!(r.stdout.contains(workers), "{}", r.describe());
    }
}

#[test]
fn results_are_right_in_every_mode() {
    scenario_everywhere("results");
}

/// 32 ranks on a 2-core machine: 31 workers sleeping through 620 tasks, every one used.
#[test]
fn thirty_two_ranks_oversubscribed() {
    let r = mpirun(32, SCENARIOS, &["wide"]);
    r.assert_success();
    assert!(
        r.stdout.contains("scenario wide passed with 31 workers"),
        "{}",
        r.describe()
    );
}

#[test]
fn task_errors_are_reported_and_the_pool_goes_on() {
    scenario_everywhere("errors");
}

#[test]
fn a_hundred_thousand_tiny_tasks() {
    scenario_everywhere("many");
}

#[test]
fn inputs_are_read_lazily() {
    scenario_everywhere("lazy");
}

#[test]
fn task_panics_are_not_printed_by_workers() {
    let r = mpirun(3, SCENARIOS, &["errors"]);
    r.assert_success();
    assert!(!r.stderr.contains("panicked at"), "{}", r.describe());
}

#[test]
fn main_returning_err_exits_non_zero_everywhere() {
    for n in [1, 3] {
        let r = mpirun(n, SCENARIOS, &["main_err"]);
        assert_ne!(r.status, Some(0), "{}", r.describe());
        assert!(
            r.stderr
                .contains("Error: protocol error from rank 0: user error on purpose"),
            "{}",
            r.describe()
        );
    }
    let r = single(SCENARIOS, &["main_err"]);
    assert_eq!(r.status, Some(1), "{}", r.describe());
}

#[test]
fn main_panicking_exits_non_zero_without_hanging() {
    for n in [1, 3] {
        let r = mpirun(n, SCENARIOS, &["main_panic"]);
        assert_ne!(r.status, Some(0), "{}", r.describe());
        assert!(
            r.stderr.contains("main panics on purpose"),
            "{}",
            r.describe()
        );
    }
    let r = single(SCENARIOS, &["main_panic"]);
    assert_eq!(r.status, Some(101), "{}", r.describe());
}

#[test]
fn ranks_with_different_tasks_are_refused_at_start_up() {
    let mut cmd = mpirun_command(1);
    cmd.args([SCENARIOS, "results", ":", "-n", "1"])
        .arg(env!("CARGO_BIN_EXE_other_tasks"));
    let r = run(cmd);
    assert_ne!(r.status, Some(0), "{}", r.describe());
    assert!(
        r.stderr.contains("Error: rank 1 on ")
            && r.stderr
                .contains("has different pool tasks than the master (rank 0): it lacks ")
            && r.stderr.contains("scenarios::negate")
            && r.stderr
                .contains("it has other_tasks::only_here that the master lacks")
            && r.stderr.contains("run the same binary on every rank"),
        "{}",
        r.describe()
    );
}

#[test]
fn duplicate_task_names_are_refused_at_start_up() {
    for r in [
        single(env!("CARGO_BIN_EXE_duplicate_names"), &[]),
        mpirun(2, env!("CARGO_BIN_EXE_duplicate_names"), &[]),
    ] {
        assert_ne!(r.status, Some(0), "{}", r.describe());
        assert!(
            r.stderr.contains(
                "Error: duplicate pool task names: same; give each task a unique name with \
                 #[pool_task(name = \"...\")]"
            ),
            "{}",
            r.describe()
        );
    }
}

#[test]
fn a_crashed_worker_ends_the_job_without_hanging() {
    let start = Instant::now();
    let r = mpirun(3, SCENARIOS, &["worker_abort"]);
    assert_ne!(r.status, Some(0), "{}", r.describe());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
}
