//! Spawn mode: a program started as a single process starts its own worker processes with
//! `MPI_Comm_spawn` when `POOL_WORKERS=N` asks for them.
//!
//! The master spawns `N` copies of its own executable, with the same arguments, and merges
//! the intercommunicator `MPI_Comm_spawn` returns into one intracommunicator where it is
//! rank 0 and the workers are ranks `1..=N`: exactly the layout of `mpirun -n N+1`, so the
//! MPI transport, the protocol and every error message are the same in both modes. A spawned
//! process knows it is a worker because `MPI_Comm_get_parent` gives it a parent; it never
//! spawns again.
//!
//! Spawning may fail (an MPI without working singleton spawn, such as MPICH 4.0.2 here, or
//! too few slots) or hang inside MPI. Errors of `MPI_Comm_spawn` are returned, not fatal,
//! and a [`Watchdog`] ends the master with a clear error if the workers have not all said
//! HELLO within the spawn timeout ([`crate::env::spawn_timeout`]): never a hang.

use std::ffi::{CString, OsString};
use std::os::raw::{c_char, c_int};
use std::sync::mpsc;
use std::time::Duration;

use crate::env::WORKERS_VAR;
use mpi::ffi;
use mpi::raw::{AsRaw, FromRaw};
use mpi::topology::{Communicator, InterCommunicator, MergeOrder, SimpleCommunicator};

/// Open MPI's switch that lets a job start more processes than the host has cores.
const OVERSUBSCRIBE_VAR: &str = "OMPI_MCA_rmaps_base_oversubscribe";

/// Lets Open MPI start more processes than cores in spawn mode, unless the user decided
/// otherwise: someone asking for `POOL_WORKERS=8` on a 4-core laptop expects 8 workers,
/// not a refusal. (`mpirun` users choose with `--oversubscribe`; a single process has no
/// command line for it.) Open MPI reads the variable in `MPI_Init`, so this must run before.
///
/// Changing the environment is only sound while no other thread runs (one could read it at
/// the same time), so this checks that the process has a single thread (`/proc/self/status`)
/// and otherwise leaves the environment alone and says how to set the variable instead.
/// [`crate::run`] calls this first thing, before MPI starts any thread; with `#[pool_main]`
/// that is `main`'s first statement.
pub(crate) fn allow_oversubscription() {
    if std::env::var_os(OVERSUBSCRIBE_VAR).is_some() {
        return;
    }
    if threads() == Some(1) {
        // SAFETY: this process has one thread, this one, so nothing reads the environment
        // concurrently.
        unsafe { std::env::set_var(OVERSUBSCRIBE_VAR, "1") };
    } else {
        eprintln!(
            "pool: warning: spawn mode could not allow more workers than cores, because other              threads already run; set {OVERSUBSCRIBE_VAR}=1 in the environment if the workers              outnumber the cores, or call pool_runtime::run before starting threads"
        );
    }
}

/// How many threads this process has, where Linux says.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// The intercommunicator to the spawned workers and the intracommunicator merged from it
/// (master = rank 0, workers = ranks 1..=N), on which the pool runs.
pub(crate) struct Spawned {
    /// Disconnected (collectively with the workers) when dropped; drop it after `comm`.
    pub(crate) inter: InterCommunicator,
    pub(crate) comm: SimpleCommunicator,
}

