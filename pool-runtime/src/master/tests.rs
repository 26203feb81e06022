//! The master against scripted frames: malformed and unexpected replies, and which
//! failures take a worker out.

use std::collections::VecDeque;

use super::*;
use crate::error::TaskErrorKind;
use crate::protocol::{self, Hello, Status, Tag};
use crate::registry::Registry;
use crate::transport::Incoming;

/// A transport that replays scripted frames from its workers (ranks 1 and up); one worker
/// unless a test says.
struct Scripted {
    incoming: VecDeque<Incoming>,
    workers: usize,
}

impl Scripted {
    fn new(incoming: impl Into<VecDeque<Incoming>>) -> Scripted {
        Scripted {
            incoming: incoming.into(),
            workers: 1,
        }
    }
}

impl MasterLink for Scripted {
    fn workers(&self) -> usize {
        self.workers
    }
    fn rank_of(&self, worker: usize) -> usize {
        worker + 1
    }
    fn send(&mut self, _: usize, _: Tag, _: Vec<u8>) {}
    fn recv(&mut self, _: &mut dyn FnMut() -> bool) -> Option<Incoming> {
        Some(self.incoming.pop_front().expect("the script ran out"))
    }
    fn try_recv(&mut self) -> Option<Incoming> {
        None
    }
    fn reclaim_send_buffer(&mut self) -> Option<Vec<u8>> {
        None
    }
    fn close(&mut self) {}
    fn abort(&mut self, code: i32) -> ! {
        panic!("abort({code})")
    }
    fn abandon(&mut self, _: &[usize], code: i32, _: &mut dyn FnMut(&str)) {
        panic!("abandon({code})")
    }
}

fn frame(tag: Tag, bytes: Vec<u8>) -> Incoming {
    Incoming {
        worker: 0,
        tag: tag as i32,
        bytes,
        parts: Vec::new(),
    }
}

fn hello() -> Incoming {
    hello_from(0)
}

fn hello_from(worker: usize) -> Incoming {
    let registry = Registry::global();
    let hello = Hello {
        version: protocol::VERSION,
        fingerprint: registry.fingerprint(),
        pid: std::process::id(),
        host: "node7".into(),
        tasks: registry.names().iter().map(|&n| n.to_owned()).collect(),
    };
    Incoming {
        worker,
        ..frame(Tag::Hello, hello.encode())
    }
}

struct One(bool);

impl JobInputs for One {
    fn next_index(&self) -> u64 {
        0
    }
    fn exhausted(&self) -> bool {
        self.0
    }
    fn remaining_hint(&self) -> Option<u64> {
        Some(1)
    }
    fn encode_into(
        &mut self,
        frame: &mut Vec<u8>,
        _: Option<&mut Vec<crate::frame::Part>>,
        _: usize,
        _: usize,
    ) -> Encoded {
        self.0 = true;
        protocol::push_item::<()>(frame, |_| Ok(())).expect("push");
        Encoded {
            count: 1,
            failed: None,
        }
    }
}

/// Sends one task to rank 1, then feeds the master `reply`; returns the task's outcome.
fn outcome_after(reply: Incoming) -> (TaskErrorKind, String) {
    let mut master = Master::new(Box::new(Scripted::new([hello(), reply])));
    master.handshake().expect("handshake");
    let job = master.open_job("t::f", 1);
    master.dispatch(Some((job, &mut One(false))), ChunkPlan::default());
    master.receive_one();
    master
        .next_outcome(job, |origin, raw| {
            assert_eq!((origin.rank, origin.host, origin.index), (1, "node7", 0));
            match raw {
                RawOutcome::Error(kind, message) => (kind, message.to_owned()),
                RawOutcome::Value(v, _) => panic!("a malformed reply decoded to {v:?}"),
            }
        })
        .expect("an outcome")
}

