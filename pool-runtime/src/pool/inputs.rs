//! A job's inputs, encoded on demand from the caller's iterator, and what an input may be:
//! the task's arguments or a reference to them ([`Input`]).

use std::marker::PhantomData;
use std::rc::Rc;

use serde::Serialize;

use super::resume::{Resume, Verdict};
use crate::codec;
use crate::frame::Part;
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
/// cloned, and the caller keeps its data. Under MPI, [`Pool::map`](crate::Pool::map) sends a
/// large borrowed vector of numbers, `String` or [`Bulk`](crate::Bulk) (a task's whole
/// argument, 64 KiB or more) from the caller's memory without copying it at all; the other
/// calls copy it once into their message (their streams and handles may outlive the
/// borrow). An owned one is moved into its message by every call. Implemented for `A` and
/// `&A`, for every task.
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

    /// True for a reference: the arguments live in the caller's memory for the whole call
    /// that takes them, so a `map` may send them from there (see `crate::frame`).
    #[doc(hidden)]
    const LENT: bool = false;

    /// The arguments themselves, when they are owned (not a reference): they may move into
    /// the frame that sends them.
    #[doc(hidden)]
    fn into_args(self) -> Option<A>
    where
        Self: Sized;
}

impl<A> Input<A> for A {
    fn args(&self) -> &A {
        self
    }

    fn into_args(self) -> Option<A> {
        Some(self)
    }
}

impl<A> Input<A> for &A {
    fn args(&self) -> &A {
        self
    }

    const LENT: bool = true;

    fn into_args(self) -> Option<A> {
        None
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
    /// Large borrowed inputs are sent from the caller's memory ([`InputIter::lend`]).
    lend: bool,
    args: PhantomData<fn(&A)>,
}

impl<I, A> InputIter<I, A> {
    pub(super) fn new(iter: I) -> Self {
        InputIter {
            iter: Some(iter),
            next: 0,
            resume: None,
            pending: None,
            lend: false,
            args: PhantomData,
        }
    }

    /// Sends large borrowed inputs (plain vectors, `String`s, `Bulk`s of at least
    /// [`crate::gather::MIN_BYTES`]) from the caller's memory instead of copying them into
    /// the frame.
    ///
    /// # Safety
    ///
    /// Every send from that memory must complete before the borrow of the inputs ends: the
    /// caller drives the job to its end, or drains it, and then calls
    /// `Master::settle_lent` (as `map` does) before it returns or unwinds.
    pub(super) unsafe fn lend(&mut self) {
        self.lend = true;
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

    fn encode_into(
        &mut self,
        frame: &mut Vec<u8>,
        mut parts: Option<&mut Vec<Part>>,
        max: usize,
        max_bytes: usize,
    ) -> Encoded {
        let mut encoded = Encoded::default();
        // Owned inputs may move into the frame; borrowed ones are sent from the caller's
        // memory only where that memory is lent.
        let lent = <I::Item as Input<A>>::LENT;
        if (lent && !self.lend) || !codec::splittable::<A>() {
            parts = None;
        }
        // Bytes in parts so far: the frame's size counts them.
        let mut in_parts = 0;
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
        while (encoded.count as usize) < max && frame.len() + in_parts < max_bytes {
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
            if let Some(parts) = parts.as_deref_mut() {
                if let Some(split) = codec::split(item.args(), crate::gather::MIN_BYTES) {
                    let head = &split.head[..split.head_len];
                    let at = protocol::push_parted_item(frame, head, split.bytes.len());
                    let (ptr, len, elem) = (split.bytes.as_ptr(), split.bytes.len(), split.elem);
                    let part = match item.into_args() {
                        // Moved into the frame: its bytes stay in its heap buffer, which does
                        // not move with it.
                        Some(args) => Part::kept(at, ptr, len, elem, Rc::new(args)),
                        // SAFETY: the item is a reference (`LENT`) to memory the caller keeps
                        // for the whole call, which completes every send from it first (the
                        // contract of `lend`); `ptr` and `len` are its bytes.
                        None => unsafe {
                            Part::lend(at, std::slice::from_raw_parts(ptr, len), elem)
                        },
                    };
                    parts.push(part);
                    in_parts += len;
                    encoded.count += 1;
                    continue;
                }
            }
            if let Err(e) = protocol::push_item(frame, |b| codec::encode_value(item.args(), b)) {
                encoded.failed = Some((index, format!("cannot encode the arguments: {e}")));
                break;
            }
            encoded.count += 1;
        }
        encoded
    }
}
