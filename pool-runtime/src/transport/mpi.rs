//! MPI transport: point-to-point messages on the pool's own duplicated communicators.
//!
//! Small frames (at most [`SMALL`] bytes: task and result frames of small items, HELLO, STOP,
//! BYE) land in receives posted ahead of time: the receiver polls the oldest one with
//! `MPI_Test`, which costs one turn of MPI's progress engine, and finds the frame already in
//! its buffer. Polling with a probe instead (`MPI_Improbe`) costs a request and a search of the
//! unexpected-message queue every turn, and then one more call to receive: that doubled the
//! per-task cost of a ping-pong of tiny tasks.
//!
//! A larger frame travels on a second communicator (`bulk`), where the receiver takes it with a
//! matched probe (`MPI_Mprobe` + `MPI_Mrecv`) into a buffer of exactly its size; an empty
//! [`ANNOUNCE`] frame on the first communicator tells the receiver that it is coming. Frames of
//! any size thus keep their order and need no size limit or fixed buffer.
//!
//! Only this module sends on the pool's communicators, and it never sends more than [`SMALL`]
//! bytes on the first one ([`send_small`] and [`send_now`] check): that matters, because Open MPI 4.1 writes a
//! message longer than its posted receive past the end of the buffer (measured, for the self,
//! shared-memory and TCP transports alike). A peer speaking another version of this layout is
//! refused at the handshake: its HELLO names the protocol version.
//!
//! Every send of the master is non-blocking (`MPI_Isend`) and keeps its buffer until the send
//! completes: the master never waits on a send, so a worker blocked sending a large result to it
//! can never deadlock with it. Workers send small frames with a plain, blocking `MPI_Send`,
//! and large results with `MPI_Isend`, so they decode and run their next chunk while the
//! master copies the last result out of their memory (shared memory). Over TCP, though, a large
//! message moves only while its sender is inside MPI, and the master waits for a frame it was
//! told about: so a worker lets a send run on only into a chunk expected to be short
//! ([`OVERLAP_NS`]), and finishes it before a long one (measured: without this, one worker's
//! 1 s chunks held every other worker's results back).

use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::os::raw::c_int;
use std::time::{Duration, Instant};

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};

use super::{Incoming, MasterLink, Waiter, WorkerLink};
use crate::protocol::{MAX_FRAME, Tag};

/// Frames up to this size land in receives posted ahead of time; larger ones go through the
/// bulk communicator.
const SMALL: usize = 64 << 10;

/// The tag of the frame that announces a frame on the bulk communicator. Never one of the
/// protocol's tags; the master and the worker loop never see it.
const ANNOUNCE: c_int = 0x7f00;

/// Receives the master keeps posted, at most: results that can land at once.
const MAX_MASTER_POSTED: usize = 16;

/// Receives a worker keeps posted: the chunk it runs next, and the one after.
const WORKER_POSTED: usize = 2;

/// Send buffers kept for reuse; more would only hold memory.
const MAX_FREE_BUFFERS: usize = 64;

/// Results a worker may have on their way to the master at once.
const MAX_WORKER_SENDS: usize = 2;

/// A worker lets a large result finish sending while it runs its next chunk only when that
/// chunk is expected to take less than this; before a longer one it finishes the send first.
/// Over TCP a large message moves only while its sender is inside MPI, and the master waits
/// for an announced frame: this bounds how long a worker's computing can hold the master up.
/// Over shared memory the master copies the data itself, so the overlap costs nothing there.
const OVERLAP_NS: u64 = 1_000_000;

/// A send in progress.
struct PendingSend {
    request: ffi::MPI_Request,
    /// Owned by the pending send until MPI says it completed; its heap buffer never moves.
    buf: Vec<u8>,
}

/// A receive posted ahead of time.
struct Posted {
    request: ffi::MPI_Request,
    /// Written by MPI until the receive completes; its heap buffer never moves.
    buf: Vec<u8>,
}

/// Receives posted ahead of time on one communicator, from one source (or any), any tag,
/// completed in the order they were posted: MPI matches a message to the earliest posted
/// receive that fits, and these all fit the same messages, so the oldest completes first.
struct PostedQueue {
    comm: ffi::MPI_Comm,
    source: c_int,
    /// How many receives to keep posted.
    depth: usize,
    posted: VecDeque<Posted>,
}

