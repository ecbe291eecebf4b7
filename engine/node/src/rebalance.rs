//! The rebalancer: keeps range counts (and then bytes) even over the
//! shards of the node, so that every core does its share of KV work.
//!
//! Shard 0 runs it. Every `storage.rebalance_interval_ms` it asks each shard
//! for its ranges and sizes, and [`plan`] — a pure function of those —
//! picks at most one move; the owner of the range carries it out
//! ([`crate::range_move`]). One move per interval, one at a time, is the
//! rate limit: a move freezes its range for as long as it streams.
//!
//! [`plan`]:
//! - **Counts first.** When the busiest shard has two ranges or more than
//!   the idlest, move one of its ranges there: the one whose bytes bring
//!   the two shards' bytes closest.
//! - **Then bytes.** When counts are within one, and the heaviest shard by
//!   bytes also has more ranges than the lightest, move a range whose bytes
//!   are less than half the difference (so the difference strictly shrinks)
//!   — but only when the difference exceeds [`BYTES_IMBALANCE_PERCENT`] of
//!   the mean, to avoid churn. A range count can never grow lopsided this
//!   way, and as every bytes move shrinks the difference, moves cannot
//!   cycle while sizes hold still.

use std::rc::Rc;
use std::time::Duration;

use crate::mesh::ShardId;
use crate::range::{KvShard, ShardRanges};
use crate::range_move::move_range;
use crate::shard::{ShardRequest, ShardResponse};

/// Bytes imbalance tolerated when counts are even, in percent of the mean
/// bytes per shard.
pub const BYTES_IMBALANCE_PERCENT: u64 = 25;

/// A range and its size, as the rebalancer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeLoad {
    pub range_id: u64,
    pub owner: ShardId,
    pub bytes: u64,
}

/// A move [`plan`] chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub range_id: u64,
    pub from: ShardId,
    pub to: ShardId,
}

/// At most one move that evens out `ranges` over `shards` shards (see the
/// module docs).
pub fn plan(ranges: &[RangeLoad], shards: usize) -> Option<Move> {
    if shards < 2 {
        return None;
    }
    let mut counts = vec![0u64; shards];
    let mut bytes = vec![0u64; shards];
    for r in ranges.iter().filter(|r| r.owner < shards) {
        counts[r.owner] += 1;
        bytes[r.owner] += r.bytes;
    }
    let by_count = |s: &ShardId| (counts[*s], bytes[*s]);
    let from = (0..shards).max_by_key(by_count)?;
    let to = (0..shards).min_by_key(by_count)?;
    if counts[from] >= counts[to] + 2 {
        let best = ranges.iter().filter(|r| r.owner == from).min_by_key(|r| {
            let after_from = bytes[from] - r.bytes;
            let after_to = bytes[to] + r.bytes;
            after_from.abs_diff(after_to)
        })?;
        return Some(Move {
            range_id: best.range_id,
            from,
            to,
        });
    }
    let heavy = (0..shards).max_by_key(|s| (bytes[*s], counts[*s]))?;
    let light = (0..shards).min_by_key(|s| (bytes[*s], counts[*s]))?;
    let diff = bytes[heavy] - bytes[light];
    let mean = bytes.iter().sum::<u64>() / shards as u64;
    if counts[heavy] <= counts[light] || diff * 100 <= mean * BYTES_IMBALANCE_PERCENT {
        return None;
    }
    let best = ranges
        .iter()
        .filter(|r| r.owner == heavy && r.bytes > 0 && r.bytes * 2 < diff)
        .max_by_key(|r| r.bytes)?;
    Some(Move {
        range_id: best.range_id,
        from: heavy,
        to: light,
    })
}

