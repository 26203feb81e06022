//! Receive memory made ready ahead of time, for the master's large results.
//!
//! A result the master keeps (a `map` collects every one) is received into memory nobody
//! has touched yet, and the first write to each page of it costs a page fault and the
//! kernel zeroing the page. Measured on the project's VM (8 MiB results, `strace` of
//! `process_vm_readv`, the copy Open MPI's shared-memory transport makes): the master took
//! 4.6-7 ms to receive one into fresh memory, a worker 1.0-1.5 ms into memory it had used
//! before. The master is the one process every result goes through, so it spent most of its
//! time in the kernel while the workers waited for it.
//!
//! A helper thread of the master touches the pages of buffers ahead of need, in the sizes
//! results come in, so that the master's receive only copies; the page faults then cost a
//! core the workers leave idle while they wait for the master, not the master's own time.
//!
//! The unit is an out-of-band part ([`crate::frame`]: a large vector of numbers, `String` or
//! `Bulk` in a result); frames whose bytes are all in band do not use the stock. Only sizes
//! that repeat are prepared: the second part in a row of one size and element type asks for
//! two buffers of that size, and each prepared buffer taken asks for one more. Parts of
//! varying sizes cost a look at the stock each. At most [`STOCK_BYTES`] are prepared or being
//! prepared at once (buffers of another size make room, oldest first, and the helper frees
//! them), buffers of [`MIN_BYTES`] to [`MAX_BYTES`] only, held until the pool ends; the
//! thread starts at the first request, with SIGINT and SIGTERM blocked (the master's thread
//! takes them).
//!
//! An owned input's memory, once its send completed, is given back ([`Prefault::give`]) for
//! results of its size: it is present and often still cached, and comes before the helper's
//! (an echo of owned 1 MiB inputs faulted in half as many pages with it).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::frame::Buffer;
use crate::signals;

/// Smaller parts are received into fresh memory: their faults cost less than the helper's
/// round trip.
pub(super) const MIN_BYTES: usize = 256 << 10;
/// Larger parts are received into fresh memory: a buffer prepared for nothing would hold too
/// much.
pub(super) const MAX_BYTES: usize = 64 << 20;
/// Bytes prepared or being prepared, at most.
pub(super) const STOCK_BYTES: usize = 64 << 20;

/// The element size and byte length of a buffer.
type Size = (u8, usize);

/// What the master and the helper share.
#[derive(Default)]
struct Shared {
    /// Buffers the helper has prepared, oldest first.
    ready: Mutex<VecDeque<(Size, Buffer)>>,
    /// Set when the stock is dropped: the helper skips what is still asked.
    stop: AtomicBool,
}

/// What the master asks the helper for.
enum Request {
    /// A buffer of this size, its pages touched, into the stock.
    Prepare(Size),
    /// Letting go of a buffer the stock no longer wants (its pages go back to the kernel,
    /// which takes time the master need not spend).
    Free(Buffer),
}

/// The master's stock of prepared receive buffers, and the helper thread that fills it.
#[derive(Default)]
pub(super) struct Prefault {
    shared: Arc<Shared>,
    /// Requests to the helper; `None` until the first one.
    ask: Option<mpsc::Sender<Request>>,
    helper: Option<JoinHandle<()>>,
    /// Bytes ready or asked for (the helper only moves them from one to the other).
    held: usize,
    /// The size of the last part received within the limits.
    last: Option<Size>,
    /// Memory of sent parts, of that size, given back for results ([`Prefault::give`]):
    /// ready without the helper. Counted in `held`.
    given: Vec<Buffer>,
}

impl Prefault {
    /// Memory for a part of `len` bytes of `elem`-byte elements: a prepared buffer if one of
    /// that size is ready, fresh memory otherwise. Asks the helper for more of that size
    /// when sizes repeat.
    pub(super) fn buffer(&mut self, elem: u8, len: usize) -> Buffer {
        if !(MIN_BYTES..=MAX_BYTES).contains(&len) {
            return Buffer::with_capacity(elem, len);
        }
        let size = (elem, len);
        let given = self.given.iter().position(|b| buffer_size(b) == size);
        if let Some(at) = given {
            self.held -= len;
            self.last = Some(size);
            return self.given.swap_remove(at);
        }
        let taken = {
            let mut ready = self
                .shared
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let at = ready.iter().position(|(s, _)| *s == size);
            at.and_then(|at| ready.remove(at)).map(|(_, b)| b)
        };
        if taken.is_some() {
            self.held -= len;
            self.ask(size);
        } else if self.last == Some(size) {
            self.ask(size);
            self.ask(size);
        }
        self.last = Some(size);
        taken.unwrap_or_else(|| Buffer::with_capacity(elem, len))
    }

