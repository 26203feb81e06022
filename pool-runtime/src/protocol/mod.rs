//! The wire protocol: tags, frame layouts, encode and decode.
//!
//! Pure functions over byte slices, so they can be unit-tested and fuzzed without MPI.
//! Every decoder checks each declared length against the bytes that are really there and
//! never allocates from a declared size.
//!
//! One frame is one MPI message on the pool's own communicator. All integers are little endian.
//!
//! ```text
//! HELLO  worker -> master  u32 version, u64 fingerprint, u32 pid, str host, u32 n, n x str task
//! TASK   master -> worker  u32 job, u64 task id, u64 first index, u32 count, count x item
//!                          item = u32 len, len bytes (the encoded arguments)
//! RESULT worker -> master  u32 job, u64 first index, u32 count, u64 busy ns, count x outcome
//!                          outcome = u8 status, u32 len, len bytes (encoded value or message)
//! STOP   master -> worker  i32 exit code
//! BYE    worker -> master  (empty) the worker has finished; it waits for RELEASE
//! RELEASE master -> worker (empty) once every worker that can has said BYE: finalize, exit
//! CONTEXT, SHARE, FREE, FOLD, FOLD_END, FOLDED, PARTIAL: see `control.rs`
//! str = u32 len, len bytes of UTF-8
//! ```
//!
//! An item or outcome of 4 GiB or more has the length `u32::MAX`, followed by its real
//! length as a `u64` (no size limit but memory; smaller ones keep the 4-byte length).
//!
//! The task index never travels in the tag: tags are a small fixed set, so any number of tasks fits.

use std::fmt;

use crate::error::TaskFailure;
use crate::frame::Part;
use reader::Reader;

mod control;
mod hello;
mod reader;
pub(crate) use control::*;
pub(crate) use hello::Hello;

/// Bumped whenever a frame layout changes; checked in the start-up handshake. (3: control
/// frames for shared values, worker contexts and folds; lengths of 4 GiB and more; large
/// frames announced with their length and sent in pieces. 4: large frames announced with
/// their out-of-band parts, each sent and received as messages of its own. 5: RELEASE, after
/// BYE.)
pub(crate) const VERSION: u32 = 5;

/// The length that says "a `u64` length follows" (items of 4 GiB or more).
const LONG: u32 = u32::MAX;

/// The message tags of the pool protocol. All are far below the MPI minimum `MPI_TAG_UB` of 32,767.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Tag {
    Hello = 1,
    Task = 2,
    Result = 3,
    Stop = 4,
    Bye = 5,
    Context = 6,
    Share = 7,
    Free = 8,
    Fold = 9,
    FoldEnd = 10,
    Folded = 11,
    Partial = 12,
    /// After every worker that can has said BYE: the worker may finalize and exit (see
    /// `Master::shutdown`).
    Release = 13,
}

impl Tag {
    pub(crate) fn from_raw(raw: i32) -> Option<Tag> {
        Some(match raw {
            1 => Tag::Hello,
            2 => Tag::Task,
            3 => Tag::Result,
            4 => Tag::Stop,
            5 => Tag::Bye,
            6 => Tag::Context,
            7 => Tag::Share,
            8 => Tag::Free,
            9 => Tag::Fold,
            10 => Tag::FoldEnd,
            11 => Tag::Folded,
            12 => Tag::Partial,
            13 => Tag::Release,
            _ => return None,
        })
    }
}

/// A frame that does not follow the protocol. The text says what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProtocolError(pub(crate) String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed(what: impl Into<String>) -> ProtocolError {
    ProtocolError(what.into())
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}
fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u32(buf, len_u32(s.len()));
    buf.extend_from_slice(s.as_bytes());
}
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Encodes a STOP frame carrying the exit status every rank will use.
pub(crate) fn encode_stop(code: i32) -> Vec<u8> {
    code.to_le_bytes().to_vec()
}

pub(crate) fn decode_stop(bytes: &[u8]) -> Result<i32, ProtocolError> {
    let mut r = Reader::new(bytes, "STOP");
    let code = r.i32("exit code")?;
    r.finish()?;
    Ok(code)
}

