//! Out-of-band parts on the way in: a large plain value (vector, `String`, `Bulk`) received
//! into memory of its own element type (see [`crate::frame`]) becomes the decoded value
//! without a copy; a task's input part reaches its decode through a per-thread slot.

use std::any::TypeId;
use std::cell::{Cell, RefCell};

use serde::de::DeserializeOwned;

use super::{boxed, decode, take_varint};
use crate::frame::Buffer;

/// Takes over `buf`, the out-of-band part that ends an item whose in-band bytes are `head`,
/// as a value whose type is a plain vector or a `String`; `buf` back if the type is another,
/// or the bytes do not say exactly such a value.
fn take_plain<T: 'static>(head: &[u8], buf: Buffer) -> Result<T, Buffer> {
    if !cfg!(target_endian = "little") {
        return Err(buf);
    }
    let Some((n, [])) = take_varint(head) else {
        return Err(buf);
    };
    let bytes = buf.as_bytes().len() as u64;
    let id = TypeId::of::<T>();
    // A vector of numbers: the length is its element count.
    macro_rules! vec_of {
        ($($p:ty),*) => {$(
            if id == TypeId::of::<Vec<$p>>() {
                if n.checked_mul(size_of::<$p>() as u64) != Some(bytes) {
                    return Err(buf);
                }
                let v = buf.into_vec::<$p>()?;
                return boxed(v).ok_or_else(|| Buffer::B1(Vec::new()));
            }
        )*};
    }
    vec_of!(f64, f32, u8, i8);
    if id == TypeId::of::<String>() {
        if n != bytes {
            return Err(buf);
        }
        let v = buf.into_vec::<u8>()?;
        return match String::from_utf8(v) {
            Ok(s) => boxed(s).ok_or_else(|| Buffer::B1(Vec::new())),
            Err(e) => Err(Buffer::B1(e.into_bytes())),
        };
    }
    // A `Bulk`: the length is in bytes.
    macro_rules! bulk_of {
        ($($p:ty),*) => {$(
            if id == TypeId::of::<crate::bulk::Bulk<$p>>() {
                if n != bytes {
                    return Err(buf);
                }
                let v = buf.into_vec::<$p>()?;
                return boxed(crate::bulk::Bulk(v)).ok_or_else(|| Buffer::B1(Vec::new()));
            }
        )*};
    }
    bulk_of!(f64, f32, u8, i8, u16, i16, u32, i32, u64, i64);
    Err(buf)
}

/// Decodes a value whose bytes are `head`, then the out-of-band part `part` if there is one:
/// a plain vector or a `String` takes the part's memory as its own (no copy); any other
/// value is decoded from a copy of both, as [`decode`] would.
pub(crate) fn decode_parts<T: DeserializeOwned + 'static>(
    head: &[u8],
    part: Option<Buffer>,
) -> Result<T, String> {
    let Some(buf) = part else {
        return decode(head);
    };
    match take_plain::<T>(head, buf) {
        Ok(value) => Ok(value),
        Err(buf) => {
            let mut all = Vec::with_capacity(head.len() + buf.as_bytes().len());
            all.extend_from_slice(head);
            all.extend_from_slice(buf.as_bytes());
            decode(&all)
        }
    }
}

thread_local! {
    /// True while [`INPUT_PART`] may hold a part: a check that costs next to nothing for the
    /// items that have none (no destructor, so no lazy registration on access).
    pub(super) static HAS_INPUT_PART: Cell<bool> = const { Cell::new(false) };
    /// The out-of-band part of the item a worker runs now (see [`with_input_part`]).
    pub(super) static INPUT_PART: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

/// Runs `f` (a task's entry point, which decodes its input with [`decode_input`]) with
/// `part` as the out-of-band part of its input; a part not taken is dropped after.
pub(crate) fn with_input_part<R>(part: Option<Buffer>, f: impl FnOnce() -> R) -> R {
    if part.is_none() {
        return f();
    }
    /// Forgets the part when `f` returns or unwinds: the next item must not see it.
    struct Forget;
    impl Drop for Forget {
        fn drop(&mut self) {
            HAS_INPUT_PART.with(|h| h.set(false));
            INPUT_PART.with(|p| p.borrow_mut().take());
        }
    }
    INPUT_PART.with(|p| *p.borrow_mut() = part);
    HAS_INPUT_PART.with(|h| h.set(true));
    let _forget = Forget;
    f()
}

/// Decodes a task's input: `input`, and the out-of-band part that [`with_input_part`] gave
/// it (taken: only the first decode on this thread sees it).
#[inline]
pub(crate) fn decode_input<T: DeserializeOwned + 'static>(input: &[u8]) -> Result<T, String> {
    if !HAS_INPUT_PART.with(Cell::get) {
        return decode(input);
    }
    HAS_INPUT_PART.with(|h| h.set(false));
    let part = INPUT_PART.with(|p| p.borrow_mut().take());
    decode_parts(input, part)
}
