//! How a range's evaluated write batches become durable and reach the
//! engine: the [`Replication`] a store writes through.
//!
//! Evaluation ([`crate::eval`]) turns a request batch into a
//! [`WriteBatch`] and writes nothing; the store hands that batch to
//! [`Replication::replicate`], which resolves once the batch is durable
//! *and* applied to the engine. Applying also tells the store's
//! [`Applier`], which updates the range's in-memory state (lock-table
//! wake-ups, waits-for cleanup, size) from the mutations alone; so the
//! in-memory effects follow the log, not the proposer, and a proposer whose
//! future is dropped midway (a cancelled request, a gateway that died)
//! leaves nothing behind.
//!
//! Two implementations:
//! - [`DirectApply`]: applies to the engine at once. For engines without a
//!   log of their own (the in-memory engine of the deterministic tests), or
//!   whose `apply` is durable by itself (`LsmEngine::direct`).
//! - [`raft::RaftReplication`]: every range is a Raft group (one voter on a
//!   single node) whose log is the shard's WAL. This is the node's only
//!   write path.
//!
//! Invariant: for one range, batches are applied in the order `replicate`
//! was called for conflicting batches (the store's latches order those), and
//! the engine never holds a write that is not in the range's log (Raft
//! mode) or not durable (direct mode on the LSM).

pub mod log_record;
pub mod raft;
pub mod recovery;

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use crate::engine::{Engine, LocalBoxFuture, WriteBatch};
use crate::error::KvError;

/// Who learns about applied batches: the store, which keeps each range's
/// in-memory state in step with the engine.
pub trait Applier {
    /// `batch` of range `range_id` was applied to the engine.
    fn applied(&self, range_id: u64, batch: &WriteBatch);
}

/// The way a store's writes become durable and applied.
pub trait Replication {
    /// Makes sure range `range_id` has a log (a new cluster's ranges, the
    /// right half of a split, or a range found on restart). Idempotent.
    fn create_range(&self, range_id: u64) -> LocalBoxFuture<'_, Result<(), KvError>>;

    /// Commits `batch` to range `range_id`'s log and applies it; resolves
    /// once it is applied (and the applier has seen it).
    fn replicate(
        &self,
        range_id: u64,
        batch: WriteBatch,
    ) -> LocalBoxFuture<'_, Result<(), KvError>>;

    /// Ends range `range_id`'s log here: the range left this shard (its
    /// data is gone from the store already). The range's later writes are
    /// refused; a restart does not bring its log back.
    fn remove_range(&self, range_id: u64) -> LocalBoxFuture<'_, Result<(), KvError>>;

    /// Registers the store that keeps in-memory state in step with applies.
    fn set_applier(&self, applier: Weak<dyn Applier>);
}

/// Applies batches to the engine directly, in the caller's task.
pub struct DirectApply {
    engine: Rc<dyn Engine>,
    applier: RefCell<Option<Weak<dyn Applier>>>,
}

impl DirectApply {
    pub fn new(engine: Rc<dyn Engine>) -> DirectApply {
        DirectApply {
            engine,
            applier: RefCell::new(None),
        }
    }
}

impl Replication for DirectApply {
    fn create_range(&self, _range_id: u64) -> LocalBoxFuture<'_, Result<(), KvError>> {
        Box::pin(async { Ok(()) })
    }

    fn replicate(
        &self,
        range_id: u64,
        batch: WriteBatch,
    ) -> LocalBoxFuture<'_, Result<(), KvError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            self.engine.apply(&batch).await?;
            notify(&self.applier, range_id, &batch);
            Ok(())
        })
    }

    fn remove_range(&self, _range_id: u64) -> LocalBoxFuture<'_, Result<(), KvError>> {
        Box::pin(async { Ok(()) })
    }

    fn set_applier(&self, applier: Weak<dyn Applier>) {
        *self.applier.borrow_mut() = Some(applier);
    }
}

/// Tells the registered applier (if any is alive) about an applied batch.
pub(crate) fn notify(
    applier: &RefCell<Option<Weak<dyn Applier>>>,
    range_id: u64,
    batch: &WriteBatch,
) {
    let target = applier.borrow().as_ref().and_then(Weak::upgrade);
    if let Some(target) = target {
        target.applied(range_id, batch);
    }
}