/// Header of a TASK frame: which job, which task function, which input indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskHeader {
    pub(crate) job: u32,
    pub(crate) task: u64,
    pub(crate) first: u64,
    pub(crate) count: u32,
}

const TASK_HEADER_LEN: usize = 4 + 8 + 8 + 4;
const TASK_COUNT_AT: usize = TASK_HEADER_LEN - 4;

/// Starts a TASK frame in `buf` (cleared first) with a count of zero; add items with
/// [`push_item`] and set the count with [`finish_task_frame`].
pub(crate) fn begin_task_frame(buf: &mut Vec<u8>, job: u32, task: u64, first: u64) {
    buf.clear();
    put_u32(buf, job);
    put_u64(buf, task);
    put_u64(buf, first);
    put_u32(buf, 0);
}

pub(crate) fn finish_task_frame(buf: &mut [u8], count: u32) {
    buf[TASK_COUNT_AT..TASK_COUNT_AT + 4].copy_from_slice(&count.to_le_bytes());
}

/// Appends one length-prefixed item to a frame; `write` appends the item's bytes.
///
/// On error the frame is left exactly as it was before the call.
pub(crate) fn push_item<E>(
    buf: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let start = buf.len();
    put_u32(buf, 0);
    if let Err(e) = write(buf) {
        buf.truncate(start);
        crate::gather::truncate(start);
        return Err(e);
    }
    // The item's bytes, with those of values that will be sent from their own memory.
    let len = buf.len() - start - 4 + crate::gather::len_after(start + 4);
    match u32::try_from(len) {
        Ok(short) if short != LONG => buf[start..start + 4].copy_from_slice(&short.to_le_bytes()),
        // 4 GiB or more: the escape, then the length; moves the item once (only such items).
        _ => {
            buf[start..start + 4].copy_from_slice(&LONG.to_le_bytes());
            let at = start + 4;
            buf.splice(at..at, (len as u64).to_le_bytes());
            crate::gather::shift(at, 8);
        }
    }
    Ok(())
}

/// Appends one item whose bytes are `head` followed by `part_len` bytes that travel out of
/// band (see [`crate::frame`]); returns the offset where those belong.
pub(crate) fn push_parted_item(buf: &mut Vec<u8>, head: &[u8], part_len: usize) -> usize {
    let len = head.len() + part_len;
    match u32::try_from(len) {
        Ok(short) if short != LONG => put_u32(buf, short),
        _ => {
            put_u32(buf, LONG);
            put_u64(buf, len as u64);
        }
    }
    buf.extend_from_slice(head);
    buf.len()
}

/// A decoded TASK frame; `items` yields each item's bytes.
#[derive(Debug)]
pub(crate) struct TaskFrame<'a> {
    pub(crate) header: TaskHeader,
    bytes: &'a [u8],
    parts: &'a [Part],
}

impl<'a> TaskFrame<'a> {
    /// Reads the header and checks that exactly `count` well-formed items follow.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<TaskFrame<'a>, ProtocolError> {
        TaskFrame::decode_parts(bytes, &[])
    }

    /// [`TaskFrame::decode`] of a frame with out-of-band parts.
    pub(crate) fn decode_parts(
        bytes: &'a [u8],
        parts: &'a [Part],
    ) -> Result<TaskFrame<'a>, ProtocolError> {
        let mut r = Reader::with_parts(bytes, parts, "TASK");
        let header = match TaskHeader::read(bytes) {
            Some(header) => {
                r.pos = TASK_HEADER_LEN;
                header
            }
            None => TaskHeader {
                job: r.u32("job id")?,
                task: r.u64("task id")?,
                first: r.u64("first index")?,
                count: r.u32("item count")?,
            },
        };
        if parts.is_empty() {
            for _ in 0..header.count {
                r.length_prefixed("item")?;
            }
        } else {
            for _ in 0..header.count {
                r.item("item")?;
            }
        }
        r.finish()?;
        Ok(TaskFrame {
            header,
            bytes,
            parts,
        })
    }

    /// The items' bytes, in order (of a frame without parts). Only valid after `decode`
    /// checked them.
    pub(crate) fn items(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut r = Reader::new(&self.bytes[TASK_HEADER_LEN..], "TASK");
        (0..self.header.count).map(move |_| r.length_prefixed("item").unwrap_or_default())
    }

    /// Each item's in-band bytes and the index of its out-of-band part, which ends it.
    pub(crate) fn parted_items(&self) -> impl Iterator<Item = (&'a [u8], Option<usize>)> + 'a {
        let mut r = Reader::with_parts(self.bytes, self.parts, "TASK");
        r.pos = TASK_HEADER_LEN;
        (0..self.header.count).map(move |_| r.item("item").unwrap_or_default())
    }
}

