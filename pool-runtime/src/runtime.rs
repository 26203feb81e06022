//! The launcher: process start-up and shutdown, and in-process pools.
//!
//! [`run`] (what `#[pool_main]` expands to) decides from the environment what this process
//! is. Started by an MPI launcher (`mpirun`, `srun`, or as a worker spawned by a pool), it
//! starts MPI: rank 0 is the master, every other rank a worker. Started any other way, it is
//! one process that runs its tasks on worker threads, without MPI at all: no `MPI_Init`,
//! which costs about 0.3 s, so a small program starts in milliseconds. Spawn mode
//! (`POOL_WORKERS`) starts MPI to start its workers. [`local`] is a pool of worker threads that
//! returns, for tests and libraries. Every mode drives the master the same way ([`drive`]).

use std::ffi::OsString;
use std::fmt::Debug;
use std::panic::{self, AssertUnwindSafe};

use mpi::Threading;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::error::Error;
use crate::host::{host_name, known_host_name};
use crate::master::Master;
use crate::pool::Pool;
use crate::signals;
use crate::spawn;
use crate::task::{in_task, install_panic_hook};
use crate::transport::MasterLink;
use crate::transport::local::LocalMaster;
use crate::transport::mpi::{MpiMaster, MpiWorker};
use crate::worker;

/// What the function under `#[pool_main]` may return: `()` or `Result<(), E>` with
/// `E: Debug`, as for Rust's own `main`.
#[diagnostic::on_unimplemented(
    message = "`#[pool_main]` functions must return `()` or `Result<(), E>` where `E: Debug`, not `{Self}`",
    label = "unsupported return type"
)]
pub trait MainResult {
    /// Prints the error, if any, and returns the process exit status.
    fn report(self) -> i32;
}

impl MainResult for () {
    fn report(self) -> i32 {
        0
    }
}

impl<E: Debug> MainResult for Result<(), E> {
    fn report(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("Error: {e:?}");
                1
            }
        }
    }
}

/// Exit status of every rank when the main function panicked (as Rust's own).
const PANIC_STATUS: i32 = 101;

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
fn mpi_launcher(var: impl Fn(&str) -> Option<OsString>) -> Option<&'static str> {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    if var(FORCE_MPI_VAR).is_some_and(|v| {
        matches!(
            v.to_string_lossy().trim().to_ascii_lowercase().as_str(),
            "1" | "on" | "true" | "yes"
        )
    }) {
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

/// Panics (the caller's panic) when called inside a task: a task can't start a pool. On a
/// worker, the panic fails that task with this message, and the pool goes on.
#[track_caller]
fn refuse_inside_task(what: &str) {
    if in_task() {
        panic!(
            "{what} was called inside a pool task: a task can't start a pool (it runs on a \
             worker, which belongs to a pool already); do the work in the task itself (in \
             parallel with threads, such as rayon's), or return it to the master and call the \
             pool there"
        );
    }
}

/// Starts the pool, runs `main` with it on the master and the worker loop everywhere else,
/// stops the workers, and exits the process with the same status on every rank.
///
/// This is what `#[pool_main]` expands to. What the process is depends on how it was
/// started:
///
/// - By an MPI launcher (`mpirun -n N`, `srun -n N`; found in the environment it sets):
///   MPI starts; rank 0 is the master, ranks 1..N-1 are workers. With `mpirun -n 1`, the
///   single rank runs its tasks on worker threads, as below.
/// - Any other way (`cargo run`, `./app`): one process, without MPI, that runs the tasks on
///   worker threads (one per core, or `POOL_THREADS`) through the same serialization. No
///   `MPI_Init`, so it starts in milliseconds. `POOL_MPI=1` starts MPI all the same, for a
///   launcher pool does not recognise (it knows Open MPI, MPICH/Intel MPI (Hydra), PMIx, PMI-2
///   and Slurm steps of several tasks).
/// - With `POOL_WORKERS=N` (or [`run_spawning`]) and no launcher, or `mpirun -n 1`: MPI
///   starts and the process spawns N worker processes with `MPI_Comm_spawn` (see the
///   README's "Spawn mode").
///
/// Call it first thing in `main`, before starting any thread: in spawn mode it sets an
/// environment variable for MPI before MPI starts. To run code on every rank before the pool
/// starts (logging, environment, thread pools), use [`Launch::init`] or
/// `#[pool_main(init = setup)]`.
///
/// # Exit status
///
/// 0 when `main` returns `()` or `Ok(())`; 1 when it returns `Err(e)` (printed as
/// `Error: {e:?}`, like Rust's `main`) or the pool cannot start (including spawned workers
/// that cannot start, or do not within `POOL_SPAWN_TIMEOUT` seconds, 30 by default); 101
/// when it panics. Every worker exits with the same status.
///
/// # Panics
///
/// When called inside a pool task: that task fails with a message that says so (a task
/// can't start a pool), and the pool goes on.
///
/// # Examples
///
/// Equivalent code without `#[pool_main]`:
///
/// ```no_run
/// use pool_runtime::{Error, Pool};
///
/// fn main() {
///     pool_runtime::run(|pool: &mut Pool| -> Result<(), Error> {
///         println!("{} workers", pool.workers());
///         Ok(())
///     })
/// }
/// ```
#[track_caller]
pub fn run<F, R>(main: F) -> !
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    refuse_inside_task("pool_runtime::run");
    Launch::new().start(main)
}

