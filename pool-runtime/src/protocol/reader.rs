//! Reading a frame: bounds-checked, little endian, out-of-band parts in their places.

use super::{
    LONG, ProtocolError, RESULT_HEADER_LEN, ResultHeader, TASK_HEADER_LEN, TaskHeader, malformed,
};
use crate::frame::Part;

/// A bounds-checked little-endian reader over one frame: its in-band bytes, and the
/// out-of-band parts that belong among them (see [`crate::frame`]), each the end of an item.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
    pub(super) frame: &'static str,
    pub(super) parts: &'a [Part],
    /// The next part not yet read.
    pub(super) part: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8], frame: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            frame,
            parts: &[],
            part: 0,
        }
    }

    pub(super) fn with_parts(bytes: &'a [u8], parts: &'a [Part], frame: &'static str) -> Self {
        Reader {
            parts,
            ..Reader::new(bytes, frame)
        }
    }

    #[inline]
    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProtocolError> {
        let rest = self.bytes.len() - self.pos;
        if n > rest {
            return Err(self.too_short(n, what));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The error of [`Reader::take`]: out of line, so that the many inlined reads stay a
    /// few instructions each (the master's time per tiny task is mostly fetching its code).
    #[cold]
    #[inline(never)]
    fn too_short(&self, n: usize, what: &str) -> ProtocolError {
        let rest = self.bytes.len() - self.pos;
        malformed(format!(
            "{} frame: {what} needs {n} bytes at offset {} but only {rest} remain",
            self.frame, self.pos
        ))
    }

    #[inline]
    pub(super) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ProtocolError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    #[inline]
    pub(super) fn u8(&mut self, what: &str) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>(what)?[0])
    }
    #[inline]
    pub(super) fn u32(&mut self, what: &str) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    #[inline]
    pub(super) fn i32(&mut self, what: &str) -> Result<i32, ProtocolError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    #[inline]
    pub(super) fn u64(&mut self, what: &str) -> Result<u64, ProtocolError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    #[inline(always)]
    pub(super) fn len(&mut self, what: &str) -> Result<usize, ProtocolError> {
        Ok(match self.u32(what)? {
            // The escape, when a `u64` length follows; without one, the item claims 4 GiB
            // and is refused as such.
            LONG if self.bytes.len() - self.pos >= 8 => {
                usize::try_from(self.u64(what)?).unwrap_or(usize::MAX)
            }
            len => len as usize,
        })
    }

    #[inline]
    pub(super) fn bytes(&mut self, what: &str) -> Result<&'a [u8], ProtocolError> {
        let len = self.len(what)?;
        self.take(len, what)
    }

    /// [`Reader::bytes`] for the common case, a short length, without building an error:
    /// `None` when the length is the `u64` escape or the bytes run short (then `bytes`
    /// itself says what is wrong). The per-item paths read through this: with `bytes`
    /// alone, a noop task's rate drops by a tenth (measured).
    #[inline]
    pub(super) fn short_bytes(&mut self) -> Option<&'a [u8]> {
        let rest = self.bytes.get(self.pos..)?;
        let len = u32::from_le_bytes(*rest.first_chunk::<4>()?);
        if len == LONG {
            return None;
        }
        let out = rest.get(4..)?.get(..len as usize)?;
        self.pos += 4 + out.len();
        Some(out)
    }

    /// [`Reader::bytes`], through [`Reader::short_bytes`]: the read of every item and
    /// outcome of a frame without out-of-band parts.
    #[inline]
    pub(super) fn length_prefixed(&mut self, what: &str) -> Result<&'a [u8], ProtocolError> {
        match self.short_bytes() {
            Some(bytes) => Ok(bytes),
            None => self.bytes(what),
        }
    }

    /// A length-prefixed item whose end may be an out-of-band part: its in-band bytes, and
    /// the index of its part.
    #[inline]
    pub(super) fn item(&mut self, what: &str) -> Result<(&'a [u8], Option<usize>), ProtocolError> {
        let len = self.len(what)?;
        if self.part < self.parts.len() {
            return self.parted_item(len, what);
        }
        Ok((self.take(len, what)?, None))
    }

    /// [`Reader::item`] of an item of `len` bytes while parts remain: out of line, so that
    /// reading items without parts costs what it did before parts existed.
    #[inline(never)]
    fn parted_item(
        &mut self,
        len: usize,
        what: &str,
    ) -> Result<(&'a [u8], Option<usize>), ProtocolError> {
        let p = &self.parts[self.part];
        if p.at < self.pos || p.at - self.pos > len {
            return Ok((self.take(len, what)?, None));
        }
        let head = p.at - self.pos;
        if head + p.len != len {
            return Err(malformed(format!(
                "{} frame: {what} of {len} bytes at offset {} does not end with its \
                 out-of-band part ({} bytes at offset {})",
                self.frame, self.pos, p.len, p.at
            )));
        }
        let index = self.part;
        self.part += 1;
        Ok((self.take(head, what)?, Some(index)))
    }

    pub(super) fn str(&mut self, what: &str) -> Result<&'a str, ProtocolError> {
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes)
            .map_err(|_| malformed(format!("{} frame: {what} is not UTF-8", self.frame)))
    }

    pub(super) fn finish(&self) -> Result<(), ProtocolError> {
        let rest = self.bytes.len() - self.pos;
        if self.part < self.parts.len() {
            // A part outside every item (the transport keeps them in order).
            Err(malformed(format!(
                "{} frame: an out-of-band part at offset {} belongs to no item",
                self.frame, self.parts[self.part].at
            )))
        } else if rest == 0 {
            Ok(())
        } else {
            Err(malformed(format!(
                "{} frame: {rest} unexpected trailing bytes",
                self.frame
            )))
        }
    }
}

impl TaskHeader {
    /// The header a TASK frame starts with, read at fixed offsets; `None` when the frame is
    /// shorter (its decoding then says which field is cut off).
    #[inline]
    pub(super) fn read(bytes: &[u8]) -> Option<TaskHeader> {
        let h: &[u8; TASK_HEADER_LEN] = bytes.first_chunk()?;
        Some(TaskHeader {
            job: u32::from_le_bytes(*h.first_chunk().expect("4 of 24 bytes")),
            task: le_u64(h, 4),
            first: le_u64(h, 12),
            count: u32::from_le_bytes(*h.last_chunk().expect("4 of 24 bytes")),
        })
    }
}

/// The little-endian `u64` at `at` of a fixed-size header (the bounds are checked when the
/// program is compiled).
#[inline(always)]
fn le_u64<const N: usize>(header: &[u8; N], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&header[at..at + 8]);
    u64::from_le_bytes(b)
}

impl ResultHeader {
    /// The header a RESULT frame starts with, read at fixed offsets; `None` when the frame
    /// is shorter (its decoding then says which field is cut off).
    #[inline]
    pub(super) fn read(bytes: &[u8]) -> Option<ResultHeader> {
        let h: &[u8; RESULT_HEADER_LEN] = bytes.first_chunk()?;
        Some(ResultHeader {
            job: u32::from_le_bytes(*h.first_chunk().expect("4 of 24 bytes")),
            first: le_u64(h, 4),
            count: u32::from_le_bytes(*h[12..].first_chunk().expect("4 of 12 bytes")),
            busy_ns: le_u64(h, 16),
        })
    }
}
