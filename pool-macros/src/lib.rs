//! Procedural macros for [pool-runtime](https://docs.rs/pool-runtime): `#[pool_task]` and
//! `#[pool_main]`. Depend on `pool-runtime`, which re-exports them; this crate only names
//! things, the runtime does the work.
//!
//! Each macro has one line here; parsing is in `args.rs`, expansion in `task.rs` and `entry.rs`.

mod args;
mod entry;
#[cfg(test)]
mod snapshots;
mod task;
mod valid;

use proc_macro::TokenStream;

/// Makes a function a pool task: callable as before, and runnable on the pool with
/// `pool.map(f, inputs)`, `pool.map_unordered(f, inputs)` or `pool.submit(f, args)`.
///
/// Arguments must be owned `Serialize + Deserialize` types; several arguments travel as a
/// tuple. The function returns `T` or `Result<T, E>` with `E: Display`.
///
/// Options: `#[pool_task(name = "stable::name")]` sets the name the task is registered under
/// (default `module::path::function`); `#[pool_task(crate = "::my::pool_runtime")]` names the
/// runtime crate when it is renamed.
///
/// The function becomes a unit struct of the same name that implements
/// `pool_runtime::Task` and derefs to the function, so `f(x)` still calls it; pass `*f` where a
/// plain `fn` value is needed (for example `iter.map(*f)`).
#[proc_macro_attribute]
pub fn pool_task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}

/// Makes `fn main(pool: &mut Pool)` the program's entry point: MPI start-up, the worker loop
/// on ranks other than 0, and shutdown with the same exit status on every rank.
///
/// The function returns `()` or `Result<(), E>` with `E: Debug`. Options:
/// `#[pool_main(workers = 4)]` makes the program, started as a single process, spawn 4 worker
/// processes (`MPI_Comm_spawn`; the `POOL_WORKERS` environment variable, when set, wins);
/// `#[pool_main(crate = "::my::pool_runtime")]` names the runtime crate when it is renamed.
#[proc_macro_attribute]
pub fn pool_main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(args.into(), item.into()).into()
}
