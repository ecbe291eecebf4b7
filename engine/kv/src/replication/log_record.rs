//! The Raft log's records in the shard's WAL.
//!
//! Every record carries `(range id, term, index)` in the WAL header
//! ([`RecordMeta`]); the payload holds only what the header cannot:
//!
//! | kind | record | header term / index | payload |
//! |---:|---|---|---|
//! | 1 | log entry | entry term / entry index | entry kind (1 byte), then the data (an encoded KV `WriteBatch` for a normal entry) |
//! | 2 | hard state | term / commit index | vote: u64 little-endian, 0 = none |
//! | 3 | log base | term / index of the last entry the log dropped | the configuration as of that index (`Membership::encode`) |
//! | 4 | range removed | 0 / 0 | none |
//!
//! A *log base* says "range r's log starts after (index, term)": everything
//! up to that index is applied and flushed into the LSM's tables, so the
//! entries were released to WAL truncation. It plays the part of a Raft
//! snapshot whose data is the LSM itself.
//!
//! A *range removed* record ends a range's log on this shard (the range
//! moved to another shard, or lost a conflict at start-up): recovery drops
//! every earlier record of the range and starts no group for it. It stays
//! pinned, because the LSM keeps the range's applied index in its manifest
//! and recovery must tell a removed range from a log that went missing.
//! Range ids are never reused, so nothing follows it.
//!
//! Decoding never panics on bytes from the disk: a malformed record is an
//! error naming its range and index (the WAL checksums make that
//! corruption, not a torn write).

use teller_raft::multi::RangeId;
use teller_raft::{Entry, EntryKind, HardState, Membership, SnapshotMeta};
use teller_storage::wal::RecordMeta;

pub const KIND_ENTRY: u8 = 1;
pub const KIND_HARD_STATE: u8 = 2;
pub const KIND_LOG_BASE: u8 = 3;
pub const KIND_RANGE_REMOVED: u8 = 4;

/// Retention slots of the single-instance records (`wal::Retention::pin`).
pub const SLOT_HARD_STATE: u8 = 0;
pub const SLOT_LOG_BASE: u8 = 1;
pub const SLOT_RANGE_REMOVED: u8 = 2;

const ENTRY_NORMAL: u8 = 1;
const ENTRY_CONF_CHANGE: u8 = 2;
const ENTRY_EMPTY: u8 = 3;

/// A record as the Raft layer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftRecord {
    Entry {
        range: RangeId,
        entry: Entry,
    },
    HardState {
        range: RangeId,
        hard_state: HardState,
    },
    LogBase {
        range: RangeId,
        base: SnapshotMeta,
    },
    RangeRemoved {
        range: RangeId,
    },
}

impl RaftRecord {
    pub fn range(&self) -> RangeId {
        match self {
            RaftRecord::Entry { range, .. }
            | RaftRecord::HardState { range, .. }
            | RaftRecord::LogBase { range, .. }
            | RaftRecord::RangeRemoved { range } => *range,
        }
    }

    /// The WAL header and payload of the record.
    pub fn encode(&self) -> (RecordMeta, Vec<u8>) {
        match self {
            RaftRecord::Entry { range, entry } => {
                let mut payload = Vec::with_capacity(1 + entry.data.len());
                payload.push(match entry.kind {
                    EntryKind::Normal => ENTRY_NORMAL,
                    EntryKind::ConfChange => ENTRY_CONF_CHANGE,
                    EntryKind::Empty => ENTRY_EMPTY,
                });
                payload.extend_from_slice(&entry.data);
                (meta(KIND_ENTRY, *range, entry.term, entry.index), payload)
            }
            RaftRecord::HardState { range, hard_state } => {
                let vote = hard_state.vote.unwrap_or(0);
                (
                    meta(KIND_HARD_STATE, *range, hard_state.term, hard_state.commit),
                    vote.to_le_bytes().to_vec(),
                )
            }
            RaftRecord::LogBase { range, base } => (
                meta(KIND_LOG_BASE, *range, base.term, base.index),
                base.membership.encode(),
            ),
            RaftRecord::RangeRemoved { range } => {
                (meta(KIND_RANGE_REMOVED, *range, 0, 0), Vec::new())
            }
        }
    }

