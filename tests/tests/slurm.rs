//! Under a real Slurm: a private cluster of one node (slurmctld, slurmd and munged, started by
//! `scripts/slurm.sh` for these tests, by PID, under a scratch directory, and stopped after
//! them). `srun` and `sbatch` give what `mpirun` gives; a worker that dies ends an `srun -K`
//! step with the pool's report; a cancelled job, submitted again with its journal, finishes
//! without running anything twice; a job at its time limit keeps in its journal what finished,
//! and every task that ran: the master drains after SIGTERM (the workers, signalled too, finish
//! their chunks), and the pool's deadline (the job's end time, read from Slurm) ends a job
//! before its limit.
//! The command and the batch scripts are README.md's, word for word (checked here), with the
//! test programs in place of `target/release/…`.
//!
//! Needs root, and Debian's Slurm and munge (`scripts/install-mpi.sh --tests` installs them):
//! otherwise each test prints a SKIP line and returns, except under CI (`CI=true`), where it
//! fails. Open MPI only: the cluster starts ranks through PMIx (`MpiDefault=pmix`), which
//! Debian's MPICH does not use, so the MPICH pass (`POOL_TEST_MPIRUN=mpirun.mpich`) skips.
//!
//! One cluster serves the tests that run at the same time; the last one to let go of it stops
//! it, also when an assertion fails (the guard is dropped while unwinding), and if the test
//! process itself is killed the script's watchdog stops it. The tests that check how fast a job
//! ends run one at a time; the time-limit test, whose jobs mostly sleep, runs beside them.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use common::{Mpi, launcher, mpi, mpirun, reports_dead_worker, run, scratch, skip};
use pool_runtime::journal;

const SCENARIOS: &str = env!("CARGO_BIN_EXE_scenarios");
/// `examples/analyze_runs.rs`, built by this package too (tests/Cargo.toml).
const ANALYZE_RUNS: &str = env!("CARGO_BIN_EXE_analyze_runs");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/slurm.sh");
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");

// README.md's recipes, word for word; the tests put their programs in place of the paths
// `target/release/examples/analyze_runs` and `target/release/app`.
const SRUN: &str = "srun -K -n 4 target/release/examples/analyze_runs";
const BATCH_SRUN: &str = "\
#!/bin/bash
#SBATCH --ntasks=4
#SBATCH --time=10
srun -K target/release/examples/analyze_runs
";
const BATCH_MPIRUN: &str = "\
#!/bin/bash
#SBATCH --ntasks=4
#SBATCH --time=10
mpirun target/release/examples/analyze_runs
";
const BATCH_JOURNAL: &str = "\
#!/bin/bash
#SBATCH --ntasks=4
#SBATCH --time=1
#SBATCH --signal=TERM@20
srun -K target/release/app
";
/// The line of [`BATCH_JOURNAL`] that asks for a warning; without it, the time limit itself
/// ends the job.
const SIGNAL_LINE: &str = "#SBATCH --signal=TERM@20\n";
const PROGRAMS: [&str; 2] = ["target/release/examples/analyze_runs", "target/release/app"];

/// A job must end this soon after a worker dies or `scancel`: Slurm sends SIGKILL to what is
/// left `KillWait` (10 s here) after SIGTERM.
const PROMPT: Duration = Duration::from_secs(20);

/// One private Slurm cluster (scripts/slurm.sh), stopped when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes the Slurm variables of the caller's environment from `cmd`'s: a test suite run
/// inside a Slurm job must not talk to that job's cluster.
fn slurm_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if [
            "SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "SQUEUE_", "SCANCEL_",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix))
        {
            cmd.env_remove(&*key);
        }
    }
}

