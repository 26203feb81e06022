//! Per-worker state: [`WorkerState`], built once per worker on first use.
//!
//! A task whose first parameter is `&mut S` or `&S` (with `S: WorkerState`) gets the worker's
//! one `S`. The worker keeps its states in a thread-local map by type (one per worker
//! process; one per worker thread in a single process), builds each with
//! [`WorkerState::init`] the first time a task needs it, and drops them all when the pool
//! stops. An `init` that fails is remembered: every item of a task needing that state then
//! fails on that worker with [`TaskErrorKind::StateInit`](crate::TaskErrorKind::StateInit)
//! and `init`'s message, and `init` is not run again there.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::context::WorkerContext;
use crate::error::TaskFailure;
use crate::task::catch_task_panic;

/// State a worker builds once and keeps for every task that asks for it: an FFT plan, a
/// database connection, a GPU context, a large table read from disk.
///
/// Make it the first parameter of a task, as `&mut S` or `&S`:
///
/// ```
/// use pool_runtime::prelude::*;
///
/// struct Fft {
///     size: usize,
/// }
///
/// impl WorkerState for Fft {
///     fn init(ctx: &WorkerContext) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
///         eprintln!("planning on worker {}", ctx.worker());
///         Ok(Fft { size: 1024 })
///     }
/// }
///
/// #[pool_task]
/// fn spectrum(fft: &mut Fft, samples: Vec<f64>) -> usize {
///     samples.len().min(fft.size)
/// }
///
/// # fn main() {
/// let sizes = pool_runtime::local(2, |pool: &mut Pool| pool.map(spectrum, vec![vec![0.0; 8]; 10]));
/// assert_eq!(sizes.unwrap(), vec![8; 10]);
/// # }
/// ```
///
/// `init` runs on the worker, once per worker (once per worker thread in one process), the
/// first time one of its tasks needs the state; the value lives until the pool stops, and is
/// shared by every task that names the same type. The task's other arguments travel as
/// usual (`pool.map(spectrum, samples)`: the state is not an input).
///
/// # Errors
///
/// When `init` returns `Err` (or panics), every item that needs the state on that worker
/// fails with [`TaskErrorKind::StateInit`](crate::TaskErrorKind::StateInit) and its message;
/// `init` is not run again on that worker, and the pool goes on.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a worker state",
    label = "a task's reference parameter must be a `WorkerState`",
    note = "a pool task may take one `&mut S` or `&S` first, with `impl WorkerState for S`, built once per worker; every other argument must be an owned value"
)]
pub trait WorkerState: Sized + 'static {
    /// Builds the state on a worker; `ctx` says which worker (to pick a GPU, say).
    ///
    /// # Errors
    ///
    /// Any error: the items that needed the state fail with its message.
    fn init(ctx: &WorkerContext) -> Result<Self, Box<dyn Error + Send + Sync>>;
}

enum Slot {
    Ready(Box<dyn Any>),
    Failed(String),
}

thread_local! {
    static STATES: RefCell<HashMap<TypeId, Slot>> = RefCell::new(HashMap::new());
}

/// Drops every state of this thread (the worker loop does when the pool stops).
pub(crate) fn clear() {
    let states = STATES.with(|s| std::mem::take(&mut *s.borrow_mut()));
    drop(states);
}

/// How many states this thread holds (for tests).
#[cfg(test)]
fn held() -> usize {
    STATES.with(|s| s.borrow().len())
}

