//! Frames on the bulk communicator: announced (with where each out-of-band part belongs),
//! sent as consecutive messages from the frame's bytes and its parts' own memory, received
//! into one buffer for the in-band bytes and memory of its own for each part.

use std::os::raw::c_int;

use mpi::ffi;

use super::SMALL;
use super::endpoint::MAX_PIECE;
use super::prefault::Prefault;
use crate::frame::{Buffer, Data, Part};

/// A send in progress.
pub(super) struct PendingSend {
    pub(super) request: ffi::MPI_Request,
    /// The requests of the further pieces of a frame larger than [`MAX_PIECE`] or with
    /// out-of-band parts (empty, and not allocated, for every other frame).
    pub(super) more: Vec<ffi::MPI_Request>,
    /// Owned by the pending send until MPI says it completed; its heap buffer never moves.
    pub(super) buf: Vec<u8>,
    /// The frame's out-of-band parts (see [`crate::frame`]), kept until the send completed
    /// (empty, and not allocated, for every other frame).
    pub(super) parts: Vec<Part>,
}

impl PendingSend {
    /// True if it sends from memory the caller lent.
    pub(super) fn lent(&self) -> bool {
        self.parts.iter().any(Part::lent)
    }
}

/// The announcement of a frame on the bulk communicator: the length of its in-band bytes,
/// then where each out-of-band part belongs (`u32` count, then `u64` offset, `u64` length
/// and `u8` element size each). `None` when it would not fit a small frame.
pub(super) fn announcement(len: usize, parts: &[Part]) -> Option<Vec<u8>> {
    let size = 12 + 17 * parts.len();
    if size > SMALL {
        return None;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(len as u64).to_le_bytes());
    out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
    for p in parts {
        out.extend_from_slice(&(p.at as u64).to_le_bytes());
        out.extend_from_slice(&(p.len as u64).to_le_bytes());
        out.push(p.elem());
    }
    Some(out)
}

/// A frame with its parts, ready to send on the bulk communicator, and its announcement;
/// with too many parts to announce in a small frame, the parts are copied in.
pub(super) fn announced(buf: Vec<u8>, parts: Vec<Part>) -> (Vec<u8>, Vec<Part>, Vec<u8>) {
    match announcement(buf.len(), &parts) {
        Some(announce) => (buf, parts, announce),
        None => {
            let flat = crate::frame::flatten(&buf, &parts);
            let announce = announcement(flat.len(), &[]).expect("no parts to announce");
            (flat, Vec::new(), announce)
        }
    }
}

/// Where an announced part belongs, its length and its element size.
pub(super) type PartLayout = (usize, usize, u8);

/// What an announcement says: the in-band length, and each part's layout. `None` if it is
/// malformed (parts out of order, or beyond the frame).
pub(super) fn read_announcement(bytes: &[u8]) -> Option<(usize, Vec<PartLayout>)> {
    let u64_at = |at: usize| -> Option<usize> {
        let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
        usize::try_from(u64::from_le_bytes(b)).ok()
    };
    let len = u64_at(0)?;
    let count = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize;
    if bytes.len() != 12 + 17 * count {
        return None;
    }
    let mut parts = Vec::with_capacity(count);
    let mut last = 0;
    for i in 0..count {
        let base = 12 + 17 * i;
        let (at, part_len, elem) = (u64_at(base)?, u64_at(base + 8)?, bytes[base + 16]);
        if at < last || at > len || part_len == 0 {
            return None;
        }
        last = at;
        parts.push((at, part_len, elem));
    }
    Some((len, parts))
}

/// Receives `len` bytes from `source` on the bulk communicator into `ptr`: for each piece
/// (see [`MAX_PIECE`]), a matched probe, then `MPI_Mrecv` of exactly its size straight into
/// its place. Returns the tag.
///
/// # Safety
///
/// `ptr` must be valid for writes of `len` bytes.
unsafe fn receive_into(comm: ffi::MPI_Comm, source: c_int, ptr: *mut u8, len: usize) -> c_int {
    let mut at = 0;
    loop {
        // SAFETY: every out-parameter is a valid local; MPI_Mrecv writes exactly `count` bytes
        // (the probed piece's size) at offset `at` of the `len` bytes at `ptr`; a piece that
        // would not fit is not received (the sender announced `len`).
        unsafe {
            let mut message = ffi::RSMPI_MESSAGE_NULL;
            let mut status: ffi::MPI_Status = std::mem::zeroed();
            ffi::MPI_Mprobe(source, ffi::RSMPI_ANY_TAG, comm, &mut message, &mut status);
            let mut count: c_int = 0;
            ffi::MPI_Get_count(&status, ffi::RSMPI_UINT8_T, &mut count);
            let piece = usize::try_from(count).unwrap_or(0);
            assert!(
                piece <= len - at,
                "pool: internal error: a bulk frame larger than announced"
            );
            ffi::MPI_Mrecv(
                ptr.add(at).cast(),
                count,
                ffi::RSMPI_UINT8_T,
                &mut message,
                &mut status,
            );
            at += piece;
            if at >= len {
                return status.MPI_TAG;
            }
        }
    }
}

