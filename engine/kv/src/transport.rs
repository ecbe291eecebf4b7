//! How requests reach ranges: the [`Transport`] trait, and [`LocalTransport`],
//! an in-process implementation that delivers to [`Store`]s directly (the
//! deterministic tests; the node routes over its shard mesh instead).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use bytes::Bytes;

use crate::api::{RangeBatch, RangeBatchResponse};
use crate::engine::LocalBoxFuture;
use crate::error::KvError;
use crate::replica::RangeDesc;
use crate::store::Store;
use crate::sync::yield_now;

/// Identifies a store (a shard) in a node.
pub type StoreId = u32;

/// Routing and delivery of range batches.
pub trait Transport {
    /// The range that holds `key`, as far as this sender knows.
    fn route(&self, key: &[u8]) -> Result<RangeDesc, KvError>;

    /// Delivers `batch` to the store holding `batch.header.range_id`.
    fn send(&self, batch: RangeBatch) -> LocalBoxFuture<'_, Result<RangeBatchResponse, KvError>>;

    /// Learns that `left` shrank and `right` was split off it, on `owner`.
    fn note_split(&self, left: &RangeDesc, right: &RangeDesc, owner: StoreId);
}

#[derive(Default)]
struct Directory {
    /// Range start -> (descriptor, owner).
    by_start: BTreeMap<Bytes, (RangeDesc, StoreId)>,
    owner_of: HashMap<u64, StoreId>,
}

/// Delivers to in-process stores, yielding once per hop so that a seeded
/// scheduler interleaves concurrent requests as a real mesh would.
#[derive(Default)]
pub struct LocalTransport {
    stores: RefCell<HashMap<StoreId, Rc<Store>>>,
    directory: RefCell<Directory>,
}

impl LocalTransport {
    pub fn new() -> LocalTransport {
        LocalTransport::default()
    }

    /// Adds (or replaces, after a restart) a store and the ranges it holds.
    pub fn add_store(&self, store: Rc<Store>) {
        let id = store.id();
        let mut dir = self.directory.borrow_mut();
        for desc in store.ranges() {
            dir.owner_of.insert(desc.id, id);
            dir.by_start.insert(desc.span.start.clone(), (desc, id));
        }
        self.stores.borrow_mut().insert(id, store);
    }

    /// Removes a store (a crash): requests to its ranges fail as
    /// unavailable until it is added again.
    pub fn remove_store(&self, id: StoreId) {
        self.stores.borrow_mut().remove(&id);
    }

    /// The store `id`, if it is up.
    pub fn store(&self, id: StoreId) -> Option<Rc<Store>> {
        self.stores.borrow().get(&id).cloned()
    }

    /// Every range and its owner, in key order.
    pub fn ranges(&self) -> Vec<(RangeDesc, StoreId)> {
        self.directory.borrow().by_start.values().cloned().collect()
    }
}

impl Transport for LocalTransport {
    fn route(&self, key: &[u8]) -> Result<RangeDesc, KvError> {
        let dir = self.directory.borrow();
        let (_, (desc, _)) = dir
            .by_start
            .range(..=Bytes::copy_from_slice(key))
            .next_back()
            .ok_or_else(|| {
                KvError::Unavailable(format!("no range holds key {}", crate::keys::pretty(key)))
            })?;
        if !desc.span.contains(key) {
            return Err(KvError::Unavailable(format!(
                "no range holds key {}",
                crate::keys::pretty(key)
            )));
        }
        Ok(desc.clone())
    }

    fn send(&self, batch: RangeBatch) -> LocalBoxFuture<'_, Result<RangeBatchResponse, KvError>> {
        Box::pin(async move {
            yield_now().await;
            let owner = self
                .directory
                .borrow()
                .owner_of
                .get(&batch.header.range_id)
                .copied();
            let store = owner.and_then(|id| self.stores.borrow().get(&id).cloned());
            let Some(store) = store else {
                return Err(KvError::Unavailable(format!(
                    "range {} has no live owner",
                    batch.header.range_id
                )));
            };
            let response = store.execute(batch).await;
            yield_now().await;
            response
        })
    }

    fn note_split(&self, left: &RangeDesc, right: &RangeDesc, owner: StoreId) {
        let mut dir = self.directory.borrow_mut();
        dir.by_start
            .insert(left.span.start.clone(), (left.clone(), owner));
        dir.by_start
            .insert(right.span.start.clone(), (right.clone(), owner));
        dir.owner_of.insert(right.id, owner);
    }
}
