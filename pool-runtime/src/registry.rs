//! The task registry: every `#[pool_task]` submits a [`TaskEntry`] with `inventory`.
//!
//! Every rank runs the same binary, so every rank builds the same registry. A task's id is a
//! stable hash of its fully qualified name; the registry's fingerprint is a hash of all names,
//! compared between the master and each worker at start-up.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::TaskFailure;
use crate::task::task_id;

/// The type-erased entry point of one task: decode the arguments from `input`, run the task,
/// append the encoded result to `output`.
pub(crate) type InvokeFn = fn(input: &[u8], output: &mut Vec<u8>) -> Result<(), TaskFailure>;

/// One registered task, as submitted by `#[pool_task]`.
#[derive(Debug)]
pub struct TaskEntry {
    name: &'static str,
    invoke: InvokeFn,
}

impl TaskEntry {
    /// Creates an entry; used by the code `#[pool_task]` generates.
    pub const fn new(name: &'static str, invoke: InvokeFn) -> Self {
        TaskEntry { name, invoke }
    }

    /// The task's fully qualified name, `module::path::function` by default.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn invoke(&self, input: &[u8], output: &mut Vec<u8>) -> Result<(), TaskFailure> {
        (self.invoke)(input, output)
    }
}

inventory::collect!(TaskEntry);

/// Task ids are hashes of the names already: the map uses them as they are instead of
/// hashing them again (a worker looks one up for every frame).
#[derive(Clone, Copy, Debug, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b) ^ (self.0 >> 56);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }
}

impl std::hash::BuildHasher for IdHasher {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// All tasks linked into this binary.
#[derive(Debug)]
pub(crate) struct Registry {
    by_id: HashMap<u64, &'static TaskEntry, IdHasher>,
    /// Sorted names of all entries, duplicates included.
    names: Vec<&'static str>,
    /// Names submitted more than once, or whose ids collide.
    duplicates: Vec<String>,
    fingerprint: u64,
}

impl Registry {
    fn build<'a>(entries: impl IntoIterator<Item = &'static TaskEntry> + 'a) -> Registry {
        let mut by_id: HashMap<u64, &'static TaskEntry, IdHasher> = HashMap::default();
        let mut names = Vec::new();
        let mut duplicates = Vec::new();
        for entry in entries {
            names.push(entry.name);
            if let Some(previous) = by_id.insert(task_id(entry.name), entry) {
                duplicates.push(if previous.name == entry.name {
                    entry.name.to_owned()
                } else {
                    format!("{} and {} (same id)", previous.name, entry.name)
                });
            }
        }
        names.sort_unstable();
        duplicates.sort();
        duplicates.dedup();
        let fingerprint = task_id(&names.join("\n"));
        Registry {
            by_id,
            names,
            duplicates,
            fingerprint,
        }
    }

    /// The registry of this process, built on first use.
    pub(crate) fn global() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| Registry::build(inventory::iter::<TaskEntry>))
    }

    pub(crate) fn get(&self, id: u64) -> Option<&'static TaskEntry> {
        self.by_id.get(&id).copied()
    }

    pub(crate) fn names(&self) -> &[&'static str] {
        &self.names
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Names that more than one `#[pool_task]` claims; empty when all is well.
    pub(crate) fn duplicates(&self) -> &[String] {
        &self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing(_: &[u8], _: &mut Vec<u8>) -> Result<(), TaskFailure> {
        Ok(())
    }

    static A: TaskEntry = TaskEntry::new("m::a", nothing);
    static B: TaskEntry = TaskEntry::new("m::b", nothing);
    static A2: TaskEntry = TaskEntry::new("m::a", nothing);

    #[test]
    fn ids_are_stable() {
        // FNV-1a test vectors: these values must never change, ids cross process boundaries.
        assert_eq!(task_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(task_id("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(task_id("m::a"), task_id("m::b"));
    }

    #[test]
    fn lookup_fingerprint_and_duplicates() {
        let r = Registry::build([&B, &A]);
        assert_eq!(r.names(), ["m::a", "m::b"]);
        assert_eq!(r.get(task_id("m::a")).unwrap().name(), "m::a");
        assert!(r.get(task_id("m::c")).is_none());
        assert!(r.duplicates().is_empty());
        // Order of submission does not matter; content does.
        assert_eq!(r.fingerprint(), Registry::build([&A, &B]).fingerprint());
        assert_ne!(r.fingerprint(), Registry::build([&A]).fingerprint());

        let dup = Registry::build([&A, &B, &A2]);
        assert_eq!(dup.duplicates(), ["m::a"]);
    }
}
