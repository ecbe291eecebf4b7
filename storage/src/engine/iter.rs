//! Iterators over a [`View`]: per-source cursors, their merge, and the MVCC
//! iterator on top.
//!
//! - [`Child`]: one source — a memtable (a borrow-free cursor, re-borrowed per
//!   step so writers proceed between steps), an L0 table, or a whole level L1+
//!   (its tables concatenated).
//! - [`Merge`]: every version of every source in (key asc, ts desc) order; of
//!   several equal (key, ts) it yields the newest source's only. Forward after
//!   `seek`, backward after `seek_before`; a change of direction is an explicit
//!   re-seek by the caller.
//! - [`EngineIter`]: per user key, the newest version `<= read_ts` not hidden by
//!   a newer source's range tombstone; deleted keys are skipped (or surfaced,
//!   with `with_tombstones`). Bounded by `[lower, upper)`.
//!
//! Everything is owned (`Rc`s of memtables and tables), so an iterator can be
//! held across awaits while the engine goes on writing, flushing and compacting.
//! It sees versions written after it was created only in memtables it holds;
//! for a fixed view use a snapshot.

use super::version::{LiveTable, MemState, View};
use super::EngineError;
use crate::disk::DiskFile;
use crate::manifest::LEVELS;
use crate::memtable::{Cursor, Value};
use crate::spans::SpanSet;
use crate::sst::block::cmp_versions;
use crate::sst::table::{owned, OwnedValue};
use crate::sst::{BlockCache, TableIter};
use crate::timestamp::Timestamp;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::rc::Rc;

/// How many versions of one key an iterator steps over before it seeks
/// instead (a seek costs a few steps' worth in every source).
const SEQUENTIAL_SKIPS_MAX: usize = 8;

/// The smallest key after every version of `key`... and before any longer key:
/// `key + [0]` sorts right after `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    k
}

/// A memtable cursor with a copy of its current entry.
struct MemChild {
    mem: Rc<MemState>,
    cursor: Cursor,
    cur: Option<(Vec<u8>, Timestamp, OwnedValue)>,
}

impl MemChild {
    fn load(&mut self) {
        let m = self.mem.table.borrow();
        self.cur = self
            .cursor
            .entry(&m)
            .map(|e| (e.key.to_vec(), e.ts, owned(e.value)));
    }

    fn step(&mut self, f: impl FnOnce(&mut Cursor, &crate::memtable::Memtable)) {
        {
            let m = self.mem.table.borrow();
            f(&mut self.cursor, &m);
        }
        self.load();
    }
}

/// The tables of one level L1+, concatenated.
struct LevelChild<F: DiskFile> {
    tables: Vec<Rc<LiveTable<F>>>,
    cache: Rc<RefCell<BlockCache>>,
    index: usize,
    iter: Option<TableIter<F>>,
}

impl<F: DiskFile> LevelChild<F> {
    fn open(&mut self, index: usize) -> &mut TableIter<F> {
        self.index = index;
        let table = Rc::clone(&self.tables[index].table);
        self.iter
            .insert(TableIter::new(table, Rc::clone(&self.cache)))
    }

    fn valid(&self) -> bool {
        self.iter.as_ref().is_some_and(TableIter::valid)
    }

    async fn seek(&mut self, key: &[u8], ts: Timestamp) -> Result<(), EngineError> {
        let i = self.tables.partition_point(|t| !t.meta.below_upper(key));
        self.iter = None;
        if i < self.tables.len() {
            self.open(i).seek(key, ts).await?;
            self.skip_forward().await?;
        }
        Ok(())
    }

    async fn seek_before(&mut self, key: &[u8], ts: Timestamp) -> Result<(), EngineError> {
        let i = self
            .tables
            .partition_point(|t| t.meta.smallest.as_slice() <= key);
        self.iter = None;
        if i > 0 {
            self.open(i - 1).seek_before(key, ts).await?;
            self.skip_backward().await?;
        }
        Ok(())
    }

