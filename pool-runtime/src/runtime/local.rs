//! [`local()`]: a pool of worker threads that returns, for tests and libraries.

use super::*;

/// `threads` worker threads running the worker loop.
pub(super) fn local_link(threads: usize) -> LocalMaster {
    LocalMaster::start(threads, |link| worker::serve(link, false))
}

/// Runs `main` with a pool of `threads` worker threads in this process (0: one per core, or
/// `POOL_THREADS`), and returns what `main` returns, after the workers have stopped.
///
/// Unlike [`run`], this returns, needs no MPI, and can be called any number of times in one
/// process: in `#[test]`s, in library code that wants a pool for one call, in a program that
/// is not a pool program. Tasks run as under [`run`] in one process: each argument and
/// result makes the same serialization round trip as between MPI ranks, and a task that
/// fails or panics is a [`TaskError`](crate::TaskError), not a crash.
///
/// Under `mpirun`, every rank that calls `local` gets its own pool of threads: to test
/// code under MPI, test it through [`run`] or `#[pool_main]` in a program run under
/// `mpirun` (the README shows how).
///
/// # Panics
///
/// When `main` panics: the workers are stopped and their threads joined first, then the
/// panic goes on with its own payload, so a failed `assert!` in a `#[test]` fails that test
/// with its message (and `#[should_panic(expected = "...")]` sees it). When the pool cannot
/// start (two tasks with the same name), with that [`Error`]'s message. When called inside
/// a pool task, as [`run`].
///
/// # Examples
///
/// ```
/// use pool_runtime::prelude::*;
///
/// #[pool_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> Result<(), Error> {
/// let squares = pool_runtime::local(2, |pool: &mut Pool| pool.map(square, 0..5))?;
/// assert_eq!(squares, [0, 1, 4, 9, 16]);
/// // Again, in the same process.
/// let total: u64 = pool_runtime::local(0, |pool: &mut Pool| pool.map(square, 0..5))?
///     .into_iter()
///     .sum();
/// assert_eq!(total, 30);
/// # Ok(())
/// # }
/// ```
///
/// In a `#[test]`, the same: `local(2, |pool: &mut Pool| assert_eq!(pool.map(square,
/// [3]).unwrap(), [9]))`; a failing `assert!` fails that test with its message.
#[track_caller]
pub fn local<F, R>(threads: usize, main: F) -> R
where
    F: FnOnce(&mut Pool) -> R,
{
    refuse_inside_task("pool_runtime::local");
    install_panic_hook();
    let threads = if threads == 0 {
        env::threads()
    } else {
        threads
    };
    let _span = tracing::info_span!("pool", mode = "local", threads).entered();
    let ended = drive(Box::new(local_link(threads)), None, |pool| match pool {
        Err(e) => (1, Err(e)),
        Ok(pool) => {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| main(pool)));
            let code = if outcome.is_ok() { 0 } else { PANIC_STATUS };
            (code, Ok(outcome))
        }
    });
    match ended {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(e) => panic!("pool_runtime::local: the pool cannot start: {e}"),
    }
}
