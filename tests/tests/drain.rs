//! Ending early without losing work: the drain after SIGTERM/SIGINT (the chunks in flight
//! finish and are journaled before the job ends), in one process and under `mpirun`. (Under
//! Slurm: tests/slurm.rs.) Every run has the harness's timeout and leaves no process behind.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Mpi, Running, launcher, mpi, scratch, serial, skip};
use pool_runtime::journal;

const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");

/// A drained job must end this soon after the signal: the grace (5 s) and a margin.
const PROMPT: Duration = Duration::from_secs(12);

/// Indices listed in an execution log, one per line.
fn executed(log: &Path) -> BTreeSet<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("an index per line"))
        .collect()
}

fn journaled(path: &Path) -> BTreeSet<u64> {
    let summary = journal::inspect(path).expect("the journal is readable");
    assert_eq!(summary.damaged_bytes, 0, "a damaged journal");
    summary.done.into_iter().collect()
}

/// The number of results the master's drain report says arrived, if it wrote one.
fn drained(stderr: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pool: drained after SIG"))?;
    let after = line.split(": ").nth(2)?;
    after.split(' ').next()?.parse().ok()
}

/// `scenarios journal` of `n` tasks of `ms` milliseconds, with `launch` in front (`mpirun`
/// there stands for the launcher under test), its journal and execution log in `dir`.
fn journal_run(launch: &[&str], dir: &Path, n: u64, ms: u64) -> Command {
    let mut cmd = Command::new(if launch.first() == Some(&"mpirun") {
        launcher()
    } else {
        launch.first().copied().unwrap_or(SCENARIOS).to_owned()
    });
    if !launch.is_empty() {
        cmd.args(&launch[1..]).arg(SCENARIOS);
    }
    cmd.arg("journal")
        .arg(dir.join("run.journal"))
        .arg(n.to_string())
        .arg(ms.to_string())
        .env("POOL_TEST_SLEEP_MS", ms.to_string())
        .env("POOL_TEST_EXEC_LOG", dir.join("exec.log"))
        .env("POOL_TEST_MASTER_PID", dir.join("master.pid"));
    cmd
}

