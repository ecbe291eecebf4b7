//! Hybrid logical clock (HLC): one per shard, the source of every MVCC
//! timestamp the shard issues.
//!
//! A [`Timestamp`] is a pair `(wall_nanos, logical)` ordered
//! lexicographically. The wall part tracks physical time (nanoseconds since
//! the Unix epoch) as closely as causality allows; the logical part orders
//! events that share a wall time. (Kulkarni, Demirbas et al., "Logical
//! Physical Clocks", 2014.)
//!
//! # Rules
//! With `last` the latest timestamp the clock issued and `pt` the physical
//! time passed in by the caller:
//! * **`now(pt)`** (a local event, or a send): the smallest timestamp that is
//!   `> last` and `>= (pt, 0)`, i.e. `max(last.next(), (pt, 0))`.
//! * **`update(remote, pt)`** (a receive; every message between shards and
//!   nodes carries the sender's timestamp): first the offset check — if
//!   `remote.wall > pt + max_offset` the sender's clock (or ours) is broken;
//!   under [`FarAheadPolicy::Reject`] the message is refused with
//!   [`ClockError::RemoteTooFarAhead`] and the clock is left untouched, under
//!   [`FarAheadPolicy::Warn`] it is counted ([`Hlc::far_ahead_warnings`]) and
//!   accepted. An accepted receive issues the smallest timestamp that is
//!   `> last`, `> remote` and `>= (pt, 0)`, i.e.
//!   `max(last.next(), remote.next(), (pt, 0))`.
//! * **Logical overflow**: [`Timestamp::next`] of `(w, u32::MAX)` is
//!   `(w + 1, 0)`: the clock borrows one nanosecond from the future rather than
//!   wrap or panic. Reaching it takes 2^32 events within one nanosecond of
//!   wall time, so in practice only a remote timestamp with a saturated
//!   logical part triggers it.
//!
//! # Invariants
//! The first two are asserted on every call; all are checked by the
//! deterministic simulation in the tests (4 clocks, skewed, stalling and
//! jumping physical clocks, delayed and reordered messages).
//! * **Strict monotonicity**: every timestamp a clock issues is greater than
//!   all it issued before — even when the physical clock stalls or steps
//!   backwards (the wall part then stays put and the logical part counts).
//! * **Causality**: a receive's timestamp is greater than the sender's
//!   timestamp, hence greater than everything that happened before the send.
//! * **Bounded drift**: the wall part never runs ahead of physical time by
//!   more than the accepted remote timestamps allow. Precisely, for a clock
//!   under `Reject`, every issued wall time is
//!   `<= max(physical times passed to this clock) + max_offset`, plus one
//!   nanosecond per logical overflow. Stronger, in any system of clocks
//!   (either policy) that exchange only each other's timestamps, every wall
//!   time ever issued is one of the physical times some clock was given (plus
//!   overflows), so no wall time exceeds the largest physical reading.
//! * `Timestamp::MAX` is never issued (it is free to serve as "infinity"),
//!   and wall times of accepted remote timestamps stay below
//!   [`WALL_NANOS_LIMIT`], so the arithmetic here cannot overflow.
//!
//! # Why physical time is an argument
//! The clock never reads a system clock. The shard loop reads physical time
//! once per pass and hands it in; the deterministic simulator hands in a
//! simulated, skewed, stalling or jumping clock instead, so every run —
//! including clock faults — replays exactly from its seed.
//!
//! # Uncertainty
//! `max_offset` is the configured bound on the offset between any two
//! nodes' physical clocks (nodes whose clocks exceed it must be fenced off;
//! the `Reject` policy is the local half of that). A value written on any
//! node *before* a read began in real time carries a wall time no greater
//! than the largest physical clock reading in the cluster at that time
//! (bounded drift, above), which is at most `max_offset` ahead of the
//! reader's physical clock, itself `<= read_ts.wall`. The logical part says
//! nothing about real time, so the limit takes every logical value of the
//! last wall time. So a reader at `read_ts` treats values in
//! `(read_ts, (read_ts.wall + max_offset, u32::MAX)]` ([`Hlc::uncertainty_limit`],
//! [`is_uncertain`]) as possibly in its past: it must restart at a timestamp
//! `>=` the uncertain value's. Values above the limit were certainly written
//! after the read began and are ignored. A restart keeps its original limit,
//! so the window only shrinks and restarts are bounded.
//!
//! # Hazards
//! * A physical clock offset beyond `max_offset` silently breaks
//!   linearizability of reads (stale reads). `Reject` detects only the
//!   offsets that messages happen to reveal.
//! * `Warn` lets one broken clock drag every clock it talks to forwards;
//!   their wall times then run ahead of physical time until it catches up.