/// [`run`] for a program that spawns its own workers: started as a single process, it starts
/// `workers` worker processes with `MPI_Comm_spawn`, as `POOL_WORKERS=workers` would. The
/// environment decides at run time: `POOL_WORKERS`, when set, wins over `workers`. Under
/// `mpirun -n K` with K > 1, the job's ranks are the workers and `workers` does not matter.
///
/// This is what `#[pool_main(workers = N)]` expands to, and the same as
/// `Launch::new().workers(workers).run(main)`. `workers` must be at least 1.
///
/// # Panics
///
/// When called inside a pool task, as [`run`].
///
/// # Examples
///
/// ```no_run
/// use pool_runtime::{Error, Pool};
///
/// fn main() {
///     pool_runtime::run_spawning(4, |pool: &mut Pool| -> Result<(), Error> {
///         println!("{} workers", pool.workers()); // 4, run as `app`
///         Ok(())
///     })
/// }
/// ```
#[track_caller]
pub fn run_spawning<F, R>(workers: usize, main: F) -> !
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    refuse_inside_task("pool_runtime::run_spawning");
    Launch::new().workers(workers).start(main)
}

/// [`run`] with options: code to run on every rank first ([`Launch::init`]), and workers to
/// spawn ([`Launch::workers`]).
///
/// `#[pool_main(init = setup, workers = 4)]` expands to
/// `Launch::new().init(setup).workers(4).run(main)`.
///
/// # Examples
///
/// Logs from tasks on every rank: the subscriber is installed on the master and on every
/// worker, before the pool starts (so its own start-up events show too).
///
/// ```no_run
/// use pool_runtime::{Error, Launch, Pool};
///
/// fn setup() {
///     // For example: tracing_subscriber::fmt().with_writer(std::io::stderr).init();
///     // or: rayon::ThreadPoolBuilder::new().num_threads(2).build_global().unwrap();
/// }
///
/// fn main() {
///     Launch::new().init(setup).run(|pool: &mut Pool| -> Result<(), Error> {
///         println!("{} workers", pool.workers());
///         Ok(())
///     })
/// }
/// ```
#[must_use = "a `Launch` does nothing until `.run(main)`"]
pub struct Launch {
    workers: Option<usize>,
    /// The setup, which returns the exit status (non-zero: it failed, and said why).
    init: Option<Box<dyn FnOnce() -> i32>>,
}

impl Launch {
    /// The defaults: what [`run`] does.
    pub fn new() -> Launch {
        Launch {
            workers: None,
            init: None,
        }
    }

    /// Runs `setup` in every process of the pool, master and workers alike (once per
    /// process; in a single process, once), before anything else happens: before MPI
    /// starts, and before any task runs. For what each process needs before work starts:
    /// a `tracing` subscriber or logger (so tasks' logs show on every rank: a subscriber
    /// installed in `main` exists only on the master), environment variables, a thread
    /// pool's size. Another call replaces the function.
    ///
    /// `setup` returns `()` or `Result<(), E>` with `E: Debug`, as `main` does. When it
    /// returns `Err(e)`, that process prints `Error: {e:?}` and exits with status 1; when it
    /// panics, with status 101 (under `mpirun`, the launcher then ends the job).
    ///
    /// `setup` runs after the pool has read `POOL_WORKERS`, with SIGINT and SIGTERM
    /// blocked (threads it starts inherit that, so these signals go to the main thread,
    /// where the pool handles them; the main thread unblocks them afterwards).
    pub fn init<R: MainResult>(self, setup: impl FnOnce() -> R + 'static) -> Launch {
        self.init_status(Box::new(move || setup().report()))
    }

