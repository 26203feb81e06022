//! Start-up and shutdown: every worker says HELLO, every worker gets STOP and says BYE.

use std::time::Instant;

use super::Master;
use crate::error::Error;
use crate::protocol::{self, Hello, Tag};
use crate::registry::Registry;

impl Master {
    /// Waits for every worker's HELLO and checks that all ranks run the same tasks.
    pub(crate) fn handshake(&mut self) -> Result<(), Error> {
        let registry = Registry::global();
        let mut first_error = None;
        if !registry.duplicates().is_empty() {
            first_error = Some(Error::DuplicateTasks(registry.duplicates().to_vec()));
        }
        let started = Instant::now();
        let mut greeted = vec![false; self.workers.len()];
        let mut left = self.workers.len();
        while left > 0 {
            let Some(incoming) = self.recv() else {
                continue;
            };
            let w = incoming.worker;
            let rank = self.link.rank_of(w);
            let result = if Tag::from_raw(incoming.tag) != Some(Tag::Hello) || greeted[w] {
                Err(Error::Protocol {
                    rank,
                    message: format!(
                        "expected one HELLO frame at start-up, got tag {} ({} bytes)",
                        incoming.tag,
                        incoming.bytes.len()
                    ),
                })
            } else {
                greeted[w] = true;
                left -= 1;
                Hello::decode(&incoming.bytes)
                    .map_err(|e| Error::Protocol {
                        rank,
                        message: e.to_string(),
                    })
                    .and_then(|hello| self.check_hello(w, hello, registry))
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        self.meter.restart();
        tracing::info!(
            workers = self.workers.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            ok = first_error.is_none(),
            "pool: every worker said hello"
        );
        match first_error {
            Some(e) => Err(e),
            None => {
                self.link.started();
                self.send_contexts();
                Ok(())
            }
        }
    }

    fn check_hello(&mut self, w: usize, hello: Hello, registry: &Registry) -> Result<(), Error> {
        // Worker processes on this host are watched while the master waits (not worker
        // threads of this process).
        if crate::host::known_host_name() == Some(hello.host.as_str())
            && hello.pid != std::process::id()
        {
            self.liveness.watch(w, hello.pid);
        }
        let slot = &mut self.workers[w];
        slot.host = hello.host;
        tracing::debug!(rank = slot.rank, host = %slot.host, pid = hello.pid, "pool: hello");
        if hello.fingerprint == registry.fingerprint() {
            return Ok(());
        }
        let theirs: Vec<&str> = hello.tasks.iter().map(String::as_str).collect();
        let lacks: Vec<&str> = registry
            .names()
            .iter()
            .copied()
            .filter(|n| !theirs.contains(n))
            .collect();
        let extra: Vec<&str> = theirs
            .iter()
            .copied()
            .filter(|n| !registry.names().contains(n))
            .collect();
        let mut detail = Vec::new();
        if !lacks.is_empty() {
            detail.push(format!("it lacks {}", lacks.join(", ")));
        }
        if !extra.is_empty() {
            detail.push(format!("it has {} that the master lacks", extra.join(", ")));
        }
        if detail.is_empty() {
            detail.push("same names, different registry fingerprint".to_owned());
        }
        Err(Error::RegistryMismatch {
            rank: slot.rank,
            host: slot.host.clone(),
            detail: detail.join("; "),
        })
    }

    /// Stops every worker with exit status `code` and waits until each has said BYE, dropping
    /// whatever results still arrive; then releases them (RELEASE), and each finalizes MPI
    /// and exits. A worker stuck in an item past its timeout is not waited for: before the
    /// release, the transport ends it ([`MasterLink::abandon`](crate::transport::MasterLink::abandon)),
    /// which under MPI ends the whole job with `code` here.
    ///
    /// The release comes last so that no rank is inside `MPI_Finalize` when the master may
    /// still call `MPI_Abort`: Open MPI 4.1's `mpirun` (with Debian's PMIx) deadlocks or
    /// crashes in `PMIx_server_finalize` when an abort meets ranks that are finalizing
    /// (measured: 3 runs in 60 of the timeouts test on a loaded machine hung, one crashed;
    /// none in 60 once no rank was finalizing).
    pub(crate) fn shutdown(&mut self, code: i32) {
        tracing::info!(code, "pool: stopping the workers");
        let stop = protocol::encode_stop(code);
        for w in 0..self.workers.len() {
            self.link.send(w, Tag::Stop, stop.clone());
        }
        let mut said_bye = vec![false; self.workers.len()];
        // Workers to wait for: all but the stuck ones (O(1) per frame: 100,000 workers stop
        // in milliseconds of the master's time).
        let waiting = |master: &Master, said_bye: &[bool]| {
            (0..master.workers.len())
                .filter(|&w| !said_bye[w] && !master.workers[w].stuck)
                .count()
        };
        let mut left = waiting(self, &said_bye);
        while left > 0 {
            let Some(incoming) = self.recv() else {
                // A timeout ran out meanwhile: that worker may be stuck now.
                left = waiting(self, &said_bye);
                continue;
            };
            match Tag::from_raw(incoming.tag) {
                Some(Tag::Bye) if !said_bye[incoming.worker] => {
                    said_bye[incoming.worker] = true;
                    if !self.workers[incoming.worker].stuck {
                        left -= 1;
                    }
                    let rank = self.link.rank_of(incoming.worker);
                    tracing::debug!(rank, "pool: worker stopped");
                }
                Some(Tag::Result | Tag::Folded | Tag::Partial) => {}
                _ => eprintln!(
                    "pool: ignoring an unexpected frame from rank {} during shutdown (tag {})",
                    self.link.rank_of(incoming.worker),
                    incoming.tag
                ),
            }
        }
        let stuck: Vec<usize> = (0..self.workers.len()).filter(|&w| !said_bye[w]).collect();
        if !stuck.is_empty() {
            self.abandon(&stuck, code);
        }
        for w in (0..self.workers.len()).filter(|&w| said_bye[w]) {
            self.link.send(w, Tag::Release, Vec::new());
        }
        self.link.close();
        self.forget_shared();
    }
}
