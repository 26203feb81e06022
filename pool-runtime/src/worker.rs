//! The worker loop: say HELLO, run TASK chunks until STOP, say BYE.

use std::time::Instant;

use crate::protocol::{self, Hello, Status, Tag, TaskFrame};
use crate::registry::Registry;
use crate::signals;
use crate::transport::WorkerLink;

/// Serves the master until it sends STOP; returns the exit status STOP carries.
///
/// With `track`, the worker records which task and item it runs, for the message of a fatal
/// signal (one process per worker only: the record is process-wide).
pub(crate) fn serve(link: &mut dyn WorkerLink, track: bool) -> i32 {
    let registry = Registry::global();
    let hello = hello(crate::host::host_name());
    link.send(Tag::Hello, &mut hello.encode());
    tracing::debug!(rank = link.rank(), host = %hello.host, "pool: worker ready");

    let mut out = Vec::new();
    let mut frame = Vec::new();
    // Time per item of the last chunk; unknown (taken as long) before the first.
    let mut item_ns = u64::MAX;
    loop {
        let tag = link.recv(&mut frame);
        match Tag::from_raw(tag) {
            Some(Tag::Task) => {
                let count = protocol::peek_task_header(&frame).map_or(1, |h| h.count);
                link.before_run(item_ns.saturating_mul(u64::from(count)));
                item_ns = run_chunk(registry, link.rank(), &frame, &mut out, track);
                link.send(Tag::Result, &mut out);
            }
            Some(Tag::Stop) => {
                let code = protocol::decode_stop(&frame).unwrap_or_else(|e| {
                    eprintln!("pool: rank {}: {e}; exiting with status 1", link.rank());
                    1
                });
                tracing::debug!(rank = link.rank(), code, "pool: worker stopping");
                link.send(Tag::Bye, &mut Vec::new());
                return code;
            }
            _ => eprintln!(
                "pool: rank {}: ignoring an unexpected frame from the master (tag {tag}, {} bytes)",
                link.rank(),
                frame.len()
            ),
        }
    }
}

/// What this worker says at start-up: its protocol version, tasks, process and host.
pub(crate) fn hello(host: String) -> Hello {
    let registry = Registry::global();
    Hello {
        version: protocol::VERSION,
        fingerprint: registry.fingerprint(),
        pid: std::process::id(),
        host,
        tasks: registry.names().iter().map(|&n| n.to_owned()).collect(),
    }
}

/// Runs every item of one TASK frame and writes the RESULT frame into `out`; returns the time
/// the items took, in nanoseconds each (0 when none ran).
pub(crate) fn run_chunk(
    registry: &Registry,
    rank: usize,
    frame: &[u8],
    out: &mut Vec<u8>,
    track: bool,
) -> u64 {
    let task = match TaskFrame::decode(frame) {
        Ok(task) => task,
        Err(e) => {
            // Answer anyway, so the master can fail the chunk it sent instead of waiting.
            let header = protocol::peek_task_header(frame);
            let (job, first) = header.map_or((u32::MAX, 0), |h| (h.job, h.first));
            protocol::begin_result_frame(out, job, first);
            protocol::push_message(out, Status::Rejected, &format!("malformed frame: {e}"));
            protocol::finish_result_frame(out, 1, 0);
            return 0;
        }
    };
    let header = task.header;
    protocol::begin_result_frame(out, header.job, header.first);
    let Some(entry) = registry.get(header.task) else {
        let message = format!(
            "task id {:#018x} is not registered on rank {rank}; this rank knows: {}",
            header.task,
            registry.names().join(", ")
        );
        for _ in task.items() {
            protocol::push_message(out, Status::Rejected, &message);
        }
        protocol::finish_result_frame(out, header.count, 0);
        return 0;
    };
    let started = Instant::now();
    if track {
        signals::worker_chunk(entry.name(), header.job, header.first, header.count);
    }
    for (index, item) in (header.first..).zip(task.items()) {
        if track {
            signals::worker_item(index);
        }
        if let Err(failure) = protocol::push_outcome(out, Status::Ok, |b| entry.invoke(item, b)) {
            protocol::push_message(out, Status::of(&failure), failure.message());
        }
    }
    if track {
        signals::worker_idle();
    }
    let busy_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    protocol::finish_result_frame(out, header.count, busy_ns);
    busy_ns / u64::from(header.count.max(1))
}