    /// [`Launch::init`] with a setup that returns its exit status.
    pub(crate) fn init_status(mut self, setup: Box<dyn FnOnce() -> i32>) -> Launch {
        self.init = Some(setup);
        self
    }

    /// Started as a single process, spawns `workers` worker processes, as [`run_spawning`].
    pub fn workers(mut self, workers: usize) -> Launch {
        self.workers = Some(workers);
        self
    }

    /// Starts the pool and runs `main` on the master, as [`run`] does (with the options),
    /// and exits the process.
    ///
    /// # Panics
    ///
    /// When called inside a pool task, as [`run`].
    #[track_caller]
    pub fn run<F, R>(self, main: F) -> !
    where
        F: FnOnce(&mut Pool) -> R,
        R: MainResult,
    {
        refuse_inside_task("pool_runtime::Launch::run");
        self.start(main)
    }

    fn start<F, R>(self, main: F) -> !
    where
        F: FnOnce(&mut Pool) -> R,
        R: MainResult,
    {
        let request = spawn::Request::from_env_or(self.workers);
        if let spawn::Request::Workers(_) = request {
            spawn::allow_oversubscription();
        }
        // The user's setup and MPI's start-up with SIGINT and SIGTERM blocked: the threads
        // they start never take these signals, which reach the main thread (see `signals`).
        signals::mask_interrupts(true);
        if let Some(setup) = self.init {
            let code = setup();
            if code != 0 {
                std::process::exit(code);
            }
        }
        // After the setup, so that a panic hook it installs sees every panic but the tasks'.
        install_panic_hook();
        let launcher = mpi_launcher(|name| std::env::var_os(name));
        let universe = if launcher.is_some() || matches!(request, spawn::Request::Workers(_)) {
            let init = mpi::initialize_with_threading(Threading::Funneled);
            signals::mask_interrupts(false);
            let Some((universe, _)) = init else {
                eprintln!("Error: {}", Error::AlreadyInitialized);
                std::process::exit(1);
            };
            Some(universe)
        } else {
            signals::mask_interrupts(false);
            None
        };
        host_name();
        let code = match &universe {
            None => {
                tracing::debug!(
                    host = known_host_name().unwrap_or("?"),
                    "pool: started as one process, without MPI (no MPI launcher in the \
                     environment)"
                );
                one_process(request, main)
            }
            Some(universe) => {
                let world = universe.world();
                tracing::debug!(
                    rank = world.rank(),
                    ranks = world.size(),
                    host = known_host_name().unwrap_or("?"),
                    launcher = launcher.unwrap_or("none: spawn mode"),
                    "pool: MPI started"
                );
                with_mpi(&world, request, main)
            }
        };
        drop(universe);
        std::process::exit(code)
    }
}

impl Default for Launch {
    fn default() -> Launch {
        Launch::new()
    }
}

impl Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch")
            .field("workers", &self.workers)
            .field("init", &self.init.as_ref().map(|_| "FnOnce()"))
            .finish()
    }
}

/// A process of a job MPI started: a spawned worker, the only rank, the master, or a worker.
fn with_mpi<F, R>(world: &SimpleCommunicator, request: spawn::Request, main: F) -> i32
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    if let Some((comm, parent)) = spawn::parent_comm(world) {
        let code = serve(comm);
        drop(parent);
        code
    } else if world.size() == 1 {
        one_process(request, main)
    } else if world.rank() == 0 {
        if let Some(value) =
            std::env::var_os(spawn::WORKERS_VAR).filter(|v| !v.to_string_lossy().trim().is_empty())
        {
            eprintln!(
                "pool: warning: {}={} ignored: the program runs under mpirun with {} ranks \
                 ({} workers); {} applies to a program started as a single process",
                spawn::WORKERS_VAR,
                value.to_string_lossy(),
                world.size(),
                world.size() - 1,
                spawn::WORKERS_VAR,
            );
        }
        signals::install_master();
        let _span = tracing::info_span!("pool", mode = "mpi", rank = 0).entered();
        run_master(Box::new(MpiMaster::new(world.duplicate())), None, main)
    } else {
        serve(world.duplicate())
    }
}

