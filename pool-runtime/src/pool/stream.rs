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
    let earlier = origin.earlier;
    let error = |kind, message: String| {
        let e = TaskError {
            index,
            task: origin.task,
            rank: origin.rank,
            host: origin.host.to_owned(),
            kind,
            message,
            attempts: earlier.len() as u32 + 1,
            earlier,
        };
        failed(&e);
        e
    };
    let outcome = match raw {
        RawOutcome::Value(bytes) => codec::decode::<O>(bytes).map_err(|e| {
            error(
                TaskErrorKind::BadOutput,
                format!("cannot decode the result: {e}"),
            )
        }),
        RawOutcome::Error(kind, message) => Err(error(kind, message.to_owned())),
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
    /// With [`Options::stats`]: the pool's statistics when the call began.
    pub(super) report: Option<Stats>,
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
    /// Sends no further inputs, not even those already cut into a chunk.
    pub(super) fn stop_sending(&mut self) {
        self.source.stop();
        self.pool.master().drop_cut_ahead(self.job);
    }
}

impl<T: Task, I> MapUnordered<'_, T, I> {
    /// The next outcome a journal held for an input that did not change, if any.
    fn reused_outcome(&mut self) -> Option<(usize, Result<T::Output, TaskError>)> {
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
        if self.done {
            return None;
        }
        let mut master = self.pool.master();
        // Results already here are handed out without asking MPI each time; every
        // POLL_EVERY items (or when none is here) the master takes in new frames and refills
        // the workers.
        if let Some(item) = self.reused_outcome() {
            return Some(item);
        }
        if self.unpolled < POLL_EVERY {
            if let Some(item) = master.next_outcome(self.job, decode_outcome::<T::Output>) {
                // Counted for the progress display at the next poll.
                self.unpolled += 1;
                return Some(item);
            }
        }
        self.progress.done(self.unpolled);
        self.unpolled = 0;
        self.progress.tick();
        master.receive_available();
        loop {
            master.dispatch(Some((self.job, &mut self.source)), self.plan);
            if let Some(item) = self.reused_outcome() {
                return Some(item);
            }
            if let Some(item) = master.next_outcome(self.job, decode_outcome::<T::Output>) {
                self.progress.done(1);
                return Some(item);
            }
            if master.outstanding(self.job) == 0
                && (self.source.exhausted() || master.deadline_reached(self.job).is_some())
            {
                let not_started = self.not_started(&master);
                self.done = true;
                if let Some(resume) = &self.source.resume {
                    resume.report();
                }
                self.journal_error = master.finish_journal(self.job).err();
                master.close_job(self.job);
                self.progress.finish();
                if let Some(before) = self.report.take() {
                    report_call(T::NAME, &before, &master.stats());
                }
                return not_started;
            }
            master.cut_ahead(self.job, &mut self.source, self.plan);
            // Cutting that chunk may have found an input that does not encode: hand it out
            // now rather than after the next result.
            if let Some(item) = master.next_outcome(self.job, decode_outcome::<T::Output>) {
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
                master.close_job(self.job);
                if let Some(before) = self.report.take() {
                    report_call(T::NAME, &before, &master.stats());
                }
            }
        }
    }
}
