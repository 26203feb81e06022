//! Handing the outcomes that arrived to the reader of their job, one at a time, in the order
//! they arrived.

use super::Master;
use super::jobs::{Arrived, FrameExtra, Provenance, RawOutcome};
use super::receive::kind_of;
use crate::error::TaskErrorKind;
use crate::protocol::Status;

impl Master {
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
        let mut elsewhere: Option<(Vec<usize>, usize)> = None;
        let (result, finished, counted) = match front {
            Arrived::Frame {
                worker,
                next_index,
                outcomes,
                frame,
                left,
                extra,
            } => {
                let (parts, mut buffers, retried): (&[_], _, &[u64]) = match extra.as_deref_mut() {
                    None => (&[], None, &[]),
                    Some(FrameExtra {
                        parts,
                        buffers,
                        retried,
                    }) => (parts, Some(buffers), retried),
                };
                // Passes over the outcomes of items that run again.
                let (index, item) = loop {
                    let index = *next_index;
                    *next_index += 1;
                    let item = outcomes.next_parted(frame, parts);
                    if retried.is_empty() || retried.binary_search(&index).is_err() {
                        break (index, item);
                    }
                };
                *left -= 1;
                let slot = &self.workers[*worker];
                // Earlier attempts exist only with retries: nothing to collect otherwise.
                let (failed_on, earlier): (Vec<usize>, Vec<String>) = if job.earlier.is_empty() {
                    (Vec::new(), Vec::new())
                } else {
                    job.earlier
                        .remove(&index)
                        .unwrap_or_default()
                        .into_iter()
                        .unzip()
                };
                let origin = Provenance {
                    index,
                    task: job.task,
                    rank: slot.rank,
                    host: &slot.host,
                    earlier,
                };
                // The frame was validated on arrival, so an outcome is always there.
                let worker = *worker;
                let raw = match item {
                    Some((Status::Ok, bytes, part)) => RawOutcome::Value(
                        bytes,
                        part.and_then(|p| buffers.as_mut()?.get_mut(p)?.take()),
                    ),
                    Some((status, message, _)) => {
                        self.meter.failed(Some(worker));
                        RawOutcome::Error(
                            kind_of(status),
                            std::str::from_utf8(message).unwrap_or("(message not UTF-8)"),
                        )
                    }
                    None => {
                        self.meter.failed(Some(worker));
                        RawOutcome::Error(TaskErrorKind::BadOutput, "missing outcome")
                    }
                };
                let ok = matches!(raw, RawOutcome::Value(..));
                if ok && !failed_on.is_empty() {
                    elsewhere = Some((failed_on, worker));
                }
                (read(origin, raw), *left == 0, Some((worker, ok)))
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
                let earlier = if job.earlier.is_empty() {
                    Vec::new()
                } else {
                    let attempts = job.earlier.remove(next_index).unwrap_or_default();
                    attempts.into_iter().map(|(_, m)| m).collect()
                };
                let origin = Provenance {
                    index: *next_index,
                    task: job.task,
                    rank,
                    host,
                    earlier,
                };
                *next_index += 1;
                *left -= 1;
                self.meter.failed(*worker);
                (
                    read(origin, RawOutcome::Error(*kind, message)),
                    *left == 0,
                    worker.map(|w| (w, false)),
                )
            }
        };
        if finished {
            if let Some(Arrived::Frame { frame, .. }) = job.arrived.pop_front() {
                self.keep_buffer(frame);
            }
        }
        if let Some((w, ok)) = counted {
            self.count_outcome(w, ok);
        }
        if let Some((failed_on, succeeded_on)) = elsewhere {
            self.failed_where_others_succeed(&failed_on, succeeded_on);
        }
        Some(result)
    }
}
