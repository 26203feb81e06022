//! Jobs and the routing of results: one job per `map`, `map_unordered` or `submit` call.
//!
//! Results are routed by job id, so several jobs can be open at once (a `submit` handle waited
//! while a `map_unordered` is being read). A job keeps what arrived until its reader takes it,
//! one outcome at a time ([`Master::next_outcome`](super::Master::next_outcome)).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::schedule::ItemTime;
use crate::error::{Error, TaskErrorKind};
use crate::frame::{Buffer, Part};
use crate::journal::Journal;
use crate::protocol::Outcomes;

/// One outcome handed to the typed layer: the encoded value (its in-band bytes, and the
/// out-of-band part that ends it, for decoding to take over), or why there is none.
#[derive(Debug)]
pub(crate) enum RawOutcome<'a> {
    Value(&'a [u8], Option<Buffer>),
    Error(TaskErrorKind, &'a str),
}

/// What a RESULT frame in [`Arrived::Frame`] has beyond its bytes, when it has any.
#[derive(Debug, Default)]
pub(crate) struct FrameExtra {
    /// Where its out-of-band parts were (see [`crate::frame`]), and their memory, each
    /// taken when its outcome is read.
    pub(crate) parts: Vec<Part>,
    pub(crate) buffers: Vec<Option<Buffer>>,
    /// Items whose outcome is not handed out: they run again (sorted).
    pub(crate) retried: Vec<u64>,
}

/// Which item an outcome belongs to, and where it ran.
#[derive(Debug)]
pub(crate) struct Provenance<'a> {
    pub(crate) index: u64,
    pub(crate) task: &'static str,
    pub(crate) rank: usize,
    pub(crate) host: &'a str,
    /// Messages of the item's earlier attempts that failed (with retries).
    pub(crate) earlier: Vec<String>,
}

/// Consecutive items of one job, sent as one TASK frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) job: u32,
    pub(crate) first: u64,
    pub(crate) count: u32,
    /// Unique per chunk cut: tells a copy's result from the original's (see `backup`).
    pub(crate) seq: u64,
}

impl Chunk {
    /// True if a RESULT frame with `header` answers this chunk (the worker read its TASK
    /// frame; otherwise it says why in a single outcome).
    #[inline]
    pub(crate) fn answered_by(&self, header: &crate::protocol::ResultHeader) -> bool {
        header.job == self.job && header.first == self.first && header.count == self.count
    }
}

/// Outcomes of one job that arrived and wait to be read.
#[derive(Debug)]
pub(crate) enum Arrived {
    /// A worker's RESULT frame, read one outcome at a time.
    Frame {
        worker: usize,
        next_index: u64,
        outcomes: Outcomes,
        frame: Vec<u8>,
        /// Outcomes left to hand out.
        left: u32,
        /// Its out-of-band parts and the items that run again, when it has any: boxed, so
        /// that the usual frame moves in a few words (every result frame moves twice on the
        /// master's per-message path).
        extra: Option<Box<FrameExtra>>,
    },
    /// Every item of a chunk failed the same way (malformed reply, input that did not encode).
    Failed {
        /// `None` when the items never left the master.
        worker: Option<usize>,
        next_index: u64,
        left: u32,
        kind: TaskErrorKind,
        message: String,
    },
}

#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) task: &'static str,
    pub(crate) task_id: u64,
    /// Items sent, cut or arrived whose outcome has not been read yet.
    pub(crate) outstanding: u64,
    /// Items in chunks on their way to or from a worker.
    pub(crate) in_flight: u64,
    /// Items that arrived and wait in `arrived`.
    pub(crate) ready_items: u64,
    pub(crate) arrived: VecDeque<Arrived>,
    /// Nobody will read the results: they are dropped as they arrive.
    pub(crate) abandoned: bool,
    /// Measured worker time per item, for adaptive chunks.
    pub(crate) item_ns: ItemTime,
    /// Items in the last chunk cut.
    pub(crate) last_chunk: usize,
    /// Items in the largest chunk that came back: adaptive chunks grow at most twice as
    /// large as that.
    pub(crate) largest_done: u32,
    /// Where successful results are appended as they arrive, if the call asked for it.
    pub(crate) journal: Option<Journal>,
    /// Why appending to the journal failed; the journal is then closed.
    pub(crate) journal_error: Option<Error>,
    /// With a journal: the input digests of the chunks in flight, by first index.
    pub(crate) digests: HashMap<u64, Vec<u64>>,
    /// Runs of a failed item after the first.
    pub(crate) retries: u32,
    /// Each item's limit ([`Options::timeout`](crate::Options::timeout)), if any.
    pub(crate) timeout: Option<std::time::Duration>,
    /// With retries or a timeout: the frames of the chunks in flight (and their out-of-band
    /// parts), by chunk, to send an item again.
    pub(crate) kept: HashMap<u64, (Vec<u8>, Vec<Part>)>,
    /// With retries: each item's failed attempts so far.
    pub(crate) earlier: HashMap<u64, Vec<Attempt>>,
}

/// A failed attempt of an item that runs again (with retries).
#[derive(Debug)]
pub(crate) struct Attempt {
    /// The worker it failed on.
    pub(crate) worker: usize,
    /// That worker's [`run`](super::WorkerSlot::run) when it failed: the failure counts
    /// towards the worker's quarantine if the item then succeeds elsewhere before the worker
    /// succeeds at anything.
    pub(crate) run: u32,
    /// What the failure said.
    pub(crate) message: String,
}

