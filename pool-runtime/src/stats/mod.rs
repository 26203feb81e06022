//! Statistics of a pool's work: per worker the tasks it ran, its busy and idle time and the
//! bytes it was sent and sent back; totals, efficiency and load imbalance.
//!
//! The master counts everything itself as frames go out and come back: a worker measures the
//! time it spends on each chunk and sends it in the chunk's RESULT header, so the statistics
//! cost no extra message. Read them with [`Pool::stats`](crate::Pool::stats) at any time, print
//! them for one call with [`Options::stats`](crate::Options::stats), or for the whole run with
//! `POOL_STATS=1` (a table on stderr when the pool shuts down) or `POOL_STATS=path.json` (the
//! same as JSON in a file).

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::env::StatsRequest;

/// What the workers did, as counted by the master: one row per worker, and totals.
///
/// Times are in seconds. A worker is *busy* while it runs tasks (measured on the worker, per
/// chunk) and *idle* otherwise: waiting for work, sending results, or while the master runs
/// your own code between calls. `Display` prints a table; with `serde_json` (or any serde
/// format) it serializes as a flat record with a `workers` array, and reads back from it.
///
/// # Examples
///
/// ```no_run
/// use pool_runtime::prelude::*;
///
/// #[pool_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// #[pool_main]
/// fn main(pool: &mut Pool) -> Result<(), Error> {
///     let before = pool.stats();
///     pool.map(square, 0..100_000)?;
///     let stats = pool.stats().since(&before); // this call only
///     assert_eq!(stats.tasks, 100_000);
///     eprintln!("{stats}"); // a table
///     println!("{}", stats.to_json());
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// Wall time covered, in seconds: since the pool started (after every worker said hello),
    /// or between two snapshots for [`Stats::since`].
    pub wall_s: f64,
    /// Tasks (items) whose results came back.
    pub tasks: u64,
    /// Tasks that failed (returned `Err`, panicked, or whose data could not cross), among the
    /// results that were read. Inputs that failed to encode on the master count here too.
    pub failed: u64,
    /// Runs of failed tasks again ([`Options::retries`](crate::Options::retries)).
    #[serde(default)]
    pub retried: u64,
    /// Messages with tasks sent (one chunk of consecutive inputs each).
    pub chunks: u64,
    /// Sum of the workers' busy time, in seconds.
    pub busy_s: f64,
    /// Sum of the workers' idle time, in seconds.
    pub idle_s: f64,
    /// Bytes of task messages the master sent (encoded inputs and headers).
    pub input_bytes: u64,
    /// Bytes of result messages the master received (encoded results and headers).
    pub output_bytes: u64,
    /// Result messages the master received: one per chunk for `map` and the like; for
    /// [`Pool::fold`](crate::Pool::fold), one per several chunks plus one partial per worker.
    #[serde(default)]
    pub replies: u64,
    /// Busy time over available time, `busy_s / (workers × wall_s)`: 1.0 when every worker
    /// computed all the time.
    pub efficiency: f64,
    /// How much longer the busiest worker computed than the average one:
    /// `max(busy) / mean(busy) − 1`. 0.0 is a perfect balance; 0.25 means the slowest worker
    /// had a quarter more work than the average, so the run could have been about 20% shorter.
    pub imbalance: f64,
    /// One row per worker, in worker order (MPI rank order).
    pub workers: Vec<WorkerStats>,
}

/// One worker's row of [`Stats`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerStats {
    /// The worker's number, 0-based: MPI rank − 1 under `mpirun`, the thread's number in a
    /// single process.
    pub worker: usize,
    /// The worker's MPI rank (1..N under `mpirun`; 0 for the worker threads of a single
    /// process).
    pub rank: usize,
    /// The host it runs on.
    pub host: String,
    /// Tasks whose results came back from it.
    pub tasks: u64,
    /// Of those, how many failed (see [`Stats::failed`]).
    pub failed: u64,
    /// Of its failures, how many ran again (see [`Stats::retried`]).
    #[serde(default)]
    pub retried: u64,
    /// Chunks (messages with tasks) it was sent.
    pub chunks: u64,
    /// Seconds it spent running tasks.
    pub busy_s: f64,
    /// Seconds it did not: wall time minus busy time.
    pub idle_s: f64,
    /// Bytes of task messages sent to it.
    pub input_bytes: u64,
    /// Bytes of result messages received from it.
    pub output_bytes: u64,
    /// Result messages received from it (see [`Stats::replies`]).
    #[serde(default)]
    pub replies: u64,
}

