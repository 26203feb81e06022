//! MPI process pools for Rust: the master-worker pattern for embarrassingly parallel work.
//!
//! Put `#[pool_task]` on plain functions and `#[pool_main]` on `main`; rank 0 hands out
//! tasks, every other rank runs them, and results come back to rank 0.
//!
//! ```no_run
//! use pool_runtime::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Run {
//!     id: u32,
//!     samples: Vec<f64>,
//! }
//!
//! #[pool_task]
//! fn mean(run: Run) -> f64 {
//!     run.samples.iter().sum::<f64>() / run.samples.len() as f64
//! }
//!
//! #[pool_main]
//! fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
//!     let runs = (0..100).map(|id| Run { id, samples: vec![id as f64; 10] });
//!     let means = pool.map(mean, runs)?; // in input order
//!     println!("{:?}", &means[..3]);
//!     std::fs::write("means.txt", format!("{means:?}"))?; // `?` works on any error
//!     Ok(())
//! }
//! ```
//!
//! Run it with `mpirun -n 4 target/release/app` (rank 0 is the master, 3 workers), with
//! `srun -n 64 app` on Slurm, or as one process (`cargo run`), where tasks run on one thread
//! per core with the same serialization, so a program behaves the same on a laptop.
//! `POOL_WORKERS=4 app` starts it as one process that spawns 4 worker processes itself
//! (`MPI_Comm_spawn`; Open MPI).
//! The examples (`examples/` in the repository: `hello_pool`, `analyze_runs`, `many_tasks`,
//! `bench`) run as they are under `mpirun`.
//!
//! # Concepts
//!
//! - **Ranks.** Every MPI process runs the same binary. Rank 0 is the *master*: it runs your
//!   `main` with a [`Pool`]. Every other rank is a *worker*: it never runs `main`; it waits for
//!   tasks, runs them, and sends the results back, until the master stops it.
//! - **Tasks.** A `#[pool_task]` function is registered under its name on every rank, so the
//!   master sends its name's id and the encoded arguments, never code. Arguments and results
//!   cross as bytes (`serde` with `postcard`).
//! - **Calls and jobs.** [`Pool::map`] (results in input order), [`Pool::map_unordered`]
//!   (results as they finish) and [`Pool::submit`] (one task, a [`Handle`] to wait on) each
//!   open a *job*; several may be open at once.
//! - **Chunks.** The master cuts a job's inputs into *chunks* of consecutive inputs, one
//!   message each, and keeps `prefetch` chunks in flight per worker so that no worker waits
//!   for the master. Chunks adapt to the measured task time (see [`Options::chunksize`],
//!   which fixes them instead). Inputs are read lazily: at most about two windows of
//!   `workers × prefetch × chunk` inputs are held at once.
//!
//! # Modes
//!
//! | launch | what runs |
//! |---|---|
//! | `mpirun -n N app` | rank 0 is the master, ranks 1..N-1 are workers (N-1 workers) |
//! | `srun -n N app` (Slurm; in a batch script, `srun app`) | the same |
//! | `app`, `cargo run` | one process without MPI (no `MPI_Init`: it starts in milliseconds): one worker thread per core (`POOL_THREADS=k` to choose), every task through the same serialization round trip |
//! | `mpirun -n 1 app` | one process, as above, on the cores mpirun gave it (MPI started) |
//! | `POOL_WORKERS=N app`, or `#[pool_main(workers = N)]` | one process that spawns N worker processes (`MPI_Comm_spawn`, Open MPI), then runs as `mpirun -n N+1` would |
//! | [`local`]`(threads, \|pool\| ...)` in any code | a pool of worker threads that returns, any number of times in one process: `#[test]`s, libraries |
//!
//! A process starts MPI only when an MPI launcher started it, which it sees in the
//! environment the launcher sets (Open MPI's `mpirun`; MPICH's and Intel MPI's Hydra; PMIx and
//! PMI-2 launchers such as `srun --mpi=pmix`; a Slurm step of several tasks), or in spawn mode;
//! `POOL_MPI=1` starts it for a launcher not on that list.
//!
//! The master mostly waits (it sleeps while tasks run), so `-n cores+1` keeps every core
//! busy. [`Pool::workers`] says how many workers there are.
//!
//! # Beyond map
//!
//! | piece | what it does |
//! |---|---|
//! | [`Pool::share`] → [`Shared<T>`](Shared) | a value sent to every worker once (`MPI_Bcast`; in one process, the same `Arc`), an id in every task that uses it; freed on the workers when dropped on the master |
//! | [`WorkerState`] | a task's first parameter `&mut S` or `&S`: built once per worker by [`WorkerState::init`], kept until the pool stops; a failing `init` fails its items with [`TaskErrorKind::StateInit`] |
//! | [`Pool::fold`] | results combined on the workers with a combining task; one partial value per worker comes back, so the master's memory is O(workers) and it gets far fewer messages than it sends chunks ([`Stats::replies`]) |
//! | [`Pool::map_iter`] | outcomes in input order as soon as each is next, with a bounded reorder buffer ([`MapIter`]) |
//! | [`WorkerContext::current`] | inside a task: rank, worker index, node, node-local index and count (one GPU per worker, pinning) |
//!
//! ```
//! use pool_runtime::prelude::*;
//!
//! struct Offset(u64);
//!
//! impl WorkerState for Offset {
//!     fn init(ctx: &WorkerContext) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
//!         let _ = ctx.worker(); // which worker builds it (once)
//!         Ok(Offset(0))
//!     }
//! }
//!
//! #[pool_task]
//! fn weigh(offset: &Offset, table: Shared<Vec<u64>>, i: usize) -> u64 {
//!     table[i] + offset.0
//! }
//!
//! #[pool_task]
//! fn add(a: u64, b: u64) -> u64 {
//!     a + b
//! }
//!
//! # fn main() -> Result<(), Error> {
//! pool_runtime::local(2, |pool: &mut Pool| -> Result<(), Error> {
//!     let table = pool.share((0..100).collect::<Vec<u64>>())?; // sent once
//!     let inputs = || (0..100).map(|i| (table.clone(), i));
//!     assert_eq!(pool.fold(weigh, inputs(), add)?, Some(4950)); // summed on the workers
//!     let ordered: Vec<u64> = pool.map_iter(weigh, inputs()).map(Result::unwrap).collect();
//!     assert_eq!(ordered[7], 7); // in input order
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Examples: `shared_table`, `worker_state`, `fold_energy`, `ordered_stream`,
//! `worker_context` (one GPU per worker).
//!
//! # Options and environment
//!
//! Per call, with [`Pool::map_with`] and [`Pool::map_unordered_with`]:
//!
//! | option | effect |
//! |---|---|
//! | [`Options::chunksize`]`(n)` | exactly `n` inputs per message instead of adaptive chunks |
//! | [`Options::prefetch`]`(k)` | `k` chunks in flight per worker (default 2) |
//! | [`Options::journal`]`(path)` | resume journal: finished outcomes survive a killed run, each checked against its input on resume |
//! | [`Options::rerun_failed`]`(bool)` | with a journal: run recorded failures again (default) or return their errors |
//! | [`Options::progress`]`(bool)` | show or hide the progress display, whatever the environment says |
//! | [`Options::stats`]`(bool)` | print this call's [`Stats`] table on stderr when it ends |
//! | [`Options::speculative`]`(bool)` | at the end of the call, idle workers run copies of chunks queued behind slow ones (first result wins; a task may run twice) |
//! | [`Options::retries`]`(n)` | run a failed item (`Err`, panic, timeout) up to `n` more times, on another worker while there is one |
//! | [`Options::timeout`]`(d)` | an item that runs longer than `d` fails ([`TaskErrorKind::TimedOut`]); its stuck worker gets no more tasks and does not keep the program from ending |
//! | [`Options::deadline`]`(at)` | send no chunk that the measured task times say would end after `at`; the call then fails with [`Error::Deadline`] (how many inputs were not started), never with a partial result |
//!
//! Environment variables, read on the master:
//!
//! | variable | effect |
//! |---|---|
//! | `POOL_THREADS=k` | worker threads in single-process mode (default: one per core), and for [`local`]`(0, ..)` |
//! | `POOL_MPI=1` | start MPI even though no known MPI launcher started the process |
//! | `POOL_WORKERS=N` | spawn mode: start N worker processes (wins over `#[pool_main(workers = N)]`; ignored with a warning under `mpirun -n K`, K > 1) |
//! | `POOL_SPAWN_TIMEOUT=s` | how long spawned workers may take to start and say hello (default 30 s) |
//! | `POOL_PROGRESS=1` / `0` | show progress even without a terminal (plain lines, every 5 s at first, and at the end) / never |
//! | `POOL_STATS=1` | print the run's [`Stats`] as a table on stderr at shutdown (also when a signal or a dead worker ends the run) |
//! | `POOL_STATS=path.json` | write them as JSON to `path.json` then |
//! | `POOL_DEADLINE=2h` | a deadline for the pool's `map` calls (as [`Options::deadline`]): seconds after the pool starts (`5400`, `90m`, `1.5h`), `@UNIX_SECONDS`, an RFC 3339 time with its offset (`2026-01-01T00:00:00Z`), or `off`; in a Slurm job with a time limit, the job's end time less the drain grace applies too (the earlier wins) |
//! | `POOL_DRAIN_GRACE=s` | after SIGINT/SIGTERM, how long the chunks in flight of calls with a journal may finish, journaled, before the job ends (default 5 s; read on every rank; [`Launch::drain_grace`]) |
//!
//! # Setup on every rank
//!
//! `#[pool_main(init = setup)]` (without the macro: [`Launch::init`]) runs `fn setup()` in
//! every process, master and workers, before anything else: before MPI starts and before any
//! task runs (once in a single process). Install a `tracing` subscriber or a logger there (one
//! installed in `main`'s body exists on the master only, so the workers' log lines would
//! vanish under `mpirun`), set environment variables, size a thread pool. `setup` returns `()`
//! or `Result<(), E>`, as `main` does.
//!
//! ```no_run
//! use pool_runtime::prelude::*;
//!
//! fn setup() {
//!     // For example: tracing_subscriber::fmt().with_writer(std::io::stderr).init();
//! }
//!
//! #[pool_task]
//! fn work(x: u64) -> u64 {
//!     tracing::info!(x, "working"); // shows on every rank
//!     x + 1
//! }
//!
//! #[pool_main(init = setup)]
//! fn main(pool: &mut Pool) -> Result<(), Error> {
//!     pool.map(work, 0..10)?;
//!     Ok(())
//! }
//! ```
//!
//! Under `mpirun`, each rank may be bound to some cores (Open MPI binds each rank to one core
//! when it starts two ranks or fewer): a thread pool inside a task, such as rayon's, then sees
//! as many threads as [`std::thread::available_parallelism`] says, which is that binding;
//! `mpirun --bind-to none` lifts it.
//!
//! # Testing pool code
//!
//! [`local`] gives a `#[test]` a pool: it returns, and a failed assertion inside fails the
//! test with its message, after the workers have stopped.
//!
//! ```
//! # use pool_runtime::prelude::*;
//! # #[pool_task]
//! # fn square(x: u64) -> u64 {
//! #     x * x
//! # }
//! # fn main() {
//! // #[test]
//! # fn squares() {
//! pool_runtime::local(2, |pool: &mut Pool| {
//!     assert_eq!(pool.map(square, [1, 2, 3]).unwrap(), [1, 4, 9]);
//! });
//! # }
//! # squares();
//! # }
//! ```
//!
//! To test under `mpirun` too, make the code a program (a `[[bin]]` with `#[pool_main]` that
//! asserts and exits non-zero on failure) and run it from a `#[test]` with
//! `mpirun -n 3` and `env!("CARGO_BIN_EXE_<name>")`, with a timeout; the README shows one.
//!
//! # Tasks
//!
//! `#[pool_task]` keeps the function callable (`mean(run)` still works) and registers it so
//! every rank can run it by name. Arguments are owned `Serialize + Deserialize` values: one
//! argument travels as itself, several as a tuple (`pool.map(f, pairs)` with
//! `(a, b)` items), none as `()`. A task returns `T` or `Result<T, E>` with `E: Display`.
//!
//! # Errors
//!
//! A task that returns `Err` or panics becomes a [`TaskError`] with the item's index, the
//! task's name, the rank and host that ran it, and the message (a panic's includes its
//! location); the pool goes on. An error's message keeps its whole chain of causes, as
//! anyhow's `{:#}` shows it: `reading data/nope.csv: No such file or directory (os error 2)`
//! for an `anyhow::Error` with context, a `std::error::Error` with a `source()`, or a
//! `Box<dyn Error>` (see [`TaskResult`]). A task that starts a pool ([`run`], [`local`])
//! fails with a message that says a task can't. [`Pool::map`] stops sending new inputs at the first failure,
//! lets running tasks finish and returns the failure with the lowest index as
//! [`Error::Task`]; [`Pool::map_unordered`] yields every outcome, one per input. Arguments or
//! results that cannot be (de)serialized fail that item only ([`TaskErrorKind`]). Pool-level
//! problems are [`Error`]s: ranks running different binaries or duplicate task names stop
//! the run at start-up; a journal that cannot be used or written stops the `map`.
//!
//! When `main` returns `Err` or panics, the workers are stopped and every rank exits with
//! the same non-zero status (1, or 101 for a panic). A panic inside the runtime on a worker
//! aborts the MPI job with a message instead of hanging it. A worker process that dies (a
//! segfault in native code, the out-of-memory killer) ends the job within seconds with a
//! report of what each rank held; SIGINT/SIGTERM (Ctrl-C, `scancel`, a time limit) stop the
//! master with a report, and a journal keeps what was finished. Error texts are stable.
//!
//! # Observing a run
//!
//! - **Progress.** A `map` or `map_unordered` shows a progress bar (done/total when the
//!   input's length is known, rate, ETA, failures so far) when it has a terminal: stderr, or
//!   under `mpirun`/`srun` (whose pipes hide the terminal from the ranks) the job's
//!   controlling terminal. Without one, nothing unless `POOL_PROGRESS=1` or
//!   [`Options::progress`]: then plain lines for batch logs. When and how often it draws, and
//!   what it costs: [`Options::progress`] (its one home). A program that draws `indicatif` bars of its own adds them to
//!   [`progress_bars`], where pool draws its bars, so the two do not overwrite each other.
//! - **Statistics.** [`Pool::stats`] returns what every worker did: tasks, failures,
//!   chunks, busy and idle seconds, bytes sent and received; totals, efficiency
//!   (busy / (workers × wall)) and load imbalance (busiest / mean busy − 1). The master counts
//!   them from the messages it handles; workers measure their busy time per chunk and send it
//!   in the reply's header, so statistics cost no message. [`Stats::since`] gives one call's
//!   or phase's share. `POOL_STATS` prints or writes them at shutdown.
//! - **Logs.** The runtime emits [`tracing`](https://docs.rs/tracing) events in a `pool` span
//!   (`pool_worker` on workers): start-up (`debug`), the handshake (`info`; one `debug` per
//!   worker's hello), jobs opened and closed (`debug`),
//!   failed tasks (`warn`, with task, index, rank, host and message), shutdown (`info`; each
//!   worker's stop at `debug`), a job ended by a signal or a dead worker (`error`). The library installs no subscriber, so nothing is printed
//!   unless your program installs one; fatal errors are always printed on stderr. Install it
//!   in a setup function that runs on every rank before the pool starts
//!   (`#[pool_main(init = setup)]`, above), so that the workers' events and the start-up
//!   events show too.
//!
//! # What the macros generate
//!
//! `#[pool_main]` renames your function and calls [`run`] with it; worker ranks never return
//! from `run`, so they never run your `main`'s body. With `init = setup` or `workers = N`, it
//! calls `Launch::new().init(setup).workers(N).run(..)` instead ([`Launch`]). Equivalent code
//! without the macro:
//!
//! ```no_run
//! use pool_runtime::{Error, Pool};
//!
//! fn main() {
//!     fn body(pool: &mut Pool) -> Result<(), Error> {
//!         println!("{} workers", pool.workers());
//!         Ok(())
//!     }
//!     pool_runtime::run(body)
//! }
//! ```
//!
//! `#[pool_task] pub fn square(x: u64) -> u64 { x * x }` becomes a unit struct `square` (so
//! `pool.map(square, ...)` is typed, and `square(3)` still calls the function through `Deref`)
//! and one `const _: () = { ... };` block whose helper items are all named `__pool_*`: the
//! function itself, the [`Task`] impl, a byte-level entry point, and its registration with
//! `inventory`, all through `::pool_runtime::__private` (hidden, not a public API: write
//! `#[pool_task]`, not this). This is it, and it compiles (the `allow` is the only addition:
//! lints do not look at names a macro makes):
//!
//! ```no_run
//! /// Pool task `fn square(x: u64) -> u64`: call it as a function, or run it on a pool with
//! /// `pool.map(square, inputs)`.
//! #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
//! #[allow(non_camel_case_types)]
//! pub struct square;
//! const _: () = {
//!     #[allow(clippy::needless_pass_by_value)]
//!     fn __pool_task_fn(x: u64) -> u64 {
//!         x * x
//!     }
//!     #[automatically_derived]
//!     impl ::core::ops::Deref for square {
//!         type Target = fn(u64) -> u64;
//!         fn deref(&self) -> &Self::Target {
//!             const __POOL_FN: fn(u64) -> u64 = __pool_task_fn;
//!             &__POOL_FN
//!         }
//!     }
//!     #[automatically_derived]
//!     impl ::pool_runtime::__private::Task for square {
//!         type Args = u64;
//!         type Output = u64;
//!         const NAME: &'static ::core::primitive::str =
//!             ::core::concat!(::core::module_path!(), "::square");
//!     }
//!     fn __pool_invoke(
//!         input: &[::core::primitive::u8],
//!         output: &mut ::pool_runtime::__private::Vec<::core::primitive::u8>,
//!     ) -> ::pool_runtime::__private::Result<(), ::pool_runtime::__private::TaskFailure> {
//!         ::pool_runtime::__private::invoke_task::<square>(input, output, |__pool_arg0| {
//!             ::pool_runtime::__private::Result::Ok(__pool_task_fn(__pool_arg0))
//!         })
//!     }
//!     ::pool_runtime::__private::inventory::submit! {
//!         ::pool_runtime::__private::TaskEntry::new(
//!             <square as ::pool_runtime::__private::Task>::NAME,
//!             __pool_invoke,
//!         )
//!     }
//! };
//! # fn main() { assert_eq!(square(3), 9); }
//! ```
//!
//! A task with several arguments takes them as a tuple (`type Args = (u64, u64)`), and a
//! fallible one converts its `Result` with `into_task_result`, after it has looked for the
//! error's causes with `(&&Causes(&value)).causes()` (which the concrete error type decides). The exact expansions are kept
//! as snapshots in the repository (`pool-macros/tests/expand/*.expanded.rs`, checked by
//! `cargo test -p pool-macros`); `cargo expand` shows the same code with `inventory::submit!`
//! and the derives expanded further.
//!
//! # Panics
//!
//! Task panics are caught (with the default `panic = "unwind"`); with `panic = "abort"` a
//! panicking task ends its process and mpirun ends the job.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

