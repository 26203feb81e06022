//! How frames move between the master and its workers.
//!
//! Two transports share one pair of traits, so the master and the worker loop do not know which
//! one they run on: MPI point-to-point messages on a duplicated communicator ([`mpi`]), and
//! channels between threads of one process ([`local`]), used when there is a single rank.

pub(crate) mod local;
pub(crate) mod mpi;
pub(crate) mod sim;

use std::time::{Duration, Instant};

use crate::frame::Part;
use crate::protocol::Tag;

/// One frame received by the master.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// The worker that sent it (0-based; MPI rank = worker + 1).
    pub(crate) worker: usize,
    /// The raw tag: an unknown tag is the master's to report, not the transport's.
    pub(crate) tag: i32,
    pub(crate) bytes: Vec<u8>,
    /// Its out-of-band parts ([`crate::frame`]), received into memory of their own; empty
    /// (and not allocated) for most frames.
    pub(crate) parts: Vec<Part>,
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
    /// [`MasterLink::send`] of a frame with out-of-band parts: sent from their own memory
    /// where the transport can ([`MasterLink::out_of_band`]), copied into the frame otherwise.
    fn send_parts(&mut self, worker: usize, tag: Tag, frame: Vec<u8>, parts: Vec<Part>) {
        if parts.is_empty() {
            self.send(worker, tag, frame);
        } else {
            self.send(worker, tag, crate::frame::flatten(&frame, &parts));
        }
    }
    /// True if [`MasterLink::send_parts`] sends parts from their own memory: only then is it
    /// worth making them (and lending the caller's memory).
    fn out_of_band(&self) -> bool {
        false
    }
    /// Completes every send from memory a caller lent (see [`crate::frame::Data::Lent`]),
    /// once every frame holding such memory has been answered.
    fn settle_lent(&mut self) {}
    /// Returns the next frame, waiting politely (without burning a core) until one arrives,
    /// or `None` as soon as `stop()` says so (asked every few microseconds of waiting).
    fn recv(&mut self, stop: &mut dyn FnMut() -> bool) -> Option<Incoming>;
    /// Returns a frame that has already arrived, if any.
    fn try_recv(&mut self) -> Option<Incoming>;
    /// A buffer of a completed send, for reuse.
    fn reclaim_send_buffer(&mut self) -> Option<Vec<u8>>;
    /// Called once every worker said HELLO and the handshake accepted them all.
    fn started(&mut self) {}
    /// Completes every pending send and releases the workers (joins threads).
    fn close(&mut self);
    /// Ends the whole job at once with exit status `code` (`MPI_Abort` under MPI).
    fn abort(&mut self, code: i32) -> !;
    /// At shutdown, gives up the workers `stuck`, which run an item past its timeout and
    /// will not stop; `say` is first told how they end. The other workers have said BYE
    /// and wait for their release (none is inside `MPI_Finalize`). Under MPI the job ends now, with `MPI_Abort` and exit status `code` (the launcher
    /// returns only once every process has ended, and `MPI_Finalize` waits for the stuck
    /// ones); between threads, their threads are left behind.
    fn abandon(&mut self, stuck: &[usize], code: i32, say: &mut dyn FnMut(&str));
    /// True when the workers are threads of this process (they see the master's memory).
    fn in_process(&self) -> bool {
        false
    }
    /// Sends `bytes` to every worker at once (`MPI_Bcast` from the master), after each was
    /// told with a SHARE frame; only called when not [`MasterLink::in_process`].
    fn broadcast(&mut self, bytes: &mut [u8]) {
        let _ = bytes;
        unreachable!("pool: this transport has no broadcast")
    }
}

/// A worker's end: its link to the master.
pub(crate) trait WorkerLink {
    /// This worker's MPI rank (0 for in-process workers).
    fn rank(&self) -> usize;
    /// Waits (politely) for the next frame from the master, puts its bytes in `frame`
    /// (reusing its capacity) and returns its raw tag.
    fn recv(&mut self, frame: &mut Vec<u8>) -> i32;
    /// The out-of-band parts of the frame [`WorkerLink::recv`] or [`WorkerLink::try_recv`]
    /// returned last (see [`crate::frame`]): received into memory of their own.
    fn take_parts(&mut self) -> Vec<Part> {
        Vec::new()
    }
    /// Sends a frame to the master. The link may keep the buffer until the send completes
    /// and leave another (empty) one in `frame`; the frame is sent either way. A BYE frame
    /// completes every send before it returns.
    fn send(&mut self, tag: Tag, frame: &mut Vec<u8>);
    /// Called before the worker runs a chunk expected to take `expected_ns` (`u64::MAX`:
    /// unknown): the link may finish sends still under way first.
    fn before_run(&mut self, expected_ns: u64) {
        let _ = expected_ns;
    }
    /// The next frame if one has already arrived, without waiting (as [`WorkerLink::recv`]);
    /// `None` when none has, or when the link cannot tell.
    fn try_recv(&mut self, frame: &mut Vec<u8>) -> Option<i32> {
        let _ = frame;
        None
    }
    /// Takes part in the master's [`MasterLink::broadcast`]: fills `buf` with its bytes.
    fn broadcast(&mut self, buf: &mut [u8]) {
        let _ = buf;
        unreachable!("pool: this transport has no broadcast")
    }
}

