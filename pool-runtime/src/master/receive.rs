//! Taking in RESULT frames, routing them to their job, and handing outcomes to the reader.

use super::backup::Answer;
use super::jobs::{Arrived, Chunk, FrameExtra, Job};
use super::{Master, schedule};
use crate::error::TaskErrorKind;
use crate::frame::{self, Part};
use crate::protocol::{self, Outcomes, ResultFrame, ResultHeader, Status, Tag};
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
            usual && job.runs_nothing_again() && job.journal.is_none() && !job.abandoned
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