use std::fmt;
use std::time::Duration;

/// Wall times (and physical times) must stay below this: `i64::MAX`
/// nanoseconds after the epoch, in the year 2262. Remote timestamps at or
/// above it are refused whatever the policy; physical times at or above it
/// are a caller bug.
pub const WALL_NANOS_LIMIT: u64 = i64::MAX as u64;

/// The largest `max_offset` an [`Hlc`] accepts.
pub const MAX_OFFSET_LIMIT: Duration = Duration::from_secs(3600);

const NANOS_PER_SEC: u64 = 1_000_000_000;

// `physical + max_offset` cannot overflow for any accepted inputs.
const _: () = assert!(WALL_NANOS_LIMIT
    .checked_add(MAX_OFFSET_LIMIT.as_secs() * NANOS_PER_SEC)
    .is_some());

/// A point in hybrid-logical time, ordered by `(wall_nanos, logical)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Nanoseconds since the Unix epoch (physical component).
    pub wall_nanos: u64,
    /// Orders events sharing a wall time.
    pub logical: u32,
}

impl Timestamp {
    /// The smallest timestamp.
    pub const ZERO: Timestamp = Timestamp::new(0, 0);
    /// The largest timestamp; never issued by an [`Hlc`].
    pub const MAX: Timestamp = Timestamp::new(u64::MAX, u32::MAX);

    pub const fn new(wall_nanos: u64, logical: u32) -> Timestamp {
        Timestamp {
            wall_nanos,
            logical,
        }
    }

    /// The smallest timestamp greater than `self`, `None` for `MAX`. A
    /// saturated logical part carries into the wall part.
    pub const fn checked_next(self) -> Option<Timestamp> {
        if self.logical < u32::MAX {
            Some(Timestamp::new(self.wall_nanos, self.logical + 1))
        } else if self.wall_nanos < u64::MAX {
            Some(Timestamp::new(self.wall_nanos + 1, 0))
        } else {
            None
        }
    }

    /// The largest timestamp less than `self`, `None` for `ZERO`.
    pub const fn checked_prev(self) -> Option<Timestamp> {
        if self.logical > 0 {
            Some(Timestamp::new(self.wall_nanos, self.logical - 1))
        } else if self.wall_nanos > 0 {
            Some(Timestamp::new(self.wall_nanos - 1, u32::MAX))
        } else {
            None
        }
    }

    /// The smallest timestamp greater than `self`.
    ///
    /// # Panics
    /// On `Timestamp::MAX`, which has no successor.
    pub fn next(self) -> Timestamp {
        self.checked_next()
            .expect("Timestamp::MAX has no successor")
    }

    /// The largest timestamp less than `self`.
    ///
    /// # Panics
    /// On `Timestamp::ZERO`, which has no predecessor.
    pub fn prev(self) -> Timestamp {
        self.checked_prev()
            .expect("Timestamp::ZERO has no predecessor")
    }

    /// `self` moved `nanos` later in wall time, logical part kept; the wall
    /// part saturates at `u64::MAX`.
    pub const fn add_nanos(self, nanos: u64) -> Timestamp {
        Timestamp::new(self.wall_nanos.saturating_add(nanos), self.logical)
    }
}

impl fmt::Display for Timestamp {
    /// `seconds.nanoseconds,logical`, e.g. `1700000000.000000123,4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.wall_nanos / NANOS_PER_SEC;
        let nanos = self.wall_nanos % NANOS_PER_SEC;
        write!(f, "{secs}.{nanos:09},{}", self.logical)
    }
}