pub mod bulk;
mod codec;
mod context;
mod env;
mod error;
mod frame;
mod gather;
mod host;
pub mod journal;
mod master;
mod pool;
mod progress;
mod protocol;
mod registry;
mod runtime;
mod shared;
mod signals;
pub mod sim;
mod spawn;
mod state;
mod stats;
mod task;
mod transport;
mod worker;

pub use crate::bulk::Bulk;
pub use crate::context::WorkerContext;
pub use crate::error::{Error, TaskError, TaskErrorKind};
pub use crate::pool::{Handle, Input, MapIter, MapUnordered, Options, Outcomes, Pool};
pub use crate::runtime::{MainResult, run, run_spawning};
pub use crate::shared::Shared;
pub use crate::state::WorkerState;
pub use crate::stats::{Stats, WorkerStats};
pub use crate::task::Task;
#[doc(hidden)] // Named by generated code only (its bound on a task's return type).
pub use crate::task::TaskResult;
#[doc(inline)]
pub use pool_macros::{pool_main, pool_task};

pub use crate::progress::progress_bars;
pub use crate::runtime::{Launch, local};

/// Everything a pool program needs: `use pool_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Bulk, Error, Options, Pool, Shared, Stats, TaskError, WorkerContext, WorkerState,
        pool_main, pool_task,
    };
}

