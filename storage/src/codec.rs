//! Little encoding helpers shared by the on-disk formats: LEB128 varints and a
//! bounds-checked reader. Decoding never panics on bad bytes: it returns `None`,
//! and the caller turns that into a corruption error naming the file.

/// Most bytes a `u64` varint takes.
pub const VARINT_BYTES_MAX: usize = 10;

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `bytes` prefixed with their length as a varint.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A cursor over bytes that refuses to read past the end.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub fn at(bytes: &'a [u8], pos: usize) -> Self {
        Reader { bytes, pos }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..VARINT_BYTES_MAX {
            let b = *self.bytes.get(self.pos)?;
            self.pos += 1;
            let bits = u64::from(b & 0x7F);
            // The tenth byte may carry only the top bit of a u64.
            if i == VARINT_BYTES_MAX - 1 && b > 1 {
                return None;
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A varint that must fit a `usize` no larger than `max`.
    pub fn len(&mut self, max: usize) -> Option<usize> {
        let v = usize::try_from(self.varint()?).ok()?;
        (v <= max).then_some(v)
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub fn u32_le(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn u64_le(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// Length-prefixed bytes (see [`put_bytes`]) of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Option<&'a [u8]> {
        let n = self.len(max)?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_garbage() {
        let values = [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX];
        let mut buf = Vec::new();
        for v in values {
            put_varint(&mut buf, v);
        }
        let mut r = Reader::new(&buf);
        for v in values {
            assert_eq!(r.varint(), Some(v));
        }
        assert!(r.is_empty());
        assert_eq!(r.varint(), None, "past the end");
        assert_eq!(Reader::new(&[0xFF; 10]).varint(), None, "overlong");
        assert_eq!(Reader::new(&[0x80]).varint(), None, "cut");
        let mut b = Vec::new();
        put_bytes(&mut b, b"abc");
        assert_eq!(Reader::new(&b).bytes(3), Some(&b"abc"[..]));
        assert_eq!(Reader::new(&b).bytes(2), None, "over the limit");
        assert_eq!(Reader::new(&b[..3]).bytes(3), None, "cut");
    }
}
