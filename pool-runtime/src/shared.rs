//! [`Shared`]: a value sent to the workers once, named by a small id in every task.
//!
//! The master keeps the value in an `Arc`; a `Shared<T>` serializes as its id only. On a
//! worker, deserializing a `Shared<T>` looks the id up in this process's store: filled by the
//! worker loop when the master broadcasts a value (MPI), or, in one process, holding the
//! master's own `Arc` (no copy at all). A worker process decodes the broadcast bytes into a
//! `T` the first time a task needs it, and keeps that `T` for every later task.
//!
//! When the last `Shared` on the master is dropped, its id goes into the pool's free queue;
//! the master sends the ids to every worker in a FREE frame at its next step with nothing
//! cut ahead (after every chunk that may name the id), and each worker drops its copy.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec;

/// A value sent to every worker once, by [`Pool::share`](crate::Pool::share); on the wire
/// only a small id, never the value.
///
/// `Shared<T>` derefs to `T`, clones cheaply (an `Arc`), and is `Serialize` and
/// `Deserialize`, so it goes into a task's arguments like any other value. In one process
/// (threads) the workers use the master's own `Arc`: no copy is made. Under MPI every
/// worker gets the bytes once, by `MPI_Bcast` (so they leave the master O(log W) times for W
/// workers), and decodes them the first time a task needs the value.
///
/// # Examples
///
/// ```
/// use pool_runtime::prelude::*;
///
/// #[pool_task]
/// fn correct(table: Shared<Vec<f64>>, x: usize) -> f64 {
///     table[x % table.len()] * 2.0 // `table` derefs to the `Vec<f64>`
/// }
///
/// # fn main() -> Result<(), Error> {
/// let out = pool_runtime::local(2, |pool: &mut Pool| -> Result<Vec<f64>, Error> {
///     let table = pool.share(vec![1.0, 2.0, 3.0])?; // sent once
///     pool.map(correct, (0..6).map(|x| (table.clone(), x))) // an id per task
/// })?;
/// assert_eq!(out, [2.0, 4.0, 6.0, 2.0, 4.0, 6.0]);
/// # Ok(())
/// # }
/// ```
///
/// # Lifetime
///
/// The value lives on the workers until every `Shared` for it on the master is dropped;
/// then the master tells the workers at its next step (the next call of a pool method that
/// has no chunk waiting to go out), after every task that may use it was sent, and each
/// worker drops its copy. A task holding a `Shared` keeps its own copy alive until it
/// returns. A `Shared` works with the pool that made it (and its workers) only.
pub struct Shared<T> {
    id: u64,
    value: Arc<T>,
    /// On the master: tells the pool when the last handle is gone.
    _owner: Option<Arc<Owner>>,
}

impl<T> Shared<T> {
    /// A master-side handle whose last drop queues `id` on `queue`.
    pub(crate) fn owned(id: u64, value: Arc<T>, queue: Weak<FreeQueue>) -> Shared<T> {
        Shared {
            id,
            value,
            _owner: Some(Arc::new(Owner { id, queue })),
        }
    }

    /// The value's id on the wire (unique in the process that shared it).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            id: self.id,
            value: Arc::clone(&self.value),
            _owner: self._owner.clone(),
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> AsRef<T> for Shared<T> {
    fn as_ref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("id", &self.id)
            .field("value", &*self.value)
            .finish()
    }
}

impl<T> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.id)
    }
}

impl<'de, T: DeserializeOwned + Send + Sync + 'static> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = u64::deserialize(deserializer)?;
        let value = lookup::<T>(id).map_err(D::Error::custom)?;
        Ok(Shared {
            id,
            value,
            _owner: None,
        })
    }
}

/// Ids of values whose last master-side handle was dropped, for the master to free.
#[derive(Debug, Default)]
pub(crate) struct FreeQueue {
    ids: Mutex<Vec<u64>>,
    /// Set when an id is queued: the master looks at it at every step, without a lock.
    queued: AtomicBool,
}

impl FreeQueue {
    pub(crate) fn take(&self) -> Vec<u64> {
        self.queued.store(false, Ordering::Relaxed);
        std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.queued.load(Ordering::Relaxed)
    }

    fn push(&self, id: u64) {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).push(id);
        self.queued.store(true, Ordering::Relaxed);
    }
}

struct Owner {
    id: u64,
    queue: Weak<FreeQueue>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.upgrade() {
            queue.push(self.id);
        }
    }
}

/// A new id, unique in this process.
pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One value in this process's store.
struct Slot {
    value: Option<Arc<dyn Any + Send + Sync>>,
    bytes: Option<Vec<u8>>,
    /// Workers of this process that have not freed it yet.
    holders: usize,
}

fn store() -> std::sync::MutexGuard<'static, HashMap<u64, Slot>> {
    static STORE: OnceLock<Mutex<HashMap<u64, Slot>>> = OnceLock::new();
    STORE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// In one process: the master's own value, for `holders` worker threads.
