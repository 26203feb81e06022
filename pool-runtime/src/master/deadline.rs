//! Deadlines: no chunk is sent that the measured task times say would end after the call's
//! deadline ([`Options::deadline`](crate::Options::deadline), `POOL_DEADLINE`, or the end time
//! of the Slurm job, whichever comes first), so that a job ends with a full journal rather
//! than being killed with work half done. The call then fails with
//! [`crate::Error::Deadline`], which says how many inputs were not started.
//!
//! The decision, [`fit`], is a pure function: a chunk for worker `w` is sent when
//! `SAFETY × (what w already holds + the chunk's items × item time × w's slowness)` still ends
//! before the deadline; otherwise it is cut smaller, to what fits. A worker that holds nothing
//! and cannot fit one item ends the call's dispatch: the deadline is reached. Until the task is
//! measured (the first chunk of each worker, one item) there is nothing to go on, and chunks
//! are sent while the deadline has not passed.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::Master;
use crate::env::{self, DeadlineSpec};
use crate::error::Error;

/// Measured times are averages and a chunk may draw long items: a chunk must fit this many
/// times over.
pub(crate) const SAFETY: f64 = 1.25;

/// What [`fit`] says about a chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Fit {
    /// Send a chunk of this many items (at least 1, at most the chunk asked for).
    Items(usize),
    /// Not for this worker now: what it holds already ends too late; ask again when it
    /// answers (or another worker).
    NotNow,
    /// Nothing more of this call can finish in time.
    Reached,
}

/// How many of `wanted` items a worker may be sent with `left_ns` before the deadline, when it
/// already holds `backlog_ns` of work and takes `item_ns × slowness` per item (`item_ns`
/// unknown: not measured yet).
pub(crate) fn fit(
    left_ns: f64,
    item_ns: Option<f64>,
    slowness: f64,
    backlog_ns: f64,
    wanted: usize,
) -> Fit {
    if left_ns <= 0.0 {
        return Fit::Reached;
    }
    let Some(item_ns) = item_ns else {
        return Fit::Items(wanted.max(1));
    };
    let per_item = item_ns.max(1.0) * slowness.max(1.0) * SAFETY;
    let room = left_ns - backlog_ns * SAFETY;
    let items = if room > 0.0 {
        (room / per_item).floor()
    } else {
        0.0
    };
    if items >= 1.0 {
        // `as` saturates: an hour of room for 1 ns items is still `usize::MAX` at most.
        Fit::Items((items as usize).min(wanted.max(1)))
    } else if backlog_ns > 0.0 {
        Fit::NotNow
    } else {
        Fit::Reached
    }
}

/// One call's deadline.
#[derive(Debug)]
struct JobDeadline {
    at: Instant,
    reason: String,
    reached: bool,
}

/// The pool's deadline (from its environment), and each call's.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    pool: Option<(Instant, String)>,
    jobs: HashMap<u32, JobDeadline>,
}

impl Deadlines {
    /// Reads `POOL_DEADLINE` and, under Slurm, the job's end time (unless `POOL_DEADLINE=off`).
    pub(super) fn start(&mut self) -> Result<(), Error> {
        let spec = env::deadline().map_err(|message| Error::Environment {
            variable: env::DEADLINE_VAR,
            message,
        })?;
        let raw = std::env::var(env::DEADLINE_VAR).unwrap_or_default();
        let now = Instant::now();
        let from_env = match spec {
            Some(DeadlineSpec::Off) => return Ok(()),
            None => None,
            Some(DeadlineSpec::After(d)) => now.checked_add(d),
            Some(DeadlineSpec::At(t)) => Some(instant_of(t, now)),
        }
        .map(|at| (at, format!("{}={}", env::DEADLINE_VAR, raw.trim())));
        let slurm = slurm_end_time().map(|(job, end)| {
            let grace = crate::signals::drain_grace();
            let at = instant_of(end, now).checked_sub(grace).unwrap_or(now);
            (
                at,
                format!(
                    "the end time of Slurm job {job}, less the drain grace of {:.0} s",
                    grace.as_secs_f64()
                ),
            )
        });
        self.pool = match (from_env, slurm) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        if let Some((at, reason)) = &self.pool {
            tracing::info!(
                in_s = at.saturating_duration_since(now).as_secs_f64(),
                reason = %reason,
                "pool: deadline"
            );
        }
        Ok(())
    }