    async fn seek_to_last(&mut self) -> Result<(), EngineError> {
        self.iter = None;
        if !self.tables.is_empty() {
            self.open(self.tables.len() - 1).seek_to_last().await?;
            self.skip_backward().await?;
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<(), EngineError> {
        if let Some(it) = &mut self.iter {
            it.next().await?;
        }
        self.skip_forward().await
    }

    async fn prev(&mut self) -> Result<(), EngineError> {
        if let Some(it) = &mut self.iter {
            it.prev().await?;
        }
        self.skip_backward().await
    }

    async fn skip_forward(&mut self) -> Result<(), EngineError> {
        while self.iter.is_some() && !self.valid() && self.index + 1 < self.tables.len() {
            self.open(self.index + 1).seek_to_first().await?;
        }
        Ok(())
    }

    async fn skip_backward(&mut self) -> Result<(), EngineError> {
        while self.iter.is_some() && !self.valid() && self.index > 0 {
            self.open(self.index - 1).seek_to_last().await?;
        }
        Ok(())
    }
}

/// One source of a merge.
enum Child<F: DiskFile> {
    Mem(MemChild),
    Table(TableIter<F>),
    Level(LevelChild<F>),
}

impl<F: DiskFile> Child<F> {
    fn valid(&self) -> bool {
        match self {
            Child::Mem(m) => m.cur.is_some(),
            Child::Table(t) => t.valid(),
            Child::Level(l) => l.valid(),
        }
    }

    fn key(&self) -> &[u8] {
        match self {
            Child::Mem(m) => &m.cur.as_ref().expect("valid child").0,
            Child::Table(t) => t.key(),
            Child::Level(l) => l.iter.as_ref().expect("valid child").key(),
        }
    }

    fn ts(&self) -> Timestamp {
        match self {
            Child::Mem(m) => m.cur.as_ref().expect("valid child").1,
            Child::Table(t) => t.ts(),
            Child::Level(l) => l.iter.as_ref().expect("valid child").ts(),
        }
    }

    fn value(&self) -> Value<'_> {
        match self {
            Child::Mem(m) => match &m.cur.as_ref().expect("valid child").2 {
                Some(v) => Value::Put(v),
                None => Value::Delete,
            },
            Child::Table(t) => t.value(),
            Child::Level(l) => l.iter.as_ref().expect("valid child").value(),
        }
    }

    async fn seek(&mut self, key: &[u8], ts: Timestamp) -> Result<(), EngineError> {
        match self {
            Child::Mem(m) => m.step(|c, t| *c = Cursor::seek(t, key, ts)),
            Child::Table(t) => t.seek(key, ts).await?,
            Child::Level(l) => l.seek(key, ts).await?,
        }
        Ok(())
    }

    async fn seek_before(&mut self, key: &[u8], ts: Timestamp) -> Result<(), EngineError> {
        match self {
            Child::Mem(m) => m.step(|c, t| *c = Cursor::seek_before(t, key, ts)),
            Child::Table(t) => t.seek_before(key, ts).await?,
            Child::Level(l) => l.seek_before(key, ts).await?,
        }
        Ok(())
    }

    async fn seek_to_last(&mut self) -> Result<(), EngineError> {
        match self {
            Child::Mem(m) => m.step(|c, t| *c = Cursor::last(t)),
            Child::Table(t) => t.seek_to_last().await?,
            Child::Level(l) => l.seek_to_last().await?,
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<(), EngineError> {
        match self {
            Child::Mem(m) => m.step(|c, t| c.advance(t)),
            Child::Table(t) => t.next().await?,
            Child::Level(l) => l.next().await?,
        }
        Ok(())
    }

    async fn prev(&mut self) -> Result<(), EngineError> {
        match self {
            Child::Mem(m) => m.step(|c, t| c.retreat(t)),
            Child::Table(t) => t.prev().await?,
            Child::Level(l) => l.prev().await?,
        }
        Ok(())
    }
}

/// Every version of every source, merged; children in precedence order.
pub struct Merge<F: DiskFile> {
    children: Vec<Child<F>>,
    current: Option<usize>,
    forward: bool,
}

impl<F: DiskFile> Merge<F> {
    /// The sources of `view` that may hold keys in `[lower, upper)`.
    pub fn new(
        view: &View<F>,
        cache: &Rc<RefCell<BlockCache>>,
        lower: &[u8],
        upper: Option<&[u8]>,
    ) -> Self {
        let mut children: Vec<Child<F>> = view
            .mems
            .iter()
            .map(|mem| {
                Child::Mem(MemChild {
                    mem: Rc::clone(mem),
                    cursor: Cursor::first(&mem.table.borrow()),
                    cur: None,
                })
            })
            .collect();
        for t in view.version.overlapping(0, lower, upper) {
            children.push(Child::Table(TableIter::new(
                Rc::clone(&t.table),
                Rc::clone(cache),
            )));
        }
        for level in 1..LEVELS {
            let tables = view.version.overlapping(level, lower, upper);
            if !tables.is_empty() {
                children.push(Child::Level(LevelChild {
                    tables,
                    cache: Rc::clone(cache),
                    index: 0,
                    iter: None,
                }));
            }
        }
        Merge {
            children,
            current: None,
            forward: true,
        }
    }

    /// A merge over runs of tables, in precedence order (each run is one source:
    /// a single table, or a level's sorted tables). Empty runs keep their index.
    pub fn over_tables(
        sources: Vec<Vec<Rc<LiveTable<F>>>>,
        cache: &Rc<RefCell<BlockCache>>,
    ) -> Self {
        let children = sources
            .into_iter()
            .map(|tables| {
                Child::Level(LevelChild {
                    tables,
                    cache: Rc::clone(cache),
                    index: 0,
                    iter: None,
                })
            })
            .collect();
        Merge {
            children,
            current: None,
            forward: true,
        }
    }

    /// Range tombstones per child (only children that have some).
    fn tombstones(&self, lower: &[u8], upper: Option<&[u8]>) -> Vec<(usize, SpanSet)> {
        let mut out = Vec::new();
        for (i, c) in self.children.iter().enumerate() {
            let mut set = SpanSet::new();
            match c {
                Child::Mem(m) => set.extend(m.mem.table.borrow().range_dels()),
                Child::Table(t) => set.extend(t.table().range_dels()),
                Child::Level(l) => {
                    for t in &l.tables {
                        set.extend(t.table.range_dels());
                    }
                }
            }
            let set = set.clip(lower, upper);
            if !set.is_empty() {
                out.push((i, set));
            }
        }
        out
    }

    pub fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn cur(&self) -> &Child<F> {
        &self.children[self.current.expect("merge positioned")]
    }

    pub fn key(&self) -> &[u8] {
        self.cur().key()
    }

    pub fn ts(&self) -> Timestamp {
        self.cur().ts()
    }

    pub fn value(&self) -> Value<'_> {
        self.cur().value()
    }

    /// Precedence index of the source of the current version.
    pub fn source(&self) -> usize {
        self.current.expect("merge positioned")
    }

    pub async fn seek(&mut self, key: &[u8], ts: Timestamp) -> Result<(), EngineError> {
        for c in &mut self.children {
            c.seek(key, ts).await?;
        }
        self.forward = true;
        self.pick();
        Ok(())
    }

    pub async fn seek_before(&mut self, key: &[u8], ts: Timestamp) -> Result<(), EngineError> {
        for c in &mut self.children {
            c.seek_before(key, ts).await?;
        }
        self.forward = false;
        self.pick();
        Ok(())
    }

    pub async fn seek_to_last(&mut self) -> Result<(), EngineError> {
        for c in &mut self.children {
            c.seek_to_last().await?;
        }
        self.forward = false;
        self.pick();
        Ok(())
    }

    /// Steps past the current (key, ts) in the current direction, in every source
    /// that holds it.
    pub async fn step(&mut self) -> Result<(), EngineError> {
        let cur = self.current.expect("merge positioned");
        for i in 0..self.children.len() {
            if i == cur {
                continue;
            }
            // Disjoint borrows of child `i` (to move) and the current child.
            let (child, current) = if i < cur {
                let (left, right) = self.children.split_at_mut(cur);
                (&mut left[i], &right[0])
            } else {
                let (left, right) = self.children.split_at_mut(i);
                (&mut right[0], &left[cur])
            };
            if child.valid() && child.ts() == current.ts() && child.key() == current.key() {
                move_child(child, self.forward).await?;
            }
        }
        move_child(&mut self.children[cur], self.forward).await?;
        self.pick();
        Ok(())
    }

    /// The first (forward) or last (backward) version; ties to the newest source.
    fn pick(&mut self) {
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate() {
            if !c.valid() {
                continue;
            }
            let better = match best {
                None => true,
                Some(b) => {
                    let b = &self.children[b];
                    let order = cmp_versions(c.key(), c.ts(), b.key(), b.ts());
                    if self.forward {
                        order == Ordering::Less
                    } else {
                        order == Ordering::Greater
                    }
                }
            };
            if better {
                best = Some(i);
            }
        }
        self.current = best;
    }
}

async fn move_child<F: DiskFile>(child: &mut Child<F>, forward: bool) -> Result<(), EngineError> {
    if forward {
        child.next().await
    } else {
        child.prev().await
    }
}

/// A visible version as iterators return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub key: Vec<u8>,
    pub ts: Timestamp,
    /// `None`: a tombstone (only with `with_tombstones`).
    pub value: OwnedValue,
}

/// The MVCC iterator: for each key in `[lower, upper)`, its newest visible
/// version at `read_ts`. See the module docs.
pub struct EngineIter<F: DiskFile> {
    merge: Merge<F>,
    tombstones: Vec<(usize, SpanSet)>,
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
    read_ts: Timestamp,
    with_tombstones: bool,
    item: Option<Item>,
    forward: bool,
}

impl<F: DiskFile> EngineIter<F> {
    pub fn new(
        view: &View<F>,
        cache: &Rc<RefCell<BlockCache>>,
        lower: &[u8],
        upper: Option<&[u8]>,
        read_ts: Timestamp,
        with_tombstones: bool,
    ) -> Self {
        let Bounded {
            merge,
            tombstones,
            lower,
            upper,
        } = Bounded::new(view, cache, lower, upper);
        EngineIter {
            merge,
            tombstones,
            lower,
            upper,
            read_ts,
            with_tombstones,
            item: None,
            forward: true,
        }
    }

