//! [`MapIter`]: the outcomes of one job in input order, as soon as each is next in line.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;

use super::Pool;
use super::inputs::Input;
use super::inputs::InputIter;
use super::options::Options;
use super::stream::decode_outcome;
use crate::error::TaskError;
use crate::master::{ChunkPlan, JobInputs};
use crate::progress::Progress;
use crate::task::Task;

/// The reorder buffer of a [`MapIter`] holds at most about this many items (or four per
/// chunk slot of the workers, if that is more): beyond it, no input is sent until the item
/// next in line has come back and been read.
pub(crate) const REORDER_ITEMS: u64 = 1 << 16;

/// The iterator returned by [`Pool::map_iter`]: `Ok(value)` or `Err(TaskError)` for each
/// input, in input order, each as soon as it and every one before it have come back.
///
/// Results that arrive ahead of their turn wait in a reorder buffer of bounded size: when one
/// early item is slow and the buffer fills up behind it, the pool stops sending inputs
/// until that item is back (the workers then wait), instead of holding ever more results.
/// Dropping the iterator sends no further inputs, and results of tasks still running are
/// dropped when they arrive, as for [`MapUnordered`](crate::MapUnordered).
pub struct MapIter<'p, T: Task, I> {
    pool: &'p Pool,
    job: u32,
    source: InputIter<I, T::Args>,
    plan: ChunkPlan,
    /// Index of the next item to yield.
    next: u64,
    /// Outcomes of items `next..`, each once it has arrived.
    buffer: VecDeque<Option<Result<T::Output, TaskError>>>,
    /// How many of them have arrived.
    arrived: usize,
    /// Sent and not yet yielded items, at most (unless one chunk overshoots it).
    capacity: u64,
    done: bool,
    progress: Progress,
    task: PhantomData<T>,
}

impl Pool {
    /// Runs `task` on every input and yields each outcome in input order, lazily: the next
    /// one as soon as it has come back (Python's `imap`). Unlike [`Pool::map`] it does not
    /// wait for the whole input, and a failure does not stop it: every input yields one
    /// `Result`.
    ///
    /// Memory stays bounded however long the input: inputs are read as the workers need
    /// them, and results that arrive before their turn wait in a bounded reorder buffer
    /// (about 65,536 items); when one slow early item fills it, no further input is sent
    /// until that item is back.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_runtime::prelude::*;
    ///
    /// #[pool_task]
    /// fn double(x: u64) -> u64 {
    ///     2 * x
    /// }
    ///
    /// # fn main() {
    /// pool_runtime::local(2, |pool: &mut Pool| {
    ///     for (i, out) in pool.map_iter(double, 0..1000).enumerate() {
    ///         assert_eq!(out.unwrap(), 2 * i as u64); // in input order
    ///     }
    /// });
    /// # }
    /// ```
    ///
    /// See `examples/ordered_stream.rs`.
    pub fn map_iter<T, I>(&self, task: T, inputs: I) -> MapIter<'_, T, I::IntoIter>
    where
        T: Task,
        I: IntoIterator<Item: Input<T::Args>>,
    {
        self.map_iter_with(task, inputs, Options::new())
    }

    /// [`Pool::map_iter`] with explicit [`Options`] (`chunksize`, `prefetch`, `progress`;
    /// a journal or a deadline is refused with a panic).
    pub fn map_iter_with<T, I>(
        &self,
        task: T,
        inputs: I,
        options: Options,
    ) -> MapIter<'_, T, I::IntoIter>
    where
        T: Task,
        I: IntoIterator<Item: Input<T::Args>>,
    {
        let _ = task;
        assert!(
            options.journal.is_none(),
            "pool: Options::journal is supported by map_with, not map_iter_with"
        );
        assert!(
            options.deadline.is_none(),
            "pool: Options::deadline is supported by map_with and map_unordered_with, not \
             map_iter_with"
        );
        let inputs = inputs.into_iter();
        let total = match inputs.size_hint() {
            (low, Some(high)) if low == high => Some(low as u64),
            _ => None,
        };
        let plan = options.plan();
        let mut master = self.master();
        let job = master.open_job(T::NAME, T::ID);
        master.set_retries(job, options.retries);
        master.set_timeout(job, options.timeout);
        let slots = (master.workers() * plan.depth()) as u64;
        drop(master);
        MapIter {
            pool: self,
            job,
            source: InputIter::new(inputs),
            plan,
            next: 0,
            buffer: VecDeque::new(),
            arrived: 0,
            capacity: REORDER_ITEMS.max(4 * slots),
            done: false,
            progress: Progress::start(T::NAME, total, options.progress),
            task: PhantomData,
        }
    }
}

impl<T: Task, I> MapIter<'_, T, I> {
    /// How many results wait in the reorder buffer for an earlier one (at most about
    /// 65,536 plus one chunk).
    pub fn buffered(&self) -> usize {
        self.arrived
    }

    /// Puts an outcome that arrived into its place in the buffer.
    fn place(&mut self, index: usize, outcome: Result<T::Output, TaskError>) {
        let Some(at) = (index as u64).checked_sub(self.next) else {
            return;
        };
        let at = at as usize;
        if self.buffer.len() <= at {
            self.buffer.resize_with(at + 1, || None);
        }
        if self.buffer[at].replace(outcome).is_none() {
            self.arrived += 1;
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.progress.finish();
        if let Ok(mut master) = self.pool.master.try_borrow_mut() {
            master.close_job(self.job);
        }
    }
}

impl<T: Task, I> fmt::Debug for MapIter<'_, T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapIter")
            .field("task", &T::NAME)
            .field("next", &self.next)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl<T, I> Iterator for MapIter<'_, T, I>
where
    T: Task,
    I: Iterator<Item: Input<T::Args>>,
{
    type Item = Result<T::Output, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some(Some(_)) = self.buffer.front() {
                let outcome = self.buffer.pop_front().flatten();
                self.arrived -= 1;
                self.next += 1;
                self.progress.done(1);
                return outcome;
            }
            if self.source.exhausted() && self.next == self.source.next {
                self.finish();
                return None;
            }
            let mut master = self.pool.master();
            master.receive_available();
            let mut arrived = Vec::new();
            let take = |master: &mut crate::master::Master, arrived: &mut Vec<_>| {
                while let Some(item) = master.next_outcome(self.job, decode_outcome::<T::Output>) {
                    arrived.push(item);
                }
            };
            take(&mut master, &mut arrived);
            if arrived.is_empty() {
                self.progress.tick();
                // Room in the reorder buffer: send inputs; none: only chunks already cut.
                if self.source.next - self.next < self.capacity {
                    master.dispatch(Some((self.job, &mut self.source)), self.plan);
                } else {
                    master.dispatch(None, self.plan);
                }
                take(&mut master, &mut arrived);
                if arrived.is_empty() && master.outstanding(self.job) > 0 {
                    master.receive_one();
                    take(&mut master, &mut arrived);
                }
            }
            drop(master);
            for (index, outcome) in arrived {
                self.place(index, outcome);
            }
        }
    }
}

impl<T: Task, I> Drop for MapIter<'_, T, I> {
    fn drop(&mut self) {
        if !self.done {
            self.finish();
        }
    }
}
