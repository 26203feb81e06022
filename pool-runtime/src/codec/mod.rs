//! How task arguments and results become bytes: serde with the `postcard` format.
//!
//! The master and the in-process mode use the same codec, so a program behaves the same
//! in one process as under mpirun.
//!
//! A value whose whole type is a vector of plain numbers that postcard writes as their memory
//! (`Vec<f64>`, `Vec<f32>`, `Vec<u8>`, `Vec<i8>`) or a `String` is encoded and decoded with one
//! `memcpy` ([`encode_value`], [`decode`]): the bytes are exactly postcard's (a varint length,
//! then the elements little endian), so both paths read each other's output. serde would go
//! element by element (about 1.4 GB/s here, and a decoded `Vec` that grows by doubling from
//! 1 MiB); `Bulk<T>` and `#[serde(with = "pool_runtime::bulk")]` give the same speed to the
//! fields of a struct.

use std::any::{Any, TypeId};

use serde::Serialize;
use serde::de::DeserializeOwned;

mod parts;

pub(crate) use parts::{decode_input, decode_parts, reclaim, with_input_part};

/// Appends the encoding of `value` to `buf`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    postcard::serialize_with_flavor(value, Append(buf)).map_err(|e| e.to_string())
}

/// Appends the encoding of `value` to `buf`, with one copy of its memory when its type is a
/// plain vector or a `String` (see the module docs).
pub(crate) fn encode_value<T: Serialize + 'static>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    match plain_bytes(value) {
        Some((len, bytes, _)) => {
            buf.reserve(MAX_VARINT + bytes.len());
            put_varint(buf, len as u64);
            buf.extend_from_slice(bytes);
            Ok(())
        }
        None => encode_into(value, buf),
    }
}

/// Appends the encoding of `value`, which it consumes, to `buf`: as [`encode_value`], except
/// that on an MPI worker a large plain vector or `String` is not copied at all: its bytes are
/// sent from its own memory ([`crate::gather`]).
pub(crate) fn encode_owned<T: Serialize + 'static>(
    value: T,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    // `splittable` is known at compile time: other types do not look at the thread's state.
    if splittable::<T>() && crate::gather::enabled() {
        if let Some((len, bytes, elem)) = plain_bytes(&value) {
            if bytes.len() >= crate::gather::MIN_BYTES {
                let (ptr, size) = (bytes.as_ptr(), bytes.len());
                put_varint(buf, len as u64);
                // The bytes live in the value's heap buffer, which does not move when the
                // value moves into the box.
                crate::gather::push(buf.len(), ptr, size, elem, std::rc::Rc::new(value));
                return Ok(());
            }
        }
    }
    encode_value(&value, buf)
}

/// A large plain value split for sending out of band: postcard's length prefix (`head`,
/// its first `head_len` bytes), then the value's own memory, of `elem`-byte elements.
pub(crate) struct Split<'a> {
    pub(crate) head: [u8; MAX_VARINT],
    pub(crate) head_len: usize,
    pub(crate) bytes: &'a [u8],
    pub(crate) elem: u8,
}

/// `value` split into its length prefix and its memory, when its type is a plain vector or a
/// `String` (see the module docs) of at least `min` bytes.
pub(crate) fn split<T: 'static>(value: &T, min: usize) -> Option<Split<'_>> {
    let (len, bytes, elem) = plain_bytes(value)?;
    if bytes.len() < min {
        return None;
    }
    let mut head = [0; MAX_VARINT];
    let head_len = varint(len as u64, &mut head);
    Some(Split {
        head,
        head_len,
        bytes,
        elem,
    })
}

/// The most bytes a postcard varint of a `u64` takes.
const MAX_VARINT: usize = 10;

fn put_varint(buf: &mut Vec<u8>, v: u64) {
    let mut bytes = [0; MAX_VARINT];
    let len = varint(v, &mut bytes);
    buf.extend_from_slice(&bytes[..len]);
}

/// Writes `v` as postcard's varint into `out`; returns how many bytes that took.
fn varint(mut v: u64, out: &mut [u8; MAX_VARINT]) -> usize {
    let mut len = 0;
    while v >= 0x80 {
        out[len] = (v as u8) | 0x80;
        len += 1;
        v >>= 7;
    }
    out[len] = v as u8;
    len + 1
}

