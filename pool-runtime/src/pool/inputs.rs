//! A job's inputs, encoded on demand from the caller's iterator, and what an input may be:
//! the task's arguments or a reference to them ([`Input`]).

use std::marker::PhantomData;

use serde::Serialize;

use super::resume::{Resume, Verdict};
use crate::codec;
use crate::master::{Encoded, JobInputs};
use crate::protocol;

mod sealed {
    pub trait Sealed<A> {}
    impl<A> Sealed<A> for A {}
    impl<A> Sealed<A> for &A {}
}

/// What a pool call takes as one input of a task whose arguments are `A`: the arguments
/// themselves, or a reference to them.
///
/// With references, the inputs are encoded straight from the caller's memory: nothing is
/// cloned, and the caller keeps its data. Implemented for `A` and `&A`, for every task.
///
/// # Examples
///
/// ```no_run
/// use pool_runtime::prelude::*;
///
/// #[pool_task]
/// fn total(samples: Vec<f64>) -> f64 {
///     samples.iter().sum()
/// }
///
/// #[pool_main]
/// fn main(pool: &mut Pool) -> Result<(), Error> {
///     let runs: Vec<Vec<f64>> = (0..100).map(|i| vec![i as f64; 1000]).collect();
///     let sums = pool.map(total, &runs)?; // items `&Vec<f64>`: nothing is cloned
///     let again = pool.submit(total, &runs[0]).wait()?;
///     assert_eq!(sums[0], again);
///     let owned = pool.map(total, runs)?; // the same with the vectors moved in
///     assert_eq!(owned, sums);
///     Ok(())
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an input of a task that takes `{A}`",
    label = "expected `{A}` or `&{A}`",
    note = "a task's inputs are its arguments (one as itself, several as a tuple), owned or borrowed"
)]
pub trait Input<A>: sealed::Sealed<A> {
    /// The arguments.
    fn args(&self) -> &A;
}

impl<A> Input<A> for A {
    fn args(&self) -> &A {
        self
    }
}

impl<A> Input<A> for &A {
    fn args(&self) -> &A {
        self
    }
}

/// Inputs of one job, encoded on demand; `A` is the task's arguments.
pub(super) struct InputIter<I, A> {
    iter: Option<I>,
    pub(super) next: u64,
    /// Resuming from a journal: the outcomes it holds, checked as the inputs are reached.
    pub(super) resume: Option<Resume>,
    /// An input checked against the journal that runs again: its index and encoded bytes
    /// (or why it does not encode), the first item of the next chunk.
    pending: Option<(u64, Result<Vec<u8>, String>)>,
    args: PhantomData<fn(&A)>,
}

impl<I, A> InputIter<I, A> {
    pub(super) fn new(iter: I) -> Self {
        InputIter {
            iter: Some(iter),
            next: 0,
            resume: None,
            pending: None,
            args: PhantomData,
        }
    }

    /// Sends no further inputs.
    pub(super) fn stop(&mut self) {
        self.iter = None;
        self.pending = None;
    }
}

impl<I: Iterator, A> InputIter<I, A> {
    /// How many inputs are left to send, when the iterator says exactly (journaled
    /// outcomes ahead not counted).
    pub(super) fn exact_remaining(&self) -> Option<u64> {
        let (low, high) = self.iter.as_ref().map_or((0, Some(0)), Iterator::size_hint);
        (high == Some(low)).then(|| {
            (low as u64).saturating_sub(self.resume.as_ref().map_or(0, Resume::ahead))
                + u64::from(self.pending.is_some())
        })
    }
}

impl<I, A> JobInputs for InputIter<I, A>
where
    I: Iterator<Item: Input<A>>,
    A: Serialize + 'static,
{
    fn next_index(&self) -> u64 {
        self.pending.as_ref().map_or(self.next, |(index, _)| *index)
    }

    fn exhausted(&self) -> bool {
        self.iter.is_none() && self.pending.is_none()
    }

    fn remaining_hint(&self) -> Option<u64> {
        let (low, _) = self.iter.as_ref()?.size_hint();
        let low = (low as u64).saturating_sub(self.resume.as_ref().map_or(0, Resume::ahead))
            + u64::from(self.pending.is_some());
        (low > 0).then_some(low)
    }

    fn skip_done(&mut self) {
        let Some(resume) = self.resume.as_mut() else {
            return;
        };
        while self.pending.is_none() && resume.has(self.next) {
            let Some(item) = self.iter.as_mut().and_then(Iterator::next) else {
                self.iter = None;
                return;
            };
            let index = self.next;
            self.next += 1;
            let mut bytes = Vec::new();
            // An input that does not encode now cannot match its record: it is reported as
            // an input that does not encode, as it would be without a journal.
            let encoded = match codec::encode_value(item.args(), &mut bytes) {
                Ok(()) => Ok(bytes),
                Err(e) => Err(format!("cannot encode the arguments: {e}")),
            };
            let digest = encoded.as_ref().map_or(0, |b| crate::journal::digest(b));
            match resume.check(index, digest) {
                Verdict::Reuse => {}
                Verdict::Send | Verdict::Rerun => self.pending = Some((index, encoded)),
            }
        }
    }

    fn encode_into(&mut self, frame: &mut Vec<u8>, max: usize, max_bytes: usize) -> Encoded {
        let mut encoded = Encoded::default();
        match self.pending.take() {
            Some((_, Ok(bytes))) => {
                protocol::push_item::<()>(frame, |b| {
                    b.extend_from_slice(&bytes);
                    Ok(())
                })
                .expect("pushing bytes cannot fail");
                encoded.count += 1;
            }
            Some((index, Err(message))) => {
                encoded.failed = Some((index, message));
                return encoded;
            }
            None => {}
        }
        while (encoded.count as usize) < max && frame.len() < max_bytes {
            // A chunk holds consecutive inputs: it ends before one the journal holds.
            if self.resume.as_ref().is_some_and(|r| r.has(self.next)) {
                break;
            }
            let Some(item) = self.iter.as_mut().and_then(Iterator::next) else {
                self.iter = None;
                break;
            };
            let index = self.next;
            self.next += 1;
            if let Err(e) = protocol::push_item(frame, |b| codec::encode_value(item.args(), b)) {
                encoded.failed = Some((index, format!("cannot encode the arguments: {e}")));
                break;
            }
            encoded.count += 1;
        }
        encoded
    }
}
