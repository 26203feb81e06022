//! Items that run past their job's timeout ([`Options::timeout`](crate::Options::timeout)).
//!
//! A job with a timeout sends its items one per chunk, so the master knows when each one
//! starts: when it is sent to an idle worker, or when the worker's previous result arrives
//! (a worker runs its chunks in order). The time counted is therefore never shorter than the
//! item's own run (it includes the transfer of its input, and the master's delay in reading
//! the result before it): a timeout can come late, never early.
//!
//! When an item's time is up, the master stops waiting for it: the worker is **stuck**. It
//! gets no more tasks, whatever it still holds is handed to other workers (from the frames
//! kept for that), the item fails with [`TaskErrorKind::TimedOut`] or, with retries left,
//! runs again elsewhere, and anything the stuck worker sends later is dropped. With no
//! worker left that is not stuck, the items that wait fail at once ("not run") instead of
//! waiting forever. At shutdown the master does not wait for a stuck worker: see
//! [`MasterLink::abandon`](crate::transport::MasterLink::abandon) for how each transport ends it.
//!
//! The deadlines wait in a heap, earliest first, checked while the master waits and after
//! it takes in results: O(log n) per item, and nothing at all for jobs without a timeout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::jobs::{Attempt, Chunk};
use super::{CutChunk, Master};
use crate::error::TaskErrorKind;

/// The deadlines of the chunks at the front of workers' queues, earliest first.
#[derive(Debug, Default)]
pub(super) struct Timeouts {
    /// `(deadline, worker, chunk seq)`; an entry whose chunk is no longer at the front of
    /// its worker's queue is stale and skipped.
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Workers stuck in an item past its timeout, in the order they got stuck.
    pub(super) stuck: Vec<usize>,
}

impl Timeouts {
    /// True when the earliest deadline has passed (cheap when no job has a timeout).
    pub(super) fn due(&self) -> bool {
        self.heap
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= Instant::now())
    }
}

/// Queues `chunk` (its kept frame and parts) first, for a worker other than stuck `w`.
fn send_again(
    cut_ahead: &mut std::collections::VecDeque<CutChunk>,
    chunk: Chunk,
    (frame, parts): (Vec<u8>, Vec<crate::frame::Part>),
    w: usize,
) {
    cut_ahead.push_front(CutChunk {
        chunk,
        frame,
        parts,
        tail: false,
        avoid: Some(w),
    });
}

/// The limit of `count` items of a job with timeout `limit`.
fn limit_of(limit: Duration, count: u32) -> Duration {
    limit.saturating_mul(count.max(1))
}

/// `2s`, `1.5s` or `250ms`, for messages.
pub(crate) fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

impl Master {
    /// Runs each item of job `id` for at most `limit`.
    pub(crate) fn set_timeout(&mut self, id: u32, limit: Option<Duration>) {
        if let Some(job) = self.jobs.get_mut(id) {
            job.timeout = limit;
            self.timed |= limit.is_some();
        }
    }

    /// Worker `w`'s front chunk started now: its deadline is set, if its job has a timeout.
    #[inline]
    pub(super) fn front_started(&mut self, w: usize) {
        if self.timed {
            self.front_started_timed(w);
        }
    }

    /// [`Master::front_started`] once a job had a timeout (the check before it is inlined).
    fn front_started_timed(&mut self, w: usize) {
        let Some(chunk) = self.workers[w].in_flight.front() else {
            return;
        };
        let Some(limit) = self.jobs.get(chunk.job).and_then(|j| j.timeout) else {
            return;
        };
        let at = Instant::now() + limit_of(limit, chunk.count);
        self.timeouts.heap.push(Reverse((at, w, chunk.seq)));
    }

    /// True when worker `w` is stuck (see the module's doc): its frames are dropped.
    pub(super) fn is_stuck(&self, w: usize) -> bool {
        self.workers[w].stuck
    }

    /// Takes out every worker whose front item ran past its deadline.
    #[inline]
    pub(super) fn check_timeouts(&mut self) {
        if !self.timeouts.heap.is_empty() {
            self.take_out_timed_out();
        }
    }

