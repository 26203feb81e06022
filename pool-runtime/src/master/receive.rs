//! Taking in RESULT frames, routing them to their job, and handing outcomes to the reader.

use super::backup::Answer;
use super::jobs::{Arrived, Attempt, Chunk, FrameExtra, Job};
use super::{CutChunk, Master, schedule};
use crate::error::TaskErrorKind;
use crate::frame::{self, Part};
use crate::protocol::{self, Outcomes, ResultFrame, ResultHeader, Status, Tag, TaskFrame};
use crate::transport::Incoming;

impl Master {
    /// Handles the frames that have already arrived, without waiting.
    ///
    /// It stops looking early once there are no more chunks out than were sent during this
    /// call (refills for the answers it handled): an answer to one of those needs its worker
    /// to have run it meanwhile. When tasks go one at a time, that spares a look per task
    /// that finds nothing (under MPI, a pass of its progress engine: 6% of the master's
    /// instructions per task, counted with callgrind). It is a count, not a check of which
    /// chunks are out: an older chunk's answer that arrived behind a quick answer to a refill
    /// waits for the next look, which every caller makes before it waits. Not while a
    /// timeout or backup copies are in play: they decide on what has arrived.
    pub(crate) fn receive_available(&mut self) {
        let sent_before = self.chunks_sent;
        while let Some(incoming) = self.link.try_recv() {
            self.handle_incoming(incoming);
            let sent_since = self.chunks_sent - sent_before;
            if self.in_flight as u64 <= sent_since && !self.timed && self.backups.is_empty() {
                break;
            }
        }
        self.check_timeouts();
    }

    /// Waits for one frame and handles it.
    ///
    /// # Panics
    ///
    /// If nothing is in flight: waiting then would hang forever, a bug in the caller.
    /// With every worker stuck past a timeout, the chunks that wait fail instead (see
    /// `timeout`); returns without a frame, too, when an item's time ran out meanwhile.
    pub(crate) fn receive_one(&mut self) {
        if self.in_flight == 0 && self.timed && self.usable_workers() == 0 {
            self.fail_unrunnable();
            return;
        }
        assert!(
            self.in_flight > 0,
            "pool internal error: waiting for results with no task in flight"
        );
        if let Some(incoming) = self.recv() {
            self.handle_incoming(incoming);
        }
        self.check_timeouts();
    }

    /// [`Master::receive_one`] without its check that something is in flight.
    #[cfg(test)]
    pub(super) fn receive_one_unchecked_for_tests(&mut self) {
        if let Some(incoming) = self.recv() {
            self.handle_incoming(incoming);
        }
    }

    pub(super) fn handle_incoming(&mut self, incoming: Incoming) {
        self.handle(
            incoming.worker,
            incoming.tag,
            incoming.bytes,
            incoming.parts,
        );
    }

    fn handle(&mut self, w: usize, tag: i32, bytes: Vec<u8>, parts: Vec<Part>) {
        if self.is_stuck(w) {
            // What it held was handed out again or failed when its time ran out.
            return;
        }
        if Tag::from_raw(tag) != Some(Tag::Result) {
            return self.handle_other(w, tag, bytes, parts);
        }
        let Some(chunk) = self
            .workers
            .get_mut(w)
            .and_then(|s| s.in_flight.pop_front())
        else {
            let rank = self.link.rank_of(w);
            eprintln!("pool: ignoring a RESULT frame from rank {rank}, which holds no task");
            return;
        };
        self.in_flight -= 1;
        // Its next chunk, if it holds one, starts now.
        self.front_started(w);
        // The worker has room again: send it the chunk cut ahead for it before anything else.
        match self.take_cut_ahead(w) {
            Some(next) if !self.workers[w].quarantined => self.send_chunk(w, next),
            Some(next) => {
                self.cut_ahead.push_front(next);
                self.free.freed(w);
            }
            None => self.free.freed(w),
        }
        if self.backups.answered(&chunk) == Some(Answer::Duplicate) {
            return self.drop_duplicate(w, chunk, bytes, &parts);
        }
        self.meter
            .received(w, frame::full_len(&bytes, &parts), chunk.count);
        // The usual result: whole, for an open job that reads it and has nothing to run again
        // or to journal. It is routed here in a few lines, what the others need is in
        // `route_result` (the master's time per tiny task is mostly fetching its code).
        let usual = parts.is_empty() && !self.workers[w].unsettled && chunk.count > 0;
        if let Some(job) = self.jobs.get_mut(chunk.job).filter(|job| {
            usual
                && job.retries == 0
                && job.kept.is_empty()
                && job.journal.is_none()
                && !job.abandoned
        }) {
            if let Ok(f) = ResultFrame::decode(&bytes).map(|f| f.header) {
                if chunk.answered_by(&f) {
                    self.meter.busy(w, f.busy_ns);
                    learn(job, &mut self.speeds, w, &f);
                    let arrived = Arrived::Frame {
                        worker: w,
                        next_index: chunk.first,
                        outcomes: Outcomes::new(&f),
                        frame: bytes,
                        left: chunk.count,
                        extra: None,
                    };
                    return job.arrive(chunk, arrived, chunk.count);
                }
            }
        }
        self.route_result(w, chunk, bytes, parts);
    }

