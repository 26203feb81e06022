//! Resume journals: every finished outcome of a `map` or `map_unordered`, appended to a file
//! as it arrives, so a run that was killed can be run again without recomputing what it had
//! finished.
//!
//! Set one with [`Options::journal`](crate::Options::journal). Inspect one with [`inspect`].
//!
//! # Format
//!
//! A header, then one record per outcome, all integers little-endian:
//!
//! ```text
//! header: b"POOLJRNL" | version u32 = 2 | name length u32 | task name
//!         | registry fingerprint u64 | inputs u64 | crc32 u32
//! record: payload length u32 | index u64 | status u8 | input digest u64 | payload | crc32 u32
//! ```
//!
//! Each CRC-32 covers the bytes of its header or record before it. A record's payload is the
//! encoded result (status 0) or the failure's message (any other status: how the task
//! failed). The input digest is a 64-bit hash of the item's encoded arguments: on resume, a
//! result is reused only for an input that encodes to the same bytes; an input that changed
//! runs again, with a warning that says how many did. The registry fingerprint (a hash of
//! the names of every task in the program) is compared too: a journal written by a program
//! with other tasks is reused with a warning (the task's code itself cannot be compared).
//!
//! # Durability
//!
//! The results of each reply frame are appended with one `write(2)` as soon as the frame
//! arrives, before the caller sees them: once written, they survive the process being killed
//! (the operating system holds them). They are flushed to the disk (`fsync`) at most a second
//! after they were written, when the `map` ends, and when the run is interrupted by SIGINT or
//! SIGTERM; a power loss can lose the results of the last second, never the consistency of
//! the file. A record cut short (a crash or a full disk in mid-write) or damaged is detected by
//! its length or checksum when the journal is opened again; it and everything after it are
//! dropped with a warning, and those tasks run again.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::frame::Part;
use crate::protocol::{Outcomes, ResultHeader, Status};

const MAGIC: &[u8; 8] = b"POOLJRNL";
const VERSION: u32 = 2;
/// Task names longer than this are not names: the header is damaged.
const MAX_NAME: usize = 4096;
/// Results are flushed to the disk at least this often while a `map` runs.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// Length, index, status, digest and checksum around each payload.
const RECORD_OVERHEAD: u64 = 4 + 8 + 1 + 8 + 4;
/// Bytes of a record before its payload.
const RECORD_HEAD: usize = 4 + 8 + 1 + 8;

/// What a journal file holds, as read by [`inspect`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalSummary {
    /// The task whose results it holds (its full name, as `#[pool_task]` registered it).
    pub task: String,
    /// How many inputs the `map` had.
    pub inputs: u64,
    /// Indices of the inputs whose results it holds, in the order they finished.
    pub done: Vec<u64>,
    /// Indices of the inputs whose tasks failed (their errors are recorded), in order.
    pub failed: Vec<u64>,
    /// Bytes at the end that do not form a valid record (a torn or damaged last write); they
    /// would be dropped when the journal is reused.
    pub damaged_bytes: u64,
}

/// Reads a journal without changing it: which task it is for and which inputs are done.
///
/// # Errors
///
/// [`Error::Journal`] if the file cannot be read or is not a pool journal.
///
/// # Examples
///
/// ```no_run
/// let summary = pool_runtime::journal::inspect("run.journal")?;
/// println!("{}: {} of {} done", summary.task, summary.done.len(), summary.inputs);
/// # Ok::<(), pool_runtime::Error>(())
/// ```
pub fn inspect(path: impl AsRef<Path>) -> Result<JournalSummary, Error> {
    let path = path.as_ref();
    let mut file =
        File::open(path).map_err(|e| journal_error(path, format!("cannot open: {e}")))?;
    let header = read_header(&mut file, path)?;
    let mut failed = Vec::new();
    let mut done = Vec::new();
    let scan = scan_records(&mut file, path, header.inputs, |record| {
        if record.status == Status::Ok as u8 {
            done.push(record.index);
        } else {
            failed.push(record.index);
        }
    })?;
    Ok(JournalSummary {
        task: header.task,
        inputs: header.inputs,
        done,
        failed,
        damaged_bytes: scan.damaged,
    })
}

/// An open journal, appending the results of one `map`.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    unsynced: bool,
    last_sync: Instant,
}

/// One outcome a reused journal holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) index: u64,
    /// A protocol status: 0 for a result, the way the task failed otherwise.
    pub(crate) status: u8,
    /// The digest of the input's encoded arguments ([`digest`]).
    pub(crate) digest: u64,
    /// The encoded result, or the failure's message.
    pub(crate) payload: Vec<u8>,
}

/// Outcomes a reused journal already holds, index order unspecified.
pub(crate) type Replayed = Vec<Record>;

/// The digest of an input's encoded arguments: two CRC-32s with different seeds.
pub(crate) fn digest(encoded: &[u8]) -> u64 {
    digest_parts(&[encoded])
}

