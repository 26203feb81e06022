//! Signals: the master drains and stops cleanly on SIGINT/SIGTERM, workers finish the chunk in
//! hand, and a worker killed by a fatal signal says which task it was running.
//!
//! **Master.** Launchers end a job with SIGTERM (Slurm at the time limit or on `scancel`,
//! `mpirun` on Ctrl-C or when a rank died). While the master is inside a pool call, the handler
//! only records the signal; the pool's next wait (at most a nap later) notices it and the master
//! *drains* (`Master::interrupted`, `master/drain.rs`): it sends no further chunk, and when a
//! call with a journal has chunks in flight, it waits up to the drain grace ([`drain_grace`]:
//! `POOL_DRAIN_GRACE`, `Launch::drain_grace`, 5 s by default) for them, journaling each result
//! that arrives. Then it writes how many results arrived during the drain and which tasks were
//! still in flight on which rank, syncs the journals, and ends the whole job with exit status
//! 128 + the signal number. Without a journal nothing that arrives could be kept, so there is
//! no drain.
//!
//! A repeated SIGTERM does not cut the drain short: under Slurm, at the time limit, the ranks
//! get SIGTERM twice 10-30 ms apart (measured). A second SIGINT does (Ctrl-C twice at a
//! terminal: the user does not want to wait). Outside a pool call (the user's own code runs),
//! the signal's default action ends the process at once, as it does once the master has
//! written its report.
//!
//! The default grace, 5 s, is shorter than the time Slurm gives between its SIGTERM and its
//! SIGKILL (`KillWait`: 30 s by default, 10 s on many sites and on the test cluster), so the
//! report and the journal sync come first. Open MPI's `mpirun` forwards SIGTERM (or Ctrl-C)
//! to its ranks about a second after it got it and sends SIGKILL about a second later
//! (measured with Open MPI 4.1): a drain there keeps only what arrives within that second.
//! MPICH's `mpiexec` forwards SIGTERM at once and never sends SIGKILL.
//!
//! **Workers.** A worker process takes SIGINT and SIGTERM (which launchers send to every rank
//! at once) as a note, not as an order: it finishes the chunks it holds and sends their results,
//! since the master may still journal them; the master ends the job when its drain is over. A
//! second SIGINT ends it at once. In case nothing ever ends the job (a launcher that forwards
//! SIGTERM but never kills, and a master already gone), a worker ends itself, with a line that
//! says why and status 128 + the signal, [`drain::WORKER_MARGIN`] after the drain grace
//! (`alarm(2)`). Worker threads of one process take no signals: the master's thread does.
//!
//! A task that crashes the process (SIGSEGV, SIGBUS, SIGILL, SIGFPE, or SIGABRT from `abort`)
//! cannot be caught like a panic; the handler writes one line naming the rank, host, task and
//! item, then hands the signal to the handler it replaced (Open MPI's backtrace, Rust's
//! stack-overflow report) or to the default action. SIGKILL cannot be handled: the master's
//! report of what each rank held covers it.
//!
//! Everything a handler does is async-signal-safe: atomics, `write(2)`, `sigaction(2)`,
//! `alarm(2)`, `raise(3)`, `_exit(2)`; messages are formatted into a stack buffer.

use std::mem::MaybeUninit;
use std::os::raw::c_int;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};

mod drain;

pub(crate) use drain::{drain_grace, set_drain_grace};

/// The signal that interrupted the master, or 0.
static PENDING: AtomicI32 = AtomicI32::new(0);
/// True while the master is inside a pool call, where a pending signal is noticed promptly.
static IN_POOL: AtomicBool = AtomicBool::new(false);
/// True once the master has reported why it ends the job: a signal then ends it quietly.
static ENDING: AtomicBool = AtomicBool::new(false);
/// The master has written its report and is ending the job: a SIGINT/SIGTERM from now on
/// (the launcher's answer to `MPI_Abort`) ends the process without a second report.
pub(crate) fn ending() {
    ENDING.store(true, SeqCst);
}