    /// [`Master::handle`] of a result that is not the usual one: with parts, for a job with
    /// retries, a journal or a reader gone, or not what was asked for.
    #[inline(never)]
    fn route_result(&mut self, w: usize, chunk: Chunk, bytes: Vec<u8>, parts: Vec<Part>) {
        let (arrived, retried) = self.read_result(w, chunk, bytes, parts);
        let Some(job) = self.jobs.get_mut(chunk.job) else {
            return;
        };
        if !job.abandoned && retried < chunk.count {
            job.arrive(chunk, arrived, chunk.count - retried);
        } else {
            job.in_flight -= u64::from(chunk.count);
            self.drop_result(chunk, arrived);
        }
    }

    /// A frame from worker `w` that is not a RESULT: a fold's, or one to ignore.
    #[inline(never)]
    fn handle_other(&mut self, w: usize, tag: i32, mut bytes: Vec<u8>, parts: Vec<Part>) {
        if !parts.is_empty() {
            // Only results are decoded from their parts: anything else gets its bytes in place.
            bytes = frame::flatten(&bytes, &parts);
        }
        match Tag::from_raw(tag) {
            Some(Tag::Folded) => self.handle_folded(w, bytes),
            Some(Tag::Partial) => self.handle_partial(w, bytes),
            _ => eprintln!(
                "pool: ignoring an unexpected frame from rank {} (tag {tag}, {} bytes)",
                self.link.rank_of(w),
                bytes.len()
            ),
        }
    }

    /// Another copy of `chunk` answered first (see `backup`): its outcomes are already
    /// routed, and this answer only counts.
    #[cold]
    fn drop_duplicate(&mut self, w: usize, chunk: Chunk, bytes: Vec<u8>, parts: &[Part]) {
        self.meter.received(w, frame::full_len(&bytes, parts), 0);
        self.keep_buffer(bytes);
        if let Some(job) = self.jobs.get_mut(chunk.job) {
            job.in_flight -= u64::from(chunk.count);
            self.jobs.count_abandoned(chunk.job, chunk.count);
        }
    }

    /// What arrived for `chunk` that nobody reads: its job was abandoned (its reader is
    /// gone), or every item of it runs again.
    #[cold]
    fn drop_result(&mut self, chunk: Chunk, arrived: Arrived) {
        self.jobs.count_abandoned(chunk.job, chunk.count);
        if let Arrived::Frame { frame, .. } = arrived {
            self.keep_buffer(frame);
        }
    }

    /// Checks a RESULT frame that is not the usual one (see [`Master::handle`]) against the
    /// chunk it answers, sends its failed items again (with retries), journals it, and learns
    /// from the time it took. Returns what arrived, and how many of its items run again.
    fn read_result(
        &mut self,
        w: usize,
        chunk: Chunk,
        bytes: Vec<u8>,
        parts: Vec<Part>,
    ) -> (Arrived, u32) {
        let f = match ResultFrame::decode_parts(&bytes, &parts) {
            Ok(f) if chunk.answered_by(&f.header) => f,
            other => {
                let rank = self.workers[w].rank;
                return (wrong_result(w, rank, chunk, &bytes, other), 0);
            }
        };
        self.meter.busy(w, f.header.busy_ns);
        let retried = self.failures(w, chunk, &f.header, (&bytes, &parts));
        if let Some(job) = self.jobs.get_mut(chunk.job) {
            learn(job, &mut self.speeds, w, &f.header);
            if job.journal.is_some() {
                journal_result(job, chunk, &f.header, (&bytes, &parts), &retried);
            }
        }
        let left = chunk.count - retried.len() as u32;
        let extra = if parts.is_empty() && retried.is_empty() {
            None
        } else {
            Some(frame_extra(parts, retried))
        };
        (
            Arrived::Frame {
                worker: w,
                next_index: chunk.first,
                outcomes: Outcomes::new(&f.header),
                frame: bytes,
                left,
                extra,
            },
            chunk.count - left,
        )
    }