/// What [`Hlc::update`] does with a remote timestamp more than `max_offset`
/// ahead of the local physical clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FarAheadPolicy {
    /// Refuse the message with [`ClockError::RemoteTooFarAhead`] (default).
    Reject,
    /// Accept it and count it in [`Hlc::far_ahead_warnings`] for the caller
    /// to log and export.
    Warn,
}

/// Why [`Hlc::update`] refused a remote timestamp. The clock is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockError {
    /// `remote.wall_nanos > local_physical + max_offset`.
    RemoteTooFarAhead {
        remote: Timestamp,
        local_physical: u64,
        max_offset: Duration,
    },
    /// `remote.wall_nanos >= WALL_NANOS_LIMIT`: refused under either policy.
    RemoteOutOfRange { remote: Timestamp },
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockError::RemoteTooFarAhead {
                remote,
                local_physical,
                max_offset,
            } => write!(
                f,
                "remote timestamp {remote} is more than the maximum clock offset \
                 {max_offset:?} ahead of the local physical clock {}",
                Timestamp::new(*local_physical, 0)
            ),
            ClockError::RemoteOutOfRange { remote } => {
                write!(f, "remote timestamp {remote} is beyond the year 2262")
            }
        }
    }
}

impl std::error::Error for ClockError {}

/// A hybrid logical clock. One per shard, owned by it; see the module docs
/// for its rules and invariants.
///
/// ```
/// use std::time::Duration;
/// use teller_kv::hlc::{Hlc, Timestamp};
///
/// let mut hlc = Hlc::new(Duration::from_millis(500));
/// let t1 = hlc.now(1_000);
/// let t2 = hlc.now(900); // the physical clock stepped back: still later
/// assert!(t2 > t1);
/// let remote = Timestamp::new(2_000, 7);
/// let t3 = hlc.update(remote, 950).expect("within max_offset");
/// assert_eq!(t3, Timestamp::new(2_000, 8));
/// ```
#[derive(Debug)]
pub struct Hlc {
    /// The latest timestamp issued; `ZERO` before the first.
    last: Timestamp,
    max_offset: Duration,
    max_offset_nanos: u64,
    policy: FarAheadPolicy,
    far_ahead_warnings: u64,
}

impl Hlc {
    /// A clock that rejects remote timestamps more than `max_offset` ahead.
    ///
    /// # Panics
    /// If `max_offset > MAX_OFFSET_LIMIT`.
    pub fn new(max_offset: Duration) -> Hlc {
        Hlc::with_policy(max_offset, FarAheadPolicy::Reject)
    }

    /// # Panics
    /// If `max_offset > MAX_OFFSET_LIMIT`.
    pub fn with_policy(max_offset: Duration, policy: FarAheadPolicy) -> Hlc {
        assert!(
            max_offset <= MAX_OFFSET_LIMIT,
            "max_offset {max_offset:?} exceeds {MAX_OFFSET_LIMIT:?}"
        );
        let max_offset_nanos =
            u64::try_from(max_offset.as_nanos()).expect("bounded by MAX_OFFSET_LIMIT");
        Hlc {
            last: Timestamp::ZERO,
            max_offset,
            max_offset_nanos,
            policy,
            far_ahead_warnings: 0,
        }
    }

    /// Issues a timestamp for a local event or a send: `> last()` and
    /// `>= (physical_now_nanos, 0)`.
    pub fn now(&mut self, physical_now_nanos: u64) -> Timestamp {
        assert_physical(physical_now_nanos);
        let ts = self.last.next().max(Timestamp::new(physical_now_nanos, 0));
        self.advance_to(ts, physical_now_nanos)
    }