// Not public API. Used by generated code.
#[doc(hidden)]
pub mod __private {
    pub use crate::error::TaskFailure;
    pub use crate::pool::Pool;
    pub use crate::registry::TaskEntry;
    pub use crate::runtime::{run, run_spawning};
    pub use crate::task::{CauseChain, Causes, Task, TaskResult};
    pub use inventory;

    pub use ::core::result::Result;
    pub use ::std::vec::Vec;

    /// True while this process's store of shared values holds `id` (for the tests that
    /// check that a dropped `Shared` is freed on the workers).
    pub fn shared_held(id: u64) -> bool {
        crate::shared::held(id)
    }

    /// Runs task `T` from bytes to bytes; `f` calls the user's function.
    ///
    /// Generic over the task rather than over its argument and output types: the bounds on
    /// those were checked once, at `impl Task`, at the user's types, and a type that is not
    /// `Serialize` is not reported again here.
    pub fn invoke_task<T: Task>(
        input: &[u8],
        output: &mut Vec<u8>,
        f: fn(T::Args) -> Result<T::Output, String>,
    ) -> Result<(), TaskFailure> {
        crate::task::invoke::<T::Args, T::Output>(input, output, f)
    }

    /// [`invoke_task`] for a task whose first parameter is the worker's state `S`.
    pub fn invoke_task_with_state<T: Task, S: crate::WorkerState>(
        input: &[u8],
        output: &mut Vec<u8>,
        f: fn(&mut S, T::Args) -> Result<T::Output, String>,
    ) -> Result<(), TaskFailure> {
        crate::state::invoke_with_state::<S, T::Args, T::Output>(input, output, f)
    }

