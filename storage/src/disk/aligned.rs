//! [`AlignedBuf`]: a zeroed, 4096-byte-aligned buffer for O_DIRECT I/O.
//!
//! The memory is a glommio `DmaBuffer` (from its global, 4096-aligned
//! allocator), shared through an `Rc`: the real disk hands that `Rc` to
//! io_uring (`DmaFile::write_rc_at`), so a write never copies the caller's
//! bytes. The simulated disk just reads the slice.
//!
//! Invariants:
//! - The address and length are multiples of [`BLOCK_SIZE`]; a new buffer is
//!   all zeros (the allocator returns uninitialised memory; [`AlignedBuf::zeroed`]
//!   writes zeros over it before anything reads it).
//! - A buffer is mutated only while nobody else holds its `Rc`. An I/O in flight
//!   holds a clone; if the future that started it was dropped, the kernel may still
//!   be reading the memory, so [`AlignedBuf::as_mut_slice`] then moves to a copy
//!   (copy-on-write) instead of writing under the device.

use super::BLOCK_SIZE;
use glommio::io::DmaBuffer;
use std::rc::Rc;

/// A heap buffer whose address and length are multiples of [`BLOCK_SIZE`].
pub struct AlignedBuf {
    /// `None` for an empty buffer (glommio cannot allocate zero bytes).
    dma: Option<Rc<DmaBuffer>>,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes; `len` must be a multiple of [`BLOCK_SIZE`].
    pub fn zeroed(len: usize) -> Self {
        assert!(
            len.is_multiple_of(BLOCK_SIZE),
            "AlignedBuf length {len} not block-aligned"
        );
        if len == 0 {
            return AlignedBuf { dma: None };
        }
        let mut dma = glommio::allocate_dma_buffer_global(len);
        dma.as_bytes_mut().fill(0);
        assert!(
            (dma.as_ptr() as usize).is_multiple_of(BLOCK_SIZE),
            "DMA buffer not block-aligned"
        );
        AlignedBuf {
            dma: Some(Rc::new(dma)),
        }
    }

    /// A zeroed buffer holding `data`, its length rounded up to a block.
    pub fn from_padded(data: &[u8]) -> Self {
        let mut buf = Self::zeroed(data.len().next_multiple_of(BLOCK_SIZE));
        buf.as_mut_slice()[..data.len()].copy_from_slice(data);
        buf
    }

    pub fn len(&self) -> usize {
        self.dma.as_ref().map_or(0, |d| d.len())
    }

    pub fn is_empty(&self) -> bool {
        self.dma.is_none()
    }

    pub fn as_slice(&self) -> &[u8] {
        self.dma.as_ref().map_or(&[], |d| d.as_bytes())
    }

    /// The bytes, for writing. Copies the buffer first if an I/O still holds it
    /// (see the module docs).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let Some(rc) = self.dma.as_mut() else {
            return &mut [];
        };
        if Rc::get_mut(rc).is_none() {
            let mut copy = glommio::allocate_dma_buffer_global(rc.len());
            copy.as_bytes_mut().copy_from_slice(rc.as_bytes());
            *rc = Rc::new(copy);
        }
        Rc::get_mut(rc)
            .expect("a fresh copy is unshared")
            .as_bytes_mut()
    }

    /// A handle on the same memory (not a copy): for writes in flight while the
    /// owner keeps the buffer. Whichever side writes first moves to a copy.
    pub(crate) fn share(&self) -> AlignedBuf {
        AlignedBuf {
            dma: self.dma.clone(),
        }
    }

    /// The shared DMA memory, for the real disk's zero-copy writes.
    pub(crate) fn dma(&self) -> Option<&Rc<DmaBuffer>> {
        self.dma.as_ref()
    }
}

impl Clone for AlignedBuf {
    /// A deep copy (the clone can be written independently).
    fn clone(&self) -> Self {
        let mut copy = AlignedBuf::zeroed(self.len());
        copy.as_mut_slice().copy_from_slice(self.as_slice());
        copy
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
        assert!(AlignedBuf::zeroed(0).as_slice().is_empty());
    }

    #[test]
    fn clones_are_deep_and_shared_buffers_copy_on_write() {
        let mut a = AlignedBuf::from_padded(b"abc");
        let b = a.clone();
        a.as_mut_slice()[0] = b'x';
        assert_eq!(&b.as_slice()[..3], b"abc");
        // An I/O in flight holds the Rc: writing moves to a copy.
        let in_flight = a.share();
        a.as_mut_slice()[1] = b'y';
        assert_eq!(&in_flight.as_slice()[..3], b"xbc");
        assert_eq!(&a.as_slice()[..3], b"xyc");
        assert_eq!(a.as_slice().as_ptr() as usize % BLOCK_SIZE, 0);
    }
}
