//! The master's API: [`Pool`] with `map`, `map_unordered` and `submit`.

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::codec;
use crate::engine::{Engine, Fill, Origin, Pace, Raw, Source};
use crate::error::{Error, TaskError, TaskErrorKind};
use crate::journal::Journal;
use crate::progress::Progress;
use crate::protocol;
use crate::signals::{self, InPool};
use crate::stats::Stats;
use crate::task::Task;

/// A pool of workers, handed to the `#[pool_main]` function on rank 0.
///
/// Under `mpirun -n N` the pool has N-1 worker processes (ranks 1..N); run as a single
/// process, it has one worker thread per core (or `POOL_THREADS`) and runs every task through
/// the same serialization round trip, so a program behaves the same before it goes to a cluster.
///
/// All methods take `&self`: several jobs may be open at once (for example `submit` handles
/// waited while a `map_unordered` is being read).
///
/// # Examples
///
/// ```no_run
/// use pool_runtime::prelude::*;
///
/// #[pool_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// #[pool_main]
/// fn main(pool: &mut Pool) -> Result<(), Error> {
///     let squares = pool.map(square, 0..1000)?;
///     assert_eq!(squares[3], 9);
///     Ok(())
/// }
/// ```
///
/// See `examples/hello_pool.rs`.
pub struct Pool {
    engine: RefCell<Engine>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

/// Per-call settings for [`Pool::map_with`] and [`Pool::map_unordered_with`].
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
    chunksize: Option<usize>,
    prefetch: Option<usize>,
    journal: Option<PathBuf>,
    progress: Option<bool>,
    stats: bool,
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Options::default()
    }

    /// Sends inputs to workers in chunks of exactly `n` (at least 1).
    ///
    /// By default chunks adapt: one input at a time until the task's duration is measured,
    /// then as many as keep a worker busy for about a millisecond, split finer at the end of
    /// a run (when the input's length is known) so the workers finish together. Larger chunks
    /// cost less per task; smaller ones balance load better.
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

    /// Appends every successful result to a resume journal at `path` as it arrives, and
    /// skips the inputs whose results a journal already at `path` holds ([`Pool::map_with`]
    /// only).
    ///
    /// Run a `map` with a journal, and if the run dies (killed, time limit, crashed node), run
    /// the same program again with the same journal: finished inputs are not run again, their
    /// results are read back, and the `map` returns the full result, as if it had never
    /// stopped. The inputs must be the same, in the same order: the journal checks the task
    /// and the number of inputs, and refuses a mismatch with [`Error::Journal`]. Failed tasks
    /// are not recorded, so they run again. Delete the file to start over.
    ///
    /// When the input iterator does not report its exact length (`size_hint`), the inputs are
    /// collected into a `Vec` first, to know how many there are.
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

    /// Prints this call's [`Stats`] as a table on stderr when it ends: per worker the tasks
    /// it ran, busy and idle time and bytes, then totals, efficiency and load imbalance.
    ///
    /// For the whole run, set `POOL_STATS=1` (or `POOL_STATS=path.json`); in code, read
    /// [`Pool::stats`].
    #[must_use]
    pub fn stats(mut self, print: bool) -> Self {
        self.stats = print;
        self
    }

    fn pace(&self) -> Pace {
        let default = Pace::default();
        Pace {
            chunksize: self.chunksize,
            prefetch: self.prefetch.unwrap_or(default.prefetch),
        }
    }
}

impl Pool {
    pub(crate) fn new(engine: Engine) -> Pool {
        Pool {
            engine: RefCell::new(engine),
        }
    }