/// Reads just the header of a TASK frame, for replying to a frame whose items are broken.
pub(crate) fn peek_task_header(bytes: &[u8]) -> Option<TaskHeader> {
    TaskHeader::read(bytes)
}

/// How one item of a chunk ended, as carried in a RESULT frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Status {
    /// The bytes are the encoded return value.
    Ok = 0,
    /// The task returned `Err`; the bytes are its message.
    Failed = 1,
    /// The task panicked; the bytes are the panic message.
    Panicked = 2,
    /// The worker could not decode the arguments.
    BadInput = 3,
    /// The worker could not encode the return value.
    BadOutput = 4,
    /// The worker does not know the task id, or the TASK frame was malformed.
    Rejected = 5,
    /// The task's worker state could not be built; the bytes are `init`'s error.
    StateInit = 6,
}

impl Status {
    /// The status of an item that produced no value.
    pub(crate) fn of(failure: &TaskFailure) -> Status {
        match failure {
            TaskFailure::Failed(_) => Status::Failed,
            TaskFailure::Panicked(_) => Status::Panicked,
            TaskFailure::BadInput(_) => Status::BadInput,
            TaskFailure::BadOutput(_) => Status::BadOutput,
            TaskFailure::StateInit(_) => Status::StateInit,
        }
    }

    pub(crate) fn from_raw(raw: u8) -> Option<Status> {
        Some(match raw {
            0 => Status::Ok,
            1 => Status::Failed,
            2 => Status::Panicked,
            3 => Status::BadInput,
            4 => Status::BadOutput,
            5 => Status::Rejected,
            6 => Status::StateInit,
            _ => return None,
        })
    }
}

/// Header of a RESULT frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ResultHeader {
    pub(crate) job: u32,
    pub(crate) first: u64,
    pub(crate) count: u32,
    /// Time the worker spent running the chunk's tasks, in nanoseconds.
    pub(crate) busy_ns: u64,
}

const RESULT_COUNT_AT: usize = 4 + 8;
const RESULT_BUSY_AT: usize = 4 + 8 + 4;
pub(crate) const RESULT_HEADER_LEN: usize = 4 + 8 + 4 + 8;

/// Starts a RESULT frame in `buf` (cleared first); add outcomes with [`push_outcome`].
pub(crate) fn begin_result_frame(buf: &mut Vec<u8>, job: u32, first: u64) {
    buf.clear();
    put_u32(buf, job);
    put_u64(buf, first);
    put_u32(buf, 0);
    put_u64(buf, 0);
}

pub(crate) fn finish_result_frame(buf: &mut [u8], count: u32, busy_ns: u64) {
    buf[RESULT_COUNT_AT..RESULT_COUNT_AT + 4].copy_from_slice(&count.to_le_bytes());
    buf[RESULT_BUSY_AT..RESULT_BUSY_AT + 8].copy_from_slice(&busy_ns.to_le_bytes());
}

/// Appends an outcome whose bytes `write` appends (an encoded value or a message).
#[inline]
pub(crate) fn push_outcome<E>(
    buf: &mut Vec<u8>,
    status: Status,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let start = buf.len();
    buf.push(status as u8);
    push_item(buf, write).inspect_err(|_| buf.truncate(start))
}

