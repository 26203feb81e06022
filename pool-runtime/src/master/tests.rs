//! The master against scripted frames: malformed and unexpected replies.

use std::collections::VecDeque;

use super::*;
use crate::error::TaskErrorKind;
use crate::protocol::{self, Hello, Status, Tag};
use crate::registry::Registry;
use crate::transport::Incoming;

/// A transport that replays scripted frames from one worker (rank 1).
struct Scripted {
    incoming: VecDeque<Incoming>,
}

impl MasterLink for Scripted {
    fn workers(&self) -> usize {
        1
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
    let registry = Registry::global();
    let hello = Hello {
        version: protocol::VERSION,
        fingerprint: registry.fingerprint(),
        pid: std::process::id(),
        host: "node7".into(),
        tasks: registry.names().iter().map(|&n| n.to_owned()).collect(),
    };
    frame(Tag::Hello, hello.encode())
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
    let mut master = Master::new(Box::new(Scripted {
        incoming: VecDeque::from([hello(), reply]),
    }));
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
    let mut master = Master::new(Box::new(Scripted {
        incoming: VecDeque::from([frame(Tag::Hello, vec![1, 2, 3])]),
    }));
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
    let mut master = Master::new(Box::new(Scripted {
        incoming: VecDeque::from([
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
        ]),
    }));
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