/// A single process: worker threads, or spawned worker processes (only with MPI started:
/// a spawn request always starts it).
fn one_process<F, R>(request: spawn::Request, main: F) -> i32
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    signals::install_master();
    match request {
        spawn::Request::None => {
            let threads = local_threads();
            let _span = tracing::info_span!("pool", mode = "single process", threads).entered();
            run_master(Box::new(local_link(threads)), None, main)
        }
        spawn::Request::Invalid(message) => {
            eprintln!("Error: {message}");
            1
        }
        spawn::Request::Workers(n) => run_spawned(n, main),
    }
}

/// `threads` worker threads running the worker loop.
fn local_link(threads: usize) -> LocalMaster {
    LocalMaster::start(threads, |link| worker::serve(link, false))
}

/// Runs `main` with a pool of `threads` worker threads in this process (0: one per core, or
/// `POOL_THREADS`), and returns what `main` returns, after the workers have stopped.
///
/// Unlike [`run`], this returns, needs no MPI, and can be called any number of times in one
/// process: in `#[test]`s, in library code that wants a pool for one call, in a program that
/// is not a pool program. Tasks run as under [`run`] in one process: each argument and
/// result makes the same serialization round trip as between MPI ranks, and a task that
/// fails or panics is a [`TaskError`](crate::TaskError), not a crash.
///
/// Under `mpirun`, every rank that calls `local` gets its own pool of threads: to test
/// code under MPI, test it through [`run`] or `#[pool_main]` in a program run under
/// `mpirun` (the README shows how).
///
/// # Panics
///
/// When `main` panics: the workers are stopped and their threads joined first, then the
/// panic goes on with its own payload, so a failed `assert!` in a `#[test]` fails that test
/// with its message (and `#[should_panic(expected = "...")]` sees it). When the pool cannot
/// start (two tasks with the same name), with that [`Error`]'s message. When called inside
/// a pool task, as [`run`].
///
/// # Examples
///
/// ```
/// use pool_runtime::prelude::*;
///
/// #[pool_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> Result<(), Error> {
/// let squares = pool_runtime::local(2, |pool: &mut Pool| pool.map(square, 0..5))?;
/// assert_eq!(squares, [0, 1, 4, 9, 16]);
/// // Again, in the same process.
/// let total: u64 = pool_runtime::local(0, |pool: &mut Pool| pool.map(square, 0..5))?
///     .into_iter()
///     .sum();
/// assert_eq!(total, 30);
/// # Ok(())
/// # }
/// ```
///
/// In a `#[test]`, the same: `local(2, |pool: &mut Pool| assert_eq!(pool.map(square,
/// [3]).unwrap(), [9]))`; a failing `assert!` fails that test with its message.
#[track_caller]
pub fn local<F, R>(threads: usize, main: F) -> R
where
    F: FnOnce(&mut Pool) -> R,
{
    refuse_inside_task("pool_runtime::local");
    install_panic_hook();
    let threads = if threads == 0 {
        local_threads()
    } else {
        threads
    };
    let _span = tracing::info_span!("pool", mode = "local", threads).entered();
    let ended = drive(Box::new(local_link(threads)), None, |pool| match pool {
        Err(e) => (1, Err(e)),
        Ok(pool) => {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| main(pool)));
            let code = if outcome.is_ok() { 0 } else { PANIC_STATUS };
            (code, Ok(outcome))
        }
    });
    match ended {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(e) => panic!("pool_runtime::local: the pool cannot start: {e}"),
    }
}

/// Runs the worker loop on `comm`, where the master is rank 0; returns the exit status.
fn serve(comm: SimpleCommunicator) -> i32 {
    let rank = comm.rank();
    let _span = tracing::debug_span!("pool_worker", rank).entered();
    let host: &'static str = host_name().leak();
    signals::install_worker(rank as usize, host);
    let abort_comm = comm.as_raw();
    let mut link = MpiWorker::new(comm);
    match panic::catch_unwind(AssertUnwindSafe(|| worker::serve(&mut link, true))) {
        Ok(code) => code,
        Err(_) => {
            eprintln!("pool: internal error on rank {rank} (panic above); aborting the MPI job");
            // SAFETY: the link, and so the communicator, is still alive.
            unsafe { mpi::ffi::MPI_Abort(abort_comm, 70) };
            70
        }
    }
}

