//! What a task is: the [`Task`] trait that `#[pool_task]` implements, and the generic code
//! that runs one task from bytes to bytes on a worker.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt::Display;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::TaskFailure;

/// A function that the pool can run on another process.
///
/// `#[pool_task]` implements it for a unit struct named like the function; you never need to
/// implement it by hand. `Args` is what one call takes (one argument as itself, several as a
/// tuple, none as `()`), `Output` what it gives back (the `T` of a `Result<T, E>` return).
///
/// # Equivalent code without the macro
///
/// ```
/// use pool_runtime::__private::{self, TaskEntry, TaskFailure};
///
/// fn double(x: u64) -> u64 {
///     x * 2
/// }
///
/// #[derive(Clone, Copy)]
/// struct Double;
///
/// impl pool_runtime::Task for Double {
///     type Args = u64;
///     type Output = u64;
///     const NAME: &'static str = "my_crate::double";
/// }
///
/// fn invoke(input: &[u8], output: &mut Vec<u8>) -> Result<(), TaskFailure> {
///     __private::invoke_task::<Double>(input, output, |x| Ok(double(x)))
/// }
///
/// __private::inventory::submit! { TaskEntry::new("my_crate::double", invoke) }
///
/// // Now `pool.map(Double, 0..10)` runs `double` on the workers.
/// # let _ = Double;
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a pool task",
    label = "not a pool task",
    note = "put `#[pool_task]` on the function you want the pool to run, and fix any error it reports"
)]
pub trait Task: Copy + Send + Sync + 'static {
    /// The arguments of one call: one argument as itself, several as a tuple, none as `()`.
    type Args: Serialize + DeserializeOwned + 'static;
    /// The value one call returns (for a `Result<T, E>` return, `T`).
    type Output: Serialize + DeserializeOwned + 'static;
    /// The task's unique name: `module::path::function` unless `#[pool_task(name = "...")]`.
    const NAME: &'static str;
    /// The task's id on the wire: a stable hash of [`Task::NAME`].
    const ID: u64 = task_id(Self::NAME);
}

/// The stable 64-bit id of a task name (FNV-1a), the same on every rank and every build.
pub(crate) const fn task_id(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The return types that mean "this can fail": `Result<T, E>` with `E: Display`.
///
/// `#[pool_task]` treats a return type spelled `Result<..>` (any path ending in `Result`,
/// such as `io::Result<T>` or `anyhow::Result<T>`) as fallible: `Err(e)` becomes a
/// [`TaskError`](crate::TaskError) whose message is the whole chain of causes, as anyhow's
/// `{:#}` shows it: `e` formatted with `{:#}` (an `anyhow::Error` then lists its contexts
/// and causes), followed by the [`source()`](std::error::Error::source) of each cause when
/// `E` is a `std::error::Error` (or a `Box<dyn Error>`), each one left out when the text
/// so far already contains it. A task that fails reading a file with
/// `.with_context(|| format!("reading {path}"))` reports
/// `reading data/nope.csv: No such file or directory (os error 2)`.
#[diagnostic::on_unimplemented(
    message = "a `#[pool_task]` returning `{Self}` must return `Result<T, E>` with `E: Display`",
    note = "the task's error is sent to the master as text, so its type must implement `Display`"
)]
pub trait TaskResult {
    /// The success type.
    type Ok;
    /// Turns `Err(e)` into its message, `format!("{e:#}")`. (The code `#[pool_task]`
    /// generates also appends the `source()` chain, which needs the concrete error type.)
    fn into_task_result(self) -> Result<Self::Ok, String>;
}

impl<T, E: Display> TaskResult for Result<T, E> {
    type Ok = T;
    fn into_task_result(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:#}"))
    }
}

