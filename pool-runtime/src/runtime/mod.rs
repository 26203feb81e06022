//! The launcher: process start-up and shutdown, and in-process pools.
//!
//! [`run`] (what `#[pool_main]` expands to) decides from the environment what this process
//! is. Started by an MPI launcher (`mpirun`, `srun`, or as a worker spawned by a pool), it
//! starts MPI: rank 0 is the master, every other rank a worker. Started any other way, it is
//! one process that runs its tasks on worker threads, without MPI at all: no `MPI_Init`,
//! which costs about 0.3 s, so a small program starts in milliseconds. Spawn mode
//! (`POOL_WORKERS`) starts MPI to start its workers. [`local()`] is a pool of worker threads that
//! returns, for tests and libraries. Every mode drives the master the same way ([`drive`]).

mod launch;
mod local;

use std::fmt::Debug;
use std::panic::{self, AssertUnwindSafe};

use mpi::Threading;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::env;
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

pub use launch::Launch;
pub use local::local;

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

/// A process of a job MPI started: a spawned worker, the only rank, the master, or a worker.
fn with_mpi<F, R>(world: &SimpleCommunicator, request: env::SpawnRequest, main: F) -> i32
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
            std::env::var_os(env::WORKERS_VAR).filter(|v| !v.to_string_lossy().trim().is_empty())
        {
            eprintln!(
                "pool: warning: {}={} ignored: the program runs under mpirun with {} ranks \
                 ({} workers); {} applies to a program started as a single process",
                env::WORKERS_VAR,
                value.to_string_lossy(),
                world.size(),
                world.size() - 1,
                env::WORKERS_VAR,
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
fn one_process<F, R>(request: env::SpawnRequest, main: F) -> i32
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    signals::install_master();
    match request {
        env::SpawnRequest::None => {
            let threads = env::threads();
            let _span = tracing::info_span!("pool", mode = "single process", threads).entered();
            run_master(Box::new(local::local_link(threads)), None, main)
        }
        env::SpawnRequest::Invalid(message) => {
            eprintln!("Error: {message}");
            1
        }
        env::SpawnRequest::Workers(n) => run_spawned(n, main),
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
    let limit = match env::spawn_timeout() {
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
            env::WORKERS_VAR,
            env::TIMEOUT_VAR,
            env::WORKERS_VAR,
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
    let handshake = master.handshake().and_then(|()| master.start_deadline());
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

#[cfg(test)]
mod tests;
