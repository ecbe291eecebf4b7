//! Compaction: [`plan`] picks a task (pure), this module runs it.
//!
//! # Execution
//! The inputs (L0 tables newest first, or one Li table, then the overlapping
//! tables of the next level as one source) are merged in precedence order. Per
//! user key, versions come newest timestamp first; a version is dropped if
//! - a newer input has the same (key, ts) (the merge yields the newest only),
//! - a newer input's range tombstone covers it, or
//! - it is below the GC horizon and not the key's newest version at or below
//!   it — or it is that version, a tombstone, and the output is bottommost.
//!
//! Range tombstones of the inputs go to the outputs, clipped to each output's
//! key span, unless the output is bottommost (nothing older is left to hide).
//! Outputs are cut near `target_file_bytes`, only between user keys, so the
//! versions of a key never straddle two tables of a level.
//!
//! Durability: outputs are fsynced and named durably, the manifest replaced,
//! and only then are the inputs deleted. The work yields to other tasks every
//! [`YIELD_EVERY_VERSIONS`] versions; the shard's background task queue (100
//! shares against 1000 for requests) bounds its share of CPU and I/O.

pub mod plan;
#[cfg(test)]
mod sim;

use super::iter::Merge;
use super::version::{LiveTable, Version};
use super::{Engine, EngineError};
use crate::disk::Disk;
use crate::manifest::LEVELS;
use crate::memtable::Value;
use crate::spans::SpanSet;
use crate::sst::format::table_name;
use crate::sst::table::owned;
use crate::sst::{BlockCache, TableBuilder};
use crate::sync::yield_now;
use crate::timestamp::Timestamp;
use plan::{PlanConfig, Task};
use std::cell::RefCell;
use std::rc::Rc;

/// Versions merged between two yields to the executor.
pub const YIELD_EVERY_VERSIONS: u64 = 256;

impl<D: Disk> Engine<D> {
    fn plan_config(&self) -> PlanConfig {
        PlanConfig {
            l0_trigger: self.config.l0_compaction_trigger,
            level1_bytes: self.config.level1_bytes,
            multiplier: self.config.level_multiplier,
        }
    }

    pub(super) fn plan_compaction(&self) -> Option<Task> {
        let st = self.state.borrow();
        plan::plan(
            &st.version.metas(),
            &st.compact_pointers,
            &self.plan_config(),
        )
    }

    /// Runs the planned compaction, if any. The caller holds the background lock.
    pub(super) async fn compact_once(&self) -> Result<bool, EngineError> {
        let Some(task) = self.plan_compaction() else {
            return Ok(false);
        };
        self.run_task(&task).await?;
        Ok(true)
    }

    /// Compacts everything down, level by level (every table is rewritten into
    /// the deepest non-empty level or below), applying the GC horizon. For
    /// maintenance and tests: it rewrites all data.
    pub async fn compact_all(&self) -> Result<(), EngineError> {
        self.check_writable()?;
        let _bg = self.background.lock().await;
        self.freeze_active();
        while self.flush_oldest().await? {}
        for level in 0..LEVELS - 1 {
            loop {
                let task = {
                    let st = self.state.borrow();
                    plan::plan_level(&st.version.metas(), level, None)
                };
                let Some(mut task) = task else { break };
                // Rewrite even a lone table, so the horizon applies to it.
                task.trivial_move = false;
                self.run_task(&task).await?;
            }
        }
        Ok(())
    }

