//! Waiting with an eye on signals and dead workers, and ending the job when either comes.

use std::time::{Duration, Instant};

use super::{Master, items};
use crate::signals;
use crate::transport::Incoming;

/// How often a waiting master checks that [`LIVENESS_BATCH`] of the worker processes on its
/// host are alive. Open MPI's mpirun waits about a second after a rank dies before it ends the
/// job, and then gives the master only milliseconds: noticing the death first is what lets the
/// master say which tasks the dead rank held.
const LIVENESS_EVERY: Duration = Duration::from_millis(20);
const LIVENESS_BATCH: usize = 4;

/// Chunks in flight listed when the master is interrupted; the rest are counted.
const MAX_REPORT_LINES: usize = 32;

pub(super) const NO_JOURNAL_NOTE: &str =
    "pool:   no journal was set (Options::journal): a rerun starts from the beginning\n";

/// The worker processes on the master's host, checked a few at a time while it waits.
#[derive(Debug)]
pub(super) struct Liveness {
    /// `(worker, pid)`.
    pids: Vec<(usize, u32)>,
    /// When the master last looked, and which process it looked at last.
    checked: Instant,
    next: usize,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            pids: Vec::new(),
            checked: Instant::now(),
            next: 0,
        }
    }
}

impl Liveness {
    pub(super) fn watch(&mut self, worker: usize, pid: u32) {
        self.pids.push((worker, pid));
    }

    /// A watched process that died, if this look (at most every [`LIVENESS_EVERY`], a few
    /// processes per look: the cost stays flat however many workers share the host) finds one.
    fn look(&mut self) -> Option<(usize, u32)> {
        if self.pids.is_empty() || self.checked.elapsed() < LIVENESS_EVERY {
            return None;
        }
        self.checked = Instant::now();
        for _ in 0..LIVENESS_BATCH.min(self.pids.len()) {
            self.next = (self.next + 1) % self.pids.len();
            if !alive(self.pids[self.next].1) {
                return Some(self.pids[self.next]);
            }
        }
        None
    }
}

impl Master {
    /// Waits for the next frame. A signal that interrupted the master, or a worker on this
    /// host that died, ends the job instead.
    pub(super) fn recv(&mut self) -> Incoming {
        let liveness = &mut self.liveness;
        let mut dead = None;
        let mut stop = || {
            if signals::pending().is_some() {
                return true;
            }
            dead = liveness.look();
            dead.is_some()
        };
        match self.link.recv(&mut stop) {
            Some(incoming) => incoming,
            None => match dead {
                Some((w, pid)) => self.worker_died(w, pid),
                None => self.interrupted(),
            },
        }
    }

    /// Ends the job after a SIGINT/SIGTERM (see [`crate::signals`]): reports what each rank
    /// held, syncs journals, and aborts every rank with status 128 + the signal number.
    pub(crate) fn interrupted(&mut self) -> ! {
        let sig = signals::pending().unwrap_or(libc::SIGTERM);
        // The signal handler has already written the headline and the journal note: mpirun
        // sends SIGKILL milliseconds after SIGTERM, so the handler says first what matters.
        self.abort_run(None, 128 + sig)
    }

    /// Ends the job after worker `w` (process `pid`, on this host) died.
    fn worker_died(&mut self, w: usize, pid: u32) -> ! {
        let slot = &self.workers[w];
        let held = match slot.in_flight.front() {
            Some(chunk) => format!(
                "while it held task `{}` {}",
                self.jobs.task(chunk.job),
                items(chunk.first, chunk.count)
            ),
            None => "while it held no task".to_owned(),
        };
        let headline = format!(
            "pool: rank {} (pid {pid} on {}) died {held}: the task crashed its process \
             (a segfault or abort in native code, or the out-of-memory killer); ending the job",
            slot.rank, slot.host
        );
        self.abort_run(Some(headline), 1)
    }

    /// What an interrupted run keeps, one `pool:   ...` line per open journal.
    pub(super) fn journal_note(&self) -> String {
        let mut note = String::new();
        for journal in self.jobs.iter().filter_map(|j| j.journal.as_ref()) {
            note.push_str(&format!(
                "pool:   results received so far are in the journal {}: run again with it to \
                 resume\n",
                journal.path().display()
            ));
        }
        if note.is_empty() {
            note.push_str(NO_JOURNAL_NOTE);
        }
        note
    }

    /// Reports what each rank held and what is kept, syncs journals, and aborts every rank.
    fn abort_run(&mut self, headline: Option<String>, code: i32) -> ! {
        let journal_note = headline.is_some().then(|| self.journal_note());
        let mut report = headline.unwrap_or_default();
        let mut lost = 0u64;
        let mut lines = 0usize;
        for slot in &self.workers {
            for chunk in &slot.in_flight {
                lost += u64::from(chunk.count);
                lines += 1;
                if lines <= MAX_REPORT_LINES {
                    report.push_str(&format!(
                        "\npool:   rank {} on {} held task `{}` {}",
                        slot.rank,
                        slot.host,
                        self.jobs.task(chunk.job),
                        items(chunk.first, chunk.count)
                    ));
                }
            }
        }
        if lines > MAX_REPORT_LINES {
            report.push_str(&format!(
                "\npool:   ... and {} more chunks",
                lines - MAX_REPORT_LINES
            ));
        }
        if lost == 0 {
            report.push_str("\npool:   no task was in flight");
        } else {
            report.push_str(&format!("\npool:   those {lost} results are lost"));
        }
        if let Some(note) = journal_note {
            report.push('\n');
            report.push_str(note.trim_end());
        }
        // Report first: launchers may send SIGKILL milliseconds after SIGTERM.
        eprintln!("{}", report.trim_start());
        tracing::error!(code, lost, "pool: ending the job");
        for job in self.jobs.iter_mut() {
            if let Some(journal) = job.journal.as_mut() {
                journal.sync();
            }
        }
        // What the workers did until now, if POOL_STATS asks: a run stopped by its time limit
        // is the one whose statistics are wanted.
        crate::stats::report_at_exit(|| self.stats());
        self.link.abort(code)
    }
}

/// False once process `pid` has died: it no longer exists, or it is a zombie its launcher has
/// not reaped yet.
fn alive(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => match stat.iter().rposition(|&b| b == b')') {
            Some(end) => !matches!(stat.get(end + 2), Some(b'Z' | b'X')),
            None => true,
        },
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}
