//! The schedule: pure decisions over the master's state, with no transport in sight.
//!
//! - **Chunk size** ([`chunk_items`]): a chunk should keep its worker busy for a target time
//!   long enough that the master's cost per message stays a small share of its time, however
//!   many workers there are ([`target_chunk_ns`]), sized by the speed measured for that worker
//!   (a straggler gets fewer items, so its chunks take as long as anyone's), and split finer
//!   at the tail so that the workers finish together (guided self-scheduling).
//! - **Worker choice** ([`FreeSlots`]): which worker has room for another chunk, in O(1),
//!   round-robin, whoever answered first is refilled first.
//! - **Window** ([`window_full`]): a job whose reader lags gets no new chunks, so the master
//!   holds a bounded number of results.
//!
//! Everything here is unit-tested without MPI; the simulated transport (`transport::sim`)
//! runs the whole master against thousands of virtual workers.

use std::collections::VecDeque;

/// Chunks in flight per worker when the caller does not say.
pub(crate) const DEFAULT_PREFETCH: usize = 2;

/// Adaptive chunks keep a worker busy at least this long.
const MIN_CHUNK_NS: f64 = 1_000_000.0;
/// Adaptive chunks keep a worker busy at most this long: a longer chunk gains nothing and
/// delays the end of a run.
const MAX_CHUNK_NS: f64 = 2e9;
/// The master spends at most about `1 / MASTER_SHARE` of its time on per-message work: a
/// chunk lasts at least `workers × cost per message × MASTER_SHARE`.
const MASTER_SHARE: f64 = 8.0;
/// The master may spend at most about half its time on per-message work at the tail: a
/// chunk cut finer than `workers × cost per message × TAIL_SHARE` would leave the workers
/// waiting for a saturated master instead of finishing together.
const TAIL_SHARE: f64 = 2.0;
/// What one message (a chunk out, its result back) costs the master, all told: measured at
/// 1-2 µs under Open MPI and in the simulation. A constant rather than a measurement, so
/// that the schedule does not move with the noise of a shared machine.
pub(crate) const MESSAGE_NS: f64 = 2000.0;
/// An adaptive chunk holds at most this many times the items of the job's largest chunk
/// that came back.
const GROWTH: f64 = 8.0;
/// A worker whose tasks fail this many times in a row, while other workers' succeed, gets
/// no more tasks (quarantine): a node with a broken library must not burn every retry.
pub(crate) const QUARANTINE_AFTER: u32 = 5;
/// Adaptive chunks hold at most this many items.
pub(crate) const MAX_CHUNK_ITEMS: usize = 1 << 16;

/// How to cut and pace one job's inputs: the caller's [`Options`](crate::Options).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkPlan {
    /// Items per chunk; `None` adapts it to the measured task time.
    pub(crate) chunksize: Option<usize>,
    /// Chunks in flight per worker.
    pub(crate) prefetch: usize,
    /// Copies of queued chunks for idle workers at the tail (see `backup`).
    pub(crate) speculative: bool,
}

impl Default for ChunkPlan {
    fn default() -> Self {
        ChunkPlan {
            chunksize: None,
            prefetch: DEFAULT_PREFETCH,
            speculative: false,
        }
    }
}

impl ChunkPlan {
    /// One item per chunk (a `submit`).
    pub(crate) fn single() -> Self {
        ChunkPlan {
            chunksize: Some(1),
            ..ChunkPlan::default()
        }
    }

    /// Chunks in flight per worker, at least one.
    pub(crate) fn depth(&self) -> usize {
        self.prefetch.max(1)
    }
}

/// How long an adaptive chunk should keep a worker busy: at least 1 ms, and long enough that
/// `workers` workers answering at that pace keep the master busy at most about
/// `1 / MASTER_SHARE` of the time with messages.
pub(crate) fn target_chunk_ns(workers: usize) -> f64 {
    (workers as f64 * MESSAGE_NS * MASTER_SHARE).clamp(MIN_CHUNK_NS, MAX_CHUNK_NS)
}

/// The shortest chunk worth cutting at the tail: below it, `workers` workers would answer
/// faster than the master can handle their messages.
pub(crate) fn tail_floor_ns(workers: usize) -> f64 {
    (workers as f64 * MESSAGE_NS * TAIL_SHARE).min(MAX_CHUNK_NS)
}