    /// Gives job `id` the earlier of `at` and the pool's deadline, if any.
    pub(super) fn set(&mut self, id: u32, at: Option<Instant>) {
        let call = at.map(|at| (at, "Options::deadline".to_owned()));
        let chosen = match (call, self.pool.clone()) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        if let Some((at, reason)) = chosen {
            self.jobs.insert(
                id,
                JobDeadline {
                    at,
                    reason,
                    reached: false,
                },
            );
        }
    }

    pub(super) fn forget(&mut self, id: u32) {
        self.jobs.remove(&id);
    }

    /// Why job `id`'s dispatch stopped, once its deadline is reached.
    pub(super) fn reached(&self, id: u32) -> Option<&str> {
        self.jobs
            .get(&id)
            .filter(|d| d.reached)
            .map(|d| d.reason.as_str())
    }
}

/// `t` on the monotonic clock, with `now` as the present.
fn instant_of(t: SystemTime, now: Instant) -> Instant {
    match t.duration_since(SystemTime::now()) {
        Ok(ahead) => now
            .checked_add(ahead)
            .unwrap_or(now + Duration::from_secs(1 << 40)),
        Err(past) => now.checked_sub(past.duration()).unwrap_or(now),
    }
}

/// The end time of the Slurm job this process runs in (`SLURM_JOB_ID`), from `squeue` (Slurm
/// 22.05 exports no variable with it); `None` outside Slurm, for a job without a time limit,
/// or when `squeue` does not answer within 5 s (with a warning).
fn slurm_end_time() -> Option<(String, SystemTime)> {
    let job = std::env::var("SLURM_JOB_ID").ok()?;
    let job = job.trim().to_owned();
    if job.is_empty() {
        return None;
    }
    let warn = |why: String| {
        eprintln!(
            "pool: warning: cannot read the end time of Slurm job {job} ({why}): no deadline \
             from it; set POOL_DEADLINE to have one"
        );
        None
    };
    let mut child = match std::process::Command::new("squeue")
        .args(["-h", "-j", &job, "-o", "%e"])
        .env("SLURM_TIME_FORMAT", "%s")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return warn(format!("squeue: {e}")),
    };
    let limit = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < limit => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return warn("squeue did not answer within 5 s".to_owned());
            }
        }
    }
    let out = match child.wait_with_output() {
        Ok(out) => out,
        Err(e) => return warn(format!("squeue: {e}")),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return warn(format!("squeue: {}", err.trim()));
    }
    // "N/A", "Unknown" or nothing: no time limit.
    let secs: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((job, SystemTime::UNIX_EPOCH + Duration::from_secs(secs)))
}

impl Master {
    /// Reads the pool's deadline from its environment (`POOL_DEADLINE`, Slurm's end time);
    /// called once, when the pool starts.
    pub(crate) fn start_deadline(&mut self) -> Result<(), Error> {
        self.deadlines.start()
    }

    /// Gives job `id` a deadline: the earlier of `at` (the call's) and the pool's.
    pub(crate) fn set_deadline(&mut self, id: u32, at: Option<Instant>) {
        self.deadlines.set(id, at);
    }

    /// Why job `id` gets no more chunks, once its deadline is reached.
    pub(crate) fn deadline_reached(&self, id: u32) -> Option<&str> {
        self.deadlines.reached(id)
    }

    /// How many of the `size` items of job `id`'s next chunk, for worker `w` (`None`: the
    /// first worker to answer, which then still holds `depth - 1` chunks), end before the
    /// job's deadline; `None`: send nothing now.
    #[inline]
    pub(super) fn within_deadline(
        &mut self,
        id: u32,
        w: Option<usize>,
        size: usize,
        depth: usize,
    ) -> Option<usize> {
        if self.deadlines.jobs.is_empty() {
            return Some(size);
        }
        self.within_job_deadline(id, w, size, depth)
    }

