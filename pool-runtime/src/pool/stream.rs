//! [`MapUnordered`]: the stream of outcomes of one job, as tasks finish.

use std::fmt;
use std::marker::PhantomData;

use super::Pool;
use super::inputs::{Input, InputIter};
use crate::codec;
use crate::error::{Error, TaskError, TaskErrorKind};
use crate::master::{ChunkPlan, JobInputs, Provenance, RawOutcome};
use crate::progress::Progress;
use crate::protocol::Status;
use crate::stats::Stats;
use crate::task::Task;

pub(super) fn decode_outcome<O: serde::de::DeserializeOwned + 'static>(
    origin: Provenance<'_>,
    raw: RawOutcome<'_>,
) -> (usize, Result<O, TaskError>) {
    let index = usize::try_from(origin.index).unwrap_or(usize::MAX);
    let outcome = match raw {
        RawOutcome::Value(bytes, part) => match codec::decode_parts::<O>(bytes, part) {
            Ok(value) => Ok(value),
            Err(e) => Err(undecodable(origin, e)),
        },
        RawOutcome::Error(kind, message) => Err(task_error(origin, kind, message.to_owned())),
    };
    (index, outcome)
}

/// The error for a result that does not decode as the task's output.
#[cold]
#[inline(never)]
pub(super) fn undecodable(origin: Provenance<'_>, e: String) -> TaskError {
    task_error(
        origin,
        TaskErrorKind::BadOutput,
        format!("cannot decode the result: {e}"),
    )
}

/// The error of a failed item, counted and reported as such.
#[cold]
#[inline(never)]
pub(super) fn task_error(
    origin: Provenance<'_>,
    kind: TaskErrorKind,
    message: String,
) -> TaskError {
    let e = TaskError {
        index: usize::try_from(origin.index).unwrap_or(usize::MAX),
        task: origin.task,
        rank: origin.rank,
        host: origin.host.to_owned(),
        kind,
        message,
        attempts: origin.earlier.len() as u32 + 1,
        earlier: origin.earlier,
    };
    failed(&e);
    e
}

/// One outcome as a [`MapUnordered`] step finds it: arrived from a worker (not decoded
/// yet), or already made on the master (held by the journal for an input that did not
/// change, or the deadline's "not started").
pub(super) enum Found<'a, O> {
    Arrived(Provenance<'a>, RawOutcome<'a>),
    Reused(usize, Result<O, TaskError>),
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

/// The iterator returned by [`Pool::map_unordered`](crate::Pool::map_unordered): `(index, Ok(value) or Err(TaskError))`
/// pairs as tasks finish (see there for an example).
pub struct MapUnordered<'p, T: Task, I> {
    pub(super) pool: &'p Pool,
    pub(super) job: u32,
    pub(super) source: InputIter<I, T::Args>,
    pub(super) plan: ChunkPlan,
    pub(super) done: bool,
    /// Items handed out since the master last looked for new frames.
    pub(super) unpolled: u32,
    /// Why the job's journal failed, once the job is over.
    pub(super) journal_error: Option<Error>,
    /// The deadline that stopped the job before every input was sent.
    pub(super) deadline_error: Option<Error>,
    pub(super) progress: Progress,
    /// With [`Options::stats`](crate::Options::stats): the pool's statistics when the call began.
    pub(super) report: Option<Stats>,
    /// Large borrowed inputs are sent from the caller's memory (see [`MapUnordered::lend`]).
    pub(super) lent: bool,
    pub(super) task: PhantomData<T>,
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
    /// Sends large borrowed inputs from the caller's memory, not copied into frames. The
    /// stream then completes every send from that memory when it ends, or when it is dropped
    /// before (it waits for the chunks in flight first).
    ///
    /// # Safety
    ///
    /// The stream must not be leaked (`mem::forget`): only its end or its `Drop` completes
    /// the sends, and the borrow of the inputs may end right after. `map` owns its stream
    /// and never leaks it; a stream handed to the user must never lend.
    pub(super) unsafe fn lend(&mut self) {
        // SAFETY: the stream completes every send from lent memory before it is gone (at
        // its end in `next`, or in `drop`), and the caller does not leak it.
        unsafe { self.source.lend() };
        self.lent = true;
    }

    /// Sends no further inputs, not even those already cut into a chunk.
    pub(super) fn stop_sending(&mut self) {
        self.source.stop();
        self.pool.master().drop_cut_ahead(self.job);
    }
}