/// What the schedule knows when it cuts a chunk for one worker.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkInput {
    /// The job's measured worker time per item (`None` before the first result).
    pub(crate) item_ns: Option<f64>,
    /// How much slower than the pool's average this worker is (1.0: average).
    pub(crate) slowness: f64,
    /// Inputs certainly left, when the input iterator says.
    pub(crate) remaining: Option<u64>,
    pub(crate) workers: usize,
    /// Chunks in flight per worker.
    pub(crate) depth: usize,
    /// From [`target_chunk_ns`].
    pub(crate) target_ns: f64,
    /// From [`tail_floor_ns`].
    pub(crate) floor_ns: f64,
    /// Items in the job's largest chunk that came back (0: none yet).
    pub(crate) largest_done: u32,
}

/// Items for the next adaptive chunk: as many as fill the target time on this worker (one
/// until the task is measured), and at the tail no more than half of this worker's share of
/// what is left (its share of one chunk in flight per worker, with `depth` in flight), so
/// that the last workers finish together (guided self-scheduling), but not below the floor
/// that keeps the master from saturating; and at most [`GROWTH`] times the largest chunk that
/// came back.
pub(crate) fn chunk_items(c: ChunkInput) -> usize {
    // Only slowness counts: a worker that seems faster than the rest may just have drawn
    // short items, and a chunk too large for the tail is worse than one too small.
    let slowness = if c.slowness.is_finite() {
        c.slowness.clamp(1.0, 100.0)
    } else {
        1.0
    };
    let by_time = match c.item_ns {
        None => 1.0,
        Some(ns) => c.target_ns / (ns.max(1.0) * slowness),
    };
    let by_tail = c.remaining.map_or(f64::INFINITY, |left| {
        left as f64 / (2.0 * (c.workers.max(1) * c.depth.max(1)) as f64) / slowness
    });
    let floor = match c.item_ns {
        None => 1.0,
        Some(ns) => (c.floor_ns / (ns.max(1.0) * slowness)).min(by_time),
    };
    // Chunks grow step by step: the first results to come back are the shortest items, so
    // the first measurement is too low, and a chunk sized on it alone could hold far more
    // work than the target (it would be corrected only when that chunk comes back).
    let growth = (GROWTH * f64::from(c.largest_done)).max(1.0);
    // (A hair over, so that an exact 2.0 computed as 1.999... still makes 2.)
    (by_time.min(by_tail).max(floor).min(growth) * (1.0 + 1e-9)).clamp(1.0, MAX_CHUNK_ITEMS as f64)
        as usize
}

/// True when a job already holds more arrived-but-unread results than one window of
/// chunks in flight: it gets no new chunks until its reader catches up.
pub(crate) fn window_full(
    ready_items: u64,
    workers: usize,
    plan: ChunkPlan,
    last_chunk: usize,
) -> bool {
    let window = workers
        .saturating_mul(plan.depth())
        .saturating_mul(last_chunk.max(1)) as u64;
    ready_items > window
}

/// A moving average, for measured times.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Average(Option<f64>);

impl Average {
    pub(crate) fn get(self) -> Option<f64> {
        self.0
    }

    pub(crate) fn add(&mut self, sample: f64, weight: f64) {
        self.0 = Some(match self.0 {
            None => sample,
            Some(avg) => (1.0 - weight) * avg + weight * sample,
        });
    }
}

/// A job's time per item: the items' total time over their number, with older chunks
/// fading out, so a chunk weighs by its items (a single long item moves it little) and the
/// estimate follows a task whose cost drifts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ItemTime {
    ns: f64,
    items: f64,
}

impl ItemTime {
    /// Remembers about this many recent chunks.
    const MEMORY: f64 = 64.0;

    pub(crate) fn get(self) -> Option<f64> {
        (self.items > 0.0).then(|| self.ns / self.items)
    }

    /// A chunk of `items` items took `busy_ns`.
    pub(crate) fn add(&mut self, busy_ns: u64, items: u32) {
        let keep = 1.0 - 1.0 / Self::MEMORY;
        self.ns = self.ns * keep + busy_ns as f64;
        self.items = self.items * keep + f64::from(items);
    }
}

/// Each worker's speed relative to the others, from the time per item it reports: a worker
/// on a slow or shared node gets chunks sized for it.
#[derive(Debug)]
pub(crate) struct Speeds {
    /// Per worker: its time per item divided by the job's average when it answered.
    relative: Vec<Average>,
}