    /// The engine, for one step of one call.
    ///
    /// # Panics
    ///
    /// When the pool is used from inside one of its own calls: from the input iterator of a
    /// `map` (which the pool reads while it dispatches) or from a `Deserialize` impl.
    fn engine(&self) -> EngineRef<'_> {
        let in_pool = signals::enter_pool();
        let engine = self.engine.try_borrow_mut().unwrap_or_else(|_| {
            panic!(
                "pool: the pool was used from inside one of its own calls (an input iterator \
                 that waits on the pool, or a Deserialize impl); collect such inputs into a \
                 Vec first"
            )
        });
        EngineRef {
            engine,
            _in_pool: in_pool,
        }
    }

    pub(crate) fn into_engine(self) -> Engine {
        self.engine.into_inner()
    }

    /// The number of workers: MPI ranks minus one, or worker threads in a single process.
    pub fn workers(&self) -> usize {
        self.engine.borrow().workers()
    }

    /// What the workers did since the pool started: per worker the tasks it ran, its busy and
    /// idle time and the bytes it was sent and sent back; totals, efficiency and load
    /// imbalance. `Stats::since` gives the difference of two snapshots, for one call or phase.
    ///
    /// `POOL_STATS=1` prints this as a table on stderr when the pool shuts down, and
    /// `POOL_STATS=path.json` writes it as JSON; [`Options::stats`] prints it for one call.
    ///
    /// # Panics
    ///
    /// When called from inside one of the pool's own calls (an input iterator).
    pub fn stats(&self) -> Stats {
        self.engine().stats()
    }

    /// Runs `task` on every input and returns the results in input order.
    ///
    /// Inputs are read lazily: only a bounded window of them is encoded and in flight at once.
    /// The pool reads them while it dispatches, so the input iterator must not use the pool
    /// itself (collect such inputs into a `Vec` first).
    ///
    /// # Errors
    ///
    /// If a task fails (returns `Err`, panics, or its data cannot cross), no further inputs are
    /// sent, the tasks already running finish, and the failure with the lowest index is
    /// returned as [`Error::Task`]. Use [`Pool::map_unordered`] to get every outcome.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use pool_runtime::prelude::*;
    ///
    /// #[pool_task]
    /// fn parse(line: String) -> Result<u64, std::num::ParseIntError> {
    ///     line.trim().parse()
    /// }
    ///
    /// #[pool_main]
    /// fn main(pool: &mut Pool) -> Result<(), Error> {
    ///     let lines = ["1", "22", "x"].map(String::from);
    ///     match pool.map(parse, lines) {
    ///         Ok(values) => println!("{values:?}"),
    ///         // `task tests::parse failed on item 2 (rank 1 on node7): invalid digit ...`
    ///         Err(Error::Task(e)) => eprintln!("{e}"),
    ///         Err(e) => return Err(e),
    ///     }
    ///     Ok(())
    /// }
    /// ```
    ///
    /// Run it under `mpirun`; a complete program: `examples/analyze_runs.rs`.
    pub fn map<T, I>(&self, task: T, inputs: I) -> Result<Vec<T::Output>, Error>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        self.map_with(task, inputs, Options::new())
    }

    /// [`Pool::map`] with explicit [`Options`].
    ///
    /// # Errors
    ///
    /// As [`Pool::map`].
    pub fn map_with<T, I>(
        &self,
        task: T,
        inputs: I,
        options: Options,
    ) -> Result<Vec<T::Output>, Error>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        let _ = task;
        match options.journal.clone() {
            None => {
                let stream = self.unordered(inputs.into_iter(), &options, None);
                collect_in_order::<T, _>(stream, Vec::new(), false)
            }
            Some(path) => {
                let inputs = inputs.into_iter();
                match inputs.size_hint() {
                    (low, Some(high)) if low == high => {
                        self.map_journaled::<T, _>(inputs, low, &options, &path)
                    }
                    _ => {
                        let inputs: Vec<T::Args> = inputs.collect();
                        let count = inputs.len();
                        self.map_journaled::<T, _>(inputs.into_iter(), count, &options, &path)
                    }
                }
            }
        }
    }

    /// `map_with` with a journal at `path`: reads back what it holds, runs the rest.
    fn map_journaled<T, I>(
        &self,
        inputs: I,
        count: usize,
        options: &Options,
        path: &Path,
    ) -> Result<Vec<T::Output>, Error>
    where
        T: Task,
        I: Iterator<Item = T::Args>,
    {
        let (journal, replayed) = Journal::open(path, T::NAME, count as u64)?;
        let mut values: Vec<Option<T::Output>> = Vec::new();
        values.resize_with(count, || None);
        let mut done = vec![false; count];
        for (index, bytes) in replayed {
            let value = codec::decode::<T::Output>(&bytes).map_err(|e| Error::Journal {
                path: path.to_owned(),
                message: format!(
                    "the result of input {index} does not decode as the output of `{}` ({e}); \
                     was the journal written by another version of the task? give this run \
                     another journal path, or delete the file to start over",
                    T::NAME
                ),
            })?;
            // Indices were checked against `count` when the journal was read.
            values[index as usize] = Some(value);
            done[index as usize] = true;
        }
        let stream = self.unordered(inputs, options, Some(Skip::new(done)));
        self.engine().set_journal(stream.job, journal);
        collect_in_order::<T, _>(stream, values, true)
    }

    /// Runs `task` on every input and yields `(index, outcome)` pairs as tasks finish, in no
    /// particular order. Every input yields exactly one pair; a failed task yields its
    /// [`TaskError`] and the others go on.
    ///
    /// Dropping the iterator early sends no further inputs; results of tasks still running
    /// are discarded when they arrive.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use pool_runtime::prelude::*;
    ///
    /// #[pool_task]
    /// fn simulate(seed: u64) -> Result<f64, String> {
    ///     if seed % 100 == 99 { Err(format!("seed {seed} diverged")) } else { Ok(seed as f64) }
    /// }
    ///
    /// #[pool_main]
    /// fn main(pool: &mut Pool) -> Result<(), Error> {
    ///     let mut best = f64::MIN;
    ///     for (index, outcome) in pool.map_unordered(simulate, 0..1000) {
    ///         match outcome {
    ///             Ok(value) => best = best.max(value),
    ///             Err(e) => eprintln!("input {index}: {}", e.message),
    ///         }
    ///     }
    ///     println!("best {best}");
    ///     Ok(())
    /// }
    /// ```
    ///
    /// Every way to call a task, in one program: `examples/many_tasks.rs`.
    pub fn map_unordered<T, I>(&self, task: T, inputs: I) -> MapUnordered<'_, T, I::IntoIter>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        self.map_unordered_with(task, inputs, Options::new())
    }

    /// [`Pool::map_unordered`] with explicit [`Options`].
    pub fn map_unordered_with<T, I>(
        &self,
        task: T,
        inputs: I,
        options: Options,
    ) -> MapUnordered<'_, T, I::IntoIter>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        let _ = task;
        assert!(
            options.journal.is_none(),
            "pool: Options::journal is supported by map_with, not map_unordered_with"
        );
        self.unordered(inputs.into_iter(), &options, None)
    }

    fn unordered<T, I>(
        &self,
        inputs: I,
        options: &Options,
        skip: Option<Skip>,
    ) -> MapUnordered<'_, T, I>
    where
        T: Task,
        I: Iterator<Item = T::Args>,
    {
        let total = match inputs.size_hint() {
            (low, Some(high)) if low == high => {
                Some((low as u64).saturating_sub(skip.as_ref().map_or(0, |s| s.ahead)))
            }
            _ => None,
        };
        let mut engine = self.engine();
        let job = engine.open_job(T::NAME, T::ID);
        let report = options.stats.then(|| engine.stats());
        drop(engine);
        let mut source = Inputs::new(inputs);
        source.skip = skip;
        MapUnordered {
            pool: self,
            job,
            source,
            pace: options.pace(),
            done: false,
            unpolled: 0,
            journal_error: None,
            progress: Progress::start(T::NAME, total, options.progress),
            report,
            task: PhantomData,
        }
    }

    /// Sends one task to the next free worker and returns a handle to wait for its result.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use pool_runtime::prelude::*;
    ///
    /// #[pool_task]
    /// fn add(a: u64, b: u64) -> u64 {
    ///     a + b
    /// }
    ///
    /// #[pool_main]
    /// fn main(pool: &mut Pool) -> Result<(), Error> {
    ///     let first = pool.submit(add, (1, 2)); // both run at once
    ///     let second = pool.submit(add, (3, 4));
    ///     assert_eq!(first.wait()? + second.wait()?, 10);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// Every way to call a task, in one program: `examples/many_tasks.rs`.
    pub fn submit<T: Task>(&self, task: T, args: T::Args) -> Handle<'_, T> {
        let _ = task;
        let mut engine = self.engine();
        let job = engine.open_job(T::NAME, T::ID);
        engine.submit(job, &mut Inputs::new(std::iter::once(args)));
        engine.dispatch(None, Pace::default());
        Handle {
            pool: self,
            job,
            waited: false,
            task: PhantomData,
        }
    }
}