/// Appends an outcome carrying a message.
pub(crate) fn push_message(buf: &mut Vec<u8>, status: Status, message: &str) {
    let _ = push_outcome::<()>(buf, status, |b| {
        b.extend_from_slice(message.as_bytes());
        Ok(())
    });
}

/// A RESULT frame whose outcomes have all been checked.
#[derive(Debug)]
pub(crate) struct ResultFrame {
    pub(crate) header: ResultHeader,
}

impl ResultFrame {
    pub(crate) fn decode(bytes: &[u8]) -> Result<ResultFrame, ProtocolError> {
        ResultFrame::decode_parts(bytes, &[])
    }

    /// [`ResultFrame::decode`] of a frame with out-of-band parts (values only, never a
    /// message).
    pub(crate) fn decode_parts(bytes: &[u8], parts: &[Part]) -> Result<ResultFrame, ProtocolError> {
        let mut r = Reader::with_parts(bytes, parts, "RESULT");
        let header = match ResultHeader::read(bytes) {
            Some(header) => {
                r.pos = RESULT_HEADER_LEN;
                header
            }
            None => ResultHeader {
                job: r.u32("job id")?,
                first: r.u64("first index")?,
                count: r.u32("item count")?,
                busy_ns: r.u64("busy time")?,
            },
        };
        for i in 0..header.count {
            let raw = r.u8("status")?;
            let Some(status) = Status::from_raw(raw) else {
                return Err(malformed(format!(
                    "RESULT frame: item {i} has unknown status {raw}"
                )));
            };
            let (bytes, part) = if parts.is_empty() {
                (r.length_prefixed("outcome")?, None)
            } else {
                r.item("outcome")?
            };
            if status != Status::Ok && (part.is_some() || std::str::from_utf8(bytes).is_err()) {
                return Err(malformed(format!(
                    "RESULT frame: item {i} has a message that is not UTF-8"
                )));
            }
        }
        r.finish()?;
        Ok(ResultFrame { header })
    }
}

/// Walks the outcomes of a RESULT frame that [`ResultFrame::decode`] accepted.
#[derive(Debug)]
pub(crate) struct Outcomes {
    pos: usize,
    left: u32,
    /// The next out-of-band part.
    part: usize,
}

impl Outcomes {
    pub(crate) fn new(header: &ResultHeader) -> Self {
        Outcomes {
            pos: RESULT_HEADER_LEN,
            left: header.count,
            part: 0,
        }
    }

    /// Outcomes not read yet.
    #[cfg(test)]
    pub(crate) fn remaining(&self) -> u32 {
        self.left
    }

    /// The next outcome of `frame`: its status and bytes (a message is valid UTF-8).
    #[inline]
    pub(crate) fn next<'f>(&mut self, frame: &'f [u8]) -> Option<(Status, &'f [u8])> {
        if self.left == 0 {
            return None;
        }
        let mut r = Reader::new(frame, "RESULT");
        r.pos = self.pos;
        let status = Status::from_raw(*frame.get(r.pos)?)?;
        r.pos += 1;
        let bytes = r.length_prefixed("outcome").ok()?;
        self.pos = r.pos;
        self.left -= 1;
        Some((status, bytes))
    }

    /// [`Outcomes::next`] of a frame with out-of-band parts: the outcome's in-band bytes,
    /// and the index of the part that ends it.
    #[inline]
    pub(crate) fn next_parted<'f>(
        &mut self,
        frame: &'f [u8],
        parts: &'f [Part],
    ) -> Option<(Status, &'f [u8], Option<usize>)> {
        if parts.is_empty() {
            return self
                .next(frame)
                .map(|(status, bytes)| (status, bytes, None));
        }
        if self.left == 0 {
            return None;
        }
        let mut r = Reader::with_parts(frame, parts, "RESULT");
        r.pos = self.pos;
        r.part = self.part;
        let status = Status::from_raw(r.u8("status").ok()?)?;
        let (bytes, part) = r.item("outcome").ok()?;
        self.pos = r.pos;
        self.part = r.part;
        self.left -= 1;
        Some((status, bytes, part))
    }
}

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;
