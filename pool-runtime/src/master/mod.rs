//! The master: the untyped core that hands out chunks, routes results and stops the workers.
//!
//! The typed layer ([`crate::pool`]) owns the input iterators and decodes results; the master
//! sees only bytes. Its parts, one concern each:
//!
//! - [`schedule`]: pure policy (chunk size, worker choice, window), tested without MPI;
//! - [`jobs`]: open jobs, and the outcomes that arrived for each;
//! - [`dispatch`]: cutting chunks from a job's inputs and sending them;
//! - [`receive`]: taking in RESULT frames and routing them to their job;
//! - [`retry`]: the items that run again after a failure, and quarantine;
//! - [`outcome`]: handing the outcomes that arrived to their job's reader;
//! - [`handshake`]: start-up (HELLO) and shutdown (STOP, BYE);
//! - [`abort`]: waiting with an eye on signals and dead workers, and ending the job;
//! - [`timeout`]: items that run past their job's timeout, and the workers stuck in them;
//! - [`drain`]: after SIGINT/SIGTERM, the chunks in flight finish before the job ends;
//! - [`deadline`]: no chunk is sent that would end after the call's deadline.
//!
//! The master runs unchanged over MPI, over threads of one process, and over the simulated
//! transport (`transport::sim`) that shows how it scales to 100,000 workers.

mod abort;
mod backup;
mod context;
mod deadline;
mod dispatch;
mod drain;
mod fold;
mod handshake;
pub(crate) mod jobs;
mod outcome;
mod receive;
mod retry;
pub(crate) mod schedule;
mod share;
#[cfg(test)]
mod tests;
mod timeout;

use std::collections::VecDeque;

use crate::error::Error;
use crate::stats::{Meter, Stats};
use crate::transport::MasterLink;

pub(crate) use dispatch::{Encoded, JobInputs};
pub(crate) use fold::FoldError;
pub(crate) use jobs::{Provenance, RawOutcome};
pub(crate) use receive::kind_of;
pub(crate) use schedule::ChunkPlan;

use jobs::{Chunk, Jobs};
use schedule::{FreeSlots, Speeds};

/// One worker as the master sees it.
#[derive(Debug)]
struct WorkerSlot {
    rank: usize,
    host: String,
    /// Chunks sent and not answered yet, oldest first (a worker answers in order).
    in_flight: VecDeque<Chunk>,
    /// Which run of failures it is in: its successes so far, as they arrived (wrapping;
    /// counted while `unsettled`, and in jobs with retries, whose outcomes are looked at on
    /// arrival anyway).
    run: u32,
    /// An item failed on it (with retries) since its last success counted in `run`: its
    /// next success, in any job, ends that run.
    unsettled: bool,
    /// Items that failed on this worker in its current run and then succeeded on another:
    /// a broken node fails item after item, while an input that fails once fails wherever
    /// it first runs and is followed by successes there.
    failing: u32,
    /// It gets no more tasks ([`schedule::QUARANTINE_AFTER`], or stuck).
    quarantined: bool,
    /// It is running an item past its timeout: what it sends is dropped (see `timeout`).
    stuck: bool,
}

impl WorkerSlot {
    /// A success of this worker arrived: its run of failures, if any, ends.
    fn succeeded(&mut self) {
        self.run = self.run.wrapping_add(1);
        self.failing = 0;
        self.unsettled = false;
    }

