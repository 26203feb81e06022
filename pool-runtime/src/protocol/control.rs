//! Frames beyond a plain map: worker contexts, shared values, folds.
//!
//! ```text
//! CONTEXT  master -> worker  u32 worker, u32 workers, u32 node worker, u32 node workers, str node
//! SHARE    master -> worker  u64 id, u64 len; an MPI_Bcast of len bytes from the master follows
//! FREE     master -> worker  u32 n, n x u64 id (shared values dropped on the master)
//! FOLD     master -> worker  u32 job, u64 combining task id: TASK frames of `job` are folded
//! FOLD_END master -> worker  u32 job: send the partial and forget the job
//! FOLDED   worker -> master  u32 job, u64 first, u32 items, u64 busy ns, u32 chunks,
//!                            u8 failed [u64 index, u8 status, u8 in combine, str message]
//!                            (the first four as in RESULT: one acknowledges `chunks` chunks)
//! PARTIAL  worker -> master  u32 job, u8 has value [u32 len, len bytes]
//! ```

use super::{ProtocolError, RESULT_HEADER_LEN};
use super::{Reader, Status, len_u32, malformed, put_str, put_u32, put_u64};

/// A CONTEXT frame: where a worker is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContextFrame {
    pub(crate) worker: u32,
    pub(crate) workers: u32,
    pub(crate) node_worker: u32,
    pub(crate) node_workers: u32,
    pub(crate) node: String,
}

impl ContextFrame {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        put_u32(&mut buf, self.worker);
        put_u32(&mut buf, self.workers);
        put_u32(&mut buf, self.node_worker);
        put_u32(&mut buf, self.node_workers);
        put_str(&mut buf, &self.node);
        buf
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<ContextFrame, ProtocolError> {
        let mut r = Reader::new(bytes, "CONTEXT");
        let frame = ContextFrame {
            worker: r.u32("worker")?,
            workers: r.u32("workers")?,
            node_worker: r.u32("node worker")?,
            node_workers: r.u32("node workers")?,
            node: r.str("node")?.to_owned(),
        };
        r.finish()?;
        Ok(frame)
    }
}

/// A SHARE frame: the id and length of the value broadcast next.
pub(crate) fn encode_share(id: u64, len: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    put_u64(&mut buf, id);
    put_u64(&mut buf, len);
    buf
}

pub(crate) fn decode_share(bytes: &[u8]) -> Result<(u64, u64), ProtocolError> {
    let mut r = Reader::new(bytes, "SHARE");
    let out = (r.u64("id")?, r.u64("length")?);
    r.finish()?;
    Ok(out)
}

/// A FREE frame: ids of shared values to drop.
pub(crate) fn encode_free(ids: &[u64]) -> Vec<u8> {
    let mut buf = Vec::new();
    put_u32(&mut buf, len_u32(ids.len()));
    for &id in ids {
        put_u64(&mut buf, id);
    }
    buf
}

pub(crate) fn decode_free(bytes: &[u8]) -> Result<Vec<u64>, ProtocolError> {
    let mut r = Reader::new(bytes, "FREE");
    let n = r.u32("count")?;
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(r.u64("id")?);
    }
    r.finish()?;
    Ok(ids)
}

/// A FOLD frame: job `job`'s chunks are folded with task `combine`.
pub(crate) fn encode_fold(job: u32, combine: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    put_u32(&mut buf, job);
    put_u64(&mut buf, combine);
    buf
}

pub(crate) fn decode_fold(bytes: &[u8]) -> Result<(u32, u64), ProtocolError> {
    let mut r = Reader::new(bytes, "FOLD");
    let out = (r.u32("job id")?, r.u64("task id")?);
    r.finish()?;
    Ok(out)
}

/// A FOLD_END frame.
pub(crate) fn encode_fold_end(job: u32) -> Vec<u8> {
    job.to_le_bytes().to_vec()
}

pub(crate) fn decode_fold_end(bytes: &[u8]) -> Result<u32, ProtocolError> {
    let mut r = Reader::new(bytes, "FOLD_END");
    let job = r.u32("job id")?;
    r.finish()?;
    Ok(job)
}

/// The first failure of a fold on one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoldFailure {
    pub(crate) index: u64,
    pub(crate) status: Status,
    /// The combining task failed (not the folded one).
    pub(crate) in_combine: bool,
    pub(crate) message: String,
}