/// [`digest`] of the concatenation of `encoded` (an input with its out-of-band part).
pub(crate) fn digest_parts(encoded: &[&[u8]]) -> u64 {
    let mut first = crc32fast::Hasher::new();
    let mut second = crc32fast::Hasher::new_with_initial(0x9e37_79b9);
    for bytes in encoded {
        first.update(bytes);
        second.update(bytes);
    }
    (u64::from(first.finalize()) << 32) | u64::from(second.finalize())
}

impl Journal {
    /// Opens the journal at `path` for `task` over `inputs` inputs in a program whose task
    /// registry has `fingerprint`, creating it if it does not exist, and returns the outcomes
    /// it already holds.
    pub(crate) fn open(
        path: &Path,
        task: &str,
        fingerprint: u64,
        inputs: u64,
    ) -> Result<(Journal, Replayed), Error> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| journal_error(path, format!("cannot open: {e}")))?;
        let len = file
            .metadata()
            .map_err(|e| journal_error(path, format!("cannot read: {e}")))?
            .len();
        let mut replayed = Vec::new();
        if len == 0 {
            let header = encode_header(task, fingerprint, inputs);
            file.write_all(&header)
                .and_then(|()| file.sync_data())
                .map_err(|e| journal_error(path, format!("cannot write its header: {e}")))?;
        } else {
            let Header {
                task: their_task,
                fingerprint: their_fingerprint,
                inputs: their_inputs,
            } = read_header(&mut file, path)?;
            if their_task != task || their_inputs != inputs {
                return Err(journal_error(
                    path,
                    format!(
                        "it was written for task `{their_task}` over {their_inputs} inputs, but \
                         this map runs task `{task}` over {inputs} inputs; give this run another \
                         journal path, or delete the file to start over"
                    ),
                ));
            }
            if their_fingerprint != fingerprint {
                eprintln!(
                    "pool: warning: journal {} was written by a program with other tasks (its \
                     registry fingerprint differs); its results are reused as they are: delete \
                     it if `{task}` itself changed",
                    path.display()
                );
            }
            let scan = scan_records(&mut file, path, inputs, |record| {
                replayed.push(record.clone());
            })?;
            if scan.damaged > 0 {
                eprintln!(
                    "pool: journal {}: dropped {} damaged bytes at its end (a write cut short); \
                     the tasks they held run again",
                    path.display(),
                    scan.damaged
                );
                file.set_len(scan.end)
                    .map_err(|e| journal_error(path, format!("cannot truncate: {e}")))?;
            }
            file.seek(SeekFrom::Start(scan.end))
                .map_err(|e| journal_error(path, format!("cannot seek: {e}")))?;
        }
        let journal = Journal {
            file,
            path: path.to_owned(),
            buf: Vec::new(),
            unsynced: false,
            last_sync: Instant::now(),
        };
        Ok((journal, replayed))
    }

    /// [`Journal::append_parted`] of a frame without out-of-band parts.
    #[cfg(test)]
    pub(crate) fn append_frame(
        &mut self,
        header: &ResultHeader,
        frame: &[u8],
        digests: &[u64],
        keep: impl Fn(u64) -> bool,
    ) -> Result<(), Error> {
        self.append_parted(header, (frame, &[]), digests, keep)
    }

    /// Appends the outcomes of one RESULT frame (already validated) with a single write, and
    /// flushes to the disk if the last flush is more than a second old. `digests` are the
    /// items' input digests, in order; `keep(index)` says which outcomes are final (an item
    /// that runs again is not recorded yet). A frame's out-of-band parts ([`crate::frame`])
    /// are in their records: each holds its outcome's every byte, those of its part included.
    pub(crate) fn append_parted(
        &mut self,
        header: &ResultHeader,
        (frame, parts): (&[u8], &[Part]),
        digests: &[u64],
        keep: impl Fn(u64) -> bool,
    ) -> Result<(), Error> {
        self.buf.clear();
        let mut outcomes = Outcomes::new(header);
        let mut index = header.first;
        let mut digests = digests.iter();
        while let Some((status, head, part)) = outcomes.next_parted(frame, parts) {
            let digest = digests.next().copied().unwrap_or(0);
            if keep(index) {
                let part = part.map_or(&[][..], |p| parts[p].bytes());
                let payload = [head, part];
                let len = head.len() + part.len();
                if u32::try_from(len).is_err() {
                    // A record's length has 4 bytes: say so rather than write a wrong one.
                    return Err(journal_error(
                        &self.path,
                        format!(
                            "the outcome of input {index} encodes to {} bytes, more than a \
                             journal record holds (4 GiB); run this map without a journal, or \
                             return less data per task",
                            len
                        ),
                    ));
                }
                push_record(&mut self.buf, index, status as u8, digest, &payload);
            }
            index += 1;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.buf)
            .map_err(|e| journal_error(&self.path, format!("cannot append results: {e}")))?;
        self.unsynced = true;
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Flushes what was written to the disk.
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(|e| journal_error(&self.path, format!("cannot flush to disk: {e}")))?;
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, reporting a failure on stderr (for paths that end the job anyway).
    pub(crate) fn sync(&mut self) {
        if let Err(e) = self.flush() {
            eprintln!("pool: {e}");
        }
    }
}

