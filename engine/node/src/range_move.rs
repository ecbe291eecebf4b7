//! Moving a range from one shard of the node to another.
//!
//! On the source shard A, for range R:
//! 1. A hands R's batches back unrun
//!    ([`crate::routing::MeshTransport::begin_move`]:
//!    gateways wait and re-send), closes R and waits until nothing evaluates
//!    on it ([`Store::freeze`]): no write reaches R after this.
//! 2. A streams R's contents — lock records, transaction records, every
//!    version of every key — in chunks of about [`MOVE_CHUNK_BYTES`] over
//!    the mesh. The destination B writes each namespace straight into new
//!    tables of its LSM (`ingest`), made durable at once with a range
//!    tombstone over the namespace's span.
//! 3. B adopts the range under a fresh id R', one generation up: a new Raft
//!    group in B's WAL whose first entry is the descriptor, a read low-water
//!    mark at A's clock (or A's newest read) so that no write lands below a
//!    read A served, and the waits-for edges of transactions anchored in R.
//!    From this entry on, B owns the span.
//! 4. A learns R' and broadcasts it, and stops handing batches back: they
//!    now meet the closed range ("wrong range") at A and re-route to B.
//!    Then A clears R's descriptor through R's log, ends that log (after a
//!    flush) and deletes R's data.
//!
//! **Crashes.** Before step 3's entry is durable A is the only owner; B's
//! partial tables lie outside B's ranges and are deleted when B next joins.
//! After it, both stores may hold a descriptor for the span until A is done;
//! at the next start the higher generation (B's) wins and A drops its copy
//! ([`drop_range`]). A acknowledged nothing on R after step 1, so B's copy
//! has every acknowledged write. The environment variable
//! `TELLER_FAULT_RANGE_MOVE` aborts the process at a named point
//! (`streamed`, `adopted`, `removed`) for the crash tests.

use teller_kv::engine::lsm::to_lsm_ts;
use teller_kv::keys::Span;
use teller_kv::store::{key_hex, ExportChunk, ExportCursor, FrozenRange, RangeHandoff, Store};
use teller_storage::disk::DmaDisk;
use teller_storage::engine::ingest::Ingest;

use crate::directory::DirEntry;
use crate::mesh::ShardId;
use crate::range::KvShard;
use crate::shard::{ShardRequest, ShardResponse};

/// About this many bytes of versions travel in one chunk.
pub const MOVE_CHUNK_BYTES: usize = 256 * 1024;
/// The environment variable naming a fault point of moves (tests only).
pub const FAULT_ENV: &str = "TELLER_FAULT_RANGE_MOVE";

/// A range arriving at this shard.
#[derive(Default)]
pub struct Incoming {
    /// The namespace being written, and its ingestion.
    current: Option<(u8, Ingest<DmaDisk>)>,
    /// Namespaces written, with their engine spans.
    finished: Vec<(u8, (bytes::Bytes, bytes::Bytes))>,
}

/// What a move did.
#[derive(Clone, Debug)]
pub struct MoveReport {
    pub from_range: u64,
    pub to_range: u64,
    pub generation: u64,
    pub span: Span,
    pub bytes: u64,
    pub chunks: u64,
}

/// A span's end as hex, `max` for the end of the keyspace.
pub fn end_hex(span: &Span) -> String {
    span.end.as_deref().map_or("max".to_string(), key_hex)
}

/// Aborts the process at fault point `point` if the environment asks for
/// it (crash tests).
fn fault_point(point: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == point) {
        tracing::error!(point, "fault injected: aborting the process");
        std::process::abort();
    }
}

