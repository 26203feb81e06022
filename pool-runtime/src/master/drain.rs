//! The drain after SIGINT/SIGTERM: no further chunk is sent, and the chunks in flight of calls
//! with a journal may finish, for at most the drain grace, so that their results are journaled
//! before the job ends (see [`crate::signals`] for the signals, and per launcher, what time
//! there is).

use std::time::{Duration, Instant};

use super::Master;

/// What a drain saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Drained {
    /// Items of journaled calls whose results arrived (and were journaled) during the drain.
    pub(super) arrived: u64,
    /// Items of journaled calls still in flight when it ended.
    pub(super) left: u64,
    pub(super) took: Duration,
    /// It ended because the grace was over.
    pub(super) timed_out: bool,
}

impl Master {
    /// Items in flight on workers not known to be dead, of jobs that journal their results.
    fn journaled_in_flight(&self, dead: &[bool]) -> u64 {
        let mut items = 0;
        for (w, slot) in self.workers.iter().enumerate() {
            if dead[w] {
                continue;
            }
            for chunk in &slot.in_flight {
                if self
                    .jobs
                    .get(chunk.job)
                    .is_some_and(|j| j.journal.is_some())
                {
                    items += u64::from(chunk.count);
                }
            }
        }
        items
    }

    /// Sends nothing more, and takes in the results of the journaled chunks in flight until
    /// none is left or `grace` is over, journaling each; `None` when no journaled chunk was
    /// in flight (then there is nothing to wait for).
    ///
    /// A worker on this host found dead no longer counts (its chunks are lost); another SIGINT
    /// ends the process at once (see `signals`).
    pub(super) fn drain(&mut self, grace: Duration) -> Option<Drained> {
        let start = Instant::now();
        let mut dead = vec![false; self.workers.len()];
        let before = self.journaled_in_flight(&dead);
        if before == 0 {
            return None;
        }
        tracing::info!(
            in_flight = before,
            grace_s = grace.as_secs_f64(),
            "pool: draining"
        );
        let mut drained = Drained::default();
        loop {
            // Chunks cut ahead, and retries of failed items, are never sent.
            self.cut_ahead.clear();
            let left = self.journaled_in_flight(&dead);
            if left == 0 {
                break;
            }
            if start.elapsed() >= grace {
                drained.timed_out = true;
                break;
            }
            let liveness = &mut self.liveness;
            let mut died = None;
            let mut stop = || {
                died = liveness.look();
                died.is_some() || start.elapsed() >= grace
            };
            match self.link.recv(&mut stop) {
                Some(incoming) => {
                    self.handle_incoming(incoming);
                    let now = self.journaled_in_flight(&dead);
                    drained.arrived += left.saturating_sub(now);
                }
                None => {
                    if let Some(death) = died {
                        tracing::warn!(
                            rank = self.workers[death.worker].rank,
                            "pool: a worker died during the drain"
                        );
                        dead[death.worker] = true;
                    }
                }
            }
        }
        self.cut_ahead.clear();
        drained.left = self.journaled_in_flight(&vec![false; self.workers.len()]);
        drained.took = start.elapsed();
        Some(drained)
    }
}

/// The report's line about a drain after `signal`, for a grace of `grace`.
pub(super) fn summary(d: &Drained, signal: &str, grace: Duration) -> String {
    let still = match d.left {
        0 => "none is still in flight".to_owned(),
        n if d.timed_out => format!(
            "{n} are still in flight after the grace of {:.1} s (POOL_DRAIN_GRACE)",
            grace.as_secs_f64()
        ),
        n => format!("{n} are still in flight (their workers died)"),
    };
    format!(
        "pool: drained after {signal}: {} results arrived in {:.2} s and are in the journal; {still}",
        d.arrived,
        d.took.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_arrived_and_what_is_left() {
        let d = Drained {
            arrived: 6,
            left: 0,
            took: Duration::from_millis(40),
            timed_out: false,
        };
        assert_eq!(
            summary(&d, "SIGTERM", Duration::from_secs(5)),
            "pool: drained after SIGTERM: 6 results arrived in 0.04 s and are in the journal; \
             none is still in flight"
        );
        let late = Drained {
            left: 3,
            timed_out: true,
            ..d
        };
        assert!(
            summary(&late, "SIGINT", Duration::from_secs(5))
                .ends_with("3 are still in flight after the grace of 5.0 s (POOL_DRAIN_GRACE)")
        );
    }
}