    /// Memory a sent part no longer needs (an owned input's, moved into its frame): kept
    /// for a result of its size if results of that size are coming and the stock has room,
    /// so that the helper need not prepare one; freed otherwise.
    pub(super) fn give(&mut self, buffer: Buffer) {
        let size = buffer_size(&buffer);
        if self.last == Some(size) && self.held + size.1 <= STOCK_BYTES {
            self.held += size.1;
            self.given.push(buffer);
        }
    }

    /// Asks the helper for one buffer of `size`, if the stock has room for it once the
    /// buffers of other sizes are let go.
    fn ask(&mut self, size: Size) {
        let len = size.1;
        if self.held + len > STOCK_BYTES {
            let mut evicted = Vec::new();
            for buffer in std::mem::take(&mut self.given) {
                if buffer_size(&buffer) == size {
                    self.given.push(buffer);
                } else {
                    self.held -= buffer.capacity_bytes();
                    evicted.push(buffer);
                }
            }
            {
                let mut ready = self
                    .shared
                    .ready
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                while self.held + len > STOCK_BYTES {
                    let Some(at) = ready.iter().position(|(s, _)| *s != size) else {
                        break;
                    };
                    if let Some(((_, other), buffer)) = ready.remove(at) {
                        self.held -= other;
                        evicted.push(buffer);
                    }
                }
            }
            for buffer in evicted {
                self.request(Request::Free(buffer));
            }
            if self.held + len > STOCK_BYTES {
                return;
            }
        }
        if self.request(Request::Prepare(size)) {
            self.held += len;
        }
    }

    /// Sends the helper `request`, starting it first if needed; false if there is no helper
    /// (it could not be started).
    fn request(&mut self, request: Request) -> bool {
        let ask = self.ask.get_or_insert_with(|| {
            let (ask, requests) = mpsc::channel();
            let shared = Arc::clone(&self.shared);
            // The master's thread takes SIGINT and SIGTERM (see `signals`): never this one.
            self.helper = signals::with_interrupts_blocked(|| {
                std::thread::Builder::new()
                    .name("pool-prefault".into())
                    .spawn(move || serve(&requests, &shared))
                    .ok()
            });
            ask
        });
        self.helper.is_some() && ask.send(request).is_ok()
    }
}

impl Drop for Prefault {
    fn drop(&mut self) {
        // The helper skips what is still asked, and ends once the channel is closed.
        self.shared.stop.store(true, Relaxed);
        self.ask = None;
        if let Some(helper) = self.helper.take() {
            let _ = helper.join();
        }
    }
}

/// The size of a buffer's memory.
fn buffer_size(buffer: &Buffer) -> Size {
    (buffer.elem(), buffer.capacity_bytes())
}

