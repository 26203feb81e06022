//! A job's inputs, encoded on demand from the caller's iterator.

use serde::Serialize;

use crate::codec;
use crate::master::{Encoded, JobInputs};
use crate::protocol;

/// Inputs of one job, encoded on demand.
pub(super) struct InputIter<I> {
    iter: Option<I>,
    pub(super) next: u64,
    /// Inputs not to run (their results came from a journal).
    pub(super) skip: Option<Skip>,
}

/// Which inputs a journaled `map` skips, and how many of them lie ahead.
pub(super) struct Skip {
    done: Vec<bool>,
    pub(super) ahead: u64,
}

impl Skip {
    pub(super) fn new(done: Vec<bool>) -> Skip {
        let ahead = done.iter().filter(|&&d| d).count() as u64;
        Skip { done, ahead }
    }

    fn is_done(&self, index: u64) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.done.get(i))
            .is_some_and(|&d| d)
    }
}

impl<I> InputIter<I> {
    pub(super) fn new(iter: I) -> Self {
        InputIter {
            iter: Some(iter),
            next: 0,
            skip: None,
        }
    }

    /// Sends no further inputs.
    pub(super) fn stop(&mut self) {
        self.iter = None;
    }
}

impl<I> JobInputs for InputIter<I>
where
    I: Iterator,
    I::Item: Serialize,
{
    fn next_index(&self) -> u64 {
        self.next
    }

    fn exhausted(&self) -> bool {
        self.iter.is_none()
    }

    fn remaining_hint(&self) -> Option<u64> {
        let (low, _) = self.iter.as_ref()?.size_hint();
        let low = (low as u64).saturating_sub(self.skip.as_ref().map_or(0, |s| s.ahead));
        (low > 0).then_some(low)
    }

    fn skip_done(&mut self) {
        let Some(skip) = self.skip.as_mut() else {
            return;
        };
        while skip.is_done(self.next) {
            if self.iter.as_mut().and_then(Iterator::next).is_none() {
                self.iter = None;
                return;
            }
            self.next += 1;
            skip.ahead -= 1;
        }
    }

    fn encode_into(&mut self, frame: &mut Vec<u8>, max: usize, max_bytes: usize) -> Encoded {
        let mut encoded = Encoded::default();
        while (encoded.count as usize) < max && frame.len() < max_bytes {
            // A chunk holds consecutive inputs: it ends before one that is done.
            if self.skip.as_ref().is_some_and(|s| s.is_done(self.next)) {
                break;
            }
            let Some(item) = self.iter.as_mut().and_then(Iterator::next) else {
                self.iter = None;
                break;
            };
            let index = self.next;
            self.next += 1;
            if let Err(e) = protocol::push_item(frame, |b| codec::encode_into(&item, b)) {
                encoded.failed = Some((index, format!("cannot encode the arguments: {e}")));
                break;
            }
            encoded.count += 1;
        }
        encoded
    }
}
