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
//! matched probe (`MPI_Mprobe` + `MPI_Mrecv`) into a buffer of exactly its size; an
//! [`ANNOUNCE`] frame on the first communicator, holding the frame's length, tells the receiver
//! that it is coming. A frame over 1 GiB goes as several messages of at most 1 GiB
//! (`endpoint::MAX_PIECE`; MPI counts are `int`), each received straight into its place in the
//! one buffer. Frames of any size thus keep their order and need no size limit but memory, and
//! no fixed buffer.
//!
//! A large plain value (a `Vec` of numbers, a `String`, a `Bulk`) is an out-of-band part of
//! its frame ([`crate::frame`]): a worker's result moved into its RESULT frame
//! ([`crate::gather`]), an owned input the master moves into its TASK frame, a borrowed input
//! of the master's `map` (sent from the caller's memory). The frame's bytes before the
//! part, the part's own memory, and the bytes after go as consecutive messages of that one
//! frame (`endpoint::isend_parts`); the announcement says where each part belongs and the
//! size of its elements, and the receiver takes each part into memory of its own of that
//! element type ([`crate::frame::Buffer`]), which decoding then takes over as the value's
//! vector: no copy on either side but MPI's own. On the master, parts of a size that repeats
//! land in memory a helper thread has touched ahead of time ([`prefault`]): every result
//! goes through the master, and writing into fresh pages was most of its time.
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

mod endpoint;
mod parts;
mod prefault;

use std::os::raw::c_int;

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};