/// The signal waiting to be handled by the master, if any.
pub(crate) fn pending() -> Option<i32> {
    match PENDING.load(Relaxed) {
        0 => None,
        sig => Some(sig),
    }
}

/// Marks the master as inside a pool call until the returned guard is dropped.
///
/// Only the master's thread writes the flag, and its handler runs on that thread: a plain
/// load and store (no locked read-modify-write, which costs as much as a whole small task
/// when it is taken for every result read) are enough; the compiler fences keep them in
/// program order with respect to the handler.
#[inline]
pub(crate) fn enter_pool() -> InPool {
    let was = IN_POOL.load(Relaxed);
    IN_POOL.store(true, Relaxed);
    std::sync::atomic::compiler_fence(SeqCst);
    InPool { was }
}

/// Restores the previous "inside a pool call" state on drop.
#[derive(Debug)]
pub(crate) struct InPool {
    was: bool,
}

impl Drop for InPool {
    #[inline]
    fn drop(&mut self) {
        std::sync::atomic::compiler_fence(SeqCst);
        IN_POOL.store(self.was, Relaxed);
    }
}

/// The conventional name of a signal, for messages.
pub(crate) fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        _ => "a signal",
    }
}

/// Blocks (`block = true`) or unblocks SIGINT and SIGTERM in the calling thread; threads it
/// starts inherit the mask.
///
/// `run` blocks them around the user's setup function and `MPI_Init`, so the threads these
/// start never take these signals and they reach the main thread: a signal taken by another
/// thread would not wake the main thread's nap, and launchers send SIGKILL milliseconds after
/// SIGTERM.
pub(crate) fn mask_interrupts(block: bool) {
    let how = if block {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: a valid signal set; pthread_sigmask only changes this thread's mask.
    unsafe {
        libc::pthread_sigmask(how, &interrupts(), std::ptr::null_mut());
    }
}

/// The set of SIGINT and SIGTERM.
fn interrupts() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage, which sigemptyset initializes.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Runs `f` with SIGINT and SIGTERM blocked in this thread, then restores the thread's mask
/// as it was: the threads `f` starts never take these signals.
pub(crate) fn with_interrupts_blocked<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: a valid signal set, and storage for the old mask, which pthread_sigmask fills;
    // it only changes this thread's mask.
    let old = unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &interrupts(), &mut old);
        old
    };
    let result = f();
    // SAFETY: the mask read above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    result
}

