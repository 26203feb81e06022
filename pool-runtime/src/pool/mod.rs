//! The master's API: [`Pool`] with `map`, `map_unordered` and `submit`.

mod handle;
mod inputs;
mod options;
mod stream;

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use crate::codec;
use crate::error::{Error, TaskError};
use crate::journal::Journal;
use crate::master::{ChunkPlan, Master};
use crate::progress::Progress;
use crate::signals::{self, InPool};
use crate::stats::Stats;
use crate::task::Task;

pub use handle::Handle;
pub use inputs::Input;
pub use options::Options;
pub use stream::MapUnordered;

use inputs::{InputIter, Skip};

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
    master: RefCell<Master>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub(crate) fn new(master: Master) -> Pool {
        Pool {
            master: RefCell::new(master),
        }
    }

    /// The master, for one step of one call.
    ///
    /// # Panics
    ///
    /// When the pool is used from inside one of its own calls: from the input iterator of a
    /// `map` (which the pool reads while it dispatches) or from a `Deserialize` impl.
    fn master(&self) -> MasterRef<'_> {
        let in_pool = signals::enter_pool();
        let master = self.master.try_borrow_mut().unwrap_or_else(|_| {
            panic!(
                "pool: the pool was used from inside one of its own calls (an input iterator \
                 that waits on the pool, or a Deserialize impl); collect such inputs into a \
                 Vec first"
            )
        });
        MasterRef {
            master,
            _in_pool: in_pool,
        }
    }

    pub(crate) fn into_master(self) -> Master {
        self.master.into_inner()
    }

    /// The number of workers: MPI ranks minus one, or worker threads in a single process.
    pub fn workers(&self) -> usize {
        self.master.borrow().workers()
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
        self.master().stats()
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
        I: IntoIterator<Item: Input<T::Args>>,
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
        I: IntoIterator<Item: Input<T::Args>>,
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
                        let inputs: Vec<I::Item> = inputs.collect();
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
        I: Iterator<Item: Input<T::Args>>,
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
        self.master().set_journal(stream.job, journal);
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
        I: IntoIterator<Item: Input<T::Args>>,
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
        I: IntoIterator<Item: Input<T::Args>>,
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
        I: Iterator<Item: Input<T::Args>>,
    {
        let total = match inputs.size_hint() {
            (low, Some(high)) if low == high => {
                Some((low as u64).saturating_sub(skip.as_ref().map_or(0, |s| s.ahead)))
            }
            _ => None,
        };
        let mut master = self.master();
        let job = master.open_job(T::NAME, T::ID);
        let report = options.stats.then(|| master.stats());
        drop(master);
        let mut source = InputIter::new(inputs);
        source.skip = skip;
        MapUnordered {
            pool: self,
            job,
            source,
            plan: options.plan(),
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
    pub fn submit<T: Task, A: Input<T::Args>>(&self, task: T, args: A) -> Handle<'_, T> {
        let _ = task;
        let mut master = self.master();
        let job = master.open_job(T::NAME, T::ID);
        master.submit(
            job,
            &mut InputIter::<_, T::Args>::new(std::iter::once(args)),
        );
        master.dispatch(None, ChunkPlan::default());
        Handle {
            pool: self,
            job,
            waited: false,
            task: PhantomData,
        }
    }
}

/// The master for one step of a pool call. While it is held, SIGINT/SIGTERM only mark the
/// master as interrupted; if that happened, dropping it ends the job (see [`crate::signals`]).
struct MasterRef<'p> {
    master: RefMut<'p, Master>,
    _in_pool: InPool,
}

impl Deref for MasterRef<'_> {
    type Target = Master;
    fn deref(&self) -> &Master {
        &self.master
    }
}

impl DerefMut for MasterRef<'_> {
    fn deref_mut(&mut self) -> &mut Master {
        &mut self.master
    }
}

impl Drop for MasterRef<'_> {
    fn drop(&mut self) {
        if signals::pending().is_some() {
            self.master.interrupted();
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
    I: Iterator<Item: Input<T::Args>>,
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
        if journaled && stream.pool.master().journal_failed(stream.job) {
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
