//! The per-shard catalog cache and the per-transaction version check.
//!
//! Each shard keeps the newest committed catalog it has loaded. A
//! transaction reads the version key ([`read_version`]); when the cache holds
//! that version it is used as is, otherwise the transaction loads the
//! catalog from the system tables at its own snapshot and, having changed
//! nothing, offers it to the cache. The cache only moves forward.
//!
//! Statements are bound at Parse, before any transaction exists, against the
//! newest catalog the cache holds. So that a table created through one shard
//! is visible at the next Parse on every other shard, a session that commits
//! DDL announces the new version to all shards ([`crate::Host::
//! catalog_changed`]) before it answers its client; a shard whose cache is
//! older than the newest announced version ([`CatalogCache::is_stale`])
//! reloads it before the next Parse ([`teller_net::session::Session::
//! refresh`]). The per-transaction version check stays the safety net.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use teller_net::PgResult;

use super::{system, Catalog};
use crate::kv::{Batch, KvTxn};

/// The newest catalog a shard has seen; shared by the shard's sessions.
#[derive(Debug, Default)]
pub struct CatalogCache {
    latest: RefCell<Option<Rc<Catalog>>>,
    /// The newest version announced by a shard that committed DDL.
    announced: Cell<u64>,
}

impl CatalogCache {
    pub fn new() -> CatalogCache {
        CatalogCache::default()
    }

    /// The newest catalog known, for binding before a transaction has read
    /// the version (Parse and Describe); the bootstrap catalog at first.
    pub fn latest(&self) -> Rc<Catalog> {
        self.latest
            .borrow_mut()
            .get_or_insert_with(|| Rc::new(Catalog::bootstrap()))
            .clone()
    }

    /// The cached catalog of `version`, if that is the one held.
    pub fn get(&self, version: u64) -> Option<Rc<Catalog>> {
        let latest = self.latest.borrow();
        latest.as_ref().filter(|c| c.version == version).cloned()
    }

    /// Records that DDL committed catalog `version` somewhere in the node.
    pub fn announce(&self, version: u64) {
        if version > self.announced.get() {
            self.announced.set(version);
        }
    }

    /// Whether a newer catalog than the one held has been announced.
    pub fn is_stale(&self) -> bool {
        let held = self.latest.borrow().as_ref().map_or(0, |c| c.version);
        held < self.announced.get()
    }

    /// Offers a committed catalog; kept if newer than the one held.
    pub fn offer(&self, catalog: &Rc<Catalog>) {
        let mut latest = self.latest.borrow_mut();
        if latest.as_ref().is_none_or(|c| c.version < catalog.version) {
            *latest = Some(catalog.clone());
        }
    }
}

/// Reads the catalog version in `txn` (0 when no DDL ever ran).
pub async fn read_version<T: KvTxn>(txn: &mut T) -> PgResult<u64> {
    let mut batch = Batch::new();
    batch.get(system::meta_key(system::META_VERSION)?);
    let response = txn.batch(batch).await?;
    let version = system::decode_meta(response.get(0)?)?.unwrap_or(0);
    u64::try_from(version).map_err(|_| crate::encoding::corrupt("negative catalog version"))
}

/// The catalog `txn` sees: the cached one for its version, or loaded.
pub async fn current<T: KvTxn>(txn: &mut T, cache: &CatalogCache) -> PgResult<Rc<Catalog>> {
    let version = read_version(txn).await?;
    if let Some(catalog) = cache.get(version) {
        return Ok(catalog);
    }
    let catalog = Rc::new(Catalog::load(txn, version).await?);
    cache.offer(&catalog);
    Ok(catalog)
}