/// Receives the frame announced by `announce` from `source`, waiting on the bulk
/// communicator: its in-band bytes into `buf` (reusing its capacity), each out-of-band part
/// into memory of its own, of its element type (prepared ahead by `prefault`, if given).
/// Returns its tag and parts.
pub(super) fn receive_bulk(
    comm: ffi::MPI_Comm,
    source: c_int,
    announce: &[u8],
    buf: &mut Vec<u8>,
    mut prefault: Option<&mut Prefault>,
) -> (c_int, Vec<Part>) {
    let (len, layout) =
        read_announcement(announce).expect("pool: internal error: a malformed announcement");
    buf.clear();
    buf.reserve_exact(len);
    let mut tag = 0;
    let mut from = 0;
    let mut parts = Vec::with_capacity(layout.len());
    for (at, part_len, elem) in layout {
        if at > from {
            // SAFETY: `buf` has capacity `len` >= `at`; only written bytes are counted.
            unsafe {
                // Every message of a frame has its tag: the part's below says it.
                receive_into(comm, source, buf.as_mut_ptr().add(from), at - from);
                buf.set_len(at);
            }
        }
        from = at;
        let mut part = match prefault.as_deref_mut() {
            Some(prefault) => prefault.buffer(elem, part_len),
            None => Buffer::with_capacity(elem, part_len),
        };
        // SAFETY: the buffer has room for `part_len` bytes, all written before its length
        // is set.
        unsafe {
            tag = receive_into(comm, source, part.as_mut_ptr(), part_len);
            part.set_len_bytes(part_len);
        }
        parts.push(Part {
            at,
            len: part_len,
            data: Data::Received(part),
        });
    }
    if len > from || (len == 0 && parts.is_empty()) {
        // SAFETY: as above; an empty frame is one empty message.
        unsafe {
            tag = receive_into(comm, source, buf.as_mut_ptr().add(from), len - from);
            buf.set_len(len);
        }
    }
    (tag, parts)
}

/// Starts a non-blocking send of `buf` (in pieces of at most [`MAX_PIECE`] bytes) and
/// returns it as a pending send.
pub(super) fn isend(comm: ffi::MPI_Comm, dest: c_int, tag: c_int, buf: Vec<u8>) -> PendingSend {
    if buf.len() > MAX_PIECE {
        return isend_parts(comm, dest, tag, buf, Vec::new());
    }
    // One message (every small frame): no list of pieces to build.
    // SAFETY: a request handle is plain data that MPI_Isend overwrites.
    let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
    // SAFETY: `buf` moves into the returned PendingSend (its heap buffer does not move with
    // it), whose owner keeps it alive and unchanged until MPI_Test or MPI_Wait reports the
    // send complete; its length fits an int (at most MAX_PIECE).
    unsafe {
        ffi::MPI_Isend(
            buf.as_ptr().cast(),
            buf.len() as c_int,
            ffi::RSMPI_UINT8_T,
            dest,
            tag,
            comm,
            &mut request,
        );
    }
    PendingSend {
        request,
        more: Vec::new(),
        buf,
        parts: Vec::new(),
    }
}

/// Starts a non-blocking send of the frame `buf` with out-of-band `parts`: the bytes of
/// `buf` up to the first part, that part's own memory, the bytes up to the next, and so on,
/// as consecutive messages of at most [`MAX_PIECE`] bytes (the receiver takes the in-band
/// bytes into one buffer and each part into its own: [`receive_bulk`]). The parts stay in
/// the pending send until it completes.
pub(super) fn isend_parts(
    comm: ffi::MPI_Comm,
    dest: c_int,
    tag: c_int,
    buf: Vec<u8>,
    parts: Vec<Part>,
) -> PendingSend {
    let mut pieces: Vec<(*const u8, usize)> = Vec::new();
    let mut from = 0;
    for p in &parts {
        pieces.push((buf[from..p.at].as_ptr(), p.at - from));
        let bytes = p.bytes();
        pieces.push((bytes.as_ptr(), bytes.len()));
        from = p.at;
    }
    pieces.push((buf[from..].as_ptr(), buf.len() - from));
    let mut requests = pieces
        .iter()
        .filter(|&&(_, len)| len > 0)
        .flat_map(|&(ptr, len)| {
            (0..len).step_by(MAX_PIECE).map(move |at| {
                // SAFETY: `at < len`, so the piece lies within its part.
                (unsafe { ptr.add(at) }, MAX_PIECE.min(len - at))
            })
        })
        .map(|(ptr, len)| {
            // SAFETY: a request handle is plain data that MPI_Isend overwrites.
            let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
            // SAFETY: the piece lies in `buf` or in a part, which both move into the returned
            // PendingSend (their memory does not move with them; lent memory outlives the
            // call that lent it, which completes this send first), and whose owner keeps
            // them alive and unchanged until MPI_Test or MPI_Wait reports every piece
            // complete; its length fits an int.
            unsafe {
                ffi::MPI_Isend(
                    ptr.cast(),
                    len as c_int,
                    ffi::RSMPI_UINT8_T,
                    dest,
                    tag,
                    comm,
                    &mut request,
                );
            }
            request
        });
    // An empty frame is one empty message.
    // SAFETY: as above, for an empty message.
    let request = requests.next().unwrap_or_else(|| unsafe {
        let mut request = ffi::RSMPI_REQUEST_NULL;
        ffi::MPI_Isend(
            buf.as_ptr().cast(),
            0,
            ffi::RSMPI_UINT8_T,
            dest,
            tag,
            comm,
            &mut request,
        );
        request
    });
    let more = requests.collect();
    PendingSend {
        request,
        more,
        buf,
        parts,
    }
}