#[test]
fn malformed_frames_are_errors_that_name_the_sender() {
    // A HELLO that does not decode.
    let mut master = Master::new(Box::new(Scripted::new([frame(Tag::Hello, vec![1, 2, 3])])));
    let e = master.handshake().expect_err("garbage HELLO").to_string();
    assert!(e.starts_with("protocol error from rank 1: "), "{e}");
    // A RESULT that is not one.
    let (kind, message) = outcome_after(frame(Tag::Result, vec![0xff; 7]));
    assert_eq!(kind, TaskErrorKind::BadOutput);
    assert!(
        message.starts_with("malformed reply from rank 1: "),
        "{message}"
    );
    // A RESULT for another chunk.
    let mut other = Vec::new();
    protocol::begin_result_frame(&mut other, 99, 5);
    protocol::push_message(&mut other, Status::Failed, "x");
    protocol::finish_result_frame(&mut other, 1, 0);
    let (kind, message) = outcome_after(frame(Tag::Result, other));
    assert_eq!(kind, TaskErrorKind::Rejected);
    assert!(
        message.contains("RESULT frame from rank 1 is for job 99"),
        "{message}"
    );
}

#[test]
fn frames_nobody_asked_for_are_ignored() {
    let mut valid = Vec::new();
    protocol::begin_result_frame(&mut valid, 0, 0);
    protocol::push_outcome::<()>(&mut valid, Status::Ok, |b| {
        b.push(42);
        Ok(())
    })
    .expect("push");
    protocol::finish_result_frame(&mut valid, 1, 0);
    let mut master = Master::new(Box::new(Scripted::new([
        hello(),
        // A RESULT from a rank holding no task, and an unknown tag: both ignored.
        frame(Tag::Result, valid.clone()),
        Incoming {
            worker: 0,
            tag: 77,
            bytes: vec![1; 1 << 10],
            parts: Vec::new(),
        },
        frame(Tag::Result, valid),
    ])));
    master.handshake().expect("handshake");
    master.receive_one_unchecked_for_tests();
    master.receive_one_unchecked_for_tests();
    let job = master.open_job("t::f", 1);
    master.dispatch(Some((job, &mut One(false))), ChunkPlan::default());
    master.receive_one();
    let value = master.next_outcome(job, |_, raw| match raw {
        RawOutcome::Value(v, _) => v.to_vec(),
        RawOutcome::Error(_, m) => panic!("{m}"),
    });
    assert_eq!(value, Some(vec![42]));
}

/// A master with `workers` workers, and a job of it with one retry per item.
fn master_with_retries(workers: usize) -> (Master, u32) {
    let mut master = Master::new(Box::new(Scripted {
        incoming: (0..workers).map(hello_from).collect(),
        workers,
    }));
    master.handshake().expect("handshake");
    let job = master.open_job("t::f", 1);
    master.set_retries(job, 1);
    (master, job)
}

/// Sends items `first..first + count` of `job` to worker `w` as one chunk.
fn give(master: &mut Master, job: u32, w: usize, first: u64, count: u32) {
    let mut task = Vec::new();
    protocol::begin_task_frame(&mut task, job, 1, first);
    for _ in 0..count {
        protocol::push_item::<()>(&mut task, |_| Ok(())).expect("push");
    }
    protocol::finish_task_frame(&mut task, count);
    let seq = master.chunks_cut;
    master.chunks_cut += 1;
    master.jobs.get_mut(job).expect("the job").outstanding += u64::from(count);
    let chunk = Chunk {
        job,
        first,
        count,
        seq,
    };
    master.send_chunk(
        w,
        CutChunk {
            chunk,
            frame: task,
            parts: Vec::new(),
            tail: false,
            avoid: None,
        },
    );
}

/// Worker `w` answers the oldest chunk it holds: the items for which `ok` says so succeed,
/// the others fail. (The master sends it a retry cut for it, if any, on the way.)
fn answer(master: &mut Master, w: usize, ok: impl Fn(u64) -> bool) {
    let chunk = *master.workers[w]
        .in_flight
        .front()
        .expect("a chunk in flight");
    let mut result = Vec::new();
    protocol::begin_result_frame(&mut result, chunk.job, chunk.first);
    for index in chunk.first..chunk.first + u64::from(chunk.count) {
        if ok(index) {
            protocol::push_outcome::<()>(&mut result, Status::Ok, |_| Ok(())).expect("push");
        } else {
            protocol::push_message(&mut result, Status::Failed, "no");
        }
    }
    protocol::finish_result_frame(&mut result, chunk.count, 0);
    master.handle_incoming(Incoming {
        worker: w,
        ..frame(Tag::Result, result)
    });
}

