//! Scale by simulation (`shared/BENCH.md`, "Scale"): the real master, the code that runs under
//! `mpirun`, against W virtual workers on a virtual clock, in one process without MPI. One
//! JSON line per run.
//!
//! ```text
//! cargo run --release -p examples --example scale -- --workers W --tasks T --mean-ms M \
//!     [--dist fixed|uniform|lognormal|pareto] [--sigma 1.0] [--alpha 2.5] [--stragglers F] \
//!     [--slowdown 5] [--policy pool|classic] [--chunksize C] [--prefetch K] [--seed 12345] \
//!     [--latency-us 2] [--speculative]
//! ```
//!
//! - Each item's compute time is drawn from the distribution with mean M ms (`lognormal`:
//!   `--sigma`; `pareto`: shape `--alpha`, > 1), from the seed and the item's index.
//! - A fraction F of the workers, drawn from the seed, runs `--slowdown` times slower.
//! - The master's real CPU time for each message it handles is added to the virtual clock.
//! - `--policy classic` is the reference: one task per message, one in flight per worker.
//! - `--policy greedy` is a bound, computed without the pool: items in input order, each to
//!   the worker that is free first, at no cost for messages or the master. No online
//!   schedule that does not know the items' times in advance can do better.
//! - `ideal_s = max(sum of task times / capacity, longest task)`, where capacity counts a
//!   straggler as `1 / slowdown` of a worker; `efficiency = ideal_s / virtual_makespan_s`.

use std::time::{Duration, Instant};

use pool_runtime::prelude::*;
use pool_runtime::sim::Simulation;

/// The task every virtual item runs (for real, at no virtual cost): it does nothing.
#[pool_task]
fn item(_index: u64) {}

#[derive(Clone, Debug)]
struct Args {
    workers: usize,
    tasks: u64,
    mean_ms: f64,
    dist: String,
    sigma: f64,
    alpha: f64,
    stragglers: f64,
    slowdown: f64,
    policy: String,
    chunksize: Option<usize>,
    prefetch: Option<usize>,
    seed: u64,
    latency_us: f64,
    speculative: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        workers: 0,
        tasks: 0,
        mean_ms: 0.0,
        dist: "lognormal".into(),
        sigma: 1.0,
        alpha: 2.5,
        stragglers: 0.0,
        slowdown: 5.0,
        policy: "pool".into(),
        chunksize: None,
        prefetch: None,
        seed: 12345,
        latency_us: 2.0,
        speculative: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: cannot parse {v:?}"))
        }
        match flag.as_str() {
            "--workers" => args.workers = num(&flag, value()?)?,
            "--tasks" => args.tasks = num(&flag, value()?)?,
            "--mean-ms" => args.mean_ms = num(&flag, value()?)?,
            "--dist" => args.dist = value()?,
            "--sigma" => args.sigma = num(&flag, value()?)?,
            "--alpha" => args.alpha = num(&flag, value()?)?,
            "--stragglers" => args.stragglers = num(&flag, value()?)?,
            "--slowdown" => args.slowdown = num(&flag, value()?)?,
            "--policy" => args.policy = value()?,
            "--chunksize" => args.chunksize = Some(num(&flag, value()?)?),
            "--prefetch" => args.prefetch = Some(num(&flag, value()?)?),
            "--seed" => args.seed = num(&flag, value()?)?,
            "--latency-us" => args.latency_us = num(&flag, value()?)?,
            // Pool only: copies of queued chunks for idle workers at the end.
            "--speculative" => args.speculative = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.workers == 0 || args.tasks == 0 || args.mean_ms <= 0.0 {
        return Err("--workers, --tasks and --mean-ms are required and must be positive".into());
    }
    if !["fixed", "uniform", "lognormal", "pareto"].contains(&args.dist.as_str()) {
        return Err("--dist must be fixed, uniform, lognormal or pareto".into());
    }
    if args.dist == "pareto" && args.alpha <= 1.0 {
        return Err("--alpha must be above 1 (the mean is infinite otherwise)".into());
    }
    if !["pool", "classic", "greedy"].contains(&args.policy.as_str()) {
        return Err("--policy must be pool, classic or greedy".into());
    }
    Ok(args)
}

