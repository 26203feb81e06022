//! Shared harness of the MPI integration tests: runs a program under `mpirun` or as a single
//! process, with a timeout (no test may hang), and collects its exit status and output.

#![allow(dead_code)] // each test file uses a part of it

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// No test may hang: a run that takes longer is killed and fails.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);

/// How long the output of a program that has ended is waited for, when a process it left
/// behind holds its pipes open.
const LEFT_BEHIND: Duration = Duration::from_secs(30);

/// A fresh scratch directory for one test, private to this test process.
pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pool-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Runs the tests of a file that take it one at a time (whatever the test threads): for
/// tests that check what a launcher's short window lets a program say, which a machine
/// loaded by parallel runs could delay. (Correctness never depends on it; messages do.)
pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) struct Run {
    pub(crate) status: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) what: String,
}

impl Run {
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}\n--- exit status: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }

    pub(crate) fn assert_success(&self) {
        assert_eq!(self.status, Some(0), "{}", self.describe());
    }
}

/// Environment for Open MPI in tests: allowed as root (CI runs as root), more ranks than
/// cores, and the fast-starting ob1 messaging layer (tests only; never forced on users); none
/// of the pool's own variables from the caller's environment, only those the test sets, and no
/// progress display unless the test asks.
pub(crate) fn mpi_env(cmd: &mut Command) -> &mut Command {
    let set = |cmd: &Command, key: &str| cmd.get_envs().any(|(k, _)| k == key);
    for key in ["POOL_THREADS", "POOL_STATS", "POOL_WORKERS"] {
        if !set(cmd, key) {
            cmd.env_remove(key);
        }
    }
    // No progress bar on the terminal of whoever runs the tests (the master draws it on the
    // controlling terminal when mpirun's pipes hide it).
    if !set(cmd, "POOL_PROGRESS") {
        cmd.env("POOL_PROGRESS", "0");
    }
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .env("OMPI_MCA_pml", "ob1")
}

pub(crate) fn run(cmd: Command) -> Run {
    Running::start(cmd).finish()
}

/// A program started in the background, for tests that act on it while it runs.
pub(crate) struct Running {
    child: std::process::Child,
    out: Collected,
    err: Collected,
    start: Instant,
    what: String,
}

/// What a program printed on one of its pipes, gathered as it comes (so that a hung run can
/// still show what it printed before it hung).
struct Collected {
    text: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Collected {
    fn start(mut pipe: impl Read + Send + 'static) -> Collected {
        let text = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, done) = std::sync::mpsc::channel();
        let into = std::sync::Arc::clone(&text);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => into
                        .lock()
                        .expect("output lock")
                        .extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        });
        Collected { text, done }
    }

    /// Everything printed, once the pipe closes or after `wait` (a process left behind may
    /// hold it open).
    fn take(self, wait: Duration) -> String {
        let _ = self.done.recv_timeout(wait);
        String::from_utf8_lossy(&self.text.lock().expect("output lock")).into_owned()
    }
}

impl Running {
    /// Starts `cmd` with [`mpi_env`]; variables the test set on `cmd` itself win.
    pub(crate) fn start(mut cmd: Command) -> Running {
        let what = format!("{cmd:?}");
        let own: Vec<_> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
            .collect();
        mpi_env(&mut cmd);
        for (key, value) in own {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e} (is Open MPI installed?)"));
        let out = Collected::start(child.stdout.take().expect("piped"));
        let err = Collected::start(child.stderr.take().expect("piped"));
        Running {
            child,
            out,
            err,
            start: Instant::now(),
            what,
        }
    }

