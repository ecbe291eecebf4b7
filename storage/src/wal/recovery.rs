//! Recovery: find the valid prefix of the log, cut a torn tail, refuse corruption.
//!
//! # The rule
//! Segments are visited in sequence order; each must start, at offset 0, with the
//! LSN its name announces, and within a segment LSNs rise by one. Scanning a segment
//! stops at the first position that is not the expected next record (bad checksum,
//! wrong segment, wrong LSN, or a zero header on a block boundary). Call that LSN
//! the *stop LSN*. Whatever lies beyond is either
//! - the torn tail of the last sync batch, which a crash may leave in any state, or
//! - damage to records that had been synced (corruption).
//!
//! The writer never starts a batch before the previous one is durable, and every
//! record names the first LSN of its batch (`batch_lsn`). So if any valid record
//! beyond the stop point has `batch_lsn > stop LSN`, its batch was written after the
//! batch holding the stop LSN was acknowledged durable: that is **corruption** and
//! recovery fails. Otherwise the rest is a torn tail and is cut. Batches start on
//! block boundaries, so looking at block boundaries suffices.
//!
//! A segment whose name announces an LSN beyond the expected one was created for
//! the torn batch (it is garbage, removed by recovery) unless it holds a later
//! batch (corruption again). A segment announcing the expected LSN continues the
//! log: recovery always starts a fresh segment, so a torn tail is never appended to.
//!
//! Limitation: damage inside the *last* batch ever written cannot be told from a
//! torn write (no later batch vouches for it) and is cut like one.

use super::format::{block_ceil, parse, Parsed, RecordHeader, HEADER_BYTES};
use super::{Lsn, WalError};
use crate::disk::BLOCK_SIZE;

/// What recovery makes of one segment.
#[derive(Debug)]
pub enum Verdict {
    /// Part of the log: its valid records (possibly none).
    Live(SegmentScan),
    /// Written only by a torn batch: to be removed.
    Garbage,
}

/// The pure decision procedure of recovery: fed the segments in sequence order,
/// judges each by the rule in the module docs. No I/O.
#[derive(Debug)]
pub struct Replay {
    payload_max: usize,
    /// The LSN the next segment must start with; `None` before the first segment.
    expected: Option<Lsn>,
    seq_last: Option<u64>,
}

impl Replay {
    pub fn new(payload_max: usize) -> Self {
        Replay {
            payload_max,
            expected: None,
            seq_last: None,
        }
    }

    /// Judges segment `seq`, named to start at `first_lsn`, whose bytes are `buf`.
    pub fn segment(&mut self, seq: u64, first_lsn: Lsn, buf: &[u8]) -> Result<Verdict, WalError> {
        let corrupt = |offset: usize, detail: String| WalError::Corruption {
            segment: seq,
            offset: offset as u64,
            detail,
        };
        if self.seq_last.is_some_and(|last| seq <= last) {
            return Err(corrupt(0, format!("segment sequence {seq} out of order")));
        }
        self.seq_last = Some(seq);
        match self.expected {
            Some(e) if first_lsn < e => {
                return Err(corrupt(
                    0,
                    format!("segment starts at {first_lsn:?}, log is at {e:?}"),
                ));
            }
            Some(e) if first_lsn > e => {
                return match later_batch(buf, 0, seq, e, self.payload_max) {
                    Some((at, lsn)) => Err(corrupt(
                        at,
                        format!("{lsn:?} of a later batch follows missing {e:?}"),
                    )),
                    None => Ok(Verdict::Garbage),
                };
            }
            _ => {}
        }
        let scan = scan_segment(buf, seq, first_lsn, self.payload_max);
        let stop = scan.end_lsn;
        if let Some((at, lsn)) = later_batch(buf, scan.stop_offset, seq, stop, self.payload_max) {
            return Err(corrupt(
                at,
                format!("{lsn:?} of a later batch follows damaged {stop:?}"),
            ));
        }
        self.expected = Some(stop);
        Ok(Verdict::Live(scan))
    }

    /// The LSN the log continues with after the segments seen so far.
    pub fn next_lsn(&self) -> Lsn {
        self.expected.unwrap_or(Lsn(1))
    }
}

/// The valid prefix of one segment.
#[derive(Debug)]
pub struct SegmentScan {
    /// Offsets and headers of the valid records, in LSN order.
    pub records: Vec<(usize, RecordHeader)>,
    /// The LSN the next record would carry (the stop LSN).
    pub end_lsn: Lsn,
    /// The offset where scanning stopped.
    pub stop_offset: usize,
}

/// Scans segment `seq` (bytes `buf`) whose first record should be `first_lsn`.
pub fn scan_segment(buf: &[u8], seq: u64, first_lsn: Lsn, payload_max: usize) -> SegmentScan {
    let mut records = Vec::new();
    let mut expected = first_lsn;
    let mut at = 0;
    while at + HEADER_BYTES <= buf.len() {
        if BLOCK_SIZE - at % BLOCK_SIZE < HEADER_BYTES {
            at = block_ceil(at);
            continue;
        }
        match parse(buf, at, seq, payload_max) {
            Parsed::Zero if at % BLOCK_SIZE != 0 => at = block_ceil(at),
            Parsed::Valid(h) if h.lsn.get() == expected.0 => {
                records.push((at, h));
                at += HEADER_BYTES + h.len.get() as usize;
                expected = Lsn(expected.0 + 1);
            }
            Parsed::Zero | Parsed::Valid(_) | Parsed::Invalid => break,
        }
    }
    SegmentScan {
        records,
        end_lsn: expected,
        stop_offset: at,
    }
}

/// The first valid record at a block boundary from `from` on whose batch began
/// after `stop_lsn`: evidence that records before it had been synced. Returns its
/// offset and LSN.
pub fn later_batch(
    buf: &[u8],
    from: usize,
    seq: u64,
    stop_lsn: Lsn,
    payload_max: usize,
) -> Option<(usize, Lsn)> {
    (block_ceil(from)..buf.len())
        .step_by(BLOCK_SIZE)
        .find_map(|at| match parse(buf, at, seq, payload_max) {
            Parsed::Valid(h) if h.batch_lsn.get() > stop_lsn.0 => Some((at, Lsn(h.lsn.get()))),
            _ => None,
        })
}
