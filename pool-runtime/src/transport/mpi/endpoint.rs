//! The pieces both ends of the MPI link share: posted receives for small frames, the bulk
//! communicator for large ones, and sends that keep their buffers until MPI is done with them.

use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::os::raw::c_int;
use std::time::{Duration, Instant};

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::SimpleCommunicator;

use super::parts::{PendingSend, isend, receive_bulk};
use super::prefault::Prefault;
use super::{ANNOUNCE, SMALL};
use crate::frame::Part;
use crate::transport::Waiter;

/// The most bytes one MPI message carries here: MPI counts are `int` (2 GiB), so a larger
/// frame goes as several messages of at most this size, back to back on the bulk
/// communicator (MPI keeps messages between two ranks on one communicator in order). Small in
/// unit tests, so that they split frames of a few hundred KiB.
pub(super) const MAX_PIECE: usize = if cfg!(test) {
    SMALL + SMALL / 2
} else {
    1 << 30
};

/// A receive posted ahead of time.
pub(super) struct Posted {
    pub(super) request: ffi::MPI_Request,
    /// Written by MPI until the receive completes; its heap buffer never moves.
    pub(super) buf: Vec<u8>,
}

/// Receives posted ahead of time on one communicator, from one source (or any), any tag,
/// completed in the order they were posted: MPI matches a message to the earliest posted
/// receive that fits, and these all fit the same messages, so the oldest completes first.
pub(super) struct PostedQueue {
    pub(super) comm: ffi::MPI_Comm,
    pub(super) source: c_int,
    /// How many receives to keep posted.
    pub(super) depth: usize,
    pub(super) posted: VecDeque<Posted>,
}

impl PostedQueue {
    pub(super) fn new(comm: ffi::MPI_Comm, source: c_int, depth: usize) -> PostedQueue {
        let mut queue = PostedQueue {
            comm,
            source,
            depth,
            posted: VecDeque::with_capacity(depth),
        };
        for _ in 0..depth {
            queue.post(Vec::new());
        }
        queue
    }

    /// Posts one more receive, into `buf` (grown to [`SMALL`] bytes if needed).
    pub(super) fn post(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        buf.reserve(SMALL);
        // SAFETY: a request handle is plain data that MPI_Irecv overwrites.
        let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: `buf` has room for SMALL bytes and stays alive and unmoved in `posted` until
        // the receive completes (`try_take`) or is cancelled (`cancel`).
        unsafe {
            ffi::MPI_Irecv(
                buf.as_mut_ptr().cast(),
                SMALL as c_int,
                ffi::RSMPI_UINT8_T,
                self.source,
                ffi::RSMPI_ANY_TAG,
                self.comm,
                &mut request,
            );
        }
        self.posted.push_back(Posted { request, buf });
    }

    /// The oldest receive's frame, if it has arrived: `(source, tag, bytes)`.
    ///
    /// A receive taken is posted again at the next call, into `spare` (or a new buffer) if
    /// it is taken: not at once, so that posting it does not delay the answer to the frame
    /// just taken. The others stay posted meanwhile.
    pub(super) fn try_take(
        &mut self,
        spare: &mut Option<Vec<u8>>,
    ) -> Option<(c_int, c_int, Vec<u8>)> {
        if self.posted.len() < self.depth {
            self.post(spare.take().unwrap_or_default());
        }
        let oldest = self.posted.front_mut()?;
        let mut flag: c_int = 0;
        // SAFETY: an all-zero status is a valid value for MPI to overwrite.
        let mut status: ffi::MPI_Status = unsafe { std::mem::zeroed() };
        // SAFETY: the request came from MPI_Irecv and has not completed yet; on completion
        // MPI_Test sets it to MPI_REQUEST_NULL and fills `status`.
        unsafe {
            ffi::MPI_Test(&mut oldest.request, &mut flag, &mut status);
        }
        if flag == 0 {
            return None;
        }
        let mut count: c_int = 0;
        // SAFETY: `status` describes the completed receive.
        unsafe {
            ffi::MPI_Get_count(&status, ffi::RSMPI_UINT8_T, &mut count);
        }
        let mut done = self.posted.pop_front()?;
        let len = usize::try_from(count).unwrap_or(0).min(SMALL);
        // SAFETY: MPI wrote `count` (at most SMALL) bytes into the buffer, which has at least
        // SMALL bytes of capacity.
        unsafe { done.buf.set_len(len) };
        Some((status.MPI_SOURCE, status.MPI_TAG, done.buf))
    }

    /// Cancels every posted receive (before MPI is finalized; a receive that completed
    /// meanwhile is dropped).
    pub(super) fn cancel(&mut self) {
        for mut p in self.posted.drain(..) {
            // SAFETY: a live request from MPI_Irecv; after MPI_Cancel, MPI_Wait completes it
            // (cancelled or not), and only then is its buffer freed.
            unsafe {
                ffi::MPI_Cancel(&mut p.request);
                ffi::MPI_Wait(&mut p.request, ffi::RSMPI_STATUS_IGNORE);
            }
        }
    }
}

