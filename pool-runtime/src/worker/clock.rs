//! How long a worker ran a chunk: the busy time it reports in each RESULT frame.
//!
//! The chunk's two clock reads are on the path from a task's arrival to its answer.
//! `Instant::now` is `clock_gettime` through the vDSO, which orders the read after every
//! instruction before it: about 80 cycles each on the machine of BENCHMARKS.md, so with one
//! tiny task per message the two reads were 40% of a worker's time from a frame's arrival to
//! its answer (measured with time-stamp counter marks in the loop). Where the kernel itself
//! keeps time with the time-stamp counter (its clocksource is `tsc`: the counter runs at a
//! constant rate and agrees across CPUs), a worker reads that counter instead, and converts
//! ticks to nanoseconds at a rate it measured against `Instant` over its first
//! [`CALIBRATION`] of timing chunks. Until then, and everywhere else, it uses `Instant`.
//! The rate is measured on each thread that times chunks (a worker process has one; in one
//! process, each worker thread measures its own).

use std::cell::Cell;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// How long the counter's rate is measured against `Instant` before it is used alone.
const CALIBRATION: Duration = Duration::from_millis(10);

/// The most ticks between the two counter reads around a read of `Instant` for the pair to
/// count (see [`paired`]): about 10 µs, so the rate is known to within 0.2% even when the
/// thread was stopped right there, and usually to a few parts per million.
const MAX_SPREAD: u64 = 20_000;

/// When a chunk started (see [`start`]): for the thread that started it only, whose rate
/// converts its ticks (so it is not `Send`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started {
    /// `None` once the counter is calibrated on this thread.
    instant: Option<Instant>,
    /// The counter (0 where it is not used).
    ticks: u64,
    this_thread: PhantomData<*const ()>,
}

thread_local! {
    /// Nanoseconds per tick of the counter, once measured on this thread (0 before).
    static NS_PER_TICK: Cell<f64> = const { Cell::new(0.0) };
    /// When this thread first timed a chunk, by both clocks.
    static ORIGIN: Cell<Option<(Instant, u64)>> = const { Cell::new(None) };
}

/// The moment a chunk starts.
#[inline]
pub(crate) fn start() -> Started {
    let ticks = ticks();
    if ticks != 0 && NS_PER_TICK.get() > 0.0 {
        return Started {
            instant: None,
            ticks,
            this_thread: PhantomData,
        };
    }
    start_uncalibrated(ticks)
}

/// Nanoseconds since `started`.
#[inline]
pub(crate) fn busy_ns(started: Started) -> u64 {
    match started.instant {
        // A thread's counter is calibrated for good: `started` came from the same thread.
        None => (ticks().saturating_sub(started.ticks) as f64 * NS_PER_TICK.get()) as u64,
        Some(instant) => busy_ns_uncalibrated(instant),
    }
}

/// [`start`] before the counter is calibrated (or where it is not used).
#[cold]
#[inline(never)]
fn start_uncalibrated(ticks: u64) -> Started {
    if ticks != 0 && ORIGIN.get().is_none() {
        ORIGIN.set(paired());
    }
    Started {
        instant: Some(Instant::now()),
        ticks,
        this_thread: PhantomData,
    }
}

/// [`busy_ns`] by `Instant`; calibrates the counter once [`CALIBRATION`] has passed since
/// this thread first timed a chunk.
#[cold]
#[inline(never)]
fn busy_ns_uncalibrated(started: Instant) -> u64 {
    let now = Instant::now();
    if let Some((origin, origin_ticks)) = ORIGIN.get() {
        if now.duration_since(origin) >= CALIBRATION {
            if let Some((at, ticks)) = paired().filter(|&(_, ticks)| ticks > origin_ticks) {
                let span = at.duration_since(origin).as_nanos() as f64;
                NS_PER_TICK.set(span / (ticks - origin_ticks) as f64);
            }
        }
    }
    u64::try_from(now.duration_since(started).as_nanos()).unwrap_or(u64::MAX)
}

/// `Instant::now` and the counter at the same moment: the counter is read before and after
/// the clock, and the pair counts only when the two reads are close (the thread was not
/// stopped in between); `None` otherwise, or where the counter is not used.
fn paired() -> Option<(Instant, u64)> {
    let before = ticks();
    let now = Instant::now();
    let after = ticks();
    let spread = after.checked_sub(before)?;
    (before != 0 && spread <= MAX_SPREAD).then_some((now, before + spread / 2))
}

/// The time-stamp counter where the kernel keeps time with it; 0 elsewhere.
#[inline]
fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if counter_trusted() {
        // SAFETY: `rdtsc` exists on every x86_64 CPU and only reads the counter.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    0
}

/// True where the kernel's clocksource is the time-stamp counter (it checked that the
/// counter is invariant and synchronised across CPUs); read once per process.
#[cfg(target_arch = "x86_64")]
fn counter_trusted() -> bool {
    static TRUSTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRUSTED.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|source| source.trim() == "tsc")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Busy-waits `d`, as a task would run.
    fn spin(d: Duration) {
        let t = Instant::now();
        while t.elapsed() < d {}
    }

    /// Times a spin of `d` and checks the measure against it (generous bounds: a test
    /// machine may stop this thread for a while).
    fn check(d: Duration) {
        let started = start();
        spin(d);
        let ns = busy_ns(started);
        assert!(ns >= d.as_nanos() as u64 * 9 / 10, "{ns} ns for {d:?}");
        assert!(ns < d.as_nanos() as u64 + 500_000_000, "{ns} ns for {d:?}");
    }

    #[test]
    fn measures_before_and_after_calibration() {
        // Before: by `Instant`.
        check(Duration::from_millis(2));
        // Past the calibration span: by the counter, where the kernel trusts it.
        let calibrated = calibrate_here();
        assert_eq!(
            calibrated,
            ticks() != 0,
            "calibrated exactly where the counter is used"
        );
        if calibrated {
            assert!(start().instant.is_none());
            check(Duration::from_millis(5));
            check(Duration::from_micros(200));
        }
    }

    /// Times chunks on this thread past the calibration span; true if it is calibrated.
    fn calibrate_here() -> bool {
        check(Duration::from_millis(1));
        spin(CALIBRATION);
        // A pair of reads is refused when the thread was stopped between them: try again.
        for _ in 0..100 {
            check(Duration::from_millis(1));
            if NS_PER_TICK.get() > 0.0 {
                break;
            }
        }
        NS_PER_TICK.get() > 0.0
    }

    #[test]
    fn a_thread_calibrates_for_itself() {
        // However long this takes, a thread that has timed nothing has no rate of its own.
        calibrate_here();
        let other = std::thread::spawn(|| (NS_PER_TICK.get(), start().instant.is_some()));
        assert_eq!(other.join().unwrap(), (0.0, true));
    }
}
