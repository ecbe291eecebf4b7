//! Tunables of the KV layer, with their defaults. All durations are
//! physical time.

use std::time::Duration;

/// Default maximum clock offset between nodes.
pub const MAX_OFFSET_DEFAULT: Duration = Duration::from_millis(250);
/// Default time without a heartbeat after which a PENDING transaction may be
/// aborted by anyone who meets its intents.
pub const TXN_EXPIRY_DEFAULT: Duration = Duration::from_secs(5);
/// Default interval between a coordinator's heartbeats (a fifth of the
/// expiry, so four may be lost).
pub const HEARTBEAT_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// Default range size that triggers a split.
pub const RANGE_SPLIT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Smallest split threshold accepted (tests go down to KiB).
pub const RANGE_SPLIT_BYTES_MIN: u64 = 1024;
/// Default age past which old versions are garbage.
pub const GC_HORIZON_DEFAULT: Duration = Duration::from_secs(4 * 3600);
/// Default rows one range returns for one scan request before handing back
/// a resume span.
pub const SCAN_ROWS_MAX_DEFAULT: usize = 10_000;
/// Locks one resolution request resolves before handing back a resume span.
pub const RESOLVE_KEYS_MAX: usize = 10_000;
/// Most hops a deadlock probe follows along the waits-for chain.
pub const DEADLOCK_PROBE_HOPS_MAX: usize = 64;
/// Most times a batch is re-sent after a refresh, a re-route or a retry at a
/// new timestamp, before giving up with a retry error.
pub const BATCH_ATTEMPTS_MAX: usize = 32;
/// Most requests in one batch; a larger batch is refused as a caller bug.
pub const BATCH_REQUESTS_MAX: usize = 100_000;
/// Most spans a transaction tracks for refresh or resolution before merging
/// them into covering spans.
pub const TRACKED_SPANS_MAX: usize = 1024;

/// Configuration of the KV layer of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvConfig {
    /// Bound on the clock offset between any two clocks that serve the same
    /// data (`Duration::ZERO` for shards of one node sharing one clock).
    pub max_offset: Duration,
    pub txn_expiry: Duration,
    pub heartbeat_interval: Duration,
    /// How often a waiter re-checks the liveness of the lock holder it
    /// waits for (and re-probes for deadlocks).
    pub liveness_interval: Duration,
    pub range_split_bytes: u64,
    pub gc_horizon: Duration,
    pub scan_rows_max: usize,
    /// Default lock timeout (`None`: wait forever, as PostgreSQL's 0).
    pub lock_timeout: Option<Duration>,
}

impl Default for KvConfig {
    fn default() -> KvConfig {
        KvConfig {
            max_offset: MAX_OFFSET_DEFAULT,
            txn_expiry: TXN_EXPIRY_DEFAULT,
            heartbeat_interval: HEARTBEAT_INTERVAL_DEFAULT,
            liveness_interval: HEARTBEAT_INTERVAL_DEFAULT,
            range_split_bytes: RANGE_SPLIT_BYTES_DEFAULT,
            gc_horizon: GC_HORIZON_DEFAULT,
            scan_rows_max: SCAN_ROWS_MAX_DEFAULT,
            lock_timeout: None,
        }
    }
}

impl KvConfig {
    /// Checks the relations the protocol relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval * 2 > self.txn_expiry {
            return Err(format!(
                "heartbeat interval {:?} must be positive and at most half the expiry {:?}",
                self.heartbeat_interval, self.txn_expiry
            ));
        }
        if self.liveness_interval.is_zero() {
            return Err("liveness interval must be positive".into());
        }
        if self.range_split_bytes < RANGE_SPLIT_BYTES_MIN {
            return Err(format!(
                "range split threshold {} below {RANGE_SPLIT_BYTES_MIN} bytes",
                self.range_split_bytes
            ));
        }
        if self.scan_rows_max == 0 {
            return Err("scan_rows_max must be positive".into());
        }
        if self.max_offset > crate::hlc::MAX_OFFSET_LIMIT {
            return Err(format!("max offset {:?} too large", self.max_offset));
        }
        Ok(())
    }

    pub(crate) fn expiry_nanos(&self) -> u64 {
        u64::try_from(self.txn_expiry.as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_relations_are_refused() {
        KvConfig::default().validate().unwrap();
        let bad = KvConfig {
            heartbeat_interval: Duration::from_secs(3),
            ..KvConfig::default()
        };
        assert!(bad.validate().is_err());
        let small = KvConfig {
            range_split_bytes: 10,
            ..KvConfig::default()
        };
        assert!(small.validate().is_err());
    }
}