impl Speeds {
    pub(crate) fn new(workers: usize) -> Speeds {
        Speeds {
            relative: vec![Average::default(); workers],
        }
    }

    /// Worker `w` took `item_ns` per item on a chunk of `items` where the job's average is
    /// `job_item_ns`. A chunk of few items says little (one long item is not a slow
    /// worker), so it weighs less.
    pub(crate) fn observe(&mut self, w: usize, items: u32, item_ns: f64, job_item_ns: f64) {
        if job_item_ns > 0.0 && item_ns.is_finite() {
            if let Some(avg) = self.relative.get_mut(w) {
                let weight = 0.3 * (f64::from(items) / 16.0).min(1.0);
                // Every worker starts as an average one.
                if avg.get().is_none() {
                    avg.add(1.0, 1.0);
                }
                avg.add((item_ns / job_item_ns).clamp(0.01, 100.0), weight);
            }
        }
    }

    /// How much slower than average worker `w` is (1.0 until measured).
    pub(crate) fn slowness(&self, w: usize) -> f64 {
        self.relative.get(w).and_then(|a| a.get()).unwrap_or(1.0)
    }
}

/// Workers with room for another chunk, in the order they should get one.
///
/// Holds every worker with fewer than `depth` chunks in flight, each once; a worker is
/// checked again when it reaches the front, so taking a worker and filling it costs O(1)
/// however many workers there are.
#[derive(Debug)]
pub(crate) struct FreeSlots {
    queue: VecDeque<usize>,
    queued: Vec<bool>,
    depth: usize,
}

impl FreeSlots {
    /// Every worker free, for `depth` chunks each.
    pub(crate) fn new(workers: usize) -> FreeSlots {
        FreeSlots {
            queue: (0..workers).collect(),
            queued: vec![true; workers],
            depth: DEFAULT_PREFETCH,
        }
    }

    /// Sets the depth of the current call; when it grows, every worker below it is queued
    /// again (O(workers), only when a call asks for more prefetch than the one before).
    pub(crate) fn set_depth(&mut self, depth: usize, in_flight: impl Fn(usize) -> usize) {
        let grew = depth > self.depth;
        self.depth = depth;
        if grew {
            for w in 0..self.queued.len() {
                if !self.queued[w] && in_flight(w) < depth {
                    self.queued[w] = true;
                    self.queue.push_back(w);
                }
            }
        }
    }

    /// The next worker with room (at most `depth` chunks in flight after one more), if any;
    /// it stays first until [`FreeSlots::filled`] says it got its chunk.
    pub(crate) fn next(&mut self, in_flight: impl Fn(usize) -> usize) -> Option<usize> {
        while let Some(&w) = self.queue.front() {
            if in_flight(w) < self.depth {
                return Some(w);
            }
            self.queue.pop_front();
            self.queued[w] = false;
        }
        None
    }

    /// Worker `w` (the front) got a chunk and now holds `in_flight`: it goes to the back if
    /// it has room for more, so each worker gets one chunk per round.
    pub(crate) fn filled(&mut self, w: usize, in_flight: usize) {
        if self.queue.front() == Some(&w) {
            self.queue.pop_front();
            if in_flight < self.depth {
                self.queue.push_back(w);
            } else {
                self.queued[w] = false;
            }
        }
    }

    /// Worker `w` (the front) gets nothing this time: the next one is looked at first.
    pub(crate) fn pass(&mut self, w: usize) {
        if self.queue.front() == Some(&w) {
            self.queue.pop_front();
            self.queue.push_back(w);
        }
    }

    /// Workers queued (some may turn out full when they reach the front).
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Worker `w` answered a chunk: it has room again.
    #[inline]
    pub(crate) fn freed(&mut self, w: usize) {
        if let Some(q) = self.queued.get_mut(w) {
            if !*q {
                *q = true;
                self.queue.push_back(w);
            }
        }
    }

