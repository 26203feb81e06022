//! Statistics (`POOL_STATS`, `Options::stats`), progress (`POOL_PROGRESS`) and `tracing`
//! events, checked on the output of `src/bin/observe.rs` under `mpirun` and as one process.

mod common;

use std::process::Command;

use common::{Run, Running, run};

const OBSERVE: &str = env!("CARGO_BIN_EXE_observe");
const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");

/// Runs `observe` with `args` under `mpirun -n ranks` (0: as a single process with 2 threads)
/// and the environment `env`.
fn observe(ranks: usize, args: &[&str], env: &[(&str, &str)]) -> Run {
    observe_with(ranks, args, env, |_| {})
}

fn observe_with(
    ranks: usize,
    args: &[&str],
    env: &[(&str, &str)],
    more: impl FnOnce(&mut Command),
) -> Run {
    let mut cmd = if ranks == 0 {
        let mut cmd = Command::new(OBSERVE);
        cmd.env("POOL_THREADS", "2");
        cmd
    } else {
        let mut cmd = Command::new("mpirun");
        cmd.arg("-n").arg(ranks.to_string()).arg(OBSERVE);
        cmd
    };
    cmd.args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    more(&mut cmd);
    let r = run(cmd);
    r.assert_success();
    assert!(r.stdout.contains("observe passed"), "{}", r.describe());
    r
}

fn workers(ranks: usize) -> usize {
    if ranks == 0 { 2 } else { ranks - 1 }
}

/// The cells of the table row that starts with `first`, after `first`.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(str::split_whitespace)
        .find_map(|mut cells| (cells.next() == Some(first)).then(|| cells.collect()))
        .unwrap_or_else(|| panic!("no row `{first}` in\n{table}"))
}

/// Runs the command in a session of its own, which has no controlling terminal.
fn without_terminal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `setsid` is async-signal-safe, as code between fork and exec must be.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

#[test]
fn nothing_is_printed_by_default() {
    for ranks in [0, 3] {
        // No POOL_PROGRESS, and no terminal (as in CI, even when the tests run in one).
        let r = observe_with(ranks, &[], &[], |cmd| {
            cmd.env_remove("POOL_PROGRESS");
            without_terminal(cmd);
        });
        assert!(!r.stderr.contains("pool"), "{}", r.describe());
    }
}

#[test]
fn pool_stats_prints_a_table_at_the_end() {
    for ranks in [0, 1, 3] {
        let r = observe(ranks, &[], &[("POOL_STATS", "1")]);
        let table = r
            .stderr
            .split_once("pool: statistics of the run\n")
            .unwrap_or_else(|| panic!("no table: {}", r.describe()))
            .1;
        let header = row(table, if ranks > 1 { "rank" } else { "thread" });
        assert_eq!(header[..3], ["host", "tasks", "failed"], "{table}");
        let total = row(table, "total");
        assert_eq!(total[..2], ["2020", "10"], "{}", r.describe());
        // One row per worker, whose tasks add up to the total.
        let rows: Vec<u64> = table
            .lines()
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with("total"))
            .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
            .collect();
        // `mpirun -n 1` runs one thread per core it was given.
        if ranks != 1 {
            assert_eq!(rows.len(), workers(ranks), "{table}");
        }
        assert_eq!(rows.iter().sum::<u64>(), 2020, "{table}");
        let plural = if rows.len() == 1 { "" } else { "s" };
        assert!(
            table.contains(&format!("{} worker{plural}, ", rows.len()))
                && table.contains("efficiency")
                && table.contains("load imbalance"),
            "{table}"
        );
    }
}

