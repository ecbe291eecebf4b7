//! Opening an engine: manifest + tables + WAL replay.
//!
//! 1. Read the manifest (a fresh directory gets an empty one, written first).
//! 2. Remove leftovers: `MANIFEST.tmp` and tables the manifest does not name
//!    (outputs of a flush or compaction whose manifest never became durable).
//! 3. Open every named table, verifying header, footer and meta blocks; a
//!    missing or damaged table is corruption (the engine refuses to start rather
//!    than serve a partial state).
//! 4. Recover the WAL: engine batches above the flushed LSN are re-applied to
//!    memtables in LSN order; Raft records go to the caller's visitor, which also
//!    gets each range's persisted applied index in [`Recovered`].

use super::batch::WriteBatch;
use super::commit::CommitQueue;
use super::version::{LiveTable, MemState, Version};
use super::{
    Engine, EngineConfig, EngineError, EngineMetrics, Recovered, State, ENGINE_KIND_MIN,
    KIND_WRITE_BATCH,
};
use crate::disk::{Disk, DiskError, OpenMode};
use crate::manifest::{self, ManifestState, LEVELS, MANIFEST_TMP_NAME};
use crate::sst::format::{parse_table_name, table_name};
use crate::sst::{BlockCache, Table};
use crate::sync::{LocalMutex, Notify};
use crate::timestamp::Timestamp;
use crate::wal::{Lsn, Record, Wal};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::rc::Rc;

impl<D: Disk> Engine<D> {
    /// Opens (or creates) the engine in `dir`, which must exist. `visit_raft`
    /// receives every Raft record (kinds below [`ENGINE_KIND_MIN`]) still in the
    /// WAL, in LSN order; records at or below a range's applied index in
    /// [`Recovered::applied`] are already applied.
    pub async fn open(
        disk: D,
        dir: &Path,
        config: EngineConfig,
        mut visit_raft: impl FnMut(Record<'_>),
    ) -> Result<(Engine<D>, Recovered), EngineError> {
        config.validate()?;
        let manifest = match manifest::read(&disk, dir).await? {
            Some(m) => m,
            None => {
                let m = ManifestState::empty();
                manifest::write(&disk, dir, &m).await.map_err(|(e, _)| e)?;
                m
            }
        };
        let orphans_removed = remove_leftovers(&disk, dir, &manifest).await?;
        let version = open_tables(&disk, dir, &manifest).await?;
        let mut batches: Vec<(Lsn, WriteBatch)> = Vec::new();
        let mut bad: Option<String> = None;
        let mut raft_records = 0;
        let flushed = manifest.flushed_lsn;
        let (wal, _) = Wal::recover(disk.clone(), dir, config.wal.clone(), |r| {
            if r.meta.kind < ENGINE_KIND_MIN {
                raft_records += 1;
                visit_raft(r);
            } else if r.meta.kind != KIND_WRITE_BATCH {
                bad.get_or_insert(format!(
                    "unknown engine record kind {} at {:?}",
                    r.meta.kind, r.lsn
                ));
            } else if r.lsn > flushed {
                match WriteBatch::decode(r.payload) {
                    Some(b) => batches.push((r.lsn, b)),
                    None => {
                        bad.get_or_insert(format!("malformed write batch at {:?}", r.lsn));
                    }
                }
            }
        })
        .await?;
        if let Some(detail) = bad {
            return Err(EngineError::Corruption(detail));
        }
        if wal.next_lsn() <= flushed {
            return Err(EngineError::Corruption(format!(
                "the WAL ends at {:?}, before the flushed {flushed:?}",
                wal.next_lsn()
            )));
        }
        let recovered = Recovered {
            applied: manifest.applied.clone(),
            batches_replayed: batches.len() as u64,
            raft_records,
            tables: version.table_count(),
            orphans_removed,
        };
        let engine = Engine::assemble(disk, dir, config, wal, manifest, version);
        for (lsn, batch) in &batches {
            engine.apply_to_memtable(batch, Some(*lsn), None);
        }
        tracing::info!(dir = %dir.display(), ?recovered, "storage engine opened");
        Ok((engine, recovered))
    }

    fn assemble(
        disk: D,
        dir: &Path,
        config: EngineConfig,
        wal: Wal<D>,
        manifest: ManifestState,
        version: Version<D::File>,
    ) -> Self {
        let record_payload_max = wal.record_payload_max();
        let state = State {
            active: Rc::new(MemState::new(config.memtable_bytes, config.seed)),
            immutables: VecDeque::new(),
            version: Rc::new(version),
            next_file: manifest.next_file_number,
            manifest,
            read_only: None,
            raft_floor: if config.raft_log {
                Lsn(0)
            } else {
                Lsn(u64::MAX)
            },
            gc_horizon: Timestamp::ZERO,
            compact_pointers: vec![Vec::new(); LEVELS],
        };
        Engine {
            disk,
            dir: dir.to_path_buf(),
            cache: Rc::new(RefCell::new(BlockCache::new(config.block_cache_bytes))),
            mem_seed: Cell::new(config.seed.wrapping_add(1)),
            config,
            wal: LocalMutex::new(wal),
            commit: RefCell::new(CommitQueue::default()),
            state: RefCell::new(state),
            background: LocalMutex::new(()),
            work: Notify::new(),
            metrics: RefCell::new(EngineMetrics::default()),
            spare_failed_seq: Cell::new(None),
            background_failing: Cell::new(false),
            record_payload_max,
        }
    }
}

/// Removes `MANIFEST.tmp` and tables the manifest does not name.
async fn remove_leftovers<D: Disk>(
    disk: &D,
    dir: &Path,
    manifest: &ManifestState,
) -> Result<usize, EngineError> {
    let live: BTreeSet<u64> = manifest.levels.iter().flatten().map(|t| t.number).collect();
    let mut removed = 0;
    for name in disk.list(dir).await? {
        let leftover = name == MANIFEST_TMP_NAME
            || parse_table_name(&name).is_some_and(|n| !live.contains(&n));
        if leftover {
            tracing::info!(file = %name, "removing a leftover of an interrupted change");
            disk.remove(&dir.join(&name)).await?;
            removed += 1;
        }
    }
    if removed > 0 {
        disk.sync_dir(dir).await?;
    }
    Ok(removed)
}

async fn open_tables<D: Disk>(
    disk: &D,
    dir: &Path,
    manifest: &ManifestState,
) -> Result<Version<D::File>, EngineError> {
    let mut version = Version::empty();
    for (level, metas) in manifest.levels.iter().enumerate() {
        for meta in metas {
            let path = dir.join(table_name(meta.number));
            let file = match disk.open(&path, OpenMode::Existing).await {
                Err(DiskError::NotFound(_)) => {
                    return Err(EngineError::Corruption(format!(
                        "table {} named by the manifest is missing",
                        meta.number
                    )))
                }
                other => other?,
            };
            let table = Table::open(file, meta.number).await?;
            if table.size() != meta.size || table.entries() != meta.entries {
                return Err(EngineError::Corruption(format!(
                    "table {} does not match its manifest entry",
                    meta.number
                )));
            }
            version.levels[level].push(Rc::new(LiveTable {
                meta: meta.clone(),
                table: Rc::new(table),
            }));
        }
    }
    Ok(version)
}