/// Reads a varint as postcard writes a `usize`; `None` if it is not one.
fn take_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(MAX_VARINT) {
        value |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// The length postcard writes, the memory and the element size of a value whose type
/// postcard writes as a length and its memory, little endian.
fn plain_bytes<T: 'static>(value: &T) -> Option<(usize, &[u8], u8)> {
    if !cfg!(target_endian = "little") {
        return None;
    }
    let any = value as &dyn Any;
    if let Some(s) = any.downcast_ref::<String>() {
        return Some((s.len(), s.as_bytes(), 1));
    }
    if let Some(v) = any.downcast_ref::<Vec<u8>>() {
        return Some((v.len(), v, 1));
    }
    if let Some(v) = any.downcast_ref::<Vec<i8>>() {
        return Some((v.len(), as_bytes(v), 1));
    }
    if let Some(v) = any.downcast_ref::<Vec<f32>>() {
        return Some((v.len(), as_bytes(v), 4));
    }
    if let Some(v) = any.downcast_ref::<Vec<f64>>() {
        return Some((v.len(), as_bytes(v), 8));
    }
    // `Bulk<P>` is postcard bytes: its length in bytes, then its memory.
    macro_rules! bulk {
        ($($p:ty),*) => {$(
            if let Some(v) = any.downcast_ref::<crate::bulk::Bulk<$p>>() {
                let bytes = as_bytes(&v.0);
                return Some((bytes.len(), bytes, size_of::<$p>() as u8));
            }
        )*};
    }
    bulk!(f64, f32, u8, i8, u16, i16, u32, i32, u64, i64);
    None
}

/// The memory of a slice of plain numbers.
fn as_bytes<P: crate::bulk::Plain>(values: &[P]) -> &[u8] {
    // SAFETY: `P: Plain` has no padding, so its memory is `size_of_val(values)` initialized
    // bytes, borrowed for as long as `values`.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) }
}

/// `v` as a `T`, when `T` is `V` (the plain paths know the type at run time only).
fn boxed<V: 'static, T: 'static>(v: V) -> Option<T> {
    (Box::new(v) as Box<dyn Any>)
        .downcast::<T>()
        .ok()
        .map(|b| *b)
}

/// Decodes a value whose type is a plain vector or a `String` with one copy; `None` when the
/// type is another, or the bytes are not exactly such a value (postcard then says why).
fn decode_plain<T: 'static>(bytes: &[u8]) -> Option<T> {
    if !cfg!(target_endian = "little") {
        return None;
    }
    let id = std::any::TypeId::of::<T>();
    let size = if id == std::any::TypeId::of::<Vec<f64>>() {
        8
    } else if id == std::any::TypeId::of::<Vec<f32>>() {
        4
    } else if id == std::any::TypeId::of::<Vec<u8>>()
        || id == std::any::TypeId::of::<Vec<i8>>()
        || id == std::any::TypeId::of::<String>()
    {
        1
    } else {
        return None;
    };
    let (len, rest) = take_varint(bytes)?;
    if (rest.len() as u64) != len.checked_mul(size)? {
        return None;
    }
    if id == std::any::TypeId::of::<Vec<f64>>() {
        boxed(crate::bulk::from_bytes::<f64>(rest))
    } else if id == std::any::TypeId::of::<Vec<f32>>() {
        boxed(crate::bulk::from_bytes::<f32>(rest))
    } else if id == std::any::TypeId::of::<Vec<i8>>() {
        boxed(crate::bulk::from_bytes::<i8>(rest))
    } else if id == std::any::TypeId::of::<Vec<u8>>() {
        boxed(rest.to_vec())
    } else {
        boxed(std::str::from_utf8(rest).ok()?.to_owned())
    }
}

/// True if a value of type `T` may be split ([`split`]): its type is a plain vector, a
/// `String` or a `Bulk`. Known at compile time, so a caller can skip the rest.
#[inline]
pub(crate) fn splittable<T: 'static>() -> bool {
    macro_rules! any_of {
        ($($t:ty),*) => { false $(|| TypeId::of::<T>() == TypeId::of::<$t>())* };
    }
    use crate::bulk::Bulk;
    cfg!(target_endian = "little")
        && any_of!(
            String,
            Vec<u8>,
            Vec<i8>,
            Vec<f32>,
            Vec<f64>,
            Bulk<f64>,
            Bulk<f32>,
            Bulk<u8>,
            Bulk<i8>,
            Bulk<u16>,
            Bulk<i16>,
            Bulk<u32>,
            Bulk<i32>,
            Bulk<u64>,
            Bulk<i64>
        )
}