/// The engine for one step of a pool call. While it is held, SIGINT/SIGTERM only mark the
/// master as interrupted; if that happened, dropping it ends the job (see [`crate::signals`]).
struct EngineRef<'p> {
    engine: RefMut<'p, Engine>,
    _in_pool: InPool,
}

impl Deref for EngineRef<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl DerefMut for EngineRef<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }
}

impl Drop for EngineRef<'_> {
    fn drop(&mut self) {
        if signals::pending().is_some() {
            self.engine.interrupted();
        }
    }
}

/// Reads a `map`'s stream into input order on top of `values` (results read back from a
/// journal), fail-fast: after the first failure no further inputs are sent.
fn collect_in_order<T, I>(
    mut stream: MapUnordered<'_, T, I>,
    mut values: Vec<Option<T::Output>>,
    journaled: bool,
) -> Result<Vec<T::Output>, Error>
where
    T: Task,
    I: Iterator<Item = T::Args>,
{
    let mut first_error: Option<TaskError> = None;
    while let Some((index, outcome)) = stream.next() {
        match outcome {
            Ok(value) => {
                if values.len() <= index {
                    values.resize_with(index + 1, || None);
                }
                values[index] = Some(value);
            }
            Err(e) => {
                stream.stop_sending();
                if first_error.as_ref().is_none_or(|f| e.index < f.index) {
                    first_error = Some(e);
                }
            }
        }
        if journaled && stream.pool.engine().journal_failed(stream.job) {
            stream.stop_sending();
        }
    }
    if let Some(e) = stream.journal_error.take() {
        return Err(e);
    }
    if let Some(e) = first_error {
        return Err(e.into());
    }
    Ok(values
        .into_iter()
        .map(|v| v.expect("pool: every index has a result"))
        .collect())
}

