//! Splitting a range by size.
//!
//! A range whose estimated size passes `range_split_bytes` splits at a
//! **sampled middle key**: one paged pass over the newest version of each
//! key keeps at most [`SPLIT_SAMPLES_MAX`] keys, evenly spaced by
//! cumulative bytes (the spacing doubles whenever the sample fills up), and
//! the sampled key closest to half the total becomes the boundary. Memory is
//! bounded by the page and the sample, whatever the range's size; time is
//! one read of the range, paid once per `range_split_bytes` written.
//!
//! The pass runs without latches (the boundary needs no consistency: any key
//! inside the span splits it correctly); only the split itself — two
//! descriptors through the left range's log, the right range's new log —
//! holds a write latch over the whole range. Boundaries are user keys, so
//! all versions of a key (and its lock record) stay on one side; a
//! transaction record sorts next to its anchor key and follows it.
//!
//! A range also splits **by load**: when a whole one-second window of
//! requests on it passes the store's threshold (`set_load_split`), at the
//! middle of a uniform sample of those requests' keys (so the halves share
//! the load, not the bytes). A range whose requests all go to one key does
//! not split.
//!
//! Both halves get the parent's generation plus one.

use std::rc::Rc;

use bytes::Bytes;

use super::Store;
use crate::engine::WriteBatch;
use crate::error::KvError;
use crate::hlc::Timestamp;
use crate::keys::{self, Span, NS_DATA, NS_TXN};
use crate::latch::LatchSpan;
use crate::replica::{latch_user_span, RangeDesc, Replica};

/// Keys read per engine scan while sizing a range or sampling its middle.
pub const SIZE_SCAN_PAGE_KEYS: usize = 1024;
/// Most keys the middle-key sample holds.
pub const SPLIT_SAMPLES_MAX: usize = 128;
const _: () = assert!(SPLIT_SAMPLES_MAX >= 4 && SPLIT_SAMPLES_MAX.is_multiple_of(2));

/// Bytes a version counts for in size estimates: key, value and timestamp.
fn entry_bytes(key: &[u8], value: Option<&Bytes>) -> u64 {
    (key.len() + value.map_or(0, |v| v.len()) + 12) as u64
}

/// Evenly spaced keys by cumulative bytes, bounded.
struct Sample {
    points: Vec<(Bytes, u64)>,
    step: u64,
    next: u64,
    total: u64,
    keys: u64,
}

impl Sample {
    fn new() -> Sample {
        Sample {
            points: Vec::with_capacity(SPLIT_SAMPLES_MAX),
            step: 1,
            next: 0,
            total: 0,
            keys: 0,
        }
    }

    /// Adds a key whose versions take `bytes`; `key` is a user key.
    fn add(&mut self, key: Bytes, bytes: u64) {
        if self.total >= self.next {
            if self.points.len() == SPLIT_SAMPLES_MAX {
                let kept: Vec<(Bytes, u64)> = self.points.drain(..).step_by(2).collect();
                self.points = kept;
                self.step *= 2;
            }
            self.points.push((key, self.total));
            self.next = self.total + self.step;
        }
        self.total += bytes;
        self.keys += 1;
    }

    /// The sampled key (never the first) whose bytes before it are closest
    /// to half the total, with those bytes.
    fn middle(&self) -> Option<(Bytes, u64)> {
        let half = self.total / 2;
        self.points
            .iter()
            .skip(1)
            .min_by_key(|(_, before)| before.abs_diff(half))
            .cloned()
    }
}

impl Store {
    /// Splits `replica` at a sampled middle key, if it holds at least two
    /// keys and no split or move of it is under way.
    pub(super) async fn split(&self, replica: &Rc<Replica>) -> Result<(), KvError> {
        if !replica.begin_split() {
            return Ok(());
        }
        let result = self.split_by_size(replica).await;
        replica.end_split();
        result
    }

    /// Splits `replica` at `key` (a range busier than the load threshold),
    /// if no split or move of it is under way.
    pub(super) async fn split_at(&self, replica: &Rc<Replica>, key: Bytes) -> Result<(), KvError> {
        if !replica.begin_split() {
            return Ok(());
        }
        let bytes = replica.approx_bytes();
        let result = self
            .split_once(
                replica,
                &replica.span(),
                key,
                bytes / 2,
                bytes - bytes / 2,
                "load",
            )
            .await;
        replica.end_split();
        result
    }

    async fn split_by_size(&self, replica: &Rc<Replica>) -> Result<(), KvError> {
        let span = replica.span();
        let sample = self.sample(&span).await?;
        let Some((split_key, left_bytes)) = sample.middle() else {
            replica.set_approx_bytes(sample.total);
            return Ok(());
        };
        let right_bytes = sample.total.saturating_sub(left_bytes);
        self.split_once(replica, &span, split_key, left_bytes, right_bytes, "size")
            .await
    }