    async fn run_task(&self, task: &Task) -> Result<(), EngineError> {
        let version = Rc::clone(&self.state.borrow().version);
        let pick = |level: usize, numbers: &[u64]| -> Vec<Rc<LiveTable<D::File>>> {
            // Keep the level's order (L0 newest first, deeper levels by key).
            version.levels[level]
                .iter()
                .filter(|t| numbers.contains(&t.meta.number))
                .cloned()
                .collect()
        };
        let inputs = pick(task.level, &task.inputs);
        let next_inputs = pick(task.output_level(), &task.next_inputs);
        assert_eq!(inputs.len(), task.inputs.len(), "task inputs are live");
        let outputs = if task.trivial_move {
            inputs.clone()
        } else {
            self.merge_tables(task, &inputs, &next_inputs).await?
        };
        let mut levels = version.levels.clone();
        let gone = |t: &Rc<LiveTable<D::File>>| {
            task.inputs.contains(&t.meta.number) || task.next_inputs.contains(&t.meta.number)
        };
        levels[task.level].retain(|t| !gone(t));
        levels[task.output_level()].retain(|t| !gone(t));
        levels[task.output_level()].extend(outputs.iter().cloned());
        levels[task.output_level()].sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
        let manifest = self.state.borrow().manifest.clone();
        if let Err(e) = self.install(manifest, Version { levels }).await {
            if !task.trivial_move {
                let numbers: Vec<u64> = outputs.iter().map(|t| t.meta.number).collect();
                self.remove_table_files(&numbers, false).await;
            }
            return Err(e);
        }
        self.state.borrow_mut().compact_pointers[task.level] = task.pointer.clone();
        if task.trivial_move {
            self.metric(|m| m.trivial_moves += 1);
        } else {
            let read: u64 = inputs.iter().chain(&next_inputs).map(|t| t.meta.size).sum();
            let written: u64 = outputs.iter().map(|t| t.meta.size).sum();
            self.metric(|m| {
                m.compactions += 1;
                m.compaction_bytes_read += read;
                m.compaction_bytes_written += written;
            });
            let numbers: Vec<u64> = inputs
                .iter()
                .chain(&next_inputs)
                .map(|t| t.meta.number)
                .collect();
            self.remove_table_files(&numbers, true).await;
        }
        self.work.notify_all();
        Ok(())
    }

    /// Merges the inputs into new tables for the output level.
    async fn merge_tables(
        &self,
        task: &Task,
        inputs: &[Rc<LiveTable<D::File>>],
        next_inputs: &[Rc<LiveTable<D::File>>],
    ) -> Result<Vec<Rc<LiveTable<D::File>>>, EngineError> {
        let mut written: Vec<u64> = Vec::new();
        let result = self
            .merge_into(task, inputs, next_inputs, &mut written)
            .await;
        if result.is_err() {
            self.remove_table_files(&written, false).await;
        }
        result
    }

    async fn merge_into(
        &self,
        task: &Task,
        inputs: &[Rc<LiveTable<D::File>>],
        next_inputs: &[Rc<LiveTable<D::File>>],
        written: &mut Vec<u64>,
    ) -> Result<Vec<Rc<LiveTable<D::File>>>, EngineError> {
        // Compaction reads each block once: keep it out of the shared cache.
        let cache = Rc::new(RefCell::new(BlockCache::new(0)));
        let mut sources: Vec<Vec<Rc<LiveTable<D::File>>>> =
            inputs.iter().map(|t| vec![Rc::clone(t)]).collect();
        if task.level > 0 {
            // One Li table, then the Li+1 run.
            sources = vec![inputs.to_vec()];
        }
        sources.push(next_inputs.to_vec());
        let tombstones: Vec<SpanSet> = sources
            .iter()
            .map(|tables| {
                let mut s = SpanSet::new();
                for t in tables {
                    s.extend(t.table.range_dels());
                }
                s
            })
            .collect();
        let mut all_dels = SpanSet::new();
        if !task.bottommost {
            for s in &tombstones {
                all_dels.extend(s);
            }
        }
        let mut merge = Merge::over_tables(sources, &cache);
        merge.seek(b"", Timestamp::MAX).await?;
        let horizon = self.state.borrow().gc_horizon;
        let mut out = Output::new(self, task.bottommost, all_dels);
        let mut key: Vec<u8> = Vec::new();
        let mut kept_at_horizon = false;
        let mut seen = 0u64;
        let mut dropped = 0u64;
        while merge.valid() {
            seen += 1;
            if seen.is_multiple_of(YIELD_EVERY_VERSIONS) {
                yield_now().await;
            }
            let new_key = merge.key() != key.as_slice();
            if new_key {
                key.clear();
                key.extend_from_slice(merge.key());
                kept_at_horizon = false;
            }
            let ts = merge.ts();
            let source = merge.source();
            let hidden = tombstones[..source].iter().any(|s| s.covers(&key));
            let keep = if hidden {
                false
            } else if ts > horizon {
                true
            } else if kept_at_horizon {
                false
            } else {
                kept_at_horizon = true;
                !(task.bottommost && merge.value() == Value::Delete)
            };
            if keep {
                let value = owned(merge.value());
                out.add(
                    &key,
                    ts,
                    value.as_deref().map_or(Value::Delete, Value::Put),
                    new_key,
                    written,
                )
                .await?;
            } else {
                dropped += 1;
            }
            merge.step().await?;
        }
        self.metric(|m| m.compaction_versions_dropped += dropped);
        out.finish(written).await
    }
}

