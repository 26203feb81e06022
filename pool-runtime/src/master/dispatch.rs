//! Cutting chunks from a job's inputs and sending them to workers with room.

use super::backup::MAX_KEPT_FRAME;
use super::jobs::Chunk;
use super::schedule::{self, ChunkInput, ChunkPlan};
use super::{CutChunk, Master};
use crate::error::TaskErrorKind;
use crate::frame::{self, Part};
use crate::protocol::{self, Tag};

/// An adaptive chunk stops growing once its frame (out-of-band parts counted) is this large
/// (a chunk size the caller set is kept, as [`crate::Options::chunksize`] says). Moving
/// 1 MiB takes 100 µs or more, against a few µs for a message, so larger chunks save
/// nothing; but each chunk's inputs and results live until it is answered. With 8 MiB,
/// 1 MiB inputs went out eight to a chunk: up to 25 owned inputs were alive on the master
/// at once (each worker's window), and the allocator gave each new one memory it had just
/// returned to the kernel, to be faulted in and zeroed again; and eight results came back
/// at a time, more than the master's prepared receive memory kept up with (measured with
/// `examples/bench --workload payload --payload-mib 1`, see BENCHMARKS.md).
const SOFT_FRAME_LIMIT: usize = 1 << 20;

/// A job's inputs, as the master sees them: the typed layer encodes them on demand.
pub(crate) trait JobInputs {
    /// Index of the next input.
    fn next_index(&self) -> u64;
    /// True once no more inputs will come.
    fn exhausted(&self) -> bool;
    /// How many inputs are certainly left, when the input says (`size_hint`).
    fn remaining_hint(&self) -> Option<u64>;
    /// Passes over inputs that are not to be sent (their results are already known), so
    /// that [`JobInputs::next_index`] is the next one to send.
    fn skip_done(&mut self) {}
    /// Appends up to `max` encoded inputs to `frame` as items, until the frame holds
    /// `max_bytes` (its out-of-band `parts` counted). Stops at the first input that fails to
    /// encode and returns it in [`Encoded::failed`] (it is not in the frame). An input may
    /// add a part (see [`crate::frame`]) only when `parts` is `Some`.
    fn encode_into(
        &mut self,
        frame: &mut Vec<u8>,
        parts: Option<&mut Vec<Part>>,
        max: usize,
        max_bytes: usize,
    ) -> Encoded;
}

/// What [`JobInputs::encode_into`] did.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) count: u32,
    pub(crate) failed: Option<(u64, String)>,
}

impl Master {
    /// Encodes one input as a single-item chunk and queues it for the next free worker.
    pub(crate) fn submit(&mut self, id: u32, inputs: &mut dyn JobInputs) {
        if let Some(cut) = self.cut_chunk(id, None, inputs, ChunkPlan::single()) {
            self.cut_ahead.push_back(cut);
        }
    }

    /// Fills free worker slots: chunks cut ahead first, then chunks of `inputs`.
    ///
    /// A job whose reader lags (results arrived but not read) gets no new chunks until it
    /// catches up, so the master holds at most about two windows of a job's items.
    pub(crate) fn dispatch(
        &mut self,
        mut inputs: Option<(u32, &mut dyn JobInputs)>,
        plan: ChunkPlan,
    ) {
        let mut depth = plan.depth();
        if let Some((id, _)) = inputs {
            if let Some(job) = self.jobs.get(id) {
                if schedule::window_full(job.ready_items, self.workers.len(), plan, job.last_chunk)
                {
                    inputs = None;
                } else if plan.chunksize.is_none() && job.item_ns.get().is_none() {
                    // Until the task is measured its chunks hold one item: one per worker
                    // is enough, and the next round is cut to the measured size.
                    depth = 1;
                }
            }
        }
        let workers = &self.workers;
        self.free.set_depth(depth, |w| workers[w].load());
        // Workers passed over in a row: one that may not take a retry (it failed there)
        // lets the next free worker have it.
        let mut passed = 0;
        loop {
            let workers = &self.workers;
            let Some(w) = self.free.next(|w| workers[w].load()) else {
                break;
            };
            let next = match self.take_cut_ahead(w) {
                Some(cut) => Some(cut),
                None => match inputs.as_mut() {
                    Some((id, src)) => match self.cut_chunk(*id, Some(w), *src, plan) {
                        Some(cut) => Some(cut),
                        None if plan.speculative && src.exhausted() => self.backup_copy(w, *id),
                        None => None,
                    },
                    None => None,
                },
            };
            let Some(cut) = next else {
                if self.cut_ahead.is_empty() || passed >= self.free.queued() {
                    break;
                }
                self.free.pass(w);
                passed += 1;
                continue;
            };
            passed = 0;
            self.send_chunk(w, cut);
            self.free.filled(w, self.workers[w].load());
        }
    }