/// Installs the master's SIGINT and SIGTERM handlers.
pub(crate) fn install_master() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_interrupt` is async-signal-safe (see there).
        unsafe { handle(sig, on_interrupt) };
    }
}

extern "C" fn on_interrupt(sig: c_int) {
    if ENDING.load(SeqCst) {
        // SAFETY: as below.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return;
    }
    let first = PENDING.load(SeqCst);
    if first != 0 && sig == libc::SIGTERM {
        // Slurm sends SIGTERM twice at the time limit: the drain goes on.
        Line::new()
            .push("pool: SIGTERM again: still waiting for the tasks in flight (SIGINT ends at once)\n")
            .write_stderr();
        return;
    }
    if first != 0 || !IN_POOL.load(SeqCst) {
        let mut line = Line::new();
        line.push("pool: ").push(name(sig));
        if first != 0 {
            line.push(" again: exiting now\n");
        } else {
            line.push(" while the master runs user code (no pool call): exiting now\n");
        }
        line.write_stderr();
        // SAFETY: signal(2) and raise(3) are async-signal-safe; the default action of
        // SIGINT/SIGTERM ends the process.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return;
    }
    PENDING.store(sig, SeqCst);
    let mut line = Line::new();
    line.push("pool: interrupted by ").push(name(sig)).push(
        " (what mpirun or srun send when the job is cancelled, reaches its time limit, or a \
             rank died): no further tasks are sent\n",
    );
    // SAFETY: NOTE points to a leaked buffer of NOTE_LEN bytes, or is null; the length is
    // stored after the pointer and reset before it changes.
    unsafe {
        let note = NOTE.load(SeqCst);
        if !note.is_null() {
            line.push_raw(note, NOTE_LEN.load(SeqCst));
        }
    }
    line.write_stderr();
}

/// Text the interrupt handler writes after its headline: what the run keeps (journals).
static NOTE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static NOTE_LEN: AtomicUsize = AtomicUsize::new(0);

/// Sets the text the interrupt handler writes after its headline. The previous text is leaked
/// (a handler may be reading it); notes change only when a journal opens or closes.
pub(crate) fn set_note(note: String) {
    let note: &'static mut str = note.leak();
    NOTE_LEN.store(0, SeqCst);
    NOTE.store(note.as_mut_ptr(), SeqCst);
    NOTE_LEN.store(note.len(), SeqCst);
}

/// What a worker is running, for the message of a fatal signal.
static TASK_NAME: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static TASK_NAME_LEN: AtomicUsize = AtomicUsize::new(0);
static JOB: AtomicU32 = AtomicU32::new(0);
static FIRST: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU32 = AtomicU32::new(0);
static ITEM: AtomicU64 = AtomicU64::new(u64::MAX);
static RANK: AtomicUsize = AtomicUsize::new(0);
static HOST: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static HOST_LEN: AtomicUsize = AtomicUsize::new(0);

/// Records the chunk a worker starts: a few relaxed stores.
pub(crate) fn worker_chunk(task: &'static str, job: u32, first: u64, count: u32) {
    TASK_NAME_LEN.store(0, Relaxed);
    TASK_NAME.store(task.as_ptr().cast_mut(), Relaxed);
    TASK_NAME_LEN.store(task.len(), Relaxed);
    JOB.store(job, Relaxed);
    FIRST.store(first, Relaxed);
    COUNT.store(count, Relaxed);
}

/// Records the item a worker starts.
#[inline]
pub(crate) fn worker_item(index: u64) {
    ITEM.store(index, Relaxed);
}

/// Records that the worker runs no task (between chunks).
pub(crate) fn worker_idle() {
    ITEM.store(u64::MAX, Relaxed);
}

const FATAL: [c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
];

/// The handlers ours replaced, restored before the signal is handed on.
static mut PREVIOUS: [MaybeUninit<libc::sigaction>; FATAL.len()] =
    [const { MaybeUninit::uninit() }; FATAL.len()];

/// Installs the worker's fatal-signal handlers. `host` lives for the rest of the process.
pub(crate) fn install_worker(rank: usize, host: &'static str) {
    RANK.store(rank, Relaxed);
    HOST.store(host.as_ptr().cast_mut(), Relaxed);
    HOST_LEN.store(host.len(), Relaxed);
    for (i, &sig) in FATAL.iter().enumerate() {
        // SAFETY: called once, on the main thread, before any task runs, so nothing reads
        // PREVIOUS concurrently; `on_fatal` is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal as extern "C" fn(c_int) as libc::sighandler_t;
            // On the alternate stack Rust sets up, so a stack overflow can be reported too.
            action.sa_flags = libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let previous = (&raw mut PREVIOUS[i]).cast::<libc::sigaction>();
            libc::sigaction(sig, &action, previous);
        }
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_worker_interrupt` is async-signal-safe.
        unsafe { handle(sig, drain::on_worker_interrupt) };
    }
}

/// Installs `handler` for `sig`, restarting interrupted system calls (MPI's among them).
///
/// # Safety
///
/// `handler` must be async-signal-safe.
unsafe fn handle(sig: c_int, handler: extern "C" fn(c_int)) {
    // SAFETY: a zeroed sigaction with an empty mask is a valid value to fill in.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut());
    }
}

/// Writes why a task's process ends: `exit` was called while it ran. On a worker process
/// (one rank per worker): which rank, host, task and item; in a single process: that the run
/// ends.
pub(crate) fn report_exit_in_task() {
    let mut line = Line::new();
    if HOST.load(Relaxed).is_null() {
        line.push(
            "pool: a task called exit (std::process::exit, or a library's exit) while the \
             pool ran it: the run ends here with status 1, and the results not yet returned \
             are lost\n",
        );
    } else {
        worker_line(&mut line, "exit was called", "");
        line.push("; the process ends with status 1, and the master ends the job\n");
    }
    line.write_stderr();
}