/// Spawn mode: starts `n` worker processes and runs `main` with them, or explains why not.
fn run_spawned<F, R>(n: usize, main: F) -> i32
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    let limit = match spawn::timeout() {
        Ok(limit) => limit,
        Err(message) => {
            eprintln!("Error: {message}");
            return 1;
        }
    };
    let watchdog = spawn::Watchdog::start(
        limit,
        format!(
            "{n} spawned worker process{} did not start within {} s ({}={n}); set {} to wait \
             longer, or start the workers with mpirun instead: unset {} and run `mpirun -n {} {}`",
            if n == 1 { "" } else { "es" },
            limit.as_secs_f64(),
            spawn::WORKERS_VAR,
            spawn::TIMEOUT_VAR,
            spawn::WORKERS_VAR,
            n + 1,
            std::env::args().next().unwrap_or_else(|| "app".to_owned()),
        ),
    );
    match spawn::spawn_workers(n) {
        Err(message) => {
            drop(watchdog);
            eprintln!("Error: {message}");
            1
        }
        Ok(spawned) => {
            let _span = tracing::info_span!("pool", mode = "spawn", workers = n).entered();
            let code = run_master(Box::new(MpiMaster::new(spawned.comm)), Some(watchdog), main);
            // Disconnects from the workers, which do the same before MPI_Finalize.
            drop(spawned.inter);
            code
        }
    }
}

/// Runs `main` on the master's side of `link`; returns the exit status. A `watchdog` is
/// disarmed once every worker has said HELLO.
fn run_master<F, R>(link: Box<dyn MasterLink>, watchdog: Option<spawn::Watchdog>, main: F) -> i32
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    drive(link, watchdog, |pool| match pool {
        Err(e) => {
            tracing::error!(error = %e, "pool: start-up failed");
            eprintln!("Error: {e}");
            (1, 1)
        }
        Ok(pool) => {
            let code = match panic::catch_unwind(AssertUnwindSafe(|| main(pool))) {
                Ok(result) => result.report(),
                Err(_) => PANIC_STATUS,
            };
            (code, code)
        }
    })
}

/// The master's whole life on `link`, and the only place the launcher touches the master: the handshake; then `body`, with the pool or with the error that kept it from
/// starting; then shutdown, which stops every worker with the exit status `body` returned
/// beside its value. `body` must not panic. A `watchdog` is disarmed once every worker has
/// said HELLO.
fn drive<T>(
    link: Box<dyn MasterLink>,
    watchdog: Option<spawn::Watchdog>,
    body: impl FnOnce(Result<&mut Pool, Error>) -> (i32, T),
) -> T {
    let mut master = Master::new(link);
    let in_pool = signals::enter_pool();
    let handshake = master.handshake();
    drop(in_pool);
    drop(watchdog);
    let (code, value) = match handshake {
        Err(e) => body(Err(e)),
        Ok(()) => {
            let mut pool = Pool::new(master);
            let ended = body(Ok(&mut pool));
            master = pool.into_master();
            crate::stats::report_at_exit(|| master.stats());
            ended
        }
    };
    let _in_pool = signals::enter_pool();
    if signals::pending().is_some() {
        master.interrupted();
    }
    master.shutdown(code);
    value
}

/// Worker threads in single-process mode: `POOL_THREADS`, or one per core.
fn local_threads() -> usize {
    std::env::var("POOL_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launcher(vars: &[(&str, &str)]) -> Option<&'static str> {
        mpi_launcher(|name| {
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
    fn a_pool_inside_a_task_is_refused() {
        refuse_inside_task("not in a task: nothing happens");
        install_panic_hook();
        let mut input = Vec::new();
        crate::codec::encode_into(&1u8, &mut input).unwrap();
        let failure = crate::task::invoke::<u8, u8>(&input, &mut Vec::new(), |x| {
            refuse_inside_task("pool_runtime::local");
            Ok(x)
        })
        .expect_err("refused inside a task");
        let message = failure.message();
        assert!(
            matches!(failure, crate::error::TaskFailure::Panicked(_))
                && message.starts_with(
                    "pool_runtime::local was called inside a pool task: a task can't start a \
                     pool (it runs on a worker, which belongs to a pool already); do the work \
                     in the task itself"
                )
                && message.contains("runtime.rs:"),
            "{message}"
        );
    }
}
