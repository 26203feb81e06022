//! No hang, no lost result: crashed workers, signals, resume journals, a full disk, and a
//! million tasks. Every run has the harness's timeout.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Mpi, Running, launcher, mpi, mpirun, reports_dead_worker, run, scratch, serial, single, skip,
};
use pool_runtime::journal;

const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");

/// A job must end this soon after a worker dies or a signal arrives.
const PROMPT: Duration = Duration::from_secs(15);

fn crash(scenario: &str, task: &str, signal: Option<&str>) {
    let start = Instant::now();
    let r = mpirun(3, SCENARIOS, &[scenario]);
    let took = start.elapsed();
    assert_ne!(r.status, Some(0), "{}", r.describe());
    assert!(took < PROMPT, "took {took:?}\n{}", r.describe());
    match mpi() {
        // The master notices the death itself and names the rank and what it held.
        Mpi::OpenMpi => assert!(
            reports_dead_worker(&r.stderr, task, signal),
            "{}",
            r.describe()
        ),
        // MPICH's launcher (Hydra) kills every other rank the moment one dies, before the
        // master's next look at its workers (every 20 ms): the launcher's report is what
        // names the death there.
        Mpi::Mpich => {
            assert!(
                r.stdout
                    .contains("BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES"),
                "{}",
                r.describe()
            );
            skip(
                "the master's own report of a dead worker under MPICH: Hydra kills the \
                 master at once when a rank dies (checked instead: the job ends promptly, \
                 non-zero, with Hydra's report)",
            );
        }
    }
    // A worker killed by a catchable signal says so itself.
    if let Some(signal) = signal {
        assert!(
            r.stderr.contains(&format!(
                ": killed by {signal} while running task `tests::{task}` on item 5"
            )),
            "{}",
            r.describe()
        );
    }
}

#[test]
fn a_worker_that_aborts_ends_the_job_and_is_named() {
    let _serial = serial();
    crash("worker_abort", "abort_on_five", Some("SIGABRT"));
}

#[test]
fn a_worker_that_segfaults_ends_the_job_and_is_named() {
    let _serial = serial();
    crash("worker_segfault", "segfault_on_five", Some("SIGSEGV"));
}

#[test]
fn a_worker_killed_with_sigkill_ends_the_job_and_is_named() {
    let _serial = serial();
    crash("worker_sigkill", "sigkill_on_five", None);
}

/// A task that calls `exit(0)` on a worker: the job ends non-zero, within seconds, with one
/// report that says how the worker ended (when its status could still be read) and what it
/// held, and no second report of the SIGTERM the launcher sends afterwards.
#[test]
fn a_worker_that_exits_cleanly_is_reported_once() {
    let _serial = serial();
    let start = Instant::now();
    let r = mpirun(3, SCENARIOS, &["worker_exit"]);
    assert_ne!(r.status, Some(0), "{}", r.describe());
    assert!(start.elapsed() < PROMPT, "{}", r.describe());
    if mpi() == Mpi::Mpich {
        skip(
            "the master's own report of a worker that exited under MPICH: Hydra ends the job \
             the moment a rank exits (checked: the job ends promptly, non-zero)",
        );
        return;
    }
    // The worker says what happened; the master says what it held (its exit status is gone
    // by the time the master looks: Open MPI reaps its ranks at once).
    assert!(
        r.stderr.contains(
            "exit was called while running task `tests::exit_on_five` on item 5 (job 0, chunk \
             of items 5..=5); the process ends with status 1"
        ),
        "{}",
        r.describe()
    );
    assert!(
        r.stderr.contains(
            "died while it held task `tests::exit_on_five` item 5: the task ended its process"
        ) || r
            .stderr
            .contains("exited with status 1 while it held task `tests::exit_on_five` item 5"),
        "{}",
        r.describe()
    );
    assert!(
        !r.stderr.contains("interrupted by SIGTERM"),
        "{}",
        r.describe()
    );
}

/// In one process, a task that calls `exit(0)` ends the run with status 1 and a message,
/// not with status 0 and no word.
#[test]
fn a_task_that_exits_in_one_process_fails_the_run_with_a_message() {
    let r = single(SCENARIOS, &["worker_exit"]);
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains(
            "pool: a task called exit (std::process::exit, or a library's exit) while the \
             pool ran it"
        ),
        "{}",
        r.describe()
    );
}

/// Indices listed in an execution log, one per line (a task that ran twice appears twice).
fn executed(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("an index per line"))
        .collect()
}

