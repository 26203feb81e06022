//! `WorkerContext`: where each worker runs, to bind one GPU per worker or pin threads.
//!
//! `mpirun -n 4 target/release/examples/worker_context` (or across nodes with a hostfile:
//! node-local indices restart at 0 on every node).

use pool_runtime::prelude::*;

/// GPUs per node, in a real program from `nvidia-smi -L` or the job's environment.
const GPUS_PER_NODE: usize = 2;

/// What a worker binds to, chosen once per worker, before any task runs on it.
struct Binding {
    gpu: usize,
    cores: Vec<usize>,
}

impl WorkerState for Binding {
    fn init(ctx: &WorkerContext) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        // One GPU per worker: the node's workers share its GPUs by node-local index. Set
        // this before the CUDA runtime starts in this process (here, before any task used
        // it); with one process per worker (mpirun), the variable is this worker's alone.
        let gpu = ctx.node_worker() % GPUS_PER_NODE;
        // SAFETY (edition 2024): no other thread of this worker reads the environment now.
        // In one process (threads) the variable would be shared: pass the index instead.
        if ctx.rank() > 0 {
            unsafe { std::env::set_var("CUDA_VISIBLE_DEVICES", gpu.to_string()) };
        }
        // Pin: this worker's share of the node's cores, by node-local index.
        let cores_here = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = (cores_here / ctx.node_workers().max(1)).max(1);
        let first = (ctx.node_worker() * per) % cores_here;
        let cores = (first..first + per).map(|c| c % cores_here).collect();
        Ok(Binding { gpu, cores })
    }
}

/// Says where it ran and what it is bound to.
#[pool_task]
fn report(binding: &Binding, _item: u32) -> String {
    let ctx = WorkerContext::current().expect("inside a task");
    format!(
        "rank {} = worker {}/{} on {} (node-local {}/{}): GPU {} (CUDA_VISIBLE_DEVICES={}), cores {:?}",
        ctx.rank(),
        ctx.worker(),
        ctx.workers(),
        ctx.node(),
        ctx.node_worker(),
        ctx.node_workers(),
        binding.gpu,
        std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "-".into()),
        binding.cores
    )
}

#[pool_main]
fn main(pool: &mut Pool) -> Result<(), Box<dyn std::error::Error>> {
    let mut lines = pool.map(report, 0..(8 * pool.workers() as u32))?;
    lines.sort();
    lines.dedup();
    for line in &lines {
        println!("{line}");
    }
    assert_eq!(lines.len(), pool.workers(), "one line per worker");
    Ok(())
}
