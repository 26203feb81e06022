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
//! fn main(pool: &mut Pool) -> Result<(), Error> {
//!     let runs = (0..100).map(|id| Run { id, samples: vec![id as f64; 10] });
//!     let means = pool.map(mean, runs)?; // in input order
//!     println!("{:?}", &means[..3]);
//!     Ok(())
//! }
//! ```
//!
//! Run it with `mpirun -n 4 target/release/app` (rank 0 is the master, 3 workers), with
//! `srun -n 64 app` on Slurm, or as one process (`cargo run`), where tasks run on one thread
//! per core with the same serialization, so a program behaves the same on a laptop.
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
//! location); the pool goes on. [`Pool::map`] stops sending new inputs at the first failure,
//! lets running tasks finish and returns the failure with the lowest index;
//! [`Pool::map_unordered`] yields every outcome. Pool-level problems are [`Error`]s.
//!
//! When `main` returns `Err` or panics, the workers are stopped and every rank exits with
//! the same non-zero status. A panic inside the runtime on a worker aborts the MPI job with a
//! message instead of hanging it.
//!
//! # Panics
//!
//! Task panics are caught (with the default `panic = "unwind"`); with `panic = "abort"` a
//! panicking task ends its process and mpirun ends the job.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

pub mod bulk;
mod codec;
mod engine;
mod error;
pub mod journal;
mod pool;
mod progress;
mod protocol;
mod registry;
mod runtime;
mod signals;
mod stats;
mod task;
mod transport;
mod worker;

pub use crate::bulk::Bulk;
pub use crate::error::{Error, TaskError, TaskErrorKind};
pub use crate::pool::{Handle, MapUnordered, Options, Pool};
pub use crate::runtime::{MainResult, run};
pub use crate::stats::{Stats, WorkerStats};
pub use crate::task::{Task, TaskResult};
#[doc(inline)]
pub use pool_macros::{pool_main, pool_task};

/// Everything a pool program needs: `use pool_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{Bulk, Error, Options, Pool, Stats, TaskError, pool_main, pool_task};
}

// Not public API. Used by generated code.
#[doc(hidden)]
pub mod __private {
    pub use crate::pool::Pool;
    pub use crate::registry::{InvokeFn, TaskEntry, task_id};
    pub use crate::runtime::{MainResult, run};
    pub use crate::task::{Task, TaskFailure, TaskResult, invoke};
    pub use inventory;
    pub use serde;

    pub use ::core::result::Result;
    pub use ::std::string::String;
    pub use ::std::vec::Vec;

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
        invoke::<T::Args, T::Output>(input, output, f)
    }

    /// The value of a fallible task, or its error's message. Called as
    /// `into_task_result::<ReturnType>(value)`, so a missing `Display` on the error type is
    /// reported at the user's return type.
    pub fn into_task_result<R: TaskResult>(value: R) -> Result<R::Ok, String> {
        value.into_task_result()
    }
}
