//! Runs the test programs of `src/bin/` under `mpirun -n 1..4` and as single processes, each
//! with a timeout, and checks their exit status and output.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// No test may hang: a run that takes longer is killed and fails.
const TIMEOUT: Duration = Duration::from_secs(120);

struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "{}\n--- exit status: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }

    fn assert_success(&self) {
        assert_eq!(self.status, Some(0), "{}", self.describe());
    }
}

/// Environment for Open MPI in tests: allowed as root (CI runs as root), more ranks than
/// cores, and the fast-starting ob1 messaging layer (tests only; never forced on users).
fn mpi_env(cmd: &mut Command) -> &mut Command {
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .env("OMPI_MCA_pml", "ob1")
        .env_remove("POOL_THREADS")
}

fn run(mut cmd: Command) -> Run {
    let what = format!("{cmd:?}");
    let mut child = mpi_env(&mut cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e} (is Open MPI installed?)"));
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            // mpirun forwards SIGTERM to its ranks; then make sure.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(2));
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {TIMEOUT:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        what,
    }
}

fn mpirun(n: usize, program: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new("mpirun");
    cmd.arg("-n").arg(n.to_string()).arg(program).args(args);
    run(cmd)
}

fn single(program: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run(cmd)
}

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
    let mut cmd = Command::new("mpirun");
    cmd.args(["-n", "1", SCENARIOS, "results", ":", "-n", "1"])
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