impl Job {
    fn new(task: &'static str, task_id: u64) -> Job {
        Job {
            task,
            task_id,
            outstanding: 0,
            in_flight: 0,
            ready_items: 0,
            arrived: VecDeque::new(),
            abandoned: false,
            item_ns: ItemTime::default(),
            last_chunk: 1,
            largest_done: 0,
            journal: None,
            journal_error: None,
            digests: HashMap::new(),
            retries: 0,
            timeout: None,
            kept: HashMap::new(),
            earlier: HashMap::new(),
        }
    }

    /// Folds a chunk's measured worker time into the per-item average; returns this chunk's
    /// time per item.
    pub(crate) fn observe(&mut self, busy_ns: u64, count: u32) -> Option<f64> {
        if count == 0 {
            return None;
        }
        self.item_ns.add(busy_ns, count);
        self.largest_done = self.largest_done.max(count);
        Some(busy_ns as f64 / f64::from(count))
    }

    /// True when no item of a result of this job runs again (no retries, or nobody reads the
    /// outcomes) and no copy of its chunks is kept (for retries or a timeout): its outcomes
    /// need no look on arrival, unless the worker has a run of failures to end.
    #[inline]
    pub(crate) fn runs_nothing_again(&self) -> bool {
        self.kept.is_empty() && (self.retries == 0 || self.abandoned)
    }

    /// What arrived for `chunk`, which was in flight, with `ready` of its outcomes to read.
    #[inline]
    pub(crate) fn arrive(&mut self, chunk: Chunk, arrived: Arrived, ready: u32) {
        self.in_flight -= u64::from(chunk.count);
        self.ready_items += u64::from(ready);
        self.arrived.push_back(arrived);
    }

    /// Items that failed before leaving the master (`worker: None`) or all in one way.
    pub(crate) fn push_failed(
        &mut self,
        worker: Option<usize>,
        first: u64,
        count: u32,
        kind: TaskErrorKind,
        message: String,
    ) {
        self.ready_items += u64::from(count);
        self.arrived.push_back(Arrived::Failed {
            worker,
            next_index: first,
            left: count,
            kind,
            message,
        });
    }
}

/// The open jobs, by id: O(1) however many `submit` handles are open.
///
/// The job opened last is kept apart from the others: a `map` looks its job up several
/// times per message, and that lookup is then a comparison, a few bytes of code instead of a
/// hash table's probe inlined at each place (the master's time per tiny task is mostly
/// fetching its code, see BENCHMARKS.md).
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    /// The job opened last, while it is open.
    newest: Option<(u32, Job)>,
    /// Every other open job.
    older: HashMap<u32, Job, BuildHasherDefault<IdHasher>>,
    next_id: u32,
}

/// Job ids are handed out in sequence: the map uses them as they are (a lookup per outcome
/// read must cost next to nothing).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Spread the bits a little: hashbrown takes the top 7 for its control bytes.
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

impl Jobs {
    /// Opens a job and returns its id. Ids wrap after 2^32 jobs, skipping any still open.
    pub(crate) fn open(&mut self, task: &'static str, task_id: u64) -> u32 {
        let mut id = self.next_id;
        while self.get(id).is_some() {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        if let Some((older, job)) = self.newest.replace((id, Job::new(task, task_id))) {
            self.older.insert(older, job);
        }
        id
    }

    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<&Job> {
        match &self.newest {
            Some((newest, job)) if *newest == id => Some(job),
            _ => self.get_older(id),
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut Job> {
        if matches!(&self.newest, Some((newest, _)) if *newest == id) {
            return self.newest.as_mut().map(|(_, job)| job);
        }
        self.get_older_mut(id)
    }

    /// [`Jobs::get`] of a job opened before the newest: out of line, one copy of the hash
    /// table's probe.
    #[inline(never)]
    fn get_older(&self, id: u32) -> Option<&Job> {
        self.older.get(&id)
    }

    /// [`Jobs::get_mut`] of a job opened before the newest.
    #[inline(never)]
    fn get_older_mut(&mut self, id: u32) -> Option<&mut Job> {
        self.older.get_mut(&id)
    }

    pub(crate) fn remove(&mut self, id: u32) -> Option<Job> {
        match self.newest.take() {
            Some((newest, job)) if newest == id => Some(job),
            newest => {
                self.newest = newest;
                self.older.remove(&id)
            }
        }
    }

    /// `count` items of job `id` came back or were given up: if the job was abandoned
    /// (nobody reads it), they are no longer outstanding, and the job is forgotten once none
    /// is. True if it was abandoned.
    pub(crate) fn count_abandoned(&mut self, id: u32, count: u32) -> bool {
        let Some(job) = self.get_mut(id) else {
            return false;
        };
        if !job.abandoned {
            return false;
        }
        job.outstanding = job.outstanding.saturating_sub(u64::from(count));
        if job.outstanding == 0 {
            self.remove(id);
        }
        true
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Job> {
        let newest = self.newest.iter_mut().map(|(_, job)| job);
        newest.chain(self.older.values_mut())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Job> {
        let newest = self.newest.iter().map(|(_, job)| job);
        newest.chain(self.older.values())
    }

    /// The task of job `id`, for reports.
    pub(crate) fn task(&self, id: u32) -> &'static str {
        self.get(id).map_or("?", |j| j.task)
    }
}