use super::{Incoming, MasterLink, Waiter, WorkerLink};
use crate::frame::Part;
use crate::protocol::Tag;
use endpoint::*;
use parts::*;
use prefault::Prefault;

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
        let mut end = Endpoint::new(comm, any, depth, MAX_FREE_BUFFERS);
        // Every result goes through the master: its large ones land in memory made ready
        // ahead of time (a worker reuses the memory of the inputs it has dropped).
        end.prefault = Some(Prefault::default());
        MpiMaster { end }
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
        self.send_parts(worker, tag, frame, Vec::new());
    }

    fn send_parts(&mut self, worker: usize, tag: Tag, frame: Vec<u8>, parts: Vec<Part>) {
        let rank = c_int::try_from(worker + 1).expect("rank fits in an int");
        let end = &mut self.end;
        let comm = end.comm.as_raw();
        if frame.len() <= SMALL && parts.is_empty() {
            end.pending
                .push_back(send_small(comm, rank, tag as c_int, frame));
            return;
        }
        let (frame, parts, announce) = announced(frame, parts);
        let send = isend_parts(end.bulk.get(), rank, tag as c_int, frame, parts);
        end.pending.push_back(send);
        end.pending
            .push_back(send_small(comm, rank, ANNOUNCE, announce));
    }

    fn out_of_band(&self) -> bool {
        true
    }

    fn settle_lent(&mut self) {
        self.end.settle_lent();
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
        let taken = taken?;
        Some(Incoming {
            worker: usize::try_from(taken.source).unwrap_or(0).saturating_sub(1),
            tag: taken.tag,
            bytes: taken.bytes,
            parts: taken.parts,
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
        if SimpleCommunicator::world().size() < self.end.comm.size() {
            // Spawn mode: Open MPI's daemon for this singleton sometimes outlives an abort.
            reap_daemon_later();
        }
        self.end.comm.abort(code)
    }

    fn abandon(&mut self, _stuck: &[usize], code: i32, say: &mut dyn FnMut(&str)) {
        say(&format!(
            "ending the job now with MPI_Abort and main's exit status {code} (MPI_Finalize \
             would wait for them)"
        ));
        // MPICH ends only the caller when aborting on a communicator other than
        // MPI_COMM_WORLD, and its launcher then waits for the stuck ranks; Open MPI ends every
        // process of this one (in spawn mode, MPI_COMM_WORLD does not hold the workers), and
        // aborting on MPI_COMM_WORLD there sometimes garbles mpirun's report (all measured).
        let mpich = mpi::environment::library_version().is_ok_and(|v| v.contains("MPICH"));
        if mpich {
            SimpleCommunicator::world().abort(code)
        }
        self.abort(code)
    }

    fn broadcast(&mut self, bytes: &mut [u8]) {
        broadcast(&self.end.comm, bytes);
    }
}

/// Open MPI starts a daemon (`orted`, in a session of its own) for a singleton that spawns
/// workers; after an `MPI_Abort` it stays, idle, ignoring SIGTERM and holding the program's
/// output pipes, for good (measured: it fails to print its abort banner, "ORTE_ERROR_LOG: Out
/// of resource in show_help.c"). Before aborting in spawn mode, this leaves a small detached
/// process that kills what is left of this process's daemons' process groups 2 seconds later
/// (the daemon has ended the workers by then).
fn reap_daemon_later() {
    let me = std::process::id().to_string();
    let daemons: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`
            let (comm, rest) = stat.split_once(") ")?;
            let ppid = rest.split_whitespace().nth(1)?;
            (comm.ends_with("(orted") && ppid == me).then_some(pid)
        })
        .collect();
    if daemons.is_empty() {
        return;
    }
    let script: String = daemons
        .iter()
        .map(|pid| format!("grep -qs orted /proc/{pid}/cmdline && kill -9 -- -{pid}; "))
        .collect();
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("sleep 2; {script}true"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// `MPI_Bcast` from rank 0 of `comm`, in pieces that fit MPI's `int` counts.
fn broadcast(comm: &SimpleCommunicator, bytes: &mut [u8]) {
    use mpi::traits::Root;
    const PIECE: usize = 1 << 30;
    let root = comm.process_at_rank(0);
    for piece in bytes.chunks_mut(PIECE) {
        root.broadcast_into(piece);
    }
}

pub(crate) struct MpiWorker {
    end: Endpoint,
    rank: usize,
    /// The out-of-band parts of the frame received last.
    parts: Vec<Part>,
}

impl MpiWorker {
    /// A worker's end of `comm`, where the master is rank 0. Collective with
    /// [`MpiMaster::new`].
    pub(crate) fn new(comm: SimpleCommunicator) -> MpiWorker {
        // Large results of this thread's tasks are sent from their own memory.
        crate::gather::enable(true);
        MpiWorker {
            rank: usize::try_from(comm.rank()).unwrap_or(0),
            end: Endpoint::new(comm, 0, WORKER_POSTED, MAX_WORKER_SENDS),
            parts: Vec::new(),
        }
    }
}

impl Drop for MpiWorker {
    fn drop(&mut self) {
        crate::gather::enable(false);
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
        let taken = waiter.wait(|| self.end.take(&mut spare));
        self.end.waiter = waiter;
        *frame = taken.bytes;
        self.parts = taken.parts;
        taken.tag
    }

    fn take_parts(&mut self) -> Vec<Part> {
        std::mem::take(&mut self.parts)
    }

    fn send(&mut self, tag: Tag, frame: &mut Vec<u8>) {
        let end = &mut self.end;
        let comm = end.comm.as_raw();
        // Results sent from their own memory, which belong in the frame's holes.
        let segments = crate::gather::take();
        if frame.len() <= SMALL && segments.is_empty() {
            // Blocking: a small frame has left before the worker runs any more of the user's
            // code, so the master's oldest posted receive never waits on a computing worker.
            send_now(comm, 0, tag as c_int, frame);
        } else {
            while end.pending.len() >= MAX_WORKER_SENDS {
                end.complete_sends(true);
            }
            let buf = std::mem::replace(frame, end.free.pop().unwrap_or_default());
            let parts: Vec<Part> = segments
                .into_iter()
                .map(crate::gather::Segment::into_part)
                .collect();
            let (buf, parts, announce) = announced(buf, parts);
            end.pending
                .push_back(isend_parts(end.bulk.get(), 0, tag as c_int, buf, parts));
            send_now(comm, 0, ANNOUNCE, &announce);
        }
        if tag == Tag::Bye {
            // The last frame: every send completes, and no receive stays posted.
            end.complete_sends(true);
            end.posted.cancel();
        }
    }

    fn try_recv(&mut self, frame: &mut Vec<u8>) -> Option<i32> {
        // As in `recv`: the frame's buffer may become the next posted receive.
        let mut spare = Some(std::mem::take(frame));
        match self.end.take(&mut spare) {
            Some(taken) => {
                *frame = taken.bytes;
                self.parts = taken.parts;
                Some(taken.tag)
            }
            None => {
                *frame = spare.unwrap_or_default();
                None
            }
        }
    }

    fn broadcast(&mut self, buf: &mut [u8]) {
        broadcast(&self.end.comm, buf);
    }

    fn before_run(&mut self, expected_ns: u64) {
        if !self.end.pending.is_empty() && expected_ns > OVERLAP_NS {
            self.end.complete_sends(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::rc::Rc;

    use super::*;
    use crate::frame::Buffer;

    /// Polls `master` until a frame arrives (the sends below are to this very process).
    fn next(master: &mut MpiMaster) -> Incoming {
        loop {
            if let Some(incoming) = master.try_recv() {
                return incoming;
            }
        }
    }

    fn announce(len: usize, parts: &[Part]) -> Vec<u8> {
        announcement(len, parts).expect("fits")
    }

    /// One process, frames sent to itself: small frames land in posted receives in order,
    /// and a large one arrives whole, in its place, through the bulk communicator (in two
    /// pieces: `MAX_PIECE` is 1.5 x `SMALL` in unit tests); a frame with out-of-band parts
    /// arrives with each part in memory of its own, of its element size.
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
            send_small(comm, 0, ANNOUNCE, announce(big.len(), &[])),
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
        assert!(second.parts.is_empty());
        let third = next(&mut master);
        assert_eq!((third.tag, third.bytes.len()), (Tag::Bye as i32, 0));
        let last = next(&mut master);
        assert_eq!((last.tag, last.bytes.len()), (Tag::Hello as i32, SMALL));
        // A frame with two values out of band, sent from their own memory (the first in two
        // pieces), the second at the very end: its in-band bytes arrive as one buffer, each
        // value in memory of its own element size.
        let doubles: Vec<f64> = (0..SMALL / 4).map(|i| i as f64).collect();
        let text = "x".repeat(SMALL / 2);
        let doubles_bytes: Vec<u8> = doubles.iter().flat_map(|d| d.to_le_bytes()).collect();
        let parts = vec![
            Part::kept(2, doubles.as_ptr().cast(), 2 * SMALL, 8, Rc::new(doubles)),
            Part::kept(4, text.as_ptr(), text.len(), 1, Rc::new(text.clone())),
        ];
        let announced = announce(4, &parts);
        sends.push_back(isend_parts(
            bulk,
            0,
            Tag::Result as c_int,
            vec![1, 2, 3, 4],
            parts,
        ));
        sends.push_back(send_small(comm, 0, ANNOUNCE, announced));
        let mut parted = next(&mut master);
        assert_eq!(
            (parted.tag, &parted.bytes[..]),
            (Tag::Result as i32, &[1u8, 2, 3, 4][..])
        );
        assert_eq!(
            parted
                .parts
                .iter()
                .map(|p| (p.at, p.len, p.elem()))
                .collect::<Vec<_>>(),
            [(2, 2 * SMALL, 8), (4, text.len(), 1)]
        );
        assert!(parted.parts[0].bytes() == doubles_bytes);
        let buf = parted.parts[0].take().expect("received");
        assert!(matches!(buf, Buffer::B8(_)));
        assert_eq!(
            buf.into_vec::<f64>().unwrap()[SMALL / 4 - 1],
            (SMALL / 4 - 1) as f64
        );
        assert_eq!(parted.parts[1].bytes(), text.as_bytes());
        while complete_oldest(&mut sends, true).is_some() {}
        master.close();
    }

    #[test]
    fn announcements_round_trip_and_malformed_ones_are_refused() {
        let keep: Rc<dyn std::any::Any> = Rc::new(());
        let parts = vec![
            Part::kept(3, std::ptr::null(), 7, 1, Rc::clone(&keep)),
            Part::kept(9, std::ptr::null(), 16, 8, keep),
        ];
        let bytes = announce(10, &parts);
        assert_eq!(
            read_announcement(&bytes),
            Some((10, vec![(3, 7, 1), (9, 16, 8)]))
        );
        assert_eq!(read_announcement(&bytes[..bytes.len() - 1]), None);
        let mut beyond = bytes.clone();
        beyond[..8].copy_from_slice(&8u64.to_le_bytes());
        assert_eq!(read_announcement(&beyond), None, "a part beyond the frame");
        assert!(
            announcement(0, &vec_of_parts(SMALL / 17)).is_none(),
            "too many to announce"
        );
    }

    fn vec_of_parts(n: usize) -> Vec<Part> {
        let keep: Rc<dyn std::any::Any> = Rc::new(());
        (0..n)
            .map(|_| Part::kept(0, std::ptr::null(), 1, 1, Rc::clone(&keep)))
            .collect()
    }
}