    /// [`Master::check_timeouts`] with deadlines pending (the check before it is inlined).
    fn take_out_timed_out(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, w, seq))) = self.timeouts.heap.peek() {
            if at > now {
                break;
            }
            self.timeouts.heap.pop();
            let slot = &self.workers[w];
            if !slot.stuck && slot.in_flight.front().is_some_and(|c| c.seq == seq) {
                self.timed_out(w);
            }
        }
        if self.usable_workers() == 0 {
            self.fail_unrunnable();
        }
    }

    /// Workers that can take tasks: neither stuck nor in quarantine.
    pub(crate) fn usable_workers(&self) -> usize {
        self.workers.len() - self.quarantined
    }

    /// Worker `w`'s front item ran past its job's timeout.
    fn timed_out(&mut self, w: usize) {
        let slot = &mut self.workers[w];
        slot.stuck = true;
        if !slot.quarantined {
            slot.quarantined = true;
            self.quarantined += 1;
        }
        self.timeouts.stuck.push(w);
        let held: Vec<Chunk> = slot.in_flight.drain(..).collect();
        self.in_flight -= held.len();
        let (rank, host) = (slot.rank, slot.host.clone());
        let who = if rank == 0 {
            format!("worker thread {w}")
        } else {
            format!("rank {rank}")
        };
        for (i, chunk) in held.into_iter().enumerate() {
            let Some(job) = self.jobs.get_mut(chunk.job) else {
                continue;
            };
            job.in_flight -= u64::from(chunk.count);
            let kept = job.kept.remove(&chunk.seq);
            if self.jobs.count_abandoned(chunk.job, chunk.count) {
                continue;
            }
            let Some(job) = self.jobs.get_mut(chunk.job) else {
                continue;
            };
            if i > 0 {
                // Queued behind the stuck item, never started: it goes to another worker.
                if let Some(kept) = kept {
                    send_again(&mut self.cut_ahead, chunk, kept, w);
                } else {
                    job.push_failed(
                        Some(w),
                        chunk.first,
                        chunk.count,
                        TaskErrorKind::TimedOut,
                        format!("not run: it waited behind an item that timed out on {who}"),
                    );
                }
                continue;
            }
            let limit = job.timeout.unwrap_or_default();
            let message = format!(
                "ran longer than its timeout of {} on {who} ({host}); that worker gets no \
                 more tasks, and what it sends from now on is dropped",
                seconds(limit)
            );
            eprintln!(
                "pool: warning: task `{}` {} ran past its timeout of {} on {who} on {host}: \
                 that worker gets no more tasks",
                job.task,
                super::items(chunk.first, chunk.count),
                seconds(limit)
            );
            tracing::warn!(rank, host = %host, task = job.task, first = chunk.first,
                "pool: item timed out; worker taken out");
            let attempts = job.earlier.get(&chunk.first).map_or(0, Vec::len) as u32;
            let again = chunk.count == 1 && attempts < job.retries;
            match kept {
                Some(kept) if again => {
                    job.earlier.entry(chunk.first).or_default().push(Attempt {
                        worker: w,
                        run: self.workers[w].run,
                        message,
                    });
                    self.meter.retried(w);
                    send_again(&mut self.cut_ahead, chunk, kept, w);
                }
                _ => job.push_failed(
                    Some(w),
                    chunk.first,
                    chunk.count,
                    TaskErrorKind::TimedOut,
                    message,
                ),
            }
        }
    }

    /// Ends the workers `stuck` at shutdown, which will not stop (see
    /// [`MasterLink::abandon`](crate::transport::MasterLink::abandon)).
    pub(super) fn abandon(&mut self, stuck: &[usize], code: i32) {
        let names: Vec<String> = stuck
            .iter()
            .map(|&w| {
                let slot = &self.workers[w];
                if slot.rank == 0 {
                    format!("worker thread {w}")
                } else {
                    format!("rank {} on {}", slot.rank, slot.host)
                }
            })
            .collect();
        let names = names.join(", ");

        self.link.abandon(stuck, code, &mut |how| {
            eprintln!("pool: {names} still in an item that ran past its timeout: {how}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        });
    }

    /// With no worker left that can run them, the chunks that wait fail now ("not run").
    pub(super) fn fail_unrunnable(&mut self) {
        while let Some(cut) = self.cut_ahead.pop_front() {
            let chunk = cut.chunk;
            if let Some(job) = self.jobs.get_mut(chunk.job) {
                job.kept.remove(&chunk.seq);
                job.push_failed(
                    None,
                    chunk.first,
                    chunk.count,
                    TaskErrorKind::TimedOut,
                    "not run: every worker is stuck in an item that ran past its timeout"
                        .to_owned(),
                );
            }
        }
    }
}
