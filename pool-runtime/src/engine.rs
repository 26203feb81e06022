//! The master's untyped core: jobs, dispatch to workers, routing of results, shutdown.
//!
//! A *job* is one `map`, `map_unordered` or `submit` call. Its inputs are cut into *chunks*
//! (consecutive indices, one TASK frame each); each worker holds at most `prefetch` chunks in
//! flight, and whoever answers is refilled first. Results are routed by job id, so several jobs
//! can be open at once (a `submit` handle waited while a `map_unordered` is being read).
//!
//! The typed layer (`pool.rs`) owns the input iterators and decodes results; this module sees
//! only bytes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{Error, TaskErrorKind};
use crate::journal::Journal;
use crate::protocol::{self, Hello, Outcomes, ResultFrame, Status, Tag};
use crate::registry::Registry;
use crate::signals;
use crate::stats::{Meter, Stats};
use crate::transport::MasterLink;

/// A chunk stops growing once its frame is this large.
const SOFT_FRAME_LIMIT: usize = 8 << 20;

/// How often a waiting master checks that [`LIVENESS_BATCH`] of the worker processes on its
/// host are alive. Open MPI's mpirun waits about a second after a rank dies before it ends the
/// job, and then gives the master only milliseconds: noticing the death first is what lets the
/// master say which tasks the dead rank held.
const LIVENESS_EVERY: Duration = Duration::from_millis(20);
const LIVENESS_BATCH: usize = 4;

/// Chunks in flight listed when the master is interrupted; the rest are counted.
const MAX_REPORT_LINES: usize = 32;

/// Buffers kept for reuse.
const MAX_SPARE: usize = 64;

/// Chunks in flight per worker when the caller does not say.
pub(crate) const DEFAULT_PREFETCH: usize = 2;

/// Where a job's inputs come from: the typed layer encodes them on demand.
pub(crate) trait Source {
    /// Index of the next input.
    fn next_index(&self) -> u64;
    /// True once no more inputs will come.
    fn exhausted(&self) -> bool;
    /// How many inputs are certainly left, when the input says (`size_hint`).
    fn remaining_hint(&self) -> Option<u64>;
    /// Passes over inputs that are not to be sent (their results are already known), so
    /// that [`Source::next_index`] is the next one to send.
    fn skip_done(&mut self) {}
    /// Appends up to `max` encoded inputs to `frame` as items and returns how many. Stops at
    /// the first input that fails to encode and returns it as `failed` (it is not in the frame).
    fn fill(&mut self, frame: &mut Vec<u8>, max: usize, max_bytes: usize) -> Fill;
}

/// What [`Source::fill`] did.
#[derive(Debug, Default)]
pub(crate) struct Fill {
    pub(crate) count: u32,
    pub(crate) failed: Option<(u64, String)>,
}

/// How to cut and pace one job's inputs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// Items per chunk; `None` adapts it to the measured task time.
    pub(crate) chunksize: Option<usize>,
    pub(crate) prefetch: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            chunksize: None,
            prefetch: DEFAULT_PREFETCH,
        }
    }
}

/// Adaptive chunks aim to keep a worker busy this long, so the per-message cost vanishes and
/// a worker's queue (`prefetch` chunks) outlasts the master's longest nap.
const TARGET_CHUNK_NS: f64 = 1_000_000.0;
/// Adaptive chunks hold at most this many items.
const MAX_CHUNK_ITEMS: usize = 1 << 16;

/// Items for the next adaptive chunk: as many as fill [`TARGET_CHUNK_NS`] at the measured
/// time per item (one until measured), and at the tail no more than a share of what is left,
/// so the last workers finish together (guided self-scheduling).
pub(crate) fn adaptive_chunk(
    item_ns: Option<f64>,
    remaining: Option<u64>,
    workers: usize,
) -> usize {
    let by_time = match item_ns {
        None => 1,
        Some(ns) => (TARGET_CHUNK_NS / ns.max(1.0)).clamp(1.0, MAX_CHUNK_ITEMS as f64) as usize,
    };
    let by_tail = remaining.map_or(usize::MAX, |left| {
        let share = left.div_ceil(2 * workers.max(1) as u64);
        usize::try_from(share).unwrap_or(usize::MAX)
    });
    by_time.min(by_tail).max(1)
}

