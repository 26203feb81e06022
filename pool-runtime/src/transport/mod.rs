//! How frames move between the master and its workers.
//!
//! Two transports share one pair of traits, so the engine and the worker loop do not know which
//! one they run on: MPI point-to-point messages on a duplicated communicator ([`mpi`]), and
//! channels between threads of one process ([`local`]), used when there is a single rank.

pub(crate) mod local;
pub(crate) mod mpi;

use std::time::{Duration, Instant};

use crate::protocol::Tag;

/// One frame received by the master.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// The worker that sent it (0-based; MPI rank = worker + 1).
    pub(crate) worker: usize,
    /// The raw tag: an unknown tag is the engine's to report, not the transport's.
    pub(crate) tag: i32,
    pub(crate) bytes: Vec<u8>,
}

/// The master's end: one link to every worker.
pub(crate) trait MasterLink {
    /// How many workers there are.
    fn workers(&self) -> usize;
    /// The MPI rank of a worker, for error reports (0 for in-process workers).
    fn rank_of(&self, worker: usize) -> usize;
    /// Queues `frame` for `worker` without blocking: the master must never wait on a send,
    /// or a worker blocked sending a large result to it would deadlock.
    fn send(&mut self, worker: usize, tag: Tag, frame: Vec<u8>);
    /// Returns the next frame, waiting politely (without burning a core) until one arrives.
    fn recv(&mut self) -> Incoming;
    /// Returns a frame that has already arrived, if any.
    fn try_recv(&mut self) -> Option<Incoming>;
    /// A buffer of a completed send, for reuse.
    fn recycle(&mut self) -> Option<Vec<u8>>;
    /// Completes every pending send and releases the workers (joins threads).
    fn close(&mut self);
}

/// A worker's end: its link to the master.
pub(crate) trait WorkerLink {
    /// This worker's MPI rank (0 for in-process workers).
    fn rank(&self) -> usize;
    /// Waits (politely) for the next frame from the master: its raw tag and bytes.
    fn recv(&mut self) -> (i32, Vec<u8>);
    /// Sends a frame to the master; returns when `frame` may be reused.
    fn send(&mut self, tag: Tag, frame: &[u8]);
}

/// Waiting without burning a core: spin and yield for a few tens of microseconds (a reply is
/// often already on its way), then sleep with exponential backoff up to a cap.
///
/// A blocking MPI receive busy-polls at 100% of a core; on a machine where every core runs a
/// rank, that core is stolen from a worker. The cap bounds how late a waiting rank notices a
/// message; adaptive chunking keeps each worker's queued work longer than that.
#[derive(Debug)]
pub(crate) struct Backoff {
    started: Instant,
    sleep: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            started: Instant::now(),
            sleep: Self::FIRST_SLEEP,
        }
    }
}

impl Backoff {
    const BUSY: Duration = Duration::from_micros(50);
    const FIRST_SLEEP: Duration = Duration::from_micros(20);
    pub(crate) const MAX_SLEEP: Duration = Duration::from_micros(500);

    pub(crate) fn snooze(&mut self) {
        if self.started.elapsed() < Self::BUSY {
            std::thread::yield_now();
        } else {
            std::thread::sleep(self.sleep);
            self.sleep = (self.sleep * 2).min(Self::MAX_SLEEP);
        }
    }
}