impl PostedQueue {
    fn new(comm: ffi::MPI_Comm, source: c_int, depth: usize) -> PostedQueue {
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
    fn post(&mut self, mut buf: Vec<u8>) {
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
    fn try_take(&mut self, spare: &mut Option<Vec<u8>>) -> Option<(c_int, c_int, Vec<u8>)> {
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
    fn cancel(&mut self) {
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
struct BulkComm {
    comm: ffi::MPI_Comm,
    request: ffi::MPI_Request,
    ready: bool,
}

impl BulkComm {
    fn start(parent: &SimpleCommunicator) -> BulkComm {
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

    fn get(&mut self) -> ffi::MPI_Comm {
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
    fn settle(&mut self) -> bool {
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
const SETTLE: Duration = Duration::from_secs(1);

/// Frees the pool's communicators when a link is dropped. A non-blocking duplication cannot be
/// cancelled, and freeing the communicator it duplicates while it runs crashes Open MPI, so when
/// it does not complete (only after a refused handshake) both are left to `MPI_Finalize`.
fn free_communicators(comm: &mut ManuallyDrop<SimpleCommunicator>, bulk: &mut BulkComm) {
    if bulk.settle() {
        // SAFETY: a communicator MPI_Comm_idup made, no longer used; then the one it
        // duplicated, dropped exactly once (the link is being dropped).
        unsafe {
            ffi::MPI_Comm_free(&mut bulk.comm);
            ManuallyDrop::drop(comm);
        }
    }
}

/// Receives the frame from `source` waiting on the bulk communicator (one was announced), into
/// `buf`, reusing its capacity: a matched probe, then `MPI_Mrecv` of exactly its size. Returns
/// its tag.
fn receive_bulk(comm: ffi::MPI_Comm, source: c_int, buf: &mut Vec<u8>) -> c_int {
    // SAFETY: every out-parameter is a valid local; MPI_Mrecv writes exactly `count` bytes
    // (the probed message's size) into `buf`, which has at least that capacity, and only then
    // is the length set.
    unsafe {
        let mut message = ffi::RSMPI_MESSAGE_NULL;
        let mut status: ffi::MPI_Status = std::mem::zeroed();
        ffi::MPI_Mprobe(source, ffi::RSMPI_ANY_TAG, comm, &mut message, &mut status);
        let mut count: c_int = 0;
        ffi::MPI_Get_count(&status, ffi::RSMPI_UINT8_T, &mut count);
        let len = usize::try_from(count).unwrap_or(0);
        buf.clear();
        buf.reserve(len);
        ffi::MPI_Mrecv(
            buf.as_mut_ptr().cast(),
            count,
            ffi::RSMPI_UINT8_T,
            &mut message,
            &mut status,
        );
        buf.set_len(len);
        status.MPI_TAG
    }
}

/// Starts a non-blocking send of `buf` and returns it as a pending send.
fn isend(comm: ffi::MPI_Comm, dest: c_int, tag: c_int, buf: Vec<u8>) -> PendingSend {
    assert!(buf.len() <= MAX_FRAME, "pool: frame too large for MPI");
    // SAFETY: a request handle is plain data that MPI_Isend overwrites.
    let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
    // SAFETY: the buffer moves into the returned PendingSend, whose owner keeps it alive and
    // unmoved until MPI_Test or MPI_Wait reports the send complete; the count fits an int.
    unsafe {
        ffi::MPI_Isend(
            buf.as_ptr().cast(),
            buf.len() as c_int,
            ffi::RSMPI_UINT8_T,
            dest,
            tag,
            comm,
            &mut request,
        );
    }
    PendingSend { request, buf }
}

/// Completes the oldest send of `pending`, waiting for it if `wait`; returns its buffer if it
/// completed.
fn complete_oldest(pending: &mut VecDeque<PendingSend>, wait: bool) -> Option<Vec<u8>> {
    let oldest = pending.front_mut()?;
    let mut flag: c_int = 1;
    // SAFETY: the request came from MPI_Isend and has not completed yet; MPI_Test and
    // MPI_Wait set it to MPI_REQUEST_NULL on completion, and only then is the buffer freed.
    unsafe {
        if wait {
            ffi::MPI_Wait(&mut oldest.request, ffi::RSMPI_STATUS_IGNORE);
        } else {
            ffi::MPI_Test(&mut oldest.request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
        }
    }
    if flag == 0 {
        return None;
    }
    pending.pop_front().map(|done| done.buf)
}

/// What the master's and a worker's ends of the pool share: the receives posted on the
/// small-frame communicator, both communicators, the waiter, and the sends under way.
struct Endpoint {
    /// Dropped (cancelled) before the communicators it is posted on.
    posted: PostedQueue,
    /// Freed in `Drop` (see [`free_communicators`]).
    comm: ManuallyDrop<SimpleCommunicator>,
    bulk: BulkComm,
    waiter: Waiter,
    /// Sends under way, oldest first.
    pending: VecDeque<PendingSend>,
    /// Buffers of completed sends, for reuse; at most `keep`.
    free: Vec<Vec<u8>>,
    keep: usize,
}

impl Endpoint {
    /// Starts the bulk duplication of `comm` (collective: every rank makes its endpoint) and
    /// posts `depth` receives from `source`.
    fn new(comm: SimpleCommunicator, source: c_int, depth: usize, keep: usize) -> Endpoint {
        Endpoint {
            posted: PostedQueue::new(comm.as_raw(), source, depth),
            bulk: BulkComm::start(&comm),
            comm: ManuallyDrop::new(comm),
            waiter: Waiter::default(),
            pending: VecDeque::new(),
            free: Vec::new(),
            keep,
        }
    }

    /// Moves the buffers of completed sends to the free list, waiting for each if `wait`.
    /// Sends complete about in order, so without waiting this stops at the oldest one still
    /// running.
    fn complete_sends(&mut self, wait: bool) {
        while let Some(buf) = complete_oldest(&mut self.pending, wait) {
            if self.free.len() < self.keep {
                self.free.push(buf);
            }
        }
    }

    /// The next frame, if one has arrived: `(source, tag, bytes)`, an announced large frame
    /// taken from the bulk communicator in its place. A receive taken is posted again into
    /// `spare` at the next call.
    fn take(&mut self, spare: &mut Option<Vec<u8>>) -> Option<(c_int, c_int, Vec<u8>)> {
        if !self.pending.is_empty() {
            self.complete_sends(false);
        }
        let (source, mut tag, mut bytes) = self.posted.try_take(spare)?;
        if tag == ANNOUNCE {
            tag = receive_bulk(self.bulk.get(), source, &mut bytes);
        }
        Some((source, tag, bytes))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.posted.cancel();
        free_communicators(&mut self.comm, &mut self.bulk);
    }
}

pub(crate) struct MpiMaster {
    end: Endpoint,
}

impl MpiMaster {
    /// The master's end of `comm`, where the workers are ranks 1 and up. Collective: every
    /// worker makes its [`MpiWorker`] on the same communicator.
    pub(crate) fn new(comm: SimpleCommunicator) -> MpiMaster {
        let workers = usize::try_from(comm.size()).unwrap_or(1).saturating_sub(1);
        // SAFETY: a constant MPI provides.
        let any = unsafe { ffi::RSMPI_ANY_SOURCE };
        let depth = (2 * workers).clamp(2, MAX_MASTER_POSTED);
        MpiMaster {
            end: Endpoint::new(comm, any, depth, MAX_FREE_BUFFERS),
        }
    }
}

impl MasterLink for MpiMaster {
    fn workers(&self) -> usize {
        usize::try_from(self.end.comm.size()).unwrap_or(1) - 1
    }

    fn rank_of(&self, worker: usize) -> usize {
        worker + 1
    }

    fn send(&mut self, worker: usize, tag: Tag, frame: Vec<u8>) {
        let rank = c_int::try_from(worker + 1).expect("rank fits in an int");
        let end = &mut self.end;
        let comm = end.comm.as_raw();
        if frame.len() <= SMALL {
            end.pending
                .push_back(send_small(comm, rank, tag as c_int, frame));
        } else {
            let send = isend(end.bulk.get(), rank, tag as c_int, frame);
            end.pending.push_back(send);
            end.pending
                .push_back(send_small(comm, rank, ANNOUNCE, Vec::new()));
        }
    }

    fn recv(&mut self, stop: &mut dyn FnMut() -> bool) -> Option<Incoming> {
        let mut waiter = std::mem::take(&mut self.end.waiter);
        let incoming = waiter.wait_until(|| self.try_recv(), stop);
        self.end.waiter = waiter;
        incoming
    }

    fn try_recv(&mut self) -> Option<Incoming> {
        let mut spare = self.end.free.pop();
        let taken = self.end.take(&mut spare);
        if let Some(spare) = spare {
            self.end.free.push(spare);
        }
        let (source, tag, bytes) = taken?;
        Some(Incoming {
            worker: usize::try_from(source).unwrap_or(0).saturating_sub(1),
            tag,
            bytes,
        })
    }

    fn reclaim_send_buffer(&mut self) -> Option<Vec<u8>> {
        self.end.free.pop()
    }

    fn started(&mut self) {
        // Every worker speaks this protocol, so each joined the duplication and is polling:
        // complete it now, before any worker starts a task (a worker deep in a long task
        // would not progress it).
        self.end.bulk.get();
    }

    fn close(&mut self) {
        let mut waiter = Waiter::default();
        waiter.wait(|| {
            self.end.complete_sends(false);
            self.end.pending.is_empty().then_some(())
        });
        self.end.posted.cancel();
    }

    fn abort(&mut self, code: i32) -> ! {
        self.end.comm.abort(code)
    }
}

pub(crate) struct MpiWorker {
    end: Endpoint,
    rank: usize,
}

impl MpiWorker {
    /// A worker's end of `comm`, where the master is rank 0. Collective with
    /// [`MpiMaster::new`].
    pub(crate) fn new(comm: SimpleCommunicator) -> MpiWorker {
        MpiWorker {
            rank: usize::try_from(comm.rank()).unwrap_or(0),
            end: Endpoint::new(comm, 0, WORKER_POSTED, MAX_WORKER_SENDS),
        }
    }
}

impl WorkerLink for MpiWorker {
    fn rank(&self) -> usize {
        self.rank
    }

    fn recv(&mut self, frame: &mut Vec<u8>) -> i32 {
        let mut waiter = std::mem::take(&mut self.end.waiter);
        // The buffer of the frame before becomes the next posted receive.
        let mut spare = Some(std::mem::take(frame));
        let (_, tag, bytes) = waiter.wait(|| self.end.take(&mut spare));
        self.end.waiter = waiter;
        *frame = bytes;
        tag
    }

    fn send(&mut self, tag: Tag, frame: &mut Vec<u8>) {
        assert!(frame.len() <= MAX_FRAME, "pool: frame too large for MPI");
        let end = &mut self.end;
        let comm = end.comm.as_raw();
        if frame.len() <= SMALL {
            // Blocking: a small frame has left before the worker runs any more of the user's
            // code, so the master's oldest posted receive never waits on a computing worker.
            send_now(comm, 0, tag as c_int, frame);
        } else {
            while end.pending.len() >= MAX_WORKER_SENDS {
                end.complete_sends(true);
            }
            let buf = std::mem::replace(frame, end.free.pop().unwrap_or_default());
            end.pending
                .push_back(isend(end.bulk.get(), 0, tag as c_int, buf));
            send_now(comm, 0, ANNOUNCE, &[]);
        }
        if tag == Tag::Bye {
            // The last frame: every send completes, and no receive stays posted.
            end.complete_sends(true);
            end.posted.cancel();
        }
    }

    fn before_run(&mut self, expected_ns: u64) {
        if !self.end.pending.is_empty() && expected_ns > OVERLAP_NS {
            self.end.complete_sends(true);
        }
    }
}

/// [`isend`] on the small-frame communicator, where every receive is posted for at most
/// [`SMALL`] bytes.
fn send_small(comm: ffi::MPI_Comm, dest: c_int, tag: c_int, buf: Vec<u8>) -> PendingSend {
    assert!(
        buf.len() <= SMALL,
        "pool: internal error: large frame on the small path"
    );
    isend(comm, dest, tag, buf)
}

/// Sends a small frame with a blocking `MPI_Send`.
fn send_now(comm: ffi::MPI_Comm, dest: c_int, tag: c_int, frame: &[u8]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `master` until a frame arrives (the sends below are to this very process).
    fn next(master: &mut MpiMaster) -> Incoming {
        loop {
            if let Some(incoming) = master.try_recv() {
                return incoming;
            }
        }
    }

    /// One process, frames sent to itself: small frames land in posted receives in order,
    /// and a large one arrives whole, in its place, through the bulk communicator.
    #[test]
    fn frames_of_every_size_arrive_in_order() {
        let Some(universe) = mpi::initialize() else {
            return;
        };
        let mut master = MpiMaster::new(universe.world().duplicate());
        let (comm, bulk) = (master.end.comm.as_raw(), master.end.bulk.get());
        let big: Vec<u8> = (0..3 * SMALL).map(|i| i as u8).collect();
        let mut sends: VecDeque<PendingSend> = [
            send_small(comm, 0, Tag::Result as c_int, vec![1, 2, 3]),
            isend(bulk, 0, Tag::Result as c_int, big.clone()),
            send_small(comm, 0, ANNOUNCE, Vec::new()),
            send_small(comm, 0, Tag::Bye as c_int, Vec::new()),
            send_small(comm, 0, Tag::Hello as c_int, vec![9; SMALL]),
        ]
        .into();
        let first = next(&mut master);
        assert_eq!(
            (first.worker, first.tag, first.bytes),
            (0, Tag::Result as i32, vec![1, 2, 3])
        );
        let second = next(&mut master);
        assert_eq!(second.tag, Tag::Result as i32);
        assert!(second.bytes == big, "the bulk frame arrives whole");
        let third = next(&mut master);
        assert_eq!((third.tag, third.bytes.len()), (Tag::Bye as i32, 0));
        let last = next(&mut master);
        assert_eq!((last.tag, last.bytes.len()), (Tag::Hello as i32, SMALL));
        while complete_oldest(&mut sends, true).is_some() {}
        master.close();
    }
}