    /// The items of a valid RESULT frame from worker `w` that run again (see
    /// [`Master::failures_of`]): none, without looking, for a job without retries, unless
    /// the worker has a run of failures that a success would end.
    #[inline]
    fn failures(
        &mut self,
        w: usize,
        chunk: Chunk,
        header: &ResultHeader,
        frame: (&[u8], &[Part]),
    ) -> Vec<u64> {
        match self.jobs.get(chunk.job) {
            Some(job)
                if job.kept.is_empty()
                    && (job.retries == 0 || job.abandoned)
                    && !self.workers[w].unsettled =>
            {
                Vec::new()
            }
            Some(_) => self.failures_of(w, chunk, header, frame),
            None => Vec::new(),
        }
    }

    /// Looks at the outcomes of a valid RESULT frame from worker `w` of a job with retries,
    /// in the order the worker ran them: cuts a one-item chunk for each failed item that may
    /// run again, for another worker, and counts for quarantine (see
    /// [`check_quarantine`](Self::check_quarantine)) the failures on other workers of each
    /// item that succeeded. Returns the indices of the items that run again, in order.
    #[inline(never)]
    fn failures_of(
        &mut self,
        w: usize,
        chunk: Chunk,
        header: &ResultHeader,
        (frame, parts): (&[u8], &[Part]),
    ) -> Vec<u64> {
        let mut retried = Vec::new();
        let Some(job) = self.jobs.get_mut(chunk.job) else {
            return retried;
        };
        let kept = if job.kept.is_empty() {
            None
        } else {
            job.kept.remove(&chunk.seq)
        };
        if job.retries == 0 || job.abandoned {
            // Nothing runs again (nobody reads an abandoned job's outcomes). A success still
            // ends the worker's run of failures, if it has one: the outcomes are looked at
            // only then.
            if self.workers[w].unsettled {
                let mut outcomes = Outcomes::new(header);
                while let Some((status, _, _)) = outcomes.next_parted(frame, parts) {
                    if status == Status::Ok {
                        self.workers[w].succeeded();
                        break;
                    }
                }
            }
            return retried;
        }
        let kept_items = kept
            .as_ref()
            .and_then(|(k, p)| TaskFrame::decode_parts(k, p).ok());
        let mut items = kept_items.as_ref().map(TaskFrame::parted_items);
        let mut again = Vec::new();
        let mut confirmed = Vec::new();
        let mut outcomes = Outcomes::new(header);
        let mut index = chunk.first;
        while let Some((status, payload, _)) = outcomes.next_parted(frame, parts) {
            let input = items.as_mut().and_then(Iterator::next);
            if status == Status::Ok {
                // A success ends this worker's run of failures; the item's earlier failures
                // elsewhere were those workers' fault, if they have not succeeded since.
                self.workers[w].succeeded();
                let earlier = if job.earlier.is_empty() {
                    None
                } else {
                    job.earlier.get(&index)
                };
                for a in earlier.into_iter().flatten() {
                    let other = &mut self.workers[a.worker];
                    if a.worker != w && other.run == a.run {
                        other.failing += 1;
                        confirmed.push(a.worker);
                    }
                }
            } else {
                let runs_again = job.retries > 0
                    && matches!(status, Status::Failed | Status::Panicked)
                    && input.is_some();
                if runs_again {
                    let earlier = job.earlier.entry(index).or_default();
                    if (earlier.len() as u32) < job.retries {
                        earlier.push(Attempt {
                            worker: w,
                            run: self.workers[w].run,
                            message: String::from_utf8_lossy(payload).into_owned(),
                        });
                        self.workers[w].unsettled = true;
                        retried.push(index);
                        // The input, with its out-of-band part copied in: a retry is one
                        // frame.
                        let (head, part) = input.unwrap_or_default();
                        let mut bytes = head.to_vec();
                        if let (Some(p), Some((_, kept_parts))) = (part, kept.as_ref()) {
                            bytes.extend_from_slice(kept_parts[p].bytes());
                        }
                        again.push((index, bytes));
                    }
                }
            }
            index += 1;
        }
        let task_id = job.task_id;
        for w in confirmed {
            self.check_quarantine(w);
        }
        for (index, input) in again {
            let mut frame = Vec::with_capacity(input.len() + 32);
            protocol::begin_task_frame(&mut frame, chunk.job, task_id, index);
            protocol::push_item::<()>(&mut frame, |b| {
                b.extend_from_slice(&input);
                Ok(())
            })
            .expect("pushing bytes cannot fail");
            protocol::finish_task_frame(&mut frame, 1);
            let seq = self.chunks_cut;
            self.chunks_cut += 1;
            self.meter.retried(w);
            self.cut_ahead.push_front(CutChunk {
                chunk: Chunk {
                    job: chunk.job,
                    first: index,
                    count: 1,
                    seq,
                },
                frame,
                parts: Vec::new(),
                tail: false,
                avoid: Some(w),
            });
        }
        retried
    }

