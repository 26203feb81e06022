//! Telling each worker where it is, after the handshake (see [`crate::context`]).

use super::Master;
use crate::context;
use crate::protocol::{ContextFrame, Tag};

impl Master {
    /// Sends every worker its CONTEXT: index, and index among the workers of its host.
    pub(super) fn send_contexts(&mut self) {
        let hosts: Vec<&str> = self.workers.iter().map(|s| s.host.as_str()).collect();
        let all = context::assign(&hosts, |w| self.workers[w].rank);
        let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        for (w, ctx) in all.into_iter().enumerate() {
            let frame = ContextFrame {
                worker: n(ctx.worker),
                workers: n(ctx.workers),
                node_worker: n(ctx.node_worker),
                node_workers: n(ctx.node_workers),
                node: ctx.node,
            };
            self.link.send(w, Tag::Context, frame.encode());
        }
    }
}
