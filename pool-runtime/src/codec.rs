//! How task arguments and results become bytes: serde with the `postcard` format.
//!
//! The master and the in-process mode use the same codec, so a program behaves the same
//! in one process as under mpirun.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Appends the encoding of `value` to `buf`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    postcard::serialize_with_flavor(value, Append(buf)).map_err(|e| e.to_string())
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

/// Decodes a whole value from `bytes`; trailing bytes are an error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} unexpected trailing bytes", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode_into(&(1u32, "two".to_string(), vec![3.0f64]), &mut buf).unwrap();
        let back: (u32, String, Vec<f64>) = decode(&buf).unwrap();
        assert_eq!(back, (1, "two".to_string(), vec![3.0]));
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