impl Drop for PostedQueue {
    fn drop(&mut self) {
        // Normally cancelled already (`close`, BYE); never leave MPI writing into freed memory.
        self.cancel();
    }
}

/// The bulk communicator, a duplicate of the pool's made without blocking
/// (`MPI_Comm_idup`): nothing waits on the other ranks before the handshake has checked that
/// they speak this protocol, so a rank running another version of pool (which would never
/// join the duplication) is refused with a message instead of hanging everyone. The first
/// large frame, always after the handshake, waits for the duplication to complete.
pub(super) struct BulkComm {
    pub(super) comm: ffi::MPI_Comm,
    pub(super) request: ffi::MPI_Request,
    pub(super) ready: bool,
}

impl BulkComm {
    pub(super) fn start(parent: &SimpleCommunicator) -> BulkComm {
        // SAFETY: constants MPI provides; MPI_Comm_idup writes both handles.
        let mut bulk = unsafe {
            BulkComm {
                comm: ffi::RSMPI_COMM_NULL,
                request: ffi::RSMPI_REQUEST_NULL,
                ready: false,
            }
        };
        // SAFETY: a live communicator; `comm` is valid only once `request` completes, which
        // `get` waits for before using it.
        unsafe {
            ffi::MPI_Comm_idup(parent.as_raw(), &mut bulk.comm, &mut bulk.request);
        }
        bulk
    }

    pub(super) fn get(&mut self) -> ffi::MPI_Comm {
        if !self.ready {
            // SAFETY: the request of the MPI_Comm_idup above, not completed yet.
            unsafe {
                ffi::MPI_Wait(&mut self.request, ffi::RSMPI_STATUS_IGNORE);
            }
            self.ready = true;
        }
        self.comm
    }
}

