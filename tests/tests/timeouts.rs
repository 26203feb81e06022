//! Timeouts (`Options::timeout`): an item that hangs (an hour's sleep) is reported after its
//! 300 ms, runs again on another worker with retries, its worker is taken out while the
//! others finish, and the program still ends promptly with `main`'s exit status, leaving no
//! process behind: in one process (its stuck thread is left behind and ends with it), under
//! `mpirun -n 1..4` (the job ends with `MPI_Abort` and `main`'s status), under MPICH, and in
//! spawn mode.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Mpi, Run, mpi, mpirun_command, run, skip};

const PROGRAM: &str = env!("CARGO_BIN_EXE_timeouts");

/// How long a run may take although a task sleeps for an hour: start-up, two 300 ms timeouts
/// and the rest, with room for a loaded machine.
const PROMPT: Duration = Duration::from_secs(30);

fn scratch(name: &str) -> String {
    common::scratch(name).to_string_lossy().into_owned()
}

/// Runs `cmd` (the program and its launcher, without arguments) with `workers` workers;
/// checks what it printed, its exit status (`main`'s: 0, or 1 with `fail`), that it was
/// prompt, and that none of its processes is left.
fn check(mut cmd: Command, name: &str, workers: usize, fail: bool) -> Run {
    let dir = scratch(name);
    cmd.arg(PROGRAM).arg(&dir);
    if fail {
        cmd.arg("fail");
    }
    let start = Instant::now();
    let r = run(cmd);
    let took = start.elapsed();
    assert_eq!(r.status, Some(i32::from(fail)), "{}", r.describe());
    let retry = if workers > 1 {
        "retry: every value"
    } else {
        "retry: not run, the only worker is stuck"
    };
    assert!(r.stdout.contains(retry), "{}", r.describe());
    if workers > 1 {
        assert!(
            r.stdout.contains("keep going: item 3 timed out")
                && r.stderr.contains("ran past its timeout of 300ms on ")
                && r.stderr.contains("timed out on item 3 ("),
            "{}",
            r.describe()
        );
    }
    if workers > 2 {
        // The last map's item 3 runs past its timeout after main has returned: shutdown waits
        // for that, and then names three stuck workers.
        let stuck = r
            .stderr
            .lines()
            .find_map(|l| l.split_once(" still in an item that ran past its timeout"))
            .map(|(names, _)| names.trim_start_matches("pool: ").split(", ").count());
        assert!(
            r.stdout.contains("left running: item 3") && stuck == Some(3),
            "{}",
            r.describe()
        );
    }
    assert!(
        r.stderr
            .contains("still in an item that ran past its timeout: "),
        "{}",
        r.describe()
    );
    assert!(took < PROMPT, "took {took:?}\n{}", r.describe());
    // Nothing of the run is left: no process runs the program any more.
    std::thread::sleep(Duration::from_millis(200));
    let left = Command::new("pgrep")
        .args(["-f", &dir])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "processes left behind: {}\n{}",
        String::from_utf8_lossy(&left.stdout),
        r.describe()
    );
    std::fs::remove_dir_all(&dir).ok();
    r
}

/// The program as one process with `threads` worker threads.
fn one_process(threads: usize) -> Command {
    let mut cmd = Command::new("env");
    cmd.env("POOL_THREADS", threads.to_string());
    cmd
}

#[test]
fn in_one_process() {
    check(one_process(1), "threads-1", 1, false);
    let r = check(one_process(3), "threads-3", 3, true);
    assert!(
        r.stderr.contains("worker thread")
            && r.stderr
                .contains("their threads are left running, not joined"),
        "{}",
        r.describe()
    );
}

#[test]
fn under_mpirun() {
    // -n 1: the master alone runs its tasks on threads.
    for ranks in 1..=4 {
        let workers = if ranks == 1 { 1 } else { ranks - 1 };
        let mut cmd = mpirun_command(ranks);
        if ranks == 1 {
            cmd.env("POOL_THREADS", "1");
        }
        let r = check(cmd, &format!("mpirun-{ranks}"), workers, ranks == 3);
        if ranks > 1 {
            let said = "ending the job now with MPI_Abort and main's exit status";
            assert!(r.stderr.contains(said), "{}", r.describe());
        }
    }
}

#[test]
fn in_spawn_mode() {
    if mpi() == Mpi::Mpich {
        skip("timeouts::in_spawn_mode under MPICH: MPICH 4.0 cannot spawn from a single process");
        return;
    }
    for workers in [1, 3] {
        let mut cmd = Command::new("env");
        cmd.env("POOL_WORKERS", workers.to_string());
        check(cmd, &format!("spawn-{workers}"), workers, workers == 3);
    }
}
