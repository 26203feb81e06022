//! A fast path for large numeric arrays: their memory crosses as one block of bytes.
//!
//! serde encodes a `Vec<f64>` element by element (about 1.4 GB/s here); as [`Bulk`] or with
//! `#[serde(with = "pool_runtime::bulk")]` it is one `memcpy` each way. A task argument or
//! result that *is* a `Vec<f64>`, `Vec<f32>`, `Vec<u8>`, `Vec<i8>` or `String` takes that path
//! by itself; `Bulk` is for the other number types and for fields of your own structs.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

mod sealed {
    pub trait Sealed {}
}

/// Plain numbers whose memory is their value: every bit pattern is valid, no padding.
pub trait Plain: Copy + Default + sealed::Sealed + 'static {}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Plain for $t {}
    )*};
}
plain!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

/// A `Vec<T>` of plain numbers that crosses between ranks as one block of bytes.
///
/// Use it for large arrays in task arguments and results; it derefs to `Vec<T>`. For a field
/// of your own struct, `#[serde(with = "pool_runtime::bulk")]` does the same for a `Vec<T>`.
///
/// # Examples
///
/// ```
/// use pool_runtime::{pool_task, Bulk};
///
/// #[pool_task]
/// fn scale(data: Bulk<f64>, factor: f64) -> Bulk<f64> {
///     data.iter().map(|x| x * factor).collect::<Vec<_>>().into()
/// }
///
/// assert_eq!(*scale(Bulk::from(vec![1.0, 2.0]), 3.0), vec![3.0, 6.0]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bulk<T: Plain>(pub Vec<T>);

impl<T: Plain> Bulk<T> {
    /// The vector inside.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T: Plain> From<Vec<T>> for Bulk<T> {
    fn from(v: Vec<T>) -> Self {
        Bulk(v)
    }
}

impl<T: Plain> Deref for Bulk<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: Plain> DerefMut for Bulk<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T: Plain> Serialize for Bulk<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, serializer)
    }
}

impl<'de, T: Plain> Deserialize<'de> for Bulk<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Bulk)
    }
}

/// Serializes a slice of plain numbers as bytes (little endian); for
/// `#[serde(with = "pool_runtime::bulk")]`.
///
/// # Errors
///
/// The serializer's.
pub fn serialize<T: Plain, S: Serializer>(values: &[T], serializer: S) -> Result<S::Ok, S::Error> {
    if cfg!(target_endian = "little") {
        // SAFETY: `T: Plain` has no padding and no invalid bit patterns, so its memory can be
        // read as `size_of_val(values)` initialized bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values))
        };
        serializer.serialize_bytes(bytes)
    } else {
        Err(serde::ser::Error::custom(
            "pool_runtime::bulk supports little-endian targets only",
        ))
    }
}

/// Deserializes what [`serialize`] wrote; for `#[serde(with = "pool_runtime::bulk")]`.
///
/// # Errors
///
/// The deserializer's, or a length that is not a whole number of `T`s.
pub fn deserialize<'de, T: Plain, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    deserializer.deserialize_bytes(BulkVisitor(PhantomData))
}

struct BulkVisitor<T>(PhantomData<T>);

impl<T: Plain> Visitor<'_> for BulkVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes holding whole {}s", std::any::type_name::<T>())
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<T>, E> {
        let size = size_of::<T>();
        if bytes.len() % size != 0 {
            return Err(E::custom(format!(
                "{} bytes are not a whole number of {}-byte values",
                bytes.len(),
                size
            )));
        }
        Ok(from_bytes(bytes))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Vec<T>, E> {
        self.visit_bytes(&bytes)
    }
}

/// A `Vec<P>` holding exactly `bytes`, which hold whole `P`s; one copy.
pub(crate) fn from_bytes<P: Plain>(bytes: &[u8]) -> Vec<P> {
    let len = bytes.len() / size_of::<P>();
    let mut values: Vec<P> = Vec::with_capacity(len);
    // SAFETY: the destination has room for `len` values = `bytes.len()` bytes, the regions do
    // not overlap, and any bytes are a valid `P: Plain`.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            values.as_mut_ptr().cast::<u8>(),
            bytes.len(),
        );
        values.set_len(len);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn round_trip_is_exact() {
        let values = Bulk(vec![1.5f64, -0.0, f64::MAX, f64::MIN_POSITIVE]);
        let mut buf = Vec::new();
        codec::encode_into(&values, &mut buf).unwrap();
        assert_eq!(buf.len(), 1 + 4 * 8, "a length prefix and the raw bytes");
        let back: Bulk<f64> = codec::decode(&buf).unwrap();
        assert_eq!(back, values);
        let ints = Bulk(vec![1u16, 2, 65535]);
        let mut buf = Vec::new();
        codec::encode_into(&ints, &mut buf).unwrap();
        assert_eq!(codec::decode::<Bulk<u16>>(&buf).unwrap(), ints);
    }

    #[test]
    fn ragged_bytes_are_an_error() {
        let mut buf = Vec::new();
        codec::encode_into(&Bulk(vec![1u8, 2, 3]), &mut buf).unwrap();
        // postcard reports custom errors only as "Serde Deserialization Error".
        assert!(codec::decode::<Bulk<u16>>(&buf).is_err());
        let visitor = BulkVisitor::<u16>(PhantomData);
        let err = Visitor::visit_bytes::<de::value::Error>(visitor, &[1, 2, 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "3 bytes are not a whole number of 2-byte values"
        );
    }

    #[test]
    fn works_as_a_field_attribute() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Run {
            id: u32,
            #[serde(with = "crate::bulk")]
            samples: Vec<f32>,
        }
        let run = Run {
            id: 7,
            samples: vec![1.0, 2.0],
        };
        let mut buf = Vec::new();
        codec::encode_into(&run, &mut buf).unwrap();
        assert_eq!(codec::decode::<Run>(&buf).unwrap(), run);
    }
}