pub(crate) fn insert_value(id: u64, value: Arc<dyn Any + Send + Sync>, holders: usize) {
    store().insert(
        id,
        Slot {
            value: Some(value),
            bytes: None,
            holders,
        },
    );
}

/// On a worker process: the broadcast bytes, decoded on first use.
pub(crate) fn insert_bytes(id: u64, bytes: Vec<u8>) {
    store().insert(
        id,
        Slot {
            value: None,
            bytes: Some(bytes),
            holders: 1,
        },
    );
}

/// One worker of this process is done with `id`; the last one drops it.
pub(crate) fn release(id: u64) {
    let mut store = store();
    if let Some(slot) = store.get_mut(&id) {
        slot.holders = slot.holders.saturating_sub(1);
        if slot.holders == 0 {
            store.remove(&id);
        }
    }
}

/// Drops `id` whatever holds it (a pool that stops).
pub(crate) fn remove(id: u64) {
    store().remove(&id);
}

/// True while this process's store holds `id`.
pub(crate) fn held(id: u64) -> bool {
    store().contains_key(&id)
}

thread_local! {
    /// Why the last lookup failed: the codec keeps only "Serde Deserialization Error" of a
    /// custom error, so the message waits here for [`explain`].
    static LOOKUP_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// A decoding error's text, or why a `Shared` in it could not be found, if that was it.
pub(crate) fn explain(codec_error: String) -> String {
    LOOKUP_ERROR
        .with(|e| e.borrow_mut().take())
        .unwrap_or(codec_error)
}

fn lookup<T: DeserializeOwned + Send + Sync + 'static>(id: u64) -> Result<Arc<T>, String> {
    LOOKUP_ERROR.with(|e| e.borrow_mut().take());
    let found = find::<T>(id);
    if let Err(message) = &found {
        LOOKUP_ERROR.with(|e| *e.borrow_mut() = Some(message.clone()));
    }
    found
}

fn find<T: DeserializeOwned + Send + Sync + 'static>(id: u64) -> Result<Arc<T>, String> {
    let mut store = store();
    let Some(slot) = store.get_mut(&id) else {
        return Err(format!(
            "shared value {id} is not on this worker: it was dropped on the master, or made \
             by another pool (a Shared works with the pool that made it)"
        ));
    };
    if slot.value.is_none() {
        let bytes = slot.bytes.take().unwrap_or_default();
        let value: T = codec::decode(&bytes).map_err(|e| {
            format!(
                "shared value {id} does not decode as {}: {e}",
                std::any::type_name::<T>()
            )
        })?;
        slot.value = Some(Arc::new(value));
    }
    let any = Arc::clone(slot.value.as_ref().expect("set above"));
    any.downcast::<T>().map_err(|_| {
        format!(
            "shared value {id} is not a {}: the task's parameter type differs from the shared \
             value's",
            std::any::type_name::<T>()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T, String> {
        codec::decode(bytes).map_err(explain)
    }

    #[test]
    fn an_id_on_the_wire_and_the_value_from_the_store() {
        let queue = Arc::new(FreeQueue::default());
        let id = next_id();
        let value = Arc::new(vec![1u32, 2, 3]);
        insert_value(id, value.clone(), 2);
        let shared = Shared::owned(id, value, Arc::downgrade(&queue));
        let mut bytes = Vec::new();
        codec::encode_into(&shared, &mut bytes).unwrap();
        assert!(bytes.len() <= 9, "an id, not the value");
        let back: Shared<Vec<u32>> = decode(&bytes).unwrap();
        assert_eq!(*back, [1, 2, 3]);
        assert!(
            Arc::ptr_eq(&back.value, &shared.value),
            "no copy in one process"
        );
        let wrong = decode::<Shared<String>>(&bytes).unwrap_err();
        assert!(wrong.contains("is not a"), "{wrong}");
        // Dropping every master handle queues the id once; a worker's copy does not count.
        let clone = shared.clone();
        drop(shared);
        assert!(queue.is_empty());
        drop(back);
        drop(clone);
        assert_eq!(queue.take(), [id]);
        release(id);
        assert!(held(id));
        release(id);
        assert!(!held(id));
        assert!(
            decode::<Shared<Vec<u32>>>(&bytes)
                .unwrap_err()
                .contains("not on this worker")
        );
    }

    #[test]
    fn bytes_are_decoded_once() {
        let id = next_id();
        let mut bytes = Vec::new();
        codec::encode_into(&"calibration".to_owned(), &mut bytes).unwrap();
        insert_bytes(id, bytes);
        let mut wire = Vec::new();
        codec::encode_into(&id, &mut wire).unwrap();
        let a: Shared<String> = decode(&wire).unwrap();
        let b: Shared<String> = decode(&wire).unwrap();
        assert_eq!(*a, "calibration");
        assert!(Arc::ptr_eq(&a.value, &b.value));
        remove(id);
    }
}