/// Waiting for a message without burning a core, and without falling asleep when the other
/// side answers in microseconds.
///
/// A blocking MPI receive busy-polls at 100% of a core. Sleeping instead saves the core but
/// adds wake-up latency, and two ranks that both sleep while waiting for each other settle into
/// a slow ping-pong (measured: 200 µs per message instead of 2 µs). So the waiter learns how
/// long its waits usually take: when they are short, it polls (yielding the core to any other
/// process on it) a few times longer than usual before sleeping, which keeps both ends awake;
/// when they are long (tasks that run for milliseconds), it polls briefly, then sleeps with
/// exponential backoff up to a quarter of a usual wait (at most [`Waiter::MAX_SLEEP`]), so a
/// master waiting on 10 ms tasks wakes a handful of times per result.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    /// Moving average of recent waits.
    typical: Duration,
}

impl Waiter {
    /// Waits shorter than this on average count as "the other side answers at once".
    const FAST: Duration = Duration::from_millis(1);
    const MIN_POLL: Duration = Duration::from_micros(50);
    const MAX_POLL: Duration = Duration::from_millis(1);
    const SLOW_POLL: Duration = Duration::from_micros(20);
    const FIRST_SLEEP: Duration = Duration::from_micros(20);
    const MIN_NAP_CAP: Duration = Duration::from_micros(100);
    /// The longest nap: bounds how late a sleeping rank notices a message.
    pub(crate) const MAX_SLEEP: Duration = Duration::from_millis(2);

    /// Calls `poll` until it returns a value.
    pub(crate) fn wait<T>(&mut self, poll: impl FnMut() -> Option<T>) -> T {
        match self.wait_until(poll, || false) {
            Some(value) => value,
            None => unreachable!("never interrupted"),
        }
    }

    /// Calls `poll` until it returns a value, or returns `None` once `interrupted()` says so
    /// (asked whenever the waiter looks at the clock, every 16 polls). A value that comes
    /// within the first 16 polls is returned without looking at the clock at all: that is the
    /// usual case when the other side answers at once, and a clock read costs as much as a
    /// poll. The callers look for signals between waits too.
    pub(crate) fn wait_until<T>(
        &mut self,
        mut poll: impl FnMut() -> Option<T>,
        mut interrupted: impl FnMut() -> bool,
    ) -> Option<T> {
        let budget = self.poll_budget();
        let nap_cap = (self.typical / 4).clamp(Self::MIN_NAP_CAP, Self::MAX_SLEEP);
        let mut sleep = (self.typical / 32).clamp(Self::FIRST_SLEEP, nap_cap);
        // When the wait started, as far as the clock is concerned: read at the first
        // checkpoint (a wait shorter than 16 polls counts as none).
        let mut start: Option<Instant> = None;
        let mut polls: u32 = 0;
        loop {
            if let Some(value) = poll() {
                self.observe(start.map_or(Duration::ZERO, |s| s.elapsed()));
                return Some(value);
            }
            polls = polls.wrapping_add(1);
            // Mostly spin (an answer often takes a microsecond); yield now and then so a
            // rank sharing this core can run, and look at the clock (and for signals) only
            // then.
            if polls % 16 != 0 {
                std::hint::spin_loop();
                continue;
            }
            if interrupted() {
                return None;
            }
            let started = *start.get_or_insert_with(Instant::now);
            if started.elapsed() < budget {
                std::thread::yield_now();
            } else {
                nap(sleep);
                sleep = (sleep * 2).min(nap_cap);
            }
        }
    }

    fn poll_budget(&self) -> Duration {
        if self.typical < Self::FAST {
            (self.typical * 4).clamp(Self::MIN_POLL, Self::MAX_POLL)
        } else {
            Self::SLOW_POLL
        }
    }

    fn observe(&mut self, waited: Duration) {
        self.typical = (self.typical * 4 + waited) / 5;
    }
}

/// Sleeps for up to `duration`; a signal ends the nap early (unlike `std::thread::sleep`, which
/// sleeps again for the rest), so an interrupted master reacts at once: launchers give it only
/// milliseconds between SIGTERM and SIGKILL.
fn nap(duration: Duration) {
    let ts = libc::timespec {
        tv_sec: duration.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(duration.subsec_nanos() as i32),
    };
    // SAFETY: `ts` is a valid timespec; a null remainder pointer is allowed.
    unsafe {
        libc::nanosleep(&ts, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiter_polls_longer_when_waits_are_short() {
        let mut w = Waiter::default();
        assert_eq!(w.poll_budget(), Waiter::MIN_POLL);
        for _ in 0..20 {
            w.observe(Duration::from_micros(200));
        }
        assert!(
            w.poll_budget() > Duration::from_micros(700),
            "{:?}",
            w.poll_budget()
        );
        for _ in 0..50 {
            w.observe(Duration::from_millis(10));
        }
        assert_eq!(w.poll_budget(), Waiter::SLOW_POLL);
        let mut calls = 0;
        assert_eq!(
            w.wait(|| {
                calls += 1;
                (calls == 3).then_some(7)
            }),
            7
        );
    }
}