/// Moves range `range_id` of this shard to shard `to` (see the module docs).
pub async fn move_range(kv: &KvShard, range_id: u64, to: ShardId) -> Result<MoveReport, String> {
    let store = kv.store().ok_or("the store is not open")?;
    if to == kv.shard || kv.mesh().is_none() {
        return Err(format!(
            "shard {} cannot move a range to shard {to}",
            kv.shard
        ));
    }
    if !kv.is_ready() || kv.is_closing() {
        return Err(format!("shard {} is not serving", kv.shard));
    }
    if !kv.transport.begin_move(range_id) {
        return Err(format!("range {range_id} is moving already"));
    }
    tracing::debug!(range = range_id, to, "range move: freezing");
    let frozen = match store.freeze(range_id).await {
        Ok(f) => f,
        Err(e) => {
            kv.transport.end_move(range_id);
            return Err(e.to_string());
        }
    };
    let move_id = rand::random::<u64>();
    let new_id = store.fresh_range_id();
    tracing::debug!(
        range = range_id,
        to,
        move_id,
        "range move: frozen, streaming"
    );
    let handoff = match stream_and_adopt(kv, &store, &frozen, to, move_id, new_id).await {
        Ok(h) => h,
        Err(e) => {
            if let Some(mesh) = kv.mesh() {
                let _ = mesh.request(to, ShardRequest::MoveAbort { move_id }).await;
            }
            store.thaw(frozen);
            kv.transport.end_move(range_id);
            return Err(e);
        }
    };
    let mut report = handoff.1;
    let handoff = handoff.0;
    fault_point("adopted");
    let entry = DirEntry {
        desc: handoff.desc.clone(),
        generation: handoff.generation,
        owner: to,
    };
    kv.transport.learn([entry.clone()]);
    kv.transport.broadcast(vec![entry]);
    // From here a batch for R meets the closed range ("wrong range") and
    // re-routes to the new owner: no need to hand batches back any more.
    kv.transport.end_move(range_id);
    let span = frozen.desc().span;
    tracing::debug!(
        range = range_id,
        to,
        move_id,
        "range move: adopted, removing the source"
    );
    // On failure the range stays closed here: shard `to` owns it, and the
    // next start drops this copy (lower generation).
    store
        .remove(frozen)
        .await
        .map_err(|e| format!("removing range {range_id} after its move: {e}"))?;
    fault_point("removed");
    tracing::debug!(
        range = range_id,
        to,
        move_id,
        "range move: removed, deleting the data"
    );
    kv.wipe(&span).await?;
    report.span = span;
    tracing::info!(
        from_shard = kv.shard,
        to_shard = to,
        range = range_id,
        new_range = report.to_range,
        generation = report.generation,
        start = %key_hex(&report.span.start),
        end = %end_hex(&report.span),
        bytes = report.bytes,
        chunks = report.chunks,
        "range moved"
    );
    Ok(report)
}

/// Steps 2 and 3: the data, then the adoption.
async fn stream_and_adopt(
    kv: &KvShard,
    store: &Store,
    frozen: &FrozenRange,
    to: ShardId,
    move_id: u64,
    new_id: u64,
) -> Result<(RangeHandoff, MoveReport), String> {
    let mesh = kv.mesh().ok_or("no shard mesh")?;
    let mut report = MoveReport {
        from_range: frozen.desc().id,
        to_range: new_id,
        generation: frozen.generation() + 1,
        span: frozen.desc().span,
        bytes: 0,
        chunks: 0,
    };
    let mut cursor = ExportCursor::new();
    while let Some(chunk) = store
        .export(frozen, &mut cursor, MOVE_CHUNK_BYTES)
        .await
        .map_err(|e| format!("reading range {}: {e}", report.from_range))?
    {
        report.chunks += 1;
        report.bytes += chunk
            .entries
            .iter()
            .map(|(k, _, v)| (k.len() + v.as_ref().map_or(0, |v| v.len())) as u64)
            .sum::<u64>();
        let request = ShardRequest::MoveChunk {
            move_id,
            chunk: Box::new(chunk),
        };
        expect_moved(mesh.request(to, request).await, to)?;
    }
    fault_point("streamed");
    let handoff = store.handoff(frozen, new_id);
    let request = ShardRequest::MoveAdopt {
        move_id,
        handoff: Box::new(handoff.clone()),
    };
    expect_moved(mesh.request(to, request).await, to)?;
    Ok((handoff, report))
}