/// The messages of a chain of causes: `first` (an error's `source()`), its source, and so on.
pub(crate) fn causes(first: Option<&(dyn Error + 'static)>) -> Vec<String> {
    let mut messages = Vec::new();
    let mut next = first;
    while let Some(cause) = next {
        messages.push(cause.to_string());
        next = cause.source();
    }
    messages
}

/// `message`, then every cause the text so far does not already contain (an error that
/// prints its source itself, as `#[error("reading {path}: {0}")]` does, is not repeated),
/// joined with `": "`, as anyhow's `{:#}` joins them.
pub(crate) fn with_causes(mut message: String, causes: Vec<String>) -> String {
    for cause in causes {
        if !cause.is_empty() && !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

/// The `Err` of a task's return value, looked at for its causes (see [`CauseChain`]).
///
/// Used by generated code as `(&&Causes(&value)).causes()`: method resolution picks the
/// most specific impl of [`CauseChain`] that applies to the concrete type, which only the
/// task's own code knows (autoref specialization).
#[derive(Debug)]
pub struct Causes<'a, R>(pub &'a R);

/// The causes of a task's error, when its type can say them: a `std::error::Error` or a
/// `Box<dyn Error>` walks its `source()` chain; any other `Display` type has none to give
/// (an `anyhow::Error` shows its chain with `{:#}` already).
pub trait CauseChain {
    /// The messages of the causes below the error itself; empty for `Ok`.
    fn causes(&self) -> Vec<String>;
}

// Most specific (found first, for the receiver `&&Causes`): a boxed error, which is not
// itself an `Error`.
impl<T, E: Error + ?Sized> CauseChain for &Causes<'_, Result<T, Box<E>>> {
    fn causes(&self) -> Vec<String> {
        match self.0 {
            Err(e) => causes((**e).source()),
            Ok(_) => Vec::new(),
        }
    }
}

// Then any `std::error::Error`.
impl<T, E: Error> CauseChain for &&Causes<'_, Result<T, E>> {
    fn causes(&self) -> Vec<String> {
        match self.0 {
            Err(e) => causes(e.source()),
            Ok(_) => Vec::new(),
        }
    }
}

// Last, everything else: no causes to add.
impl<R> CauseChain for Causes<'_, R> {
    fn causes(&self) -> Vec<String> {
        Vec::new()
    }
}

