//! The worker loop against a scripted master: what it sends, for frames that have arrived
//! in a known order (no MPI, no threads, no timing).

use std::collections::VecDeque;

use super::serve;
use crate::error::TaskFailure;
use crate::protocol::{self, Folded, Tag};
use crate::registry::TaskEntry;
use crate::task::task_id;
use crate::transport::WorkerLink;

const ITEM: &str = "pool_runtime::worker::tests::item";
const ADD: &str = "pool_runtime::worker::tests::add";

/// `x % 7`, on a `u64` in little-endian bytes.
fn item(input: &[u8], output: &mut Vec<u8>) -> Result<(), TaskFailure> {
    let x = u64::from_le_bytes(input.try_into().expect("8 bytes"));
    output.extend_from_slice(&(x % 7).to_le_bytes());
    Ok(())
}

/// The sum of a pair, its two `u64`s one after the other.
fn add(input: &[u8], output: &mut Vec<u8>) -> Result<(), TaskFailure> {
    let (a, b) = input.split_at(8);
    let a = u64::from_le_bytes(a.try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    output.extend_from_slice(&(a + b).to_le_bytes());
    Ok(())
}

inventory::submit! { TaskEntry::new(ITEM, item) }
inventory::submit! { TaskEntry::new(ADD, add) }

const JOB: u32 = 3;
const PER_CHUNK: u64 = 10;

/// Chunk `c` of the fold: items `c * PER_CHUNK ..` of `item`.
fn chunk(c: u64) -> (i32, Vec<u8>) {
    let mut buf = Vec::new();
    protocol::begin_task_frame(&mut buf, JOB, task_id(ITEM), c * PER_CHUNK);
    for x in c * PER_CHUNK..(c + 1) * PER_CHUNK {
        protocol::push_item(&mut buf, |b| {
            b.extend_from_slice(&x.to_le_bytes());
            Ok::<(), ()>(())
        })
        .unwrap();
    }
    protocol::finish_task_frame(&mut buf, PER_CHUNK as u32);
    (Tag::Task as i32, buf)
}

/// A master that keeps `window` chunks of a fold of `chunks` chunks in flight: a FOLDED
/// frame for `n` chunks brings the next `n` at once, as if the master had refilled before
/// the worker looked again. Once every chunk is acknowledged the fold ends and the worker
/// stops; BYE brings RELEASE.
struct Master {
    arrived: VecDeque<(i32, Vec<u8>)>,
    chunks: u64,
    sent: u64,
    acked: u64,
    /// What the worker sent, in order.
    got: Vec<(Tag, Vec<u8>)>,
}

impl Master {
    fn new(chunks: u64, window: u64) -> Master {
        let mut m = Master {
            arrived: VecDeque::from([(Tag::Fold as i32, protocol::encode_fold(JOB, task_id(ADD)))]),
            chunks,
            sent: 0,
            acked: 0,
            got: Vec::new(),
        };
        m.refill(window);
        m
    }

    fn refill(&mut self, n: u64) {
        for _ in 0..n.min(self.chunks - self.sent) {
            self.arrived.push_back(chunk(self.sent));
            self.sent += 1;
        }
    }

    fn acks(&self) -> Vec<Folded> {
        self.got
            .iter()
            .filter(|(tag, _)| *tag == Tag::Folded)
            .map(|(_, bytes)| Folded::decode(bytes).unwrap())
            .collect()
    }
}

impl WorkerLink for Master {
    fn rank(&self) -> usize {
        1
    }

    fn recv(&mut self, frame: &mut Vec<u8>) -> i32 {
        let (tag, bytes) = self
            .arrived
            .pop_front()
            .unwrap_or_else(|| panic!("the worker waits for a frame the master would only send after an answer; it sent {:?}", self.got.iter().map(|(t, b)| (*t, b.len())).collect::<Vec<_>>()));
        *frame = bytes;
        tag
    }

    fn try_recv(&mut self, frame: &mut Vec<u8>) -> Option<i32> {
        let (tag, bytes) = self.arrived.pop_front()?;
        *frame = bytes;
        Some(tag)
    }

    fn send(&mut self, tag: Tag, frame: &mut Vec<u8>) {
        if tag == Tag::Folded {
            let acked = u64::from(Folded::decode(frame).unwrap().chunks);
            self.refill(acked);
            self.acked += acked;
            if self.acked == self.chunks {
                self.arrived
                    .push_back((Tag::FoldEnd as i32, protocol::encode_fold_end(JOB)));
                self.arrived
                    .push_back((Tag::Stop as i32, protocol::encode_stop(0)));
            }
        }
        if tag == Tag::Bye {
            self.arrived.push_back((Tag::Release as i32, Vec::new()));
        }
        self.got.push((tag, std::mem::take(frame)));
    }
}

#[test]
fn folded_chunks_are_acknowledged_together() {
    // 8 chunks in flight (what a fold asks for): the worker answers when at most one is left
    // queued, so that the master refills while it runs that one: one FOLDED per 7 chunks.
    let mut master = Master::new(700, 8);
    assert_eq!(serve(&mut master, false), 0);
    let acks = master.acks();
    let chunks: Vec<u32> = acks.iter().map(|a| a.chunks).collect();
    assert_eq!(chunks.iter().sum::<u32>(), 700);
    assert!(
        acks.len() <= 700 / 7 + 1,
        "{} FOLDED for 700 chunks",
        acks.len()
    );
    // Acknowledgements come in the order of the chunks, each covering the ones after the last.
    let mut next = 0;
    for a in &acks {
        assert_eq!((a.job, a.first), (JOB, next), "{chunks:?}");
        assert_eq!(u64::from(a.items), u64::from(a.chunks) * PER_CHUNK);
        next += u64::from(a.items);
    }
    // Then the worker's value, and BYE.
    let tags: Vec<Tag> = master.got.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags[0], Tag::Hello);
    assert_eq!(tags[tags.len() - 2..], [Tag::Partial, Tag::Bye]);
    let (_, partial) = &master.got[tags.len() - 2];
    let (job, value) = protocol::decode_partial(partial).unwrap();
    let expected: u64 = (0..700 * PER_CHUNK).map(|x| x % 7).sum();
    assert_eq!((job, value), (JOB, Some(&expected.to_le_bytes()[..])));
}

#[test]
fn a_worker_with_one_chunk_queued_answers_at_once() {
    // Two in flight: after each chunk one is left, so every chunk is acknowledged alone
    // and the master never lets the worker wait.
    let mut master = Master::new(50, 2);
    assert_eq!(serve(&mut master, false), 0);
    let acks = master.acks();
    assert_eq!(acks.len(), 50);
    assert!(acks.iter().all(|a| a.chunks == 1));
}
