//! Spawn mode: a test program started as a single process with `POOL_WORKERS=N` starts its own
//! N workers with `MPI_Comm_spawn`, gives the same results as under `mpirun -n N+1`, and fails
//! with a clear error, never a hang, when the workers cannot start. Every run has the
//! harness's timeout.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Run, Running, mpirun, reports_dead_worker, run};

const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");

/// A refused or timed-out spawn must be reported this soon.
const PROMPT: Duration = Duration::from_secs(20);

/// Runs the scenarios program as a single process with `env` set.
fn single_with(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(SCENARIOS);
    cmd.args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    run(cmd)
}

fn spawned(workers: usize, args: &[&str]) -> Run {
    single_with(&[("POOL_WORKERS", &workers.to_string())], args)
}

#[test]
fn spawned_workers_give_the_same_results_as_mpirun() {
    for n in 1..=3 {
        for scenario in ["results", "errors"] {
            let spawned = spawned(n, &[scenario]);
            spawned.assert_success();
            let launched = mpirun(n + 1, SCENARIOS, &[scenario]);
            launched.assert_success();
            let expected = format!("scenario {scenario} passed with {n} workers\n");
            assert_eq!(spawned.stdout, expected, "{}", spawned.describe());
            assert_eq!(spawned.stdout, launched.stdout, "{}", launched.describe());
        }
    }
}

#[test]
fn a_spawned_worker_that_dies_ends_the_job_without_hanging() {
    let start = Instant::now();
    let r = spawned(2, &["worker_segfault"]);
    assert_ne!(r.status, Some(0), "{}", r.describe());
    assert!(
        reports_dead_worker(&r.stderr, "segfault_on_five", Some("SIGSEGV")),
        "{}",
        r.describe()
    );
    assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
}

#[test]
fn main_returning_err_or_panicking_in_spawn_mode_exits_non_zero() {
    let r = spawned(2, &["main_err"]);
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert!(
        r.stderr
            .contains("Error: protocol error from rank 0: user error on purpose"),
        "{}",
        r.describe()
    );
    let r = spawned(2, &["main_panic"]);
    assert_eq!(r.status, Some(101), "{}", r.describe());
}

#[test]
fn a_refused_spawn_is_a_clear_error() {
    // More workers than any host here has slots (cores), with oversubscription forbidden:
    // Open MPI refuses before starting any process.
    let n = 10_000;
    let start = Instant::now();
    let r = single_with(
        &[
            ("POOL_WORKERS", &n.to_string()),
            ("OMPI_MCA_rmaps_base_oversubscribe", "0"),
        ],
        &["results"],
    );
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains(&format!(
            "Error: cannot start {n} worker processes with MPI_Comm_spawn (POOL_WORKERS={n}): "
        )) && r.stderr.contains(&format!(
            "start the workers with mpirun instead: unset POOL_WORKERS and run `mpirun -n {} ",
            n + 1
        )),
        "{}",
        r.describe()
    );
    assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
}

#[test]
fn workers_that_do_not_start_in_time_are_a_clear_error() {
    // A timeout too short for any spawn stands in for an MPI whose spawn hangs.
    let start = Instant::now();
    let r = single_with(
        &[("POOL_WORKERS", "2"), ("POOL_SPAWN_TIMEOUT", "0.001")],
        &["results"],
    );
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains(
            "Error: 2 spawned worker processes did not start within 0.001 s (POOL_WORKERS=2); \
             set POOL_SPAWN_TIMEOUT to wait longer, or start the workers with mpirun instead: \
             unset POOL_WORKERS and run `mpirun -n 3 "
        ),
        "{}",
        r.describe()
    );
    assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
}

#[test]
fn bad_settings_are_clear_errors() {
    for (env, message) in [
        (
            ("POOL_WORKERS", "0"),
            "Error: POOL_WORKERS=0: spawn mode needs at least 1 worker; unset POOL_WORKERS to \
             run the tasks on threads of this process\n",
        ),
        (
            ("POOL_WORKERS", "many"),
            "Error: POOL_WORKERS=\"many\" is not a number of workers; use a positive integer, \
             such as POOL_WORKERS=4\n",
        ),
    ] {
        let r = single_with(&[env], &["results"]);
        assert_eq!(r.status, Some(1), "{}", r.describe());
        assert_eq!(r.stderr, message, "{}", r.describe());
    }
    let r = single_with(
        &[("POOL_WORKERS", "1"), ("POOL_SPAWN_TIMEOUT", "soon")],
        &["results"],
    );
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert_eq!(
        r.stderr,
        "Error: POOL_SPAWN_TIMEOUT=\"soon\" is not a number of seconds; use a positive number, \
         such as POOL_SPAWN_TIMEOUT=60\n",
        "{}",
        r.describe()
    );
}