/// The shared cluster, started if none runs; `None`, after a SKIP line, where it cannot run.
fn cluster(test: &str) -> Option<Arc<Cluster>> {
    if mpi() != Mpi::OpenMpi {
        skip(&format!(
            "{test} under {:?} ({}): the test cluster starts ranks through PMIx \
             (MpiDefault=pmix), which Debian's MPICH does not use (its ranks start under \
             `srun --mpi=pmi2`); pool under MPICH and Slurm is not tested",
            mpi(),
            launcher()
        ));
        return None;
    }
    let mut shared = lock(&SHARED);
    if let Some(cluster) = shared.upgrade() {
        return Some(cluster);
    }
    static STARTS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pool-slurm-{}-{}",
        std::process::id(),
        STARTS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = Command::new(SCRIPT);
    cmd.arg("start")
        .arg(&dir)
        .arg(std::process::id().to_string());
    slurm_env(&mut cmd);
    let r = run(cmd);
    if r.status == Some(77) {
        let why = r.stderr.trim().trim_start_matches("SKIP: ");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the tests under Slurm, but: {why}\n{}",
            r.describe()
        );
        skip(&format!("{test}: {why}"));
        return None;
    }
    r.assert_success();
    let conf = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("SLURM_CONF="))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no SLURM_CONF= line\n{}", r.describe()));
    let cluster = Arc::new(Cluster {
        dir: conf.parent().expect("a directory").to_owned(),
        conf,
    });
    *shared = Arc::downgrade(&cluster);
    Some(cluster)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The script bounds its own waits (about 20 s at most); `timeout` makes sure.
        let out = Command::new("timeout")
            .args(["60", SCRIPT, "stop"])
            .arg(&self.dir)
            .output();
        match out {
            Ok(out) if out.status.success() => {
                if !out.stderr.is_empty() {
                    eprint!("{}", String::from_utf8_lossy(&out.stderr));
                }
            }
            other => eprintln!(
                "ERROR: {SCRIPT} stop {} failed: {other:?}",
                self.dir.display()
            ),
        }
    }
}

impl Cluster {
    /// `program` with the cluster's environment: its configuration, and the mark by which
    /// `scripts/slurm.sh stop` finds anything left of a job.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        slurm_env(&mut cmd);
        cmd.env("SLURM_CONF", &self.conf)
            .env("POOL_SLURM_INSTANCE", &self.dir);
        cmd
    }

    /// A Slurm command (`scancel 12`, ...) that must succeed; its standard output.
    fn client(&self, args: &[&str]) -> String {
        let mut cmd = self.command(args[0]);
        cmd.args(&args[1..]);
        let r = run(cmd);
        r.assert_success();
        r.stdout
    }

    /// README's `srun` line with `program args` in place of its program.
    fn srun(&self, program: &str, args: &[&str]) -> Command {
        let words = with_program(SRUN, program, args);
        let mut words = words.split(' ');
        let mut cmd = self.command(words.next().expect("srun"));
        cmd.args(words);
        cmd
    }

    /// Submits `script` as `dir/NAME.sh`; its output goes to `dir/NAME.out` and `.err`.
    fn submit(&self, script: &str, dir: &Path, name: &str, env: &[(&str, &Path)]) -> Job<'_> {
        let file = dir.join(format!("{name}.sh"));
        std::fs::write(&file, script).expect("write the batch script");
        let (out, err) = (
            dir.join(format!("{name}.out")),
            dir.join(format!("{name}.err")),
        );
        let mut cmd = self.command("sbatch");
        cmd.arg("--parsable")
            .arg(format!("--job-name={name}"))
            .arg(format!("--chdir={}", dir.display()))
            .arg(format!("--output={}", out.display()))
            .arg(format!("--error={}", err.display()))
            .arg(&file);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let r = run(cmd);
        r.assert_success();
        let id = r.stdout.trim().split(';').next().unwrap_or_default();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
            "{}",
            r.describe()
        );
        Job {
            cluster: self,
            id: id.to_owned(),
            name: name.to_owned(),
            out,
            err,
        }
    }
}

/// A batch job.
struct Job<'a> {
    cluster: &'a Cluster,
    id: String,
    name: String,
    out: PathBuf,
    err: PathBuf,
}

