//! The master's API: [`Pool`] with `map`, `map_unordered` and `submit`.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;

use crate::codec;
use crate::engine::{Engine, Fill, Origin, Pace, Raw, Source};
use crate::error::{Error, TaskError, TaskErrorKind};
use crate::protocol;
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
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    chunksize: Option<usize>,
    prefetch: Option<usize>,
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

    fn pace(self) -> Pace {
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
    fn engine(&self) -> std::cell::RefMut<'_, Engine> {
        self.engine.try_borrow_mut().unwrap_or_else(|_| {
            panic!(
                "pool: the pool was used from inside one of its own calls (an input iterator \
                 that waits on the pool, or a Deserialize impl); collect such inputs into a \
                 Vec first"
            )
        })
    }

    pub(crate) fn into_engine(self) -> Engine {
        self.engine.into_inner()
    }

    /// The number of workers: MPI ranks minus one, or worker threads in a single process.
    pub fn workers(&self) -> usize {
        self.engine.borrow().workers()
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
        let mut stream = self.map_unordered_with(task, inputs, options);
        let mut values: Vec<Option<T::Output>> = Vec::new();
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
                    stream.source.stop();
                    if first_error.as_ref().is_none_or(|f| e.index < f.index) {
                        first_error = Some(e);
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        Ok(values
            .into_iter()
            .map(|v| v.expect("pool: every index has a result"))
            .collect())
    }

    /// Runs `task` on every input and yields `(index, outcome)` pairs as tasks finish, in no
    /// particular order. Every input yields exactly one pair; a failed task yields its
    /// [`TaskError`] and the others go on.
    ///
    /// Dropping the iterator early sends no further inputs; results of tasks still running
    /// are discarded when they arrive.
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
        let job = self.engine().open_job(T::NAME, T::ID);
        MapUnordered {
            pool: self,
            job,
            source: Inputs::new(inputs.into_iter()),
            pace: options.pace(),
            done: false,
            unpolled: 0,
            task: PhantomData,
        }
    }

    /// Sends one task to the next free worker and returns a handle to wait for its result.
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

/// Inputs of one job, encoded on demand.
struct Inputs<I> {
    iter: Option<I>,
    next: u64,
}

impl<I> Inputs<I> {
    fn new(iter: I) -> Self {
        Inputs {
            iter: Some(iter),
            next: 0,
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
        (low > 0).then_some(low as u64)
    }

    fn fill(&mut self, frame: &mut Vec<u8>, max: usize, max_bytes: usize) -> Fill {
        let mut fill = Fill::default();
        while (fill.count as usize) < max && frame.len() < max_bytes {
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
    let error = |kind, message: String| TaskError {
        index,
        task: origin.task,
        rank: origin.rank,
        host: origin.host.to_owned(),
        kind,
        message,
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

/// The iterator returned by [`Pool::map_unordered`]: `(index, Ok(value) or Err(TaskError))`
/// pairs as tasks finish.
pub struct MapUnordered<'p, T: Task, I> {
    pool: &'p Pool,
    job: u32,
    source: Inputs<I>,
    pace: Pace,
    done: bool,
    /// Items handed out since the master last looked for new frames.
    unpolled: u32,
    task: PhantomData<T>,
}

/// How many arrived results [`MapUnordered`] hands out between two looks at the transport.
const POLL_EVERY: u32 = 64;

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
                self.unpolled += 1;
                return Some(item);
            }
        }
        self.unpolled = 0;
        engine.receive_available();
        loop {
            engine.dispatch(Some((self.job, &mut self.source)), self.pace);
            if let Some(item) = engine.next_outcome(self.job, decode_outcome::<T::Output>) {
                return Some(item);
            }
            if engine.outstanding(self.job) == 0 && self.source.exhausted() {
                self.done = true;
                engine.close_job(self.job);
                return None;
            }
            engine.receive_one();
        }
    }
}

impl<T: Task, I> Drop for MapUnordered<'_, T, I> {
    fn drop(&mut self) {
        if !self.done {
            if let Ok(mut engine) = self.pool.engine.try_borrow_mut() {
                engine.close_job(self.job);
            }
        }
    }
}

/// A task sent with [`Pool::submit`]; [`Handle::wait`] returns its result.
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