    /// The value of a fallible task, or its error's message: `{:#}`, then the `causes` the
    /// message does not contain yet. Called as `into_task_result::<ReturnType>(value,
    /// causes)`, so a missing `Display` on the error type is reported at the user's return
    /// type; `causes` come from `(&&Causes(&value)).causes()` (see [`CauseChain`]).
    pub fn into_task_result<R: TaskResult>(value: R, causes: Vec<String>) -> Result<R::Ok, String> {
        value
            .into_task_result()
            .map_err(|message| crate::task::with_causes(message, causes))
    }

    /// `Launch::new().init(setup)` for `#[pool_main(init = setup)]`, with `setup` checked at
    /// the user's path (one error, with a fix, when it is not a function that fits).
    pub fn launch_with_init<F: InitFn<R> + 'static, R>(setup: F) -> crate::Launch {
        crate::Launch::new().init_status(Box::new(move || setup.call()))
    }

    /// What `#[pool_main(init = ...)]` takes: a function without arguments that returns
    /// `()` or `Result<(), E>` with `E: Debug`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` can't be the `init` function of `#[pool_main(init = ...)]`",
        label = "expected a function that takes no arguments and returns `()` or `Result<(), E>`",
        note = "write `fn setup() {{ ... }}` and name it: `#[pool_main(init = setup)]`"
    )]
    pub trait InitFn<R> {
        /// Runs it; returns the exit status (0, or 1 after printing its error).
        fn call(self) -> i32;
    }

    impl<F: FnOnce() -> R, R: InitResult> InitFn<R> for F {
        fn call(self) -> i32 {
            self().report()
        }
    }

    /// What an `init` function may return: what `main` may ([`MainResult`](crate::MainResult)).
    #[diagnostic::on_unimplemented(
        message = "an `init` function must return `()` or `Result<(), E>` where `E: Debug`, not `{Self}`",
        label = "unsupported return type"
    )]
    pub trait InitResult {
        /// Prints the error, if any, and returns the process exit status.
        fn report(self) -> i32;
    }

    impl InitResult for () {
        fn report(self) -> i32 {
            crate::MainResult::report(self)
        }
    }

    impl<E: ::std::fmt::Debug> InitResult for Result<(), E> {
        fn report(self) -> i32 {
            crate::MainResult::report(self)
        }
    }
}
