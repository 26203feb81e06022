//! Out-of-band parts of a frame: large values that travel, and are kept, in their own memory.
//!
//! A frame is its bytes as the protocol lays them out (`protocol`). A large plain value in
//! it (a vector of numbers, a `String`, a `Bulk`: see `codec`) need not be copied into those
//! bytes: its bytes are a [`Part`], which belongs at an offset of the frame's own (in-band)
//! bytes and lives elsewhere. The protocol reads a frame with parts exactly as if each part's
//! bytes were at its offset, so the layout on the wire is the same; only the transport sends
//! and receives parts as messages of their own:
//!
//! - sent from the memory of the value (a result a worker moves into its frame, see
//!   [`crate::gather`], an owned input the master moves into its frame: [`Data::Kept`]) or
//!   of the caller (an input a `map` borrows: [`Data::Lent`]; a stream or a handle, which
//!   safe code may leak, copies a borrowed input into its frame instead);
//! - received into memory of the part's element type ([`Buffer`]), which decoding takes as the
//!   value's own (`codec::decode_parts`): no copy out of a frame.
//!
//! A part always ends the item (argument or outcome) it belongs to: the item is its in-band
//! head (postcard's length) and then the part.

use std::any::Any;
use std::rc::Rc;

/// One out-of-band part of a frame.
pub(crate) struct Part {
    /// The offset in the frame's in-band bytes where this part's bytes belong.
    pub(crate) at: usize,
    /// Its length in bytes (kept when the data has been taken).
    pub(crate) len: usize,
    pub(crate) data: Data,
}

/// Where a part's bytes are.
pub(crate) enum Data {
    /// Received into memory of its element type, owned here: decoding takes it.
    Received(Buffer),
    /// A value moved into the frame, kept alive until its last send completes; its bytes
    /// are at `ptr` (in its heap buffer, which does not move with it).
    Kept {
        ptr: *const u8,
        elem: u8,
        keep: Rc<dyn Any>,
    },
    /// The caller's memory, lent for a `map` call: valid until that call returns, and the
    /// call completes every send from it first (`Master::settle_lent`).
    Lent { ptr: *const u8, elem: u8 },
    /// Taken by decoding.
    Taken,
}

impl Part {
    /// A part of `len` bytes at `ptr`, kept alive by `keep`.
    pub(crate) fn kept(at: usize, ptr: *const u8, len: usize, elem: u8, keep: Rc<dyn Any>) -> Part {
        Part {
            at,
            len,
            data: Data::Kept { ptr, elem, keep },
        }
    }

    /// A part of `bytes`, memory the caller lends for a `map` call.
    ///
    /// # Safety
    ///
    /// `bytes` must stay valid and unchanged until every send from the part has completed
    /// (`MasterLink::settle_lent`), beyond the lifetime the borrow checker sees here.
    pub(crate) unsafe fn lend(at: usize, bytes: &[u8], elem: u8) -> Part {
        Part {
            at,
            len: bytes.len(),
            data: Data::Lent {
                ptr: bytes.as_ptr(),
                elem,
            },
        }
    }

    /// The part's bytes; empty once taken.
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.data {
            Data::Received(buf) => buf.as_bytes(),
            // SAFETY: `ptr` is valid for `len` bytes while the part exists: a kept value's heap
            // buffer lives in `keep`; lent memory outlives the call whose frames hold it.
            Data::Kept { ptr, .. } | Data::Lent { ptr, .. } => unsafe {
                std::slice::from_raw_parts(*ptr, self.len)
            },
            Data::Taken => &[],
        }
    }

    /// The size of the part's elements (1, 2, 4 or 8 bytes): what its receiver allocates.
    pub(crate) fn elem(&self) -> u8 {
        match &self.data {
            Data::Received(buf) => buf.elem(),
            Data::Kept { elem, .. } | Data::Lent { elem, .. } => *elem,
            Data::Taken => 1,
        }
    }

    /// The value a kept part holds, once its sends are done with it.
    pub(crate) fn into_kept(self) -> Option<Rc<dyn Any>> {
        match self.data {
            Data::Kept { keep, .. } => Some(keep),
            _ => None,
        }
    }

    /// True if the part holds memory the caller lent.
    pub(crate) fn lent(&self) -> bool {
        matches!(self.data, Data::Lent { .. })
    }

    /// Takes the received buffer, if the part is one.
    pub(crate) fn take(&mut self) -> Option<Buffer> {
        match std::mem::replace(&mut self.data, Data::Taken) {
            Data::Received(buf) => Some(buf),
            other => {
                self.data = other;
                None
            }
        }
    }

    /// A part that shares this one's memory (a kept or lent part), or a copy of it in
    /// memory of its own (a received part).
    pub(crate) fn share(&self) -> Part {
        let data = match &self.data {
            Data::Kept { ptr, elem, keep } => Data::Kept {
                ptr: *ptr,
                elem: *elem,
                keep: Rc::clone(keep),
            },
            Data::Lent { ptr, elem } => Data::Lent {
                ptr: *ptr,
                elem: *elem,
            },
            Data::Received(buf) => Data::Received(buf.clone()),
            Data::Taken => Data::Taken,
        };
        Part {
            at: self.at,
            len: self.len,
            data,
        }
    }
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("at", &self.at)
            .field("len", &self.len)
            .field("lent", &self.lent())
            .finish_non_exhaustive()
    }
}