/// Spawns `n` workers running this executable with this process's arguments.
///
/// Returns the reason, with what to do instead, when MPI cannot start them. When it started
/// only some of them, it prints the reason and ends the job (the started ones included).
pub(crate) fn spawn_workers(n: usize) -> Result<Spawned, String> {
    let fail = |why: String| {
        format!(
            "cannot start {n} worker process{} with MPI_Comm_spawn ({WORKERS_VAR}={n}): {why}. \
             Spawn mode needs an MPI that can spawn from a single process (Open MPI can; \
             MPICH 4.0 cannot); start the workers with mpirun instead: unset {WORKERS_VAR} and \
             run `mpirun -n {} {}`",
            if n == 1 { "" } else { "es" },
            n + 1,
            program_hint(),
        )
    };
    let exe = std::env::current_exe()
        .map_err(|e| fail(format!("cannot find this program's executable: {e}")))?;
    let program = c_string(exe.into_os_string()).map_err(&fail)?;
    let args = std::env::args_os()
        .skip(1)
        .map(c_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(&fail)?;
    let mut argv: Vec<*mut c_char> = args
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let count = c_int::try_from(n).map_err(|_| fail("too many workers".into()))?;
    let mut errcodes: Vec<c_int> = vec![0; n];
    // SAFETY: constants MPI provides.
    let (world_self, null_comm) = unsafe { (ffi::RSMPI_COMM_SELF, ffi::RSMPI_COMM_NULL) };
    let mut inter = null_comm;
    // SAFETY: MPI is initialized; `program` and the strings `argv` points into live until the
    // call returns, `argv` ends with a null pointer, and `errcodes` holds `n` ints. Errors are
    // returned on MPI_COMM_SELF (used for nothing else) instead of aborting, so a refused
    // spawn becomes a message.
    let rc = unsafe {
        ffi::MPI_Comm_set_errhandler(world_self, ffi::RSMPI_ERRORS_RETURN);
        ffi::MPI_Comm_spawn(
            program.as_ptr(),
            argv.as_mut_ptr(),
            count,
            ffi::RSMPI_INFO_NULL,
            0,
            world_self,
            &mut inter,
            errcodes.as_mut_ptr(),
        )
    };
    let success = ffi::MPI_SUCCESS as c_int;
    if rc != success {
        return Err(fail(error_string(rc)));
    }
    if inter == null_comm {
        return Err(fail("MPI returned no communicator".into()));
    }
    // SAFETY: `inter` is the live intercommunicator MPI_Comm_spawn just created; from here on
    // only the InterCommunicator uses (and finally disconnects) it.
    let inter = unsafe { InterCommunicator::from_raw(inter) };
    // From here on, MPI errors on the pool's communicators are fatal again, as under mpirun.
    // SAFETY: a live communicator and a predefined error handler.
    unsafe { ffi::MPI_Comm_set_errhandler(inter.as_raw(), ffi::RSMPI_ERRORS_ARE_FATAL) };
    if let Some(&code) = errcodes.iter().find(|&&c| c != success) {
        let failed = errcodes.iter().filter(|&&c| c != success).count();
        let why = format!("{failed} of {n} did not start: {}", error_string(code));
        // The ones that did start wait for the merge below: disconnecting from them would
        // wait forever, so the job ends here, them included.
        eprintln!("Error: {}", fail(why));
        // SAFETY: a live communicator; MPI_Abort ends every process of both groups.
        unsafe { ffi::MPI_Abort(inter.as_raw(), 1) };
        std::process::exit(1);
    }
    let comm = inter.merge(MergeOrder::Low);
    // SAFETY: a live communicator and a predefined error handler.
    unsafe { ffi::MPI_Comm_set_errhandler(comm.as_raw(), ffi::RSMPI_ERRORS_ARE_FATAL) };
    Ok(Spawned { inter, comm })
}

/// In a spawned worker: the communicator shared with the master (merged from the parent
/// intercommunicator; the master is rank 0), and the parent intercommunicator itself, to drop
/// after the worker loop and before MPI_Finalize. `None` in a process that was not spawned.
///
/// Dropping the parent disconnects it, collectively with the master (which drops its
/// [`Spawned::inter`]); after that `MPI_Comm_get_parent` returns `MPI_COMM_NULL`. It must be
/// done here, not left to rsmpi 0.8.2's `Universe` drop, which wraps the parent handle twice
/// and disconnects it twice: a segmentation fault in `ompi_dpm_disconnect` (Open MPI 4.1.4).
pub(crate) fn parent_comm(
    world: &SimpleCommunicator,
) -> Option<(SimpleCommunicator, InterCommunicator)> {
    let parent = world.parent()?;
    let comm = parent.merge(MergeOrder::High);
    Some((comm, parent))
}

fn c_string(s: OsString) -> Result<CString, String> {
    use std::os::unix::ffi::OsStringExt;
    CString::new(s.into_vec()).map_err(|_| "an argument contains a NUL byte".to_owned())
}

/// The program as the user probably started it, for the `mpirun` suggestion.
fn program_hint() -> String {
    std::env::args().next().unwrap_or_else(|| "app".to_owned())
}

/// MPI's text for an error code.
fn error_string(code: c_int) -> String {
    let mut buf = vec![0 as c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: `buf` holds MPI_MAX_ERROR_STRING characters and a terminator.
    let rc = unsafe { ffi::MPI_Error_string(code, buf.as_mut_ptr(), &mut len) };
    if rc != ffi::MPI_SUCCESS as c_int {
        return format!("MPI error {code}");
    }
    let bytes: Vec<u8> = buf[..usize::try_from(len).unwrap_or(0).min(buf.len())]
        .iter()
        .map(|&c| c as u8)
        .collect();
    format!(
        "{} (MPI error {code})",
        String::from_utf8_lossy(&bytes).trim()
    )
}

/// Ends the process with a clear error if it is not disarmed (dropped) in time: spawning
/// and the workers' HELLOs happen inside MPI, where a failure can mean waiting forever.
pub(crate) struct Watchdog {
    disarm: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the clock: after `limit`, prints `Error: {message}` and exits with status 1.
    pub(crate) fn start(limit: Duration, message: String) -> Watchdog {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("pool-spawn-watchdog".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(limit) {
                    eprintln!("Error: {message}");
                    // The main thread is stuck inside MPI: no unwinding, no atexit handlers
                    // (MPI's could wait for the same thing). The spawned processes lose their
                    // parent, and Open MPI ends them.
                    // SAFETY: _exit is always safe to call; it ends the process at once.
                    unsafe { libc::_exit(1) };
                }
            })
            .ok();
        Watchdog {
            disarm: Some(disarm),
            thread,
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.disarm.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watchdog_dropped_in_time_does_nothing() {
        let dog = Watchdog::start(Duration::from_secs(60), "never".into());
        drop(dog);
    }
}
