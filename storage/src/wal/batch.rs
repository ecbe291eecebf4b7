//! The sync batch under construction: records are encoded straight into
//! reused, block-aligned DMA chunks, and [`Wal::sync`](super::Wal::sync)
//! writes the chunks themselves — the payload is copied once, from the caller
//! into the chunk, and no memory is allocated per batch once the chunks exist.
//!
//! # Layout
//! The buffer is a row of chunks of `chunk_bytes` each, addressed as one
//! contiguous byte range. A batch holds one *part* per segment it touches
//! (normally one; two when it rolls to a new segment). Each part starts on a
//! block boundary of the buffer and maps to a block-aligned offset of its
//! segment; inside a part, buffer position and segment position advance
//! together.
//!
//! # Writing
//! [`BatchBuf::pieces`] cuts each part at chunk boundaries. A piece that is a
//! whole chunk is written by handing the chunk itself to the disk (zero
//! copy); the rest — the tail of a part, and the head of a part that starts
//! mid-chunk after a roll — cost a copy of at most one chunk each. Chunks
//! below [`BatchBuf::final_upto`] no longer change, so they may be written
//! while later records are still being encoded (the WAL's write-ahead).
//!
//! # Invariants
//! - Every byte of a part that is not a record is zero: gaps before a header
//!   that would cross a block, and the rest of the part's last block
//!   ([`BatchBuf::seal`]). Reused chunks hold old bytes, so the gaps are
//!   zeroed explicitly, never assumed.
//! - Parts are in buffer order and never overlap; `used` is the end of the
//!   last part.

use crate::disk::{AlignedBuf, BLOCK_SIZE};
use std::ops::Range;

/// Size of a WAL buffer chunk, in bytes (one I/O per whole chunk).
pub const WAL_CHUNK_BYTES: usize = 1024 * 1024;
const _: () = assert!(WAL_CHUNK_BYTES.is_multiple_of(BLOCK_SIZE));

/// The bytes of one segment in the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub seq: u64,
    /// Block-aligned offset in the segment where the part goes.
    pub offset: u64,
    /// Buffer position of the part's first byte (block-aligned).
    pub start: usize,
    /// Buffer position after the part's last record byte.
    pub end: usize,
}

/// One write of a sync: `range` of chunk `chunk` to `offset` of segment `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub seq: u64,
    pub offset: u64,
    pub chunk: usize,
    pub range: Range<usize>,
}

/// See the module docs.
pub struct BatchBuf {
    chunk_bytes: usize,
    chunks: Vec<AlignedBuf>,
    parts: Vec<Part>,
}

