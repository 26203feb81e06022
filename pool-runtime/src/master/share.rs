//! Shared values on the master's side: sending a value once (see [`crate::shared`]), and
//! telling the workers when it is dropped.

use std::any::Any;
use std::sync::{Arc, Weak};

use super::Master;
use crate::protocol::{self, Tag};
use crate::shared::{self, FreeQueue};

impl Master {
    /// Where the pool's `Shared` handles queue their ids when the last one is dropped.
    pub(crate) fn free_queue(&self) -> Weak<FreeQueue> {
        Arc::downgrade(&self.frees)
    }

    /// Makes value `id` available to every worker: in one process, the master's own `value`
    /// (no copy); otherwise `bytes()`, its encoding, broadcast to every worker (`MPI_Bcast`,
    /// announced by a SHARE frame to each; the chunks in flight are answered first, so that
    /// every worker is at its loop, not in a task, when the broadcast starts).
    ///
    /// # Errors
    ///
    /// `bytes()`'s: the value does not encode.
    pub(crate) fn share(
        &mut self,
        id: u64,
        value: Arc<dyn Any + Send + Sync>,
        bytes: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<(), String> {
        if self.link.in_process() {
            shared::insert_value(id, value, self.workers.len());
            self.shared_here.push(id);
            return Ok(());
        }
        if let Some(&w) = self.timeouts.stuck.first() {
            // MPI_Bcast needs every worker, and this one is not listening.
            return Err(format!(
                "rank {} is stuck in an item that ran past its timeout, and a broadcast \
                 needs every worker; share values before calls with Options::timeout, or \
                 pass this one with each task",
                self.workers[w].rank
            ));
        }
        let mut bytes = bytes()?;
        while self.in_flight > 0 {
            self.receive_one();
        }
        let frame = protocol::encode_share(id, bytes.len() as u64);
        for w in 0..self.workers.len() {
            self.link.send(w, Tag::Share, frame.clone());
        }
        self.link.broadcast(&mut bytes);
        Ok(())
    }

    /// Tells every worker which shared values were dropped on the master, once no chunk
    /// waits to be sent (every chunk that may name them has gone out before this frame).
    #[inline]
    pub(crate) fn free_dropped(&mut self) {
        if !self.cut_ahead.is_empty() || self.frees.is_empty() {
            return;
        }
        self.send_frees();
    }

    #[cold]
    fn send_frees(&mut self) {
        let ids = self.frees.take();
        let frame = protocol::encode_free(&ids);
        for w in 0..self.workers.len() {
            self.link.send(w, Tag::Free, frame.clone());
        }
        self.shared_here.retain(|id| !ids.contains(id));
    }

    /// At shutdown, in one process: the values still shared leave this process's store.
    pub(super) fn forget_shared(&mut self) {
        for id in self.shared_here.drain(..) {
            shared::remove(id);
        }
    }
}
