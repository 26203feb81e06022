//! The benchmark of `shared/BENCH.md`: one workload through the pool or through a hand-written
//! rsmpi master-worker loop (`--system raw`, the reference), one JSON line on rank 0.
//!
//! ```text
//! mpirun -n N target/release/examples/bench --workload noop|sleep|payload --tasks T \
//!     [--system pool|raw] [--chunksize C] [--prefetch K] [--seed 12345] \
//!     [--sleep-min-ms 0] [--sleep-max-ms 20] [--payload-mib 1] [--warmup W] [--tag TEXT] \
//!     [--unordered] [--bulk] [--borrowed] [--raw-mode classic|buffer|keep]
//! ```
//!
//! `seconds` times only the map, after a warm-up of `2 * workers` tasks (or `--warmup`).
//!
//! Payload variants: by default every task gets a fresh clone of the array (an owned input
//! per task, as a program that builds its inputs has); `--borrowed` sends the one array by
//! reference every time (`pool.map(payload, inputs_of_refs)`: nothing is cloned), as
//! mpi4py's benchmark sends the same numpy array. `--system raw --raw-mode buffer` is the
//! physical reference: the master sends from its one array and receives into one reused
//! buffer, the worker receives into a reused buffer and copies it once into the reply.
//! `--raw-mode keep` is the same loop with every reply received into memory of its own and
//! kept until the run ends, as `map` keeps its results (and frees them within the timing,
//! as the pool runs do).

use std::time::{Duration, Instant};

use mpi::point_to_point::{Destination, Source};
use mpi::topology::Communicator;
use pool_runtime::prelude::*;

/// `noop`: the identity on a `u64`.
#[pool_task]
fn noop(x: u64) -> u64 {
    x
}

/// `sleep`: sleeps `micros` microseconds and returns it.
#[pool_task]
fn sleep_us(micros: u64) -> u64 {
    precise_sleep(Duration::from_micros(micros));
    micros
}

/// Sleeps until `d` has passed: the OS sleep overshoots by 50-150 µs here, which would make
/// both systems look 1-2% less efficient than they are, so the last stretch spins.
fn precise_sleep(d: Duration) {
    let deadline = Instant::now() + d;
    if let Some(coarse) = d.checked_sub(Duration::from_micros(300)) {
        std::thread::sleep(coarse);
    }
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

/// `payload`: returns its data (the worker's own copy of the caller's).
#[pool_task]
fn payload(data: Vec<f64>) -> Vec<f64> {
    data
}

/// `payload --bulk`: the same through the bulk fast path (one memcpy instead of serde's
/// element-by-element encoding).
#[pool_task]
fn payload_bulk(data: Bulk<f64>) -> Bulk<f64> {
    data
}

#[derive(Clone, Debug)]
struct Args {
    workload: String,
    tasks: usize,
    system: String,
    chunksize: Option<usize>,
    prefetch: Option<usize>,
    seed: u64,
    sleep_min_ms: f64,
    sleep_max_ms: f64,
    payload_mib: f64,
    warmup: Option<usize>,
    tag: Option<String>,
    unordered: bool,
    bulk: bool,
    borrowed: bool,
    raw_mode: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        workload: String::new(),
        tasks: 0,
        system: "pool".into(),
        chunksize: None,
        prefetch: None,
        seed: 12345,
        sleep_min_ms: 0.0,
        sleep_max_ms: 20.0,
        payload_mib: 1.0,
        warmup: None,
        tag: None,
        unordered: false,
        bulk: false,
        borrowed: false,
        raw_mode: "classic".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: cannot parse {v:?}"))
        }
        match flag.as_str() {
            "--workload" => args.workload = value()?,
            "--tasks" => args.tasks = num(&flag, value()?)?,
            "--system" => args.system = value()?,
            "--chunksize" => args.chunksize = Some(num(&flag, value()?)?),
            "--prefetch" => args.prefetch = Some(num(&flag, value()?)?),
            "--seed" => args.seed = num(&flag, value()?)?,
            "--sleep-min-ms" => args.sleep_min_ms = num(&flag, value()?)?,
            "--sleep-max-ms" => args.sleep_max_ms = num(&flag, value()?)?,
            "--payload-mib" => args.payload_mib = num(&flag, value()?)?,
            "--warmup" => args.warmup = Some(num(&flag, value()?)?),
            "--tag" => args.tag = Some(value()?),
            // Pool only: stream results with map_unordered instead of collecting with map.
            "--unordered" => args.unordered = true,
            // Pool only: send payloads as `Bulk<f64>` instead of `Vec<f64>`.
            "--bulk" => args.bulk = true,
            // Pool, payload only: send the one array by reference every time.
            "--borrowed" => args.borrowed = true,
            // Raw only: `buffer` sends from one array and receives into reused buffers.
            "--raw-mode" => args.raw_mode = value()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !["noop", "sleep", "payload"].contains(&args.workload.as_str()) {
        return Err("--workload must be noop, sleep or payload".into());
    }
    if !["pool", "raw"].contains(&args.system.as_str()) {
        return Err("--system must be pool or raw".into());
    }
    if !["classic", "buffer", "keep"].contains(&args.raw_mode.as_str()) {
        return Err("--raw-mode must be classic, buffer or keep".into());
    }
    if args.tasks == 0 {
        return Err("--tasks must be at least 1".into());
    }
    Ok(args)
}

/// Task durations for `sleep`, in microseconds: uniform in [min, max] ms from the seed.
fn sleep_durations(args: &Args, count: usize, salt: u64) -> Vec<u64> {
    let mut state = args.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let u = (z ^ (z >> 31)) as f64 / u64::MAX as f64;
            let ms = args.sleep_min_ms + u * (args.sleep_max_ms - args.sleep_min_ms);
            (ms * 1000.0).round() as u64
        })
        .collect()
}

