//! Simulated transport: the real master against virtual workers on a virtual clock.
//!
//! Each virtual worker runs its chunks one after another, as a worker process does: a chunk
//! that arrives at `t` starts when the worker is free, takes the sum of its items' virtual
//! costs (times the worker's slowdown), and its RESULT frame arrives one latency later. The
//! frames are real: the worker's own code answers each TASK frame (the items run for real,
//! but their CPU time is not counted; their virtual cost is). The master's real CPU time
//! between two calls into the link is added to the clock, so a master too slow for its
//! workers shows up as lost efficiency, as it would on a cluster.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::rc::Rc;

use super::{Incoming, MasterLink};
use crate::protocol::{self, Hello, Tag};

/// The cost model: virtual nanoseconds for item `index` on worker `worker`, before slowdown.
pub(crate) type CostFn = Box<dyn FnMut(usize, u64) -> u64>;

/// Answers one frame from the master as a worker would (the worker's own code): the tag of
/// the reply it left in `reply`, if any (a TASK frame gets a RESULT, or FOLDED, frame).
pub(crate) type ServeFn = fn(tag: Tag, frame: &[u8], reply: &mut Vec<u8>) -> Option<Tag>;

/// What the simulation counted; shared with whoever set it up.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimClock {
    /// Virtual time, in nanoseconds.
    pub(crate) now: u64,
    /// Master CPU time added to the clock.
    pub(crate) master_ns: u64,
    /// Frames the master sent, and received.
    pub(crate) sent: u64,
    pub(crate) received: u64,
    /// TASK frames (chunks) sent.
    pub(crate) chunks: u64,
    /// Sum and maximum of the items' virtual costs as run (slowdown included), and the sum
    /// of their nominal costs.
    pub(crate) busy_ns: u64,
    pub(crate) nominal_ns: u64,
    pub(crate) longest_ns: u64,
}

/// The simulation's settings.
pub(crate) struct SimConfig {
    pub(crate) workers: usize,
    pub(crate) cost: CostFn,
    /// Per worker: how many times slower than nominal it runs.
    pub(crate) slowdown: Vec<f64>,
    /// One way, per frame.
    pub(crate) latency_ns: u64,
    /// Adds the master's CPU time to the clock (off: a deterministic clock, for tests).
    pub(crate) charge_master: bool,
    /// The HELLO every worker sends; `host` is replaced by the worker's node name.
    pub(crate) hello: Hello,
    /// Workers per virtual node (host names `sim-node-K`).
    pub(crate) workers_per_node: usize,
    pub(crate) serve: ServeFn,
}

enum Pending {
    Hello,
    Result {
        task: Vec<u8>,
        busy_ns: u64,
        /// Not a copy: once it is answered, its chunk leaves `seen`.
        original: bool,
    },
    /// Another frame from the master, handled in its turn.
    Control {
        tag: Tag,
        frame: Vec<u8>,
    },
    Bye,
}

struct VirtualWorker {
    /// When it finishes what it holds.
    free_at: u64,
    /// What it will send, in order.
    pending: VecDeque<Pending>,
}

pub(crate) struct SimLink {
    config: SimConfig,
    workers: Vec<VirtualWorker>,
    /// `(delivery time, sequence, worker)`: the next frame to arrive is on top.
    events: BinaryHeap<Reverse<(u64, u64, usize)>>,
    seq: u64,
    clock: Rc<RefCell<SimClock>>,
    /// Chunks sent and not answered, by job and first index: a copy of a chunk (see
    /// `master::backup`, which copies only chunks still queued) is not counted twice in the
    /// nominal work. Only chunks in flight: it stays small however many tasks run.
    seen: std::collections::HashSet<(u32, u64)>,
    /// Master CPU time when the master last left the link.
    left_at: u64,
    /// What one clock read costs, not counted as the master's.
    read_cost: u64,
    spare: Vec<Vec<u8>>,
}

impl SimLink {
    pub(crate) fn new(config: SimConfig, clock: Rc<RefCell<SimClock>>) -> SimLink {
        let mut link = SimLink {
            workers: (0..config.workers)
                .map(|_| VirtualWorker {
                    free_at: 0,
                    pending: VecDeque::new(),
                })
                .collect(),
            config,
            events: BinaryHeap::new(),
            seq: 0,
            clock,
            seen: std::collections::HashSet::new(),
            left_at: 0,
            read_cost: read_cost(),
            spare: Vec::new(),
        };
        for w in 0..link.workers.len() {
            let at = link.config.latency_ns;
            link.push(w, at, Pending::Hello);
        }
        link.left_at = thread_cpu_ns();
        link
    }

    fn push(&mut self, w: usize, at: u64, pending: Pending) {
        self.workers[w].pending.push_back(pending);
        self.events.push(Reverse((at, self.seq, w)));
        self.seq += 1;
    }

    /// The master enters the link: its CPU time since it left is added to the clock.
    fn enter(&mut self) {
        if self.config.charge_master {
            let spent = thread_cpu_ns()
                .saturating_sub(self.left_at)
                .saturating_sub(self.read_cost);
            let mut clock = self.clock.borrow_mut();
            clock.now += spent;
            clock.master_ns += spent;
        }
    }

