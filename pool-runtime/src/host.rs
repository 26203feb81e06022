//! This host's name, as MPI reports it: asked once, after `MPI_Init`, on the main thread.

use std::sync::OnceLock;

static HOST: OnceLock<String> = OnceLock::new();

/// This host's name, if [`host_name`] has been asked already.
pub(crate) fn known_host_name() -> Option<&'static str> {
    HOST.get().map(String::as_str)
}

/// The name of this host as MPI reports it; asked once, on the main thread, after MPI_Init.
pub(crate) fn host_name() -> String {
    HOST.get_or_init(|| {
        mpi::environment::processor_name().unwrap_or_else(|_| "unknown-host".to_owned())
    })
    .clone()
}