impl<T: Task, I> MapUnordered<'_, T, I> {
    /// The next outcome a journal held for an input that did not change, if any.
    #[inline]
    fn reused_outcome(&mut self) -> Option<(usize, Result<T::Output, TaskError>)> {
        self.source.resume.as_ref()?;
        self.reused_from_journal()
    }

    /// [`MapUnordered::reused_outcome`] of a call that resumes from a journal.
    #[inline(never)]
    fn reused_from_journal(&mut self) -> Option<(usize, Result<T::Output, TaskError>)> {
        let resume = self.source.resume.as_mut()?;
        let record = resume.reused.pop_front()?;
        self.progress.done(1);
        let index = usize::try_from(record.index).unwrap_or(usize::MAX);
        let error = |kind, message| TaskError {
            index,
            task: T::NAME,
            rank: 0,
            host: "journal".to_owned(),
            kind,
            message,
            attempts: 1,
            earlier: Vec::new(),
        };
        let outcome = match Status::from_raw(record.status) {
            Some(Status::Ok) => codec::decode::<T::Output>(&record.payload).map_err(|e| {
                let message = format!(
                    "the result of input {index} does not decode as the output of `{}` ({e}); \
                     was the journal written by another version of the task? give this run \
                     another journal path, or delete the file to start over",
                    T::NAME
                );
                self.journal_error.get_or_insert(Error::Journal {
                    path: resume.path.clone(),
                    message: message.clone(),
                });
                error(TaskErrorKind::BadOutput, message)
            }),
            status => {
                let e = error(
                    status.map_or(TaskErrorKind::BadOutput, crate::master::kind_of),
                    String::from_utf8_lossy(&record.payload).into_owned(),
                );
                failed(&e);
                Err(e)
            }
        };
        Some((index, outcome))
    }

    /// Why the call's journal failed (it could not be written, or held a result that does
    /// not decode), once the stream is over; `None` without a journal or when all was well.
    /// `map_with` returns this as its error.
    pub fn journal_error(&self) -> Option<&Error> {
        self.journal_error.as_ref()
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

impl<T, I> MapUnordered<'_, T, I>
where
    T: Task,
    I: Iterator<Item: Input<T::Args>>,
{
    /// After the job's deadline was reached with inputs left: records
    /// [`Error::Deadline`], sends nothing more, and returns the one outcome that says so (for
    /// the first input not started).
    fn not_started(
        &mut self,
        master: &crate::master::Master,
    ) -> Option<(usize, Result<T::Output, TaskError>)> {
        let reason = master.deadline_reached(self.job)?.to_owned();
        // Inputs whose outcomes the journal holds are not "not started".
        self.source.skip_done();
        if self.source.exhausted() {
            return None;
        }
        let first = self.source.next_index();
        let not_started = self.source.exact_remaining();
        self.source.stop();
        let error = Error::Deadline {
            reason,
            first,
            not_started,
            journal: self.source.resume.as_ref().map(|r| r.path.clone()),
        };
        let index = usize::try_from(first).unwrap_or(usize::MAX);
        let outcome = TaskError {
            index,
            task: T::NAME,
            rank: 0,
            host: "the master".to_owned(),
            kind: TaskErrorKind::NotStarted,
            message: error.to_string(),
            attempts: 0,
            earlier: Vec::new(),
        };
        self.deadline_error = Some(error);
        Some((index, Err(outcome)))
    }
}

impl<T, I> Iterator for MapUnordered<'_, T, I>
where
    T: Task,
    I: Iterator<Item: Input<T::Args>>,
{
    type Item = (usize, Result<T::Output, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        self.advance(|found| match found {
            Found::Arrived(origin, raw) => decode_outcome(origin, raw),
            Found::Reused(index, outcome) => (index, outcome),
        })
    }
}

impl<T, I> MapUnordered<'_, T, I>
where
    T: Task,
    I: Iterator<Item: Input<T::Args>>,
{
    /// The stream's step: hands the next outcome to `take` and returns what it made of it,
    /// or `None` when the job is over. `next` decodes it into an item; `map` stores a value
    /// where it belongs without moving a `Result` around per item.
    pub(super) fn advance<R>(
        &mut self,
        mut take: impl FnMut(Found<'_, T::Output>) -> R,
    ) -> Option<R> {
        if self.done {
            return None;
        }
        // Results already here are handed out without asking MPI each time; every
        // POLL_EVERY items (or when none is here) the master takes in new frames and refills
        // the workers.
        if let Some((index, outcome)) = self.reused_outcome() {
            return Some(take(Found::Reused(index, outcome)));
        }
        if self.unpolled < POLL_EVERY {
            // Reading an outcome that is already here neither waits nor sends: it needs
            // neither the frees of `Pool::master` nor its look for a pending signal, which the
            // next poll does; but a signal that comes meanwhile is the pool's to handle (a
            // drain), not user code's.
            let _in_pool = crate::signals::enter_pool();
            let item = self
                .pool
                .master_for_reading()
                .next_outcome(self.job, |origin, raw| take(Found::Arrived(origin, raw)));
            if let Some(item) = item {
                // Counted for the progress display at the next poll.
                self.unpolled += 1;
                return Some(item);
            }
        }
        let mut master = self.pool.master();
        self.progress.done(self.unpolled);
        self.unpolled = 0;
        self.progress.tick();
        master.receive_available();
        loop {
            master.dispatch(Some((self.job, &mut self.source)), self.plan);
            if let Some((index, outcome)) = self.reused_outcome() {
                return Some(take(Found::Reused(index, outcome)));
            }
            if let Some(item) =
                master.next_outcome(self.job, |origin, raw| take(Found::Arrived(origin, raw)))
            {
                self.progress.done(1);
                return Some(item);
            }
            if master.outstanding(self.job) == 0
                && (self.source.exhausted() || master.deadline_reached(self.job).is_some())
            {
                let not_started = self.not_started(&master);
                self.done = true;
                if self.lent {
                    // Every chunk was answered: complete the sends from the caller's memory.
                    master.settle_lent(self.job);
                }
                if let Some(resume) = &self.source.resume {
                    resume.report();
                }
                self.journal_error = master.finish_journal(self.job).err();
                master.close_job(self.job);
                self.progress.finish();
                if let Some(before) = self.report.take() {
                    report_call(T::NAME, &before, &master.stats());
                }
                return not_started.map(|(index, outcome)| take(Found::Reused(index, outcome)));
            }
            master.cut_ahead(self.job, &mut self.source, self.plan);
            // Cutting that chunk may have found an input that does not encode: hand it out
            // now rather than after the next result.
            if let Some(item) =
                master.next_outcome(self.job, |origin, raw| take(Found::Arrived(origin, raw)))
            {
                return Some(item);
            }
            master.receive_one();
        }
    }
}

impl<T: Task, I> Drop for MapUnordered<'_, T, I> {
    fn drop(&mut self) {
        if !self.done {
            self.progress.done(self.unpolled);
            self.progress.finish();
            if let Ok(mut master) = self.pool.master.try_borrow_mut() {
                if self.lent {
                    // Dropped early (a panic while decoding a result): no send may read the
                    // caller's memory once the call is gone.
                    master.settle_lent(self.job);
                }
                master.close_job(self.job);
                if let Some(before) = self.report.take() {
                    report_call(T::NAME, &before, &master.stats());
                }
            } else if self.lent {
                eprintln!(
                    "pool: internal error: a map that sends from the caller's memory ends \
                     while the master is busy; aborting"
                );
                std::process::abort();
            }
        }
    }
}
