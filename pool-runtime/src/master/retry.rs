//! Retries and quarantine: which items of a RESULT frame run again, on another worker, and
//! which worker fails so often that it gets no more tasks.

use super::jobs::{Attempt, Chunk};
use super::{CutChunk, Master, schedule};
use crate::frame::Part;
use crate::protocol::{self, Outcomes, ResultHeader, Status, TaskFrame};

impl Master {
    /// The items of a valid RESULT frame from worker `w` that run again (see
    /// [`Master::failures_of`]): none, without looking, for a job without retries, unless
    /// the worker has a run of failures that a success would end.
    #[inline]
    pub(super) fn failures(
        &mut self,
        w: usize,
        chunk: Chunk,
        header: &ResultHeader,
        frame: (&[u8], &[Part]),
    ) -> Vec<u64> {
        match self.jobs.get(chunk.job) {
            Some(job) if job.runs_nothing_again() && !self.workers[w].unsettled => Vec::new(),
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
