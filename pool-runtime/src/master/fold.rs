//! Folds on the master's side: FOLD to every worker when the job opens, FOLDED
//! acknowledgements of several chunks at once, PARTIAL values at the end (see
//! `worker/fold.rs` for the worker's side).
//!
//! A fold job is an ordinary job for the schedule: chunks are cut, sized and sent as for a
//! `map`. Only its replies differ: an acknowledgement pops the chunks it covers from the
//! worker's queue (as that many RESULT frames would) and counts their items as read, since
//! no outcome of a single item ever comes back. The master keeps one partial value per
//! worker: its memory is O(workers), whatever the number of inputs.

use std::collections::HashMap;

use super::Master;
use super::receive::kind_of;
use crate::error::TaskErrorKind;
use crate::protocol::{self, Folded, Tag};

/// The first failure of a fold: the item with the lowest index among those reported.
#[derive(Clone, Debug)]
pub(crate) struct FoldError {
    pub(crate) index: u64,
    pub(crate) kind: TaskErrorKind,
    pub(crate) message: String,
    pub(crate) rank: usize,
    pub(crate) host: String,
    /// The combining task failed, not the folded one.
    pub(crate) in_combine: bool,
}

/// One open fold.
#[derive(Debug, Default)]
pub(crate) struct FoldState {
    failure: Option<FoldError>,
    partials: Vec<Vec<u8>>,
    /// PARTIAL frames still to come.
    waiting: usize,
}

pub(crate) type FoldStates = HashMap<u32, FoldState>;

impl Master {
    /// Opens a job whose results are folded with the task `combine` on the workers.
    pub(crate) fn open_fold(&mut self, task: &'static str, task_id: u64, combine: u64) -> u32 {
        let id = self.open_job(task, task_id);
        let frame = protocol::encode_fold(id, combine);
        for w in 0..self.workers.len() {
            self.link.send(w, Tag::Fold, frame.clone());
        }
        self.folds.insert(id, FoldState::default());
        id
    }

    /// The lowest failure reported so far for fold `id`.
    pub(crate) fn fold_failure(&self, id: u32) -> Option<&FoldError> {
        self.folds.get(&id)?.failure.as_ref()
    }

    /// Ends fold `id` once none of its chunks is in flight: every worker sends its partial
    /// value and forgets the job; returns the values (one per worker that folded any item).
    pub(crate) fn finish_fold(&mut self, id: u32) -> Vec<Vec<u8>> {
        self.end_fold(id);
        while self.folds.get(&id).is_some_and(|f| f.waiting > 0) {
            if let Some(incoming) = self.recv() {
                self.handle_incoming(incoming);
            }
        }
        self.close_job(id);
        self.folds
            .remove(&id)
            .map(|f| f.partials)
            .unwrap_or_default()
    }

    /// Asks every worker for its partial value of fold `id` (and to forget the job).
    fn end_fold(&mut self, id: u32) {
        let frame = protocol::encode_fold_end(id);
        for w in 0..self.workers.len() {
            self.link.send(w, Tag::FoldEnd, frame.clone());
        }
        // A worker stuck past a timeout (see `timeout`) will not answer; what it sends is
        // dropped.
        let answering = self.workers.iter().filter(|s| !s.stuck).count();
        if let Some(fold) = self.folds.get_mut(&id) {
            fold.waiting = answering;
        }
    }

    /// Gives fold `id` up (its caller is gone): the workers forget it, and their partial
    /// values are dropped when they come.
    pub(crate) fn abandon_fold(&mut self, id: u32) {
        if self.folds.remove(&id).is_some() {
            let frame = protocol::encode_fold_end(id);
            for w in 0..self.workers.len() {
                self.link.send(w, Tag::FoldEnd, frame.clone());
            }
        }
        self.close_job(id);
    }

