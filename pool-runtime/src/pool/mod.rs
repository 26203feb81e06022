//! The master's API: [`Pool`] with `map`, `map_unordered` and `submit`.

mod collect;
mod fold;
mod handle;
mod inputs;
mod iter;
mod options;
mod resume;
mod share;
mod stream;

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use crate::error::Error;
use crate::journal::Journal;
use crate::master::{ChunkPlan, Master};
use crate::progress::Progress;
use crate::signals::{self, InPool};
use crate::stats::Stats;
use crate::task::Task;

pub use collect::Outcomes;
pub use handle::Handle;
pub use inputs::Input;
pub use iter::MapIter;
pub use options::Options;
pub use stream::MapUnordered;

use collect::collect_in_order;
use inputs::InputIter;
use resume::Resume;

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
        let master = self.master_for_reading();
        let mut master = MasterRef {
            master,
            _in_pool: in_pool,
        };
        // Shared values dropped since the last step are freed on the workers (see `share`).
        master.free_dropped();
        master
    }

    /// The master for reading outcomes that have already arrived, and nothing else: no
    /// message is sent or awaited while it is held, so a signal is noticed at the next
    /// [`Pool::master`].
    fn master_for_reading(&self) -> RefMut<'_, Master> {
        self.master.try_borrow_mut().unwrap_or_else(|_| {
            panic!(
                "pool: the pool was used from inside one of its own calls (an input iterator \
                 that waits on the pool, or a Deserialize impl); collect such inputs into a \
                 Vec first"
            )
        })
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
    /// When a deadline (`POOL_DEADLINE`, the end time of the Slurm job, or
    /// [`Options::deadline`]) stops the call before every input was sent: [`Error::Deadline`],
    /// once the tasks sent have finished (a task's failure is returned instead, if one failed).
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
        let inputs = inputs.into_iter();
        // The stream is this call's own and is read to its end or dropped here, never
        // leaked, and its inputs are borrowed for the whole call: large borrowed inputs
        // may be sent from the caller's memory (`MapUnordered::lend`). Not with a timeout:
        // a send to a worker stuck in an item might never complete, so each input is copied.
        fn lend<'p, T: Task, J>(
            mut stream: MapUnordered<'p, T, J>,
            options: &Options,
        ) -> MapUnordered<'p, T, J> {
            if options.timeout.is_none() {
                // SAFETY: as said above.
                unsafe { stream.lend() };
            }
            stream
        }
        match options.journal.clone() {
            None => {
                let expected = inputs.size_hint().0;
                let stream = self.unordered(inputs, &options, None);
                collect_in_order::<T, _>(lend(stream, &options), expected, false)
            }
            Some(path) => match inputs.size_hint() {
                (low, Some(high)) if low == high => {
                    let stream = self.journaled::<T, _>(inputs, low, &options, &path)?;
                    collect_in_order::<T, _>(lend(stream, &options), low, true)
                }
                _ => {
                    let inputs: Vec<I::Item> = inputs.collect();
                    let count = inputs.len();
                    let stream =
                        self.journaled::<T, _>(inputs.into_iter(), count, &options, &path)?;
                    collect_in_order::<T, _>(lend(stream, &options), count, true)
                }
            },
        }
    }

    /// A stream over `count` inputs with a journal at `path`: the outcomes it holds for
    /// inputs that did not change are handed out as the inputs are reached, the rest run.
    fn journaled<T, I>(
        &self,
        inputs: I,
        count: usize,
        options: &Options,
        path: &Path,
    ) -> Result<MapUnordered<'_, T, I>, Error>
    where
        T: Task,
        I: Iterator<Item: Input<T::Args>>,
    {
        let fingerprint = crate::registry::Registry::global().fingerprint();
        let (journal, replayed) = Journal::open(path, T::NAME, fingerprint, count as u64)?;
        let resume = Resume::new(replayed, !options.keep_failures, path.to_owned());
        let stream = self.unordered(inputs, options, Some(resume));
        self.master().set_journal(stream.job, journal);
        Ok(stream)
    }

    /// Runs `task` on every input and yields `(index, outcome)` pairs as tasks finish, in no
    /// particular order. Every input yields exactly one pair; a failed task yields its
    /// [`TaskError`](crate::TaskError) and the others go on. When a deadline stops the call
    /// (see [`Options::deadline`]), the stream yields, after the tasks sent, one error of kind
    /// [`TaskErrorKind::NotStarted`](crate::TaskErrorKind::NotStarted) for the first input not
    /// started, whose message says how many were not, and ends.
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
    pub fn map_unordered<T, I>(&self, _task: T, inputs: I) -> MapUnordered<'_, T, I::IntoIter>
    where
        T: Task,
        I: IntoIterator<Item: Input<T::Args>>,
    {
        self.unordered(inputs.into_iter(), &Options::new(), None)
    }

    /// [`Pool::map_unordered`] with explicit [`Options`].
    ///
    /// With [`Options::journal`], every outcome is recorded as it arrives, and a rerun with
    /// the same journal hands out the recorded outcomes of the inputs that did not change
    /// (first, as the inputs are reached) and runs only the rest. A journal needs to know how
    /// many inputs there are: the input iterator must report its exact length (a range, a
    /// `Vec`, an exact-size adapter); collect it into a `Vec` first otherwise.
    ///
    /// # Errors
    ///
    /// Only with a journal: [`Error::Journal`] when it cannot be opened, was written for
    /// another task or number of inputs, or the input's length is not known.
    pub fn map_unordered_with<T, I>(
        &self,
        task: T,
        inputs: I,
        options: Options,
    ) -> Result<MapUnordered<'_, T, I::IntoIter>, Error>
    where
        T: Task,
        I: IntoIterator<Item: Input<T::Args>>,
    {
        let _ = task;
        let inputs = inputs.into_iter();
        match options.journal.clone() {
            None => Ok(self.unordered(inputs, &options, None)),
            Some(path) => match inputs.size_hint() {
                (low, Some(high)) if low == high => {
                    self.journaled::<T, _>(inputs, low, &options, &path)
                }
                _ => Err(Error::Journal {
                    path,
                    message: "a journal needs to know how many inputs there are, and this \
                              input iterator does not say (its size_hint is not exact): collect \
                              the inputs into a Vec first"
                        .to_owned(),
                }),
            },
        }
    }

    fn unordered<T, I>(
        &self,
        inputs: I,
        options: &Options,
        resume: Option<Resume>,
    ) -> MapUnordered<'_, T, I>
    where
        T: Task,
        I: Iterator<Item: Input<T::Args>>,
    {
        let total = match inputs.size_hint() {
            (low, Some(high)) if low == high => Some(low as u64),
            _ => None,
        };
        let mut master = self.master();
        let job = master.open_job(T::NAME, T::ID);
        master.set_retries(job, options.retries);
        master.set_timeout(job, options.timeout);
        master.set_deadline(job, options.deadline);
        let report = options.stats.then(|| master.stats());
        drop(master);
        let mut source = InputIter::new(inputs);
        source.resume = resume;
        MapUnordered {
            pool: self,
            job,
            source,
            plan: options.plan(),
            done: false,
            unpolled: 0,
            journal_error: None,
            deadline_error: None,
            progress: Progress::start(T::NAME, total, options.progress),
            report,
            lent: false,
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