    /// Where item `index` of a job of `task` ran: on this worker.
    fn provenance(&self, task: &'static str, index: u64, earlier: Vec<String>) -> Provenance<'_> {
        Provenance {
            index,
            task,
            rank: self.rank,
            host: &self.host,
            earlier,
        }
    }

    /// Chunks it holds, as the schedule sees it: full when it must get no more.
    fn load(&self) -> usize {
        if self.quarantined {
            usize::MAX
        } else {
            self.in_flight.len()
        }
    }
}

/// A chunk cut before a worker had room for it, with its frame.
#[derive(Debug)]
struct CutChunk {
    chunk: Chunk,
    frame: Vec<u8>,
    /// The frame's out-of-band parts (see [`crate::frame`]); empty for most.
    parts: Vec<crate::frame::Part>,
    /// Cut at the tail of its job: a copy is kept if it has to wait behind another chunk.
    tail: bool,
    /// A retry: not for this worker, where it failed, while another can take it.
    avoid: Option<usize>,
}

pub(crate) struct Master {
    link: Box<dyn MasterLink>,
    workers: Vec<WorkerSlot>,
    jobs: Jobs,
    /// Chunks cut ahead (or submitted) that wait for a worker with room, oldest first.
    cut_ahead: VecDeque<CutChunk>,
    /// Frame buffers kept for reuse.
    spare: Vec<Vec<u8>>,
    /// Copies of chunks queued at the tail, for idle workers.
    backups: backup::Backups,
    /// Chunks cut so far (the next chunk's `seq`).
    chunks_cut: u64,
    free: FreeSlots,
    speeds: Speeds,
    /// Chunks in flight, all workers together.
    in_flight: usize,
    /// Chunks sent so far (see `receive_available`).
    chunks_sent: u64,
    /// Workers in quarantine (stuck ones included).
    quarantined: usize,
    /// Deadlines of items of jobs with a timeout, and the workers stuck past one.
    timeouts: timeout::Timeouts,
    /// Set once a job had a timeout: only then are the items' start times tracked.
    timed: bool,
    liveness: abort::Liveness,
    /// Per-worker counts for [`Master::stats`].
    meter: Meter,
    /// Open folds (see `fold`).
    folds: fold::FoldStates,
    /// Ids of shared values dropped on the master, to free on the workers (see `share`).
    frees: std::sync::Arc<crate::shared::FreeQueue>,
    /// Ids of values shared in this process's store (one process only).
    shared_here: Vec<u64>,
    /// The pool's deadline and each call's (see `deadline`).
    deadlines: deadline::Deadlines,
}

impl Master {
    pub(crate) fn new(link: Box<dyn MasterLink>) -> Master {
        let n = link.workers();
        let workers = (0..n)
            .map(|w| WorkerSlot {
                rank: link.rank_of(w),
                host: String::new(),
                in_flight: VecDeque::new(),
                run: 0,
                unsettled: false,
                failing: 0,
                quarantined: false,
                stuck: false,
            })
            .collect();
        crate::signals::set_note(abort::NO_JOURNAL_NOTE.to_owned());
        Master {
            meter: Meter::new(n),
            link,
            workers,
            jobs: Jobs::default(),
            cut_ahead: VecDeque::new(),
            spare: Vec::new(),
            backups: backup::Backups::default(),
            chunks_cut: 0,
            free: FreeSlots::new(n),
            speeds: Speeds::new(n),
            in_flight: 0,
            chunks_sent: 0,
            quarantined: 0,
            timeouts: timeout::Timeouts::default(),
            timed: false,
            liveness: abort::Liveness::default(),
            folds: fold::FoldStates::default(),
            frees: std::sync::Arc::default(),
            shared_here: Vec::new(),
            deadlines: deadline::Deadlines::default(),
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.workers.len()
    }

    /// What the workers did since the pool started.
    pub(crate) fn stats(&self) -> Stats {
        self.meter
            .snapshot(|w| (self.workers[w].rank, self.workers[w].host.as_str()))
    }

    /// Opens a job for `task`; its results are read with [`Master::next_outcome`].
    pub(crate) fn open_job(&mut self, task: &'static str, task_id: u64) -> u32 {
        let id = self.jobs.open(task, task_id);
        tracing::debug!(job = id, task, "pool: job opened");
        id
    }

    /// Runs each failed item of job `id` up to `retries` more times.
    pub(crate) fn set_retries(&mut self, id: u32, retries: u32) {
        if let Some(job) = self.jobs.get_mut(id) {
            job.retries = retries;
        }
    }

    /// Closes a job whose reader is gone or done; results still on their way are dropped
    /// when they arrive, chunks cut but not sent are forgotten.
    pub(crate) fn close_job(&mut self, id: u32) {
        let Some(job) = self.jobs.get_mut(id) else {
            return;
        };
        tracing::debug!(job = id, task = job.task, "pool: job closed");
        self.deadlines.forget(id);
        // Items cut but not sent (in `cut_ahead`): what is outstanding is not in flight and
        // has not arrived. Only then is the queue searched, so closing a waited handle is
        // O(1) however many others are queued.
        let cut = job.outstanding > job.in_flight + job.ready_items;
        job.ready_items = 0;
        job.arrived.clear();
        job.outstanding = job.in_flight;
        job.abandoned = true;
        if job.outstanding == 0 {
            self.jobs.remove(id);
        }
        if cut {
            self.cut_ahead.retain(|c| c.chunk.job != id);
        }
        self.backups.forget_job(id);
    }

    /// Items of job `id` not read yet (sent, cut ahead, or arrived).
    pub(crate) fn outstanding(&self, id: u32) -> u64 {
        self.jobs.get(id).map_or(0, |j| j.outstanding)
    }

    /// Keeps a frame's buffer for reuse, within limits (result frames too: those of up to
    /// 16 MiB are received again into memory already present).
    #[inline]
    fn keep_buffer(&mut self, frame: Vec<u8>) {
        const MAX_SPARE: usize = 64;
        const MAX_SPARE_BYTES: usize = 16 << 20;
        if self.spare.len() < MAX_SPARE && frame.capacity() <= MAX_SPARE_BYTES {
            self.spare.push(frame);
        }
    }

    /// A buffer for the next frame: a kept one, one whose send completed, or a new one.
    fn take_buffer(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .or_else(|| self.link.reclaim_send_buffer())
            .unwrap_or_default()
    }

    /// Appends job `id`'s successful results to `journal` as they arrive.
    pub(crate) fn set_journal(&mut self, id: u32, journal: crate::journal::Journal) {
        if let Some(job) = self.jobs.get_mut(id) {
            job.journal = Some(journal);
        }
        crate::signals::set_note(self.journal_note());
    }

    /// True once appending to job `id`'s journal failed.
    pub(crate) fn journal_failed(&self, id: u32) -> bool {
        self.jobs.get(id).is_some_and(|j| j.journal_error.is_some())
    }

    /// Flushes and closes job `id`'s journal; returns the first failure to write it.
    pub(crate) fn finish_journal(&mut self, id: u32) -> Result<(), Error> {
        let Some(job) = self.jobs.get_mut(id) else {
            return Ok(());
        };
        if let Some(e) = job.journal_error.take() {
            return Err(e);
        }
        let flushed = match job.journal.take() {
            Some(mut journal) => journal.flush(),
            None => Ok(()),
        };
        crate::signals::set_note(self.journal_note());
        flushed
    }
}

/// `item 7` or `items 4..=7`, for messages.
pub(crate) fn items(first: u64, count: u32) -> String {
    match count {
        0 => "no item".to_owned(),
        1 => format!("item {first}"),
        n => format!("items {first}..={}", first + u64::from(n) - 1),
    }
}