#[test]
fn pool_workers_under_mpirun_is_ignored_with_a_warning() {
    let mut cmd = Command::new("mpirun");
    cmd.args(["-n", "3", SCENARIOS, "results"])
        .env("POOL_WORKERS", "5");
    let r = run(cmd);
    r.assert_success();
    assert_eq!(r.stdout, "scenario results passed with 2 workers\n");
    assert!(
        r.stderr.contains(
            "pool: warning: POOL_WORKERS=5 ignored: the program runs under mpirun with 3 ranks \
             (2 workers); POOL_WORKERS applies to a program started as a single process"
        ),
        "{}",
        r.describe()
    );
}

#[test]
fn the_workers_attribute_spawns_and_pool_workers_wins_over_it() {
    const SPAWNER: &str = env!("CARGO_BIN_EXE_spawner");
    let r = run(Command::new(SPAWNER));
    r.assert_success();
    assert_eq!(
        r.stdout,
        "squares right with 2 workers\n",
        "{}",
        r.describe()
    );
    let mut cmd = Command::new(SPAWNER);
    cmd.env("POOL_WORKERS", "3");
    let r = run(cmd);
    r.assert_success();
    assert_eq!(
        r.stdout,
        "squares right with 3 workers\n",
        "{}",
        r.describe()
    );
    // Under mpirun, the job's ranks are the workers, without a warning.
    let r = mpirun(2, SPAWNER, &[]);
    r.assert_success();
    assert_eq!(
        r.stdout,
        "squares right with 1 workers\n",
        "{}",
        r.describe()
    );
    assert!(!r.stderr.contains("warning"), "{}", r.describe());
}

/// The pids of the processes whose command line contains `pattern` (from `/proc`).
fn processes_with(pattern: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().into_string().ok()?;
            pid.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(pattern)
                .then_some(pid)
        })
        .collect()
}

#[test]
fn a_killed_master_leaves_no_spawned_worker_behind() {
    let dir = std::env::temp_dir().join(format!("pool-spawn-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    let journal = dir.join("run.journal");
    let log = dir.join("exec.log");
    let mut cmd = Command::new(SCENARIOS);
    cmd.arg("journal")
        .arg(&journal)
        .args(["5000", "20"])
        .env("POOL_WORKERS", "2")
        .env("POOL_TEST_EXEC_LOG", &log);
    let mut master = Running::start(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&log).map_or(0, |s| s.lines().count()) < 10 {
        assert!(master.running(), "the run ended before it was killed");
        assert!(Instant::now() < deadline, "the workers never ran a task");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The master and its 2 workers run the same command line, journal path included.
    let pattern = journal.to_string_lossy().into_owned();
    let running = processes_with(&pattern);
    assert_eq!(running.len(), 3, "{running:?}");
    master.signal("KILL");
    let r = master.finish();
    assert_eq!(r.status, None, "{}", r.describe());
    // Open MPI ends the spawned workers once their parent is gone.
    let deadline = Instant::now() + PROMPT;
    let mut left = processes_with(&pattern);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        left = processes_with(&pattern);
    }
    for pid in &left {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        left.is_empty(),
        "workers still running {PROMPT:?} after the master died: {left:?}"
    );
}

/// MPICH 4.0 cannot spawn from a single process here: the program says so at once, names
/// `mpirun` as the way out, and exits 1; no hang. Run by the MPICH pass of `scripts/test.sh`
/// (`--test spawn mpich`); under Open MPI the tests above cover spawning.
#[test]
fn mpich_refuses_spawn_mode_with_a_clear_error() {
    if common::mpi() != common::Mpi::Mpich {
        common::skip("mpich_refuses_spawn_mode_with_a_clear_error: not running under MPICH");
        return;
    }
    let start = Instant::now();
    let r = spawned(2, &["results"]);
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains(
            "Error: cannot start 2 worker processes with MPI_Comm_spawn (POOL_WORKERS=2)"
        ) && r.stderr.contains("MPICH 4.0 cannot")
            && r.stderr
                .contains("unset POOL_WORKERS and run `mpirun -n 3 "),
        "{}",
        r.describe()
    );
    assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
}
