//! [`WriteBatch`]: an atomic group of versioned writes, and its WAL encoding.
//!
//! ```text
//! batch := count varint | op*
//! op    := 1 | key bytes | ts[12] | value bytes      Put
//!        | 2 | key bytes | ts[12]                   Delete (a tombstone version)
//!        | 3 | start bytes | end bytes              DeleteRange (every version in [start, end))
//! bytes := len varint | bytes
//! ```

use super::EngineError;
use crate::codec::{put_bytes, put_varint, Reader};
use crate::memtable::{Memtable, KEY_BYTES_MAX, VALUE_BYTES_MAX};
use crate::timestamp::{Timestamp, TIMESTAMP_BYTES};

const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_DELETE_RANGE: u8 = 3;
/// Most operations in one batch.
pub const BATCH_OPS_MAX: usize = 1 << 20;

/// One write of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Writes `value` as the version of `key` at `ts` (replacing one at the same ts).
    Put {
        key: Vec<u8>,
        ts: Timestamp,
        value: Vec<u8>,
    },
    /// Writes a tombstone version of `key` at `ts`.
    Delete { key: Vec<u8>, ts: Timestamp },
    /// Removes every version of every key in `[start, end)` written before it.
    DeleteRange { start: Vec<u8>, end: Vec<u8> },
}

/// Writes applied atomically: all or none survive a crash, and readers see all
/// or none of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<Op>,
    bytes: usize,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, key: &[u8], ts: Timestamp, value: &[u8]) -> &mut Self {
        self.push(Op::Put {
            key: key.to_vec(),
            ts,
            value: value.to_vec(),
        })
    }

    pub fn delete(&mut self, key: &[u8], ts: Timestamp) -> &mut Self {
        self.push(Op::Delete {
            key: key.to_vec(),
            ts,
        })
    }

    pub fn delete_range(&mut self, start: &[u8], end: &[u8]) -> &mut Self {
        self.push(Op::DeleteRange {
            start: start.to_vec(),
            end: end.to_vec(),
        })
    }

    pub fn push(&mut self, op: Op) -> &mut Self {
        self.bytes += match &op {
            Op::Put { key, value, .. } => key.len() + value.len() + TIMESTAMP_BYTES,
            Op::Delete { key, .. } => key.len() + TIMESTAMP_BYTES,
            Op::DeleteRange { start, end } => start.len() + end.len(),
        };
        self.ops.push(op);
        self
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Key and value bytes in the batch.
    pub fn payload_bytes(&self) -> usize {
        self.bytes
    }

    /// An upper bound of the memtable bytes applying the batch takes.
    pub fn memtable_cost(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value, .. } => Memtable::entry_cost_max(key.len(), value.len()),
                Op::Delete { key, .. } => Memtable::entry_cost_max(key.len(), 0),
                Op::DeleteRange { .. } => 0,
            })
            .sum()
    }

    /// Checks every limit; the error names the first offending operation.
    pub fn validate(&self) -> Result<(), EngineError> {
        if self.ops.len() > BATCH_OPS_MAX {
            return Err(EngineError::InvalidArgument(format!(
                "batch of {} operations exceeds {BATCH_OPS_MAX}",
                self.ops.len()
            )));
        }
        for (i, op) in self.ops.iter().enumerate() {
            let bad = |what: String| {
                Err(EngineError::InvalidArgument(format!(
                    "operation {i}: {what}"
                )))
            };
            match op {
                Op::Put { key, value, .. } if value.len() > VALUE_BYTES_MAX => {
                    return bad(format!(
                        "value of {} bytes exceeds {VALUE_BYTES_MAX}",
                        value.len()
                    ))
                }
                Op::Put { key, .. } | Op::Delete { key, .. } if key.len() > KEY_BYTES_MAX => {
                    return bad(format!(
                        "key of {} bytes exceeds {KEY_BYTES_MAX}",
                        key.len()
                    ))
                }
                Op::DeleteRange { start, end } if start.len().max(end.len()) > KEY_BYTES_MAX => {
                    return bad(format!("range bound exceeds {KEY_BYTES_MAX} bytes"))
                }
                Op::DeleteRange { start, end } if start >= end => {
                    return bad("delete range with start >= end".to_owned())
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes + 8 * self.ops.len() + 8);
        put_varint(&mut out, self.ops.len() as u64);
        for op in &self.ops {
            match op {
                Op::Put { key, ts, value } => {
                    out.push(TAG_PUT);
                    put_bytes(&mut out, key);
                    out.extend_from_slice(&ts.to_bytes());
                    put_bytes(&mut out, value);
                }
                Op::Delete { key, ts } => {
                    out.push(TAG_DELETE);
                    put_bytes(&mut out, key);
                    out.extend_from_slice(&ts.to_bytes());
                }
                Op::DeleteRange { start, end } => {
                    out.push(TAG_DELETE_RANGE);
                    put_bytes(&mut out, start);
                    put_bytes(&mut out, end);
                }
            }
        }
        out
    }

    /// Inverse of [`WriteBatch::encode`]; `None` if the bytes are malformed.
    pub fn decode(bytes: &[u8]) -> Option<WriteBatch> {
        let mut r = Reader::new(bytes);
        let n = r.len(BATCH_OPS_MAX)?;
        let mut batch = WriteBatch::new();
        for _ in 0..n {
            let op = match r.u8()? {
                TAG_PUT => Op::Put {
                    key: r.bytes(KEY_BYTES_MAX)?.to_vec(),
                    ts: Timestamp::decode(r.take(TIMESTAMP_BYTES)?)?,
                    value: r.bytes(VALUE_BYTES_MAX)?.to_vec(),
                },
                TAG_DELETE => Op::Delete {
                    key: r.bytes(KEY_BYTES_MAX)?.to_vec(),
                    ts: Timestamp::decode(r.take(TIMESTAMP_BYTES)?)?,
                },
                TAG_DELETE_RANGE => Op::DeleteRange {
                    start: r.bytes(KEY_BYTES_MAX)?.to_vec(),
                    end: r.bytes(KEY_BYTES_MAX)?.to_vec(),
                },
                _ => return None,
            };
            batch.push(op);
        }
        r.is_empty().then_some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_validate() {
        let mut b = WriteBatch::new();
        b.put(b"k", Timestamp::new(5, 1), b"v")
            .delete(b"k", Timestamp::new(6, 0))
            .delete_range(b"a", b"b");
        assert_eq!(WriteBatch::decode(&b.encode()), Some(b.clone()));
        assert!(b.validate().is_ok());
        let enc = b.encode();
        for cut in 0..enc.len() {
            assert_eq!(WriteBatch::decode(&enc[..cut]), None, "cut at {cut}");
        }
        let mut bad = WriteBatch::new();
        bad.delete_range(b"b", b"a");
        assert!(matches!(
            bad.validate(),
            Err(EngineError::InvalidArgument(_))
        ));
        let mut big = WriteBatch::new();
        big.put(&vec![0; KEY_BYTES_MAX + 1], Timestamp::ZERO, b"");
        assert!(big.validate().is_err());
    }
}
