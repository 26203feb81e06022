//! [`Pool::fold`]: results combined on the workers, partial values combined on the master.

use serde::de::IgnoredAny;

use super::Pool;
use super::inputs::InputIter;
use super::options::Options;
use super::stream::decode_outcome;
use crate::codec;
use crate::error::{Error, TaskError, TaskErrorKind};
use crate::master::FoldError;
use crate::master::JobInputs;
use crate::progress::Progress;
use crate::registry::Registry;
use crate::task::Task;

/// Chunks in flight per worker in a fold, unless [`Options::prefetch`] says: a worker
/// acknowledges the chunks it finished in one message while more wait (see the worker's
/// `fold`), so deeper queues mean fewer messages.
const FOLD_PREFETCH: usize = 8;

impl Pool {
    /// Runs `task` on every input and combines the results with `combine`, on the workers:
    /// each worker folds its own results into one running value, and sends that one value
    /// at the end; the master combines the workers' values. `None` for an empty input.
    ///
    /// `combine` is a task too (`#[pool_task] fn add(a: f64, b: f64) -> f64`), so it runs
    /// wherever the results are. The order in which results are combined is unspecified:
    /// `combine` must be associative and commutative (a sum, a maximum, a histogram merge;
    /// floating-point sums may differ in the last bits from run to run).
    ///
    /// No result travels per item: a worker answers several chunks at a time with a short
    /// acknowledgement, and sends one partial value per call, so the master's memory stays
    /// O(workers) however many inputs there are, and it receives far fewer messages than it
    /// sends chunks ([`Stats::replies`](crate::Stats::replies) against
    /// [`Stats::chunks`](crate::Stats::chunks)).
    ///
    /// # Errors
    ///
    /// As [`Pool::map`]: when a task (or `combine`) fails, no further inputs are sent, the
    /// chunks already out finish, and the failure with the lowest index is returned as
    /// [`Error::Task`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pool_runtime::prelude::*;
    ///
    /// #[pool_task]
    /// fn energy(sample: u64) -> f64 {
    ///     (sample as f64).sqrt()
    /// }
    ///
    /// #[pool_task]
    /// fn add(a: f64, b: f64) -> f64 {
    ///     a + b
    /// }
    ///
    /// # fn main() -> Result<(), Error> {
    /// let total = pool_runtime::local(2, |pool: &mut Pool| pool.fold(energy, 0..10_000, add))?;
    /// let expected: f64 = (0..10_000).map(|s| (s as f64).sqrt()).sum();
    /// assert!((total.unwrap() - expected).abs() < 1e-6);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// See `examples/fold_energy.rs`.
    pub fn fold<F, C, I>(&self, task: F, inputs: I, combine: C) -> Result<Option<F::Output>, Error>
    where
        F: Task,
        C: Task<Args = (F::Output, F::Output), Output = F::Output>,
        I: IntoIterator<Item = F::Args>,
    {
        self.fold_with(task, inputs, combine, Options::new())
    }