    /// Takes worker `w` out of the schedule when [`schedule::QUARANTINE_AFTER`] items failed
    /// on it in a row (no success of its own in between, in the order its results arrived)
    /// and then succeeded elsewhere: a failing input fails everywhere and quarantines no
    /// one. The last worker is never taken out.
    fn check_quarantine(&mut self, w: usize) {
        let slot = &self.workers[w];
        if slot.quarantined
            || slot.failing < schedule::QUARANTINE_AFTER
            || self.workers.len() - self.quarantined < 2
        {
            return;
        }
        let slot = &mut self.workers[w];
        slot.quarantined = true;
        self.quarantined += 1;
        let who = if slot.rank == 0 {
            format!("worker thread {w}")
        } else {
            format!("rank {}", slot.rank)
        };
        eprintln!(
            "pool: warning: {who} on {} failed {} tasks in a row that then succeeded on \
             other workers: it gets no more tasks",
            slot.host, slot.failing
        );
        tracing::warn!(
            rank = slot.rank,
            host = %slot.host,
            failures = slot.failing,
            "pool: worker quarantined"
        );
    }
}

/// What arrived for `chunk` when worker `w`'s RESULT frame does not answer it: the worker
/// could not read the TASK frame and says why in a single outcome, or the frame is for
/// other items, or malformed.
#[cold]
fn wrong_result(
    w: usize,
    rank: usize,
    chunk: Chunk,
    bytes: &[u8],
    frame: Result<ResultFrame, protocol::ProtocolError>,
) -> Arrived {
    match frame {
        Ok(f) => {
            let mut outcomes = Outcomes::new(&f.header);
            let message = match outcomes.next(bytes) {
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
    }
}

/// Learns from the time worker `w` took for a chunk of `job`: the job's time per item, and
/// how fast the worker is against the others.
#[inline]
fn learn(job: &mut Job, speeds: &mut schedule::Speeds, w: usize, header: &ResultHeader) {
    if let (Some(sample), Some(avg)) =
        (job.observe(header.busy_ns, header.count), job.item_ns.get())
    {
        speeds.observe(w, header.count, sample, avg);
    }
}

/// What a RESULT frame has besides its bytes: its out-of-band parts, with their memory for
/// the outcomes' decoding to take over, and the items that run again.
#[inline(never)]
fn frame_extra(mut parts: Vec<Part>, retried: Vec<u64>) -> Box<FrameExtra> {
    let buffers = parts.iter_mut().map(Part::take).collect();
    Box::new(FrameExtra {
        parts,
        buffers,
        retried,
    })
}

/// Appends a valid RESULT frame for `chunk` to its job's journal, the items in `retried`
/// (which run again) left out; the journal is closed on an error, kept for the job's end.
#[inline(never)]
fn journal_result(
    job: &mut Job,
    chunk: Chunk,
    header: &ResultHeader,
    (bytes, parts): (&[u8], &[Part]),
    retried: &[u64],
) {
    let Some(journal) = job.journal.as_mut() else {
        return;
    };
    let digests = job.digests.remove(&chunk.first).unwrap_or_default();
    let last = |index| retried.binary_search(&index).is_err();
    if let Err(e) = journal.append_parted(header, (bytes, parts), &digests, last) {
        job.journal = None;
        job.journal_error = Some(e);
    }
}

/// Every item of `chunk`, sent to worker `w`, failed the same way.
fn failed_chunk(w: usize, chunk: Chunk, kind: TaskErrorKind, message: String) -> Arrived {
    Arrived::Failed {
        worker: Some(w),
        next_index: chunk.first,
        left: chunk.count,
        kind,
        message,
    }
}

/// The kind of task error a RESULT status stands for.
pub(crate) fn kind_of(status: Status) -> TaskErrorKind {
    match status {
        Status::Failed => TaskErrorKind::Failed,
        Status::Panicked => TaskErrorKind::Panicked,
        Status::BadInput => TaskErrorKind::BadInput,
        Status::BadOutput | Status::Ok => TaskErrorKind::BadOutput,
        Status::Rejected => TaskErrorKind::Rejected,
        Status::StateInit => TaskErrorKind::StateInit,
    }
}