/// The helper: prepares the buffers asked for, into the stock, and frees those let go.
fn serve(requests: &mpsc::Receiver<Request>, shared: &Shared) {
    for request in requests {
        let (elem, len) = match request {
            Request::Free(buffer) => {
                drop(buffer);
                continue;
            }
            Request::Prepare(_) if shared.stop.load(Relaxed) => continue,
            Request::Prepare(size) => size,
        };
        let mut buffer = Buffer::with_capacity(elem, len);
        let ptr = buffer.as_mut_ptr();
        for at in (0..len).step_by(4096) {
            // SAFETY: within the buffer's capacity of `len` bytes; the bytes stay
            // uninitialized as far as the buffer is concerned (its length is zero), and a
            // receive writes all of them before its length is set.
            unsafe { ptr.add(at).write_volatile(0) };
        }
        shared
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(((elem, len), buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (at most 10 s) until the helper has prepared `n` buffers.
    fn ready_count(stock: &Prefault, n: usize) -> usize {
        let start = std::time::Instant::now();
        loop {
            let count = stock.shared.ready.lock().expect("lock").len();
            if count >= n || start.elapsed().as_secs() >= 10 {
                return count;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn sizes_that_repeat_are_prepared_and_taken() {
        let mut stock = Prefault::default();
        let len = 1 << 20;
        // Small, large and first-seen sizes ask for nothing: no thread.
        stock.buffer(8, MIN_BYTES - 8);
        stock.buffer(8, MAX_BYTES + 8);
        let first = stock.buffer(8, len);
        assert_eq!((first.elem(), first.capacity_bytes()), (8, len));
        assert!(stock.helper.is_none() && stock.held == 0);
        // The second of a size asks for two.
        stock.buffer(8, len);
        assert_eq!(stock.held, 2 * len);
        assert_eq!(ready_count(&stock, 2), 2);
        // A prepared one is taken, and one more asked for.
        let taken = stock.buffer(8, len);
        assert_eq!((taken.elem(), taken.capacity_bytes()), (8, len));
        assert_eq!(stock.held, 2 * len);
        assert_eq!(ready_count(&stock, 2), 2);
        // Another element type is another size.
        let bytes = stock.buffer(1, len);
        assert_eq!(bytes.elem(), 1);
        assert_eq!(stock.held, 2 * len);
    }

    #[test]
    fn memory_given_back_is_taken_before_the_helpers() {
        let mut stock = Prefault::default();
        let len = 1 << 20;
        // Before results of a size come, memory of that size is not kept.
        stock.give(Buffer::with_capacity(8, len));
        assert!(stock.given.is_empty() && stock.held == 0);
        stock.buffer(8, len);
        // Now it is, and it is what the next result of that size gets, without asking the
        // helper for anything.
        let mut given = Buffer::with_capacity(8, len);
        let at = given.as_mut_ptr();
        stock.give(given);
        assert_eq!(stock.held, len);
        let mut taken = stock.buffer(8, len);
        assert_eq!(taken.as_mut_ptr(), at);
        assert!(stock.helper.is_none() && stock.held == 0);
        // Another element type, or another length, is not that size.
        stock.give(Buffer::with_capacity(4, len));
        stock.give(Buffer::with_capacity(8, len + 8));
        assert!(stock.given.is_empty() && stock.held == 0);
        // A repeated size that asks the helper for more makes room by letting go of given
        // memory of other sizes; within the stock's bytes in every case.
        for _ in 0..(STOCK_BYTES / len) + 4 {
            stock.give(Buffer::with_capacity(8, len));
        }
        assert_eq!(stock.held, STOCK_BYTES);
        stock.buffer(1, MIN_BYTES);
        stock.buffer(1, MIN_BYTES);
        assert!(stock.held <= STOCK_BYTES, "{}", stock.held);
        assert_eq!(ready_count(&stock, 2), 2);
    }

    #[test]
    fn the_stock_stays_within_its_bytes() {
        let mut stock = Prefault::default();
        let big = MAX_BYTES / 2;
        for _ in 0..8 {
            stock.buffer(1, big);
        }
        assert!(stock.held <= STOCK_BYTES, "{}", stock.held);
        assert_eq!(ready_count(&stock, 2), 2);
        // A new size that repeats makes room by letting the others go.
        let small = MIN_BYTES;
        stock.buffer(1, small);
        stock.buffer(1, small);
        assert!(stock.held <= STOCK_BYTES, "{}", stock.held);
        assert_eq!(ready_count(&stock, 3), 3);
        let sizes: Vec<usize> = stock
            .shared
            .ready
            .lock()
            .expect("lock")
            .iter()
            .map(|(s, _)| s.1)
            .collect();
        assert!(sizes.contains(&small), "{sizes:?}");
        drop(stock); // joins the helper
    }

    #[test]
    fn dropped_with_requests_queued() {
        let mut stock = Prefault::default();
        for _ in 0..3 {
            stock.buffer(8, MAX_BYTES / 2);
        }
        drop(stock); // the helper skips what is left, and ends
    }

    /// The helper never takes SIGINT or SIGTERM: they are blocked in its thread.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_helper_blocks_interrupts() {
        let mut stock = Prefault::default();
        stock.buffer(1, MIN_BYTES);
        stock.buffer(1, MIN_BYTES);
        // Once it has prepared something, it has named itself.
        assert_eq!(ready_count(&stock, 2), 2);
        // Every helper thread alive (other tests start theirs, which may end meanwhile).
        let masks: Vec<u64> = std::fs::read_dir("/proc/self/task")
            .expect("/proc")
            .filter_map(Result::ok)
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "pool-prefault")
            })
            .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
            .filter_map(|status| {
                let mask = status.lines().find_map(|l| l.strip_prefix("SigBlk:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .collect();
        assert!(!masks.is_empty(), "no helper thread");
        for blocked in masks {
            for sig in [libc::SIGINT, libc::SIGTERM] {
                assert!(
                    blocked & (1 << (sig - 1)) != 0,
                    "signal {sig} not blocked: {blocked:#x}"
                );
            }
        }
    }
}
