//! Tasks defined in a library crate and used by the test binaries in `src/bin/`: a program's
//! tasks need not live in the binary.

use pool_runtime::pool_task;

/// x².
#[pool_task]
pub fn square(x: u64) -> u64 {
    x * x
}

/// a + b; several arguments travel as a tuple.
#[pool_task]
pub fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// No arguments: the process id of the worker that ran it.
#[pool_task]
pub fn worker_pid() -> u32 {
    std::process::id()
}

/// Fails on odd numbers.
#[pool_task]
pub fn even_only(x: u64) -> Result<u64, String> {
    if x % 2 == 1 {
        Err(format!("{x} is odd"))
    } else {
        Ok(x)
    }
}

/// Panics on 3.
#[pool_task]
pub fn panic_on_three(x: u64) -> u64 {
    assert_ne!(x, 3, "three is not allowed");
    x
}

/// Returns its input; for payload tests.
#[pool_task]
pub fn echo(bytes: Vec<u8>) -> Vec<u8> {
    bytes
}

/// Sleeps `ms` milliseconds and returns it.
#[pool_task]
pub fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// Kills its own process on 5, as a crashing native library would.
#[pool_task]
pub fn abort_on_five(x: u64) -> u64 {
    if x == 5 {
        std::process::abort();
    }
    std::thread::sleep(std::time::Duration::from_millis(10));
    x
}

/// Ends its own process with status 0 on 5, as a library that calls `exit` would.
#[pool_task]
pub fn exit_on_five(x: u64) -> u64 {
    if x == 5 {
        std::process::exit(0);
    }
    std::thread::sleep(std::time::Duration::from_millis(10));
    x
}

/// Crashes with a segmentation fault on 5, as a buggy native library would.
#[pool_task]
pub fn segfault_on_five(x: u64) -> u64 {
    if x == 5 {
        let null = std::hint::black_box(std::ptr::null_mut::<u64>());
        // SAFETY: none: this writes through a null pointer on purpose, to crash the process.
        unsafe { null.write_volatile(1) };
    }
    std::thread::sleep(std::time::Duration::from_millis(10));
    x
}

/// Kills its own process with SIGKILL on 5, as the out-of-memory killer would.
#[pool_task]
pub fn sigkill_on_five(x: u64) -> u64 {
    if x == 5 {
        // SAFETY: kill(2) on this process; SIGKILL ends it.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    std::thread::sleep(std::time::Duration::from_millis(10));
    x
}

/// Squares `x` after sleeping `ms` milliseconds (or `POOL_TEST_SLEEP_MS`, when set: the
/// journal tests slow a run down without changing its inputs, which a journal checks), and
/// records that it ran by appending `x` to the file `POOL_TEST_EXEC_LOG` names (if set): one
/// line per run of the task.
#[pool_task]
pub fn logged_square(x: u64, ms: u64) -> u64 {
    let ms = std::env::var("POOL_TEST_SLEEP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ms);
    if ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    if let Some(path) = std::env::var_os("POOL_TEST_EXEC_LOG") {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the execution log");
        // One write of one short line: appends from several processes do not interleave.
        log.write_all(format!("{x}\n").as_bytes())
            .expect("append to the execution log");
    }
    x * x
}

/// Records that it ran (as [`logged_square`] does), then fails on odd numbers and returns
/// even ones.
#[pool_task]
pub fn logged_even_only(x: u64) -> Result<u64, String> {
    let _ran = logged_square(x, 0);
    if x % 2 == 1 {
        Err(format!("{x} is odd"))
    } else {
        Ok(x)
    }
}

/// Fails the first time it runs on an input `x` with `x % 5 == 2`, succeeds after: it marks
/// such an input as tried by creating the file `dir/x` (atomically, so across processes).
/// (One input in five: a worker that gets only failures would look like a broken node.)
#[pool_task]
pub fn flaky_once(dir: String, x: u64) -> Result<u64, String> {
    if x % 5 != 2 {
        return Ok(x);
    }
    let mark = std::path::Path::new(&dir).join(x.to_string());
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&mark)
    {
        Ok(_) => Err(format!("{x}: a transient failure")),
        Err(_) => Ok(x),
    }
}

/// Fails on the first worker (worker thread 0 in one process, rank 1 under an MPI
/// launcher), as on a node with a broken library; returns `x` elsewhere.
#[pool_task]
pub fn broken_on_first_worker(x: u64) -> Result<u64, String> {
    let rank = ["OMPI_COMM_WORLD_RANK", "PMI_RANK"]
        .iter()
        .find_map(|v| std::env::var(v).ok());
    let first = match rank {
        Some(rank) => rank == "1",
        None => std::thread::current().name() == Some("pool-worker-0"),
    };
    if first {
        Err("the library is broken on this node".to_owned())
    } else {
        // Some work, so that the broken worker (which fails at once) gets its turns even on
        // an oversubscribed machine where the others' MPI busy-polls (MPICH).
        std::thread::sleep(std::time::Duration::from_millis(1));
        Ok(x)
    }
}

/// Where the worker that runs it is: its host name (the kernel's, as `MPI_Get_processor_name`
/// reports it on Linux) and its network namespace (`net:[inode]`), after sleeping `ms`
/// milliseconds so that every worker gets some. The test across network namespaces checks
/// that workers ran on several "hosts".
#[pool_task]
pub fn whereami(ms: u64) -> (String, String) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    here()
}

/// This process's host name and network namespace.
pub fn here() -> (String, String) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|e| format!("unknown ({e})"), |h| h.trim().to_owned());
    let netns = std::fs::read_link("/proc/self/ns/net")
        .map_or_else(|e| format!("unknown ({e})"), |p| p.display().to_string());
    (host, netns)
}
