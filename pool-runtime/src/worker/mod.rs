//! The worker loop: say HELLO, run TASK chunks until STOP, say BYE.
//!
//! Besides chunks, the master may send: CONTEXT (where this worker is, right after the
//! handshake), SHARE (a value broadcast to every worker), FREE (shared values dropped on the
//! master), FOLD and FOLD_END (a job whose chunks are folded here, see [`fold`]). Worker
//! states ([`crate::state`]) live in this thread until STOP. Each RESULT frame says how long
//! its chunk ran ([`clock`]).

mod clock;
mod fold;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::codec;
use crate::context::{self, WorkerContext};
use crate::frame::{Buffer, Part};
use crate::protocol::{self, ContextFrame, Hello, Status, Tag, TaskFrame};
use crate::registry::Registry;
use crate::transport::WorkerLink;
use crate::{shared, signals, state};

pub(crate) use fold::Folds;

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
    let mut folds = Folds::default();
    // Frames taken ahead of time (to see whether more chunks are queued, see `fold`).
    let mut queue: VecDeque<(i32, Vec<u8>, Vec<Part>)> = VecDeque::new();
    // Time per item of the last chunk; unknown (taken as long) before the first.
    let mut item_ns = u64::MAX;
    let code = loop {
        let (tag, mut parts) = match queue.pop_front() {
            Some((tag, bytes, parts)) => {
                frame = bytes;
                (tag, parts)
            }
            None => {
                let tag = link.recv(&mut frame);
                (tag, link.take_parts())
            }
        };
        let tag = Tag::from_raw(tag).ok_or(tag);
        let header = match tag {
            Ok(Tag::Task) => protocol::peek_task_header(&frame),
            _ => None,
        };
        let fold_job = header.map(|h| h.job).filter(|&job| folds.is_fold(job));
        let fold_chunk = fold_job.is_some();
        if !parts.is_empty() && (fold_chunk || tag != Ok(Tag::Task)) {
            // Only a chunk's arguments are decoded from their parts: anything else gets
            // its bytes in place.
            frame = crate::frame::flatten(&frame, &parts);
            parts.clear();
        }
        if fold_job.is_none_or(|job| !folds.pending_for(job)) {
            // An acknowledgement waits for nothing else: replies keep the order of the chunks.
            folds.flush(link, &mut out);
        }
        match tag {
            Ok(Tag::Task) => {
                let count = header.map_or(1, |h| h.count);
                link.before_run(item_ns.saturating_mul(u64::from(count)));
                if fold_chunk {
                    item_ns = folds.run_chunk(registry, link.rank(), &frame, track);
                    // Chunks already here: acknowledge later, in one frame (see `fold`).
                    let mut spare = Vec::new();
                    while let Some(tag) = link.try_recv(&mut spare) {
                        queue.push_back((tag, std::mem::take(&mut spare), link.take_parts()));
                    }
                    if queue.len() <= 1 {
                        folds.flush(link, &mut out);
                    }
                } else {
                    item_ns =
                        run_chunk(registry, link.rank(), (&frame, &mut parts), &mut out, track);
                    link.send(Tag::Result, &mut out);
                }
            }
            Ok(Tag::Stop) => {
                let code = protocol::decode_stop(&frame).unwrap_or_else(|e| {
                    eprintln!("pool: rank {}: {e}; exiting with status 1", link.rank());
                    1
                });
                tracing::debug!(rank = link.rank(), code, "pool: worker stopping");
                break code;
            }
            Ok(Tag::Share) => match protocol::decode_share(&frame) {
                Ok((id, len)) => {
                    let mut bytes = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
                    link.broadcast(&mut bytes);
                    shared::insert_bytes(id, bytes);
                }
                Err(e) => eprintln!("pool: rank {}: {e}", link.rank()),
            },
            Ok(tag) => {
                if let Some(reply) = control(tag, &frame, &mut folds, &mut out, link.rank()) {
                    link.send(reply, &mut out);
                }
            }
            Err(tag) => eprintln!(
                "pool: rank {}: ignoring an unexpected frame from the master (tag {tag}, {} bytes)",
                link.rank(),
                frame.len()
            ),
        }
    };
    // The pool stops: worker states are dropped before the master hears BYE.
    state::clear();
    context::set_current(None);
    link.send(Tag::Bye, &mut Vec::new());
    // Then the master's RELEASE: until every rank has said BYE, the master may still end
    // the job with MPI_Abort (a worker stuck past a timeout), which must not meet a rank
    // inside MPI_Finalize (see `Master::shutdown`). Whatever comes is the release: a
    // worker thread whose master is gone reads a STOP.
    link.recv(&mut frame);
    code
}