    /// Sends `signal` (a name for kill(1), such as "TERM") to the program.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.what);
    }

    /// True while the program runs.
    pub(crate) fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// Waits for the program to end (killing it after [`TIMEOUT`]) and collects its output.
    pub(crate) fn finish(mut self) -> Run {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if self.start.elapsed() > TIMEOUT {
                // mpirun forwards SIGTERM to its ranks; then make sure.
                let _ = Command::new("kill")
                    .args(["-TERM", &self.child.id().to_string()])
                    .status();
                std::thread::sleep(Duration::from_secs(2));
                let _ = self.child.kill();
                let _ = self.child.wait();
                let hung = Run {
                    status: None,
                    stdout: self.out.take(Duration::from_secs(2)),
                    stderr: self.err.take(Duration::from_secs(2)),
                    what: self.what,
                };
                panic!(
                    "{} did not finish within {TIMEOUT:?}: a hang\n{}",
                    hung.what,
                    hung.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // A process left behind may hold the pipes open: the test then says so (`pgrep`)
        // instead of waiting for it.
        Run {
            status: status.code(),
            stdout: self.out.take(LEFT_BEHIND),
            stderr: self.err.take(LEFT_BEHIND),
            what: self.what,
        }
    }
}

/// The MPI launcher the tests run: `mpirun` (Open MPI here), or the one named by the
/// environment variable `POOL_TEST_MPIRUN` (`scripts/test.sh` sets `mpirun.mpich` for its
/// MPICH pass, whose test binaries are built with `MPICC=mpicc.mpich`).
pub(crate) fn launcher() -> String {
    std::env::var("POOL_TEST_MPIRUN")
        .ok()
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "mpirun".to_owned())
}

/// The MPI implementation of [`launcher`], from its `--version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mpi {
    OpenMpi,
    Mpich,
}

/// The MPI implementation the tests run under (asked once).
pub(crate) fn mpi() -> Mpi {
    static MPI: std::sync::OnceLock<Mpi> = std::sync::OnceLock::new();
    *MPI.get_or_init(|| {
        let launcher = launcher();
        let out = Command::new(&launcher)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {launcher} --version: {e} (is MPI installed?)"));
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        if text.contains("Open MPI") || text.contains("OpenRTE") {
            Mpi::OpenMpi
        } else if text.contains("HYDRA") {
            Mpi::Mpich
        } else {
            panic!("{launcher} --version names neither Open MPI nor MPICH (Hydra):\n{text}")
        }
    })
}

/// True, after printing why, when the launcher is not Open MPI's: the caller, a test of
/// behaviour only Open MPI's `mpirun` has, then returns without running.
#[must_use]
pub(crate) fn skip_unless_open_mpi(test: &str, why: &str) -> bool {
    let mpi = mpi();
    if mpi == Mpi::OpenMpi {
        return false;
    }
    skip(&format!("{test} under {mpi:?} ({}): {why}", launcher()));
    true
}

/// True if `stderr` holds the master's report of a worker that died while it held item 5 of
/// `tests::{task}`, killed by `signal` (`SIGKILL` when `None`). Both wordings are by design
/// (`master/abort.rs`): "the task ended its process" when the dead rank's status was gone by
/// the time the master looked (its launcher had reaped it), and "the task crashed its process
/// (killed by SIG...:" when the master read it first.
pub(crate) fn reports_dead_worker(stderr: &str, task: &str, signal: Option<&str>) -> bool {
    let held = format!("died while it held task `tests::{task}` item 5: the task ");
    let killed_by = signal.unwrap_or("SIGKILL");
    stderr.contains(&format!("{held}ended its process"))
        || stderr.contains(&format!(
            "{held}crashed its process (killed by {killed_by}:"
        ))
}

/// Prints `SKIP what` on the test process's standard error, past the test harness's
/// capture, so that a skip shows in the log of a passing run.
pub(crate) fn skip(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIP {what}");
}

/// `launcher -n N`, to put in front of a program and its arguments.
pub(crate) fn mpirun_command(n: usize) -> Command {
    let mut cmd = Command::new(launcher());
    cmd.arg("-n").arg(n.to_string());
    cmd
}

pub(crate) fn mpirun(n: usize, program: &str, args: &[&str]) -> Run {
    let mut cmd = mpirun_command(n);
    cmd.arg(program).args(args);
    run(cmd)
}

pub(crate) fn single(program: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run(cmd)
}
