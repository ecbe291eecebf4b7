//! Ingestion: a sorted stream of versions that atomically replaces everything in
//! a span — the receiving side of a Raft snapshot or a range move.
//!
//! The stream is written straight into new tables (bounded memory). The first
//! table also carries a range tombstone over the whole span, which hides every
//! older version there; the tables are then added to L0 as the newest sources,
//! after every memtable has been flushed (so nothing in a memtable can take
//! precedence over the ingested data). One manifest replacement makes the whole
//! ingestion — and the range's new applied index — durable at once; a crash
//! before it leaves the old contents (the new files are removed as leftovers).
//!
//! The caller must not write into the span while an ingestion is in progress.

use super::version::{LiveTable, Version};
use super::{Engine, EngineError};
use crate::disk::Disk;
use crate::memtable::{Value, KEY_BYTES_MAX, VALUE_BYTES_MAX};
use crate::sst::block::cmp_versions;
use crate::sst::format::table_name;
use crate::sst::{TableBuilder, TableMeta};
use crate::timestamp::Timestamp;
use std::cmp::Ordering;
use std::rc::Rc;

/// An ingestion in progress: see [`Engine::ingest_begin`].
pub struct Ingest<D: Disk> {
    start: Vec<u8>,
    end: Vec<u8>,
    builder: Option<TableBuilder<D::File>>,
    finished: Vec<TableMeta>,
    /// Every file number created, for cleanup.
    numbers: Vec<u64>,
    last: Option<(Vec<u8>, Timestamp)>,
    entries: u64,
}

impl<D: Disk> Ingest<D> {
    pub fn entries(&self) -> u64 {
        self.entries
    }
}

impl<D: Disk> Engine<D> {
    /// Starts replacing the contents of `[start, end)`.
    pub fn ingest_begin(&self, start: &[u8], end: &[u8]) -> Result<Ingest<D>, EngineError> {
        self.check_writable()?;
        if start >= end || end.len() > KEY_BYTES_MAX || start.len() > KEY_BYTES_MAX {
            return Err(EngineError::InvalidArgument(
                "ingest span must be non-empty, keys within limits".into(),
            ));
        }
        Ok(Ingest {
            start: start.to_vec(),
            end: end.to_vec(),
            builder: None,
            finished: Vec::new(),
            numbers: Vec::new(),
            last: None,
            entries: 0,
        })
    }

    /// Adds a version; versions must come in strictly increasing (key asc,
    /// ts desc) order, inside the span. `None` is a tombstone.
    pub async fn ingest_add(
        &self,
        ingest: &mut Ingest<D>,
        key: &[u8],
        ts: Timestamp,
        value: Option<&[u8]>,
    ) -> Result<(), EngineError> {
        let bad = |d: &str| Err(EngineError::InvalidArgument(format!("ingest: {d}")));
        if key < ingest.start.as_slice() || key >= ingest.end.as_slice() {
            return bad("key outside the span");
        }
        if key.len() > KEY_BYTES_MAX || value.is_some_and(|v| v.len() > VALUE_BYTES_MAX) {
            return bad("key or value too large");
        }
        if let Some((k, t)) = &ingest.last {
            if cmp_versions(k, *t, key, ts) != Ordering::Less {
                return bad("versions out of order");
            }
        }
        let new_key = ingest
            .last
            .as_ref()
            .is_none_or(|(k, _)| k.as_slice() != key);
        let full = ingest
            .builder
            .as_ref()
            .is_some_and(|b| b.estimated_bytes() >= self.config.target_file_bytes);
        if full && new_key {
            let b = ingest.builder.take().expect("full builder");
            ingest.finished.push(b.finish().await?);
        }
        if ingest.builder.is_none() {
            let number = self.alloc_file_number();
            ingest.numbers.push(number);
            let path = self.dir.join(table_name(number));
            let mut b =
                TableBuilder::create(&self.disk, &path, number, self.config.table.clone()).await?;
            if number == ingest.numbers[0] {
                b.add_range_del(&ingest.start, &ingest.end);
            }
            ingest.builder = Some(b);
        }
        let b = ingest.builder.as_mut().expect("builder");
        b.add(key, ts, value.map_or(Value::Delete, Value::Put))
            .await?;
        ingest.last = Some((key.to_vec(), ts));
        ingest.entries += 1;
        Ok(())
    }

    /// Makes the ingestion visible and durable; with `applied`, also records
    /// `(range, index)` as the range's applied Raft index. On error nothing
    /// changed and the new files are removed.
    pub async fn ingest_finish(
        &self,
        ingest: Ingest<D>,
        applied: Option<(u64, u64)>,
    ) -> Result<(), EngineError> {
        let numbers = ingest.numbers.clone();
        let result = self.ingest_install(ingest, applied).await;
        if result.is_err() {
            self.remove_table_files(&numbers, false).await;
        }
        result
    }

    /// Abandons an ingestion, removing its files.
    pub async fn ingest_abort(&self, ingest: Ingest<D>) {
        drop(ingest.builder);
        self.remove_table_files(&ingest.numbers, false).await;
    }

    /// [`Engine::ingest_begin`], every version of `entries`, [`Engine::ingest_finish`].
    pub async fn ingest(
        &self,
        start: &[u8],
        end: &[u8],
        entries: impl IntoIterator<Item = (Vec<u8>, Timestamp, Option<Vec<u8>>)>,
        applied: Option<(u64, u64)>,
    ) -> Result<(), EngineError> {
        let mut ingest = self.ingest_begin(start, end)?;
        for (k, t, v) in entries {
            if let Err(e) = self.ingest_add(&mut ingest, &k, t, v.as_deref()).await {
                self.ingest_abort(ingest).await;
                return Err(e);
            }
        }
        self.ingest_finish(ingest, applied).await
    }

    async fn ingest_install(
        &self,
        mut ingest: Ingest<D>,
        applied: Option<(u64, u64)>,
    ) -> Result<(), EngineError> {
        self.check_writable()?;
        let _bg = self.background.lock().await;
        // Everything written before is older than the ingested tables.
        self.freeze_active();
        while self.flush_oldest().await? {}
        if ingest.builder.is_none() && ingest.finished.is_empty() {
            // No versions: a table of just the range tombstone.
            let number = self.alloc_file_number();
            ingest.numbers.push(number);
            let path = self.dir.join(table_name(number));
            let mut b =
                TableBuilder::create(&self.disk, &path, number, self.config.table.clone()).await?;
            b.add_range_del(&ingest.start, &ingest.end);
            ingest.builder = Some(b);
        }
        if let Some(b) = ingest.builder.take() {
            ingest.finished.push(b.finish().await?);
        }
        let mut tables: Vec<Rc<LiveTable<D::File>>> = Vec::new();
        for meta in ingest.finished {
            tables.push(self.open_new_table(meta).await?);
        }
        let mut levels = self.state.borrow().version.levels.clone();
        // The last table written is the newest: front of L0.
        for t in tables {
            levels[0].insert(0, t);
        }
        let mut manifest = self.state.borrow().manifest.clone();
        if let Some((range, index)) = applied {
            manifest.applied.insert(range, index);
        }
        self.install(manifest, Version { levels }).await?;
        self.metric(|m| m.ingests += 1);
        self.work.notify_all();
        Ok(())
    }
}