#[test]
fn pool_stats_writes_json() {
    let dir = std::env::temp_dir().join(format!("pool-observe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for ranks in [0, 3] {
        let path = dir.join(format!("stats-{ranks}.json"));
        let _ = std::fs::remove_file(&path);
        let r = observe(ranks, &[], &[("POOL_STATS", path.to_str().unwrap())]);
        assert!(!r.stderr.contains("pool"), "{}", r.describe());
        let text = std::fs::read_to_string(&path).expect("the statistics file");
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(json["tasks"], 2020, "{text}");
        assert_eq!(json["failed"], 10, "{text}");
        let rows = json["workers"].as_array().expect("workers");
        assert_eq!(rows.len(), workers(ranks), "{text}");
        let sum = |key: &str| rows.iter().map(|w| w[key].as_u64().unwrap()).sum::<u64>();
        assert_eq!(sum("tasks"), 2020, "{text}");
        assert_eq!(sum("failed"), 10, "{text}");
        assert_eq!(sum("chunks"), json["chunks"].as_u64().unwrap(), "{text}");
        for (i, w) in rows.iter().enumerate() {
            let rank = if ranks == 0 { 0 } else { i as u64 + 1 };
            assert_eq!(w["rank"], rank, "{text}");
            assert_eq!(w["worker"], i as u64, "{text}");
            // Every worker was sent work: the first dispatch fills every worker.
            assert!(w["chunks"].as_u64().unwrap() > 0, "{text}");
            assert!(w["input_bytes"].as_u64().unwrap() > 0, "{text}");
            assert!(w["output_bytes"].as_u64().unwrap() > 0, "{text}");
            let wall = json["wall_s"].as_f64().unwrap();
            let busy = w["busy_s"].as_f64().unwrap();
            let idle = w["idle_s"].as_f64().unwrap();
            assert!((busy + idle - wall).abs() < 1e-6, "{text}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_that_cannot_be_written_is_reported() {
    let r = observe(0, &[], &[("POOL_STATS", "/nonexistent-dir/stats.json")]);
    assert!(
        r.stderr.contains(
            "pool: cannot write the statistics to /nonexistent-dir/stats.json (POOL_STATS): "
        ),
        "{}",
        r.describe()
    );
}

#[test]
fn options_stats_prints_one_call() {
    let r = observe(3, &["call-stats"], &[]);
    let table = r
        .stderr
        .split_once("pool: statistics of this call of `tests::square`\n")
        .unwrap_or_else(|| panic!("no table: {}", r.describe()))
        .1;
    assert_eq!(row(table, "total")[..2], ["2000", "0"], "{table}");
}

#[test]
fn forced_progress_without_a_terminal_prints_lines() {
    for ranks in [0, 3] {
        let r = observe(ranks, &[], &[("POOL_PROGRESS", "1")]);
        for done in [
            "pool: tests::even_only: 20/20 done, 10 failed, in ",
            "pool: tests::square: 2000/2000 done, 0 failed, in ",
        ] {
            assert!(r.stderr.contains(done), "{}", r.describe());
        }
        // Nothing else: no bar drawn to a file, no escape sequences.
        assert_eq!(r.stderr.lines().count(), 2, "{}", r.describe());
        assert!(!r.stderr.contains('\x1b'), "{}", r.describe());
        let r = observe(ranks, &[], &[("POOL_PROGRESS", "0")]);
        assert!(!r.stderr.contains("pool"), "{}", r.describe());
    }
}

#[test]
fn tracing_subscribers_see_the_pool() {
    let r = observe(3, &["trace"], &[]);
    for event in [
        "pool: MPI started",
        "pool: hello",
        "pool: every worker said hello",
        "pool: job opened",
        "pool: task failed",
        "pool: job closed",
        "pool: stopping the workers",
        "pool: worker stopped",
        "pool: worker ready",
        "pool: worker stopping",
    ] {
        assert!(r.stderr.contains(event), "{event}: {}", r.describe());
    }
    assert_eq!(
        r.stderr.matches("pool: hello").count(),
        2,
        "{}",
        r.describe()
    );
    assert!(
        r.stderr.contains("error=9 is odd") && r.stderr.contains("kind=Failed"),
        "{}",
        r.describe()
    );
}

#[test]
fn a_terminal_gets_a_bar() {
    // `script` (util-linux) runs the program on a pseudo-terminal and copies what it shows.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` command to provide a terminal");
        return;
    }
    // As one process, stderr is the terminal. Under mpirun, stderr is a pipe (here even thrown
    // away), and the bar goes to the controlling terminal.
    for inner in [
        OBSERVE.to_owned(),
        format!("mpirun -n 3 {OBSERVE} 2>/dev/null"),
    ] {
        // Asked for: the bars of these short calls stay on screen (unasked, they vanish).
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &inner, "/dev/null"])
            .env("POOL_PROGRESS", "1")
            .env("POOL_THREADS", "2");
        let r = run(cmd);
        r.assert_success();
        let screen = r.stdout.replace('\r', "\n");
        for shown in [
            "pool: tests::even_only",
            "20/20 ETA 0s",
            "tasks/s, 10 failed",
            "pool: tests::square",
            "2,000/2,000 ETA 0s",
            "tasks/s, 0 failed",
        ] {
            assert!(screen.contains(shown), "{shown}: {}", r.describe());
        }
        // Each finished bar ends its line: the next output starts on a line of its own.
        assert!(
            screen.contains("0 failed\nobserve passed") || screen.contains("0 failed\n\nobserve"),
            "{}",
            r.describe()
        );
    }
}

#[test]
fn an_interrupted_run_still_writes_its_statistics() {
    let dir = std::env::temp_dir().join(format!("pool-observe-term-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (stats, journal) = (dir.join("stats.json"), dir.join("run.journal"));
    // 100 000 tasks of 2 ms: far longer than the test waits.
    let mut cmd = Command::new(SCENARIOS);
    cmd.arg("journal")
        .arg(&journal)
        .args(["100000", "2"])
        .env("POOL_STATS", &stats)
        .env("POOL_THREADS", "2")
        .env("POOL_TEST_EXEC_LOG", dir.join("exec.log"));
    let mut running = Running::start(cmd);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pool_runtime::journal::inspect(&journal).map_or(0, |s| s.done.len()) < 50 {
        assert!(running.running(), "the run ended before it was interrupted");
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    running.signal("TERM");
    let r = running.finish();
    assert_ne!(r.status, Some(0), "{}", r.describe());
    let text = std::fs::read_to_string(&stats)
        .unwrap_or_else(|e| panic!("no statistics ({e}): {}", r.describe()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let tasks = json["tasks"].as_u64().unwrap();
    assert!((50..100_000).contains(&tasks), "{text}");
    let rows = json["workers"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{text}");
    let sum: u64 = rows.iter().map(|w| w["tasks"].as_u64().unwrap()).sum();
    assert_eq!(sum, tasks, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unasked_bars_of_short_calls_vanish() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` command to provide a terminal");
        return;
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qec", OBSERVE, "/dev/null"])
        .env_remove("POOL_PROGRESS")
        .env("POOL_THREADS", "2");
    let r = run(cmd);
    r.assert_success();
    // Whatever was drawn was cleared: the program's own line starts a clean screen line.
    let last = r.stdout.rsplit('\r').find(|l| l.contains("observe passed"));
    let last = last.unwrap_or_else(|| panic!("{}", r.describe()));
    assert!(
        last.starts_with("\x1b[2Kobserve passed") || last.starts_with("observe passed"),
        "{}",
        r.describe()
    );
    assert!(!r.stdout.contains("0 failed\nobserve"), "{}", r.describe());
}