    pub fn valid(&self) -> bool {
        self.item.is_some()
    }

    /// The current entry, if positioned.
    pub fn item(&self) -> Option<&Item> {
        self.item.as_ref()
    }

    pub fn key(&self) -> &[u8] {
        &self.item.as_ref().expect("iterator positioned").key
    }

    pub fn ts(&self) -> Timestamp {
        self.item.as_ref().expect("iterator positioned").ts
    }

    pub fn value(&self) -> Option<&[u8]> {
        self.item
            .as_ref()
            .expect("iterator positioned")
            .value
            .as_deref()
    }

    fn hidden(&self, key: &[u8], source: usize) -> bool {
        hidden_by(&self.tombstones, key, source)
    }

    /// Positions at the first visible key at or after `key` (and `lower`).
    pub async fn seek(&mut self, key: &[u8]) -> Result<(), EngineError> {
        let target = key.max(self.lower.as_slice()).to_vec();
        self.merge.seek(&target, Timestamp::MAX).await?;
        self.forward = true;
        self.find_next().await
    }

    pub async fn seek_to_first(&mut self) -> Result<(), EngineError> {
        let lower = self.lower.clone();
        self.seek(&lower).await
    }

    /// Positions at the last visible key at or before `key` (and below `upper`).
    pub async fn seek_for_prev(&mut self, key: &[u8]) -> Result<(), EngineError> {
        let after = successor(key);
        match &self.upper {
            Some(u) if u.as_slice() <= after.as_slice() => {
                let u = u.clone();
                self.merge.seek_before(&u, Timestamp::MAX).await?;
            }
            _ => self.merge.seek_before(&after, Timestamp::MAX).await?,
        }
        self.forward = false;
        self.find_prev().await
    }