/// The output tables of one compaction, cut between user keys.
struct Output<'a, D: Disk> {
    engine: &'a Engine<D>,
    bottommost: bool,
    /// Range tombstones to carry (empty when bottommost).
    dels: SpanSet,
    builder: Option<TableBuilder<D::File>>,
    /// Where the current output's key span starts (its first key, or "" for the
    /// first output).
    span_start: Vec<u8>,
    done: Vec<Rc<LiveTable<D::File>>>,
}

impl<'a, D: Disk> Output<'a, D> {
    fn new(engine: &'a Engine<D>, bottommost: bool, dels: SpanSet) -> Self {
        Output {
            engine,
            bottommost,
            dels,
            builder: None,
            span_start: Vec::new(),
            done: Vec::new(),
        }
    }

    async fn add(
        &mut self,
        key: &[u8],
        ts: Timestamp,
        value: Value<'_>,
        new_key: bool,
        written: &mut Vec<u64>,
    ) -> Result<(), EngineError> {
        let full = self
            .builder
            .as_ref()
            .is_some_and(|b| b.estimated_bytes() >= self.engine.config.target_file_bytes);
        if full && new_key {
            self.cut(Some(key), written).await?;
            self.span_start = key.to_vec();
        }
        if self.builder.is_none() {
            self.builder = Some(self.create(written).await?);
        }
        let b = self.builder.as_mut().expect("just created");
        b.add(key, ts, value).await?;
        Ok(())
    }

    async fn create(&self, written: &mut Vec<u64>) -> Result<TableBuilder<D::File>, EngineError> {
        let number = self.engine.alloc_file_number();
        written.push(number);
        let path = self.engine.dir.join(table_name(number));
        Ok(TableBuilder::create(
            &self.engine.disk,
            &path,
            number,
            self.engine.config.table.clone(),
        )
        .await?)
    }

    /// Finishes the current output; its tombstones are clipped to
    /// `[span_start, end)` (`None`: unbounded).
    async fn cut(&mut self, end: Option<&[u8]>, written: &mut Vec<u64>) -> Result<(), EngineError> {
        let dels = self.dels.clip(&self.span_start, end);
        let mut builder = match self.builder.take() {
            Some(b) => b,
            None if !dels.is_empty() => self.create(written).await?,
            None => return Ok(()),
        };
        for (s, e) in dels.iter() {
            builder.add_range_del(s, e);
        }
        debug_assert!(!self.bottommost || dels.is_empty());
        let meta = builder.finish().await?;
        let table = self.engine.open_new_table(meta).await?;
        self.done.push(table);
        Ok(())
    }

    async fn finish(
        mut self,
        written: &mut Vec<u64>,
    ) -> Result<Vec<Rc<LiveTable<D::File>>>, EngineError> {
        self.cut(None, written).await?;
        Ok(self.done)
    }
}