/// How a job ended.
struct Ended {
    /// Slurm's `JobState`: COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    state: String,
    /// From the job's start to its end, as Slurm counts it (whole seconds).
    run_time: String,
    stdout: String,
    stderr: String,
    what: String,
}

impl Ended {
    fn describe(&self) -> String {
        format!(
            "{}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what, self.stdout, self.stderr
        )
    }
}

const ENDED: [&str; 9] = [
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
];

impl Job<'_> {
    /// `scontrol show job` in one line.
    fn info(&self) -> String {
        self.cluster
            .client(&["scontrol", "show", "job", "--oneliner", &self.id])
    }

    fn field(info: &str, key: &str) -> String {
        info.split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    }

    fn state(&self) -> String {
        Self::field(&self.info(), "JobState")
    }

    fn ended(&self, info: &str) -> Ended {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        Ended {
            state: Self::field(info, "JobState"),
            run_time: Self::field(info, "RunTime"),
            stdout: read(&self.out),
            stderr: read(&self.err),
            what: format!("job {} ({}): {}", self.id, self.name, info.trim()),
        }
    }

    /// Waits until the job has ended, at most `limit` (then cancels it and fails).
    fn wait(&self, limit: Duration) -> Ended {
        let start = Instant::now();
        loop {
            let info = self.info();
            if ENDED.contains(&Self::field(&info, "JobState").as_str()) {
                return self.ended(&info);
            }
            if start.elapsed() > limit {
                self.cancel(Some("KILL"));
                panic!(
                    "job {} ({}) did not end within {limit:?}\n{}",
                    self.id,
                    self.name,
                    self.ended(&info).describe()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the job runs (at most 60 s).
    fn wait_running(&self) {
        let start = Instant::now();
        while self.state() != "RUNNING" {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "job {} does not start: {}",
                self.id,
                self.info()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `scancel` (what a user types), or `scancel --signal=SIGNAL`.
    fn cancel(&self, signal: Option<&str>) {
        let signal = signal.map(|s| format!("--signal={s}"));
        let mut args = vec!["scancel"];
        args.extend(signal.as_deref());
        args.push(&self.id);
        self.cluster.client(&args);
    }

    /// Waits until the journal at `path` holds `count` results (at most 60 s) while the job
    /// runs.
    fn wait_for_journal(&self, path: &Path, count: u64) {
        let start = Instant::now();
        loop {
            let done = journal::inspect(path).map_or(0, |s| s.done.len() as u64);
            if done >= count {
                return;
            }
            let info = self.info();
            let state = Self::field(&info, "JobState");
            assert!(
                !ENDED.contains(&state.as_str()),
                "the job ended before it was interrupted\n{}",
                self.ended(&info).describe()
            );
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no progress in the journal ({done} results)\n{}",
                self.ended(&info).describe()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The number of results the master's drain report says arrived, if it wrote one
/// (`pool: drained after SIGTERM: 6 results arrived in 0.04 s …`).
fn drained(stderr: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pool: drained after SIG"))?;
    line.split(": ").nth(2)?.split(' ').next()?.parse().ok()
}

/// `recipe` with `program args` in place of its program's path.
fn with_program(recipe: &str, program: &str, args: &[&str]) -> String {
    let words: Vec<&str> = std::iter::once(program)
        .chain(args.iter().copied())
        .collect();
    assert!(
        words.iter().all(|w| !w.is_empty()
            && !w.contains(|c: char| c.is_whitespace() || "'\"\\$`;&|<>()*?#~".contains(c))),
        "words the recipes cannot hold unquoted: {words:?}"
    );
    let path = PROGRAMS
        .iter()
        .find(|p| recipe.contains(*p))
        .expect("a recipe names a program");
    recipe.replace(path, &words.join(" "))
}

/// `analyze_runs`' output without its timing (`in 0.93 s;`).
fn without_timing(stdout: &str) -> String {
    stdout
        .lines()
        .map(|line| match (line.find(" in "), line.find(" s;")) {
            (Some(a), Some(b)) if a < b => format!("{} in … s;{}", &line[..a], &line[b + 3..]),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Indices listed in an execution log, one per line (a task that ran twice appears twice).
fn executed(log: &Path) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().expect("an index per line"))
        .collect()
}

/// The inputs the journal at `path` holds results of, after checking that it is the
/// journal of `n` squares and undamaged.
fn journaled(path: &Path, n: u64) -> BTreeSet<u64> {
    let summary = journal::inspect(path).expect("the journal is readable");
    assert_eq!(summary.task, "tests::logged_square");
    assert_eq!(summary.inputs, n);
    assert_eq!(summary.damaged_bytes, 0, "a damaged journal");
    summary.done.into_iter().collect()
}

fn sum_of_squares(n: u64) -> u64 {
    (0..n).fold(0u64, |a, x| a.wrapping_add(x * x))
}

/// The arguments of `scenarios journal`: squares of 0..n through the journal at `path`, each
/// task sleeping `ms` milliseconds.
fn journal_args(path: &Path, n: u64, ms: u64) -> Vec<String> {
    vec![
        "journal".to_owned(),
        path.display().to_string(),
        n.to_string(),
        ms.to_string(),
    ]
}

fn str_args(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn srun_and_sbatch_give_what_mpirun_gives() {
    let Some(cluster) = cluster("srun_and_sbatch_give_what_mpirun_gives") else {
        return;
    };
    let _serial = lock(&ONE_AT_A_TIME);
    let reference = mpirun(4, ANALYZE_RUNS, &["300"]);
    reference.assert_success();
    let expected = without_timing(&reference.stdout);
    assert!(
        expected.contains("analysed 300 runs on 3 workers"),
        "{}",
        reference.describe()
    );

    let r = run(cluster.srun(ANALYZE_RUNS, &["300"]));
    r.assert_success();
    assert_eq!(without_timing(&r.stdout), expected, "{}", r.describe());

    // Both batch scripts at once: the node has room for both.
    let dir = scratch("sbatch");
    let jobs = [("srun", BATCH_SRUN), ("mpirun", BATCH_MPIRUN)].map(|(name, recipe)| {
        let script = with_program(recipe, ANALYZE_RUNS, &["300"]);
        cluster.submit(&script, &dir, name, &[])
    });
    for job in &jobs {
        let end = job.wait(common::TIMEOUT);
        assert_eq!(end.state, "COMPLETED", "{}", end.describe());
        assert_eq!(without_timing(&end.stdout), expected, "{}", end.describe());
    }

    // The whole API under srun, and task errors that name the rank.
    for scenario in ["results", "errors"] {
        let r = run(cluster.srun(SCENARIOS, &[scenario]));
        r.assert_success();
        assert!(
            r.stdout
                .contains(&format!("scenario {scenario} passed with 3 workers")),
            "{}",
            r.describe()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dead_worker_ends_an_srun_k_step_with_the_pools_report() {
    let Some(cluster) = cluster("a_dead_worker_ends_an_srun_k_step_with_the_pools_report") else {
        return;
    };
    let _serial = lock(&ONE_AT_A_TIME);
    for (scenario, task, signal) in [
        ("worker_segfault", "segfault_on_five", Some("SIGSEGV")),
        ("worker_abort", "abort_on_five", Some("SIGABRT")),
        ("worker_sigkill", "sigkill_on_five", None),
    ] {
        let start = Instant::now();
        let r = run(cluster.srun(SCENARIOS, &[scenario]));
        let took = start.elapsed();
        assert_ne!(r.status, Some(0), "{}", r.describe());
        assert!(took < PROMPT, "took {took:?}\n{}", r.describe());
        // The master noticed the death itself (before srun -K ended the step) and names the
        // rank and what every rank held; and the signal, when it read the dead rank's status
        // before slurmstepd reaped it (`abort.rs`: a zombie's status from /proc).
        assert!(
            reports_dead_worker(&r.stderr, task, signal)
                && r.stderr.contains("pool:   those 3 results are lost"),
            "{}",
            r.describe()
        );
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
}

#[test]
fn a_cancelled_job_submitted_again_with_its_journal_finishes() {
    let Some(cluster) = cluster("a_cancelled_job_submitted_again_with_its_journal_finishes") else {
        return;
    };
    let _serial = lock(&ONE_AT_A_TIME);
    const N: u64 = 1500;
    let dir = scratch("cancelled");
    let path = dir.join("run.journal");
    let logs = [1, 2, 3].map(|i| dir.join(format!("exec{i}.log")));
    let script = |ms| {
        with_program(
            BATCH_SRUN,
            SCENARIOS,
            &str_args(&journal_args(&path, N, ms)),
        )
    };

    // 1. `scancel`: SIGTERM to every process of the job, srun included, SIGKILL KillWait later.
    let job = cluster.submit(
        &script(20),
        &dir,
        "run1",
        &[
            ("POOL_TEST_EXEC_LOG", &logs[0]),
            ("POOL_TEST_SLEEP_MS", Path::new("20")),
        ],
    );
    job.wait_for_journal(&path, N / 4);
    let cancelled = Instant::now();
    job.cancel(None);
    let end = job.wait(common::TIMEOUT);
    let took = cancelled.elapsed();
    eprintln!(
        "slurm: scancel: the job ended as {} {took:.1?} later",
        end.state
    );
    assert!(took < PROMPT, "{}", end.describe());
    assert_eq!(end.state, "CANCELLED", "{}", end.describe());
    let done1 = journaled(&path, N);
    let ran1: BTreeSet<u64> = executed(&logs[0]).into_iter().collect();
    assert!(
        done1.len() as u64 >= N / 4 && (done1.len() as u64) < N,
        "{} done",
        done1.len()
    );
    assert!(
        done1.is_subset(&ran1),
        "the journal holds results that never ran"
    );

    // 2. Submitted again, then `scancel --signal=TERM`: only the ranks get it, and srun passes
    // the master's report on.
    let job = cluster.submit(
        &script(20),
        &dir,
        "run2",
        &[
            ("POOL_TEST_EXEC_LOG", &logs[1]),
            ("POOL_TEST_SLEEP_MS", Path::new("20")),
        ],
    );
    job.wait_for_journal(&path, N / 2);
    let signalled = Instant::now();
    job.cancel(Some("TERM"));
    let end = job.wait(common::TIMEOUT);
    let took = signalled.elapsed();
    eprintln!(
        "slurm: scancel --signal=TERM: the job ended as {} {took:.1?} later",
        end.state
    );
    assert!(took < PROMPT, "{}", end.describe());
    assert!(
        end.stderr.contains("pool: interrupted by SIGTERM")
            && end
                .stderr
                .contains("results received so far are in the journal"),
        "{}",
        end.describe()
    );
    let done2 = journaled(&path, N);
    let ran2 = executed(&logs[1]);
    let again: Vec<u64> = ran2.iter().copied().filter(|i| done1.contains(i)).collect();
    assert!(again.is_empty(), "journaled tasks ran again: {again:?}");
    assert!(done1.is_subset(&done2) && done2.len() as u64 >= N / 2 && (done2.len() as u64) < N);

    // 3. To the end.
    let job = cluster.submit(
        &script(0),
        &dir,
        "run3",
        &[("POOL_TEST_EXEC_LOG", &logs[2])],
    );
    let end = job.wait(common::TIMEOUT);
    assert_eq!(end.state, "COMPLETED", "{}", end.describe());
    assert!(
        end.stdout
            .contains(&format!("journal sum {}", sum_of_squares(N))),
        "{}",
        end.describe()
    );
    let ran3 = executed(&logs[2]);
    let again: Vec<u64> = ran3.iter().copied().filter(|i| done2.contains(i)).collect();
    assert!(again.is_empty(), "journaled tasks ran again: {again:?}");
    let all: BTreeSet<u64> = done2.iter().chain(&ran3).copied().collect();
    assert_eq!(all.len() as u64, N);
    assert_eq!(journaled(&path, N).len() as u64, N);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_batch_job_at_its_time_limit_keeps_what_finished_in_its_journal() {
    let Some(cluster) = cluster("a_batch_job_at_its_time_limit_keeps_what_finished_in_its_journal")
    else {
        return;
    };
    // Longer than the limit allows: 30,000 tasks of 20 ms on 3 workers take 200 s.
    const N: u64 = 30_000;
    let dir = scratch("time-limit");
    // README's script (SIGTERM 20 s before the limit, by Slurm's coarse clock: between 10 and
    // 40 s after the start: the master drains), and the same without the warning twice: with
    // POOL_DEADLINE=off, which the time limit ends (between 60 and 90 s), and as it is, which
    // the pool's deadline (the job's end time, read from Slurm, less the drain grace) ends
    // before the limit. All at once: they mostly sleep, and the last adds no time.
    let cases = [
        ("warned", BATCH_JOURNAL.to_owned()),
        ("limited", BATCH_JOURNAL.replace(SIGNAL_LINE, "")),
        ("deadline", BATCH_JOURNAL.replace(SIGNAL_LINE, "")),
    ];
    assert_ne!(cases[1].1, BATCH_JOURNAL);
    let jobs: Vec<_> = cases
        .iter()
        .map(|(name, recipe)| {
            let path = dir.join(format!("{name}.journal"));
            let script = with_program(recipe, SCENARIOS, &str_args(&journal_args(&path, N, 20)));
            let log = dir.join(format!("{name}.log"));
            let mut env = vec![
                ("POOL_TEST_EXEC_LOG", log.as_path()),
                ("POOL_TEST_SLEEP_MS", Path::new("20")),
            ];
            if *name == "limited" {
                env.push(("POOL_DEADLINE", Path::new("off")));
            }
            let job = cluster.submit(&script, &dir, name, &env);
            (job, path, log)
        })
        .collect();
    let started: Vec<Instant> = jobs
        .iter()
        .map(|(job, _, _)| {
            job.wait_running();
            Instant::now()
        })
        .collect();
    for ((job, path, log), started) in jobs.iter().zip(started) {
        // Slurm looks at time limits every 30 s: the limit of 60 s ends a job after 60-90 s,
        // then SIGKILL KillWait (10 s) later.
        let end = job.wait(Duration::from_secs(150));
        let ran_for = started.elapsed();
        eprintln!(
            "slurm: job {} ({}) ended as {} after {:.1} s (Slurm's RunTime {})",
            job.id,
            job.name,
            end.state,
            ran_for.as_secs_f64(),
            end.run_time
        );
        let done = journaled(path, N);
        let ran: BTreeSet<u64> = executed(log).into_iter().collect();
        if job.name == "warned" {
            // SIGTERM came before the limit: the master stopped, and srun, which Slurm does not
            // signal, passed its report on.
            assert_ne!(end.state, "TIMEOUT", "{}", end.describe());
            assert!(
                end.stderr.contains("pool: interrupted by SIGTERM")
                    && end
                        .stderr
                        .contains("results received so far are in the journal"),
                "{}",
                end.describe()
            );
            // The master drained: the workers, signalled too, finished what they held (a chunk
            // of 20 ms tasks each, always), and their results are in the journal.
            let arrived = drained(&end.stderr)
                .unwrap_or_else(|| panic!("no drain report\n{}", end.describe()));
            eprintln!(
                "slurm: job {} ({}): {arrived} results journaled after SIGTERM, in the drain",
                job.id, job.name
            );
            assert!(arrived > 0, "{}", end.describe());
            assert_eq!(done, ran, "every task that ran is in the journal");
        } else if job.name == "deadline" {
            // The pool's deadline ended the job before its limit, with every task that ran in
            // the journal.
            assert_eq!(end.state, "FAILED", "{}", end.describe());
            let line = format!(
                "Error: deadline reached (the end time of Slurm job {}, less the drain grace of 5 \
                 s): ",
                job.id
            );
            let not_started: u64 = end
                .stderr
                .lines()
                .find_map(|l| l.strip_prefix(line.as_str()))
                .and_then(|rest| rest.split(' ').next()?.parse().ok())
                .unwrap_or_else(|| panic!("no deadline error\n{}", end.describe()));
            // Slurm's count: this job is waited for after the others.
            let run_time = end
                .run_time
                .split(':')
                .try_fold(0u64, |s, part| Some(s * 60 + part.parse::<u64>().ok()?))
                .unwrap_or_else(|| panic!("RunTime {:?}", end.run_time));
            eprintln!(
                "slurm: job {} ({}): the deadline ended it after {run_time} s: {} results \
                 journaled, {not_started} not started",
                job.id,
                job.name,
                done.len()
            );
            // FAILED, not TIMEOUT: it ended by itself before the limit (which Slurm enforces
            // 60-90 s after the start).
            assert_eq!(done, ran, "every task that ran is in the journal");
            assert_eq!(done.len() as u64 + not_started, N);
        } else {
            // At the limit Slurm signals srun too, which stops passing the ranks' output on:
            // the master's report may be missing from the job's output; the journal is not.
            assert_eq!(end.state, "TIMEOUT", "{}", end.describe());
            eprintln!(
                "slurm: job {} ({}): {} results journaled after SIGTERM, in the drain (srun's \
                 output, which may be cut short at the limit, says)",
                job.id,
                job.name,
                drained(&end.stderr).map_or("?".to_owned(), |n| n.to_string())
            );
        }
        assert!(
            !done.is_empty() && (done.len() as u64) < N,
            "{} done\n{}",
            done.len(),
            end.describe()
        );
        assert!(
            done.is_subset(&ran),
            "the journal holds results that never ran"
        );
        eprintln!(
            "slurm: job {} ({}): {} results journaled, {} tasks ran",
            job.id,
            job.name,
            done.len(),
            ran.len()
        );
    }
    // Submitted again with the same journals: only what is not in them runs.
    let resumed: Vec<_> = jobs
        .iter()
        .zip(&cases)
        .map(|((job, path, _), (_, recipe))| {
            let done = journaled(path, N);
            let script = with_program(recipe, SCENARIOS, &str_args(&journal_args(path, N, 0)));
            let name = format!("{}-again", job.name);
            let log = dir.join(format!("{name}.log"));
            let again = cluster.submit(&script, &dir, &name, &[("POOL_TEST_EXEC_LOG", &log)]);
            (again, done, log, path)
        })
        .collect();
    for (job, done, log, path) in &resumed {
        let end = job.wait(common::TIMEOUT);
        assert_eq!(end.state, "COMPLETED", "{}", end.describe());
        assert!(
            end.stdout
                .contains(&format!("journal sum {}", sum_of_squares(N))),
            "{}",
            end.describe()
        );
        let ran = executed(log);
        let again: Vec<u64> = ran.iter().copied().filter(|i| done.contains(i)).collect();
        assert!(again.is_empty(), "journaled tasks ran again: {again:?}");
        assert_eq!(journaled(path, N).len() as u64, N);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_readme_shows_the_recipes_these_tests_run() {
    let readme = std::fs::read_to_string(README).expect("README.md");
    for recipe in [
        format!("{SRUN}\n"),
        BATCH_SRUN.to_owned(),
        BATCH_MPIRUN.to_owned(),
        BATCH_JOURNAL.to_owned(),
    ] {
        assert!(
            readme.contains(&format!("```sh\n{recipe}```\n")),
            "README.md does not show, word for word, the recipe that tests/slurm.rs runs:\n{recipe}"
        );
    }
}