/// Inputs of one job, encoded on demand.
struct Inputs<I> {
    iter: Option<I>,
    next: u64,
    /// Inputs not to run (their results came from a journal).
    skip: Option<Skip>,
}

/// Which inputs a journaled `map` skips, and how many of them lie ahead.
struct Skip {
    done: Vec<bool>,
    ahead: u64,
}

impl Skip {
    fn new(done: Vec<bool>) -> Skip {
        let ahead = done.iter().filter(|&&d| d).count() as u64;
        Skip { done, ahead }
    }

    fn is_done(&self, index: u64) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.done.get(i))
            .is_some_and(|&d| d)
    }
}

impl<I> Inputs<I> {
    fn new(iter: I) -> Self {
        Inputs {
            iter: Some(iter),
            next: 0,
            skip: None,
        }
    }

    /// Sends no further inputs.
    fn stop(&mut self) {
        self.iter = None;
    }
}

impl<I> Source for Inputs<I>
where
    I: Iterator,
    I::Item: Serialize,
{
    fn next_index(&self) -> u64 {
        self.next
    }

    fn exhausted(&self) -> bool {
        self.iter.is_none()
    }

    fn remaining_hint(&self) -> Option<u64> {
        let (low, _) = self.iter.as_ref()?.size_hint();
        let low = (low as u64).saturating_sub(self.skip.as_ref().map_or(0, |s| s.ahead));
        (low > 0).then_some(low)
    }

    fn skip_done(&mut self) {
        let Some(skip) = self.skip.as_mut() else {
            return;
        };
        while skip.is_done(self.next) {
            if self.iter.as_mut().and_then(Iterator::next).is_none() {
                self.iter = None;
                return;
            }
            self.next += 1;
            skip.ahead -= 1;
        }
    }

    fn fill(&mut self, frame: &mut Vec<u8>, max: usize, max_bytes: usize) -> Fill {
        let mut fill = Fill::default();
        while (fill.count as usize) < max && frame.len() < max_bytes {
            // A chunk holds consecutive inputs: it ends before one that is done.
            if self.skip.as_ref().is_some_and(|s| s.is_done(self.next)) {
                break;
            }
            let Some(item) = self.iter.as_mut().and_then(Iterator::next) else {
                self.iter = None;
                break;
            };
            let index = self.next;
            self.next += 1;
            if let Err(e) = protocol::push_item(frame, |b| codec::encode_into(&item, b)) {
                fill.failed = Some((index, format!("cannot encode the arguments: {e}")));
                break;
            }
            fill.count += 1;
        }
        fill
    }
}

