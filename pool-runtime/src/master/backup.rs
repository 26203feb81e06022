//! Backup copies at the tail ([`Options::speculative`](crate::Options::speculative)): work
//! must not wait behind a straggler.
//!
//! Near the end of a job, a chunk sent to a worker that is still busy waits in that worker's
//! queue. If the worker is slow, or its current item is a long one, that chunk would finish
//! last while other workers sit idle. So in the tail the master keeps a copy of each chunk it
//! queues behind another (small frames only), and once the job's inputs are all sent, a
//! worker with nothing to do gets a copy of the queued chunk that has waited longest. The
//! first result to come back is delivered; the other is dropped when it arrives. Nothing is
//! ever delivered twice, and a chunk is copied at most once; but a task may run twice, which
//! is why it is asked for, not the default.

use std::collections::{HashMap, VecDeque};

use super::jobs::Chunk;

/// Frames larger than this are not kept: copying them costs more than waiting.
pub(super) const MAX_KEPT_FRAME: usize = 64 << 10;

#[derive(Debug)]
struct Kept {
    /// The worker that holds the original.
    holder: usize,
    chunk: Chunk,
    /// The frame, until it is copied or answered.
    frame: Option<Vec<u8>>,
    /// Sends of this chunk whose result has not come back.
    copies: u8,
    answered: bool,
}

/// What a result is, for a chunk that may have been copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// The first result of the chunk: deliver it.
    First,
    /// A copy's result after the first: drop it.
    Duplicate,
}

#[derive(Debug, Default)]
pub(super) struct Backups {
    kept: HashMap<u64, Kept>,
    /// Kept chunks, oldest first (some may be answered already).
    order: VecDeque<u64>,
}

impl Backups {
    /// Keeps a copy of `frame`, the chunk `chunk` queued on worker `holder`.
    pub(super) fn keep(&mut self, holder: usize, chunk: Chunk, frame: Vec<u8>) {
        self.order.push_back(chunk.seq);
        self.kept.insert(
            chunk.seq,
            Kept {
                holder,
                chunk,
                frame: Some(frame),
                copies: 1,
                answered: false,
            },
        );
    }

    /// A copy for worker `w` of the oldest kept chunk of job `job` that still waits in its
    /// holder's queue (`queued(holder, seq)`), if any.
    pub(super) fn copy_for(
        &mut self,
        w: usize,
        job: u32,
        queued: impl Fn(usize, u64) -> bool,
    ) -> Option<(Chunk, Vec<u8>)> {
        let mut skipped = VecDeque::new();
        let mut found = None;
        while let Some(seq) = self.order.pop_front() {
            let Some(kept) = self.kept.get_mut(&seq) else {
                continue;
            };
            if kept.answered || kept.frame.is_none() {
                continue;
            }
            if kept.chunk.job != job || kept.holder == w {
                skipped.push_back(seq);
                continue;
            }
            if !queued(kept.holder, seq) {
                // Running already (or about to): a copy would not start sooner.
                kept.frame = None;
                continue;
            }
            kept.copies += 1;
            found = kept.frame.take().map(|frame| (kept.chunk, frame));
            break;
        }
        while let Some(seq) = skipped.pop_back() {
            self.order.push_front(seq);
        }
        found
    }

    /// True when no chunk is kept (no backup copy can be made).
    pub(super) fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// A result came back for `chunk`: `None` when it was never kept.
    #[inline]
    pub(super) fn answered(&mut self, chunk: &Chunk) -> Option<Answer> {
        if self.kept.is_empty() {
            return None;
        }
        self.answered_kept(chunk)
    }

    /// [`Backups::answered`] with some chunk kept (the check before it is inlined).
    fn answered_kept(&mut self, chunk: &Chunk) -> Option<Answer> {
        let kept = self.kept.get_mut(&chunk.seq)?;
        let answer = if kept.answered {
            Answer::Duplicate
        } else {
            kept.answered = true;
            kept.frame = None;
            Answer::First
        };
        kept.copies -= 1;
        if kept.copies == 0 {
            self.kept.remove(&chunk.seq);
        }
        Some(answer)
    }

    /// Forgets the kept chunks of a job whose reader is gone.
    pub(super) fn forget_job(&mut self, job: u32) {
        for kept in self.kept.values_mut() {
            if kept.chunk.job == job {
                kept.frame = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seq: u64) -> Chunk {
        Chunk {
            job: 1,
            first: seq * 10,
            count: 10,
            seq,
        }
    }

    #[test]
    fn a_copy_is_made_once_and_only_the_first_result_counts() {
        let mut b = Backups::default();
        b.keep(0, chunk(1), vec![1]);
        b.keep(0, chunk(2), vec![2]);
        // Not for the holder itself, nor for another job.
        assert!(b.copy_for(0, 1, |_, _| true).is_none());
        assert!(b.copy_for(1, 2, |_, _| true).is_none());
        // The oldest queued chunk first.
        let (c, frame) = b.copy_for(1, 1, |_, _| true).expect("a copy");
        assert_eq!((c.seq, frame), (1, vec![1]));
        // The copy answers first; the original's result is dropped.
        assert_eq!(b.answered(&chunk(1)), Some(Answer::First));
        assert_eq!(b.answered(&chunk(1)), Some(Answer::Duplicate));
        // Once copied or answered, never copied again.
        assert_eq!(b.answered(&chunk(2)), Some(Answer::First));
        assert!(b.copy_for(1, 1, |_, _| true).is_none());
        assert!(b.kept.is_empty());
        // A chunk that already runs is not copied.
        b.keep(0, chunk(3), vec![3]);
        assert!(b.copy_for(1, 1, |_, _| false).is_none());
        assert_eq!(b.answered(&chunk(3)), Some(Answer::First));
        assert!(b.kept.is_empty());
        assert_eq!(b.answered(&chunk(9)), None);
    }
}