    pub async fn seek_to_last(&mut self) -> Result<(), EngineError> {
        match self.upper.clone() {
            Some(u) => self.merge.seek_before(&u, Timestamp::MAX).await?,
            None => self.merge.seek_to_last().await?,
        }
        self.forward = false;
        self.find_prev().await
    }

    pub async fn next(&mut self) -> Result<(), EngineError> {
        let Some(item) = &self.item else {
            return Ok(());
        };
        if !self.forward {
            let after = successor(&item.key);
            self.merge.seek(&after, Timestamp::MAX).await?;
            self.forward = true;
        }
        self.find_next().await
    }

    pub async fn prev(&mut self) -> Result<(), EngineError> {
        let Some(item) = &self.item else {
            return Ok(());
        };
        if self.forward {
            let key = item.key.clone();
            self.merge.seek_before(&key, Timestamp::MAX).await?;
            self.forward = false;
        }
        self.find_prev().await
    }

    /// From the merge position forwards: the next key with a visible version.
    ///
    /// A key's versions are stepped over one by one only up to
    /// [`SEQUENTIAL_SKIPS_MAX`]; past that the merge seeks (to the read
    /// timestamp while the versions are too new, past the key once its
    /// visible version is found), so a key rewritten thousands of times costs
    /// a few seeks, not thousands of steps.
    async fn find_next(&mut self) -> Result<(), EngineError> {
        loop {
            if !self.merge.valid() || self.upper.as_deref().is_some_and(|u| self.merge.key() >= u) {
                self.item = None;
                return Ok(());
            }
            let key = self.merge.key().to_vec();
            let mut found: Option<(Timestamp, OwnedValue)> = None;
            let mut steps = 0;
            let mut sought_read_ts = false;
            while self.merge.valid() && self.merge.key() == key.as_slice() {
                let ts = self.merge.ts();
                if found.is_none() && ts <= self.read_ts && !self.hidden(&key, self.merge.source())
                {
                    found = Some((ts, owned(self.merge.value())));
                }
                steps += 1;
                if steps < SEQUENTIAL_SKIPS_MAX {
                    self.merge.step().await?;
                } else if found.is_some() {
                    self.merge.seek(&successor(&key), Timestamp::MAX).await?;
                } else if ts > self.read_ts && !sought_read_ts {
                    // Positions at the key's newest version <= read_ts.
                    sought_read_ts = true;
                    steps = 0;
                    self.merge.seek(&key, self.read_ts).await?;
                } else {
                    self.merge.step().await?;
                }
            }
            if let Some((ts, value)) = found {
                if value.is_some() || self.with_tombstones {
                    self.item = Some(Item { key, ts, value });
                    return Ok(());
                }
            }
        }
    }