fn decode_outcome<O: serde::de::DeserializeOwned>(
    origin: Origin<'_>,
    raw: Raw<'_>,
) -> (usize, Result<O, TaskError>) {
    let index = usize::try_from(origin.index).unwrap_or(usize::MAX);
    let error = |kind, message: String| {
        let e = TaskError {
            index,
            task: origin.task,
            rank: origin.rank,
            host: origin.host.to_owned(),
            kind,
            message,
        };
        failed(&e);
        e
    };
    let outcome = match raw {
        Raw::Value(bytes) => codec::decode::<O>(bytes).map_err(|e| {
            error(
                TaskErrorKind::BadOutput,
                format!("cannot decode the result: {e}"),
            )
        }),
        Raw::Error(kind, message) => Err(error(kind, message.to_owned())),
    };
    (index, outcome)
}

/// Counts a failed task for the progress display and emits its `tracing` event; out of line,
/// so that decoding stays small.
#[cold]
#[inline(never)]
fn failed(e: &TaskError) {
    crate::progress::count_failure();
    tracing::warn!(
        task = e.task,
        index = e.index,
        rank = e.rank,
        host = %e.host,
        kind = ?e.kind,
        error = %e.message,
        "pool: task failed"
    );
}

/// The iterator returned by [`Pool::map_unordered`]: `(index, Ok(value) or Err(TaskError))`
/// pairs as tasks finish (see there for an example).
pub struct MapUnordered<'p, T: Task, I> {
    pool: &'p Pool,
    job: u32,
    source: Inputs<I>,
    pace: Pace,
    done: bool,
    /// Items handed out since the master last looked for new frames.
    unpolled: u32,
    /// Why the job's journal failed, once the job is over.
    journal_error: Option<Error>,
    progress: Progress,
    /// With [`Options::stats`]: the pool's statistics when the call began.
    report: Option<Stats>,
    task: PhantomData<T>,
}

/// Prints the statistics of a call that began at `before`.
fn report_call(task: &str, before: &Stats, now: &Stats) {
    eprintln!(
        "pool: statistics of this call of `{task}`\n{}",
        now.since(before)
    );
}

/// How many arrived results [`MapUnordered`] hands out between two looks at the transport.
const POLL_EVERY: u32 = 64;