/// Worker `w` answers every chunk it holds, the retries it gets meanwhile included, with
/// successes.
fn succeed_all(master: &mut Master, w: usize) {
    while !master.workers[w].in_flight.is_empty() {
        answer(master, w, |_| true);
    }
}

#[test]
fn an_input_that_fails_once_quarantines_no_one() {
    // One input in two fails the first time it runs: worker 0 fails one, succeeds at the
    // next, and so on; the retries succeed on worker 1, after all of that arrived.
    let (mut master, job) = master_with_retries(2);
    for k in 0..8 {
        give(&mut master, job, 0, 2 * k, 2);
        answer(&mut master, 0, |i| i % 2 == 1);
    }
    give(&mut master, job, 1, 100, 1);
    succeed_all(&mut master, 1);
    assert_eq!(master.stats().retried, 8);
    // Read as a `map` reads them: as they arrived, the retries last.
    let mut read = 0;
    while master
        .next_outcome(job, |_, raw| assert!(matches!(raw, RawOutcome::Value(..))))
        .is_some()
    {
        read += 1;
    }
    assert_eq!(read, 17);
    assert!(!master.workers[0].quarantined, "worker 0 was taken out");
    // An input that fails everywhere is no worker's fault either.
    for k in 0..8 {
        give(&mut master, job, 0, 200 + k, 1);
        answer(&mut master, 0, |_| false);
        // Worker 1 gets the retry when it answers something else, and it fails there too.
        give(&mut master, job, 1, 300 + k, 1);
        answer(&mut master, 1, |_| true);
        answer(&mut master, 1, |_| false);
    }
    assert_eq!(master.quarantined, 0);
}

#[test]
fn a_worker_that_fails_item_after_item_is_taken_out() {
    let (mut master, job) = master_with_retries(3);
    give(&mut master, job, 0, 0, 1);
    answer(&mut master, 0, |_| true);
    // Five items in a row fail on worker 0 and succeed on worker 1: the fifth takes it out.
    for k in 0..5 {
        give(&mut master, job, 0, 10 + k, 1);
        answer(&mut master, 0, |_| false);
    }
    give(&mut master, job, 1, 100, 1);
    for k in 0..5 {
        assert!(!master.workers[0].quarantined, "out after {k}");
        answer(&mut master, 1, |_| true);
    }
    succeed_all(&mut master, 1);
    assert!(master.workers[0].quarantined, "worker 0 was not taken out");
    assert_eq!(master.quarantined, 1);
    // Worker 2 fails four in a row, then succeeds, then fails four more: it stays.
    for k in 0..9 {
        give(&mut master, job, 2, 20 + k, 1);
        answer(&mut master, 2, |i| i == 24);
    }
    give(&mut master, job, 1, 200, 1);
    succeed_all(&mut master, 1);
    assert_eq!(master.quarantined, 1);
}

#[test]
fn a_success_in_a_job_without_retries_ends_a_run_of_failures() {
    let (mut master, job) = master_with_retries(2);
    let plain = master.open_job("t::g", 1);
    // Four failures on worker 0, confirmed on worker 1; then a success of worker 0 in a job
    // without retries; then one more failure, confirmed: four and one, not five in a row.
    for k in 0..4 {
        give(&mut master, job, 0, k, 1);
        answer(&mut master, 0, |_| false);
    }
    give(&mut master, job, 1, 100, 1);
    succeed_all(&mut master, 1);
    assert_eq!(master.workers[0].failing, 4);
    give(&mut master, plain, 0, 0, 1);
    answer(&mut master, 0, |_| true);
    give(&mut master, job, 0, 10, 1);
    answer(&mut master, 0, |_| false);
    give(&mut master, job, 1, 101, 1);
    succeed_all(&mut master, 1);
    assert_eq!(master.workers[0].failing, 1);
    assert_eq!(master.quarantined, 0);
}