/// Waits until the journal in `dir` holds `count` results while `running` runs.
fn wait_for_journal(running: &mut Running, dir: &Path, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = journal::inspect(dir.join("run.journal")).map_or(0, |s| s.done.len() as u64);
        if done >= count {
            return;
        }
        assert!(running.running(), "the run ended before it was signalled");
        assert!(Instant::now() < deadline, "no progress in the journal");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill(pid: &str, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.trim())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// One process, 2 worker threads, tasks of 300 ms: SIGTERM, and SIGTERM again 20 ms later
/// (as Slurm sends at the time limit). The chunks in flight finish: every task that ran is in
/// the journal, the report says how many results arrived during the drain, and the process
/// ends with 128 + 15.
#[test]
fn sigterm_to_one_process_lets_the_tasks_in_flight_finish_into_the_journal() {
    let _serial = serial();
    let dir = scratch("single");
    let mut cmd = journal_run(&[], &dir, 200, 300);
    cmd.env("POOL_THREADS", "2");
    let mut running = Running::start(cmd);
    wait_for_journal(&mut running, &dir, 4);
    let signalled = Instant::now();
    running.signal("TERM");
    std::thread::sleep(Duration::from_millis(20));
    running.signal("TERM");
    let r = running.finish();
    let took = signalled.elapsed();
    assert_eq!(r.status, Some(143), "{}", r.describe());
    assert!(took < PROMPT, "{}", r.describe());
    let arrived = drained(&r.stderr).unwrap_or_else(|| panic!("no drain\n{}", r.describe()));
    eprintln!(
        "drain: one process: {arrived} results arrived in the drain, which ended {took:.2?} after the signal"
    );
    assert!(arrived > 0, "{}", r.describe());
    assert!(
        r.stderr.contains("none is still in flight")
            && r.stderr
                .contains("pool: SIGTERM again: still waiting for the tasks in flight"),
        "{}",
        r.describe()
    );
    let (done, ran) = (
        journaled(&dir.join("run.journal")),
        executed(&dir.join("exec.log")),
    );
    assert_eq!(done, ran, "every task that ran is in the journal");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One process, tasks of 3 s, a grace of 0.3 s (`POOL_DRAIN_GRACE`): the drain ends at the
/// grace and says what is still in flight; then SIGINT twice: the second ends the process at
/// once.
#[test]
fn the_drain_ends_at_its_grace_and_a_second_sigint_ends_it_at_once() {
    let _serial = serial();
    for (case, grace) in [("grace", "0.3"), ("sigint", "60")] {
        let dir = scratch(case);
        let mut cmd = journal_run(&[], &dir, 100, 3000);
        cmd.env("POOL_THREADS", "2").env("POOL_DRAIN_GRACE", grace);
        let mut running = Running::start(cmd);
        // A chunk in flight on each thread (the first results take 3 s).
        wait_for_journal(&mut running, &dir, 0);
        std::thread::sleep(Duration::from_millis(500));
        let signalled = Instant::now();
        let signal = if case == "grace" { "TERM" } else { "INT" };
        running.signal(signal);
        if case == "sigint" {
            std::thread::sleep(Duration::from_millis(200));
            running.signal("INT");
        }
        let r = running.finish();
        let took = signalled.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "took {took:?}\n{}",
            r.describe()
        );
        if case == "grace" {
            assert_eq!(r.status, Some(143), "{}", r.describe());
            assert_eq!(drained(&r.stderr), Some(0), "{}", r.describe());
            assert!(
                r.stderr
                    .contains("2 are still in flight after the grace of 0.3 s (POOL_DRAIN_GRACE)"),
                "{}",
                r.describe()
            );
        } else {
            // The default action of SIGINT: no status, killed by the signal.
            assert_eq!(r.status, None, "{}", r.describe());
            assert!(
                r.stderr.contains("pool: SIGINT again: exiting now"),
                "{}",
                r.describe()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Under `mpirun -n 4`, tasks of 300 ms: SIGTERM to the master (rank 0) alone: the workers
/// finish their chunks, every task that ran is in the journal. SIGTERM to the launcher, which
/// passes it to every rank (Open MPI: a second later, then SIGKILL a second after that; MPICH:
/// at once, and no SIGKILL), with tasks of 100 ms: the workers, signalled too, still deliver.
#[test]
fn sigterm_under_mpirun_lets_the_workers_deliver_what_they_hold() {
    let _serial = serial();
    for target in ["master", "launcher"] {
        let dir = scratch(&format!("mpirun-{target}"));
        let ms = if target == "master" { 300 } else { 100 };
        let mut running = Running::start(journal_run(&["mpirun", "-n", "4"], &dir, 500, ms));
        wait_for_journal(&mut running, &dir, 6);
        let signalled = Instant::now();
        if target == "master" {
            let pid = std::fs::read_to_string(dir.join("master.pid")).expect("the master's PID");
            kill(&pid, "TERM");
        } else {
            running.signal("TERM");
        }
        let r = running.finish();
        let took = signalled.elapsed();
        assert!(took < PROMPT, "{}", r.describe());
        let (done, ran) = (
            journaled(&dir.join("run.journal")),
            executed(&dir.join("exec.log")),
        );
        assert!(
            done.is_subset(&ran),
            "the journal holds results that never ran"
        );
        let arrived = drained(&r.stderr);
        eprintln!(
            "drain: mpirun ({:?}), SIGTERM to the {target}: {arrived:?} results arrived in the \
             drain; the job ended {took:.2?} after the signal; {} of {} tasks that ran are \
             journaled",
            mpi(),
            done.len(),
            ran.len()
        );
        if mpi() == Mpi::Mpich && target == "launcher" {
            skip(&format!(
                "the exit status and the drain report when MPICH's mpiexec is signalled: it \
                 passes SIGTERM to every rank at once, then sometimes exits 0 or ends before it \
                 forwarded the master's output (this run: status {:?}, report {arrived:?}; \
                 checked: the journal holds no result that never ran)",
                r.status
            ));
            let _ = std::fs::remove_dir_all(&dir);
            continue;
        }
        assert_ne!(r.status, Some(0), "{}", r.describe());
        let arrived = arrived.unwrap_or_else(|| panic!("no drain report\n{}", r.describe()));
        assert!(arrived > 0, "{}", r.describe());
        if target == "master" {
            assert_eq!(done, ran, "every task that ran is in the journal");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `scenarios journal` of 200 tasks of 100 ms with `POOL_DEADLINE=3` (seconds after the
/// start) in one process (2 threads) and under `mpirun -n 3`: the run ends by itself at the
/// deadline, non-zero, with `Error::Deadline`; every task that ran is in the journal, and the
/// journal and the inputs not started make up all of them. Run again with the journal (and
/// `POOL_DEADLINE=off`), it finishes without running anything twice.
#[test]
fn a_deadline_ends_the_run_in_time_with_a_full_journal() {
    let _serial = serial();
    const N: u64 = 200;
    for (case, launch) in [("one", &[][..]), ("mpirun", &["mpirun", "-n", "3"][..])] {
        let dir = scratch(&format!("deadline-{case}"));
        let mut cmd = journal_run(launch, &dir, N, 100);
        cmd.env("POOL_THREADS", "2").env("POOL_DEADLINE", "3");
        let start = Instant::now();
        let r = common::run(cmd);
        let took = start.elapsed();
        assert_eq!(r.status, Some(1), "{}", r.describe());
        let line = r
            .stderr
            .lines()
            .find(|l| l.starts_with("Error: deadline reached (POOL_DEADLINE=3): "))
            .unwrap_or_else(|| panic!("no deadline error\n{}", r.describe()));
        let not_started: u64 = line
            .split(": ")
            .nth(2)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {line:?}"));
        let (done, ran) = (
            journaled(&dir.join("run.journal")),
            executed(&dir.join("exec.log")),
        );
        eprintln!(
            "deadline ({case}): ended {took:.2?} after the start; {} results journaled, \
             {not_started} not started",
            done.len()
        );
        // Three seconds from the pool's start, which follows the process's by MPI's start-up.
        assert!(
            took < Duration::from_secs(6),
            "took {took:?}\n{}",
            r.describe()
        );
        assert!(
            line.contains("the results that finished are in the journal"),
            "{line}"
        );
        assert_eq!(done, ran, "every task that ran is in the journal");
        assert_eq!(done.len() as u64 + not_started, N, "{line}");
        assert!(not_started > 0 && !done.is_empty(), "{line}");

        let mut again = journal_run(launch, &dir, N, 0);
        again
            .env("POOL_THREADS", "2")
            .env("POOL_DEADLINE", "off")
            .env("POOL_TEST_EXEC_LOG", dir.join("again.log"));
        let r = common::run(again);
        r.assert_success();
        let sum = (0..N).fold(0u64, |a, x| a.wrapping_add(x * x));
        assert!(
            r.stdout.contains(&format!("journal sum {sum}")),
            "{}",
            r.describe()
        );
        let twice: Vec<u64> = executed(&dir.join("again.log"))
            .intersection(&done)
            .copied()
            .collect();
        assert!(twice.is_empty(), "journaled tasks ran again: {twice:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `Options::deadline` in a pool of threads (`pool_runtime::local`): `map_with` and
/// `map_outcomes_with` fail with `Error::Deadline`; a `map_unordered_with` stream yields the
/// results of the tasks sent, then one `NotStarted` error for the first input not started, and
/// ends. A deadline already past sends nothing.
#[test]
fn options_deadline_fails_the_call_instead_of_a_partial_result() {
    use pool_runtime::{Error, Options, Pool, TaskErrorKind};
    use tests::sleep_ms;
    let soon = || Options::new().deadline(Instant::now() + Duration::from_millis(300));
    pool_runtime::local(2, |pool: &mut Pool| {
        match pool.map_with(sleep_ms, vec![20u64; 100], soon()) {
            Err(Error::Deadline {
                reason,
                first,
                not_started: Some(n),
                journal: None,
            }) => {
                assert_eq!(reason, "Options::deadline");
                assert_eq!(first + n, 100, "first {first}, {n} not started");
                assert!(n > 50 && first >= 2, "first {first}, {n} not started");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            pool.map_outcomes_with(sleep_ms, vec![20u64; 100], soon()),
            Err(Error::Deadline { .. })
        ));
        let outcomes: Vec<_> = pool
            .map_unordered_with(sleep_ms, vec![20u64; 100], soon())
            .expect("no journal")
            .collect();
        let (last_index, last) = outcomes.last().expect("outcomes");
        let e = last
            .as_ref()
            .expect_err("the last outcome says what was not started");
        assert_eq!(e.kind, TaskErrorKind::NotStarted);
        assert!(
            e.message.starts_with(&format!(
                "deadline reached (Options::deadline): {} inputs (from input {last_index} on) \
                 were not started",
                100 - last_index
            )),
            "{e}"
        );
        assert!(
            outcomes[..outcomes.len() - 1]
                .iter()
                .all(|(_, o)| o.is_ok())
        );
        assert_eq!(outcomes.len() - 1, *last_index);
        let past = Options::new().deadline(Instant::now());
        match pool.map_with(sleep_ms, vec![20u64; 10], past) {
            Err(Error::Deadline {
                first: 0,
                not_started: Some(10),
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    });
}