/// A FOLDED frame: `chunks` chunks of `items` items in all, starting at `first`, are folded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Folded {
    pub(crate) job: u32,
    pub(crate) first: u64,
    pub(crate) items: u32,
    pub(crate) busy_ns: u64,
    pub(crate) chunks: u32,
    pub(crate) failure: Option<FoldFailure>,
}

impl Folded {
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        buf.clear();
        put_u32(buf, self.job);
        put_u64(buf, self.first);
        put_u32(buf, self.items);
        put_u64(buf, self.busy_ns);
        debug_assert_eq!(buf.len(), RESULT_HEADER_LEN);
        put_u32(buf, self.chunks);
        match &self.failure {
            None => buf.push(0),
            Some(f) => {
                buf.push(1);
                put_u64(buf, f.index);
                buf.push(f.status as u8);
                buf.push(u8::from(f.in_combine));
                put_str(buf, &f.message);
            }
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Folded, ProtocolError> {
        let mut r = Reader::new(bytes, "FOLDED");
        let job = r.u32("job id")?;
        let first = r.u64("first index")?;
        let items = r.u32("item count")?;
        let busy_ns = r.u64("busy time")?;
        let chunks = r.u32("chunk count")?;
        let failure = match r.u8("failure flag")? {
            0 => None,
            _ => {
                let index = r.u64("failed index")?;
                let raw = r.u8("status")?;
                let status = Status::from_raw(raw)
                    .ok_or_else(|| malformed(format!("FOLDED frame: unknown status {raw}")))?;
                let in_combine = r.u8("combine flag")? != 0;
                let message = r.str("message")?.to_owned();
                Some(FoldFailure {
                    index,
                    status,
                    in_combine,
                    message,
                })
            }
        };
        r.finish()?;
        Ok(Folded {
            job,
            first,
            items,
            busy_ns,
            chunks,
            failure,
        })
    }
}

/// A PARTIAL frame: a worker's combined value of job `job` (`None`: it folded no item).
pub(crate) fn encode_partial(buf: &mut Vec<u8>, job: u32, value: Option<&[u8]>) {
    buf.clear();
    put_u32(buf, job);
    match value {
        None => buf.push(0),
        Some(bytes) => {
            buf.push(1);
            put_u32(buf, len_u32(bytes.len()));
            buf.extend_from_slice(bytes);
        }
    }
}

pub(crate) fn decode_partial(bytes: &[u8]) -> Result<(u32, Option<&[u8]>), ProtocolError> {
    let mut r = Reader::new(bytes, "PARTIAL");
    let job = r.u32("job id")?;
    let value = match r.u8("value flag")? {
        0 => None,
        _ => Some(r.bytes("value")?),
    };
    r.finish()?;
    Ok((job, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_round_trip() {
        let ctx = ContextFrame {
            worker: 3,
            workers: 8,
            node_worker: 1,
            node_workers: 4,
            node: "n2".into(),
        };
        assert_eq!(ContextFrame::decode(&ctx.encode()), Ok(ctx));
        assert_eq!(decode_share(&encode_share(7, 1 << 40)), Ok((7, 1 << 40)));
        assert_eq!(decode_free(&encode_free(&[1, 2, 3])), Ok(vec![1, 2, 3]));
        assert_eq!(decode_fold(&encode_fold(4, 99)), Ok((4, 99)));
        assert_eq!(decode_fold_end(&encode_fold_end(4)), Ok(4));
        let mut buf = Vec::new();
        for failure in [
            None,
            Some(FoldFailure {
                index: 17,
                status: Status::Panicked,
                in_combine: true,
                message: "boom".into(),
            }),
        ] {
            let folded = Folded {
                job: 1,
                first: 10,
                items: 5,
                busy_ns: 99,
                chunks: 2,
                failure,
            };
            folded.encode(&mut buf);
            assert_eq!(Folded::decode(&buf), Ok(folded));
        }
        encode_partial(&mut buf, 2, Some(&[1, 2]));
        assert_eq!(decode_partial(&buf), Ok((2, Some(&[1u8, 2][..]))));
        encode_partial(&mut buf, 2, None);
        assert_eq!(decode_partial(&buf), Ok((2, None)));
        // Truncated frames are errors, never panics.
        assert!(Folded::decode(&buf[..3]).is_err());
        assert!(decode_free(&[5, 0, 0, 0, 1]).is_err());
    }
}
