//! The pool's environment variables, each read and parsed here and nowhere else.
//!
//! | variable | effect |
//! |---|---|
//! | `POOL_THREADS=k` | worker threads in single-process mode (default: one per core) |
//! | `POOL_WORKERS=N` | spawn mode: start N worker processes |
//! | `POOL_SPAWN_TIMEOUT=s` | how long spawned workers may take to say hello (default 30 s) |
//! | `POOL_MPI=1` | start MPI although no known launcher started the process |
//! | `POOL_PROGRESS=1` / `0` | show progress even without a terminal / never |
//! | `POOL_STATS=1` / `path.json` | the run's statistics at shutdown: a table on stderr / JSON |
//! | `POOL_DRAIN_GRACE=s` | after SIGINT/SIGTERM, how long the chunks in flight may finish (default 5 s) |
//! | `POOL_DEADLINE=2h` / `@1700000000` / `2025-06-01T18:00:00Z` / `off` | no chunk that would end after this is sent |
//!
//! The user-facing table is in the crate documentation (`lib.rs`, "Options and
//! environment"); this module is where the values are read.

use std::ffi::OsString;
use std::os::raw::c_int;
use std::path::PathBuf;
use std::time::Duration;

mod deadline;

pub(crate) use deadline::{DEADLINE_VAR, DeadlineSpec, deadline};

/// The environment variable that asks a single process for `N` spawned workers.
pub(crate) const WORKERS_VAR: &str = "POOL_WORKERS";

/// The environment variable that changes the spawn timeout ([`spawn_timeout`], seconds).
pub(crate) const TIMEOUT_VAR: &str = "POOL_SPAWN_TIMEOUT";

/// The environment variable with the number of worker threads of a single process.
const THREADS_VAR: &str = "POOL_THREADS";

/// The environment variable that shows or hides progress.
const PROGRESS_VAR: &str = "POOL_PROGRESS";

/// The environment variable that asks for the run's statistics at shutdown.
pub(crate) const STATS_VAR: &str = "POOL_STATS";

/// How long the master waits, by default, for its spawned workers to start and say HELLO.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What `POOL_WORKERS` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SpawnRequest {
    /// Not set (or empty): no spawn mode.
    None,
    /// Spawn this many workers (at least 1).
    Workers(usize),
    /// Set to something that is not a positive number: the message says what was wrong.
    Invalid(String),
}

impl SpawnRequest {
    /// Reads `POOL_WORKERS` from the environment; when it is not set, `default` (the
    /// program's own choice: [`crate::run_spawning`], `#[pool_main(workers = N)]`) applies.
    pub(crate) fn from_env_or(default: Option<usize>) -> SpawnRequest {
        SpawnRequest::choose(std::env::var_os(WORKERS_VAR), default)
    }

    fn choose(env: Option<OsString>, default: Option<usize>) -> SpawnRequest {
        // Set but empty counts as not set.
        let env = env.filter(|v| !v.to_string_lossy().trim().is_empty());
        match (env, default) {
            (Some(value), _) => SpawnRequest::parse(&value),
            (None, None) => SpawnRequest::None,
            (None, Some(0)) => SpawnRequest::Invalid(
                "run_spawning(0, ..): spawn mode needs at least 1 worker".to_owned(),
            ),
            (None, Some(n)) if n > MAX_WORKERS => SpawnRequest::Invalid(format!(
                "run_spawning({n}, ..): at most {MAX_WORKERS} workers can be spawned"
            )),
            (None, Some(n)) => SpawnRequest::Workers(n),
        }
    }

    fn parse(value: &OsString) -> SpawnRequest {
        let text = value.to_string_lossy();
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return SpawnRequest::None;
        }
        match trimmed.parse::<usize>() {
            Ok(0) => SpawnRequest::Invalid(format!(
                "{WORKERS_VAR}=0: spawn mode needs at least 1 worker; unset {WORKERS_VAR} to run \
                 the tasks on threads of this process"
            )),
            Ok(n) if n > MAX_WORKERS => SpawnRequest::Invalid(format!(
                "{WORKERS_VAR}={n}: at most {MAX_WORKERS} workers can be spawned"
            )),
            Ok(n) => SpawnRequest::Workers(n),
            Err(_) => SpawnRequest::Invalid(format!(
                "{WORKERS_VAR}={text:?} is not a number of workers; use a positive integer, \
                 such as {WORKERS_VAR}=4"
            )),
        }
    }
}