impl BatchBuf {
    /// `chunk_bytes` is a multiple of the block size.
    pub fn new(chunk_bytes: usize) -> Self {
        assert!(
            chunk_bytes > 0 && chunk_bytes.is_multiple_of(BLOCK_SIZE),
            "chunk size {chunk_bytes} not a positive multiple of the block"
        );
        BatchBuf {
            chunk_bytes,
            chunks: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Buffer bytes in use, including padding.
    pub fn used(&self) -> usize {
        self.parts.last().map_or(0, |p| p.end)
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Bytes held by chunks (kept between batches).
    pub fn capacity(&self) -> usize {
        self.chunks.len() * self.chunk_bytes
    }

    /// Starts a part for segment `seq` at its block-aligned `offset`, unless
    /// the last part already is that segment's.
    pub fn ensure_part(&mut self, seq: u64, offset: u64) {
        if self.parts.last().is_some_and(|p| p.seq == seq) {
            return;
        }
        assert!(
            offset.is_multiple_of(BLOCK_SIZE as u64),
            "a part starts off a block boundary"
        );
        let start = self.used().next_multiple_of(BLOCK_SIZE);
        if let Some(last) = self.parts.last() {
            let last_end = last.end;
            self.zero(last_end..start);
        }
        self.parts.push(Part {
            seq,
            offset,
            start,
            end: start,
        });
    }

    /// Writes `bytes` at segment position `at` of the current part (at or after
    /// its end), zeroing the gap before it.
    pub fn put(&mut self, at: u64, bytes: &[u8]) {
        let part = self.parts.last().expect("put into a part");
        assert!(at >= part.offset, "record before its part");
        let pos = part.start + usize::try_from(at - part.offset).expect("fits in memory");
        assert!(pos >= part.end, "records are appended in order");
        let gap = part.end..pos;
        self.zero(gap);
        self.copy_in(pos, bytes);
        self.parts.last_mut().expect("a part").end = pos + bytes.len();
    }

    /// Zeroes the rest of the last part's last block (before writing). Earlier
    /// parts were sealed when the next one began ([`BatchBuf::ensure_part`]),
    /// and their chunks may be in flight already: they are not touched again.
    pub fn seal(&mut self) {
        if let Some(end) = self.parts.last().map(|p| p.end) {
            self.zero(end..end.next_multiple_of(BLOCK_SIZE));
        }
    }

    /// The writes of the batch bytes in buffer positions `[from, to)` (whole
    /// blocks, so `to` is rounded up to a block), in buffer order. Written
    /// early (before [`BatchBuf::seal`]), a range must end at or below
    /// [`BatchBuf::final_upto`].
    pub fn pieces(&self, from: usize, to: usize) -> Vec<Piece> {
        let to = to.next_multiple_of(BLOCK_SIZE);
        let mut pieces = Vec::new();
        for part in &self.parts {
            let end = part.end.next_multiple_of(BLOCK_SIZE).min(to);
            let mut pos = part.start.max(from);
            while pos < end {
                let chunk = pos / self.chunk_bytes;
                let chunk_start = chunk * self.chunk_bytes;
                let piece_end = end.min(chunk_start + self.chunk_bytes);
                pieces.push(Piece {
                    seq: part.seq,
                    offset: part.offset + (pos - part.start) as u64,
                    chunk,
                    range: pos - chunk_start..piece_end - chunk_start,
                });
                pos = piece_end;
            }
        }
        pieces
    }

    /// Buffer position below which every byte is final before the batch is
    /// sealed: the start of the chunk the next byte goes into. Chunks below it
    /// can be written while records are still being appended.
    pub fn final_upto(&self) -> usize {
        self.used() / self.chunk_bytes * self.chunk_bytes
    }

    pub fn chunk(&self, i: usize) -> &AlignedBuf {
        &self.chunks[i]
    }

    /// Forgets the batch; the chunks stay for the next one.
    pub fn clear(&mut self) {
        self.parts.clear();
    }

    fn reserve(&mut self, end: usize) {
        while self.capacity() < end {
            self.chunks.push(AlignedBuf::zeroed(self.chunk_bytes));
        }
    }

    fn copy_in(&mut self, mut pos: usize, mut bytes: &[u8]) {
        self.reserve(pos + bytes.len());
        while !bytes.is_empty() {
            let (chunk, at) = (pos / self.chunk_bytes, pos % self.chunk_bytes);
            let n = bytes.len().min(self.chunk_bytes - at);
            self.chunks[chunk].as_mut_slice()[at..at + n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            pos += n;
        }
    }

    fn zero(&mut self, range: Range<usize>) {
        self.reserve(range.end);
        let mut pos = range.start;
        while pos < range.end {
            let (chunk, at) = (pos / self.chunk_bytes, pos % self.chunk_bytes);
            let n = (range.end - pos).min(self.chunk_bytes - at);
            self.chunks[chunk].as_mut_slice()[at..at + n].fill(0);
            pos += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes a piece writes.
    fn bytes_of(b: &BatchBuf, p: &Piece) -> Vec<u8> {
        b.chunk(p.chunk).as_slice()[p.range.clone()].to_vec()
    }

    #[test]
    fn records_cross_chunks_and_pieces_cover_each_part() {
        let chunk = 2 * BLOCK_SIZE;
        let mut b = BatchBuf::new(chunk);
        // Dirty the chunks as a previous batch would.
        b.ensure_part(1, 0);
        b.put(0, &vec![0xEE; 3 * chunk]);
        b.clear();

        b.ensure_part(7, 4 * BLOCK_SIZE as u64);
        let base = 4 * BLOCK_SIZE as u64;
        b.put(base, &[1; 100]);
        b.put(base + 200, &vec![2; 10_000]); // gap of 100, crosses a chunk
        b.ensure_part(8, 0); // roll: the next part starts on a block boundary
        b.put(0, &[3; 50]);
        b.seal();
        let parts = b.parts().to_vec();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].start, (10_200usize).next_multiple_of(BLOCK_SIZE));

        let pieces = b.pieces(0, b.used());
        let mut seg7 = Vec::new();
        for p in pieces.iter().filter(|p| p.seq == 7) {
            assert_eq!(p.offset, base + seg7.len() as u64, "contiguous");
            assert!(p.range.start.is_multiple_of(BLOCK_SIZE));
            assert!(p.range.end.is_multiple_of(BLOCK_SIZE));
            seg7.extend(bytes_of(&b, p));
        }
        assert_eq!(seg7.len(), (10_200usize).next_multiple_of(BLOCK_SIZE));
        assert!(seg7[..100].iter().all(|&x| x == 1));
        assert!(seg7[100..200].iter().all(|&x| x == 0), "gap zeroed");
        assert!(seg7[200..10_200].iter().all(|&x| x == 2));
        assert!(seg7[10_200..].iter().all(|&x| x == 0), "tail sealed");
        let seg8: Vec<u8> = pieces
            .iter()
            .filter(|p| p.seq == 8)
            .flat_map(|p| bytes_of(&b, p))
            .collect();
        assert_eq!(seg8.len(), BLOCK_SIZE);
        assert!(seg8[..50].iter().all(|&x| x == 3));
        assert!(seg8[50..].iter().all(|&x| x == 0));
        // Whole chunks are whole pieces (written without a copy).
        assert!(pieces.iter().any(|p| p.range == (0..chunk)));
        assert_eq!(b.capacity(), 3 * chunk, "chunks are reused");
        // Written early: the final chunks first, then the rest.
        assert_eq!(b.final_upto(), chunk);
        let mut split = b.pieces(0, b.final_upto());
        split.extend(b.pieces(b.final_upto(), b.used()));
        assert_eq!(split, pieces);
    }
}
