//! Process start-up and shutdown: MPI initialization, rank dispatch, exit status.

use std::fmt::Debug;
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

use mpi::Threading;
use mpi::topology::Communicator;

use crate::engine::Engine;
use crate::error::Error;
use crate::pool::Pool;
use crate::signals;
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
/// or `POOL_THREADS`.
///
/// # Exit status
///
/// 0 when `main` returns `()` or `Ok(())`; 1 when it returns `Err(e)` (printed as
/// `Error: {e:?}`, like Rust's `main`) or the pool cannot start; 101 when it panics. Every
/// worker exits with the same status.
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
    let comm = world.duplicate();
    let code = if world.size() == 1 {
        signals::install_master();
        let threads = local_threads();
        let _span = tracing::info_span!("pool", mode = "single process", threads).entered();
        run_master(Box::new(LocalMaster::start(threads)), main)
    } else if world.rank() == 0 {
        signals::install_master();
        let _span = tracing::info_span!("pool", mode = "mpi", rank = 0).entered();
        run_master(Box::new(MpiMaster::new(comm)), main)
    } else {
        let rank = world.rank();
        let _span = tracing::debug_span!("pool_worker", rank).entered();
        let host: &'static str = host_name().leak();
        signals::install_worker(rank as usize, host);
        let mut link = MpiWorker::new(comm);
        match panic::catch_unwind(AssertUnwindSafe(|| worker::serve(&mut link, true))) {
            Ok(code) => code,
            Err(_) => {
                eprintln!(
                    "pool: internal error on rank {rank} (panic above); aborting the MPI job"
                );
                world.abort(70)
            }
        }
    };
    drop(universe);
    std::process::exit(code)
}

fn run_master<F, R>(link: Box<dyn MasterLink>, main: F) -> i32
where
    F: FnOnce(&mut Pool) -> R,
    R: MainResult,
{
    let mut engine = Engine::new(link);
    let in_pool = signals::enter_pool();
    let handshake = engine.handshake();
    drop(in_pool);
    let code = match handshake {
        Err(e) => {
            tracing::error!(error = %e, "pool: start-up failed");
            eprintln!("Error: {e}");
            1
        }
        Ok(()) => {
            let mut pool = Pool::new(engine);
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| main(&mut pool)));
            engine = pool.into_engine();
            let code = match outcome {
                Ok(result) => result.report(),
                Err(_) => PANIC_STATUS,
            };
            crate::stats::report_at_exit(|| engine.stats());
            code
        }
    };
    let _in_pool = signals::enter_pool();
    if signals::pending().is_some() {
        engine.interrupted();
    }
    engine.shutdown(code);
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

static HOST: OnceLock<String> = OnceLock::new();

/// This host's name, if [`host_name`] has been asked already.
pub(crate) fn known_host_name() -> Option<&'static str> {
    HOST.get().map(String::as_str)
}

/// The name of this host as MPI reports it; asked once, on the main thread, after MPI_Init.
pub(crate) fn host_name() -> String {
    HOST.get_or_init(|| {
        mpi::environment::processor_name().unwrap_or_else(|_| "unknown-host".to_owned())
    })
    .clone()
}