    /// From the merge position backwards: the previous key with a visible version.
    async fn find_prev(&mut self) -> Result<(), EngineError> {
        loop {
            if !self.merge.valid() || self.merge.key() < self.lower.as_slice() {
                self.item = None;
                return Ok(());
            }
            let key = self.merge.key().to_vec();
            let mut found: Option<(Timestamp, OwnedValue)> = None;
            // Backwards, a key's versions come oldest first: the last match wins.
            while self.merge.valid() && self.merge.key() == key.as_slice() {
                let ts = self.merge.ts();
                if ts <= self.read_ts && !self.hidden(&key, self.merge.source()) {
                    found = Some((ts, owned(self.merge.value())));
                }
                self.merge.step().await?;
            }
            if let Some((ts, value)) = found {
                if value.is_some() || self.with_tombstones {
                    self.item = Some(Item { key, ts, value });
                    return Ok(());
                }
            }
        }
    }
}

/// Every version in `[lower, upper)`, key ascending and timestamp descending,
/// tombstones included, except versions a newer source's range tombstone
/// hides. For callers that need a key's whole history (read refresh checks,
/// MVCC garbage collection): one merge step per version, where a newest-only
/// iterator plus a point lookup per older version costs a whole LSM lookup
/// per version.
pub struct VersionIter<F: DiskFile> {
    merge: Merge<F>,
    tombstones: Vec<(usize, SpanSet)>,
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
}

impl<F: DiskFile> VersionIter<F> {
    pub fn new(
        view: &View<F>,
        cache: &Rc<RefCell<BlockCache>>,
        lower: &[u8],
        upper: Option<&[u8]>,
    ) -> Self {
        let Bounded {
            merge,
            tombstones,
            lower,
            upper,
        } = Bounded::new(view, cache, lower, upper);
        VersionIter {
            merge,
            tombstones,
            lower,
            upper,
        }
    }

