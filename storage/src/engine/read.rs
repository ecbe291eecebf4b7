//! Point reads: the newest version of a key at or below a read timestamp.
//!
//! Sources are visited in precedence order (see [`version`](super::version)).
//! In MVCC an older source may hold a *newer* timestamp (a version written late
//! at an old timestamp is possible), so the answer is the greatest timestamp
//! `<= read_ts` over all sources not hidden by a newer source's range tombstone;
//! a tie goes to the newer source. Two prunings keep this cheap: a source whose
//! largest timestamp is not above the best found cannot improve it (only its
//! range tombstones still matter), and a table's bloom filter and key bounds
//! skip it outright. When timestamps grow with write order — the common case —
//! a read stops looking at data after the first source that has the key.

use super::version::{LiveTable, View};
use super::EngineError;
use crate::disk::DiskFile;
use crate::manifest::LEVELS;
use crate::sst::bloom::key_hash;
use crate::sst::table::{owned, OwnedValue};
use crate::sst::BlockCache;
use crate::timestamp::Timestamp;
use std::cell::RefCell;
use std::rc::Rc;

/// A version as reads return it: its timestamp and value (`None`: a tombstone).
pub type Found = (Timestamp, OwnedValue);

fn improves(best: &Option<Found>, ts: Timestamp) -> bool {
    best.as_ref().is_none_or(|b| ts > b.0)
}

/// The newest version of `key` at or below `read_ts`, tombstones included.
pub async fn get_version<F: DiskFile>(
    view: &View<F>,
    cache: &RefCell<BlockCache>,
    key: &[u8],
    read_ts: Timestamp,
) -> Result<Option<Found>, EngineError> {
    let mut best: Option<Found> = None;
    for mem in &view.mems {
        let m = mem.table.borrow();
        if improves(&best, m.max_ts()) && m.min_ts() <= read_ts {
            if let Some(e) = m.get(key, read_ts) {
                if improves(&best, e.ts) {
                    best = Some((e.ts, owned(e.value)));
                }
            }
        }
        if m.range_dels().covers(key) {
            return Ok(best);
        }
    }
    let hash = key_hash(key);
    for level in 0..LEVELS {
        let tables: Vec<&Rc<LiveTable<F>>> = if level == 0 {
            view.version.levels[0]
                .iter()
                .filter(|t| t.meta.contains(key))
                .collect()
        } else {
            view.version.find(level, key).into_iter().collect()
        };
        for t in tables {
            if improves(&best, t.meta.max_ts) && t.meta.min_ts <= read_ts {
                if let Some((ts, value)) = t.table.get(key, hash, read_ts, cache).await? {
                    if improves(&best, ts) {
                        best = Some((ts, value));
                    }
                }
            }
            if t.table.range_dels().covers(key) {
                return Ok(best);
            }
        }
    }
    Ok(best)
}
