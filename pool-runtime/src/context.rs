//! [`WorkerContext`]: where a task runs (rank, worker index, node, node-local index).
//!
//! The master knows every worker's host from its HELLO; right after the start-up handshake it
//! sends each worker a CONTEXT frame with its index among the workers and among the workers
//! of its node. The worker loop keeps it in a thread-local, so [`WorkerContext::current`]
//! answers inside a task (and [`WorkerState::init`](crate::WorkerState::init) gets it).

use std::cell::RefCell;

/// Where this worker is: its rank, its index among the pool's workers, its node and its
/// index among the workers of that node.
///
/// Inside a task, [`WorkerContext::current`] returns it; [`WorkerState::init`](crate::WorkerState::init)
/// receives it. Under `mpirun` the rank is the MPI rank (workers are ranks 1..N-1, worker
/// `w` is rank `w + 1`); in one process (threads, [`local`](crate::local)) the rank is 0, the
/// worker index is the thread's, and every worker is on the same node.
///
/// # Examples
///
/// One GPU per worker: the workers of a node share its GPUs by node-local index.
///
/// ```no_run
/// use pool_runtime::prelude::*;
///
/// #[pool_task]
/// fn which_gpu(_item: u64) -> String {
///     let ctx = WorkerContext::current().expect("inside a task");
///     let gpus = 4; // per node
///     let gpu = ctx.node_worker() % gpus;
///     // Before the CUDA runtime starts (in a `WorkerState::init`, say):
///     // std::env::set_var("CUDA_VISIBLE_DEVICES", gpu.to_string());
///     format!("worker {} on {} uses GPU {gpu}", ctx.worker(), ctx.node())
/// }
/// ```
///
/// See `examples/worker_context.rs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerContext {
    pub(crate) rank: usize,
    pub(crate) worker: usize,
    pub(crate) workers: usize,
    pub(crate) node: String,
    pub(crate) node_worker: usize,
    pub(crate) node_workers: usize,
}

thread_local! {
    static CURRENT: RefCell<Option<WorkerContext>> = const { RefCell::new(None) };
}

impl WorkerContext {
    /// The context of the worker this thread is, while it runs a task; `None` elsewhere (on
    /// the master, or when a task function is called directly).
    pub fn current() -> Option<WorkerContext> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// The worker's MPI rank (0 for the worker threads of one process).
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The worker's index among all the pool's workers: `0..workers()`.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// How many workers the pool has.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The name of the worker's node (its host name).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The worker's index among the workers on its node: `0..node_workers()`, in rank order.
    pub fn node_worker(&self) -> usize {
        self.node_worker
    }

    /// How many of the pool's workers run on this node.
    pub fn node_workers(&self) -> usize {
        self.node_workers
    }
}

/// Sets (or clears) this thread's context: the worker loop does, when the master says it.
pub(crate) fn set_current(ctx: Option<WorkerContext>) {
    CURRENT.with(|c| *c.borrow_mut() = ctx);
}

/// Every worker's context, from the workers' host names in worker order: node-local indices
/// count the workers of each host in rank order.
pub(crate) fn assign(hosts: &[&str], rank_of: impl Fn(usize) -> usize) -> Vec<WorkerContext> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let local: Vec<usize> = hosts
        .iter()
        .map(|h| {
            let n = seen.entry(h).or_insert(0);
            *n += 1;
            *n - 1
        })
        .collect();
    hosts
        .iter()
        .zip(local)
        .enumerate()
        .map(|(w, (host, node_worker))| WorkerContext {
            rank: rank_of(w),
            worker: w,
            workers: hosts.len(),
            node: (*host).to_owned(),
            node_worker,
            node_workers: seen[host],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_local_indices_follow_rank_order() {
        let all = assign(&["a", "b", "a", "a", "b"], |w| w + 1);
        let local: Vec<_> = all
            .iter()
            .map(|c| (c.node_worker, c.node_workers))
            .collect();
        assert_eq!(local, [(0, 3), (0, 2), (1, 3), (2, 3), (1, 2)]);
        assert_eq!((all[4].rank, all[4].worker, all[4].workers), (5, 4, 5));
        assert_eq!(all[1].node(), "b");
    }
}