thread_local! {
    /// True while this thread runs a task (on a worker).
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// True while the calling thread runs a pool task.
pub(crate) fn in_task() -> bool {
    IN_TASK.with(Cell::get)
}

/// Installs (once) a panic hook that records the message of a panic inside a task instead of
/// printing it: the master reports it, with the item index, rank and host. Every other panic
/// goes to the hook that was installed before.
///
/// With it goes a check at process exit: a task that calls `exit` (`std::process::exit`, or a
/// library's `exit(3)`) would otherwise end the run quietly with the task's status, 0 perhaps,
/// and the results not yet returned lost. The check says what happened and exits with status
/// 1 instead.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `exit_in_task` is an `extern "C" fn()` that lives as long as the program.
        unsafe {
            libc::atexit(exit_in_task);
        }
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_TASK.with(Cell::get) {
                let message = payload_message(info.payload());
                let text = match info.location() {
                    Some(l) => format!("{message} at {}:{}:{}", l.file(), l.line(), l.column()),
                    None => message,
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// The exit status of a process whose task called `exit`.
const EXIT_IN_TASK_STATUS: i32 = 1;

/// Runs at process exit (see [`install_panic_hook`]): on a thread that is running a task,
/// reports it and ends the process with status 1 at once.
extern "C" fn exit_in_task() {
    if IN_TASK.try_with(Cell::get).unwrap_or(false) {
        crate::signals::report_exit_in_task();
        // SAFETY: _exit(2) ends the process without running further exit handlers.
        unsafe { libc::_exit(EXIT_IN_TASK_STATUS) };
    }
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// Runs `f` with panics caught and turned into [`TaskFailure::Panicked`].
/// Nests: an inner call (a worker state's `init` inside a task) leaves the flag as it was.
pub(crate) fn catch_task_panic<T>(
    f: impl FnOnce() -> Result<T, TaskFailure>,
) -> Result<T, TaskFailure> {
    let was = IN_TASK.with(|t| t.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    IN_TASK.with(|t| t.set(was));
    result.unwrap_or_else(|payload| {
        let message = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| payload_message(&*payload));
        // Drop the payload outside the task flag: a panicking `Drop` is not the task's.
        drop(payload);
        Err(TaskFailure::Panicked(message))
    })
}

/// Runs one task from bytes to bytes: decode `A`, call `f`, encode the value into `output`.
///
/// Used by the code `#[pool_task]` generates; `f` is a non-capturing closure that calls the
/// user's function. A panic anywhere in decode, call or encode becomes
/// [`TaskFailure::Panicked`]; `output` then holds only what it held before.
pub(crate) fn invoke<A, O>(
    input: &[u8],
    output: &mut Vec<u8>,
    f: fn(A) -> Result<O, String>,
) -> Result<(), TaskFailure>
where
    A: DeserializeOwned + 'static,
    O: Serialize + 'static,
{
    let start = output.len();
    let result = catch_task_panic(|| {
        let args = codec::decode_input::<A>(input).map_err(|e| {
            let e = crate::shared::explain(e);
            TaskFailure::BadInput(format!("cannot decode the arguments: {e}"))
        })?;
        let value = f(args).map_err(TaskFailure::Failed)?;
        codec::encode_owned(value, output)
            .map_err(|e| TaskFailure::BadOutput(format!("cannot encode the result: {e}")))
    });
    if result.is_err() {
        output.truncate(start);
        crate::gather::truncate(start);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<T: Serialize>(v: &T) -> Vec<u8> {
        let mut b = Vec::new();
        codec::encode_into(v, &mut b).unwrap();
        b
    }

    #[test]
    fn ok_failed_panicked_bad_input() {
        install_panic_hook();
        let mut out = vec![9];
        invoke::<(u32, u32), u32>(&enc(&(2u32, 3u32)), &mut out, |(a, b)| Ok(a + b)).unwrap();
        assert_eq!(out, [9, 5]);

        let err = invoke::<u32, u32>(&enc(&1u32), &mut out, |_| Err("nope".into()));
        assert_eq!(err, Err(TaskFailure::Failed("nope".into())));

        let err = invoke::<u32, u32>(&enc(&1u32), &mut out, |x| panic!("boom {x}"));
        match err {
            Err(TaskFailure::Panicked(m)) => {
                assert!(m.starts_with("boom 1 at "), "{m}");
                assert!(m.contains("task.rs"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(out, [9, 5], "failures leave the output as it was");

        let err = invoke::<String, u32>(&[0xff, 0xff], &mut out, |_| Ok(1)).unwrap_err();
        assert!(matches!(err, TaskFailure::BadInput(_)));
        assert!(err.message().starts_with("cannot decode the arguments: "));
    }

    /// An error with a cause, as `thiserror`'s `#[source]` makes them.
    #[derive(Debug)]
    struct Reading {
        path: &'static str,
        source: std::io::Error,
        /// Prints its source itself, as `#[error("reading {path}: {source}")]` would.
        says_source: bool,
    }

    impl Display for Reading {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "reading {}", self.path)?;
            if self.says_source {
                write!(f, ": {}", self.source)?;
            }
            Ok(())
        }
    }

    impl Error for Reading {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.source)
        }
    }

    fn not_found() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::ENOENT)
    }

    #[test]
    // Autoref specialization: the borrows choose the impl, as in the generated code.
    #[allow(clippy::needless_borrow)]
    fn messages_keep_the_chain_of_causes() {
        let wrapped = |says_source| Reading {
            path: "data/nope.csv",
            source: not_found(),
            says_source,
        };
        let expected = "reading data/nope.csv: No such file or directory (os error 2)";
        // A std error: its source() chain, once.
        let r: Result<(), Reading> = Err(wrapped(false));
        assert_eq!(
            (&&Causes(&r)).causes(),
            ["No such file or directory (os error 2)"]
        );
        assert_eq!(
            crate::__private::into_task_result::<Result<(), Reading>>(r, vec!["x".into()]),
            Err("reading data/nope.csv: x".into())
        );
        // Not repeated when the message says it already.
        let r: Result<(), Reading> = Err(wrapped(true));
        let causes = (&&Causes(&r)).causes();
        assert_eq!(
            r.into_task_result().map_err(|m| with_causes(m, causes)),
            Err(expected.into())
        );
        // Boxed, which is not itself an `Error`.
        let r: Result<(), Box<dyn Error + Send + Sync>> = Err(Box::new(wrapped(false)));
        assert_eq!(
            (&&Causes(&r)).causes(),
            ["No such file or directory (os error 2)"]
        );
        // Display only: nothing to add, and `{:#}` is used.
        struct Alternate;
        impl Display for Alternate {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(if f.alternate() {
                    "outer: inner"
                } else {
                    "outer"
                })
            }
        }
        let r: Result<(), Alternate> = Err(Alternate);
        assert!((&&Causes(&r)).causes().is_empty());
        assert_eq!(r.into_task_result().err().unwrap(), "outer: inner");
        let ok: Result<(), Reading> = Ok(());
        assert!((&&Causes(&ok)).causes().is_empty());
        assert_eq!(
            with_causes("a: b".into(), vec!["b".into(), "c".into()]),
            "a: b: c"
        );
    }

    #[test]
    fn result_conversion() {
        let r: Result<u8, std::fmt::Error> = Err(std::fmt::Error);
        assert_eq!(
            r.into_task_result(),
            Err("an error occurred when formatting an argument".into())
        );
    }
}
