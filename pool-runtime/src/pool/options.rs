//! Per-call settings: [`Options`].

use std::path::PathBuf;
use std::time::Instant;

use crate::master::ChunkPlan;

/// Per-call settings for [`Pool::map_with`](crate::Pool::map_with) and [`Pool::map_unordered_with`](crate::Pool::map_unordered_with).
///
/// # Examples
///
/// ```no_run
/// use pool_runtime::prelude::*;
///
/// #[pool_task]
/// fn simulate(seed: u64) -> f64 {
///     seed as f64 / 7.0
/// }
///
/// #[pool_main]
/// fn main(pool: &mut Pool) -> Result<(), Error> {
///     let options = Options::new()
///         .chunksize(16) // 16 inputs per message instead of adaptive chunks
///         .prefetch(4) // 4 messages in flight per worker
///         .progress(true) // progress even in a batch job's log
///         .stats(true); // this call's statistics on stderr when it ends
///     let results = pool.map_with(simulate, 0..100_000, options)?;
///     assert_eq!(results.len(), 100_000);
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub(crate) chunksize: Option<usize>,
    pub(crate) prefetch: Option<usize>,
    pub(crate) journal: Option<PathBuf>,
    pub(crate) progress: Option<bool>,
    pub(crate) stats: bool,
    pub(crate) speculative: bool,
    /// Inverted: `Options::rerun_failed(false)` sets it.
    pub(crate) keep_failures: bool,
    pub(crate) retries: u32,
    pub(crate) timeout: Option<std::time::Duration>,
    pub(crate) deadline: Option<Instant>,
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Options::default()
    }

    /// Sends inputs to workers in chunks of exactly `n` (at least 1), whatever their size in
    /// bytes: `n` large inputs make one message of `n` times their size.
    ///
    /// By default chunks adapt: one input at a time until the task's duration is measured,
    /// then as many as keep a worker busy for a target time (1 ms on a few workers, longer
    /// on many, so the master keeps up: 16 ms at 1,000 workers), fewer for a worker measured
    /// slower than the rest, split finer at the end of a run (when the input's length is
    /// known) so the workers finish together, and no larger than about 1 MiB of inputs
    /// (moving that much costs far more than a message). Larger chunks cost less per task;
    /// smaller ones balance load better.
    #[must_use]
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// Keeps up to `k` chunks (at least 1) in flight per worker, so a worker that finishes one
    /// finds the next already there.
    #[must_use]
    pub fn prefetch(mut self, k: usize) -> Self {
        self.prefetch = Some(k.max(1));
        self
    }

    /// Records every outcome in a resume journal at `path` as it arrives, and reuses the
    /// outcomes a journal already at `path` holds ([`Pool::map_with`](crate::Pool::map_with)
    /// and [`Pool::map_unordered_with`](crate::Pool::map_unordered_with)).
    ///
    /// Run a `map` with a journal, and if the run dies (killed, time limit, crashed node), run
    /// the same program again with the same journal: finished inputs are not run again, their
    /// results are read back, and the `map` returns the full result, as if it had never
    /// stopped. The journal holds the task's name, the number of inputs and a digest of each
    /// input's encoded arguments: another task or another number of inputs is refused with
    /// [`Error::Journal`](crate::Error::Journal), and an input whose arguments changed since
    /// its outcome was recorded runs again (a warning says how many did), so a recorded
    /// outcome is only ever returned for the arguments it was computed from. Failed tasks are
    /// recorded too; on resume they run again, unless [`Options::rerun_failed`]`(false)` asks
    /// for their recorded errors. Delete the file to start over.
    ///
    /// With `map_with`, when the input iterator does not report its exact length
    /// (`size_hint`), the inputs are collected into a `Vec` first, to know how many there are;
    /// `map_unordered_with` asks for that length instead.
    ///
    /// Durability and the file format: see [`crate::journal`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use pool_runtime::prelude::*;
    ///
    /// #[pool_task]
    /// fn simulate(seed: u64) -> f64 {
    ///     seed as f64 // hours of work
    /// }
    ///
    /// #[pool_main]
    /// fn main(pool: &mut Pool) -> Result<(), Error> {
    ///     let options = Options::new().journal("sweep.journal");
    ///     let results = pool.map_with(simulate, 0..10_000, options)?;
    ///     println!("{} results", results.len());
    ///     Ok(())
    /// }
    /// ```
    #[must_use]
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// Runs an item that failed (returned `Err` or panicked) again, up to `n` more times, on
    /// another worker when there is one (default 0: a failure is final).
    ///
    /// The item's [`TaskError`](crate::TaskError), if every attempt failed, says how many
    /// attempts were made and keeps the earlier attempts' messages
    /// ([`TaskError::attempts`](crate::TaskError::attempts),
    /// [`TaskError::earlier`](crate::TaskError::earlier)). Only the final outcome reaches a
    /// journal and the caller; [`Stats`](crate::Stats) counts the retries.
    ///
    /// A worker that fails 5 items in a row (no success of its own between) that then
    /// succeed on other workers gets no more tasks (with a warning naming its rank and
    /// host): a node with a broken library would otherwise burn every retry. An input that
    /// fails everywhere is the input's fault and quarantines no one, and so is one that
    /// fails only the first time it runs, wherever that is.
    #[must_use]
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Each item may run at most `limit` (per attempt): one that runs longer fails with
    /// [`TaskErrorKind::TimedOut`](crate::TaskErrorKind::TimedOut), naming the limit and the
    /// worker, or runs again on another worker with [`retries`](Options::retries) left.
    ///
    /// The worker it ran on is **stuck**: the master stops waiting for it, gives it no more
    /// tasks, hands what it still held to the other workers, and drops whatever it sends
    /// later; the call goes on with the others. With no worker left, the items not run yet
    /// fail at once ("not run") instead of waiting. A stuck worker does not keep the program
    /// from ending: under MPI the job ends with `MPI_Abort` and `main`'s exit status once
    /// `main` returned and the other workers stopped; in one process its thread is left
    /// behind (and ends with the process). A value cannot be
    /// [shared](crate::Pool::share) while a worker is stuck.
    ///
    /// With a timeout, each item goes to a worker alone (as with
    /// [`chunksize(1)`](Options::chunksize), which it overrides), so the master knows when
    /// it started: when it was sent to an idle worker, or when the worker's previous result
    /// arrived. An item's time therefore includes the transfer of its input, and a timeout
    /// comes late rather than early. Meant for tasks of milliseconds or more; supported by
    /// `map`, `map_unordered`, `map_outcomes`, `try_map` and `map_iter` (the `_with` forms).
    #[must_use]
    pub fn timeout(mut self, limit: std::time::Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// With a [`journal`](Options::journal) that holds failed outcomes: run those inputs again
    /// (`true`, the default), or hand out their recorded errors without running them
    /// (`false`: a sweep with a point that always fails then finishes on resume, and reports
    /// that point's error, instead of failing on it again every time).
    #[must_use]
    pub fn rerun_failed(mut self, rerun: bool) -> Self {
        self.keep_failures = !rerun;
        self
    }

    /// Shows (`true`) or hides (`false`) the progress of this call on stderr, whatever
    /// `POOL_PROGRESS` says and whether stderr is a terminal.
    ///
    /// By default a `map` or `map_unordered` shows a progress bar when there is a terminal
    /// (done/total when the input's length is known, rate, ETA, failures so far) and nothing
    /// otherwise; `POOL_PROGRESS=1` shows it anyway and `POOL_PROGRESS=0` never. Without a
    /// terminal (a batch job's output file, a pipe), progress is one plain line every 5 s (less
    /// often as the run goes on: every tenth of the time elapsed, at most every 5 minutes) and
    /// a last one when the call ends:
    ///
    /// ```text
    /// pool: bench::sleep_us: 1001/1500 done (66.7%), 0 failed, 199 tasks/s, 5.0 s, ETA 2.5 s
    /// pool: bench::sleep_us: 1500/1500 done, 0 failed, in 7.5 s (200 tasks/s)
    /// ```
    ///
    /// The display costs nothing per task: results are counted, the count is handed to the
    /// display at most every 200 ms, and a bar is drawn at most 5 times a second.
    ///
    /// Under `mpirun` or `srun`, whose pipes hide the terminal from the ranks, the bar is drawn
    /// on the job's controlling terminal when it has one. Unless asked for (this option or
    /// `POOL_PROGRESS=1`), the bar of a call shorter than a second is cleared when it ends.
    /// Lines your own code prints to the terminal while a bar is shown land in the middle of
    /// it: hide the bar of a call whose loop prints.
    #[must_use]
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = Some(show);
        self
    }

    /// Prints this call's [`Stats`](crate::Stats) as a table on stderr when it ends: per worker the tasks
    /// it ran, busy and idle time and bytes, then totals, efficiency and load imbalance.
    ///
    /// For the whole run, set `POOL_STATS=1` (or `POOL_STATS=path.json`); in code, read
    /// [`Pool::stats`](crate::Pool::stats).
    #[must_use]
    pub fn stats(mut self, print: bool) -> Self {
        self.stats = print;
        self
    }

    /// At the end of the call, lets a worker with nothing left to do run a copy of a chunk
    /// that still waits in the queue of a slow or busy worker; the first result to come back
    /// is the one delivered (default: off).
    ///
    /// A chunk queued behind a long task (or on a slow node) can otherwise end the whole call
    /// late while other workers sit idle. Every input still yields exactly one outcome, but a
    /// task may then *run* twice: use it for tasks without side effects (no files written,
    /// no counters outside the result). Only small chunks (frames up to 64 KiB) are copied,
    /// each at most once.
    #[must_use]
    pub fn speculative(mut self, on: bool) -> Self {
        self.speculative = on;
        self
    }

    /// Sends no chunk that the task times measured so far say would finish after `at`; the
    /// call then ends once the chunks sent have come back, with
    /// [`Error::Deadline`](crate::Error::Deadline) ("deadline reached (…): 234 inputs (from
    /// input 766 on) were not started …"), never with a partial result. With a
    /// [`journal`](Options::journal), what finished is in it: run again with it to finish the
    /// rest. For `map_with`, `map_unordered_with`, `map_outcomes_with` and `try_map_with`
    /// (a [`MapUnordered`](crate::MapUnordered) stream yields one
    /// [`TaskErrorKind::NotStarted`](crate::TaskErrorKind::NotStarted) error, for the first
    /// input not started, and ends); `map_iter_with` and `fold_with` refuse it.
    ///
    /// The pool has a deadline of its own for these calls, when `POOL_DEADLINE` sets one
    /// (seconds after the pool starts, `90m`, `2h`, `@UNIX_SECONDS`, an RFC 3339 time with its
    /// offset, or `off`) or when it runs in a Slurm job with a time limit (the job's end time,
    /// less the drain grace); the earlier one applies.
    ///
    /// A chunk is sent when what its worker already holds and the chunk's items, at the
    /// job's measured time per item (and that worker's measured slowness), end before `at`
    /// with a margin of 25%; otherwise it is cut to what fits. Until the task is measured
    /// (each worker's first item), there is nothing to go on: the first items go while `at`
    /// has not passed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::{Duration, Instant};
    /// use pool_runtime::prelude::*;
    ///
    /// #[pool_task]
    /// fn simulate(seed: u64) -> f64 {
    ///     seed as f64 // minutes of work
    /// }
    ///
    /// #[pool_main]
    /// fn main(pool: &mut Pool) -> Result<(), Error> {
    ///     let options = Options::new()
    ///         .journal("sweep.journal")
    ///         .deadline(Instant::now() + Duration::from_secs(3 * 3600));
    ///     match pool.map_with(simulate, 0..10_000, options) {
    ///         Err(e @ Error::Deadline { .. }) => eprintln!("{e}"), // submit again to finish
    ///         other => println!("{} results", other?.len()),
    ///     }
    ///     Ok(())
    /// }
    /// ```
    #[must_use]
    pub fn deadline(mut self, at: Instant) -> Self {
        self.deadline = Some(at);
        self
    }

    pub(crate) fn plan(&self) -> ChunkPlan {
        let default = ChunkPlan::default();
        ChunkPlan {
            chunksize: if self.timeout.is_some() {
                Some(1)
            } else {
                self.chunksize
            },
            prefetch: self.prefetch.unwrap_or(default.prefetch),
            speculative: self.speculative,
        }
    }
}