    /// Called before the master waits for job `id`'s results, with none of them unread:
    /// when every worker is full, cuts the next chunk now, so that the first worker to
    /// answer gets it the moment its reply arrives (see `receive`). The master's work on that
    /// reply (decoding, routing, cutting the chunk after) then overlaps the worker's next
    /// task instead of delaying it. The master still holds at most two windows of inputs:
    /// one in flight, and this chunk.
    pub(crate) fn cut_ahead(&mut self, id: u32, inputs: &mut dyn JobInputs, plan: ChunkPlan) {
        let workers = &self.workers;
        let full = self.free.all_full(|w| workers[w].load());
        if full
            && self.cut_ahead.is_empty()
            && self.jobs.get(id).is_some_and(|j| j.ready_items == 0)
        {
            if let Some(cut) = self.cut_chunk(id, None, inputs, plan) {
                self.cut_ahead.push_back(cut);
            }
        }
    }

    /// Makes sure that no send from memory lent for job `id` (see [`crate::frame`]) is under
    /// way: sends no more of its chunks, waits for those in flight to be answered (their
    /// workers then have every byte), and completes the sends. The job's lender may then
    /// end its borrow.
    pub(crate) fn settle_lent(&mut self, id: u32) {
        loop {
            self.drop_cut_ahead(id);
            if self.jobs.get(id).is_none_or(|j| j.in_flight == 0) {
                break;
            }
            self.receive_one();
        }
        self.link.settle_lent();
    }

    /// Forgets the chunks of job `id` that were cut but not sent (the caller stops sending
    /// its inputs): they never run and yield no outcome.
    pub(crate) fn drop_cut_ahead(&mut self, id: u32) {
        let mut dropped = 0u64;
        self.cut_ahead.retain(|c| {
            let keep = c.chunk.job != id;
            if !keep {
                dropped += u64::from(c.chunk.count);
            }
            keep
        });
        if let Some(job) = self.jobs.get_mut(id) {
            job.outstanding -= dropped;
        }
    }

    /// Cuts the next chunk of `inputs` for job `id`, sized for worker `w` (any worker: `None`).
    /// Inputs that fail to encode become failed outcomes of the job right away.
    fn cut_chunk(
        &mut self,
        id: u32,
        w: Option<usize>,
        inputs: &mut dyn JobInputs,
        plan: ChunkPlan,
    ) -> Option<CutChunk> {
        let workers = self.workers.len();
        let depth = plan.depth();
        let speeds = &self.speeds;
        let job = self.jobs.get_mut(id)?;
        let task_id = job.task_id;
        let size = plan.chunksize.unwrap_or_else(|| {
            schedule::chunk_items(ChunkInput {
                item_ns: job.item_ns.get(),
                slowness: w.map_or(1.0, |w| speeds.slowness(w)),
                remaining: inputs.remaining_hint(),
                workers,
                depth,
                target_ns: schedule::target_chunk_ns(workers),
                floor_ns: schedule::tail_floor_ns(workers),
                largest_done: job.largest_done,
            })
        });
        job.last_chunk = size;
        let size = self.within_deadline(id, w, size.max(1), depth)?;
        let mut frame = self.take_buffer();
        // Parts are worth making only where the link sends them from their own memory.
        let out_of_band = self.link.out_of_band();
        let mut parts = Vec::new();
        loop {
            inputs.skip_done();
            if inputs.exhausted() {
                self.keep_buffer(frame);
                return None;
            }
            let first = inputs.next_index();
            protocol::begin_task_frame(&mut frame, id, task_id, first);
            // Parts are pushed only for inputs encoded: none when the loop goes round again.
            debug_assert!(parts.is_empty(), "parts of inputs not in the frame");
            let encoded = inputs.encode_into(
                &mut frame,
                out_of_band.then_some(&mut parts),
                size.max(1),
                if plan.chunksize.is_some() {
                    usize::MAX
                } else {
                    SOFT_FRAME_LIMIT
                },
            );
            let job = self.jobs.get_mut(id)?;
            let any_failed = encoded.failed.is_some();
            if let Some((index, message)) = encoded.failed {
                job.outstanding += 1;
                job.push_failed(None, index, 1, TaskErrorKind::BadInput, message);
            }
            if encoded.count > 0 {
                job.outstanding += u64::from(encoded.count);
                protocol::finish_task_frame(&mut frame, encoded.count);
                if job.journal.is_some() {
                    // What the journal records with each outcome, to check it on resume.
                    if let Ok(task) = protocol::TaskFrame::decode_parts(&frame, &parts) {
                        let digest = |(head, part): (&[u8], Option<usize>)| {
                            let part = part.map_or(&[][..], |p| parts[p].bytes());
                            crate::journal::digest_parts(&[head, part])
                        };
                        job.digests
                            .insert(first, task.parted_items().map(digest).collect());
                    }
                }
                let chunk = Chunk {
                    job: id,
                    first,
                    count: encoded.count,
                    seq: self.chunks_cut,
                };
                self.chunks_cut += 1;
                // Asked for, in the tail (or when the input does not say how much is left), a
                // copy of the chunk is kept if it has to wait behind another (see `backup`).
                let tail = plan.speculative
                    && inputs.remaining_hint().is_none_or(|left| {
                        left <= (2 * workers * depth) as u64 * u64::from(encoded.count)
                    });
                return Some(CutChunk {
                    chunk,
                    frame,
                    parts,
                    tail,
                    avoid: None,
                });
            }
            if any_failed {
                // The failure is ready to be read; the next call goes on after it.
                self.keep_buffer(frame);
                return None;
            }
        }
    }