    /// A FOLDED frame from worker `w`: the chunks it covers are done.
    pub(super) fn handle_folded(&mut self, w: usize, bytes: Vec<u8>) {
        let rank = self.link.rank_of(w);
        let folded = match Folded::decode(&bytes) {
            Ok(folded) => folded,
            Err(e) => {
                // How many chunks it acknowledges is unknown: everything the worker holds is
                // lost, and its fold fails (waiting on would never end).
                let message = format!("malformed FOLDED frame from rank {rank}: {e}");
                self.lose_worker_chunks(w, &message);
                return;
            }
        };
        self.meter.received(w, bytes.len(), folded.items);
        self.meter.busy(w, folded.busy_ns);
        for _ in 0..folded.chunks {
            let Some(chunk) = self.workers[w].in_flight.pop_front() else {
                eprintln!("pool: ignoring a FOLDED frame from rank {rank}, which holds no task");
                break;
            };
            self.in_flight -= 1;
            match self.cut_ahead.pop_front() {
                Some(next) => self.send_chunk(w, next),
                None => self.free.freed(w),
            }
            if let Some(job) = self.jobs.get_mut(chunk.job) {
                let count = u64::from(chunk.count);
                job.in_flight -= count;
                job.outstanding = job.outstanding.saturating_sub(count);
                if job.abandoned && job.outstanding == 0 {
                    self.jobs.remove(chunk.job);
                }
            }
        }
        if let Some(job) = self.jobs.get_mut(folded.job) {
            if let Some(sample) = job.observe(folded.busy_ns, folded.items) {
                if let Some(avg) = job.item_ns.get() {
                    self.speeds.observe(w, folded.items, sample, avg);
                }
            }
        }
        let Some(failure) = folded.failure else {
            return;
        };
        self.meter.failed(Some(w));
        let host = self.workers[w].host.clone();
        if let Some(fold) = self.folds.get_mut(&folded.job) {
            if fold
                .failure
                .as_ref()
                .is_none_or(|f| failure.index < f.index)
            {
                fold.failure = Some(FoldError {
                    index: failure.index,
                    kind: kind_of(failure.status),
                    message: failure.message,
                    rank,
                    host,
                    in_combine: failure.in_combine,
                });
            }
        }
    }

    /// A PARTIAL frame from worker `w`: its value of a fold, at the end.
    pub(super) fn handle_partial(&mut self, w: usize, bytes: Vec<u8>) {
        self.meter.received(w, bytes.len(), 0);
        match protocol::decode_partial(&bytes) {
            Ok((job, value)) => {
                if let Some(fold) = self.folds.get_mut(&job) {
                    fold.waiting = fold.waiting.saturating_sub(1);
                    if let Some(value) = value {
                        fold.partials.push(value.to_vec());
                    }
                }
            }
            Err(e) => {
                // Which fold it is for is unknown: every fold waiting for a value fails
                // rather than waiting forever.
                let rank = self.link.rank_of(w);
                let host = self.workers[w].host.clone();
                for fold in self.folds.values_mut().filter(|f| f.waiting > 0) {
                    fold.waiting -= 1;
                    fold.failure.get_or_insert(FoldError {
                        index: 0,
                        kind: TaskErrorKind::BadOutput,
                        message: format!("malformed PARTIAL frame from rank {rank}: {e}"),
                        rank,
                        host: host.clone(),
                        in_combine: false,
                    });
                }
            }
        }
    }

    /// Worker `w` sent a reply that cannot be read: the chunks it holds are lost, and the
    /// folds they belong to fail with `message`.
    fn lose_worker_chunks(&mut self, w: usize, message: &str) {
        let rank = self.link.rank_of(w);
        let host = self.workers[w].host.clone();
        while let Some(chunk) = self.workers[w].in_flight.pop_front() {
            self.in_flight -= 1;
            if let Some(job) = self.jobs.get_mut(chunk.job) {
                let count = u64::from(chunk.count);
                job.in_flight -= count;
                job.outstanding = job.outstanding.saturating_sub(count);
                if job.abandoned && job.outstanding == 0 {
                    self.jobs.remove(chunk.job);
                }
            }
            if let Some(fold) = self.folds.get_mut(&chunk.job) {
                if fold.failure.as_ref().is_none_or(|f| chunk.first < f.index) {
                    fold.failure = Some(FoldError {
                        index: chunk.first,
                        kind: TaskErrorKind::BadOutput,
                        message: message.to_owned(),
                        rank,
                        host: host.clone(),
                        in_combine: false,
                    });
                }
            }
        }
        self.free.freed(w);
    }
}