    /// True when no worker has room.
    pub(crate) fn all_full(&mut self, in_flight: impl Fn(usize) -> usize) -> bool {
        self.next(in_flight).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(item_ns: Option<f64>, remaining: Option<u64>, workers: usize) -> ChunkInput {
        ChunkInput {
            item_ns,
            slowness: 1.0,
            remaining,
            workers,
            depth: 1,
            target_ns: MIN_CHUNK_NS,
            floor_ns: 0.0,
            largest_done: u32::MAX,
        }
    }

    #[test]
    fn chunks_fill_the_target_time_and_split_the_tail() {
        // Unmeasured: one at a time.
        assert_eq!(chunk_items(input(None, None, 4)), 1);
        // Tiny tasks: large chunks, capped.
        assert_eq!(chunk_items(input(Some(100.0), None, 4)), 10_000);
        assert_eq!(chunk_items(input(Some(0.0), None, 4)), 1 << 16);
        // Long tasks: one by one.
        assert_eq!(chunk_items(input(Some(5e6), None, 4)), 1);
        // The tail is split among the workers.
        assert_eq!(chunk_items(input(Some(100.0), Some(800), 4)), 100);
        assert_eq!(chunk_items(input(Some(100.0), Some(3), 4)), 1);
        assert_eq!(chunk_items(input(Some(100.0), Some(0), 4)), 1);
    }

    #[test]
    fn chunks_grow_step_by_step() {
        let mut c = input(Some(100.0), None, 4);
        c.largest_done = 0;
        assert_eq!(chunk_items(c), 1);
        c.largest_done = 1;
        assert_eq!(chunk_items(c), 8);
        c.largest_done = 1000;
        assert_eq!(chunk_items(c), 8000);
        c.largest_done = 2000;
        assert_eq!(chunk_items(c), 10_000);
    }

    #[test]
    fn a_slow_worker_gets_a_smaller_chunk() {
        let mut c = input(Some(1000.0), None, 4);
        assert_eq!(chunk_items(c), 1000);
        c.slowness = 5.0;
        assert_eq!(chunk_items(c), 200);
        c.remaining = Some(8000);
        assert_eq!(chunk_items(c), 200);
        c.slowness = f64::NAN;
        assert_eq!(chunk_items(c), 1000);
        // A worker that seems fast gets no larger chunk.
        c.slowness = 0.2;
        assert_eq!(chunk_items(c), 1000);
    }

    #[test]
    fn the_tail_is_not_cut_finer_than_the_master_can_serve() {
        // 100,000 workers, 10 ms items, 2 µs per message: chunks of at least 40 items.
        let mut c = input(Some(1e7), Some(1000), 100_000);
        c.target_ns = target_chunk_ns(100_000);
        c.floor_ns = tail_floor_ns(100_000);
        assert_eq!(chunk_items(c), 40);
        // Without a tail, the target: 1.6 s of work.
        c.remaining = None;
        assert_eq!(chunk_items(c), 160);
    }

    #[test]
    fn the_target_grows_with_the_workers() {
        assert_eq!(target_chunk_ns(4), MIN_CHUNK_NS);
        assert_eq!(target_chunk_ns(10_000), 1.6e8);
        assert_eq!(target_chunk_ns(100_000_000), MAX_CHUNK_NS);
    }

    #[test]
    fn item_time_weighs_chunks_by_their_items() {
        let mut t = ItemTime::default();
        assert_eq!(t.get(), None);
        t.add(100_000, 100);
        t.add(50_000, 1);
        let ns = t.get().expect("measured");
        assert!((1400.0..1500.0).contains(&ns), "{ns}");
    }

    #[test]
    fn a_window_bounds_unread_results() {
        let plan = ChunkPlan::default();
        assert!(!window_full(16, 4, plan, 2));
        assert!(window_full(17, 4, plan, 2));
    }

    #[test]
    fn free_slots_round_robin_and_refill_whoever_answered() {
        let mut in_flight = [0usize; 3];
        let mut free = FreeSlots::new(3);
        let mut order = Vec::new();
        while let Some(w) = free.next(|w| in_flight[w]) {
            in_flight[w] += 1;
            free.filled(w, in_flight[w]);
            order.push(w);
        }
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
        assert!(free.all_full(|w| in_flight[w]));
        in_flight[1] -= 1;
        free.freed(1);
        assert_eq!(free.next(|w| in_flight[w]), Some(1));
        // Deeper prefetch queues everyone again.
        free.set_depth(3, |w| in_flight[w]);
        assert_eq!(free.next(|w| in_flight[w]), Some(1));
        in_flight[1] += 1;
        free.filled(1, in_flight[1]);
        let mut rest = Vec::new();
        while let Some(w) = free.next(|w| in_flight[w]) {
            in_flight[w] += 1;
            free.filled(w, in_flight[w]);
            rest.push(w);
        }
        assert_eq!(rest, [0, 2, 1]);
    }
}