    fn leave(&mut self) {
        if self.config.charge_master {
            self.left_at = thread_cpu_ns();
        }
    }

    /// Delivers the frame on top of the queue (skipping frames a worker takes in silently).
    fn deliver(&mut self, due_only: bool) -> Option<Incoming> {
        loop {
            let Reverse((at, _, _)) = self.events.peek()?;
            if due_only && *at > self.clock.borrow().now {
                return None;
            }
            if let Some(incoming) = self.deliver_one() {
                return Some(incoming);
            }
        }
    }

    fn deliver_one(&mut self) -> Option<Incoming> {
        let Reverse((at, _, w)) = self.events.pop()?;
        let pending = self.workers[w].pending.pop_front()?;
        let (tag, bytes) = match pending {
            Pending::Hello => {
                let mut hello = self.config.hello.clone();
                hello.host = format!("sim-node-{}", w / self.config.workers_per_node.max(1));
                (Tag::Hello, hello.encode())
            }
            Pending::Result {
                task,
                busy_ns,
                original,
            } => {
                let mut result = Vec::new();
                let tag = (self.config.serve)(Tag::Task, &task, &mut result);
                // A FOLDED frame of one chunk starts as a RESULT frame does.
                if let Some(header) = protocol::peek_task_header(&task) {
                    protocol::finish_result_frame(&mut result, header.count, busy_ns);
                    if original {
                        self.seen.remove(&(header.job, header.first));
                    }
                }
                if self.spare.len() < 64 {
                    self.spare.push(task);
                }
                (tag.unwrap_or(Tag::Result), result)
            }
            Pending::Control { tag, frame } => {
                let mut reply = Vec::new();
                let tag = (self.config.serve)(tag, &frame, &mut reply)?;
                (tag, reply)
            }
            Pending::Bye => (Tag::Bye, Vec::new()),
        };
        let mut clock = self.clock.borrow_mut();
        clock.now = clock.now.max(at);
        clock.received += 1;
        Some(Incoming {
            worker: w,
            tag: tag as i32,
            bytes,
            parts: Vec::new(),
        })
    }
}

impl MasterLink for SimLink {
    fn workers(&self) -> usize {
        self.workers.len()
    }

    fn rank_of(&self, worker: usize) -> usize {
        worker + 1
    }

    fn send(&mut self, w: usize, tag: Tag, frame: Vec<u8>) {
        self.enter();
        let latency = self.config.latency_ns;
        let now = {
            let mut clock = self.clock.borrow_mut();
            clock.sent += 1;
            clock.now
        };
        let start = (now + latency).max(self.workers[w].free_at);
        match tag {
            Tag::Task => {
                let slowdown = self.config.slowdown.get(w).copied().unwrap_or(1.0);
                let mut busy = 0u64;
                let mut nominal = 0u64;
                let mut longest = 0u64;
                let header = protocol::peek_task_header(&frame);
                let copy = header.is_some_and(|h| !self.seen.insert((h.job, h.first)));
                if let Some(h) = header {
                    for index in h.first..h.first + u64::from(h.count) {
                        let cost = (self.config.cost)(w, index);
                        let run = (cost as f64 * slowdown) as u64;
                        nominal += cost;
                        busy += run;
                        longest = longest.max(run);
                    }
                }
                let done = start + busy;
                self.workers[w].free_at = done;
                {
                    let mut clock = self.clock.borrow_mut();
                    clock.chunks += 1;
                    clock.busy_ns += busy;
                    if !copy {
                        clock.nominal_ns += nominal;
                        clock.longest_ns = clock.longest_ns.max(longest);
                    }
                }
                self.push(
                    w,
                    done + latency,
                    Pending::Result {
                        task: frame,
                        busy_ns: busy,
                        original: !copy,
                    },
                );
            }
            Tag::Stop => {
                self.workers[w].free_at = start;
                self.push(w, start + latency, Pending::Bye);
            }
            tag => {
                self.workers[w].free_at = start;
                self.push(w, start + latency, Pending::Control { tag, frame });
            }
        }
        self.leave();
    }

    fn recv(&mut self, stop: &mut dyn FnMut() -> bool) -> Option<Incoming> {
        self.enter();
        let incoming = if stop() { None } else { self.deliver(false) };
        self.leave();
        incoming
    }

    fn try_recv(&mut self) -> Option<Incoming> {
        self.enter();
        let incoming = self.deliver(true);
        self.leave();
        incoming
    }

    fn reclaim_send_buffer(&mut self) -> Option<Vec<u8>> {
        self.spare.pop().map(|mut b| {
            b.clear();
            b
        })
    }

    fn close(&mut self) {}

    fn abort(&mut self, code: i32) -> ! {
        panic!("pool: the simulated job was ended with status {code} (see the report above)")
    }

    fn abandon(&mut self, _stuck: &[usize], _code: i32, say: &mut dyn FnMut(&str)) {
        say("simulated workers are left as they are");
    }

    fn in_process(&self) -> bool {
        true
    }
}

/// This thread's CPU time, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The least time two back-to-back clock reads measure: the reads' own cost.
fn read_cost() -> u64 {
    (0..1000)
        .map(|_| {
            let a = thread_cpu_ns();
            thread_cpu_ns().saturating_sub(a)
        })
        .min()
        .unwrap_or(0)
}