/// Runs `f` with this thread's `S`, built first if it is not there yet.
fn with_state<S: WorkerState, R>(f: impl FnOnce(&mut S) -> R) -> Result<R, TaskFailure> {
    let key = TypeId::of::<S>();
    // Taken out while `f` runs, so that the map is not borrowed during user code.
    let slot = STATES.with(|s| s.borrow_mut().remove(&key));
    let mut state: Box<dyn Any> = match slot {
        Some(Slot::Ready(state)) => state,
        Some(Slot::Failed(message)) => {
            STATES.with(|s| s.borrow_mut().insert(key, Slot::Failed(message.clone())));
            return Err(TaskFailure::StateInit(message));
        }
        None => {
            let ctx = WorkerContext::current().unwrap_or_else(fallback_context);
            let built = catch_task_panic(|| {
                S::init(&ctx).map_err(|e| TaskFailure::Failed(error_text(&*e)))
            });
            match built {
                Ok(state) => Box::new(state),
                Err(failure) => {
                    let message = format!(
                        "{}::init failed: {}",
                        std::any::type_name::<S>(),
                        failure.message()
                    );
                    STATES.with(|s| s.borrow_mut().insert(key, Slot::Failed(message.clone())));
                    return Err(TaskFailure::StateInit(message));
                }
            }
        }
    };
    let out = f(state.downcast_mut::<S>().expect("keyed by its type"));
    STATES.with(|s| s.borrow_mut().insert(key, Slot::Ready(state)));
    Ok(out)
}

/// An error's text with its chain of causes.
fn error_text(e: &(dyn Error + Send + Sync)) -> String {
    crate::task::with_causes(e.to_string(), crate::task::causes(e.source()))
}

/// Where a state is built outside a worker loop that was told its place (a simulation).
fn fallback_context() -> WorkerContext {
    WorkerContext {
        rank: 0,
        worker: 0,
        workers: 1,
        node: crate::host::host_name(),
        node_worker: 0,
        node_workers: 1,
    }
}

/// [`crate::task::invoke`] for a task whose first parameter is the worker's `S`.
pub(crate) fn invoke_with_state<S, A, O>(
    input: &[u8],
    output: &mut Vec<u8>,
    f: fn(&mut S, A) -> Result<O, String>,
) -> Result<(), TaskFailure>
where
    S: WorkerState,
    A: DeserializeOwned + 'static,
    O: Serialize + 'static,
{
    let start = output.len();
    let result = catch_task_panic(|| {
        let args = codec::decode_input::<A>(input).map_err(|e| {
            let e = crate::shared::explain(e);
            TaskFailure::BadInput(format!("cannot decode the arguments: {e}"))
        })?;
        let value = with_state::<S, _>(|state| f(state, args))?.map_err(TaskFailure::Failed)?;
        codec::encode_into(&value, output)
            .map_err(|e| TaskFailure::BadOutput(format!("cannot encode the result: {e}")))
    });
    if result.is_err() {
        output.truncate(start);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static INITS: AtomicUsize = AtomicUsize::new(0);

    struct Counter(u64);

    impl WorkerState for Counter {
        fn init(_: &WorkerContext) -> Result<Self, Box<dyn Error + Send + Sync>> {
            INITS.fetch_add(1, Ordering::SeqCst);
            Ok(Counter(0))
        }
    }

    struct Broken;

    impl WorkerState for Broken {
        fn init(_: &WorkerContext) -> Result<Self, Box<dyn Error + Send + Sync>> {
            INITS.fetch_add(100, Ordering::SeqCst);
            Err("no device".into())
        }
    }

    fn enc(v: u64) -> Vec<u8> {
        let mut b = Vec::new();
        codec::encode_into(&v, &mut b).unwrap();
        b
    }

    #[test]
    fn built_once_kept_and_failures_remembered() {
        crate::task::install_panic_hook();
        let mut out = Vec::new();
        for i in 0..5 {
            invoke_with_state::<Counter, u64, u64>(&enc(i), &mut out, |c, x| {
                c.0 += x;
                Ok(c.0)
            })
            .unwrap();
        }
        assert_eq!(INITS.load(Ordering::SeqCst), 1);
        assert_eq!(codec::decode::<u64>(&out[out.len() - 1..]).unwrap(), 10);
        for _ in 0..3 {
            let e = invoke_with_state::<Broken, u64, u64>(&enc(1), &mut out, |_, x| Ok(x));
            match e {
                Err(TaskFailure::StateInit(m)) => assert!(m.ends_with("init failed: no device")),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            INITS.load(Ordering::SeqCst),
            101,
            "a failed init is not retried"
        );
        assert_eq!(held(), 2);
        clear();
        assert_eq!(held(), 0);
    }
}
