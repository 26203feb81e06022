//! Large results sent from their own memory: a worker's frame with holes.
//!
//! A task's result whose whole type is a large plain vector or a `String` (see
//! [`codec::encode_owned`](crate::codec)) is not copied into the RESULT frame on an MPI
//! worker: the frame gets its length prefix, the value itself is kept here with the offset where
//! its bytes belong, and the MPI link sends the frame's bytes and the value's memory as
//! consecutive messages (`MPI_Isend` from the value's own buffer), then drops the value once
//! the send has completed. The receiver sees one frame, exactly as if it had been copied.
//!
//! Only the thread of an MPI worker enables this ([`enable`]): in one process, frames go
//! between threads by channel and hold every byte themselves. Everything here is per thread.
//!
//! The master does the same with its TASK frames, and both sides receive such values into
//! memory they then own: a frame carries its out-of-band parts with it ([`crate::frame`]),
//! through the master's queues (chunks cut ahead, kept frames for retries, journals). A
//! worker builds a frame and sends it at once, so this per-thread list is enough for its
//! results; the master's inputs add their parts to the frame directly
//! (`pool::inputs`): an owned input moves into its frame, a borrowed one is sent from the
//! caller's memory only by `map`, which outlives every send from it (a `map_unordered`
//! stream or a `submit` handle, which safe code may leak, copies it instead).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Values at least this large are sent from their own memory; smaller ones are copied (a
/// copy of a small value costs less than one more message).
pub(crate) const MIN_BYTES: usize = 64 << 10;

/// A value whose bytes belong at offset `at` of the frame being built, kept alive (and
/// unmoved: the bytes live in its heap buffer) until its send completes.
pub(crate) struct Segment {
    pub(crate) at: usize,
    pub(crate) ptr: *const u8,
    pub(crate) len: usize,
    /// The size of its elements (1, 2, 4 or 8 bytes): its receiver allocates such memory.
    pub(crate) elem: u8,
    pub(crate) keep: Rc<dyn Any>,
}

impl Segment {
    /// The segment as an out-of-band part of its frame.
    pub(crate) fn into_part(self) -> crate::frame::Part {
        crate::frame::Part::kept(self.at, self.ptr, self.len, self.elem, self.keep)
    }
}

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static SEGMENTS: RefCell<Vec<Segment>> = const { RefCell::new(Vec::new()) };
}

/// Turns sending from values' own memory on or off for this thread.
pub(crate) fn enable(on: bool) {
    ENABLED.with(|e| e.set(on));
    if !on {
        SEGMENTS.with(|s| s.borrow_mut().clear());
    }
}

/// Turns sending from values' own memory off until the guard drops: for bytes that are kept,
/// not sent as they are (a fold's running value, decoded again on this worker).
pub(crate) fn pause() -> Paused {
    Paused(ENABLED.with(|e| e.replace(false)))
}

/// See [`pause`].
pub(crate) struct Paused(bool);

impl Drop for Paused {
    fn drop(&mut self) {
        ENABLED.with(|e| e.set(self.0));
    }
}

/// True on a thread whose link sends segments.
#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.with(Cell::get)
}

/// Records that `value`'s `len` bytes at `ptr` (in its heap buffer) belong at offset `at`.
pub(crate) fn push(at: usize, ptr: *const u8, len: usize, elem: u8, keep: Rc<dyn Any>) {
    SEGMENTS.with(|s| {
        s.borrow_mut().push(Segment {
            at,
            ptr,
            len,
            elem,
            keep,
        });
    });
}

/// The bytes of the segments at offset `start` or after: what the frame holds beyond its own
/// bytes from there on.
#[inline]
pub(crate) fn len_after(start: usize) -> usize {
    SEGMENTS.with(|s| {
        let s = s.borrow();
        if s.is_empty() {
            return 0;
        }
        s.iter().filter(|g| g.at >= start).map(|g| g.len).sum()
    })
}

/// Forgets the segments at offset `start` or after (the frame was cut back to `start`).
#[inline]
pub(crate) fn truncate(start: usize) {
    SEGMENTS.with(|s| {
        let mut s = s.borrow_mut();
        if !s.is_empty() {
            s.retain(|g| g.at < start);
        }
    });
}

/// Moves the segments at offset `from` or after by `by` bytes (bytes were inserted there).
pub(crate) fn shift(from: usize, by: usize) {
    SEGMENTS.with(|s| {
        for g in s.borrow_mut().iter_mut().filter(|g| g.at >= from) {
            g.at += by;
        }
    });
}

/// Takes the segments of the frame just built, in order of offset.
pub(crate) fn take() -> Vec<Segment> {
    SEGMENTS.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_counted_cut_and_taken() {
        let v = vec![1u8; 10];
        push(4, v.as_ptr(), 10, 1, Rc::new(v));
        let w = vec![2u8; 5];
        push(20, w.as_ptr(), 5, 1, Rc::new(w));
        assert_eq!((len_after(0), len_after(5), len_after(21)), (15, 5, 0));
        truncate(20);
        assert_eq!(len_after(0), 10);
        let taken = take();
        assert_eq!((taken.len(), taken[0].at, taken[0].len), (1, 4, 10));
        assert_eq!(len_after(0), 0);
    }
}