    /// [`Pool::fold`] with explicit [`Options`] (`chunksize`, `prefetch` (default 8 for a
    /// fold), `progress`, `stats`; a journal and backup copies do not apply).
    ///
    /// # Errors
    ///
    /// As [`Pool::fold`].
    pub fn fold_with<F, C, I>(
        &self,
        task: F,
        inputs: I,
        combine: C,
        options: Options,
    ) -> Result<Option<F::Output>, Error>
    where
        F: Task,
        C: Task<Args = (F::Output, F::Output), Output = F::Output>,
        I: IntoIterator<Item = F::Args>,
    {
        let _ = (task, combine);
        assert!(
            options.deadline.is_none(),
            "pool: Options::deadline is supported by map_with and map_unordered_with, not \
             fold_with"
        );
        let mut plan = options.plan();
        plan.speculative = false;
        if options.prefetch.is_none() {
            plan.prefetch = FOLD_PREFETCH;
        }
        let inputs = inputs.into_iter();
        let total = match inputs.size_hint() {
            (low, Some(high)) if low == high => Some(low as u64),
            _ => None,
        };
        let mut progress = Progress::start(F::NAME, total, options.progress);
        let report = options.stats.then(|| self.stats());
        // Declared before the master is borrowed, so that it is dropped after: an input
        // iterator that panics leaves the workers told to forget the fold.
        let mut guard = Abandon {
            pool: self,
            job: None,
        };
        let mut master = self.master();
        let job = master.open_fold(F::NAME, F::ID, C::ID);
        guard.job = Some(job);
        let mut source = InputIter::new(inputs);
        // Inputs that failed to encode on the master (they never reached a worker).
        let mut early: Option<TaskError> = None;
        let mut reported = 0u64;
        loop {
            master.receive_available();
            read_failures(&mut master, job, &mut early);
            if (early.is_some() || master.fold_failure(job).is_some()) && !source.exhausted() {
                source.stop();
                master.drop_cut_ahead(job);
            }
            master.dispatch(Some((job, &mut source)), plan);
            read_failures(&mut master, job, &mut early);
            let done = source.next - master.outstanding(job);
            progress.done(u32::try_from(done - reported).unwrap_or(u32::MAX));
            reported = done;
            progress.tick();
            if master.outstanding(job) > 0 {
                master.receive_one();
            } else if source.exhausted() {
                break;
            }
        }
        let failure = master.fold_failure(job).cloned();
        let partials = master.finish_fold(job);
        guard.job = None;
        progress.finish();
        if let Some(before) = report {
            eprintln!(
                "pool: statistics of this call of `{}`\n{}",
                F::NAME,
                master.stats().since(&before)
            );
        }
        drop(master);
        lowest(early, failure.map(task_error::<F, C>))?;
        combine_partials::<F, C>(partials)
    }
}

/// Takes in the failures of inputs that did not encode (the only outcomes a fold has).
fn read_failures(master: &mut crate::master::Master, job: u32, early: &mut Option<TaskError>) {
    while let Some((_, outcome)) = master.next_outcome(job, decode_outcome::<IgnoredAny>) {
        if let Err(e) = outcome {
            if early.as_ref().is_none_or(|f| e.index < f.index) {
                *early = Some(e);
            }
        }
    }
}

/// The failure with the lower index.
fn lowest(a: Option<TaskError>, b: Option<TaskError>) -> Result<(), Error> {
    match (a, b) {
        (Some(a), Some(b)) => Err(if b.index < a.index { b } else { a }.into()),
        (Some(e), None) | (None, Some(e)) => Err(e.into()),
        (None, None) => Ok(()),
    }
}

/// A worker's fold failure as the caller sees it.
fn task_error<F: Task, C: Task>(e: FoldError) -> TaskError {
    TaskError {
        index: usize::try_from(e.index).unwrap_or(usize::MAX),
        task: if e.in_combine { C::NAME } else { F::NAME },
        rank: e.rank,
        host: e.host,
        kind: e.kind,
        message: e.message,
        attempts: 1,
        earlier: Vec::new(),
    }
}

/// Combines the workers' partial values on the master, with `C` run from bytes as on the
/// workers, and decodes the result.
fn combine_partials<F: Task, C: Task>(partials: Vec<Vec<u8>>) -> Result<Option<F::Output>, Error> {
    let master_error = |kind, message: String| -> Error {
        TaskError {
            index: 0,
            task: C::NAME,
            rank: 0,
            host: "the master".to_owned(),
            kind,
            message: format!("combining the workers' partial values: {message}"),
            attempts: 1,
            earlier: Vec::new(),
        }
        .into()
    };
    let mut partials = partials.into_iter();
    let Some(mut value) = partials.next() else {
        return Ok(None);
    };
    let Some(entry) = Registry::global().get(C::ID) else {
        return Err(master_error(
            TaskErrorKind::Rejected,
            format!("{} is not a registered task", C::NAME),
        ));
    };
    let mut out = Vec::new();
    for partial in partials {
        value.extend_from_slice(&partial);
        out.clear();
        entry
            .invoke(&value, &mut out)
            .map_err(|f| master_error(TaskErrorKind::Failed, f.message().to_owned()))?;
        std::mem::swap(&mut value, &mut out);
    }
    codec::decode::<F::Output>(&value)
        .map(Some)
        .map_err(|e| master_error(TaskErrorKind::BadOutput, format!("cannot decode: {e}")))
}

/// Tells the workers to forget a fold whose call ended early (a panic).
struct Abandon<'p> {
    pool: &'p Pool,
    job: Option<u32>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.job {
            if let Ok(mut master) = self.pool.master.try_borrow_mut() {
                master.abandon_fold(job);
            }
        }
    }
}
