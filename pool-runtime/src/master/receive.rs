//! Taking in RESULT frames, routing them to their job, and handing outcomes to the reader.

use super::Master;
use super::backup::Answer;
use super::jobs::{Arrived, Chunk, Provenance, RawOutcome};
use crate::error::TaskErrorKind;
use crate::protocol::{Outcomes, ResultFrame, Status, Tag};

impl Master {
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

    /// [`Master::receive_one`] without its check that something is in flight.
    #[cfg(test)]
    pub(super) fn receive_one_unchecked_for_tests(&mut self) {
        let incoming = self.recv();
        self.handle(incoming.worker, incoming.tag, incoming.bytes);
    }

    pub(super) fn handle(&mut self, w: usize, tag: i32, bytes: Vec<u8>) {
        let rank = self.link.rank_of(w);
        match Tag::from_raw(tag) {
            Some(Tag::Folded) => return self.handle_folded(w, bytes),
            Some(Tag::Partial) => return self.handle_partial(w, bytes),
            _ => {}
        }
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
        match self.cut_ahead.pop_front() {
            Some(next) => self.send_chunk(w, next),
            None => self.free.freed(w),
        }
        if self.backups.answered(&chunk) == Some(Answer::Duplicate) {
            // Another copy of this chunk answered first: its outcomes are already routed.
            self.meter.received(w, bytes.len(), 0);
            self.keep_buffer(bytes);
            if let Some(job) = self.jobs.get_mut(chunk.job) {
                job.in_flight -= u64::from(chunk.count);
                if job.abandoned {
                    job.outstanding = job.outstanding.saturating_sub(u64::from(chunk.count));
                    if job.outstanding == 0 {
                        self.jobs.remove(chunk.job);
                    }
                }
            }
            return;
        }
        self.meter.received(w, bytes.len(), chunk.count);
        let arrived = self.read_result(w, rank, chunk, bytes);
        let Some(job) = self.jobs.get_mut(chunk.job) else {
            return;
        };
        job.in_flight -= u64::from(chunk.count);
        if job.abandoned {
            job.outstanding = job.outstanding.saturating_sub(u64::from(chunk.count));
            if job.outstanding == 0 {
                self.jobs.remove(chunk.job);
            }
            if let Arrived::Frame { frame, .. } = arrived {
                self.keep_buffer(frame);
            }
        } else {
            job.ready_items += u64::from(chunk.count);
            job.arrived.push_back(arrived);
        }
    }

    /// Checks a RESULT frame against the chunk it answers, journals it, and learns from the
    /// time it took.
    fn read_result(&mut self, w: usize, rank: usize, chunk: Chunk, bytes: Vec<u8>) -> Arrived {
        match ResultFrame::decode(&bytes) {
            Ok(f)
                if f.header.job == chunk.job
                    && f.header.first == chunk.first
                    && f.header.count == chunk.count =>
            {
                self.meter.busy(w, f.header.busy_ns);
                if let Some(job) = self.jobs.get_mut(chunk.job) {
                    if let Some(sample) = job.observe(f.header.busy_ns, f.header.count) {
                        if let Some(avg) = job.item_ns.get() {
                            self.speeds.observe(w, f.header.count, sample, avg);
                        }
                    }
                    if let Some(journal) = job.journal.as_mut() {
                        if let Err(e) = journal.append_frame(&f.header, &bytes) {
                            job.journal = None;
                            job.journal_error = Some(e);
                        }
                    }
                }
                Arrived::Frame {
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
        }
    }

    /// Reads the next outcome of job `id` that has arrived, if any, through `read`.
    pub(crate) fn next_outcome<R>(
        &mut self,
        id: u32,
        read: impl FnOnce(Provenance<'_>, RawOutcome<'_>) -> R,
    ) -> Option<R> {
        let job = self.jobs.get_mut(id)?;
        let front = job.arrived.front_mut()?;
        // Count the outcome as read before `read` runs: it decodes with the user's
        // `Deserialize`, which may panic.
        job.outstanding -= 1;
        job.ready_items -= 1;
        let (result, finished) = match front {
            Arrived::Frame {
                worker,
                next_index,
                outcomes,
                frame,
            } => {
                let slot = &self.workers[*worker];
                let origin = Provenance {
                    index: *next_index,
                    task: job.task,
                    rank: slot.rank,
                    host: &slot.host,
                };
                *next_index += 1;
                // The frame was validated on arrival, so an outcome is always there.
                let raw = match outcomes.next(frame) {
                    Some((Status::Ok, bytes)) => RawOutcome::Value(bytes),
                    Some((status, message)) => {
                        self.meter.failed(Some(*worker));
                        RawOutcome::Error(
                            kind_of(status),
                            std::str::from_utf8(message).unwrap_or("(message not UTF-8)"),
                        )
                    }
                    None => {
                        self.meter.failed(Some(*worker));
                        RawOutcome::Error(TaskErrorKind::BadOutput, "missing outcome")
                    }
                };
                (read(origin, raw), outcomes.remaining() == 0)
            }
            Arrived::Failed {
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
                let origin = Provenance {
                    index: *next_index,
                    task: job.task,
                    rank,
                    host,
                };
                *next_index += 1;
                *left -= 1;
                self.meter.failed(*worker);
                (read(origin, RawOutcome::Error(*kind, message)), *left == 0)
            }
        };
        if finished {
            if let Some(Arrived::Frame { frame, .. }) = job.arrived.pop_front() {
                self.keep_buffer(frame);
            }
        }
        Some(result)
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

pub(super) fn kind_of(status: Status) -> TaskErrorKind {
    match status {
        Status::Failed => TaskErrorKind::Failed,
        Status::Panicked => TaskErrorKind::Panicked,
        Status::BadInput => TaskErrorKind::BadInput,
        Status::BadOutput | Status::Ok => TaskErrorKind::BadOutput,
        Status::Rejected => TaskErrorKind::Rejected,
        Status::StateInit => TaskErrorKind::StateInit,
    }
}