/// MPI counts processes in `int`s, and the master is one of them.
const MAX_WORKERS: usize = (c_int::MAX - 1) as usize;

/// How long to wait for spawned workers: `POOL_SPAWN_TIMEOUT` seconds, or 30 s.
pub(crate) fn spawn_timeout() -> Result<Duration, String> {
    parse_timeout(std::env::var(TIMEOUT_VAR).ok())
}

fn too_long(v: &str) -> String {
    format!(
        "{TIMEOUT_VAR}={v:?} is too long a time; use a number of seconds, such as {TIMEOUT_VAR}=60"
    )
}

fn parse_timeout(value: Option<String>) -> Result<Duration, String> {
    match value {
        None => Ok(DEFAULT_TIMEOUT),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(s) if s > 0.0 => Duration::try_from_secs_f64(s).map_err(|_| too_long(&v)),
            _ => Err(format!(
                "{TIMEOUT_VAR}={v:?} is not a number of seconds; use a positive number, such as \
                 {TIMEOUT_VAR}=60"
            )),
        },
    }
}

/// `1`, `on`, `true`, `yes` → `Some(true)`; `0`, `off`, `false`, `no` → `Some(false)`;
/// anything else (or unset) → `None`. Case and surrounding blanks do not matter.
pub(crate) fn parse_switch(value: Option<&str>) -> Option<bool> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("1" | "on" | "true" | "yes") => Some(true),
        Some("0" | "off" | "false" | "no") => Some(false),
        _ => None,
    }
}

/// What `POOL_PROGRESS` says: show (`Some(true)`), hide, or nothing.
pub(crate) fn progress() -> Option<String> {
    std::env::var(PROGRESS_VAR).ok()
}

/// Worker threads in single-process mode: `POOL_THREADS`, or one per core.
pub(crate) fn threads() -> usize {
    std::env::var(THREADS_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Why this process starts MPI: the name of the variable its launcher set (or `POOL_MPI`),
/// or `None` when nothing says an MPI launcher started it.
pub(crate) fn mpi_launcher() -> Option<&'static str> {
    mpi_launcher_in(|name| std::env::var_os(name))
}

/// The environment variable that makes a process start MPI although no launcher it knows
/// started it (`POOL_MPI=1`).
const FORCE_MPI_VAR: &str = "POOL_MPI";

/// Environment variables by which MPI launchers tell the processes they start who they are.
/// A process that has none of them was not started by a launcher, and needs no MPI.
const LAUNCHER_VARS: &[&str] = &[
    // Open MPI's mpirun (and the processes it spawns for a pool in spawn mode).
    "OMPI_COMM_WORLD_SIZE",
    // PMIx launchers: Open MPI 5's mpirun (prterun), `srun --mpi=pmix`.
    "PMIX_RANK",
    // PMI-1 and PMI-2 launchers: MPICH's and Intel MPI's mpiexec (Hydra), `srun --mpi=pmi2`.
    "PMI_RANK",
    "PMI_SIZE",
    "PMI_FD",
    "PMI_PORT",
    // MVAPICH's mpirun_rsh.
    "MV2_COMM_WORLD_SIZE",
];

/// Why this process starts MPI: the name of the variable its launcher set (or
/// `POOL_MPI`), or `None` when nothing says an MPI launcher started it. `var` reads the
/// environment.
fn mpi_launcher_in(var: impl Fn(&str) -> Option<OsString>) -> Option<&'static str> {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    if parse_switch(
        var(FORCE_MPI_VAR)
            .as_ref()
            .map(|v| v.to_string_lossy())
            .as_deref(),
    ) == Some(true)
    {
        return Some(FORCE_MPI_VAR);
    }
    if let Some(name) = LAUNCHER_VARS.iter().copied().find(|name| set(name)) {
        return Some(name);
    }
    // A Slurm job step of several tasks (`srun -n 4 app`), whatever way the MPI finds its
    // ranks there. A step of one task, or the batch script itself, runs as one process.
    let tasks = var("SLURM_STEP_NUM_TASKS").and_then(|v| v.to_string_lossy().trim().parse().ok());
    if tasks.is_some_and(|n: u64| n > 1) {
        return Some("SLURM_STEP_NUM_TASKS");
    }
    None
}