/// `pool: rank R on HOST: WHAT DETAIL while running task `T` on item I (job J, chunk of
/// items ..)`. (Signal handlers run on a small stack: one `Line` only.)
fn worker_line(line: &mut Line, what: &str, detail: &str) {
    line.push("pool: rank ")
        .push_u64(RANK.load(Relaxed) as u64)
        .push(" on ");
    // SAFETY: HOST and TASK_NAME point into `'static` strings of the given lengths (or are
    // null); the length is stored after the pointer and reset before it changes.
    unsafe {
        line.push_raw(HOST.load(Relaxed), HOST_LEN.load(Relaxed));
    }
    line.push(": ").push(what).push(detail);
    let item = ITEM.load(Relaxed);
    if item == u64::MAX {
        line.push(" outside any task");
    } else {
        line.push(" while running task `");
        // SAFETY: as above.
        unsafe {
            line.push_raw(TASK_NAME.load(Relaxed), TASK_NAME_LEN.load(Relaxed));
        }
        let first = FIRST.load(Relaxed);
        let count = u64::from(COUNT.load(Relaxed));
        line.push("` on item ")
            .push_u64(item)
            .push(" (job ")
            .push_u64(u64::from(JOB.load(Relaxed)))
            .push(", chunk of items ")
            .push_u64(first)
            .push("..=")
            .push_u64(first + count.saturating_sub(1))
            .push(")");
    }
}

extern "C" fn on_fatal(sig: c_int) {
    let mut line = Line::new();
    worker_line(&mut line, "killed by ", name(sig));
    line.push("; the launcher will end the job\n");
    line.write_stderr();

    let index = FATAL.iter().position(|&s| s == sig).unwrap_or(0);
    // SAFETY: PREVIOUS[index] was filled by install_worker before this handler could run;
    // sigaction(2), signal(2) and raise(3) are async-signal-safe.
    unsafe {
        let previous = (&raw const PREVIOUS[index]).cast::<libc::sigaction>();
        let handler = (*previous).sa_sigaction;
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            libc::signal(sig, libc::SIG_DFL);
            // Delivered when this handler returns (the signal is blocked until then).
            libc::raise(sig);
        } else {
            // A fault re-executes the faulting instruction and reaches the previous handler;
            // abort() raises SIGABRT again itself.
            libc::sigaction(sig, previous, std::ptr::null_mut());
        }
    }
}

/// A message line built without allocating, for signal handlers.
struct Line {
    buf: [u8; 2048],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 2048],
            len: 0,
        }
    }

    fn push(&mut self, s: &str) -> &mut Line {
        self.push_bytes(s.as_bytes())
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> &mut Line {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self
    }

    /// # Safety
    ///
    /// `ptr` is null or points to `len` readable bytes.
    unsafe fn push_raw(&mut self, ptr: *const u8, len: usize) -> &mut Line {
        if ptr.is_null() {
            return self.push("?");
        }
        // SAFETY: the caller's promise.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
        self.push_bytes(bytes)
    }

    fn push_u64(&mut self, mut n: u64) -> &mut Line {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push_bytes(&digits[i..])
    }

    fn write_stderr(&self) {
        let mut done = 0;
        while done < self.len {
            // SAFETY: the pointer and length stay within `buf`.
            let n = unsafe {
                libc::write(
                    libc::STDERR_FILENO,
                    self.buf[done..].as_ptr().cast(),
                    self.len - done,
                )
            };
            if n <= 0 {
                return;
            }
            done += n as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Line;

    #[test]
    fn lines_format_without_allocating() {
        let mut line = Line::new();
        line.push("rank ")
            .push_u64(0)
            .push(" item ")
            .push_u64(u64::MAX);
        assert_eq!(&line.buf[..line.len], b"rank 0 item 18446744073709551615");
        let mut long = Line::new();
        for _ in 0..100 {
            long.push("0123456789");
        }
        for _ in 0..200 {
            long.push("0123456789");
        }
        assert_eq!(long.len, 2048);
    }
}