    /// Whether positioned on a version inside the bounds.
    pub fn valid(&self) -> bool {
        self.merge.valid() && self.upper.as_deref().is_none_or(|u| self.merge.key() < u)
    }

    /// The current version's key; only when [`VersionIter::valid`].
    pub fn key(&self) -> &[u8] {
        self.merge.key()
    }

    /// The current version's timestamp; only when [`VersionIter::valid`].
    pub fn ts(&self) -> Timestamp {
        self.merge.ts()
    }

    /// The current version's value (`None`: a tombstone); only when valid.
    pub fn value(&self) -> Option<&[u8]> {
        match self.merge.value() {
            Value::Put(v) => Some(v),
            Value::Delete => None,
        }
    }

    /// Positions at the first version at or after `key` (and `lower`).
    pub async fn seek(&mut self, key: &[u8]) -> Result<(), EngineError> {
        let target = key.max(self.lower.as_slice()).to_vec();
        self.merge.seek(&target, Timestamp::MAX).await?;
        self.skip_hidden().await
    }

    pub async fn seek_to_first(&mut self) -> Result<(), EngineError> {
        let lower = self.lower.clone();
        self.seek(&lower).await
    }

    /// Steps to the next version (of this key, or the next key's newest).
    pub async fn next(&mut self) -> Result<(), EngineError> {
        if self.valid() {
            self.merge.step().await?;
            self.skip_hidden().await?;
        }
        Ok(())
    }

    async fn skip_hidden(&mut self) -> Result<(), EngineError> {
        while self.valid() && self.hidden() {
            self.merge.step().await?;
        }
        Ok(())
    }

    fn hidden(&self) -> bool {
        hidden_by(&self.tombstones, self.merge.key(), self.merge.source())
    }
}

/// What both iterators start from: the merge of the sources overlapping
/// `[lower, upper)`, their range tombstones clipped to it, and the bounds.
struct Bounded<F: DiskFile> {
    merge: Merge<F>,
    tombstones: Vec<(usize, SpanSet)>,
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
}

impl<F: DiskFile> Bounded<F> {
    fn new(
        view: &View<F>,
        cache: &Rc<RefCell<BlockCache>>,
        lower: &[u8],
        upper: Option<&[u8]>,
    ) -> Self {
        let merge = Merge::new(view, cache, lower, upper);
        let tombstones = merge.tombstones(lower, upper);
        Bounded {
            merge,
            tombstones,
            lower: lower.to_vec(),
            upper: upper.map(<[u8]>::to_vec),
        }
    }
}

/// Whether a range tombstone of a source newer than `source` (a smaller
/// precedence index) covers `key`.
fn hidden_by(tombstones: &[(usize, SpanSet)], key: &[u8], source: usize) -> bool {
    tombstones
        .iter()
        .take_while(|(i, _)| *i < source)
        .any(|(_, set)| set.covers(key))
}
