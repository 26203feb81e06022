//! Simulated runs: the real master against thousands of virtual workers on a virtual clock.
//!
//! A cluster of 100,000 cores is not at hand, but the code that decides how a pool behaves on
//! one is: the master. A [`Simulation`] runs your pool code (any `map`, `map_unordered` or
//! `submit`) with the same master that runs under `mpirun`, over a transport whose workers
//! are virtual. Each item's compute time comes from a cost model you give; each worker runs
//! its chunks one after another and may be slower than the others (stragglers); the master's
//! own CPU time is added to the clock, so a master that cannot keep up shows as lost
//! efficiency. The items themselves run for real, on this thread (their results are real),
//! but only their virtual cost counts.
//!
//! `examples/scale.rs` in the repository measures the master this way up to 100,000 workers
//! (BENCHMARKS.md has the figures); the runtime's own tests use it to check the schedule
//! deterministically (with [`Simulation::charge_master_time`] off, runs are exactly
//! repeatable).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use pool_runtime::prelude::*;
//! use pool_runtime::sim::Simulation;
//!
//! #[pool_task]
//! fn step(x: u64) -> u64 {
//!     x + 1
//! }
//!
//! # fn main() -> Result<(), Error> {
//! let (sum, report) = Simulation::new(1000)
//!     .cost(|_worker, _index| Duration::from_millis(10))
//!     .run(|pool| pool.map(step, 0..100_000).map(|v| v.iter().sum::<u64>()))?;
//! assert_eq!(sum?, 5_000_050_000);
//! // 100,000 tasks of 10 ms on 1,000 workers: at least 1 s.
//! assert!(report.makespan >= Duration::from_secs(1));
//! println!("efficiency {:.3}", report.efficiency());
//! # Ok(())
//! # }
//! ```

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::error::Error;
use crate::master::Master;
use crate::pool::Pool;
use crate::transport::sim::{SimClock, SimConfig, SimLink};
use crate::worker;

/// A simulated pool: virtual workers, a cost model, and the real master.
pub struct Simulation {
    workers: usize,
    cost: Box<dyn FnMut(usize, u64) -> Duration>,
    slowdown: Box<dyn Fn(usize) -> f64>,
    latency: Duration,
    charge_master: bool,
    workers_per_node: usize,
}

