//! Out-of-band parts on the way in: a large plain value (vector, `String`, `Bulk`) received
//! into memory of its own element type (see [`crate::frame`]) becomes the decoded value
//! without a copy; a task's input part reaches its decode through a per-thread slot; and
//! the memory of a part sent from a value's own gives room for the next one received.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

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

/// The memory of a value a kept part held (a plain vector, a `String` or a `Bulk` moved
/// into a frame, see [`super::split`]), for receiving another such value into, once nothing
/// else holds it; `None` otherwise.
pub(crate) fn reclaim(keep: Rc<dyn Any>) -> Option<Buffer> {
    macro_rules! try_as {
        ($keep:ident: $($t:ty => $into:expr),*) => {$(
            let $keep = match $keep.downcast::<$t>() {
                Ok(value) => return Rc::try_unwrap(value).ok().and_then($into),
                Err(other) => other,
            };
        )*};
    }
    macro_rules! bulk {
        ($keep:ident: $($p:ty),*) => {
            try_as!($keep: $(
                crate::bulk::Bulk<$p> => |b: crate::bulk::Bulk<$p>| Buffer::from_vec(b.0)
            ),*)
        };
    }
    try_as!(keep:
        Vec<f64> => Buffer::from_vec,
        Vec<f32> => Buffer::from_vec,
        Vec<u8> => Buffer::from_vec,
        Vec<i8> => Buffer::from_vec,
        String => |s: String| Buffer::from_vec(s.into_bytes())
    );
    bulk!(keep: f64, f32, u8, i8, u16, i16, u32, i32, u64, i64);
    drop(keep);
    None
}

#[cfg(test)]
mod tests {
    use std::any::Any;
    use std::rc::Rc;

    use super::reclaim;
    use crate::bulk::Bulk;

    #[test]
    fn a_sent_values_memory_is_reclaimed_once_nothing_else_holds_it() {
        fn check(keep: Rc<dyn Any>, size: Option<(u8, usize)>) {
            let got = reclaim(keep).map(|b| (b.elem(), b.capacity_bytes(), b.as_bytes().len()));
            assert_eq!(got, size.map(|(elem, bytes)| (elem, bytes, 0)));
        }
        check(Rc::new(vec![1.5f64; 100]), Some((8, 800)));
        check(Rc::new(vec![1.5f32; 100]), Some((4, 400)));
        check(Rc::new(vec![1u8; 100]), Some((1, 100)));
        check(Rc::new(vec![-1i8; 100]), Some((1, 100)));
        check(Rc::new("x".repeat(100)), Some((1, 100)));
        check(Rc::new(Bulk(vec![1u16; 100])), Some((2, 200)));
        check(Rc::new(Bulk(vec![-1i64; 100])), Some((8, 800)));
        // Not a plain value; a value still held elsewhere (a retry's copy of its frame).
        check(Rc::new(vec![(1u8, 2u8); 100]), None);
        let shared: Rc<dyn Any> = Rc::new(vec![1.5f64; 100]);
        let other = Rc::clone(&shared);
        check(shared, None);
        assert_eq!(other.downcast_ref::<Vec<f64>>().map(Vec::len), Some(100));
    }
}