fn expect_moved(
    answer: Result<ShardResponse, crate::mesh::MeshError>,
    to: ShardId,
) -> Result<(), String> {
    match answer {
        Ok(ShardResponse::Moved(result)) => result,
        Ok(_) => Err(format!("shard {to} answered a move with something else")),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes one chunk of an arriving range (on the destination).
pub async fn receive_chunk(kv: &KvShard, move_id: u64, chunk: ExportChunk) -> Result<(), String> {
    if !kv.is_ready() || kv.is_closing() {
        return Err(format!("shard {} is not taking ranges", kv.shard));
    }
    let storage = kv.storage().ok_or("the shard's storage is not open")?;
    let lsm = &storage.lsm;
    let taken = kv.incoming.borrow_mut().remove(&move_id);
    let mut incoming = taken.unwrap_or_default();
    let result: Result<(), String> = async {
        if incoming.current.is_none() {
            if incoming.finished.iter().any(|(ns, _)| *ns == chunk.ns) {
                return Err(format!(
                    "namespace {} of move {move_id} sent twice",
                    chunk.ns
                ));
            }
            let ingest = lsm
                .ingest_begin(&chunk.span.0, &chunk.span.1)
                .map_err(|e| e.to_string())?;
            incoming.current = Some((chunk.ns, ingest));
        }
        let (ns, ingest) = incoming.current.as_mut().expect("an ingestion in progress");
        if *ns != chunk.ns {
            return Err(format!(
                "move {move_id}: namespace {} before {ns} ended",
                chunk.ns
            ));
        }
        for (key, ts, value) in &chunk.entries {
            lsm.ingest_add(ingest, key, to_lsm_ts(*ts), value.as_deref())
                .await
                .map_err(|e| e.to_string())?;
        }
        if chunk.ns_done {
            let (ns, ingest) = incoming.current.take().expect("an ingestion in progress");
            lsm.ingest_finish(ingest, None)
                .await
                .map_err(|e| e.to_string())?;
            incoming.finished.push((ns, chunk.span.clone()));
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            kv.incoming.borrow_mut().insert(move_id, incoming);
            Ok(())
        }
        Err(e) => {
            discard(kv, incoming).await;
            Err(format!("shard {}: receiving a range: {e}", kv.shard))
        }
    }
}

/// Takes over an arriving range once its data is written (on the
/// destination).
pub async fn receive_adopt(
    kv: &KvShard,
    move_id: u64,
    handoff: RangeHandoff,
) -> Result<(), String> {
    let incoming = kv.incoming.borrow_mut().remove(&move_id);
    let Some(incoming) = incoming else {
        return Err(format!(
            "shard {}: no data arrived for move {move_id}",
            kv.shard
        ));
    };
    let complete = incoming.current.is_none()
        && teller_kv::store::RANGE_NAMESPACES
            .iter()
            .all(|ns| incoming.finished.iter().any(|(f, _)| f == ns));
    if !complete {
        discard(kv, incoming).await;
        return Err(format!(
            "shard {}: move {move_id} arrived incomplete",
            kv.shard
        ));
    }
    let store = kv.store().ok_or("the store is not open")?;
    let entry = DirEntry {
        desc: handoff.desc.clone(),
        generation: handoff.generation,
        owner: kv.shard,
    };
    let source = handoff.source_range;
    store
        .adopt(handoff)
        .await
        .map_err(|e| format!("shard {}: adopting range {}: {e}", kv.shard, entry.desc.id))?;
    // Logged before anything else can run on this shard (no await since the
    // range went live), so the log has it before any split of it.
    tracing::info!(
        shard = kv.shard,
        range = entry.desc.id,
        source_range = source,
        generation = entry.generation,
        start = %key_hex(&entry.desc.span.start),
        end = %end_hex(&entry.desc.span),
        "range adopted"
    );
    kv.transport.learn([entry]);
    Ok(())
}

/// Forgets an arriving range (the source gave up).
pub async fn receive_abort(kv: &KvShard, move_id: u64) {
    let incoming = kv.incoming.borrow_mut().remove(&move_id);
    if let Some(incoming) = incoming {
        discard(kv, incoming).await;
    }
}

/// Removes what an abandoned arrival wrote (best effort: leftovers lie
/// outside the shard's ranges and go at its next start).
async fn discard(kv: &KvShard, incoming: Incoming) {
    let Some(storage) = kv.storage() else { return };
    if let Some((_, ingest)) = incoming.current {
        storage.lsm.ingest_abort(ingest).await;
    }
    for (_, (start, end)) in incoming.finished {
        let _ = storage
            .lsm
            .ingest(&start, &end, std::iter::empty(), None)
            .await;
    }
}

/// Removes range `range_id` from this shard for good: another shard holds a
/// newer generation of it (found at start-up).
pub async fn drop_range(kv: &KvShard, range_id: u64) -> Result<(), String> {
    let store = kv.store().ok_or("the store is not open")?;
    let frozen = store
        .freeze(range_id)
        .await
        .map_err(|e| format!("dropping range {range_id}: {e}"))?;
    let span = frozen.desc().span;
    store
        .remove(frozen)
        .await
        .map_err(|e| format!("dropping range {range_id}: {e}"))?;
    kv.wipe(&span).await
}