impl Stats {
    /// What happened between `earlier` (a snapshot from [`Pool::stats`](crate::Pool::stats))
    /// and this snapshot: counts, busy times and wall time subtracted, rates recomputed.
    ///
    /// With several calls open at once (a `submit` waited during a `map_unordered`), the
    /// difference covers all of them.
    #[must_use]
    pub fn since(&self, earlier: &Stats) -> Stats {
        let wall = (self.wall_s - earlier.wall_s).max(0.0);
        let rows = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, now)| {
                let Some(then) = earlier.workers.get(i) else {
                    return now.clone();
                };
                WorkerStats {
                    worker: now.worker,
                    rank: now.rank,
                    host: now.host.clone(),
                    tasks: now.tasks.saturating_sub(then.tasks),
                    failed: now.failed.saturating_sub(then.failed),
                    retried: now.retried.saturating_sub(then.retried),
                    chunks: now.chunks.saturating_sub(then.chunks),
                    busy_s: (now.busy_s - then.busy_s).max(0.0),
                    idle_s: 0.0,
                    input_bytes: now.input_bytes.saturating_sub(then.input_bytes),
                    output_bytes: now.output_bytes.saturating_sub(then.output_bytes),
                    replies: now.replies.saturating_sub(then.replies),
                }
            })
            .collect();
        let master_failed = self.master_failed().saturating_sub(earlier.master_failed());
        Stats::from_rows(wall, rows, master_failed)
    }

    /// The statistics as pretty-printed JSON (what `POOL_STATS=path.json` writes).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("pool: statistics always serialize")
    }

    /// Failures of inputs that never left the master (they failed to encode).
    fn master_failed(&self) -> u64 {
        let on_workers: u64 = self.workers.iter().map(|w| w.failed).sum();
        self.failed.saturating_sub(on_workers)
    }

    /// Totals and rates from the rows; fills in each row's idle time.
    fn from_rows(wall_s: f64, mut workers: Vec<WorkerStats>, master_failed: u64) -> Stats {
        for row in &mut workers {
            row.idle_s = (wall_s - row.busy_s).max(0.0);
        }
        let busy_s: f64 = workers.iter().map(|w| w.busy_s).sum();
        let n = workers.len();
        let mean = if n == 0 { 0.0 } else { busy_s / n as f64 };
        let max = workers.iter().map(|w| w.busy_s).fold(0.0, f64::max);
        Stats {
            wall_s,
            tasks: workers.iter().map(|w| w.tasks).sum(),
            failed: workers.iter().map(|w| w.failed).sum::<u64>() + master_failed,
            retried: workers.iter().map(|w| w.retried).sum(),
            chunks: workers.iter().map(|w| w.chunks).sum(),
            busy_s,
            idle_s: workers.iter().map(|w| w.idle_s).sum(),
            input_bytes: workers.iter().map(|w| w.input_bytes).sum(),
            output_bytes: workers.iter().map(|w| w.output_bytes).sum(),
            replies: workers.iter().map(|w| w.replies).sum(),
            efficiency: if n == 0 || wall_s <= 0.0 {
                0.0
            } else {
                (busy_s / (n as f64 * wall_s)).min(1.0)
            },
            imbalance: if mean > 0.0 { max / mean - 1.0 } else { 0.0 },
            workers,
        }
    }
}

impl fmt::Display for Stats {
    /// A table: one row per worker and a total row; then the number of workers, wall time and
    /// rate on one line, efficiency and load imbalance on the next.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host_width = self
            .workers
            .iter()
            .map(|w| w.host.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        // Worker threads of a single process have no rank of their own: number them.
        let threads = self.workers.iter().all(|w| w.rank == 0);
        writeln!(
            f,
            "{:>6}  {:<host_width$}  {:>10}  {:>7}  {:>8}  {:>10}  {:>10}  {:>6}  {:>9}  {:>9}",
            if threads { "thread" } else { "rank" },
            "host",
            "tasks",
            "failed",
            "chunks",
            "busy s",
            "idle s",
            "busy",
            "sent",
            "received"
        )?;
        let line = |f: &mut fmt::Formatter<'_>, rank: &str, host: &str, w: &WorkerStats| {
            writeln!(
                f,
                "{rank:>6}  {host:<host_width$}  {:>10}  {:>7}  {:>8}  {:>10.3}  {:>10.3}  {:>6}  {:>9}  {:>9}",
                w.tasks,
                w.failed,
                w.chunks,
                w.busy_s,
                w.idle_s,
                percent(w.busy_s, w.busy_s + w.idle_s),
                bytes(w.input_bytes),
                bytes(w.output_bytes),
            )
        };
        for w in &self.workers {
            let id = if threads { w.worker } else { w.rank };
            line(f, &id.to_string(), &w.host, w)?;
        }
        let total = WorkerStats {
            worker: 0,
            rank: 0,
            host: String::new(),
            tasks: self.tasks,
            failed: self.failed,
            retried: self.retried,
            chunks: self.chunks,
            busy_s: self.busy_s,
            idle_s: self.idle_s,
            input_bytes: self.input_bytes,
            output_bytes: self.output_bytes,
            replies: self.replies,
        };
        line(f, "total", "", &total)?;
        let rate = if self.wall_s > 0.0 {
            format!(", {} tasks/s", si(self.tasks as f64 / self.wall_s))
        } else {
            String::new()
        };
        write!(
            f,
            "{} worker{}, {:.3} s wall{rate}\nefficiency {} (busy / workers × wall), \
             load imbalance {} (busiest / mean busy − 1)",
            self.workers.len(),
            if self.workers.len() == 1 { "" } else { "s" },
            self.wall_s,
            percent(self.efficiency, 1.0),
            percent(self.imbalance, 1.0),
        )
    }
}