/// Runs the rebalancer on shard 0 until the node stops.
pub async fn run(kv: Rc<KvShard>, interval: Duration) {
    loop {
        glommio::timer::sleep(interval).await;
        if kv.is_closing() {
            return;
        }
        let Some(loads) = gather(&kv).await else {
            continue;
        };
        let Some(m) = plan(&loads, kv.shards()) else {
            continue;
        };
        let result = if m.from == kv.shard {
            move_range(&kv, m.range_id, m.to).await.map(|_| ())
        } else {
            match kv.mesh() {
                Some(mesh) => {
                    let request = ShardRequest::MoveRange {
                        range_id: m.range_id,
                        to: m.to,
                    };
                    match mesh.request(m.from, request).await {
                        Ok(ShardResponse::Moved(result)) => result,
                        Ok(_) => Err("unexpected answer to a move".into()),
                        Err(e) => Err(e.to_string()),
                    }
                }
                None => Err("no shard mesh".into()),
            }
        };
        if let Err(error) = result {
            tracing::info!(range = m.range_id, from = m.from, to = m.to, %error, "range move did not happen");
        }
    }
}

/// Every shard's ranges and sizes; `None` while any shard is not ready.
async fn gather(kv: &KvShard) -> Option<Vec<RangeLoad>> {
    let mut loads = Vec::new();
    for shard in 0..kv.shards() {
        let ranges: ShardRanges = if shard == kv.shard {
            kv.shard_ranges()?
        } else {
            kv.peer_ranges(shard).await?
        };
        if !ranges.ready {
            return None;
        }
        loads.extend(ranges.ranges.into_iter().map(|info| RangeLoad {
            range_id: info.desc.id,
            owner: shard,
            bytes: info.approx_bytes,
        }));
    }
    Some(loads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(spec: &[(ShardId, u64)]) -> Vec<RangeLoad> {
        spec.iter()
            .enumerate()
            .map(|(i, &(owner, bytes))| RangeLoad {
                range_id: i as u64 + 1,
                owner,
                bytes,
            })
            .collect()
    }

    /// Applies plans until none is left; returns the moves.
    fn settle(mut ranges: Vec<RangeLoad>, shards: usize) -> (Vec<RangeLoad>, usize) {
        let mut moves = 0;
        while let Some(m) = plan(&ranges, shards) {
            let r = ranges
                .iter_mut()
                .find(|r| r.range_id == m.range_id)
                .unwrap();
            assert_eq!(r.owner, m.from);
            assert_ne!(m.from, m.to);
            r.owner = m.to;
            moves += 1;
            assert!(moves < 1000, "plans do not converge");
        }
        (ranges, moves)
    }

    fn counts(ranges: &[RangeLoad], shards: usize) -> Vec<usize> {
        (0..shards)
            .map(|s| ranges.iter().filter(|r| r.owner == s).count())
            .collect()
    }

    #[test]
    fn all_ranges_on_one_shard_spread_evenly() {
        let ranges = load(&[(0, 100); 11]);
        let (after, moves) = settle(ranges, 2);
        assert_eq!(counts(&after, 2), vec![6, 5]);
        assert_eq!(moves, 5);
        let ranges = load(&[(2, 10); 12]);
        let (after, _) = settle(ranges, 3);
        assert_eq!(counts(&after, 3), vec![4, 4, 4]);
    }

    #[test]
    fn even_counts_stay_put_unless_bytes_are_lopsided() {
        assert_eq!(plan(&load(&[(0, 100), (1, 100)]), 2), None);
        assert_eq!(plan(&load(&[(0, 100), (1, 90), (0, 95)]), 2), None);
        // Counts 2 vs 1, bytes 1000 vs 10: the small range moves over.
        let m = plan(&load(&[(0, 900), (0, 100), (1, 10)]), 2).unwrap();
        assert_eq!(
            m,
            Move {
                range_id: 2,
                from: 0,
                to: 1
            }
        );
        let (after, moves) = settle(load(&[(0, 900), (0, 100), (1, 10)]), 2);
        assert_eq!(moves, 1);
        assert_eq!(counts(&after, 2), vec![1, 2]);
    }

    #[test]
    fn the_count_move_picks_the_range_that_evens_bytes() {
        let m = plan(&load(&[(0, 10), (0, 500), (0, 40), (1, 0)]), 2).unwrap();
        // 550 vs 0 after the move of 500 → 50 vs 500; of 40 → 510 vs 40;
        // of 10 → 540 vs 10: the 500-byte range evens bytes best.
        assert_eq!(m.range_id, 2);
        assert_eq!(plan(&[], 2), None);
        assert_eq!(plan(&load(&[(0, 1), (0, 1), (0, 1)]), 1), None);
    }
}