impl BulkComm {
    /// Completes the duplication if every rank joined it, trying for at most [`SETTLE`];
    /// true if it is complete.
    pub(super) fn settle(&mut self) -> bool {
        let start = Instant::now();
        while !self.ready {
            let mut flag: c_int = 0;
            // SAFETY: the request of the MPI_Comm_idup, not completed yet.
            unsafe {
                ffi::MPI_Test(&mut self.request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
            }
            self.ready = flag != 0;
            if !self.ready {
                if start.elapsed() > SETTLE {
                    return false;
                }
                std::thread::yield_now();
            }
        }
        true
    }
}

/// How long a rank that leaves waits for a duplication it never needed: every rank of a pool
/// that started joined it at once; one that did not (a rank of another pool version, refused
/// at the handshake) never will.
pub(super) const SETTLE: Duration = Duration::from_secs(1);

/// Frees the pool's communicators when a link is dropped. A non-blocking duplication cannot be
/// cancelled, and freeing the communicator it duplicates while it runs crashes Open MPI, so when
/// it does not complete (only after a refused handshake) both are left to `MPI_Finalize`.
pub(super) fn free_communicators(comm: &mut ManuallyDrop<SimpleCommunicator>, bulk: &mut BulkComm) {
    if bulk.settle() {
        // SAFETY: a communicator MPI_Comm_idup made, no longer used; then the one it
        // duplicated, dropped exactly once (the link is being dropped).
        unsafe {
            ffi::MPI_Comm_free(&mut bulk.comm);
            ManuallyDrop::drop(comm);
        }
    }
}

/// Completes the oldest send of `pending`, waiting for it if `wait`; returns its buffer and
/// its parts if it completed.
pub(super) fn complete_oldest(
    pending: &mut VecDeque<PendingSend>,
    wait: bool,
) -> Option<(Vec<u8>, Vec<Part>)> {
    // The buffer (and the parts) of a send are freed only once every piece completed.
    let oldest = pending.front_mut()?;
    if !complete(&mut oldest.request, wait) {
        return None;
    }
    // Most sends are one message: no further pieces to look at.
    if !oldest.more.is_empty() && !oldest.more.iter_mut().all(|r| complete(r, wait)) {
        return None;
    }
    pending.pop_front().map(|done| (done.buf, done.parts))
}

/// Tests (or, if `wait`, waits for) one piece of a send; true once it completed.
#[inline]
fn complete(request: &mut ffi::MPI_Request, wait: bool) -> bool {
    let mut flag: c_int = 1;
    // SAFETY: callers pass requests from MPI_Isend only; MPI_Test and MPI_Wait set one to
    // MPI_REQUEST_NULL on completion, and testing or waiting on a null request again is
    // allowed (it says complete at once).
    unsafe {
        if wait {
            ffi::MPI_Wait(request, ffi::RSMPI_STATUS_IGNORE);
        } else {
            ffi::MPI_Test(request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
        }
    }
    flag != 0
}

/// What the master's and a worker's ends of the pool share: the receives posted on the
/// small-frame communicator, both communicators, the waiter, and the sends under way.
pub(super) struct Endpoint {
    /// Dropped (cancelled) before the communicators it is posted on.
    pub(super) posted: PostedQueue,
    /// Freed in `Drop` (see [`free_communicators`]).
    pub(super) comm: ManuallyDrop<SimpleCommunicator>,
    pub(super) bulk: BulkComm,
    pub(super) waiter: Waiter,
    /// Sends under way, oldest first.
    pub(super) pending: VecDeque<PendingSend>,
    /// Buffers of completed sends, for reuse; at most `keep`.
    pub(super) free: Vec<Vec<u8>>,
    pub(super) keep: usize,
    /// The master's: receive memory for large results, made ready ahead of time.
    pub(super) prefault: Option<Prefault>,
}

impl Endpoint {
    /// Starts the bulk duplication of `comm` (collective: every rank makes its endpoint) and
    /// posts `depth` receives from `source`.
    pub(super) fn new(
        comm: SimpleCommunicator,
        source: c_int,
        depth: usize,
        keep: usize,
    ) -> Endpoint {
        Endpoint {
            posted: PostedQueue::new(comm.as_raw(), source, depth),
            bulk: BulkComm::start(&comm),
            comm: ManuallyDrop::new(comm),
            waiter: Waiter::default(),
            pending: VecDeque::new(),
            free: Vec::new(),
            keep,
            prefault: None,
        }
    }

    /// Moves the buffers of completed sends to the free list, waiting for each if `wait`.
    /// Sends complete about in order, so without waiting this stops at the oldest one still
    /// running.
    pub(super) fn complete_sends(&mut self, wait: bool) {
        while let Some((buf, parts)) = complete_oldest(&mut self.pending, wait) {
            if self.free.len() < self.keep {
                self.free.push(buf);
            }
            if !parts.is_empty() {
                self.reclaim_parts(parts);
            }
        }
    }

    /// The parts of a completed send: an owned input's memory goes to the prefault stock,
    /// for a result of its size. Out of line, so that completing a small send stays short.
    #[inline(never)]
    fn reclaim_parts(&mut self, parts: Vec<Part>) {
        if let Some(prefault) = self.prefault.as_mut() {
            for keep in parts.into_iter().filter_map(Part::into_kept) {
                if let Some(buffer) = crate::codec::reclaim(keep) {
                    prefault.give(buffer);
                }
            }
        }
    }

    /// Completes every send from memory a caller lent ([`crate::frame::Data::Lent`]),
    /// waiting for each: the caller's frames have all been answered, so their receivers have
    /// them already.
    pub(super) fn settle_lent(&mut self) {
        for send in self.pending.iter_mut().filter(|s| s.lent()) {
            for request in std::iter::once(&mut send.request).chain(send.more.iter_mut()) {
                complete(request, true);
            }
            // Complete: MPI no longer reads the lent memory.
            send.parts.clear();
        }
    }

    /// The next frame, if one has arrived, an announced large frame taken from the bulk
    /// communicator in its place. A receive taken is posted again into `spare` at the next
    /// call.
    pub(super) fn take(&mut self, spare: &mut Option<Vec<u8>>) -> Option<Taken> {
        if !self.pending.is_empty() {
            self.complete_sends(false);
        }
        let (source, mut tag, mut bytes) = self.posted.try_take(spare)?;
        let mut parts = Vec::new();
        if tag == ANNOUNCE {
            // Into the posted receive's buffer, grown to the frame's in-band size: it comes
            // back as a spare for the next receive, so the next large frame lands in memory
            // already mapped. Out-of-band parts land in memory of their own.
            let announce = bytes.clone();
            let prefault = self.prefault.as_mut();
            (tag, parts) = receive_bulk(self.bulk.get(), source, &announce, &mut bytes, prefault);
        }
        Some(Taken {
            source,
            tag,
            bytes,
            parts,
        })
    }
}

/// A frame [`Endpoint::take`] took.
pub(super) struct Taken {
    pub(super) source: c_int,
    pub(super) tag: c_int,
    pub(super) bytes: Vec<u8>,
    pub(super) parts: Vec<Part>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.posted.cancel();
        free_communicators(&mut self.comm, &mut self.bulk);
    }
}

/// [`isend`] on the small-frame communicator, where every receive is posted for at most
/// [`SMALL`] bytes.
pub(super) fn send_small(
    comm: ffi::MPI_Comm,
    dest: c_int,
    tag: c_int,
    buf: Vec<u8>,
) -> PendingSend {
    assert!(
        buf.len() <= SMALL,
        "pool: internal error: large frame on the small path"
    );
    isend(comm, dest, tag, buf)
}

/// Sends a small frame with a blocking `MPI_Send`.
pub(super) fn send_now(comm: ffi::MPI_Comm, dest: c_int, tag: c_int, frame: &[u8]) {
    assert!(
        frame.len() <= SMALL,
        "pool: internal error: large frame on the small path"
    );
    // SAFETY: `frame` is valid for its length, which is at most SMALL.
    unsafe {
        ffi::MPI_Send(
            frame.as_ptr().cast(),
            frame.len() as c_int,
            ffi::RSMPI_UINT8_T,
            dest,
            tag,
            comm,
        );
    }
}
