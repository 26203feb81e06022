//! Folding on the worker: a job opened with FOLD has its chunks combined here, into one
//! running value per job, instead of answered item by item.
//!
//! For each item the worker runs the job's task, then the combining task on (the running
//! value, the item's value). Both are registered tasks run from bytes: the combining task's
//! argument, a pair `(a, b)`, encodes as `a`'s bytes followed by `b`'s (postcard writes a
//! tuple's fields one after the other), so the worker needs no types. FOLD_END asks for the
//! running value (a PARTIAL frame) and forgets the job.
//!
//! **Acknowledgements.** The master still needs to know when a chunk is done (to send the
//! next one), but not its values. After a folded chunk the worker takes in every frame that
//! has already arrived; while two or more wait, it runs the next one before it answers, and
//! then acknowledges all the chunks done so far in one FOLDED frame. With `k` chunks in
//! flight per worker (a fold asks for 8), that is one message per `k - 1` chunks, and the
//! worker never waits for the master: the master refills while it runs the last queued
//! chunk. An acknowledgement is sent before any other reply, so replies stay in the order of
//! the chunks (the master matches them against its queue), and before the worker would wait.
//! The first failure of an item (or of the combining task) is reported in the next
//! acknowledgement; the worker skips the job's remaining items, as the master stops sending
//! them.

use std::collections::HashMap;

use super::clock;
use crate::protocol::{self, FoldFailure, Folded, Status, Tag, TaskFrame};
use crate::registry::Registry;
use crate::signals;
use crate::transport::WorkerLink;

/// The folds open on this worker, and the acknowledgement not sent yet.
#[derive(Debug, Default)]
pub(crate) struct Folds {
    jobs: HashMap<u32, FoldJob>,
    pending: Option<Folded>,
    /// Scratch buffers: one item's value, the combining task's argument.
    value: Vec<u8>,
    pair: Vec<u8>,
    combined: Vec<u8>,
}

#[derive(Debug)]
struct FoldJob {
    combine: u64,
    value: Option<Vec<u8>>,
    failed: bool,
}

impl Folds {
    pub(crate) fn is_fold(&self, job: u32) -> bool {
        self.jobs.contains_key(&job)
    }

    /// True when the acknowledgement waiting to be sent is for `job`.
    pub(crate) fn pending_for(&self, job: u32) -> bool {
        self.pending.as_ref().is_some_and(|p| p.job == job)
    }

    /// Job `job` is folded with the task `combine` (again: nothing changes).
    pub(crate) fn begin(&mut self, job: u32, combine: u64) {
        self.jobs.entry(job).or_insert(FoldJob {
            combine,
            value: None,
            failed: false,
        });
    }

    /// The PARTIAL frame of job `job` into `out`; the job is forgotten.
    pub(crate) fn end(&mut self, job: u32, out: &mut Vec<u8>) {
        let value = self.jobs.remove(&job).and_then(|j| j.value);
        protocol::encode_partial(out, job, value.as_deref());
    }

    /// Sends the acknowledgement waiting, if any.
    pub(crate) fn flush(&mut self, link: &mut dyn WorkerLink, out: &mut Vec<u8>) {
        if self.take_ack(out) {
            link.send(Tag::Folded, out);
        }
    }

    /// The FOLDED frame waiting, into `out`; false when none waits.
    pub(crate) fn take_ack(&mut self, out: &mut Vec<u8>) -> bool {
        match self.pending.take() {
            Some(folded) => {
                folded.encode(out);
                true
            }
            None => false,
        }
    }

    /// Folds one TASK frame of a fold job into its running value; the acknowledgement waits
    /// in `pending`. Returns the time per item, in nanoseconds.
    pub(crate) fn run_chunk(
        &mut self,
        registry: &Registry,
        rank: usize,
        frame: &[u8],
        track: bool,
    ) -> u64 {
        let started = clock::start();
        let (header, failure) = match TaskFrame::decode(frame) {
            Ok(task) => {
                let failure = self.fold_items(registry, rank, &task, track);
                (task.header, failure)
            }
            Err(e) => {
                let Some(header) = protocol::peek_task_header(frame) else {
                    return 0;
                };
                let failure = FoldFailure {
                    index: header.first,
                    status: Status::Rejected,
                    in_combine: false,
                    message: format!("malformed frame: {e}"),
                };
                (header, Some(failure))
            }
        };
        if failure.is_some() {
            if let Some(job) = self.jobs.get_mut(&header.job) {
                job.failed = true;
            }
        }
        let busy_ns = clock::busy_ns(started);
        let pending = self.pending.get_or_insert(Folded {
            job: header.job,
            first: header.first,
            items: 0,
            busy_ns: 0,
            chunks: 0,
            failure: None,
        });
        pending.items += header.count;
        pending.busy_ns = pending.busy_ns.saturating_add(busy_ns);
        pending.chunks += 1;
        if pending.failure.is_none() {
            pending.failure = failure;
        }
        busy_ns / u64::from(header.count.max(1))
    }

    /// Runs and combines the items of `task`; the first failure, if any.
    fn fold_items(
        &mut self,
        registry: &Registry,
        rank: usize,
        task: &TaskFrame<'_>,
        track: bool,
    ) -> Option<FoldFailure> {
        let header = task.header;
        let job = self.jobs.get_mut(&header.job)?;
        if job.failed {
            return None;
        }
        let rejected = |id: u64| FoldFailure {
            index: header.first,
            status: Status::Rejected,
            in_combine: id != header.task,
            message: format!(
                "task id {id:#018x} is not registered on rank {rank}; this rank knows: {}",
                registry.names().join(", ")
            ),
        };
        let entry = registry
            .get(header.task)
            .ok_or(())
            .map_err(|()| rejected(header.task));
        let combine = registry
            .get(job.combine)
            .ok_or(())
            .map_err(|()| rejected(job.combine));
        let (entry, combine) = match (entry, combine) {
            (Ok(entry), Ok(combine)) => (entry, combine),
            (Err(e), _) | (_, Err(e)) => return Some(e),
        };
        if track {
            signals::worker_chunk(entry.name(), header.job, header.first, header.count);
        }
        // The running value is kept and decoded again here: its bytes must all be in it.
        let _whole = crate::gather::pause();
        let mut failure = None;
        for (index, item) in (header.first..).zip(task.items()) {
            if track {
                signals::worker_item(index);
            }
            self.value.clear();
            if let Err(f) = entry.invoke(item, &mut self.value) {
                failure = Some(FoldFailure {
                    index,
                    status: Status::of(&f),
                    in_combine: false,
                    message: f.message().to_owned(),
                });
                break;
            }
            let Some(running) = job.value.as_mut() else {
                job.value = Some(std::mem::take(&mut self.value));
                continue;
            };
            // The pair `(running, value)`, encoded: one after the other.
            self.pair.clear();
            self.pair.extend_from_slice(running);
            self.pair.extend_from_slice(&self.value);
            self.combined.clear();
            if let Err(f) = combine.invoke(&self.pair, &mut self.combined) {
                failure = Some(FoldFailure {
                    index,
                    status: Status::of(&f),
                    in_combine: true,
                    message: f.message().to_owned(),
                });
                break;
            }
            std::mem::swap(running, &mut self.combined);
        }
        if track {
            signals::worker_idle();
        }
        failure
    }
}
