//! The drain grace, and a worker process's SIGINT/SIGTERM: it finishes what it holds (see the
//! parent module's docs).

use std::os::raw::c_int;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicI32, AtomicU64};
use std::time::Duration;

use super::{Line, RANK, handle, name};

/// How long the master waits for the chunks in flight after SIGINT/SIGTERM, in milliseconds.
static DRAIN_GRACE_MS: AtomicU64 = AtomicU64::new(DEFAULT_DRAIN_GRACE.as_millis() as u64);

/// The drain grace when neither `POOL_DRAIN_GRACE` nor `Launch::drain_grace` sets one: shorter
/// than Slurm's `KillWait` (30 s by default, often 10 s), so the master's report and the
/// journal sync come before Slurm's SIGKILL.
pub(crate) const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// How long after the drain grace a signalled worker process waits for the job to end before
/// it ends itself.
pub(crate) const WORKER_MARGIN: Duration = Duration::from_secs(30);

/// Sets the drain grace (see the module docs); call it before the pool starts, on every rank.
pub(crate) fn set_drain_grace(grace: Duration) {
    DRAIN_GRACE_MS.store(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX), SeqCst);
}

/// How long the master waits for the chunks in flight after SIGINT/SIGTERM.
pub(crate) fn drain_grace() -> Duration {
    Duration::from_millis(DRAIN_GRACE_MS.load(Relaxed))
}

/// The first SIGINT/SIGTERM a worker process got, or 0.
static WORKER_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// A worker's SIGINT/SIGTERM: it keeps working (see the module docs), and ends itself if the
/// job has not ended [`WORKER_MARGIN`] after the drain grace; a second SIGINT ends it at once.
pub(super) extern "C" fn on_worker_interrupt(sig: c_int) {
    let first = WORKER_SIGNAL.load(SeqCst);
    if first != 0 {
        if sig == libc::SIGINT {
            // SAFETY: signal(2) and raise(3) are async-signal-safe.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
        }
        return;
    }
    WORKER_SIGNAL.store(sig, SeqCst);
    let limit = (drain_grace() + WORKER_MARGIN)
        .as_secs()
        .min(u64::from(u32::MAX));
    // SAFETY: sigaction(2) and alarm(2) are async-signal-safe; `on_worker_alarm` is too.
    unsafe {
        handle(libc::SIGALRM, on_worker_alarm);
        libc::alarm(limit as u32);
    }
}

/// The job did not end long after a worker was signalled: it ends itself.
extern "C" fn on_worker_alarm(_: c_int) {
    let sig = WORKER_SIGNAL.load(SeqCst);
    let mut line = Line::new();
    line.push("pool: rank ")
        .push_u64(RANK.load(Relaxed) as u64)
        .push(": ")
        .push(name(sig))
        .push(" came ")
        .push_u64((drain_grace() + WORKER_MARGIN).as_secs())
        .push(
            " s ago and the job has not ended (its master is gone, or the launcher does not \
             end it): exiting\n",
        );
    line.write_stderr();
    // SAFETY: _exit(2) is async-signal-safe.
    unsafe { libc::_exit(128 + sig) }
}