    /// [`Master::within_deadline`] once some job has a deadline (the check before it is
    /// inlined: the chunk of a job without one does not hash its id).
    #[inline(never)]
    fn within_job_deadline(
        &mut self,
        id: u32,
        w: Option<usize>,
        size: usize,
        depth: usize,
    ) -> Option<usize> {
        let Some(deadline) = self.deadlines.jobs.get(&id) else {
            return Some(size);
        };
        if deadline.reached {
            return None;
        }
        let left_ns = deadline
            .at
            .checked_duration_since(Instant::now())
            .map_or(0.0, |d| d.as_nanos() as f64);
        let item_ns = self.jobs.get(id).and_then(|j| j.item_ns.get());
        let slowness = w.map_or(1.0, |w| self.speeds.slowness(w));
        let backlog_ns = match w {
            Some(w) => self.workers[w]
                .in_flight
                .iter()
                .map(|c| {
                    let ns = self.jobs.get(c.job).and_then(|j| j.item_ns.get());
                    f64::from(c.count) * ns.or(item_ns).unwrap_or(0.0) * slowness
                })
                .sum(),
            None => (depth.saturating_sub(1) * size) as f64 * item_ns.unwrap_or(0.0),
        };
        match fit(left_ns, item_ns, slowness, backlog_ns, size) {
            Fit::Items(n) => Some(n),
            Fit::NotNow => None,
            Fit::Reached if w.is_none() => None,
            Fit::Reached => {
                if let Some(d) = self.deadlines.jobs.get_mut(&id) {
                    tracing::info!(job = id, reason = %d.reason, "pool: deadline reached");
                    d.reached = true;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: f64 = 1e6;

    #[test]
    fn a_chunk_that_fits_goes_whole() {
        assert_eq!(
            fit(1000.0 * MS, Some(10.0 * MS), 1.0, 0.0, 8),
            Fit::Items(8)
        );
    }

    #[test]
    fn a_chunk_that_does_not_fit_is_cut_to_what_fits() {
        // 100 ms left, 10 ms items, 1.25 times over: 8 items.
        assert_eq!(
            fit(100.0 * MS, Some(10.0 * MS), 1.0, 0.0, 50),
            Fit::Items(8)
        );
        // A worker twice as slow: 4.
        assert_eq!(
            fit(100.0 * MS, Some(10.0 * MS), 2.0, 0.0, 50),
            Fit::Items(4)
        );
        // What the worker holds comes first: 40 ms of it leaves room for 4.
        assert_eq!(
            fit(100.0 * MS, Some(10.0 * MS), 1.0, 40.0 * MS, 50),
            Fit::Items(4)
        );
        // A worker that seems faster than average is not trusted to be.
        assert_eq!(
            fit(100.0 * MS, Some(10.0 * MS), 0.5, 0.0, 50),
            Fit::Items(8)
        );
    }

    #[test]
    fn a_busy_worker_waits_and_an_idle_one_ends_the_dispatch() {
        assert_eq!(
            fit(20.0 * MS, Some(10.0 * MS), 1.0, 10.0 * MS, 4),
            Fit::NotNow
        );
        assert_eq!(fit(12.0 * MS, Some(10.0 * MS), 1.0, 0.0, 4), Fit::Reached);
        assert_eq!(fit(12.5 * MS, Some(10.0 * MS), 1.0, 0.0, 4), Fit::Items(1));
    }

    #[test]
    fn past_the_deadline_nothing_goes_and_before_a_measurement_everything_does() {
        assert_eq!(fit(0.0, None, 1.0, 0.0, 1), Fit::Reached);
        assert_eq!(fit(-5.0, Some(1.0), 1.0, 0.0, 1), Fit::Reached);
        assert_eq!(fit(1.0, None, 1.0, 0.0, 1), Fit::Items(1));
        assert_eq!(fit(1.0, None, 1.0, 0.0, 0), Fit::Items(1));
    }

    #[test]
    fn huge_rooms_and_tiny_items_do_not_overflow() {
        assert_eq!(fit(f64::MAX, Some(0.0), 1.0, 0.0, 7), Fit::Items(7));
    }

    #[test]
    fn the_earlier_deadline_wins_and_names_itself() {
        let now = Instant::now();
        let mut d = Deadlines {
            pool: Some((now + Duration::from_secs(10), "POOL_DEADLINE=10".to_owned())),
            jobs: HashMap::new(),
        };
        d.set(1, Some(now + Duration::from_secs(5)));
        d.set(2, Some(now + Duration::from_secs(50)));
        d.set(3, None);
        assert_eq!(d.jobs[&1].reason, "Options::deadline");
        assert_eq!(d.jobs[&2].reason, "POOL_DEADLINE=10");
        assert_eq!(d.jobs[&3].reason, "POOL_DEADLINE=10");
        let mut none = Deadlines::default();
        none.set(4, None);
        assert!(none.jobs.is_empty());
        d.forget(1);
        assert!(!d.jobs.contains_key(&1));
        assert_eq!(d.reached(2), None);
    }
}