impl<T: Task, I> MapUnordered<'_, T, I> {
    /// Sends no further inputs, not even those already cut into a chunk.
    fn stop_sending(&mut self) {
        self.source.stop();
        self.pool.engine().unstage(self.job);
    }
}

impl<T: Task, I> fmt::Debug for MapUnordered<'_, T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapUnordered")
            .field("task", &T::NAME)
            .field("sent", &self.source.next)
            .finish_non_exhaustive()
    }
}

impl<T, I> Iterator for MapUnordered<'_, T, I>
where
    T: Task,
    I: Iterator<Item = T::Args>,
{
    type Item = (usize, Result<T::Output, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut engine = self.pool.engine();
        // Results already here are handed out without asking MPI each time; every
        // POLL_EVERY items (or when none is here) the master takes in new frames and refills
        // the workers.
        if self.unpolled < POLL_EVERY {
            if let Some(item) = engine.next_outcome(self.job, decode_outcome::<T::Output>) {
                // Counted for the progress display at the next poll.
                self.unpolled += 1;
                return Some(item);
            }
        }
        self.progress.done(self.unpolled);
        self.unpolled = 0;
        self.progress.tick();
        engine.receive_available();
        loop {
            engine.dispatch(Some((self.job, &mut self.source)), self.pace);
            if let Some(item) = engine.next_outcome(self.job, decode_outcome::<T::Output>) {
                self.progress.done(1);
                return Some(item);
            }
            if engine.outstanding(self.job) == 0 && self.source.exhausted() {
                self.done = true;
                self.journal_error = engine.finish_journal(self.job).err();
                engine.close_job(self.job);
                self.progress.finish();
                if let Some(before) = self.report.take() {
                    report_call(T::NAME, &before, &engine.stats());
                }
                return None;
            }
            engine.stage(self.job, &mut self.source, self.pace);
            // Cutting that chunk may have found an input that does not encode: hand it out
            // now rather than after the next result.
            if let Some(item) = engine.next_outcome(self.job, decode_outcome::<T::Output>) {
                return Some(item);
            }
            engine.receive_one();
        }
    }
}

impl<T: Task, I> Drop for MapUnordered<'_, T, I> {
    fn drop(&mut self) {
        if !self.done {
            self.progress.done(self.unpolled);
            self.progress.finish();
            if let Ok(mut engine) = self.pool.engine.try_borrow_mut() {
                engine.close_job(self.job);
                if let Some(before) = self.report.take() {
                    report_call(T::NAME, &before, &engine.stats());
                }
            }
        }
    }
}

/// A task sent with [`Pool::submit`] (see there for an example); [`Handle::wait`] returns its
/// result.
///
/// Dropping a handle without waiting discards the result.
#[must_use = "a task's result is lost unless you wait for it"]
pub struct Handle<'p, T: Task> {
    pool: &'p Pool,
    job: u32,
    waited: bool,
    task: PhantomData<T>,
}

impl<T: Task> fmt::Debug for Handle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("task", &T::NAME)
            .finish_non_exhaustive()
    }
}

impl<T: Task> Handle<'_, T> {
    /// Waits for the task to finish and returns its value.
    ///
    /// # Errors
    ///
    /// The task's failure: it returned `Err`, panicked, or its data could not cross.
    pub fn wait(mut self) -> Result<T::Output, TaskError> {
        self.waited = true;
        let mut engine = self.pool.engine();
        engine.receive_available();
        loop {
            engine.dispatch(None, Pace::default());
            if let Some((_, outcome)) = engine.next_outcome(self.job, decode_outcome::<T::Output>) {
                engine.close_job(self.job);
                return outcome;
            }
            engine.receive_one();
        }
    }
}

impl<T: Task> Drop for Handle<'_, T> {
    fn drop(&mut self) {
        if !self.waited {
            if let Ok(mut engine) = self.pool.engine.try_borrow_mut() {
                engine.close_job(self.job);
            }
        }
    }
}