fn journal_error(path: &Path, message: String) -> Error {
    Error::Journal {
        path: path.to_owned(),
        message,
    }
}

fn encode_header(task: &str, fingerprint: u64, inputs: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(40 + task.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(task.len() as u32).to_le_bytes());
    header.extend_from_slice(task.as_bytes());
    header.extend_from_slice(&fingerprint.to_le_bytes());
    header.extend_from_slice(&inputs.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

/// Appends a record whose payload is the concatenation of `payload`.
fn push_record(buf: &mut Vec<u8>, index: u64, status: u8, digest: u64, payload: &[&[u8]]) {
    let start = buf.len();
    let len: usize = payload.iter().map(|p| p.len()).sum();
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(&index.to_le_bytes());
    buf.push(status);
    buf.extend_from_slice(&digest.to_le_bytes());
    for p in payload {
        buf.extend_from_slice(p);
    }
    let crc = crc32fast::hash(&buf[start..]);
    buf.extend_from_slice(&crc.to_le_bytes());
}

/// A journal's header.
struct Header {
    task: String,
    fingerprint: u64,
    inputs: u64,
}

/// Reads and checks the header; leaves the file at the first record.
fn read_header(file: &mut File, path: &Path) -> Result<Header, Error> {
    let not_a_journal = |why: &str| {
        journal_error(
            path,
            format!(
                "it is not a pool journal ({why}); give this run another journal path, or \
                 delete the file to start over"
            ),
        )
    };
    let mut fixed = [0u8; 16];
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_exact(&mut fixed))
        .map_err(|_| not_a_journal("too short for a header"))?;
    if &fixed[..8] != MAGIC {
        return Err(not_a_journal("wrong magic bytes"));
    }
    let version = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(not_a_journal(&format!(
            "format version {version}; this pool reads version {VERSION}"
        )));
    }
    let name_len = u32::from_le_bytes(fixed[12..16].try_into().expect("4 bytes")) as usize;
    if name_len > MAX_NAME {
        return Err(not_a_journal("damaged header"));
    }
    let mut rest = vec![0u8; name_len + 8 + 8 + 4];
    file.read_exact(&mut rest)
        .map_err(|_| not_a_journal("header cut short"))?;
    let (body, crc) = rest.split_at(name_len + 16);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&fixed);
    hasher.update(body);
    if hasher.finalize() != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(not_a_journal("header checksum mismatch"));
    }
    let task = String::from_utf8(body[..name_len].to_vec())
        .map_err(|_| not_a_journal("task name not UTF-8"))?;
    let fingerprint = u64::from_le_bytes(body[name_len..name_len + 8].try_into().expect("8"));
    let inputs = u64::from_le_bytes(body[name_len + 8..].try_into().expect("8 bytes"));
    Ok(Header {
        task,
        fingerprint,
        inputs,
    })
}

struct Scan {
    /// Offset just past the last valid record.
    end: u64,
    /// Bytes after `end`.
    damaged: u64,
}

/// Reads the records after the header, calling `each` for every valid one. (A pool never
/// writes an index twice: a reused journal's indices are not run again.) Stops at the first record that is cut short, fails its checksum, or names an
/// index out of range. No allocation is sized by a length read from the file before that
/// length is checked against the file's size.
fn scan_records(
    file: &mut File,
    path: &Path,
    inputs: u64,
    mut each: impl FnMut(&Record),
) -> Result<Scan, Error> {
    let io_error = |e: io::Error| journal_error(path, format!("cannot read: {e}"));
    let size = file.metadata().map_err(io_error)?.len();
    let mut at = file.stream_position().map_err(io_error)?;
    let mut reader = io::BufReader::with_capacity(1 << 20, &mut *file);
    let mut record = Record {
        index: 0,
        status: 0,
        digest: 0,
        payload: Vec::new(),
    };
    loop {
        let left = size - at;
        if left < RECORD_OVERHEAD {
            break;
        }
        let mut head = [0u8; RECORD_HEAD];
        reader.read_exact(&mut head).map_err(io_error)?;
        let len = u64::from(u32::from_le_bytes(head[..4].try_into().expect("4 bytes")));
        let index = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
        if len > left - RECORD_OVERHEAD || index >= inputs {
            break;
        }
        record.payload.resize(len as usize, 0);
        let mut crc = [0u8; 4];
        reader
            .read_exact(&mut record.payload)
            .and_then(|()| reader.read_exact(&mut crc))
            .map_err(io_error)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(&record.payload);
        if hasher.finalize() != u32::from_le_bytes(crc) {
            break;
        }
        at += RECORD_OVERHEAD + len;
        record.index = index;
        record.status = head[12];
        record.digest = u64::from_le_bytes(head[13..21].try_into().expect("8 bytes"));
        each(&record);
    }
    Ok(Scan {
        end: at,
        damaged: size - at,
    })
}

#[cfg(test)]
mod tests;
