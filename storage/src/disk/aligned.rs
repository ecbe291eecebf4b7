//! [`AlignedBuf`]: a zeroed, 4096-byte-aligned buffer for O_DIRECT I/O, without
//! `unsafe`: it is a `Vec` of `#[repr(align(4096))]` blocks viewed as bytes through
//! zerocopy.

use super::BLOCK_SIZE;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(4096))]
struct Block([u8; BLOCK_SIZE]);

const _: () = assert!(std::mem::size_of::<Block>() == BLOCK_SIZE);
const _: () = assert!(std::mem::align_of::<Block>() == BLOCK_SIZE);

/// A heap buffer whose address and length are multiples of [`BLOCK_SIZE`].
#[derive(Clone)]
pub struct AlignedBuf {
    blocks: Vec<Block>,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes; `len` must be a multiple of [`BLOCK_SIZE`].
    pub fn zeroed(len: usize) -> Self {
        assert!(
            len.is_multiple_of(BLOCK_SIZE),
            "AlignedBuf length {len} not block-aligned"
        );
        AlignedBuf {
            blocks: vec![Block([0; BLOCK_SIZE]); len / BLOCK_SIZE],
        }
    }

    /// A zeroed buffer holding `data`, its length rounded up to a block.
    pub fn from_padded(data: &[u8]) -> Self {
        let mut buf = Self::zeroed(data.len().next_multiple_of(BLOCK_SIZE));
        buf.as_mut_slice()[..data.len()].copy_from_slice(data);
        buf
    }

    pub fn len(&self) -> usize {
        self.blocks.len() * BLOCK_SIZE
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub fn as_slice(&self) -> &[u8] {
        self.blocks.as_bytes()
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.blocks.as_mut_bytes()
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zeroed() {
        let mut b = AlignedBuf::zeroed(3 * BLOCK_SIZE);
        assert_eq!(b.as_slice().as_ptr() as usize % BLOCK_SIZE, 0);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        b.as_mut_slice()[5000] = 7;
        assert_eq!(b.as_slice()[5000], 7);
        assert_eq!(AlignedBuf::from_padded(&[1; 10]).len(), BLOCK_SIZE);
        assert!(AlignedBuf::zeroed(0).is_empty());
    }
}
