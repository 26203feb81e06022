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
    pub(super) fn look(&mut self) -> Option<Death> {
        if self.pids.is_empty() || self.checked.elapsed() < LIVENESS_EVERY {
            return None;
        }
        self.checked = Instant::now();
        for _ in 0..LIVENESS_BATCH.min(self.pids.len()) {
            self.next = (self.next + 1) % self.pids.len();
            let (worker, pid) = self.pids[self.next];
            if let Some(status) = dead(pid) {
                return Some(Death {
                    worker,
                    pid,
                    status,
                });
            }
        }
        None
    }
}

/// A worker process found dead, with its wait status when it could be read (a zombie its
/// launcher has not reaped yet), as `waitpid` reports it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Death {
    pub(super) worker: usize,
    pid: u32,
    status: Option<i32>,
}

impl Master {
    /// Waits for the next frame. A signal that interrupted the master, or a worker on this
    /// host that died, ends the job instead. `None`: an item's time ran out meanwhile (see
    /// `timeout`), and was dealt with.
    pub(super) fn recv(&mut self) -> Option<Incoming> {
        let liveness = &mut self.liveness;
        let timeouts = &self.timeouts;
        let mut dead = None;
        let mut due = false;
        let mut stop = || {
            if signals::pending().is_some() {
                return true;
            }
            due = timeouts.due();
            dead = liveness.look();
            due || dead.is_some()
        };
        match self.link.recv(&mut stop) {
            Some(incoming) => Some(incoming),
            None => match dead {
                Some(death) => self.worker_died(death),
                None if due && signals::pending().is_none() => {
                    self.check_timeouts();
                    None
                }
                None => self.interrupted(),
            },
        }
    }

    /// Ends the job after a SIGINT/SIGTERM (see [`crate::signals`]): drains (lets the
    /// journaled chunks in flight finish, for at most the drain grace), reports what arrived
    /// and what each rank still held, syncs journals, and aborts every rank with status 128 +
    /// the signal number.
    pub(crate) fn interrupted(&mut self) -> ! {
        let sig = signals::pending().unwrap_or(libc::SIGTERM);
        // The signal handler has already written the headline and the journal note: mpirun
        // sends SIGKILL a second after SIGTERM, so the handler says first what matters.
        let grace = signals::drain_grace();
        if let Some(drained) = self.drain(grace) {
            eprintln!(
                "{}",
                super::drain::summary(&drained, signals::name(sig), grace)
            );
        }
        self.abort_run(None, 128 + sig)
    }

    /// Ends the job after a worker process on this host died: says how, when it is known
    /// (its exit status or the signal that killed it), and what it held.
    fn worker_died(&mut self, death: Death) -> ! {
        let Death {
            worker,
            pid,
            status,
        } = death;
        let slot = &self.workers[worker];
        let held = match slot.in_flight.front() {
            Some(chunk) => format!(
                "while it held task `{}` {}",
                self.jobs.task(chunk.job),
                items(chunk.first, chunk.count)
            ),
            None => "while it held no task".to_owned(),
        };
        let who = format!("rank {} (pid {pid} on {})", slot.rank, slot.host);
        let headline = match status {
            Some(s) if libc::WIFEXITED(s) => format!(
                "pool: {who} exited with status {} {held}: the task ended its process \
                 (std::process::exit, or a library that calls exit); ending the job",
                libc::WEXITSTATUS(s)
            ),
            Some(s) if libc::WIFSIGNALED(s) => {
                let sig = libc::WTERMSIG(s);
                let why = match sig {
                    libc::SIGKILL => "the out-of-memory killer, or kill -9",
                    libc::SIGABRT => "an abort in native code",
                    _ => "a segfault or another crash in native code",
                };
                format!(
                    "pool: {who} died {held}: the task crashed its process (killed by {}: \
                     {why}); ending the job",
                    crate::signals::name(sig)
                )
            }
            _ => format!(
                "pool: {who} died {held}: the task ended its process (a crash in native code, \
                 the out-of-memory killer, or a call to exit: the rank's own line above says \
                 which, when it could write one); ending the job"
            ),
        };
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
        if !note.is_empty() {
            note.push_str(&format!(
                "pool:   the tasks in flight may finish first, for at most {:.1} s \
                 (POOL_DRAIN_GRACE): their results go to the journal too; SIGINT again ends at once\n",
                signals::drain_grace().as_secs_f64()
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
        // The launcher answers the abort below with SIGTERM to every rank: this report says
        // what happened, so the master's signal handler keeps quiet.
        signals::ending();
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

/// `Some` once process `pid` has died: it no longer exists (`Some(None)`: how it ended is not
/// known), or it is a zombie its launcher has not reaped yet (`Some(Some(status))`, its wait
/// status, from `/proc/PID/stat`).
fn dead(pid: u32) -> Option<Option<i32>> {
    match std::fs::read(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces;
        // the exit code is field 52 (Linux 3.5 and later), the 50th after the name.
        Ok(stat) => {
            let end = stat.iter().rposition(|&b| b == b')')?;
            let rest = String::from_utf8_lossy(&stat[end + 1..]);
            let mut fields = rest.split_whitespace();
            match fields.next() {
                Some("Z" | "X") => Some(fields.nth(48).and_then(|f| f.parse().ok())),
                _ => None,
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(None),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_tells_how_it_ended() {
        // A child that exits with status 3 stays a zombie until it is waited for.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .expect("sh");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = dead(pid) {
                break status;
            }
            assert!(Instant::now() < deadline, "the child never ended");
            std::thread::sleep(Duration::from_millis(5));
        };
        let status = status.expect("a zombie's status");
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 3,
            "{status}"
        );
        child.wait().expect("reaped");
        assert_eq!(dead(pid), Some(None));
        assert_eq!(dead(std::process::id()), None);
    }
}
