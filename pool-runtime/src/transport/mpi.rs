//! MPI transport: point-to-point messages on the pool's own duplicated communicator.
//!
//! Receives use a matched probe (`MPI_Improbe` + `MPI_Mrecv`), so frames of any size arrive
//! in buffers of exactly their size and no other receive can steal a probed message. The master
//! sends with `MPI_Isend` and keeps each buffer until the send completes: it never blocks on a
//! send, so a worker blocked sending a large result to it can never deadlock with it.

use std::collections::VecDeque;
use std::os::raw::c_int;

use mpi::datatype::traits::Equivalence;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};

use super::{Incoming, MasterLink, Waiter, WorkerLink};
use crate::protocol::Tag;

/// The largest frame one MPI message can carry: MPI counts are `int`.
pub(crate) const MAX_FRAME: usize = c_int::MAX as usize;

/// Send buffers kept for reuse; more would only hold memory.
const MAX_FREE_BUFFERS: usize = 64;

pub(crate) struct MpiMaster {
    comm: SimpleCommunicator,
    waiter: Waiter,
    pending: VecDeque<PendingSend>,
    free: Vec<Vec<u8>>,
}

struct PendingSend {
    request: ffi::MPI_Request,
    /// Owned by the pending send until MPI says it completed; its heap buffer never moves.
    buf: Vec<u8>,
}

impl MpiMaster {
    pub(crate) fn new(comm: SimpleCommunicator) -> MpiMaster {
        MpiMaster {
            comm,
            waiter: Waiter::default(),
            pending: VecDeque::new(),
            free: Vec::new(),
        }
    }

    /// Moves the buffers of completed sends to the free list. Sends complete about in order,
    /// so this stops at the oldest one still running.
    fn progress_sends(&mut self) {
        while let Some(oldest) = self.pending.front_mut() {
            let mut flag: c_int = 0;
            // SAFETY: the request came from MPI_Isend and has not completed yet; MPI_Test
            // writes `flag` and, on completion, sets the request to MPI_REQUEST_NULL.
            unsafe {
                ffi::MPI_Test(&mut oldest.request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
            }
            if flag == 0 {
                return;
            }
            if let Some(done) = self.pending.pop_front() {
                if self.free.len() < MAX_FREE_BUFFERS {
                    self.free.push(done.buf);
                }
            }
        }
    }

    fn probe(&mut self) -> Option<Incoming> {
        // Receive into a buffer of a completed send: no fresh allocation (and no page faults
        // on fresh memory) per frame once the pool is running.
        let mut bytes = self.free.pop().unwrap_or_default();
        let Some((source, tag)) = try_receive(self.comm.as_raw(), any_source(), &mut bytes) else {
            self.free.push(bytes);
            return None;
        };
        Some(Incoming {
            worker: usize::try_from(source).unwrap_or(0).saturating_sub(1),
            tag,
            bytes,
        })
    }
}

fn any_source() -> c_int {
    // SAFETY: a constant MPI provides.
    unsafe { ffi::RSMPI_ANY_SOURCE }
}

/// Receives one frame from `source`, if one has arrived, into `buf` (reusing its capacity):
/// a matched probe (`MPI_Improbe`), then `MPI_Mrecv` of exactly its size. Returns the
/// sender's rank and the tag.
fn try_receive(comm: ffi::MPI_Comm, source: c_int, buf: &mut Vec<u8>) -> Option<(c_int, c_int)> {
    // SAFETY: every out-parameter is a valid local; MPI_Mrecv writes exactly `count` bytes
    // (the probed message's size) into `buf`, which has at least that capacity, and only then
    // is the length set.
    unsafe {
        let mut flag: c_int = 0;
        let mut message = ffi::RSMPI_MESSAGE_NULL;
        let mut status: ffi::MPI_Status = std::mem::zeroed();
        ffi::MPI_Improbe(
            source,
            ffi::RSMPI_ANY_TAG,
            comm,
            &mut flag,
            &mut message,
            &mut status,
        );
        if flag == 0 {
            return None;
        }
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
        Some((status.MPI_SOURCE, status.MPI_TAG))
    }
}

impl MasterLink for MpiMaster {
    fn workers(&self) -> usize {
        usize::try_from(self.comm.size()).unwrap_or(1) - 1
    }

    fn rank_of(&self, worker: usize) -> usize {
        worker + 1
    }

    fn send(&mut self, worker: usize, tag: Tag, frame: Vec<u8>) {
        assert!(frame.len() <= MAX_FRAME, "pool: frame too large for MPI");
        let rank = c_int::try_from(worker + 1).expect("rank fits in an int");
        // SAFETY: a request handle is plain data that MPI_Isend overwrites.
        let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: the buffer stays alive and unmoved in `pending` until MPI_Test reports the
        // send complete (or `close` waits for it); the count was checked against MAX_FRAME.
        unsafe {
            ffi::MPI_Isend(
                frame.as_ptr().cast(),
                frame.len() as c_int,
                u8::equivalent_datatype().as_raw(),
                rank,
                tag as c_int,
                self.comm.as_raw(),
                &mut request,
            );
        }
        self.pending.push_back(PendingSend {
            request,
            buf: frame,
        });
    }

