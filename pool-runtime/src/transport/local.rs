//! In-process transport: worker threads and channels, used when the program runs as one rank.
//!
//! Frames are the same bytes as over MPI, so a program behaves the same in one process as on a
//! cluster (arguments and results make the full serialization round trip).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Incoming, MasterLink, WorkerLink};
use crate::protocol::Tag;
use crate::signals;

/// How often a waiting master asks whether to stop waiting.
const SIGNAL_CHECK: Duration = Duration::from_millis(20);

/// A frame from a worker thread: its worker, tag and bytes (frames between threads hold
/// every byte themselves: no out-of-band parts).
type FromWorker = (usize, i32, Vec<u8>);

pub(crate) struct LocalMaster {
    to_workers: Vec<Sender<(i32, Vec<u8>)>>,
    from_workers: Receiver<FromWorker>,
    /// By worker; `None` once given up ([`MasterLink::abandon`]).
    threads: Vec<Option<JoinHandle<()>>>,
}

struct LocalWorker {
    id: usize,
    from_master: Receiver<(i32, Vec<u8>)>,
    to_master: Sender<FromWorker>,
}

fn incoming((worker, tag, bytes): FromWorker) -> Incoming {
    Incoming {
        worker,
        tag,
        bytes,
        parts: Vec::new(),
    }
}

impl LocalMaster {
    /// Starts `threads` worker threads, each running `serve` (the worker loop) on its link.
    pub(crate) fn start(threads: usize, serve: fn(&mut dyn WorkerLink) -> i32) -> LocalMaster {
        let (to_master, from_workers) = mpsc::channel();
        let mut to_workers = Vec::new();
        let mut handles = Vec::new();
        // Worker threads never take SIGINT/SIGTERM: the master's thread handles them.
        signals::mask_interrupts(true);
        for id in 0..threads {
            let (tx, from_master) = mpsc::channel();
            to_workers.push(tx);
            let mut link = LocalWorker {
                id,
                from_master,
                to_master: to_master.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("pool-worker-{id}"))
                .spawn(move || {
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(&mut link)))
                        .is_err()
                    {
                        eprintln!(
                            "pool: internal error in worker thread {id} (panic above); aborting"
                        );
                        std::process::abort();
                    }
                })
                .expect("cannot start a pool worker thread");
            handles.push(Some(handle));
        }
        signals::mask_interrupts(false);
        LocalMaster {
            to_workers,
            from_workers,
            threads: handles,
        }
    }
}

impl MasterLink for LocalMaster {
    fn workers(&self) -> usize {
        self.to_workers.len()
    }

    fn rank_of(&self, _worker: usize) -> usize {
        0
    }

    fn send(&mut self, worker: usize, tag: Tag, frame: Vec<u8>) {
        // A worker thread only goes away after STOP (or by aborting the process).
        let _ = self.to_workers[worker].send((tag as i32, frame));
    }

    fn recv(&mut self, stop: &mut dyn FnMut() -> bool) -> Option<Incoming> {
        loop {
            if stop() {
                return None;
            }
            match self.from_workers.recv_timeout(SIGNAL_CHECK) {
                Ok(frame) => return Some(incoming(frame)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("pool: every worker thread has exited")
                }
            }
        }
    }

    fn try_recv(&mut self) -> Option<Incoming> {
        self.from_workers.try_recv().ok().map(incoming)
    }

    fn reclaim_send_buffer(&mut self) -> Option<Vec<u8>> {
        None
    }

    fn close(&mut self) {
        for thread in self.threads.drain(..).flatten() {
            let _ = thread.join();
        }
    }

    fn abort(&mut self, code: i32) -> ! {
        std::process::exit(code)
    }

    fn abandon(&mut self, stuck: &[usize], _code: i32, say: &mut dyn FnMut(&str)) {
        say(
            "their threads are left running, not joined; they end with the process (a \
             program ends when main returns)",
        );
        for &w in stuck {
            // Dropping a JoinHandle detaches its thread.
            self.threads[w].take();
        }
    }

    fn in_process(&self) -> bool {
        true
    }
}

impl WorkerLink for LocalWorker {
    fn rank(&self) -> usize {
        0
    }

    fn recv(&mut self, frame: &mut Vec<u8>) -> i32 {
        match self.from_master.recv() {
            Ok((tag, bytes)) => {
                *frame = bytes;
                tag
            }
            // The master is gone without a STOP: behave as if it had sent one.
            Err(_) => {
                *frame = crate::protocol::encode_stop(1);
                Tag::Stop as i32
            }
        }
    }

    fn try_recv(&mut self, frame: &mut Vec<u8>) -> Option<i32> {
        let (tag, bytes) = self.from_master.try_recv().ok()?;
        *frame = bytes;
        Some(tag)
    }

    fn send(&mut self, tag: Tag, frame: &mut Vec<u8>) {
        let _ = self
            .to_master
            .send((self.id, tag as i32, std::mem::take(frame)));
    }
}
