//! A small binary codec for what the KV layer persists: lock records,
//! transaction records, range metadata and write batches (the payload of a
//! Raft log entry).
//!
//! Layout: fixed-width big-endian integers, byte strings as a `u32` length
//! followed by the bytes, options as a `0`/`1` tag. Every record starts with
//! a format version byte so that the layout can evolve.
//!
//! Decoding never panics: stored bytes come from disk and are checked; a
//! short or malformed input is a [`CodecError`].

use std::fmt;

use bytes::Bytes;

use crate::hlc::Timestamp;
use crate::keys::Span;

/// A stored record failed to decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for CodecError {}

/// Appends encoded values to a buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u128(&mut self, v: u128) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn ts(&mut self, ts: Timestamp) {
        self.u64(ts.wall_nanos);
        self.u32(ts.logical);
    }

    /// # Panics
    /// On a string longer than `u32::MAX` bytes (keys and values are bounded
    /// far below that before they get here).
    pub fn bytes(&mut self, b: &[u8]) {
        let len = u32::try_from(b.len()).expect("encoded byte string over 4 GiB");
        self.u32(len);
        self.buf.extend_from_slice(b);
    }

    pub fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.u8(0),
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
        }
    }

    pub fn span(&mut self, span: &Span) {
        self.bytes(&span.start);
        self.opt_bytes(span.end.as_deref());
    }

    /// A sequence: its length, then each element.
    pub fn seq<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Writer, &T)) {
        let len = u32::try_from(items.len()).expect("encoded sequence over 4G elements");
        self.u32(len);
        for item in items {
            each(self, item);
        }
    }
}

/// Reads encoded values from a byte string.
pub struct Reader<'a> {
    input: &'a Bytes,
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader of `input`; `what` names the record in error messages.
    pub fn new(input: &'a Bytes, what: &'static str) -> Reader<'a> {
        Reader {
            input,
            pos: 0,
            what,
        }
    }

    fn err(&self, why: &str) -> CodecError {
        CodecError(format!("{}: {why} at byte {}", self.what, self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.input.len())
            .ok_or_else(|| self.err("truncated"))?;
        let out = &self.input[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, CodecError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    pub fn u128(&mut self) -> Result<u128, CodecError> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(u128::from_be_bytes(a))
    }

    pub fn ts(&mut self) -> Result<Timestamp, CodecError> {
        Ok(Timestamp::new(self.u64()?, self.u32()?))
    }

    pub fn bytes(&mut self) -> Result<Bytes, CodecError> {
        let len = self.u32()? as usize;
        let start = self.pos;
        self.take(len)?;
        Ok(self.input.slice(start..start + len))
    }

    pub fn opt_bytes(&mut self) -> Result<Option<Bytes>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            tag => Err(self.err(&format!("bad option tag {tag}"))),
        }
    }

    pub fn span(&mut self) -> Result<Span, CodecError> {
        Ok(Span {
            start: self.bytes()?,
            end: self.opt_bytes()?,
        })
    }

    /// A sequence written by [`Writer::seq`]; the length is checked against
    /// the bytes left (each element takes at least one byte), so a corrupt
    /// length cannot make us allocate without bound.
    pub fn seq<T>(
        &mut self,
        mut each: impl FnMut(&mut Reader<'a>) -> Result<T, CodecError>,
    ) -> Result<Vec<T>, CodecError> {
        let len = self.u32()? as usize;
        if len > self.input.len() - self.pos {
            return Err(self.err("sequence longer than the input"));
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(each(self)?);
        }
        Ok(out)
    }

    /// A format version byte that must equal `expected`.
    pub fn version(&mut self, expected: u8) -> Result<(), CodecError> {
        match self.u8()? {
            v if v == expected => Ok(()),
            v => Err(self.err(&format!("unknown format version {v}"))),
        }
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), CodecError> {
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }

    /// An error about the value just read.
    pub fn invalid(&self, why: &str) -> CodecError {
        self.err(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::new();
        w.u8(7);
        w.ts(Timestamp::new(5, 6));
        w.opt_bytes(Some(b"abc"));
        w.opt_bytes(None);
        w.span(&Span::from_key(&b"k"[..]));
        w.seq(&[1u32, 2], |w, v| w.u32(*v));
        let bytes = Bytes::from(w.finish());
        let mut r = Reader::new(&bytes, "test");
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.ts().unwrap(), Timestamp::new(5, 6));
        assert_eq!(r.opt_bytes().unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(r.opt_bytes().unwrap(), None);
        assert_eq!(r.span().unwrap(), Span::from_key(&b"k"[..]));
        assert_eq!(r.seq(|r| r.u32()).unwrap(), vec![1, 2]);
        r.finish().unwrap();
        for cut in 0..bytes.len() {
            let short = bytes.slice(..cut);
            let mut r = Reader::new(&short, "test");
            let result = (|| {
                r.u8()?;
                r.ts()?;
                r.opt_bytes()?;
                r.opt_bytes()?;
                r.span()?;
                r.seq(|r| r.u32())
            })();
            assert!(result.is_err(), "cut at {cut} decoded");
        }
    }

    #[test]
    fn huge_sequence_length_is_refused() {
        let bytes = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1]);
        let mut r = Reader::new(&bytes, "test");
        assert!(r.seq(|r| r.u8()).is_err());
    }
}