/// A postcard output that appends to a `Vec` directly: every byte or run of bytes is one
/// inlined push or copy, with no `io::Write` in between (a `Vec<f64>` encodes element by
/// element, so this is most of the cost of sending one).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes a whole value from `bytes`; trailing bytes are an error. A plain vector or a
/// `String` takes one copy (see the module docs).
pub(crate) fn decode<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T, String> {
    if let Some(value) = decode_plain::<T>(bytes) {
        return Ok(value);
    }
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} unexpected trailing bytes", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Buffer;
    use parts::{HAS_INPUT_PART, INPUT_PART};
    use std::cell::Cell;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode_into(&(1u32, "two".to_string(), vec![3.0f64]), &mut buf).unwrap();
        let back: (u32, String, Vec<f64>) = decode(&buf).unwrap();
        assert_eq!(back, (1, "two".to_string(), vec![3.0]));
    }

    /// The one-copy path writes exactly postcard's bytes and reads postcard's, both ways.
    #[test]
    fn plain_values_are_postcard_bytes() {
        fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + 'static>(v: T) {
            let mut fast = Vec::new();
            encode_value(&v, &mut fast).unwrap();
            let mut slow = Vec::new();
            encode_into(&v, &mut slow).unwrap();
            assert_eq!(fast, slow, "{}", std::any::type_name::<T>());
            assert!(decode_plain::<T>(&fast).is_some());
            assert_eq!(decode::<T>(&fast).unwrap(), v);
            let back: T = postcard::from_bytes(&fast).unwrap();
            assert_eq!(back, v);
        }
        check(vec![1.5f64, -0.0, f64::MAX]);
        check((0..300).map(|i| i as f64).collect::<Vec<_>>());
        check(vec![1.5f32; 200]);
        check(vec![0u8, 255, 7]);
        check(vec![-1i8, 5]);
        check("héllo".to_owned());
        check(String::new());
        check(Vec::<f64>::new());
        // Lengths beyond one varint byte, and beyond two.
        check(vec![3u8; 20_000]);
    }

    #[test]
    fn plain_values_that_lie_fall_back_to_postcard_errors() {
        let mut buf = Vec::new();
        encode_value(&vec![1.0f64, 2.0], &mut buf).unwrap();
        assert!(decode::<Vec<f64>>(&buf[..buf.len() - 1]).is_err());
        buf.push(0);
        assert_eq!(
            decode::<Vec<f64>>(&buf).unwrap_err(),
            "1 unexpected trailing bytes"
        );
        assert!(decode::<String>(&[2, 0xff, 0xfe]).is_err(), "not UTF-8");
        assert!(decode::<Vec<u8>>(&[0xff; 11]).is_err(), "not a varint");
    }

    /// A part in memory of `elem`-byte elements holding `bytes`.
    fn buffer(elem: u8, bytes: &[u8]) -> Buffer {
        let mut buf = Buffer::with_capacity(elem, bytes.len());
        // SAFETY: room for `bytes`, written before the length is set.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.as_mut_ptr(), bytes.len());
            buf.set_len_bytes(bytes.len());
        }
        buf
    }

    /// A plain value split into its head and its part decodes by taking the part's memory;
    /// any other value, or a part that does not fit, decodes from a copy, as in one frame.
    #[test]
    fn values_take_their_parts_memory() {
        fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + 'static>(
            v: T,
            moves: bool,
        ) {
            let split = split(&v, 0).expect("a plain value");
            let head = &split.head[..split.head_len];
            let buf = buffer(split.elem, split.bytes);
            let at = buf.as_bytes().as_ptr();
            let back: T = decode_parts(head, Some(buf)).unwrap();
            assert_eq!(back, v);
            let took = plain_bytes(&back).is_some_and(|(_, b, _)| b.as_ptr() == at);
            assert_eq!(took, moves, "{}", std::any::type_name::<T>());
        }
        check(vec![1.5f64, -2.0, 3.25], true);
        check(vec![1.5f32; 7], true);
        check(vec![1u8, 2, 3], true);
        // A length of more than one varint byte.
        check(vec![7u8; 300], true);
        check(vec![0.5f64; 20_000], true);
        check(vec![-1i8, 2], true);
        check("héllo".to_owned(), true);
        check(crate::bulk::Bulk(vec![1u16, 2, 65535]), true);
        check(crate::bulk::Bulk(vec![-5i64, 7]), true);
        // Read as another type: a copy, and postcard's answer.
        let two = vec![1.0f64, 2.0];
        let split = split(&two, 0).unwrap();
        let head = &split.head[..split.head_len];
        let as_bytes = decode_parts::<Vec<u8>>(head, Some(buffer(8, split.bytes)));
        assert_eq!(as_bytes.unwrap_err(), "14 unexpected trailing bytes");
        let as_pair: (u8, Vec<u8>) =
            decode_parts(&[2, 3], Some(buffer(1, &[1, 2, 3]))).expect("decoded from a copy");
        assert_eq!(as_pair, (2, vec![1, 2, 3]));
        // A length that does not match the part, and bytes that are not UTF-8.
        assert!(decode_parts::<Vec<f64>>(&[3], Some(buffer(8, &[0; 16]))).is_err());
        assert!(decode_parts::<String>(&[2], Some(buffer(1, &[0xff, 0xfe]))).is_err());
        // The input part of a task is taken once, by the first decode inside.
        let got = with_input_part(Some(buffer(1, b"ab")), || {
            let first: String = decode_input(&[2]).unwrap();
            let second = decode_input::<String>(&[2]);
            (first, second.is_err())
        });
        assert_eq!(got, ("ab".to_owned(), true));
        assert!(INPUT_PART.with(|p| p.borrow().is_none()));
        assert!(!HAS_INPUT_PART.with(Cell::get));
        assert!(splittable::<Vec<f64>>() && splittable::<crate::bulk::Bulk<u16>>());
        assert!(!splittable::<u64>() && !splittable::<(Vec<f64>,)>());
    }

    #[test]
    fn errors_are_reported() {
        assert!(decode::<u64>(&[]).is_err());
        let mut buf = Vec::new();
        encode_into(&5u8, &mut buf).unwrap();
        buf.push(0);
        assert_eq!(
            decode::<u8>(&buf).unwrap_err(),
            "1 unexpected trailing bytes"
        );
    }
}
