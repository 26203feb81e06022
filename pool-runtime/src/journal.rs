//! Resume journals: every finished result of a `map`, appended to a file as it arrives, so a
//! run that was killed can be run again without recomputing what it had finished.
//!
//! Set one with [`Options::journal`](crate::Options::journal). Inspect one with [`inspect`].
//!
//! # Format
//!
//! A header, then one record per successful result, all integers little-endian:
//!
//! ```text
//! header: b"POOLJRNL" | version u32 = 1 | name length u32 | task name | inputs u64 | crc32 u32
//! record: payload length u32 | index u64 | payload (the encoded result) | crc32 u32
//! ```
//!
//! Each CRC-32 covers the bytes of its header or record before it. Only results of tasks that
//! succeeded are recorded: a task that failed runs again when the journal is reused.
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
use crate::protocol::{Outcomes, ResultHeader, Status};

const MAGIC: &[u8; 8] = b"POOLJRNL";
const VERSION: u32 = 1;
/// Task names longer than this are not names: the header is damaged.
const MAX_NAME: usize = 4096;
/// Results are flushed to the disk at least this often while a `map` runs.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// Length, index and checksum around each payload.
const RECORD_OVERHEAD: u64 = 4 + 8 + 4;

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
    let (task, inputs) = read_header(&mut file, path)?;
    let scan = scan_records(&mut file, path, inputs, |_, _| {})?;
    Ok(JournalSummary {
        task,
        inputs,
        done: scan.indices,
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

/// Results a reused journal already holds: `(index, encoded result)`, index order unspecified.
pub(crate) type Replayed = Vec<(u64, Vec<u8>)>;

impl Journal {
    /// Opens the journal at `path` for `task` over `inputs` inputs, creating it if it does not
    /// exist, and returns the results it already holds.
    pub(crate) fn open(path: &Path, task: &str, inputs: u64) -> Result<(Journal, Replayed), Error> {
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
            let header = encode_header(task, inputs);
            file.write_all(&header)
                .and_then(|()| file.sync_data())
                .map_err(|e| journal_error(path, format!("cannot write its header: {e}")))?;
        } else {
            let (their_task, their_inputs) = read_header(&mut file, path)?;
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
            let scan = scan_records(&mut file, path, inputs, |index, payload| {
                replayed.push((index, payload.to_vec()));
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

    /// Appends the successful outcomes of one RESULT frame (already validated) with a single
    /// write, and flushes to the disk if the last flush is more than a second old.
    pub(crate) fn append_frame(
        &mut self,
        header: &ResultHeader,
        frame: &[u8],
    ) -> Result<(), Error> {
        self.buf.clear();
        let mut outcomes = Outcomes::new(header);
        let mut index = header.first;
        while let Some((status, payload)) = outcomes.next(frame) {
            if status == Status::Ok {
                push_record(&mut self.buf, index, payload);
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

fn encode_header(task: &str, inputs: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(32 + task.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(task.len() as u32).to_le_bytes());
    header.extend_from_slice(task.as_bytes());
    header.extend_from_slice(&inputs.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

fn push_record(buf: &mut Vec<u8>, index: u64, payload: &[u8]) {
    let start = buf.len();
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&index.to_le_bytes());
    buf.extend_from_slice(payload);
    let crc = crc32fast::hash(&buf[start..]);
    buf.extend_from_slice(&crc.to_le_bytes());
}

/// Reads and checks the header; leaves the file at the first record.
fn read_header(file: &mut File, path: &Path) -> Result<(String, u64), Error> {
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
    let mut rest = vec![0u8; name_len + 8 + 4];
    file.read_exact(&mut rest)
        .map_err(|_| not_a_journal("header cut short"))?;
    let (body, crc) = rest.split_at(name_len + 8);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&fixed);
    hasher.update(body);
    if hasher.finalize() != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(not_a_journal("header checksum mismatch"));
    }
    let task = String::from_utf8(body[..name_len].to_vec())
        .map_err(|_| not_a_journal("task name not UTF-8"))?;
    let inputs = u64::from_le_bytes(body[name_len..].try_into().expect("8 bytes"));
    Ok((task, inputs))
}

struct Scan {
    indices: Vec<u64>,
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
    mut each: impl FnMut(u64, &[u8]),
) -> Result<Scan, Error> {
    let io_error = |e: io::Error| journal_error(path, format!("cannot read: {e}"));
    let size = file.metadata().map_err(io_error)?.len();
    let mut at = file.stream_position().map_err(io_error)?;
    let mut reader = io::BufReader::with_capacity(1 << 20, &mut *file);
    let mut indices = Vec::new();
    let mut payload = Vec::new();
    loop {
        let left = size - at;
        if left < RECORD_OVERHEAD {
            break;
        }
        let mut head = [0u8; 12];
        reader.read_exact(&mut head).map_err(io_error)?;
        let len = u64::from(u32::from_le_bytes(head[..4].try_into().expect("4 bytes")));
        let index = u64::from_le_bytes(head[4..].try_into().expect("8 bytes"));
        if len > left - RECORD_OVERHEAD || index >= inputs {
            break;
        }
        payload.resize(len as usize, 0);
        let mut crc = [0u8; 4];
        reader
            .read_exact(&mut payload)
            .and_then(|()| reader.read_exact(&mut crc))
            .map_err(io_error)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(&payload);
        if hasher.finalize() != u32::from_le_bytes(crc) {
            break;
        }
        at += RECORD_OVERHEAD + len;
        indices.push(index);
        each(index, &payload);
    }
    Ok(Scan {
        indices,
        end: at,
        damaged: size - at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol;

    fn frame(first: u64, outcomes: &[(Status, &[u8])]) -> (ResultHeader, Vec<u8>) {
        let mut buf = Vec::new();
        protocol::begin_result_frame(&mut buf, 0, first);
        for (status, bytes) in outcomes {
            if *status == Status::Ok {
                protocol::push_outcome::<()>(&mut buf, Status::Ok, |b| {
                    b.extend_from_slice(bytes);
                    Ok(())
                })
                .expect("push");
            } else {
                protocol::push_message(&mut buf, *status, "failed");
            }
        }
        protocol::finish_result_frame(&mut buf, outcomes.len() as u32, 0);
        let header = protocol::ResultFrame::decode(&buf).expect("valid").header;
        (header, buf)
    }

    fn temp(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "pool-journal-{}-{name}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn records_survive_reopening_and_torn_tails_are_dropped() {
        let path = temp("torn");
        let (mut journal, replayed) = Journal::open(&path, "t::f", 10).expect("create");
        assert!(replayed.is_empty());
        let (h, f) = frame(
            0,
            &[
                (Status::Ok, b"a"),
                (Status::Failed, b""),
                (Status::Ok, b"cc"),
            ],
        );
        journal.append_frame(&h, &f).expect("append");
        let (h, f) = frame(5, &[(Status::Ok, b"dddd")]);
        journal.append_frame(&h, &f).expect("append");
        journal.flush().expect("flush");
        drop(journal);

        let (_, mut replayed) = Journal::open(&path, "t::f", 10).expect("reopen");
        replayed.sort();
        assert_eq!(
            replayed,
            vec![
                (0, b"a".to_vec()),
                (2, b"cc".to_vec()),
                (5, b"dddd".to_vec())
            ]
        );

        // Cut the last record short: it is dropped, the others stay, the file is repaired.
        let full = std::fs::metadata(&path).expect("meta").len();
        let file = OpenOptions::new().write(true).open(&path).expect("open");
        file.set_len(full - 3).expect("truncate");
        drop(file);
        let summary = inspect(&path).expect("inspect");
        assert_eq!(summary.done, vec![0, 2]);
        assert_eq!(summary.damaged_bytes, RECORD_OVERHEAD + 4 - 3);
        let (_, replayed) = Journal::open(&path, "t::f", 10).expect("reopen torn");
        assert_eq!(replayed.len(), 2);
        assert_eq!(inspect(&path).expect("inspect").damaged_bytes, 0);

        // Garbage appended (a damaged record) is dropped the same way.
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(&[7u8; 40]).expect("write");
        drop(file);
        let summary = inspect(&path).expect("inspect");
        assert_eq!((summary.done.len(), summary.damaged_bytes), (2, 40));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn journals_for_another_task_or_input_count_are_refused() {
        let path = temp("refuse");
        drop(Journal::open(&path, "t::f", 10).expect("create"));
        let e = Journal::open(&path, "t::g", 10)
            .expect_err("other task")
            .to_string();
        assert!(
            e.contains("written for task `t::f` over 10 inputs, but this map runs task `t::g` over 10 inputs"),
            "{e}"
        );
        let e = Journal::open(&path, "t::f", 11)
            .expect_err("other count")
            .to_string();
        assert!(e.contains("over 11 inputs"), "{e}");
        std::fs::write(&path, b"not a journal at all").expect("write");
        let e = Journal::open(&path, "t::f", 10)
            .expect_err("garbage")
            .to_string();
        assert!(
            e.contains("it is not a pool journal (wrong magic bytes)"),
            "{e}"
        );
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn huge_declared_lengths_do_not_allocate() {
        let path = temp("huge");
        drop(Journal::open(&path, "t::f", 10).expect("create"));
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        let mut record = u32::MAX.to_le_bytes().to_vec();
        record.extend_from_slice(&1u64.to_le_bytes());
        record.extend_from_slice(&[0u8; 8]);
        file.write_all(&record).expect("write");
        drop(file);
        let summary = inspect(&path).expect("inspect");
        assert_eq!((summary.done.len(), summary.damaged_bytes), (0, 20));
        std::fs::remove_file(&path).ok();
    }
}
