//! Process start-up and shutdown: MPI initialization, rank dispatch, exit status.

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
use crate::task::install_panic_hook;
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

/// Starts MPI, runs `main` with the pool on rank 0 and the worker loop on every other rank,
/// stops the workers, and exits the process with the same status on every rank.
///
/// This is what `#[pool_main]` expands to. Run as a single process (no `mpirun`, or
/// `mpirun -n 1`), the pool runs its tasks on worker threads of this process: one per core,
/// or `POOL_THREADS`; with `POOL_WORKERS=N` it starts N worker processes instead, copies of
/// this program spawned with `MPI_Comm_spawn` (see the README's "Spawn mode").
///
/// Call it first thing in `main`, before starting any thread: in spawn mode it sets an
/// environment variable for MPI before MPI starts.
///
/// # Exit status
///
/// 0 when `main` returns `()` or `Ok(())`; 1 when it returns `Err(e)` (printed as
/// `Error: {e:?}`, like Rust's `main`) or the pool cannot start (including spawned workers
/// that cannot start, or do not within `POOL_SPAWN_TIMEOUT` seconds, 30 by default); 101
/// when it panics. Every worker exits with the same status.
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
pub fn run<F, R>(main: F) -> !
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    start(None, main)
}

/// [`run`] for a program that spawns its own workers: started as a single process, it starts
/// `workers` worker processes with `MPI_Comm_spawn`, as `POOL_WORKERS=workers` would. The
/// environment decides at run time: `POOL_WORKERS`, when set, wins over `workers`. Under
/// `mpirun -n K` with K > 1, the job's ranks are the workers and `workers` does not matter.
///
/// This is what `#[pool_main(workers = N)]` expands to. `workers` must be at least 1.
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
pub fn run_spawning<F, R>(workers: usize, main: F) -> !
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    start(Some(workers), main)
}

fn start<F, R>(workers: Option<usize>, main: F) -> !
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    let request = spawn::Request::from_env_or(workers);
    if let spawn::Request::Workers(_) = request {
        spawn::allow_oversubscription();
    }
    install_panic_hook();
    signals::mask_interrupts(true);
    let init = mpi::initialize_with_threading(Threading::Funneled);
    signals::mask_interrupts(false);
    let Some((universe, _)) = init else {
        eprintln!("Error: {}", Error::AlreadyInitialized);
        std::process::exit(1);
    };
    host_name();
    let world = universe.world();
    tracing::debug!(
        rank = world.rank(),
        ranks = world.size(),
        host = known_host_name().unwrap_or("?"),
        "pool: MPI started"
    );
    let code = if let Some((comm, parent)) = spawn::parent_comm(&world) {
        let code = serve(comm);
        drop(parent);
        code
    } else if world.size() == 1 {
        signals::install_master();
        match request {
            spawn::Request::None => {
                let threads = local_threads();
                let _span = tracing::info_span!("pool", mode = "single process", threads).entered();
                run_master(
                    Box::new(LocalMaster::start(threads, |link| {
                        worker::serve(link, false)
                    })),
                    None,
                    main,
                )
            }
            spawn::Request::Invalid(message) => {
                eprintln!("Error: {message}");
                1
            }
            spawn::Request::Workers(n) => run_spawned(n, main),
        }
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
    };
    drop(universe);
    std::process::exit(code)
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

/// Runs `main` on the master's side of `link`: handshake, `main`, shutdown. A `watchdog`
/// is disarmed once every worker has said HELLO.
fn run_master<F, R>(link: Box<dyn MasterLink>, watchdog: Option<spawn::Watchdog>, main: F) -> i32
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    let mut master = Master::new(link);
    let in_pool = signals::enter_pool();
    let handshake = master.handshake();
    drop(in_pool);
    drop(watchdog);
    let code = match handshake {
        Err(e) => {
            tracing::error!(error = %e, "pool: start-up failed");
            eprintln!("Error: {e}");
            1
        }
        Ok(()) => {
            let mut pool = Pool::new(master);
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| main(&mut pool)));
            master = pool.into_master();
            let code = match outcome {
                Ok(result) => result.report(),
                Err(_) => PANIC_STATUS,
            };
            crate::stats::report_at_exit(|| master.stats());
            code
        }
    };
    let _in_pool = signals::enter_pool();
    if signals::pending().is_some() {
        master.interrupted();
    }
    master.shutdown(code);
    code
}

/// Worker threads in single-process mode: `POOL_THREADS`, or one per core.
fn local_threads() -> usize {
    std::env::var("POOL_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}
