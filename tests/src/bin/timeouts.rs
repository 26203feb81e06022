//! Timeouts (`Options::timeout`): an item that hangs is reported, runs again elsewhere with
//! retries, its worker is taken out, and the program ends with `main`'s status although that
//! worker never comes back: `timeouts DIR [fail]` (`fail`: `main` returns an error, status 1).
//!
//! Run by `tests/tests/timeouts.rs` in one process, under mpirun (Open MPI and MPICH) and in
//! spawn mode. Prints one line per check, for the test to compare.

#![deny(warnings)]

use std::time::Duration;

use pool_runtime::TaskErrorKind;
use pool_runtime::prelude::*;

/// The item that hangs.
const HANGS: u64 = 3;
/// How long a hung item sleeps: far longer than any test waits.
const HANG: Duration = Duration::from_secs(3600);
const LIMIT: Duration = Duration::from_millis(300);

/// Returns `x`, except that the first attempt of item [`HANGS`] in `dir` hangs (it leaves a
/// mark, so that an attempt after it returns at once).
#[pool_task]
fn hang_once(dir: String, x: u64) -> u64 {
    let mark = format!("{dir}/hung-{x}");
    if x == HANGS && std::fs::create_dir(&mark).is_ok() {
        std::thread::sleep(HANG);
    }
    std::thread::sleep(Duration::from_millis(5));
    x
}

fn inputs(dir: &str, name: &str) -> Vec<(String, u64)> {
    let dir = format!("{dir}/{name}");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    (0..12).map(|x| (dir.clone(), x)).collect()
}

fn not_run(e: &TaskError) -> bool {
    e.kind == TaskErrorKind::TimedOut && e.message.starts_with("not run")
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Error> {
    let dir = std::env::args().nth(1).expect("timeouts DIR [fail]");
    let fail = std::env::args().nth(2).as_deref() == Some("fail");
    let workers = pool.workers();
    // 1. With a retry: the item runs again on another worker, and every value comes back.
    let options = Options::new().timeout(LIMIT).retries(1);
    match pool.map_with(hang_once, inputs(&dir, "retry"), options) {
        Ok(values) => {
            assert!(workers > 1, "one worker cannot retry elsewhere");
            assert_eq!(values, (0..12).collect::<Vec<_>>());
            println!("retry: every value");
        }
        Err(Error::Task(e)) => {
            // The only worker is stuck: the retry could not run.
            assert_eq!(workers, 1, "{e}");
            assert_eq!((e.index, e.attempts), (HANGS as usize, 2), "{e}");
            assert!(not_run(&e), "{e}");
            assert!(
                e.earlier[0].starts_with("ran longer than its timeout of 300ms"),
                "{e}"
            );
            println!("retry: not run, the only worker is stuck");
        }
        Err(e) => panic!("{e}"),
    }
    // 2. Every outcome: the item that hangs times out, the others finish (on the workers
    //    that are not stuck; with none left, those not run yet say so).
    if workers > 1 {
        let outcomes = pool.map_outcomes_with(
            hang_once,
            inputs(&dir, "keep"),
            Options::new().timeout(LIMIT),
        )?;
        let e = outcomes[HANGS as usize].as_ref().expect_err("item 3 hangs");
        assert_eq!(e.kind, TaskErrorKind::TimedOut, "{e}");
        assert!(
            e.message
                .starts_with("ran longer than its timeout of 300ms on "),
            "{e}"
        );
        eprintln!("{e}");
        let ok = outcomes.iter().filter(|o| o.is_ok()).count();
        for (i, o) in outcomes.iter().enumerate() {
            match o {
                Ok(v) => assert_eq!(*v, i as u64),
                Err(e) => assert!(i == HANGS as usize || not_run(e), "{e}"),
            }
        }
        if workers > 2 {
            assert_eq!(ok, 11);
        }
        println!("keep going: item 3 timed out");
    }
    // 3. Left running: `main` stops reading while an item that hangs is still in flight (on
    //    the one worker not stuck yet, behind item 0); shutdown waits for its timeout, then
    //    ends it before stopping any other worker.
    if workers > 2 {
        let late = inputs(&dir, "late");
        let mut late = pool.map_unordered_with(
            hang_once,
            [late[0].clone(), late[HANGS as usize].clone()],
            Options::new().timeout(LIMIT),
        )?;
        let (index, first) = late.next().expect("an outcome");
        assert_eq!((index, first.ok()), (0, Some(0)));
        println!("left running: item 3");
    }
    std::io::Write::flush(&mut std::io::stdout()).ok();
    if fail {
        return Err(Error::Share {
            message: "main fails on purpose".to_owned(),
        });
    }
    Ok(())
}