/// `launch` is the command in front of the program; `mpirun` there stands for the MPI
/// launcher under test ([`launcher`]).
fn journal_run(launch: &[&str], journal: &Path, n: u64, ms: u64, log: &Path) -> Command {
    let mut cmd = Command::new(if launch[0] == "mpirun" {
        launcher()
    } else {
        launch[0].to_owned()
    });
    cmd.args(&launch[1..])
        .arg(SCENARIOS)
        .arg("journal")
        .arg(journal)
        .arg(n.to_string())
        .arg(ms.to_string())
        .env("POOL_TEST_SLEEP_MS", ms.to_string())
        .env("POOL_TEST_EXEC_LOG", log);
    cmd
}

fn sum_of_squares(n: u64) -> u64 {
    (0..n).fold(0u64, |a, x| a.wrapping_add(x * x))
}

/// Starts a journaled run, interrupts it with `signal` once a quarter of its results are in
/// the journal, reruns it, and checks: the first run ends promptly and non-zero; the second
/// returns exactly the results of an uninterrupted run; no task whose result the journal held
/// ran again.
fn interrupt_and_resume(name: &str, launch: &[&str], signal: &str) {
    const N: u64 = 1500;
    let dir = scratch(name);
    let path = dir.join("run.journal");
    let (log1, log2) = (dir.join("exec1.log"), dir.join("exec2.log"));

    let mut first = Running::start(journal_run(launch, &path, N, 4, &log1));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = journal::inspect(&path).map_or(0, |s| s.done.len() as u64);
        if done >= N / 4 {
            break;
        }
        assert!(first.running(), "the run ended before it was interrupted");
        assert!(Instant::now() < deadline, "no progress in the journal");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.signal(signal);
    let signalled = Instant::now();
    let r = first.finish();
    assert!(signalled.elapsed() < PROMPT, "{}", r.describe());
    if launch[0] == "mpirun" && mpi() == Mpi::Mpich {
        skip(&format!(
            "{name}: the exit status and the master's message under MPICH: Hydra's mpiexec \
             passes SIG{signal} to every rank at once, then sometimes exits 0 (1 run in 10 \
             here) or ends before it forwarded the master's message (1 in 3 for SIGTERM); \
             the journal checks still run"
        ));
    } else {
        assert_ne!(r.status, Some(0), "{}", r.describe());
        assert!(
            r.stderr.contains("pool: interrupted by SIG")
                && r.stderr
                    .contains("results received so far are in the journal"),
            "{}",
            r.describe()
        );
    }

    let summary = journal::inspect(&path).expect("the journal is readable");
    assert_eq!(summary.task, "tests::logged_square");
    assert_eq!(summary.inputs, N);
    let done: BTreeSet<u64> = summary.done.iter().copied().collect();
    assert!(
        done.len() as u64 >= N / 4 && (done.len() as u64) < N,
        "{} done",
        done.len()
    );
    let ran1: BTreeSet<u64> = executed(&log1).into_iter().collect();
    assert!(
        done.is_subset(&ran1),
        "the journal holds results that never ran"
    );

    let r = run(journal_run(launch, &path, N, 0, &log2));
    r.assert_success();
    assert!(
        r.stdout
            .contains(&format!("journal sum {}", sum_of_squares(N))),
        "{}",
        r.describe()
    );
    let ran2 = executed(&log2);
    let again: Vec<u64> = ran2.iter().copied().filter(|i| done.contains(i)).collect();
    assert!(again.is_empty(), "finished tasks ran again: {again:?}");
    let all: BTreeSet<u64> = done.iter().chain(&ran2).copied().collect();
    assert_eq!(all.len() as u64, N);
    let summary = journal::inspect(&path).expect("readable");
    assert_eq!(summary.done.len() as u64, N);
    assert_eq!(summary.damaged_bytes, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_to_mpirun_stops_the_job_and_the_journal_resumes_it() {
    let _serial = serial();
    interrupt_and_resume("term-mpirun", &["mpirun", "-n", "3"], "TERM");
}

#[test]
fn ctrl_c_to_mpirun_stops_the_job_and_the_journal_resumes_it() {
    let _serial = serial();
    interrupt_and_resume("int-mpirun", &["mpirun", "-n", "2"], "INT");
}

#[test]
fn sigterm_to_a_single_process_stops_it_and_the_journal_resumes_it() {
    let _serial = serial();
    interrupt_and_resume("term-single", &["env"], "TERM");
}

#[test]
fn ctrl_c_to_a_master_with_spawned_workers_stops_the_job_and_the_journal_resumes_it() {
    if common::skip_unless_open_mpi(
        "ctrl_c_to_a_master_with_spawned_workers",
        "MPICH 4.0's singleton MPI_Comm_spawn does not work here",
    ) {
        return;
    }
    let _serial = serial();
    interrupt_and_resume("int-spawn", &["env", "POOL_WORKERS=2"], "INT");
}

#[test]
fn a_journal_for_another_input_count_is_refused() {
    let _serial = serial();
    let dir = scratch("refused");
    let path = dir.join("run.journal");
    let log = dir.join("exec.log");
    run(journal_run(&["env"], &path, 40, 0, &log)).assert_success();
    let r = run(journal_run(&["env"], &path, 50, 0, &log));
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains(&format!(
            "Error: journal {}: it was written for task `tests::logged_square` over 40 \
             inputs, but this map runs task `tests::logged_square` over 50 inputs",
            path.display()
        )),
        "{}",
        r.describe()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_last_record_is_dropped_and_its_task_runs_again() {
    let _serial = serial();
    const N: u64 = 300;
    let dir = scratch("torn");
    let path = dir.join("run.journal");
    let log = dir.join("exec.log");
    run(journal_run(&["env"], &path, N, 0, &log)).assert_success();
    // A crash in mid-write: the last record loses its last bytes, and garbage follows.
    let len = std::fs::metadata(&path).expect("journal").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(len - 2).expect("truncate");
    drop(file);
    let before = journal::inspect(&path).expect("readable");
    assert_eq!(before.done.len() as u64, N - 1);
    let log2 = dir.join("exec2.log");
    let r = run(journal_run(&["env"], &path, N, 0, &log2));
    r.assert_success();
    assert!(
        r.stderr
            .contains("damaged bytes at its end (a write cut short)"),
        "{}",
        r.describe()
    );
    assert!(
        r.stdout
            .contains(&format!("journal sum {}", sum_of_squares(N))),
        "{}",
        r.describe()
    );
    assert_eq!(
        executed(&log2).len(),
        1,
        "only the torn record's task runs again"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tiny tmpfs mounted on a scratch directory, unmounted on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// `None` where mounting is not allowed (not root).
    fn mount(name: &str, size: &str) -> Option<SmallDisk> {
        let dir = scratch(name);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_journal_on_a_full_disk_is_an_error_and_loses_nothing() {
    let _serial = serial();
    const N: u64 = 20_000;
    let Some(disk) = SmallDisk::mount("full", "64k") else {
        eprintln!("skipped: cannot mount a small tmpfs to fill (needs root); CI runs as root");
        return;
    };
    let path = disk.dir.join("run.journal");
    let dir = scratch("full-logs");
    let (log1, log2) = (dir.join("exec1.log"), dir.join("exec2.log"));
    let r = run(journal_run(&["env"], &path, N, 0, &log1));
    assert_eq!(r.status, Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains(&format!(
            "Error: journal {}: cannot append results: No space left on device",
            path.display()
        )),
        "{}",
        r.describe()
    );
    let done: BTreeSet<u64> = journal::inspect(&path)
        .expect("readable")
        .done
        .into_iter()
        .collect();
    assert!(
        !done.is_empty() && (done.len() as u64) < N,
        "{}",
        done.len()
    );
    // With room again, the run completes from where the journal stopped.
    let roomy = dir.join("run.journal");
    std::fs::copy(&path, &roomy).expect("copy the journal");
    let r = run(journal_run(&["env"], &roomy, N, 0, &log2));
    r.assert_success();
    assert!(
        r.stdout
            .contains(&format!("journal sum {}", sum_of_squares(N))),
        "{}",
        r.describe()
    );
    let again: Vec<u64> = executed(&log2)
        .into_iter()
        .filter(|i| done.contains(i))
        .collect();
    assert!(again.is_empty(), "journaled tasks ran again: {again:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_million_tasks_with_checksums() {
    let _serial = serial();
    for r in [
        single(SCENARIOS, &["million"]),
        mpirun(3, SCENARIOS, &["million"]),
    ] {
        r.assert_success();
        assert!(
            r.stdout.contains("million sum ") && r.stdout.contains("scenario million passed"),
            "{}",
            r.describe()
        );
    }
}
