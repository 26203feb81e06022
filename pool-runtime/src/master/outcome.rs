//! Handing the outcomes that arrived to the reader of their job, one at a time, in the order
//! they arrived.

use super::Master;
use std::collections::HashMap;

use super::jobs::{Arrived, Attempt, FrameExtra, Provenance, RawOutcome};
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
        let (result, finished) = match front {
            // The usual frame (no out-of-band parts, nothing runs again, no earlier attempts):
            // read in a few lines, as the master's time per tiny task is mostly fetching its
            // code.
            Arrived::Frame {
                worker,
                next_index,
                outcomes,
                frame,
                left,
                extra: None,
            } if job.earlier.is_empty() => {
                let index = *next_index;
                *next_index += 1;
                *left -= 1;
                let origin = self.workers[*worker].provenance(job.task, index, Vec::new());
                let raw = match outcomes.next(frame) {
                    Some((Status::Ok, bytes)) => RawOutcome::Value(bytes, None),
                    other => failed_outcome(&mut self.meter, *worker, other),
                };
                (read(origin, raw), *left == 0)
            }
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
                let earlier = earlier_messages(&mut job.earlier, index);
                let origin = self.workers[*worker].provenance(job.task, index, earlier);
                let raw = match item {
                    Some((Status::Ok, bytes, part)) => RawOutcome::Value(
                        bytes,
                        part.and_then(|p| buffers.as_mut()?.get_mut(p)?.take()),
                    ),
                    other => {
                        let other = other.map(|(status, message, _)| (status, message));
                        failed_outcome(&mut self.meter, *worker, other)
                    }
                };
                (read(origin, raw), *left == 0)
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
                let earlier = earlier_messages(&mut job.earlier, *next_index);
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

/// The outcome of an item of worker `w` that did not succeed: its status and message, or
/// none (the frame was validated on arrival, so an outcome is always there).
#[cold]
#[inline(never)]
fn failed_outcome<'f>(
    meter: &mut crate::stats::Meter,
    w: usize,
    item: Option<(Status, &'f [u8])>,
) -> RawOutcome<'f> {
    meter.failed(Some(w));
    match item {
        Some((status, message)) => RawOutcome::Error(
            kind_of(status),
            std::str::from_utf8(message).unwrap_or("(message not UTF-8)"),
        ),
        None => RawOutcome::Error(TaskErrorKind::BadOutput, "missing outcome"),
    }
}

/// The messages of item `index`'s failed attempts, taken out of `earlier` (which has any
/// only with retries).
#[inline]
fn earlier_messages(earlier: &mut HashMap<u64, Vec<Attempt>>, index: u64) -> Vec<String> {
    if earlier.is_empty() {
        return Vec::new();
    }
    let attempts = earlier.remove(&index).unwrap_or_default();
    attempts.into_iter().map(|a| a.message).collect()
}
