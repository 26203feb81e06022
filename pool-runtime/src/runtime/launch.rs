//! [`Launch`]: [`super::run`] with options (a setup function on every rank, spawn mode).

use super::*;

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
    drain_grace: Option<std::time::Duration>,
    /// The setup, which returns the exit status (non-zero: it failed, and said why).
    init: Option<Box<dyn FnOnce() -> i32>>,
}

impl Launch {
    /// The defaults: what [`run`] does.
    pub fn new() -> Launch {
        Launch {
            workers: None,
            drain_grace: None,
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

    /// After SIGINT or SIGTERM (`scancel`, Slurm's time limit, Ctrl-C), lets the chunks in
    /// flight of calls with a [journal](crate::Options::journal) finish for at most `grace`,
    /// journaling their results, before the job ends (default 5 s; `POOL_DRAIN_GRACE`, in
    /// seconds, wins over this). Keep it shorter than the time the launcher gives between its
    /// SIGTERM and its SIGKILL: Slurm's `KillWait` (30 s by default; `scontrol show config`
    /// shows it), about a second under Open MPI's `mpirun`. `Duration::ZERO`: no drain.
    ///
    /// Set here rather than per call, because every rank must know it: a worker process
    /// that got SIGTERM keeps working for the master until the job ends, and ends itself
    /// only if nothing has ended the job 30 s after the grace.
    pub fn drain_grace(mut self, grace: std::time::Duration) -> Launch {
        self.drain_grace = Some(grace);
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

    pub(super) fn start<F, R>(self, main: F) -> !
    where
        F: FnOnce(&mut Pool) -> R,
        R: MainResult,
    {
        match env::drain_grace() {
            Ok(grace) => {
                if let Some(grace) = grace.or(self.drain_grace) {
                    signals::set_drain_grace(grace);
                }
            }
            Err(message) => {
                eprintln!("Error: {message}");
                std::process::exit(1);
            }
        }
        let request = env::SpawnRequest::from_env_or(self.workers);
        if let env::SpawnRequest::Workers(_) = request {
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
        let launcher = env::mpi_launcher();
        let universe = if launcher.is_some() || matches!(request, env::SpawnRequest::Workers(_)) {
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
            .field("drain_grace", &self.drain_grace)
            .field("init", &self.init.as_ref().map(|_| "FnOnce()"))
            .finish()
    }
}