impl fmt::Debug for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("workers", &self.workers)
            .field("latency", &self.latency)
            .field("charge_master", &self.charge_master)
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// `workers` virtual workers (at least 1) whose items take 1 ms each until
    /// [`Simulation::cost`] says otherwise; 2 µs latency per message; the master's CPU time
    /// counted.
    pub fn new(workers: usize) -> Simulation {
        Simulation {
            workers: workers.max(1),
            cost: Box::new(|_, _| Duration::from_millis(1)),
            slowdown: Box::new(|_| 1.0),
            latency: Duration::from_micros(2),
            charge_master: true,
            workers_per_node: 64,
        }
    }

    /// The cost model: how long item `index` takes on worker `worker` (before its
    /// [`Simulation::slowdown`]). Called once per item, when its chunk is sent.
    #[must_use]
    pub fn cost(mut self, cost: impl FnMut(usize, u64) -> Duration + 'static) -> Simulation {
        self.cost = Box::new(cost);
        self
    }

    /// How many times slower than nominal worker `worker` runs (1.0: nominal).
    #[must_use]
    pub fn slowdown(mut self, slowdown: impl Fn(usize) -> f64 + 'static) -> Simulation {
        self.slowdown = Box::new(slowdown);
        self
    }

    /// The one-way latency of every message (default 2 µs).
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Simulation {
        self.latency = latency;
        self
    }

    /// Adds the master's real CPU time to the virtual clock (default `true`). Off, the clock
    /// moves only with the workers' virtual costs and latencies, and a run is exactly
    /// repeatable: for tests.
    #[must_use]
    pub fn charge_master_time(mut self, charge: bool) -> Simulation {
        self.charge_master = charge;
        self
    }

    /// Workers per virtual node (default 64): worker `w` runs on host `sim-node-{w / n}`.
    #[must_use]
    pub fn workers_per_node(mut self, n: usize) -> Simulation {
        self.workers_per_node = n.max(1);
        self
    }

    /// Starts the virtual workers, runs `body` with the pool on the master, stops them, and
    /// returns what `body` returned with what the simulation measured.
    ///
    /// # Errors
    ///
    /// The start-up handshake's (duplicate task names).
    ///
    /// # Panics
    ///
    /// When the master ends the job (as a dead worker or a signal would under MPI), and
    /// when `body` panics (after the workers are stopped).
    pub fn run<R>(self, body: impl FnOnce(&mut Pool) -> R) -> Result<(R, SimReport), Error> {
        let clock = Rc::new(RefCell::new(SimClock::default()));
        let mut cost = self.cost;
        let config = SimConfig {
            workers: self.workers,
            cost: Box::new(move |w, index| {
                u64::try_from(cost(w, index).as_nanos()).unwrap_or(u64::MAX)
            }),
            slowdown: (0..self.workers).map(|w| (self.slowdown)(w)).collect(),
            latency_ns: u64::try_from(self.latency.as_nanos()).unwrap_or(u64::MAX),
            charge_master: self.charge_master,
            hello: worker::hello(String::new()),
            workers_per_node: self.workers_per_node,
            serve: worker::answer,
        };
        let capacity: f64 = config.slowdown.iter().map(|s| 1.0 / s.max(1e-9)).sum();
        let mut master = Master::new(Box::new(SimLink::new(config, Rc::clone(&clock))));
        let read = |clock: &Rc<RefCell<SimClock>>| clock.borrow().clone();
        let before = read(&clock);
        master.handshake()?;
        let started = read(&clock);
        let mut pool = Pool::new(master);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut pool)));
        let mut master = pool.into_master();
        let ended = read(&clock);
        master.shutdown(0);
        let stopped = read(&clock);
        let value = match outcome {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let ns = Duration::from_nanos;
        Ok((
            value,
            SimReport {
                workers: self.workers,
                makespan: ns(ended.now - started.now),
                ideal: ns(((ended.nominal_ns - started.nominal_ns) as f64 / capacity) as u64)
                    .max(ns(ended.longest_ns)),
                master_busy: ns(ended.master_ns - started.master_ns),
                messages: (ended.sent + ended.received) - (started.sent + started.received),
                chunks: ended.chunks - started.chunks,
                worker_busy: ns(ended.busy_ns - started.busy_ns),
                handshake_master: ns(started.master_ns - before.master_ns),
                shutdown_master: ns(stopped.master_ns - ended.master_ns),
            },
        ))
    }
}

/// What a [`Simulation::run`] measured, in virtual time, from the end of the start-up
/// handshake to the end of the body.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimReport {
    /// Virtual workers.
    pub workers: usize,
    /// Virtual time the body took.
    pub makespan: Duration,
    /// The least time the work could take: the items' nominal costs spread over the
    /// workers' capacity (a worker `k` times slower counts `1/k`), or the longest item.
    pub ideal: Duration,
    /// The master's CPU time on the clock (zero without [`Simulation::charge_master_time`]).
    pub master_busy: Duration,
    /// Messages the master sent and received.
    pub messages: u64,
    /// Chunks (TASK messages) sent.
    pub chunks: u64,
    /// Virtual time the workers spent on items, all together.
    pub worker_busy: Duration,
    /// The master's CPU time in the start-up handshake, and in shutdown.
    pub handshake_master: Duration,
    /// See [`SimReport::handshake_master`].
    pub shutdown_master: Duration,
}

impl SimReport {
    /// `ideal / makespan`: 1.0 when no worker ever waited.
    pub fn efficiency(&self) -> f64 {
        if self.makespan.is_zero() {
            return 1.0;
        }
        self.ideal.as_secs_f64() / self.makespan.as_secs_f64()
    }

    /// The share of the makespan the master was busy.
    pub fn master_busy_fraction(&self) -> f64 {
        if self.makespan.is_zero() {
            return 0.0;
        }
        self.master_busy.as_secs_f64() / self.makespan.as_secs_f64()
    }
}