/// The frame's length with its parts: what it would be with their bytes copied in.
pub(crate) fn full_len(bytes: &[u8], parts: &[Part]) -> usize {
    bytes.len() + parts.iter().map(|p| p.len).sum::<usize>()
}

/// The frame with its parts' bytes copied in at their places.
pub(crate) fn flatten(bytes: &[u8], parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::with_capacity(full_len(bytes, parts));
    let mut from = 0;
    for p in parts {
        out.extend_from_slice(&bytes[from..p.at]);
        out.extend_from_slice(p.bytes());
        from = p.at;
    }
    out.extend_from_slice(&bytes[from..]);
    out
}

/// Memory received for a part, allocated as its elements' type so that a `Vec` of numbers of
/// that size can take it over.
#[derive(Clone, Debug)]
pub(crate) enum Buffer {
    B1(Vec<u8>),
    B2(Vec<u16>),
    B4(Vec<u32>),
    B8(Vec<u64>),
}

impl Buffer {
    /// Room for `len` bytes of `elem`-byte elements (`len` a multiple of `elem`, which is
    /// 1, 2, 4 or 8; anything else is taken as bytes), with a length of zero.
    pub(crate) fn with_capacity(elem: u8, len: usize) -> Buffer {
        match elem {
            2 if len % 2 == 0 => Buffer::B2(Vec::with_capacity(len / 2)),
            4 if len % 4 == 0 => Buffer::B4(Vec::with_capacity(len / 4)),
            8 if len % 8 == 0 => Buffer::B8(Vec::with_capacity(len / 8)),
            _ => Buffer::B1(Vec::with_capacity(len)),
        }
    }

    pub(crate) fn elem(&self) -> u8 {
        match self {
            Buffer::B1(_) => 1,
            Buffer::B2(_) => 2,
            Buffer::B4(_) => 4,
            Buffer::B8(_) => 8,
        }
    }