/// Handles a frame that is neither a chunk nor STOP nor SHARE; returns the tag of the reply
/// left in `out`, if any.
fn control(
    tag: Tag,
    frame: &[u8],
    folds: &mut Folds,
    out: &mut Vec<u8>,
    rank: usize,
) -> Option<Tag> {
    let result = match tag {
        Tag::Context => protocol::ContextFrame::decode(frame).map(|c| {
            context::set_current(Some(context_of(c, rank)));
            None
        }),
        Tag::Free => protocol::decode_free(frame).map(|ids| {
            ids.into_iter().for_each(shared::release);
            None
        }),
        Tag::Fold => protocol::decode_fold(frame).map(|(job, combine)| {
            folds.begin(job, combine);
            None
        }),
        Tag::FoldEnd => protocol::decode_fold_end(frame).map(|job| {
            folds.end(job, out);
            Some(Tag::Partial)
        }),
        other => {
            eprintln!("pool: rank {rank}: ignoring an unexpected {other:?} frame from the master");
            Ok(None)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("pool: rank {rank}: {e}");
        None
    })
}

fn context_of(c: ContextFrame, rank: usize) -> WorkerContext {
    let n = |x: u32| x as usize;
    WorkerContext {
        rank,
        worker: n(c.worker),
        workers: n(c.workers),
        node: c.node,
        node_worker: n(c.node_worker),
        node_workers: n(c.node_workers),
    }
}

/// One frame from the master, answered as the worker loop would, for a simulated worker:
/// returns the tag of the reply left in `out`, if any. Every folded chunk is acknowledged
/// at once; the simulated workers share this thread's states, folds and shared values (a
/// fold's result is the same, as its combining task is associative and commutative).
pub(crate) fn answer(tag: Tag, frame: &[u8], out: &mut Vec<u8>) -> Option<Tag> {
    thread_local! {
        static FOLDS: std::cell::RefCell<Folds> = std::cell::RefCell::new(Folds::default());
    }
    let registry = Registry::global();
    FOLDS.with(|folds| {
        let mut folds = folds.borrow_mut();
        match tag {
            Tag::Task => {
                let job = protocol::peek_task_header(frame).map(|h| h.job);
                if job.is_some_and(|j| folds.is_fold(j)) {
                    folds.run_chunk(registry, 0, frame, false);
                    folds.take_ack(out).then_some(Tag::Folded)
                } else {
                    run_chunk(registry, 0, (frame, &mut Vec::new()), out, false);
                    Some(Tag::Result)
                }
            }
            // Where a simulated worker is, is not this thread's business.
            Tag::Context | Tag::Share | Tag::Stop | Tag::Release => None,
            other => control(other, frame, &mut folds, out, 0),
        }
    })
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

/// Runs every item of one TASK frame (its bytes and out-of-band parts, which the items'
/// decoding takes) and writes the RESULT frame into `out`; returns the time the items took,
/// in nanoseconds each (0 when none ran).
pub(crate) fn run_chunk(
    registry: &Registry,
    rank: usize,
    (frame, parts): (&[u8], &mut Vec<Part>),
    out: &mut Vec<u8>,
    track: bool,
) -> u64 {
    // Each item's part is taken out of the frame for its decoding, which keeps it; the
    // frame still says where the parts were.
    let mut taken: Vec<Option<Buffer>> = if parts.is_empty() {
        Vec::new()
    } else {
        parts.iter_mut().map(Part::take).collect()
    };
    let task = match TaskFrame::decode_parts(frame, parts) {
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
    let started = clock::start();
    if track {
        signals::worker_chunk(entry.name(), header.job, header.first, header.count);
    }
    if parts.is_empty() {
        for (index, item) in (header.first..).zip(task.items()) {
            if track {
                signals::worker_item(index);
            }
            if let Err(failure) = protocol::push_outcome(out, Status::Ok, |b| entry.invoke(item, b))
            {
                protocol::push_message(out, Status::of(&failure), failure.message());
            }
        }
    } else {
        for (index, (item, part)) in (header.first..).zip(task.parted_items()) {
            if track {
                signals::worker_item(index);
            }
            let part = part.and_then(|p| taken.get_mut(p)?.take());
            let invoked = codec::with_input_part(part, || {
                protocol::push_outcome(out, Status::Ok, |b| entry.invoke(item, b))
            });
            if let Err(failure) = invoked {
                protocol::push_message(out, Status::of(&failure), failure.message());
            }
        }
    }
    if track {
        signals::worker_idle();
    }
    let busy_ns = clock::busy_ns(started);
    protocol::finish_result_frame(out, header.count, busy_ns);
    busy_ns / u64::from(header.count.max(1))
}