fn payload_data(args: &Args) -> Vec<f64> {
    let len = ((args.payload_mib * 1024.0 * 1024.0) / 8.0)
        .round()
        .max(1.0) as usize;
    (0..len).map(|i| i as f64).collect()
}

/// CPU time this process has used (user + system).
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Peak resident memory of this process (`VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib * 1024.0 / 1e6)
}

/// What one timed run measured.
struct Measured {
    seconds: f64,
    master_cpu_s: f64,
    error: Option<String>,
    sleep_sum_us: u64,
    sleep_max_us: u64,
}

impl Measured {
    /// A run with no sleep figures.
    fn timed(seconds: f64, master_cpu_s: f64, error: Option<String>) -> Self {
        Measured {
            seconds,
            master_cpu_s,
            error,
            sleep_sum_us: 0,
            sleep_max_us: 0,
        }
    }
}

fn time<F: FnOnce() -> Option<String>>(f: F) -> (f64, f64, Option<String>) {
    let cpu = cpu_time();
    let start = Instant::now();
    let error = f();
    let seconds = start.elapsed().as_secs_f64();
    (seconds, (cpu_time() - cpu).as_secs_f64(), error)
}

fn check_payload<V: AsRef<[f64]>>(out: &[V], expected_len: usize) -> Option<String> {
    out.iter().enumerate().find_map(|(i, v)| {
        let v = v.as_ref();
        let last_ok = v.last().copied() == Some((expected_len - 1) as f64);
        (v.len() != expected_len || !last_ok).then(|| {
            format!(
                "payload {i}: length {} (expected {expected_len}) or last element wrong",
                v.len()
            )
        })
    })
}

fn run_pool(pool: &Pool, args: &Args) -> Measured {
    let mut options = Options::new();
    if let Some(c) = args.chunksize {
        options = options.chunksize(c);
    }
    if let Some(k) = args.prefetch {
        options = options.prefetch(k);
    }
    let warmup = args.warmup.unwrap_or(2 * pool.workers());
    let tasks = args.tasks;
    let mut sleep_sum_us = 0;
    let mut sleep_max_us = 0;
    let (seconds, master_cpu_s, error) = match args.workload.as_str() {
        "noop" if args.unordered => {
            let _ = pool.map_with(noop, 0..warmup as u64, options.clone());
            time(|| {
                let n = tasks as u64;
                let mut sum = 0;
                for (_, r) in pool
                    .map_unordered_with(noop, 0..n, options.clone())
                    .expect("no journal: nothing to open")
                {
                    match r {
                        Ok(v) => sum += v,
                        Err(e) => return Some(e.to_string()),
                    }
                }
                (sum != n * (n - 1) / 2).then(|| format!("noop sum {sum}"))
            })
        }
        "noop" => {
            let _ = pool.map_with(noop, 0..warmup as u64, options.clone());
            time(
                || match pool.map_with(noop, 0..tasks as u64, options.clone()) {
                    Ok(out) => {
                        let sum: u64 = out.iter().sum();
                        let n = tasks as u64;
                        (sum != n * (n - 1) / 2).then(|| format!("noop sum {sum}"))
                    }
                    Err(e) => Some(e.to_string()),
                },
            )
        }
        "sleep" => {
            let _ = pool.map_with(sleep_us, sleep_durations(args, warmup, 1), options.clone());
            let durations = sleep_durations(args, tasks, 0);
            sleep_sum_us = durations.iter().sum();
            sleep_max_us = durations.iter().copied().max().unwrap_or(0);
            time(
                || match pool.map_with(sleep_us, durations, options.clone()) {
                    Ok(out) => {
                        let sum: u64 = out.iter().sum();
                        (sum != sleep_sum_us).then(|| format!("sleep sum {sum} != {sleep_sum_us}"))
                    }
                    Err(e) => Some(e.to_string()),
                },
            )
        }
        _ if args.bulk => {
            let data = Bulk(payload_data(args));
            let len = data.len();
            let _ = pool.map_with(
                payload_bulk,
                (0..warmup).map(|_| data.clone()),
                options.clone(),
            );
            time(|| {
                match pool.map_with(
                    payload_bulk,
                    (0..tasks).map(|_| data.clone()),
                    options.clone(),
                ) {
                    Ok(out) => {
                        let out: Vec<Vec<f64>> = out.into_iter().map(Bulk::into_inner).collect();
                        check_payload(&out, len)
                    }
                    Err(e) => Some(e.to_string()),
                }
            })
        }
        _ if args.borrowed => {
            let data = payload_data(args);
            let len = data.len();
            let _ = pool.map_with(payload, (0..warmup).map(|_| &data), options.clone());
            time(
                || match pool.map_with(payload, (0..tasks).map(|_| &data), options.clone()) {
                    Ok(out) => check_payload(&out, len),
                    Err(e) => Some(e.to_string()),
                },
            )
        }
        _ => {
            let data = payload_data(args);
            let len = data.len();
            let _ = pool.map_with(payload, (0..warmup).map(|_| data.clone()), options.clone());
            time(|| {
                match pool.map_with(payload, (0..tasks).map(|_| data.clone()), options.clone()) {
                    Ok(out) => check_payload(&out, len),
                    Err(e) => Some(e.to_string()),
                }
            })
        }
    };
    Measured {
        seconds,
        master_cpu_s,
        error,
        sleep_sum_us,
        sleep_max_us,
    }
}

/// The reference: the classic loop, one task in flight per worker, blocking receive from any
/// source, refill whoever answered; tag 2 stops a worker.
mod raw {
    use super::*;
    use mpi::topology::SimpleCommunicator;

    const WORK: i32 = 1;
    const STOP: i32 = 2;

    /// Master side of one run of `inputs` tasks; `make(i)` builds task i, `take` consumes
    /// each reply.
    fn farm<T, R>(
        world: &SimpleCommunicator,
        count: usize,
        mut make: impl FnMut(usize) -> Vec<T>,
        mut take: impl FnMut(Vec<R>),
    ) where
        T: mpi::datatype::Equivalence,
        R: mpi::datatype::Equivalence,
    {
        let workers = (world.size() - 1) as usize;
        let mut next = 0;
        let mut busy = 0;
        for w in 1..=workers {
            if next < count {
                world
                    .process_at_rank(w as i32)
                    .send_with_tag(&make(next)[..], WORK);
                next += 1;
                busy += 1;
            }
        }
        while busy > 0 {
            let (reply, status) = world.any_process().receive_vec::<R>();
            take(reply);
            busy -= 1;
            if next < count {
                world
                    .process_at_rank(status.source_rank())
                    .send_with_tag(&make(next)[..], WORK);
                next += 1;
                busy += 1;
            }
        }
    }

    /// Worker side: answer until STOP.
    fn serve<T, R>(world: &SimpleCommunicator, work: impl Fn(Vec<T>) -> Vec<R>)
    where
        T: mpi::datatype::Equivalence,
        R: mpi::datatype::Equivalence,
    {
        let master = world.process_at_rank(0);
        loop {
            let (task, status) = master.receive_vec::<T>();
            if status.tag() == STOP {
                return;
            }
            master.send_with_tag(&work(task)[..], WORK);
        }
    }

    /// Buffer mode, master side: every task is sent from `data` itself, every reply lands in
    /// one reused buffer, which `take` looks at.
    fn farm_buffers(
        world: &SimpleCommunicator,
        count: usize,
        data: &[f64],
        mut take: impl FnMut(&[f64]),
    ) {
        let mut reply = vec![0.0f64; data.len()];
        farm_from(world, count, data, |world| {
            let status = world.any_process().receive_into(&mut reply[..]);
            take(&reply);
            status
        });
    }

    /// Keep mode, master side: as buffer mode, but every reply lands in fresh memory of its
    /// own and is kept until the run ends, as `map` keeps every result.
    fn farm_keep(world: &SimpleCommunicator, count: usize, data: &[f64]) -> Vec<Vec<f64>> {
        let mut replies = Vec::with_capacity(count);
        farm_from(world, count, data, |world| {
            let (reply, status) = world.any_process().receive_vec::<f64>();
            replies.push(reply);
            status
        });
        replies
    }

    /// The classic loop with every task sent from `data`; `receive` takes one reply.
    fn farm_from(
        world: &SimpleCommunicator,
        count: usize,
        data: &[f64],
        mut receive: impl FnMut(&SimpleCommunicator) -> mpi::point_to_point::Status,
    ) {
        let workers = (world.size() - 1) as usize;
        let mut next = 0;
        let mut busy = 0;
        for w in 1..=workers {
            if next < count {
                world.process_at_rank(w as i32).send_with_tag(data, WORK);
                next += 1;
                busy += 1;
            }
        }
        while busy > 0 {
            let status = receive(world);
            busy -= 1;
            if next < count {
                world
                    .process_at_rank(status.source_rank())
                    .send_with_tag(data, WORK);
                next += 1;
                busy += 1;
            }
        }
    }

    /// Buffer mode, worker side: receive into a reused buffer, copy it once into the reply
    /// (the task's one copy), send the reply; until STOP.
    fn serve_buffers(world: &SimpleCommunicator, len: usize) {
        let master = world.process_at_rank(0);
        let mut task = vec![0.0f64; len];
        let mut reply = vec![0.0f64; len];
        loop {
            let status = master.receive_into(&mut task[..]);
            if status.tag() == STOP {
                return;
            }
            reply.copy_from_slice(&task);
            master.send_with_tag(&reply[..], WORK);
        }
    }

    fn stop_all(world: &SimpleCommunicator) {
        for w in 1..world.size() {
            world.process_at_rank(w).send_with_tag(&[0u8; 0][..], STOP);
        }
    }

    pub(super) fn run(world: &SimpleCommunicator, args: &Args) -> Option<Measured> {
        let rank = world.rank();
        let workers = (world.size() - 1) as usize;
        let warmup = args.warmup.unwrap_or(2 * workers);
        match args.workload.as_str() {
            "noop" => {
                let phases = [warmup, args.tasks];
                if rank != 0 {
                    for _ in phases {
                        serve::<u64, u64>(world, |x| x);
                    }
                    return None;
                }
                farm::<u64, u64>(world, warmup, |i| vec![i as u64], |_| {});
                stop_all(world);
                let mut sum = 0;
                let (seconds, master_cpu_s, _) = time(|| {
                    farm::<u64, u64>(world, args.tasks, |i| vec![i as u64], |r| sum += r[0]);
                    None
                });
                stop_all(world);
                let n = args.tasks as u64;
                let error = (sum != n * (n - 1) / 2).then(|| format!("noop sum {sum}"));
                Some(Measured::timed(seconds, master_cpu_s, error))
            }
            "sleep" => {
                let work = |d: Vec<u64>| {
                    precise_sleep(Duration::from_micros(d[0]));
                    d
                };
                if rank != 0 {
                    serve::<u64, u64>(world, work);
                    serve::<u64, u64>(world, work);
                    return None;
                }
                let warm = sleep_durations(args, warmup, 1);
                farm::<u64, u64>(world, warmup, |i| vec![warm[i]], |_| {});
                stop_all(world);
                let durations = sleep_durations(args, args.tasks, 0);
                let expected: u64 = durations.iter().sum();
                let mut sum = 0;
                let (seconds, master_cpu_s, _) = time(|| {
                    farm::<u64, u64>(world, args.tasks, |i| vec![durations[i]], |r| sum += r[0]);
                    None
                });
                stop_all(world);
                let error = (sum != expected).then(|| format!("sleep sum {sum} != {expected}"));
                let sleep_max_us = durations.iter().copied().max().unwrap_or(0);
                Some(Measured {
                    seconds,
                    master_cpu_s,
                    error,
                    sleep_sum_us: expected,
                    sleep_max_us,
                })
            }
            _ if args.raw_mode != "classic" => {
                // Buffer and keep modes: the worker side is the same.
                let data = payload_data(args);
                let len = data.len();
                if rank != 0 {
                    serve_buffers(world, len);
                    serve_buffers(world, len);
                    return None;
                }
                if args.raw_mode == "keep" {
                    drop(farm_keep(world, warmup, &data));
                } else {
                    farm_buffers(world, warmup, &data, |_| {});
                }
                stop_all(world);
                let (seconds, master_cpu_s, error) = time(|| {
                    if args.raw_mode == "keep" {
                        return check_payload(&farm_keep(world, args.tasks, &data), len);
                    }
                    let mut error = None;
                    farm_buffers(world, args.tasks, &data, |r| {
                        if error.is_none() {
                            error = check_payload(&[r], len);
                        }
                    });
                    error
                });
                stop_all(world);
                Some(Measured::timed(seconds, master_cpu_s, error))
            }
            _ => {
                if rank != 0 {
                    serve::<f64, f64>(world, |v| v.clone());
                    serve::<f64, f64>(world, |v| v.clone());
                    return None;
                }
                let data = payload_data(args);
                let len = data.len();
                farm::<f64, f64>(world, warmup, |_| data.clone(), |_| {});
                stop_all(world);
                let mut error = None;
                let (seconds, master_cpu_s, _) = time(|| {
                    farm::<f64, f64>(
                        world,
                        args.tasks,
                        |_| data.clone(),
                        |r| {
                            if error.is_none() {
                                error = check_payload(&[r], len);
                            }
                        },
                    );
                    None
                });
                stop_all(world);
                Some(Measured::timed(seconds, master_cpu_s, error))
            }
        }
    }
}

fn report(args: &Args, ranks: usize, workers: usize, m: &Measured) {
    let mut fields = vec![
        format!("\"system\":\"{}\"", args.system),
        format!("\"workload\":\"{}\"", args.workload),
        format!("\"ranks\":{ranks}"),
        format!("\"workers\":{workers}"),
        format!("\"tasks\":{}", args.tasks),
        format!("\"seconds\":{:.6}", m.seconds),
        format!("\"tasks_per_s\":{:.1}", args.tasks as f64 / m.seconds),
        format!("\"master_cpu_s\":{:.6}", m.master_cpu_s),
        format!("\"master_peak_rss_mb\":{:.1}", peak_rss_mb()),
    ];
    if args.unordered {
        fields.push("\"unordered\":true".to_owned());
    }
    if args.bulk {
        fields.push("\"bulk\":true".to_owned());
    }
    if args.borrowed {
        fields.push("\"borrowed\":true".to_owned());
    }
    if args.system == "raw" && args.workload == "payload" {
        fields.push(format!("\"raw_mode\":\"{}\"", args.raw_mode));
    }
    let (chunksize, prefetch) = if args.system == "raw" {
        ("1".to_owned(), "1".to_owned())
    } else {
        (
            args.chunksize
                .map_or("\"auto\"".to_owned(), |c| c.to_string()),
            args.prefetch.map_or("2".to_owned(), |k| k.to_string()),
        )
    };
    fields.push(format!("\"chunksize\":{chunksize}"));
    fields.push(format!("\"prefetch\":{prefetch}"));
    match args.workload.as_str() {
        "sleep" => {
            let ideal =
                (m.sleep_sum_us as f64 / 1e6 / workers as f64).max(m.sleep_max_us as f64 / 1e6);
            fields.push(format!("\"ideal_s\":{ideal:.6}"));
            fields.push(format!("\"efficiency\":{:.4}", ideal / m.seconds));
        }
        "payload" => {
            let bytes = payload_data(args).len() as f64 * 8.0;
            fields.push(format!("\"payload_bytes\":{bytes}"));
            fields.push(format!(
                "\"mb_per_s\":{:.1}",
                2.0 * bytes * args.tasks as f64 / m.seconds / 1e6
            ));
        }
        _ => {}
    }
    if let Some(tag) = &args.tag {
        fields.push(format!("\"tag\":\"{}\"", tag.replace('"', "'")));
    }
    if let Some(e) = &m.error {
        fields.push(format!("\"error\":\"{}\"", e.replace('"', "'")));
    }
    println!("{{{}}}", fields.join(","));
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    if args.system == "pool" {
        pool_runtime::run(|pool: &mut Pool| {
            let m = run_pool(pool, &args);
            let ranks = std::env::var("OMPI_COMM_WORLD_SIZE")
                .or_else(|_| std::env::var("PMI_SIZE"))
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1);
            report(&args, ranks, pool.workers(), &m);
            m.error.map_or(Ok(()), Err)
        })
    }
    let universe = mpi::initialize().expect("MPI initializes once");
    let world = universe.world();
    if world.size() < 2 {
        eprintln!("bench: --system raw needs at least 2 ranks (mpirun -n 2 or more)");
        std::process::exit(2);
    }
    let measured = raw::run(&world, &args);
    let failed = measured.as_ref().is_some_and(|m| m.error.is_some());
    if let Some(m) = measured {
        report(&args, world.size() as usize, world.size() as usize - 1, &m);
    }
    drop(universe);
    std::process::exit(i32::from(failed));
}
