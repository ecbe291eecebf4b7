//! The node's answer to the SQL layer's `Kv::describe_ranges` (`SHOW
//! RANGES`): which ranges cut a span and which shard owns each.
//!
//! **Source of truth.** Each shard's store knows the ranges it owns, with
//! their generation and size estimate; a shard's routing table only knows
//! what it has heard. The answer therefore starts from the asking shard's
//! routing table and merges in every store's own ranges (its own directly,
//! the others' over the mesh, `ShardRequest::StoreRanges`), the newest
//! generation winning as in routing ([`crate::directory`]). A range whose
//! owner confirmed it carries the owner's size estimate; one known only
//! from the routing table (its owner did not answer) has none.
//!
//! **A moving snapshot.** The stores answer one after another while ranges
//! may split and move. Because every change raises the generation and the
//! routing table already covers the keyspace, the merge covers the span
//! too, except in one race: a shard reports a range's newer halves while
//! the rest of that change is not yet visible anywhere else. The answer is
//! checked to tile the span and read again, at most
//! [`DESCRIBE_ATTEMPTS_MAX`] times, before the caller gets an
//! "unavailable" error. Nothing is written: the routing table is left as
//! it was (a stale route still repairs itself on use).

use std::collections::HashMap;

use teller_sql::kv as sql;

use crate::directory::{DirEntry, Directory};
use crate::routing::MeshTransport;
use crate::shard::{ShardRequest, ShardResponse};

/// Reads of the node's placement before giving up on one that tiles.
pub const DESCRIBE_ATTEMPTS_MAX: usize = 3;

/// The ranges overlapping `span`, in key order, with owners and sizes.
pub async fn describe_ranges(
    transport: &MeshTransport,
    span: &sql::Span,
) -> Result<Vec<sql::RangeDescription>, sql::KvError> {
    if span.is_empty() {
        return Err(sql::KvError::Internal(format!("empty span {span:?}")));
    }
    let mut last_error = String::new();
    for _ in 0..DESCRIBE_ATTEMPTS_MAX {
        let ranges = read_once(transport, span).await;
        match sql::check_tiling(&ranges, span) {
            Ok(()) => return Ok(ranges),
            Err(e) => last_error = e,
        }
    }
    Err(sql::KvError::Unavailable(format!(
        "the placement changed while it was read ({DESCRIBE_ATTEMPTS_MAX} attempts): {last_error}"
    )))
}

async fn read_once(transport: &MeshTransport, span: &sql::Span) -> Vec<sql::RangeDescription> {
    let mut directory = Directory::new();
    for entry in transport.entries() {
        directory.learn(entry);
    }
    let mut sizes: HashMap<u64, u64> = HashMap::new();
    for (owner, infos) in store_ranges(transport).await {
        for info in infos {
            sizes.insert(info.desc.id, info.approx_bytes);
            directory.learn(DirEntry {
                desc: info.desc,
                generation: info.generation,
                owner,
            });
        }
    }
    let span = teller_kv::keys::Span {
        start: span.start.clone(),
        end: span.end.clone(),
    };
    directory
        .overlapping(&span)
        .into_iter()
        .map(|e| sql::RangeDescription {
            range_id: e.desc.id,
            span: sql::Span {
                start: e.desc.span.start,
                end: e.desc.span.end,
            },
            shard: e.owner,
            generation: e.generation,
            approx_bytes: sizes.get(&e.desc.id).copied(),
        })
        .collect()
}

/// Every store's ranges that could be read: this shard's, then each
/// peer's (a peer that cannot answer, starting or stopping, is left out).
async fn store_ranges(transport: &MeshTransport) -> Vec<(usize, Vec<teller_kv::store::RangeInfo>)> {
    let me = transport.shard();
    let mut out = Vec::new();
    if let Some(local) = transport.local_ranges() {
        out.push((me, local));
    }
    let Some(mesh) = transport.mesh() else {
        return out;
    };
    for peer in (0..mesh.shards()).filter(|&p| p != me) {
        if let Ok(ShardResponse::Ranges(Some(r))) =
            mesh.request(peer, ShardRequest::StoreRanges).await
        {
            out.push((peer, r.ranges));
        }
    }
    out
}