    /// Where its bytes go: room for its capacity in bytes.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        match self {
            Buffer::B1(v) => v.as_mut_ptr(),
            Buffer::B2(v) => v.as_mut_ptr().cast(),
            Buffer::B4(v) => v.as_mut_ptr().cast(),
            Buffer::B8(v) => v.as_mut_ptr().cast(),
        }
    }

    /// Its capacity in bytes.
    pub(crate) fn capacity_bytes(&self) -> usize {
        match self {
            Buffer::B1(v) => v.capacity(),
            Buffer::B2(v) => v.capacity() * 2,
            Buffer::B4(v) => v.capacity() * 4,
            Buffer::B8(v) => v.capacity() * 8,
        }
    }

    /// Says that its first `len` bytes (whole elements, at most its capacity) were written.
    ///
    /// # Safety
    ///
    /// The first `len` bytes of its memory must have been written.
    pub(crate) unsafe fn set_len_bytes(&mut self, len: usize) {
        let size = usize::from(self.elem());
        assert!(
            len % size == 0 && len <= self.capacity_bytes(),
            "pool: internal error: a part's length does not fit its buffer"
        );
        // SAFETY: the caller says these bytes were written; any bytes are valid numbers.
        unsafe {
            match self {
                Buffer::B1(v) => v.set_len(len),
                Buffer::B2(v) => v.set_len(len / 2),
                Buffer::B4(v) => v.set_len(len / 4),
                Buffer::B8(v) => v.set_len(len / 8),
            }
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        fn bytes<T: crate::bulk::Plain>(v: &[T]) -> &[u8] {
            // SAFETY: plain numbers have no padding: their memory is initialized bytes.
            unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), size_of_val(v)) }
        }
        match self {
            Buffer::B1(v) => v,
            Buffer::B2(v) => bytes(v),
            Buffer::B4(v) => bytes(v),
            Buffer::B8(v) => bytes(v),
        }
    }

    /// The memory of `v` (its contents dropped), as a buffer of its elements' size; `None`
    /// when no buffer has `P`'s size and alignment.
    pub(crate) fn from_vec<P: crate::bulk::Plain>(mut v: Vec<P>) -> Option<Buffer> {
        v.clear();
        match size_of::<P>() {
            1 => recast(v).ok().map(Buffer::B1),
            2 => recast(v).ok().map(Buffer::B2),
            4 => recast(v).ok().map(Buffer::B4),
            8 => recast(v).ok().map(Buffer::B8),
            _ => None,
        }
    }

    /// The buffer as a `Vec<P>`, without a copy, when it was allocated for `P`'s size and
    /// alignment; itself otherwise.
    pub(crate) fn into_vec<P: crate::bulk::Plain>(self) -> Result<Vec<P>, Buffer> {
        match self {
            Buffer::B1(v) => recast(v).map_err(Buffer::B1),
            Buffer::B2(v) => recast(v).map_err(Buffer::B2),
            Buffer::B4(v) => recast(v).map_err(Buffer::B4),
            Buffer::B8(v) => recast(v).map_err(Buffer::B8),
        }
    }
}

/// `v` as a `Vec<P>`, without a copy, when `P` has `S`'s size and alignment; `v` otherwise.
fn recast<S: crate::bulk::Plain, P: crate::bulk::Plain>(v: Vec<S>) -> Result<Vec<P>, Vec<S>> {
    if size_of::<S>() != size_of::<P>() || align_of::<S>() != align_of::<P>() {
        return Err(v);
    }
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: the memory was allocated by a `Vec<S>` with this capacity, and `P` has the same
    // size and alignment, so the allocation's layout is the same; any bytes are a valid
    // `P: Plain`.
    Ok(unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<P>(), v.len(), v.capacity()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(at: usize, bytes: &[u8], elem: u8) -> Part {
        let mut buf = Buffer::with_capacity(elem, bytes.len());
        // SAFETY: the buffer has room for `bytes`, which are written before the length is set.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.as_mut_ptr(), bytes.len());
            buf.set_len_bytes(bytes.len());
        }
        Part {
            at,
            len: bytes.len(),
            data: Data::Received(buf),
        }
    }

    #[test]
    fn buffers_become_vectors_of_their_element_size_without_a_copy() {
        let values = [1.5f64, -2.0, 1e300];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut part = received(0, &bytes, 8);
        assert_eq!(part.bytes(), &bytes[..]);
        let buf = part.take().expect("a received part");
        assert!(
            part.take().is_none() && part.bytes().is_empty(),
            "taken once"
        );
        let at = buf.as_bytes().as_ptr();
        let v: Vec<f64> = buf.into_vec().unwrap();
        assert_eq!((v.as_slice(), v.as_ptr().cast::<u8>()), (&values[..], at));
        // Another size is refused, and the buffer comes back whole.
        let buf = received(0, &bytes, 8).take().unwrap();
        let back = buf.into_vec::<u32>().unwrap_err();
        assert_eq!(back.as_bytes(), &bytes[..]);
        // An odd length is bytes, whatever the element size said.
        assert_eq!(Buffer::with_capacity(8, 12).elem(), 1);
    }

    #[test]
    fn a_frame_flattens_with_its_parts_in_place() {
        let value = vec![7u8; 5];
        let keep: Rc<dyn Any> = Rc::new(value.clone());
        let parts = vec![
            received(2, &[1, 1], 1),
            Part::kept(3, value.as_ptr(), 5, 1, keep),
        ];
        let shared = parts[1].share();
        assert_eq!(shared.bytes(), &value[..]);
        assert_eq!(full_len(&[0, 0, 9, 9], &parts), 11);
        assert_eq!(
            flatten(&[0, 0, 9, 9], &parts),
            [0, 0, 1, 1, 9, 7, 7, 7, 7, 7, 9]
        );
    }
}