    /// Issues a timestamp for the receipt of a message stamped `remote`:
    /// `> last()`, `> remote` and `>= (physical_now_nanos, 0)`. Refuses
    /// (leaving the clock unchanged) a remote timestamp too far ahead, see
    /// [`FarAheadPolicy`].
    pub fn update(
        &mut self,
        remote: Timestamp,
        physical_now_nanos: u64,
    ) -> Result<Timestamp, ClockError> {
        assert_physical(physical_now_nanos);
        if remote.wall_nanos >= WALL_NANOS_LIMIT {
            return Err(ClockError::RemoteOutOfRange { remote });
        }
        // Cannot overflow: see the const assertion on WALL_NANOS_LIMIT.
        let ceiling = physical_now_nanos + self.max_offset_nanos;
        if remote.wall_nanos > ceiling {
            match self.policy {
                FarAheadPolicy::Reject => {
                    return Err(ClockError::RemoteTooFarAhead {
                        remote,
                        local_physical: physical_now_nanos,
                        max_offset: self.max_offset,
                    })
                }
                FarAheadPolicy::Warn => {
                    self.far_ahead_warnings = self.far_ahead_warnings.saturating_add(1);
                }
            }
        }
        let ts = self
            .last
            .next()
            .max(remote.next())
            .max(Timestamp::new(physical_now_nanos, 0));
        let ts = self.advance_to(ts, physical_now_nanos);
        assert!(ts > remote, "hlc: receive {ts} not after send {remote}");
        Ok(ts)
    }

    /// Records `ts` as the latest issued timestamp, asserting the invariants.
    fn advance_to(&mut self, ts: Timestamp, physical_now_nanos: u64) -> Timestamp {
        assert!(
            ts > self.last,
            "hlc: monotonicity violated: {ts} issued after {}",
            self.last
        );
        assert!(ts >= Timestamp::new(physical_now_nanos, 0));
        assert!(ts < Timestamp::MAX, "hlc: timestamp space exhausted");
        self.last = ts;
        ts
    }

    /// The latest timestamp issued (`ZERO` before the first).
    pub fn last(&self) -> Timestamp {
        self.last
    }

    pub fn max_offset(&self) -> Duration {
        self.max_offset
    }

    pub fn policy(&self) -> FarAheadPolicy {
        self.policy
    }

    /// How many remote timestamps beyond `max_offset` were accepted under
    /// [`FarAheadPolicy::Warn`] (saturating).
    pub fn far_ahead_warnings(&self) -> u64 {
        self.far_ahead_warnings
    }

    /// The upper end (inclusive) of the uncertainty window of a read at
    /// `read_ts`: the largest timestamp with wall time
    /// `read_ts.wall_nanos + max_offset` (saturating).
    ///
    /// The logical part is `u32::MAX`, not `read_ts.logical`: a writer's
    /// logical count says nothing about real time, so a value at wall
    /// `read.wall + max_offset` with any logical part may precede the read.
    /// A restarted read keeps the limit of its first attempt.
    pub fn uncertainty_limit(&self, read_ts: Timestamp) -> Timestamp {
        let wall_nanos = read_ts.wall_nanos.saturating_add(self.max_offset_nanos);
        let limit = Timestamp::new(wall_nanos, u32::MAX);
        assert!(limit >= read_ts);
        limit
    }
}

/// Whether a value at `value_ts` is uncertain for a read at `read_ts` with
/// uncertainty limit `limit`: `read_ts < value_ts <= limit`. Such a value may
/// have been written before the read began, so the read must restart at a
/// timestamp `>= value_ts`. Values at or below `read_ts` are visible; values
/// above `limit` are in the read's future.
///
/// # Panics
/// If `limit < read_ts`.
pub fn is_uncertain(value_ts: Timestamp, read_ts: Timestamp, limit: Timestamp) -> bool {
    assert!(
        read_ts <= limit,
        "uncertainty limit {limit} below read timestamp {read_ts}"
    );
    read_ts < value_ts && value_ts <= limit
}

fn assert_physical(physical_now_nanos: u64) {
    assert!(
        physical_now_nanos < WALL_NANOS_LIMIT,
        "physical time {physical_now_nanos} ns is beyond the year 2262"
    );
}

#[cfg(test)]
mod tests;