/// The environment variable with the drain grace (seconds).
pub(crate) const DRAIN_GRACE_VAR: &str = "POOL_DRAIN_GRACE";

/// `POOL_DRAIN_GRACE`: `None` when it is not set (or empty), the grace, or what is wrong.
pub(crate) fn drain_grace() -> Result<Option<Duration>, String> {
    parse_drain_grace(std::env::var(DRAIN_GRACE_VAR).ok().as_deref())
}

fn parse_drain_grace(value: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match v.trim().parse::<f64>() {
        Ok(s) if s >= 0.0 => Duration::try_from_secs_f64(s).map(Some).map_err(|_| {
            format!(
                "{DRAIN_GRACE_VAR}={v:?} is too long a time; use a number of seconds shorter than \
                 the launcher's wait before SIGKILL (Slurm's KillWait), such as {DRAIN_GRACE_VAR}=20"
            )
        }),
        _ => Err(format!(
            "{DRAIN_GRACE_VAR}={v:?} is not a number of seconds; use a number of seconds (0: no \
             drain), such as {DRAIN_GRACE_VAR}=20"
        )),
    }
}

/// What `POOL_STATS` asks for at the end of the run.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StatsRequest {
    Off,
    Table,
    Json(PathBuf),
}

/// Reads `POOL_STATS`: unset, empty, `0`, `off`, `false`, `no` → nothing; `1`, `on`, `true`,
/// `yes`, `table` → a table on stderr; anything else is the path of a JSON file.
pub(crate) fn parse_stats(value: Option<&str>) -> StatsRequest {
    let Some(value) = value.map(str::trim) else {
        return StatsRequest::Off;
    };
    match value.to_ascii_lowercase().as_str() {
        "" | "0" | "off" | "false" | "no" => StatsRequest::Off,
        "1" | "on" | "true" | "yes" | "table" => StatsRequest::Table,
        _ => StatsRequest::Json(value.into()),
    }
}