/// One outcome handed to the typed layer.
#[derive(Debug)]
pub(crate) enum Raw<'a> {
    Value(&'a [u8]),
    Error(TaskErrorKind, &'a str),
}

/// Where and which item an outcome belongs to.
#[derive(Debug)]
pub(crate) struct Origin<'a> {
    pub(crate) index: u64,
    pub(crate) task: &'static str,
    pub(crate) rank: usize,
    pub(crate) host: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunk {
    job: u32,
    first: u64,
    count: u32,
}

#[derive(Debug)]
struct WorkerSlot {
    rank: usize,
    host: String,
    in_flight: VecDeque<Chunk>,
}

/// Results of one job that arrived and wait to be read.
#[derive(Debug)]
enum Ready {
    Frame {
        worker: usize,
        next_index: u64,
        outcomes: Outcomes,
        frame: Vec<u8>,
    },
    /// Every item of a chunk failed the same way (malformed reply, input that did not encode).
    Failed {
        /// `None` when the item never left the master.
        worker: Option<usize>,
        next_index: u64,
        left: u32,
        kind: TaskErrorKind,
        message: String,
    },
}

#[derive(Debug)]
struct Job {
    id: u32,
    task: &'static str,
    task_id: u64,
    /// Items sent or queued whose outcome has not been read yet.
    outstanding: u64,
    /// Items that arrived and wait in `ready`.
    ready_items: u64,
    ready: VecDeque<Ready>,
    /// Nobody will read the results: drop them as they arrive.
    abandoned: bool,
    /// Measured worker time per item (moving average), for adaptive chunks.
    item_ns: Option<f64>,
    /// Items in the last chunk cut.
    last_chunk: usize,
    /// Where successful results are appended as they arrive, if the call asked for it.
    journal: Option<Journal>,
    /// Why appending to the journal failed; the journal is then closed.
    journal_error: Option<Error>,
}

impl Job {
    /// Folds a chunk's measured worker time into the per-item average.
    fn observe(&mut self, busy_ns: u64, count: u32) {
        if count == 0 {
            return;
        }
        let sample = busy_ns as f64 / f64::from(count);
        self.item_ns = Some(match self.item_ns {
            None => sample,
            Some(avg) => 0.7 * avg + 0.3 * sample,
        });
    }
}

/// A frame waiting for a free worker slot (from `submit`).
#[derive(Debug)]
struct Queued {
    chunk: Chunk,
    frame: Vec<u8>,
}

pub(crate) struct Engine {
    link: Box<dyn MasterLink>,
    workers: Vec<WorkerSlot>,
    /// Open jobs; there are few, so a vector beats a hash map.
    jobs: Vec<Job>,
    next_job: u32,
    queued: VecDeque<Queued>,
    spare: Vec<Vec<u8>>,
    /// Worker to look at first when dispatching, so work spreads evenly.
    cursor: usize,
    in_flight: usize,
    /// Worker processes on the master's host: `(worker, pid)`.
    local_pids: Vec<(usize, u32)>,
    /// When the master last checked that some of them are alive, and which it checked last.
    liveness: (Instant, usize),
    /// Per-worker counts for [`Engine::stats`].
    meter: Meter,
}

impl Engine {
    pub(crate) fn new(link: Box<dyn MasterLink>) -> Engine {
        let workers = (0..link.workers())
            .map(|w| WorkerSlot {
                rank: link.rank_of(w),
                host: String::new(),
                in_flight: VecDeque::new(),
            })
            .collect();
        signals::set_note(
            "pool:   no journal was set (Options::journal): a rerun starts from the beginning\n"
                .to_owned(),
        );
        Engine {
            meter: Meter::new(link.workers()),
            link,
            workers,
            jobs: Vec::new(),
            next_job: 0,
            queued: VecDeque::new(),
            spare: Vec::new(),
            cursor: 0,
            in_flight: 0,
            local_pids: Vec::new(),
            liveness: (Instant::now(), 0),
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

    fn job(&self, id: u32) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id)
    }

    /// Waits for every worker's HELLO and checks that all ranks run the same tasks.
    pub(crate) fn handshake(&mut self) -> Result<(), Error> {
        let registry = Registry::global();
        let mut first_error = None;
        if !registry.duplicates().is_empty() {
            first_error = Some(Error::DuplicateTasks(registry.duplicates().to_vec()));
        }
        let started = Instant::now();
        let mut greeted = vec![false; self.workers.len()];
        let mut left = self.workers.len();
        while left > 0 {
            let incoming = self.recv();
            let w = incoming.worker;
            let rank = self.link.rank_of(w);
            let result = if Tag::from_raw(incoming.tag) != Some(Tag::Hello) || greeted[w] {
                Err(Error::Protocol {
                    rank,
                    message: format!(
                        "expected one HELLO frame at start-up, got tag {} ({} bytes)",
                        incoming.tag,
                        incoming.bytes.len()
                    ),
                })
            } else {
                greeted[w] = true;
                left -= 1;
                Hello::decode(&incoming.bytes)
                    .map_err(|e| Error::Protocol {
                        rank,
                        message: e.to_string(),
                    })
                    .and_then(|hello| self.check_hello(w, hello, registry))
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        self.meter.restart();
        tracing::info!(
            workers = self.workers.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            ok = first_error.is_none(),
            "pool: every worker said hello"
        );
        match first_error {
            Some(e) => Err(e),
            None => {
                self.link.started();
                Ok(())
            }
        }
    }

    fn check_hello(&mut self, w: usize, hello: Hello, registry: &Registry) -> Result<(), Error> {
        let slot = &mut self.workers[w];
        // Worker processes on this host are watched while the master waits (not worker
        // threads of this process).
        if crate::host::known_host_name() == Some(hello.host.as_str())
            && hello.pid != std::process::id()
        {
            self.local_pids.push((w, hello.pid));
        }
        slot.host = hello.host;
        tracing::debug!(rank = slot.rank, host = %slot.host, pid = hello.pid, "pool: hello");
        if hello.fingerprint == registry.fingerprint() {
            return Ok(());
        }
        let theirs: Vec<&str> = hello.tasks.iter().map(String::as_str).collect();
        let lacks: Vec<&str> = registry
            .names()
            .iter()
            .copied()
            .filter(|n| !theirs.contains(n))
            .collect();
        let extra: Vec<&str> = theirs
            .iter()
            .copied()
            .filter(|n| !registry.names().contains(n))
            .collect();
        let mut detail = Vec::new();
        if !lacks.is_empty() {
            detail.push(format!("it lacks {}", lacks.join(", ")));
        }
        if !extra.is_empty() {
            detail.push(format!("it has {} that the master lacks", extra.join(", ")));
        }
        if detail.is_empty() {
            detail.push("same names, different registry fingerprint".to_owned());
        }
        Err(Error::RegistryMismatch {
            rank: slot.rank,
            host: slot.host.clone(),
            detail: detail.join("; "),
        })
    }

    /// Opens a job for `task`; its results are read with [`Engine::next_outcome`].
    pub(crate) fn open_job(&mut self, task: &'static str, task_id: u64) -> u32 {
        // Ids wrap after 2^32 jobs; skip any still open.
        let mut id = self.next_job;
        while self.job(id).is_some() {
            id = id.wrapping_add(1);
        }
        self.next_job = id.wrapping_add(1);
        self.jobs.push(Job {
            id,
            task,
            task_id,
            outstanding: 0,
            ready_items: 0,
            ready: VecDeque::new(),
            abandoned: false,
            item_ns: None,
            last_chunk: 1,
            journal: None,
            journal_error: None,
        });
        tracing::debug!(job = id, task, "pool: job opened");
        id
    }

    /// Appends job `id`'s successful results to `journal` as they arrive.
    pub(crate) fn set_journal(&mut self, id: u32, journal: Journal) {
        if let Some(job) = job_mut(&mut self.jobs, id) {
            job.journal = Some(journal);
        }
        signals::set_note(self.journal_note());
    }

    /// What an interrupted run keeps, one `pool:   ...` line per open journal.
    fn journal_note(&self) -> String {
        let mut note = String::new();
        for journal in self.jobs.iter().filter_map(|j| j.journal.as_ref()) {
            note.push_str(&format!(
                "pool:   results received so far are in the journal {}: run again with it to \
                 resume\n",
                journal.path().display()
            ));
        }
        if note.is_empty() {
            note.push_str(
                "pool:   no journal was set (Options::journal): a rerun starts from the beginning\n",
            );
        }
        note
    }

    /// True once appending to job `id`'s journal failed.
    pub(crate) fn journal_failed(&self, id: u32) -> bool {
        self.job(id).is_some_and(|j| j.journal_error.is_some())
    }

    /// Flushes and closes job `id`'s journal; returns the first failure to write it.
    pub(crate) fn finish_journal(&mut self, id: u32) -> Result<(), Error> {
        let Some(job) = job_mut(&mut self.jobs, id) else {
            return Ok(());
        };
        if let Some(e) = job.journal_error.take() {
            return Err(e);
        }
        let flushed = match job.journal.take() {
            Some(mut journal) => journal.flush(),
            None => Ok(()),
        };
        signals::set_note(self.journal_note());
        flushed
    }

    /// Closes a job whose reader is gone; results still on their way are dropped on arrival.
    pub(crate) fn close_job(&mut self, id: u32) {
        let Some(job) = job_mut(&mut self.jobs, id) else {
            return;
        };
        tracing::debug!(job = id, task = job.task, "pool: job closed");
        job.ready_items = 0;
        job.ready.clear();
        // Items queued but never sent are simply forgotten; those in flight are dropped
        // when they arrive.
        self.queued.retain(|q| q.chunk.job != id);
        job.outstanding = self
            .workers
            .iter()
            .flat_map(|w| &w.in_flight)
            .filter(|c| c.job == id)
            .map(|c| u64::from(c.count))
            .sum();
        job.abandoned = true;
        if job.outstanding == 0 {
            self.jobs.retain(|j| j.id != id);
        }
    }

    /// Items of the job not read yet (sent, queued, or arrived).
    pub(crate) fn outstanding(&self, id: u32) -> u64 {
        self.job(id).map_or(0, |j| j.outstanding)
    }

    /// Keeps a frame's buffer for reuse, within limits.
    fn recycle(&mut self, frame: Vec<u8>) {
        if self.spare.len() < MAX_SPARE && frame.capacity() <= SOFT_FRAME_LIMIT * 2 {
            self.spare.push(frame);
        }
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .or_else(|| self.link.recycle())
            .unwrap_or_default()
    }

    /// Encodes one input as a single-item chunk and queues it for the next free worker.
    pub(crate) fn submit(&mut self, id: u32, source: &mut dyn Source) {
        let pace = Pace {
            chunksize: Some(1),
            ..Pace::default()
        };
        if let Some((chunk, frame)) = self.build_chunk(id, source, pace) {
            self.queued.push_back(Queued { chunk, frame });
        }
    }

    /// Cuts the next chunk of `source` for job `id`. Inputs that fail to encode become failed
    /// outcomes of the job right away.
    fn build_chunk(
        &mut self,
        id: u32,
        source: &mut dyn Source,
        pace: Pace,
    ) -> Option<(Chunk, Vec<u8>)> {
        let workers = self.workers.len();
        let job = job_mut(&mut self.jobs, id)?;
        let task_id = job.task_id;
        let chunksize = pace
            .chunksize
            .unwrap_or_else(|| adaptive_chunk(job.item_ns, source.remaining_hint(), workers));
        job.last_chunk = chunksize;
        let mut frame = self.buffer();
        loop {
            source.skip_done();
            if source.exhausted() {
                self.recycle(frame);
                return None;
            }
            let first = source.next_index();
            protocol::begin_task_frame(&mut frame, id, task_id, first);
            let fill = source.fill(&mut frame, chunksize.max(1), SOFT_FRAME_LIMIT);
            let job = job_mut(&mut self.jobs, id)?;
            let any_failed = fill.failed.is_some();
            if let Some((index, message)) = fill.failed {
                job.outstanding += 1;
                job.ready_items += 1;
                job.ready.push_back(Ready::Failed {
                    worker: None,
                    next_index: index,
                    left: 1,
                    kind: TaskErrorKind::BadInput,
                    message,
                });
            }
            if fill.count > 0 {
                if frame.len() > protocol::MAX_FRAME {
                    job.outstanding += u64::from(fill.count);
                    job.ready_items += u64::from(fill.count);
                    job.ready.push_back(Ready::Failed {
                        worker: None,
                        next_index: first,
                        left: fill.count,
                        kind: TaskErrorKind::BadInput,
                        message: format!(
                            "the arguments encode to {} bytes, more than one MPI message can \
                             carry (2 GiB); pass less data per task",
                            frame.len()
                        ),
                    });
                    frame = Vec::new();
                    continue;
                }
                protocol::finish_task_frame(&mut frame, fill.count);
                job.outstanding += u64::from(fill.count);
                let chunk = Chunk {
                    job: id,
                    first,
                    count: fill.count,
                };
                return Some((chunk, frame));
            }
            if any_failed {
                // The failure is ready to be read; the next call goes on after it.
                self.recycle(frame);
                return None;
            }
        }
    }

    fn send_chunk(&mut self, w: usize, chunk: Chunk, frame: Vec<u8>) {
        self.workers[w].in_flight.push_back(chunk);
        self.in_flight += 1;
        self.meter.sent(w, frame.len());
        self.link.send(w, Tag::Task, frame);
    }

    /// Fills free worker slots: queued single tasks first, then chunks of `source`.
    ///
    /// A job whose reader lags (results arrived but not read) gets no new chunks until it
    /// catches up, so the master holds at most about two windows of a job's items.
    pub(crate) fn dispatch(&mut self, mut source: Option<(u32, &mut dyn Source)>, pace: Pace) {
        let n = self.workers.len();
        if let Some((id, _)) = source {
            if let Some(job) = self.job(id) {
                let window = n
                    .saturating_mul(pace.prefetch.max(1))
                    .saturating_mul(job.last_chunk) as u64;
                if job.ready_items > window {
                    source = None;
                }
            }
        }
        loop {
            let mut sent = false;
            for k in 0..n {
                let w = (self.cursor + k) % n;
                if self.workers[w].in_flight.len() >= pace.prefetch.max(1) {
                    continue;
                }
                if let Some(q) = self.queued.pop_front() {
                    self.send_chunk(w, q.chunk, q.frame);
                    sent = true;
                } else if let Some((id, src)) = source.as_mut() {
                    if let Some((chunk, frame)) = self.build_chunk(*id, *src, pace) {
                        self.send_chunk(w, chunk, frame);
                        sent = true;
                    }
                }
            }
            if !sent {
                break;
            }
        }
        self.cursor = (self.cursor + 1) % n.max(1);
    }

    /// Called before the master waits for job `id`'s results, with none of them unread:
    /// when every worker is full, cuts the next chunk now, so that the first worker to
    /// answer gets it the moment its reply arrives (see `handle`). The master's work on that
    /// reply (decoding, routing, cutting the chunk after) then overlaps the worker's next
    /// task instead of delaying it. The master still holds at most two windows of inputs:
    /// one in flight, and this chunk.
    pub(crate) fn stage(&mut self, id: u32, source: &mut dyn Source, pace: Pace) {
        let full = self
            .workers
            .iter()
            .all(|w| w.in_flight.len() >= pace.prefetch.max(1));
        if full && self.queued.is_empty() && self.job(id).is_some_and(|j| j.ready_items == 0) {
            if let Some((chunk, frame)) = self.build_chunk(id, source, pace) {
                self.queued.push_back(Queued { chunk, frame });
            }
        }
    }

    /// Forgets the chunks of job `id` that were cut but not sent yet (the caller stops
    /// sending its inputs): they never run and yield no outcome.
    pub(crate) fn unstage(&mut self, id: u32) {
        let mut dropped = 0u64;
        self.queued.retain(|q| {
            let keep = q.chunk.job != id;
            if !keep {
                dropped += u64::from(q.chunk.count);
            }
            keep
        });
        if let Some(job) = job_mut(&mut self.jobs, id) {
            job.outstanding -= dropped;
        }
    }

    /// Handles every frame that has already arrived, without waiting.
    pub(crate) fn receive_available(&mut self) {
        while let Some(incoming) = self.link.try_recv() {
            self.handle(incoming.worker, incoming.tag, incoming.bytes);
        }
    }

    /// Waits for one frame and handles it.
    ///
    /// # Panics
    ///
    /// If nothing is in flight: waiting then would hang forever, a bug in the caller.
    pub(crate) fn receive_one(&mut self) {
        assert!(
            self.in_flight > 0,
            "pool internal error: waiting for results with no task in flight"
        );
        let incoming = self.recv();
        self.handle(incoming.worker, incoming.tag, incoming.bytes);
    }

    /// [`Engine::receive_one`] without its check that something is in flight.
    #[cfg(test)]
    fn receive_one_unchecked_for_tests(&mut self) {
        let incoming = self.recv();
        self.handle(incoming.worker, incoming.tag, incoming.bytes);
    }

    /// Waits for the next frame. A signal that interrupted the master, or a worker on this
    /// host that died, ends the job instead.
    fn recv(&mut self) -> crate::transport::Incoming {
        let pids = &self.local_pids;
        let (checked, next) = &mut self.liveness;
        let mut dead = None;
        let mut stop = || {
            if signals::pending().is_some() {
                return true;
            }
            if !pids.is_empty() && checked.elapsed() >= LIVENESS_EVERY {
                // A few processes per look, in turn: the cost stays flat however many
                // workers share the host.
                *checked = Instant::now();
                for _ in 0..LIVENESS_BATCH.min(pids.len()) {
                    *next = (*next + 1) % pids.len();
                    if !alive(pids[*next].1) {
                        dead = Some(pids[*next]);
                        return true;
                    }
                }
            }
            false
        };
        match self.link.recv(&mut stop) {
            Some(incoming) => incoming,
            None => match dead {
                Some((w, pid)) => self.worker_died(w, pid),
                None => self.interrupted(),
            },
        }
    }

    /// Ends the job after a SIGINT/SIGTERM (see [`crate::signals`]): reports what each rank
    /// held, syncs journals, and aborts every rank with status 128 + the signal number.
    pub(crate) fn interrupted(&mut self) -> ! {
        let sig = signals::pending().unwrap_or(libc::SIGTERM);
        // The signal handler has already written the headline and the journal note: mpirun
        // sends SIGKILL milliseconds after SIGTERM, so the handler says first what matters.
        self.end_job(None, 128 + sig)
    }

    /// Ends the job after worker `w` (process `pid`, on this host) died.
    fn worker_died(&mut self, w: usize, pid: u32) -> ! {
        let slot = &self.workers[w];
        let held = match slot.in_flight.front() {
            Some(chunk) => format!(
                "while it held task `{}` {}",
                self.job(chunk.job).map_or("?", |j| j.task),
                items(chunk.first, chunk.count)
            ),
            None => "while it held no task".to_owned(),
        };
        let headline = format!(
            "pool: rank {} (pid {pid} on {}) died {held}: the task crashed its process \
             (a segfault or abort in native code, or the out-of-memory killer); ending the job",
            slot.rank, slot.host
        );
        self.end_job(Some(headline), 1)
    }

    /// Reports what each rank held and what is kept, syncs journals, and aborts every rank.
    fn end_job(&mut self, headline: Option<String>, code: i32) -> ! {
        let journal_note = headline.is_some().then(|| self.journal_note());
        let mut report = headline.unwrap_or_default();
        let mut lost = 0u64;
        let mut lines = 0usize;
        for slot in &self.workers {
            for chunk in &slot.in_flight {
                lost += u64::from(chunk.count);
                lines += 1;
                if lines <= MAX_REPORT_LINES {
                    let task = self.job(chunk.job).map_or("?", |j| j.task);
                    report.push_str(&format!(
                        "\npool:   rank {} on {} held task `{task}` {}",
                        slot.rank,
                        slot.host,
                        items(chunk.first, chunk.count)
                    ));
                }
            }
        }
        if lines > MAX_REPORT_LINES {
            report.push_str(&format!(
                "\npool:   ... and {} more chunks",
                lines - MAX_REPORT_LINES
            ));
        }
        if lost == 0 {
            report.push_str("\npool:   no task was in flight");
        } else {
            report.push_str(&format!("\npool:   those {lost} results are lost"));
        }
        if let Some(note) = journal_note {
            report.push('\n');
            report.push_str(note.trim_end());
        }
        // Report first: launchers may send SIGKILL milliseconds after SIGTERM.
        eprintln!("{}", report.trim_start());
        tracing::error!(code, lost, "pool: ending the job");
        for job in &mut self.jobs {
            if let Some(journal) = job.journal.as_mut() {
                journal.sync();
            }
        }
        // What the workers did until now, if POOL_STATS asks: a run stopped by its time limit
        // is the one whose statistics are wanted.
        crate::stats::report_at_exit(|| self.stats());
        self.link.abort(code)
    }

    fn handle(&mut self, w: usize, tag: i32, bytes: Vec<u8>) {
        let rank = self.link.rank_of(w);
        if Tag::from_raw(tag) != Some(Tag::Result) {
            eprintln!(
                "pool: ignoring an unexpected frame from rank {rank} (tag {tag}, {} bytes)",
                bytes.len()
            );
            return;
        }
        let Some(chunk) = self
            .workers
            .get_mut(w)
            .and_then(|s| s.in_flight.pop_front())
        else {
            eprintln!("pool: ignoring a RESULT frame from rank {rank}, which holds no task");
            return;
        };
        self.in_flight -= 1;
        // The worker has room again: send it the chunk cut ahead for it before anything else.
        if let Some(next) = self.queued.pop_front() {
            self.send_chunk(w, next.chunk, next.frame);
        }
        self.meter.received(w, bytes.len(), chunk.count);
        let ready = match ResultFrame::decode(&bytes) {
            Ok(f)
                if f.header.job == chunk.job
                    && f.header.first == chunk.first
                    && f.header.count == chunk.count =>
            {
                self.meter.busy(w, f.header.busy_ns);
                if let Some(job) = job_mut(&mut self.jobs, chunk.job) {
                    job.observe(f.header.busy_ns, f.header.count);
                    if let Some(journal) = job.journal.as_mut() {
                        if let Err(e) = journal.append_frame(&f.header, &bytes) {
                            job.journal = None;
                            job.journal_error = Some(e);
                        }
                    }
                }
                Ready::Frame {
                    worker: w,
                    next_index: chunk.first,
                    outcomes: Outcomes::new(&f.header),
                    frame: bytes,
                }
            }
            Ok(f) => {
                // The worker could not read the TASK frame and says why in a single outcome.
                let mut outcomes = Outcomes::new(&f.header);
                let message = match outcomes.next(&bytes) {
                    Some((Status::Rejected, m)) if f.header.count == 1 => {
                        String::from_utf8_lossy(m).into_owned()
                    }
                    _ => format!(
                        "RESULT frame from rank {rank} is for job {} items {}+{}, but the oldest \
                         chunk it holds is job {} items {}+{}",
                        f.header.job,
                        f.header.first,
                        f.header.count,
                        chunk.job,
                        chunk.first,
                        chunk.count
                    ),
                };
                failed_chunk(w, chunk, TaskErrorKind::Rejected, message)
            }
            Err(e) => failed_chunk(
                w,
                chunk,
                TaskErrorKind::BadOutput,
                format!("malformed reply from rank {rank}: {e}"),
            ),
        };
        let Some(job) = job_mut(&mut self.jobs, chunk.job) else {
            return;
        };
        if job.abandoned {
            job.outstanding = job.outstanding.saturating_sub(u64::from(chunk.count));
            if job.outstanding == 0 {
                self.jobs.retain(|j| j.id != chunk.job);
            }
            if let Ready::Frame { frame, .. } = ready {
                self.recycle(frame);
            }
        } else {
            job.ready_items += u64::from(chunk.count);
            job.ready.push_back(ready);
        }
    }

    /// Reads the next outcome of job `id` that has arrived, if any, through `read`.
    pub(crate) fn next_outcome<R>(
        &mut self,
        id: u32,
        read: impl FnOnce(Origin<'_>, Raw<'_>) -> R,
    ) -> Option<R> {
        let job = job_mut(&mut self.jobs, id)?;
        let front = job.ready.front_mut()?;
        // Count the outcome as read before `read` runs: it decodes with the user's
        // `Deserialize`, which may panic.
        job.outstanding -= 1;
        job.ready_items -= 1;
        let (result, finished) = match front {
            Ready::Frame {
                worker,
                next_index,
                outcomes,
                frame,
            } => {
                let slot = &self.workers[*worker];
                let origin = Origin {
                    index: *next_index,
                    task: job.task,
                    rank: slot.rank,
                    host: &slot.host,
                };
                *next_index += 1;
                // The frame was validated on arrival, so an outcome is always there.
                let raw = match outcomes.next(frame) {
                    Some((Status::Ok, bytes)) => Raw::Value(bytes),
                    Some((status, message)) => {
                        self.meter.failed(Some(*worker));
                        Raw::Error(
                            kind_of(status),
                            std::str::from_utf8(message).unwrap_or("(message not UTF-8)"),
                        )
                    }
                    None => {
                        self.meter.failed(Some(*worker));
                        Raw::Error(TaskErrorKind::BadOutput, "missing outcome")
                    }
                };
                (read(origin, raw), outcomes.remaining() == 0)
            }
            Ready::Failed {
                worker,
                next_index,
                left,
                kind,
                message,
            } => {
                let (rank, host) = match worker {
                    Some(w) => (self.workers[*w].rank, self.workers[*w].host.as_str()),
                    None => (0, "the master"),
                };
                let origin = Origin {
                    index: *next_index,
                    task: job.task,
                    rank,
                    host,
                };
                *next_index += 1;
                *left -= 1;
                self.meter.failed(*worker);
                (read(origin, Raw::Error(*kind, message)), *left == 0)
            }
        };
        if finished {
            if let Some(Ready::Frame { frame, .. }) = job.ready.pop_front() {
                self.recycle(frame);
            }
        }
        Some(result)
    }

    /// Stops every worker with exit status `code` and waits until each has said BYE, dropping
    /// whatever results still arrive.
    pub(crate) fn shutdown(&mut self, code: i32) {
        tracing::info!(code, "pool: stopping the workers");
        for w in 0..self.workers.len() {
            self.link.send(w, Tag::Stop, protocol::encode_stop(code));
        }
        let mut left = self.workers.len();
        while left > 0 {
            let incoming = self.recv();
            match Tag::from_raw(incoming.tag) {
                Some(Tag::Bye) => {
                    left -= 1;
                    let rank = self.link.rank_of(incoming.worker);
                    tracing::debug!(rank, "pool: worker stopped");
                }
                Some(Tag::Result) => {}
                _ => eprintln!(
                    "pool: ignoring an unexpected frame from rank {} during shutdown (tag {})",
                    self.link.rank_of(incoming.worker),
                    incoming.tag
                ),
            }
        }
        self.link.close();
    }
}

/// Every item of `chunk`, sent to worker `w`, failed the same way.
fn failed_chunk(w: usize, chunk: Chunk, kind: TaskErrorKind, message: String) -> Ready {
    Ready::Failed {
        worker: Some(w),
        next_index: chunk.first,
        left: chunk.count,
        kind,
        message,
    }
}

/// False once process `pid` has died: it no longer exists, or it is a zombie its launcher has
/// not reaped yet.
fn alive(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => match stat.iter().rposition(|&b| b == b')') {
            Some(end) => !matches!(stat.get(end + 2), Some(b'Z' | b'X')),
            None => true,
        },
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
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

fn job_mut(jobs: &mut [Job], id: u32) -> Option<&mut Job> {
    jobs.iter_mut().find(|j| j.id == id)
}

fn kind_of(status: Status) -> TaskErrorKind {
    match status {
        Status::Failed => TaskErrorKind::Failed,
        Status::Panicked => TaskErrorKind::Panicked,
        Status::BadInput => TaskErrorKind::BadInput,
        Status::BadOutput | Status::Ok => TaskErrorKind::BadOutput,
        Status::Rejected => TaskErrorKind::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Incoming;

    /// A transport that replays scripted frames from one worker (rank 1).
    struct Scripted {
        incoming: VecDeque<Incoming>,
    }

    impl MasterLink for Scripted {
        fn workers(&self) -> usize {
            1
        }
        fn rank_of(&self, worker: usize) -> usize {
            worker + 1
        }
        fn send(&mut self, _: usize, _: Tag, _: Vec<u8>) {}
        fn recv(&mut self, _: &mut dyn FnMut() -> bool) -> Option<Incoming> {
            Some(self.incoming.pop_front().expect("the script ran out"))
        }
        fn try_recv(&mut self) -> Option<Incoming> {
            None
        }
        fn recycle(&mut self) -> Option<Vec<u8>> {
            None
        }
        fn close(&mut self) {}
        fn abort(&mut self, code: i32) -> ! {
            panic!("abort({code})")
        }
    }

    fn frame(tag: Tag, bytes: Vec<u8>) -> Incoming {
        Incoming {
            worker: 0,
            tag: tag as i32,
            bytes,
        }
    }

    fn hello() -> Incoming {
        let registry = Registry::global();
        let hello = Hello {
            version: protocol::VERSION,
            fingerprint: registry.fingerprint(),
            pid: std::process::id(),
            host: "node7".into(),
            tasks: registry.names().iter().map(|&n| n.to_owned()).collect(),
        };
        frame(Tag::Hello, hello.encode())
    }

    struct One(bool);

    impl Source for One {
        fn next_index(&self) -> u64 {
            0
        }
        fn exhausted(&self) -> bool {
            self.0
        }
        fn remaining_hint(&self) -> Option<u64> {
            Some(1)
        }
        fn fill(&mut self, frame: &mut Vec<u8>, _: usize, _: usize) -> Fill {
            self.0 = true;
            protocol::push_item::<()>(frame, |_| Ok(())).expect("push");
            Fill {
                count: 1,
                failed: None,
            }
        }
    }

    /// Sends one task to rank 1, then feeds the engine `reply`; returns the task's outcome.
    fn outcome_after(reply: Incoming) -> (TaskErrorKind, String) {
        let mut engine = Engine::new(Box::new(Scripted {
            incoming: VecDeque::from([hello(), reply]),
        }));
        engine.handshake().expect("handshake");
        let job = engine.open_job("t::f", 1);
        engine.dispatch(Some((job, &mut One(false))), Pace::default());
        engine.receive_one();
        engine
            .next_outcome(job, |origin, raw| {
                assert_eq!((origin.rank, origin.host, origin.index), (1, "node7", 0));
                match raw {
                    Raw::Error(kind, message) => (kind, message.to_owned()),
                    Raw::Value(v) => panic!("a malformed reply decoded to {v:?}"),
                }
            })
            .expect("an outcome")
    }

    #[test]
    fn malformed_frames_are_errors_that_name_the_sender() {
        // A HELLO that does not decode.
        let mut engine = Engine::new(Box::new(Scripted {
            incoming: VecDeque::from([frame(Tag::Hello, vec![1, 2, 3])]),
        }));
        let e = engine.handshake().expect_err("garbage HELLO").to_string();
        assert!(e.starts_with("protocol error from rank 1: "), "{e}");
        // A RESULT that is not one.
        let (kind, message) = outcome_after(frame(Tag::Result, vec![0xff; 7]));
        assert_eq!(kind, TaskErrorKind::BadOutput);
        assert!(
            message.starts_with("malformed reply from rank 1: "),
            "{message}"
        );
        // A RESULT for another chunk.
        let mut other = Vec::new();
        protocol::begin_result_frame(&mut other, 99, 5);
        protocol::push_message(&mut other, Status::Failed, "x");
        protocol::finish_result_frame(&mut other, 1, 0);
        let (kind, message) = outcome_after(frame(Tag::Result, other));
        assert_eq!(kind, TaskErrorKind::Rejected);
        assert!(
            message.contains("RESULT frame from rank 1 is for job 99"),
            "{message}"
        );
    }

    #[test]
    fn frames_nobody_asked_for_are_ignored() {
        let mut valid = Vec::new();
        protocol::begin_result_frame(&mut valid, 0, 0);
        protocol::push_outcome::<()>(&mut valid, Status::Ok, |b| {
            b.push(42);
            Ok(())
        })
        .expect("push");
        protocol::finish_result_frame(&mut valid, 1, 0);
        let mut engine = Engine::new(Box::new(Scripted {
            incoming: VecDeque::from([
                hello(),
                // A RESULT from a rank holding no task, and an unknown tag: both ignored.
                frame(Tag::Result, valid.clone()),
                Incoming {
                    worker: 0,
                    tag: 77,
                    bytes: vec![1; 1 << 10],
                },
                frame(Tag::Result, valid),
            ]),
        }));
        engine.handshake().expect("handshake");
        engine.receive_one_unchecked_for_tests();
        engine.receive_one_unchecked_for_tests();
        let job = engine.open_job("t::f", 1);
        engine.dispatch(Some((job, &mut One(false))), Pace::default());
        engine.receive_one();
        let value = engine.next_outcome(job, |_, raw| match raw {
            Raw::Value(v) => v.to_vec(),
            Raw::Error(_, m) => panic!("{m}"),
        });
        assert_eq!(value, Some(vec![42]));
    }

    #[test]
    fn adaptive_chunks() {
        // Unmeasured: one at a time.
        assert_eq!(adaptive_chunk(None, None, 4), 1);
        // Tiny tasks: large chunks, capped.
        assert_eq!(adaptive_chunk(Some(100.0), None, 4), 10_000);
        assert_eq!(adaptive_chunk(Some(0.0), None, 4), 1 << 16);
        // Long tasks: one by one.
        assert_eq!(adaptive_chunk(Some(5e6), None, 4), 1);
        // The tail is split among the workers.
        assert_eq!(adaptive_chunk(Some(100.0), Some(800), 4), 100);
        assert_eq!(adaptive_chunk(Some(100.0), Some(3), 4), 1);
        assert_eq!(adaptive_chunk(Some(100.0), Some(0), 4), 1);
    }
}
