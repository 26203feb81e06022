//! Resuming from a journal: which inputs already have an outcome, checked against the inputs
//! as they are now.
//!
//! A journal records, with each outcome, a digest of the input's encoded arguments. When a
//! run resumes, each input the journal holds an outcome for is encoded again as the iterator
//! reaches it: same digest, the recorded outcome is handed out and the input is not sent; a
//! different digest (the sweep's parameters changed, the file name did not), the input runs
//! again. Nothing recorded for other arguments is ever returned.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

use crate::journal::{Record, Replayed};
use crate::protocol::Status;

/// What a reused journal holds for the inputs ahead, and what was found so far.
pub(super) struct Resume {
    /// Records by input index, for the inputs not reached yet.
    records: HashMap<u64, Record>,
    /// Recorded failures run again (`true`) or are handed out as they were.
    rerun_failed: bool,
    /// Outcomes checked against their inputs, to be handed out.
    pub(super) reused: VecDeque<Record>,
    /// Inputs whose record was for other arguments, or a failure run again.
    pub(super) changed: u64,
    pub(super) rerun: u64,
    pub(super) path: PathBuf,
}

/// What to do with input `index` when the iterator reaches it.
pub(super) enum Verdict {
    /// No record: send it.
    Send,
    /// Its recorded outcome stands: hand it out, send nothing.
    Reuse,
    /// It has a record, but it runs again (its arguments changed, or it failed before).
    Rerun,
}

impl Resume {
    pub(super) fn new(replayed: Replayed, rerun_failed: bool, path: PathBuf) -> Resume {
        Resume {
            records: replayed.into_iter().map(|r| (r.index, r)).collect(),
            rerun_failed,
            reused: VecDeque::new(),
            changed: 0,
            rerun: 0,
            path,
        }
    }

    /// Records for inputs not reached yet.
    pub(super) fn ahead(&self) -> u64 {
        self.records.len() as u64
    }

    /// True when the journal holds an outcome for input `index` (not reached yet).
    pub(super) fn has(&self, index: u64) -> bool {
        self.records.contains_key(&index)
    }

    /// Decides about input `index`, whose arguments encode to bytes with `digest`.
    pub(super) fn check(&mut self, index: u64, digest: u64) -> Verdict {
        let Some(record) = self.records.remove(&index) else {
            return Verdict::Send;
        };
        if record.digest != digest {
            self.changed += 1;
            return Verdict::Rerun;
        }
        if record.status != Status::Ok as u8 && self.rerun_failed {
            self.rerun += 1;
            return Verdict::Rerun;
        }
        self.reused.push_back(record);
        Verdict::Reuse
    }

    /// The warning for a run that found changed inputs, once it is over.
    pub(super) fn report(&self) {
        if self.changed > 0 {
            eprintln!(
                "pool: warning: journal {}: {} input{} changed since {} recorded (other \
                 arguments at the same position): {} again, and their old outcomes were not \
                 used",
                self.path.display(),
                self.changed,
                if self.changed == 1 { "" } else { "s" },
                if self.changed == 1 {
                    "its outcome was"
                } else {
                    "their outcomes were"
                },
                if self.changed == 1 {
                    "it ran"
                } else {
                    "they ran"
                },
            );
            tracing::warn!(
                journal = %self.path.display(),
                changed = self.changed,
                "pool: journaled inputs changed; they ran again"
            );
        }
    }
}