/// `97.3%`; `-` when there is no whole.
fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.1}%", 100.0 * part / whole)
    } else {
        "-".to_owned()
    }
}

/// `812 B`, `1.2 MB`, `3.4 GB` (decimal units).
fn bytes(n: u64) -> String {
    if n < 1000 {
        format!("{n} B")
    } else {
        format!("{}B", si(n as f64))
    }
}

/// `950`, `1.2 k`, `3.4 M`, `5.6 G`, `7.8 T`.
pub(crate) fn si(x: f64) -> String {
    const UNITS: [&str; 4] = ["k", "M", "G", "T"];
    if x < 999.5 {
        return format!("{x:.0}");
    }
    let mut x = x / 1000.0;
    let mut unit = 0;
    while x >= 999.95 && unit + 1 < UNITS.len() {
        x /= 1000.0;
        unit += 1;
    }
    format!("{x:.1} {}", UNITS[unit])
}

/// The master's counters, updated as frames go out and come back.
#[derive(Debug)]
pub(crate) struct Meter {
    start: Instant,
    rows: Vec<Row>,
    /// Inputs that failed to encode on the master.
    master_failed: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Row {
    tasks: u64,
    failed: u64,
    retried: u64,
    chunks: u64,
    busy_ns: u64,
    input_bytes: u64,
    output_bytes: u64,
    replies: u64,
}

impl Meter {
    pub(crate) fn new(workers: usize) -> Meter {
        Meter {
            start: Instant::now(),
            rows: vec![Row::default(); workers],
            master_failed: 0,
        }
    }

    /// Starts the wall clock again (when the pool is ready).
    pub(crate) fn restart(&mut self) {
        self.start = Instant::now();
    }

    /// A chunk of `bytes` bytes was sent to worker `w`.
    #[inline]
    pub(crate) fn sent(&mut self, w: usize, bytes: usize) {
        if let Some(row) = self.rows.get_mut(w) {
            row.chunks += 1;
            row.input_bytes += bytes as u64;
        }
    }

    /// Worker `w` answered a chunk of `count` tasks with `bytes` bytes.
    #[inline]
    pub(crate) fn received(&mut self, w: usize, bytes: usize, count: u32) {
        if let Some(row) = self.rows.get_mut(w) {
            row.tasks += u64::from(count);
            row.output_bytes += bytes as u64;
            row.replies += 1;
        }
    }

    /// Worker `w` reported `busy_ns` of work on a chunk.
    #[inline]
    pub(crate) fn busy(&mut self, w: usize, busy_ns: u64) {
        if let Some(row) = self.rows.get_mut(w) {
            row.busy_ns = row.busy_ns.saturating_add(busy_ns);
        }
    }

    /// A task run by worker `w` failed and runs again.
    #[inline]
    pub(crate) fn retried(&mut self, w: usize) {
        if let Some(row) = self.rows.get_mut(w) {
            row.retried += 1;
        }
    }

    /// A task run by worker `w` failed; `None`: an input failed on the master.
    #[inline]
    pub(crate) fn failed(&mut self, w: Option<usize>) {
        match w.and_then(|w| self.rows.get_mut(w)) {
            Some(row) => row.failed += 1,
            None => self.master_failed += 1,
        }
    }

    /// A snapshot; `who(w)` gives worker `w`'s rank and host.
    pub(crate) fn snapshot<'a>(&self, who: impl Fn(usize) -> (usize, &'a str)) -> Stats {
        let rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(w, row)| {
                let (rank, host) = who(w);
                WorkerStats {
                    worker: w,
                    rank,
                    host: host.to_owned(),
                    tasks: row.tasks,
                    failed: row.failed,
                    retried: row.retried,
                    chunks: row.chunks,
                    busy_s: Duration::from_nanos(row.busy_ns).as_secs_f64(),
                    idle_s: 0.0,
                    input_bytes: row.input_bytes,
                    output_bytes: row.output_bytes,
                    replies: row.replies,
                }
            })
            .collect();
        Stats::from_rows(self.start.elapsed().as_secs_f64(), rows, self.master_failed)
    }
}

/// At shutdown, or when a signal or a dead worker ends the run: prints or writes the run's
/// statistics if `POOL_STATS` asks for them.
pub(crate) fn report_at_exit(stats: impl FnOnce() -> Stats) {
    match crate::env::stats() {
        StatsRequest::Off => {}
        StatsRequest::Table => eprintln!("pool: statistics of the run\n{}", stats()),
        StatsRequest::Json(path) => {
            if let Err(e) = write_json(&path, &stats()) {
                eprintln!(
                    "pool: cannot write the statistics to {} (POOL_STATS): {e}",
                    path.display()
                );
            }
        }
    }
}

fn write_json(path: &Path, stats: &Stats) -> std::io::Result<()> {
    let mut json = stats.to_json();
    json.push('\n');
    std::fs::write(path, json)
}

#[cfg(test)]
mod tests;