    fn recv(&mut self, stop: &mut dyn FnMut() -> bool) -> Option<Incoming> {
        let mut waiter = std::mem::take(&mut self.waiter);
        let incoming = waiter.wait_until(|| self.try_recv(), stop);
        self.waiter = waiter;
        incoming
    }

    fn try_recv(&mut self) -> Option<Incoming> {
        if !self.pending.is_empty() {
            self.progress_sends();
        }
        self.probe()
    }

    fn recycle(&mut self) -> Option<Vec<u8>> {
        self.free.pop()
    }

    fn close(&mut self) {
        let mut waiter = Waiter::default();
        waiter.wait(|| {
            self.progress_sends();
            self.pending.is_empty().then_some(())
        });
    }

    fn abort(&mut self, code: i32) -> ! {
        self.comm.abort(code)
    }
}

/// Frames at least this large leave a worker with `MPI_Isend`: a large message waits for the
/// master to take it (rendezvous), and meanwhile the worker runs its next chunk. Smaller ones
/// go out eagerly with a plain `MPI_Send`, which returns at once.
const ISEND_FROM: usize = 4096;

/// Results a worker may have on their way to the master at once.
const MAX_WORKER_SENDS: usize = 2;

pub(crate) struct MpiWorker {
    comm: SimpleCommunicator,
    rank: usize,
    waiter: Waiter,
    /// Results being sent, oldest first.
    pending: VecDeque<PendingSend>,
    /// Buffers of completed sends, handed back to the worker loop.
    free: Vec<Vec<u8>>,
}

impl MpiWorker {
    pub(crate) fn new(comm: SimpleCommunicator) -> MpiWorker {
        MpiWorker {
            rank: usize::try_from(comm.rank()).unwrap_or(0),
            comm,
            waiter: Waiter::default(),
            pending: VecDeque::new(),
            free: Vec::new(),
        }
    }

    /// Completes the oldest pending send, waiting for it if `wait`; true if it completed.
    fn complete_oldest(&mut self, wait: bool) -> bool {
        let Some(oldest) = self.pending.front_mut() else {
            return false;
        };
        let mut flag: c_int = 0;
        // SAFETY: the request came from MPI_Isend and has not completed yet; MPI_Test and
        // MPI_Wait set it to MPI_REQUEST_NULL on completion, and only then is the buffer freed.
        unsafe {
            if wait {
                ffi::MPI_Wait(&mut oldest.request, ffi::RSMPI_STATUS_IGNORE);
                flag = 1;
            } else {
                ffi::MPI_Test(&mut oldest.request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
            }
        }
        if flag == 0 {
            return false;
        }
        if let Some(done) = self.pending.pop_front() {
            if self.free.len() < MAX_WORKER_SENDS {
                self.free.push(done.buf);
            }
        }
        true
    }
}

impl WorkerLink for MpiWorker {
    fn rank(&self) -> usize {
        self.rank
    }

    fn recv(&mut self, frame: &mut Vec<u8>) -> i32 {
        let comm = self.comm.as_raw();
        let mut waiter = std::mem::take(&mut self.waiter);
        let tag = waiter
            .wait(|| {
                if !self.pending.is_empty() {
                    self.complete_oldest(false);
                }
                try_receive(comm, 0, frame)
            })
            .1;
        self.waiter = waiter;
        tag
    }

    fn send(&mut self, tag: Tag, frame: &mut Vec<u8>) {
        assert!(frame.len() <= MAX_FRAME, "pool: frame too large for MPI");
        let comm = self.comm.as_raw();
        if frame.len() < ISEND_FROM {
            // SAFETY: `frame` is valid for its length, checked against MAX_FRAME.
            unsafe {
                ffi::MPI_Send(
                    frame.as_ptr().cast(),
                    frame.len() as c_int,
                    ffi::RSMPI_UINT8_T,
                    0,
                    tag as c_int,
                    comm,
                );
            }
        } else {
            while self.pending.len() >= MAX_WORKER_SENDS {
                self.complete_oldest(true);
            }
            let buf = std::mem::replace(frame, self.free.pop().unwrap_or_default());
            // SAFETY: a request handle is plain data that MPI_Isend overwrites.
            let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
            // SAFETY: the buffer stays alive and unmoved in `pending` until MPI_Test or
            // MPI_Wait reports the send complete; the count was checked against MAX_FRAME.
            unsafe {
                ffi::MPI_Isend(
                    buf.as_ptr().cast(),
                    buf.len() as c_int,
                    ffi::RSMPI_UINT8_T,
                    0,
                    tag as c_int,
                    comm,
                    &mut request,
                );
            }
            self.pending.push_back(PendingSend { request, buf });
        }
        if tag == Tag::Bye {
            while self.complete_oldest(true) {}
        }
    }
}