    /// A copy for idle worker `w` of a chunk of job `id` that waits in another worker's queue.
    fn backup_copy(&mut self, w: usize, id: u32) -> Option<CutChunk> {
        let workers = &self.workers;
        let (chunk, frame) = self.backups.copy_for(w, id, |holder, seq| {
            workers[holder]
                .in_flight
                .iter()
                .skip(1)
                .any(|c| c.seq == seq)
        })?;
        tracing::debug!(
            job = id,
            first = chunk.first,
            count = chunk.count,
            "pool: a copy of a queued chunk for an idle worker"
        );
        Some(CutChunk {
            chunk,
            frame,
            parts: Vec::new(),
            tail: false,
            avoid: None,
        })
    }

    /// The oldest chunk cut ahead that worker `w` may take: a retry goes to another worker
    /// while one is not in quarantine.
    #[inline]
    pub(super) fn take_cut_ahead(&mut self, w: usize) -> Option<CutChunk> {
        if self.cut_ahead.front()?.avoid.is_none() {
            return self.cut_ahead.pop_front();
        }
        self.take_cut_ahead_avoiding(w)
    }

    /// [`Master::take_cut_ahead`] when the oldest chunk is a retry: out of line, so that a
    /// reply's path holds no search of the queue.
    #[inline(never)]
    fn take_cut_ahead_avoiding(&mut self, w: usize) -> Option<CutChunk> {
        let others = self.workers.len() - self.quarantined > 1;
        let at = self
            .cut_ahead
            .iter()
            .position(|c| !(others && c.avoid == Some(w)))?;
        self.cut_ahead.remove(at)
    }

    /// Sends a chunk to worker `w`: the frame leaves before the bookkeeping that need not
    /// precede it (a worker that answered waits for this frame).
    pub(super) fn send_chunk(&mut self, w: usize, cut: CutChunk) {
        let CutChunk {
            chunk,
            frame,
            parts,
            tail,
            ..
        } = cut;
        let queued = !self.workers[w].in_flight.is_empty();
        if let Some(job) = self.jobs.get_mut(chunk.job) {
            job.in_flight += u64::from(chunk.count);
            if job.retries > 0 || job.timeout.is_some() {
                // The parts' memory is shared, not copied.
                let kept_parts = parts.iter().map(Part::share).collect();
                job.kept.insert(chunk.seq, (frame.clone(), kept_parts));
            }
        }
        if tail && queued && frame.len() <= MAX_KEPT_FRAME && parts.is_empty() {
            self.backups.keep(w, chunk, frame.clone());
        }
        self.meter.sent(w, frame::full_len(&frame, &parts));
        self.link.send_parts(w, Tag::Task, frame, parts);
        self.workers[w].in_flight.push_back(chunk);
        self.in_flight += 1;
        self.chunks_sent += 1;
        if !queued {
            // An idle worker starts it now.
            self.front_started(w);
        }
    }
}