    /// The record of a WAL header and payload.
    pub fn decode(meta: &RecordMeta, payload: &[u8]) -> Result<RaftRecord, String> {
        let range = meta.range_id;
        let bad = |what: &str| {
            format!(
                "malformed raft {what} record of range {range} at index {}",
                meta.index
            )
        };
        match meta.kind {
            KIND_ENTRY => {
                let (&kind, data) = payload.split_first().ok_or_else(|| bad("entry"))?;
                let kind = match kind {
                    ENTRY_NORMAL => EntryKind::Normal,
                    ENTRY_CONF_CHANGE => EntryKind::ConfChange,
                    ENTRY_EMPTY => EntryKind::Empty,
                    _ => return Err(bad("entry")),
                };
                if meta.index == 0 {
                    return Err(bad("entry"));
                }
                let entry = Entry {
                    term: meta.term,
                    index: meta.index,
                    kind,
                    data: data.to_vec(),
                };
                Ok(RaftRecord::Entry { range, entry })
            }
            KIND_HARD_STATE => {
                let vote: [u8; 8] = payload.try_into().map_err(|_| bad("hard state"))?;
                let vote = u64::from_le_bytes(vote);
                let hard_state = HardState {
                    term: meta.term,
                    vote: (vote != 0).then_some(vote),
                    commit: meta.index,
                };
                Ok(RaftRecord::HardState { range, hard_state })
            }
            KIND_LOG_BASE => {
                let membership = Membership::decode(payload).map_err(|_| bad("log base"))?;
                let base = SnapshotMeta {
                    index: meta.index,
                    term: meta.term,
                    membership,
                };
                Ok(RaftRecord::LogBase { range, base })
            }
            KIND_RANGE_REMOVED => {
                if !payload.is_empty() {
                    return Err(bad("range removed"));
                }
                Ok(RaftRecord::RangeRemoved { range })
            }
            kind => Err(format!(
                "unknown raft record kind {kind} of range {range} at index {}",
                meta.index
            )),
        }
    }
}

fn meta(kind: u8, range: RangeId, term: u64, index: u64) -> RecordMeta {
    RecordMeta {
        kind,
        range_id: range,
        term,
        index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: RaftRecord) {
        let (meta, payload) = r.encode();
        assert_eq!(RaftRecord::decode(&meta, &payload), Ok(r));
    }

    #[test]
    fn records_round_trip_and_bad_bytes_are_errors() {
        for kind in [EntryKind::Normal, EntryKind::ConfChange, EntryKind::Empty] {
            round_trip(RaftRecord::Entry {
                range: 7,
                entry: Entry {
                    term: 3,
                    index: 9,
                    kind,
                    data: vec![1, 2, 3],
                },
            });
        }
        for vote in [None, Some(4)] {
            round_trip(RaftRecord::HardState {
                range: 2,
                hard_state: HardState {
                    term: 5,
                    vote,
                    commit: 11,
                },
            });
        }
        round_trip(RaftRecord::LogBase {
            range: 1,
            base: SnapshotMeta {
                index: 40,
                term: 2,
                membership: Membership::new(vec![1]),
            },
        });
        let m = meta(KIND_ENTRY, 1, 1, 1);
        assert!(RaftRecord::decode(&m, &[]).is_err());
        assert!(RaftRecord::decode(&m, &[9]).is_err());
        let m = meta(KIND_HARD_STATE, 1, 1, 1);
        assert!(RaftRecord::decode(&m, &[1, 2]).is_err());
        let m = meta(KIND_LOG_BASE, 1, 1, 1);
        assert!(RaftRecord::decode(&m, &[7, 7, 7]).is_err());
        round_trip(RaftRecord::RangeRemoved { range: 12 });
        let m = meta(KIND_RANGE_REMOVED, 1, 0, 0);
        assert!(RaftRecord::decode(&m, &[1]).is_err());
        let m = meta(0x42, 1, 1, 1);
        assert!(RaftRecord::decode(&m, &[]).is_err());
    }
}
