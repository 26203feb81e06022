//! Shared harness of the MPI integration tests: runs a program under `mpirun` or as a single
//! process, with a timeout (no test may hang), and collects its exit status and output.

#![allow(dead_code)] // each test file uses a part of it

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// No test may hang: a run that takes longer is killed and fails.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);

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
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
    start: Instant,
    what: String,
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
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
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
                panic!("{} did not finish within {TIMEOUT:?}: a hang", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            status: status.code(),
            stdout: self.out.join().unwrap_or_default(),
            stderr: self.err.join().unwrap_or_default(),
            what: self.what,
        }
    }
}

pub(crate) fn mpirun(n: usize, program: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new("mpirun");
    cmd.arg("-n").arg(n.to_string()).arg(program).args(args);
    run(cmd)
}

pub(crate) fn single(program: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run(cmd)
}