/// A uniform number in (0, 1) from `seed` and `key` (splitmix64).
fn unit(seed: u64, key: u64) -> f64 {
    let mut z = seed ^ key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// Item `index`'s nominal time in milliseconds.
fn draw_ms(args: &Args, index: u64) -> f64 {
    let m = args.mean_ms;
    let u = unit(args.seed, 2 * index);
    match args.dist.as_str() {
        "fixed" => m,
        "uniform" => 2.0 * m * u,
        "lognormal" => {
            let v = unit(args.seed, 2 * index + 1);
            let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            let mu = m.ln() - args.sigma * args.sigma / 2.0;
            (mu + args.sigma * z).exp()
        }
        _ => {
            let xm = m * (args.alpha - 1.0) / args.alpha;
            xm / u.powf(1.0 / args.alpha)
        }
    }
}

/// Worker `w`'s slowdown.
fn slowdown_of(args: &Args, w: usize) -> f64 {
    if unit(args.seed ^ 0x5354_5241_4747, w as u64) < args.stragglers {
        args.slowdown
    } else {
        1.0
    }
}

/// `--policy greedy`: list scheduling in input order; prints the JSON line.
fn greedy(args: &Args) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let wall = Instant::now();
    let mut free: BinaryHeap<Reverse<(u64, usize)>> =
        (0..args.workers).map(|w| Reverse((0, w))).collect();
    let (mut sum, mut longest, mut makespan) = (0.0f64, 0.0f64, 0u64);
    for index in 0..args.tasks {
        let ms = draw_ms(args, index);
        sum += ms;
        let Some(Reverse((at, w))) = free.pop() else {
            break;
        };
        let run = ms * slowdown_of(args, w);
        longest = longest.max(run);
        let done = at + (run * 1e6) as u64;
        makespan = makespan.max(done);
        free.push(Reverse((done, w)));
    }
    let capacity: f64 = (0..args.workers).map(|w| 1.0 / slowdown_of(args, w)).sum();
    let ideal = (sum / capacity).max(longest) / 1e3;
    let makespan = makespan as f64 / 1e9;
    println!(
        "{{\"workers\":{},\"tasks\":{},\"mean_ms\":{},\"dist\":\"{}\",\"stragglers\":{},\
         \"slowdown\":{},\"policy\":\"greedy\",\"virtual_makespan_s\":{makespan:.4},\
         \"ideal_s\":{ideal:.4},\"efficiency\":{:.4},\"wall_s\":{:.2}}}",
        args.workers,
        args.tasks,
        args.mean_ms,
        args.dist,
        args.stragglers,
        args.slowdown,
        ideal / makespan,
        wall.elapsed().as_secs_f64()
    );
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("scale: {e}");
            std::process::exit(2);
        }
    };
    if args.policy == "greedy" {
        greedy(&args);
        return;
    }
    let options = match args.policy.as_str() {
        "classic" => Options::new().chunksize(1).prefetch(1),
        _ => {
            let mut o = Options::new();
            if let Some(c) = args.chunksize {
                o = o.chunksize(c);
            }
            if let Some(k) = args.prefetch {
                o = o.prefetch(k);
            }
            o.speculative(args.speculative)
        }
    };
    let options = options.progress(false);
    let cost_args = args.clone();
    let slowdown_args = args.clone();
    let wall = Instant::now();
    let result = Simulation::new(args.workers)
        .latency(Duration::from_secs_f64(args.latency_us * 1e-6))
        .cost(move |_, index| Duration::from_secs_f64(draw_ms(&cost_args, index) * 1e-3))
        .slowdown(move |w| slowdown_of(&slowdown_args, w))
        .run(|pool| {
            let mut failed = 0u64;
            let mut count = 0u64;
            for (_, outcome) in pool
                .map_unordered_with(item, 0..args.tasks, options)
                .expect("no journal: nothing to open")
            {
                count += 1;
                failed += u64::from(outcome.is_err());
            }
            (count, failed)
        });
    let wall_s = wall.elapsed().as_secs_f64();
    let (count, failed, report) = match result {
        Ok(((count, failed), report)) => (count, failed, report),
        Err(e) => {
            eprintln!("scale: {e}");
            std::process::exit(1);
        }
    };
    let error = if count != args.tasks || failed > 0 {
        format!(
            ",\"error\":\"{count} results for {} tasks, {failed} failed\"",
            args.tasks
        )
    } else {
        String::new()
    };
    let makespan = report.makespan.as_secs_f64();
    println!(
        "{{\"workers\":{},\"tasks\":{},\"mean_ms\":{},\"dist\":\"{}\",\"stragglers\":{},\
         \"slowdown\":{},\"policy\":\"{}\",\"virtual_makespan_s\":{:.4},\"ideal_s\":{:.4},\
         \"efficiency\":{:.4},\"master_busy_frac\":{:.4},\"master_msgs\":{},\
         \"master_ns_per_msg\":{:.0},\"chunks\":{},\"handshake_master_s\":{:.4},\
         \"shutdown_master_s\":{:.4},\"master_peak_rss_mb\":{:.1},\"wall_s\":{:.2}{error}}}",
        args.workers,
        args.tasks,
        args.mean_ms,
        args.dist,
        args.stragglers,
        args.slowdown,
        args.policy,
        makespan,
        report.ideal.as_secs_f64(),
        report.efficiency(),
        report.master_busy_fraction(),
        report.messages,
        report.master_busy.as_nanos() as f64 / report.messages.max(1) as f64,
        report.chunks,
        report.handshake_master.as_secs_f64(),
        report.shutdown_master.as_secs_f64(),
        peak_rss_mb(),
        wall_s,
    );
    if !error.is_empty() {
        std::process::exit(1);
    }
}