/// What `POOL_STATS` asks for.
pub(crate) fn stats() -> StatsRequest {
    parse_stats(std::env::var(STATS_VAR).ok().as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> SpawnRequest {
        SpawnRequest::parse(&OsString::from(s))
    }

    fn launcher(vars: &[(&str, &str)]) -> Option<&'static str> {
        mpi_launcher_in(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn launchers_are_recognised_by_their_environment() {
        assert_eq!(launcher(&[]), None);
        assert_eq!(launcher(&[("HOME", "/root")]), None);
        for (var, value) in [
            ("OMPI_COMM_WORLD_SIZE", "1"),
            ("PMIX_RANK", "0"),
            ("PMI_RANK", "0"),
            ("PMI_SIZE", "4"),
            ("PMI_FD", "6"),
        ] {
            assert_eq!(launcher(&[(var, value)]), Some(var));
        }
        assert_eq!(launcher(&[("OMPI_COMM_WORLD_SIZE", "")]), None);
        // Slurm: a step of several tasks, not one task nor the batch script.
        assert_eq!(
            launcher(&[("SLURM_STEP_NUM_TASKS", "4"), ("SLURM_JOB_ID", "7")]),
            Some("SLURM_STEP_NUM_TASKS")
        );
        assert_eq!(launcher(&[("SLURM_STEP_NUM_TASKS", "1")]), None);
        assert_eq!(
            launcher(&[("SLURM_JOB_ID", "7"), ("SLURM_NTASKS", "64")]),
            None
        );
        // Forced, or not.
        assert_eq!(launcher(&[("POOL_MPI", "1")]), Some("POOL_MPI"));
        assert_eq!(launcher(&[("POOL_MPI", " Yes ")]), Some("POOL_MPI"));
        assert_eq!(launcher(&[("POOL_MPI", "0")]), None);
    }

    #[test]
    fn spawn_timeout_values() {
        let t = |v: &str| parse_timeout(Some(v.to_owned()));
        assert_eq!(parse_timeout(None), Ok(DEFAULT_TIMEOUT));
        assert_eq!(t("2.5"), Ok(Duration::from_millis(2500)));
        for bad in ["0", "-1", "x", "NaN"] {
            assert!(
                t(bad).unwrap_err().contains("is not a number of seconds"),
                "{bad}"
            );
        }
        for huge in ["1e20", "inf"] {
            assert!(
                t(huge).unwrap_err().contains("is too long a time"),
                "{huge}"
            );
        }
    }

    #[test]
    fn pool_workers_values() {
        assert_eq!(parse("3"), SpawnRequest::Workers(3));
        assert_eq!(parse(" 1 "), SpawnRequest::Workers(1));
        assert_eq!(parse(""), SpawnRequest::None);
        assert_eq!(
            parse("0"),
            SpawnRequest::Invalid(
                "POOL_WORKERS=0: spawn mode needs at least 1 worker; unset POOL_WORKERS to run \
                 the tasks on threads of this process"
                    .into()
            )
        );
        assert_eq!(
            parse("four"),
            SpawnRequest::Invalid(
                "POOL_WORKERS=\"four\" is not a number of workers; use a positive integer, such \
                 as POOL_WORKERS=4"
                    .into()
            )
        );
        assert!(matches!(parse("-2"), SpawnRequest::Invalid(_)));
        assert!(matches!(parse("99999999999"), SpawnRequest::Invalid(_)));
    }

    #[test]
    fn the_environment_wins_over_the_programs_choice() {
        let env = |s: &str| Some(OsString::from(s));
        assert_eq!(SpawnRequest::choose(None, None), SpawnRequest::None);
        assert_eq!(
            SpawnRequest::choose(None, Some(4)),
            SpawnRequest::Workers(4)
        );
        assert_eq!(
            SpawnRequest::choose(env("2"), Some(4)),
            SpawnRequest::Workers(2)
        );
        assert_eq!(
            SpawnRequest::choose(env("2"), None),
            SpawnRequest::Workers(2)
        );
        assert_eq!(
            SpawnRequest::choose(env(" "), Some(4)),
            SpawnRequest::Workers(4)
        );
        assert!(matches!(
            SpawnRequest::choose(env("x"), Some(4)),
            SpawnRequest::Invalid(_)
        ));
        assert_eq!(
            SpawnRequest::choose(None, Some(0)),
            SpawnRequest::Invalid("run_spawning(0, ..): spawn mode needs at least 1 worker".into())
        );
    }

    #[test]
    fn drain_grace_values() {
        let p = parse_drain_grace;
        assert_eq!(p(None), Ok(None));
        assert_eq!(p(Some(" ")), Ok(None));
        assert_eq!(p(Some("0")), Ok(Some(Duration::ZERO)));
        assert_eq!(p(Some(" 2.5 ")), Ok(Some(Duration::from_millis(2500))));
        assert_eq!(
            p(Some("5s")),
            Err(
                "POOL_DRAIN_GRACE=\"5s\" is not a number of seconds; use a number of seconds \
                 (0: no drain), such as POOL_DRAIN_GRACE=20"
                    .to_owned()
            )
        );
        assert!(
            p(Some("-1"))
                .unwrap_err()
                .contains("is not a number of seconds")
        );
        assert!(p(Some("1e30")).unwrap_err().contains("is too long a time"));
    }

    #[test]
    fn pool_stats_values() {
        assert_eq!(parse_stats(None), StatsRequest::Off);
        for off in ["", "0", "off", "FALSE", " no "] {
            assert_eq!(parse_stats(Some(off)), StatsRequest::Off, "{off:?}");
        }
        for on in ["1", "on", "True", "yes", "table"] {
            assert_eq!(parse_stats(Some(on)), StatsRequest::Table, "{on:?}");
        }
        assert_eq!(
            parse_stats(Some("out/stats.json")),
            StatsRequest::Json("out/stats.json".into())
        );
    }
}