    /// Splits `replica`, whose span was `span` when `split_key` was chosen,
    /// at `split_key`: nothing happens if the range changed meanwhile or the
    /// key is not strictly inside it.
    async fn split_once(
        &self,
        replica: &Rc<Replica>,
        span: &Span,
        split_key: Bytes,
        left_bytes: u64,
        right_bytes: u64,
        reason: &'static str,
    ) -> Result<(), KvError> {
        let guard = replica.latches.acquire(split_latches(span)).await;
        if replica.is_closed() || replica.span() != *span {
            return Ok(());
        }
        if split_key <= span.start || !span.contains(&split_key) {
            return Ok(());
        }
        let generation = replica.generation() + 1;
        let right = RangeDesc {
            id: self.fresh_range_id(),
            span: Span {
                start: split_key.clone(),
                end: span.end.clone(),
            },
        };
        let left = RangeDesc {
            id: replica.id(),
            span: Span {
                start: span.start.clone(),
                end: Some(split_key.clone()),
            },
        };
        let mut batch = WriteBatch::new();
        for d in [&left, &right] {
            batch.put(
                keys::meta_key("desc", d.id),
                Timestamp::ZERO,
                d.encode(generation),
            );
        }
        batch.put(
            keys::meta_key("gc", right.id),
            Timestamp::ZERO,
            crate::eval::encode_ts(replica.gc_threshold()),
        );
        // The descriptors go through the left range's log; the right range's
        // log starts once that is applied.
        self.log.replicate(replica.id(), batch).await?;
        self.log.create_range(right.id).await?;
        let right_replica = Replica::with_generation(
            right.clone(),
            generation,
            Timestamp::ZERO,
            replica.gc_threshold(),
        );
        *right_replica.tscache.borrow_mut() = replica.tscache.borrow().split_off(&split_key);
        right_replica.set_approx_bytes(right_bytes);
        replica.set_approx_bytes(left_bytes);
        move_waits_for(replica, &right_replica, &split_key);
        replica.set_span(left.span.clone());
        replica.set_generation(generation);
        self.replicas
            .borrow_mut()
            .insert(right.id, Rc::new(right_replica));
        tracing::info!(
            store = self.id,
            left = left.id,
            right = right.id,
            generation,
            left_start = %super::key_hex(&span.start),
            split_key = %super::key_hex(&split_key),
            right_end = %span.end.as_deref().map_or("max".to_string(), super::key_hex),
            left_bytes,
            right_bytes,
            reason = %reason,
            "range split"
        );
        if let Ok(transport) = self.transport() {
            transport.note_split(&left, &right, self.id);
        }
        drop(guard);
        replica.locks.wake_all();
        Ok(())
    }

    /// One paged pass over the newest version of each key of `span`.
    async fn sample(&self, span: &Span) -> Result<Sample, KvError> {
        let (mut from, end) = keys::engine_span(NS_DATA, span);
        let mut sample = Sample::new();
        loop {
            let page = self
                .engine
                .scan(&from, &end, Timestamp::MAX, false, SIZE_SCAN_PAGE_KEYS)
                .await?;
            let Some((last, _)) = page.last() else {
                return Ok(sample);
            };
            from = keys::key_successor(last);
            let full = page.len() == SIZE_SCAN_PAGE_KEYS;
            for (key, version) in page {
                let bytes = entry_bytes(&key, version.value.as_ref());
                sample.add(keys::user_key(NS_DATA, &key), bytes);
            }
            if !full {
                return Ok(sample);
            }
        }
    }

    /// Estimated bytes of `span`'s versions (the newest of each key), read
    /// a page at a time.
    pub(super) async fn range_bytes(&self, span: &Span) -> Result<u64, KvError> {
        Ok(self.sample(span).await?.total)
    }

    /// A range id no range of this store has (ids are random 64-bit
    /// numbers, never reused).
    pub fn fresh_range_id(&self) -> u64 {
        loop {
            let id = self.env.random_u64();
            if id != 0 && id != u64::MAX && !self.replicas.borrow().contains_key(&id) {
                return id;
            }
        }
    }
}

/// The latches that stop every request on the range `span`: its versions,
/// locks and transaction records.
pub(super) fn split_latches(span: &Span) -> Vec<LatchSpan> {
    let mut spans = latch_user_span(span, true).to_vec();
    let (ts, te) = keys::engine_span(NS_TXN, span);
    spans.push(LatchSpan {
        start: ts,
        end: te,
        write: true,
    });
    spans
}

/// Moves the waits-for edges of transactions anchored at or above `split`
/// to the right half.
fn move_waits_for(left: &Replica, right: &Replica, split: &Bytes) {
    let mut waits = left.waits_for.borrow_mut();
    let moved: Vec<_> = waits
        .iter()
        .filter(|(_, m)| m.anchor >= *split)
        .map(|(id, _)| *id)
        .collect();
    let mut right_waits = right.waits_for.borrow_mut();
    for id in moved {
        if let Some(m) = waits.remove(&id) {
            right_waits.insert(id, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_bounded_and_finds_the_middle() {
        let mut sample = Sample::new();
        for i in 0..100_000u32 {
            sample.add(Bytes::from(i.to_be_bytes().to_vec()), 10);
        }
        assert!(sample.points.len() <= SPLIT_SAMPLES_MAX);
        assert_eq!(sample.total, 1_000_000);
        let (key, before) = sample.middle().unwrap();
        let at = u32::from_be_bytes(key[..].try_into().unwrap());
        assert!((45_000..55_000).contains(&at), "middle at {at}");
        assert!(before.abs_diff(500_000) < 50_000);
    }

    #[test]
    fn skewed_sizes_split_by_bytes_not_keys() {
        let mut sample = Sample::new();
        // 1000 small keys, then 10 huge ones: the byte middle is among the
        // huge ones.
        for i in 0..1000u32 {
            sample.add(Bytes::from(i.to_be_bytes().to_vec()), 1);
        }
        for i in 1000..1010u32 {
            sample.add(Bytes::from(i.to_be_bytes().to_vec()), 10_000);
        }
        let (key, _) = sample.middle().unwrap();
        assert!(u32::from_be_bytes(key[..].try_into().unwrap()) >= 1000);
    }

    #[test]
    fn one_key_has_no_middle() {
        let mut sample = Sample::new();
        sample.add(Bytes::from_static(b"k"), 100);
        assert_eq!(sample.middle(), None);
        assert_eq!(Sample::new().middle(), None);
    }
}
