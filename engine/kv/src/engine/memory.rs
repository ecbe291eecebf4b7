//! [`MemEngine`]: the engine semantics of [`super`] in a `BTreeMap`, ordered
//! by (key ascending, timestamp descending) like the LSM's memtable.
//!
//! It is the shard's engine until the LSM is wired in, and the engine of the
//! deterministic tests. It survives a "crash" of everything above it (a test
//! keeps the `Rc` and rebuilds the store), which models a durable engine.
//! [`MemEngine::fail_next_apply`] injects an I/O error into the next apply.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use super::{Engine, EngineError, KeyVersion, LocalBoxFuture, Mutation, Version, WriteBatch};
use crate::hlc::Timestamp;

type Entries = BTreeMap<(Bytes, Reverse<Timestamp>), Option<Bytes>>;

/// An in-memory engine shared by the ranges of one shard.
#[derive(Debug, Default)]
pub struct MemEngine {
    entries: RefCell<Entries>,
    fail_next_apply: RefCell<Option<EngineError>>,
}

impl MemEngine {
    pub fn new() -> MemEngine {
        MemEngine::default()
    }

    /// Entries held, tombstones included.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    /// Makes the next `apply` fail with `error`, applying nothing.
    pub fn fail_next_apply(&self, error: EngineError) {
        *self.fail_next_apply.borrow_mut() = Some(error);
    }

    fn get_sync(entries: &Entries, key: &[u8], ts: Timestamp) -> Option<Version> {
        let from = (Bytes::copy_from_slice(key), Reverse(ts));
        let ((k, Reverse(found_ts)), value) = entries.range(from..).next()?;
        (k[..] == *key).then(|| Version {
            ts: *found_ts,
            value: value.clone(),
        })
    }

    /// The first key `>= start` and `< end`.
    fn next_key(entries: &Entries, start: &[u8], end: &[u8]) -> Option<Bytes> {
        let from = (Bytes::copy_from_slice(start), Reverse(Timestamp::MAX));
        let ((k, _), _) = entries.range(from..).next()?;
        (k[..] < *end).then(|| k.clone())
    }

    /// The last key `< end` and `>= start`.
    fn prev_key(entries: &Entries, start: &[u8], end: &[u8]) -> Option<Bytes> {
        let to = (Bytes::copy_from_slice(end), Reverse(Timestamp::MAX));
        let ((k, _), _) = entries.range(..to).next_back()?;
        (k[..] >= *start).then(|| k.clone())
    }

    fn scan_sync(
        entries: &Entries,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        reverse: bool,
        limit: usize,
    ) -> Vec<KeyVersion> {
        let mut out = Vec::new();
        let mut cursor = if reverse {
            Self::prev_key(entries, start, end)
        } else {
            Self::next_key(entries, start, end)
        };
        while let Some(key) = cursor {
            if out.len() >= limit {
                break;
            }
            if let Some(version) = Self::get_sync(entries, &key, ts) {
                out.push((key.clone(), version));
            }
            cursor = if reverse {
                Self::prev_key(entries, start, &key)
            } else {
                let mut next = key.to_vec();
                next.push(0);
                Self::next_key(entries, &next, end)
            };
        }
        out
    }
}

impl Engine for MemEngine {
    fn get<'a>(
        &'a self,
        key: &'a [u8],
        ts: Timestamp,
    ) -> LocalBoxFuture<'a, Result<Option<Version>, EngineError>> {
        let result = Self::get_sync(&self.entries.borrow(), key, ts);
        Box::pin(async move { Ok(result) })
    }

    fn scan<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        ts: Timestamp,
        reverse: bool,
        limit: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<KeyVersion>, EngineError>> {
        let result = Self::scan_sync(&self.entries.borrow(), start, end, ts, reverse, limit);
        Box::pin(async move { Ok(result) })
    }

    fn scan_versions<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        limit: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<KeyVersion>, EngineError>> {
        let from = (Bytes::copy_from_slice(start), Reverse(Timestamp::MAX));
        let to = (Bytes::copy_from_slice(end), Reverse(Timestamp::MAX));
        let result: Vec<KeyVersion> = self
            .entries
            .borrow()
            .range((Bound::Included(from), Bound::Excluded(to)))
            .take(limit)
            .map(|((k, Reverse(ts)), v)| {
                (
                    k.clone(),
                    Version {
                        ts: *ts,
                        value: v.clone(),
                    },
                )
            })
            .collect();
        Box::pin(async move { Ok(result) })
    }

    fn apply<'a>(&'a self, batch: &'a WriteBatch) -> LocalBoxFuture<'a, Result<(), EngineError>> {
        let result = match self.fail_next_apply.borrow_mut().take() {
            Some(error) => Err(error),
            None => {
                let mut entries = self.entries.borrow_mut();
                for m in &batch.mutations {
                    match m {
                        Mutation::Put { key, ts, value } => {
                            entries.insert((key.clone(), Reverse(*ts)), Some(value.clone()));
                        }
                        Mutation::Delete { key, ts } => {
                            entries.insert((key.clone(), Reverse(*ts)), None);
                        }
                        Mutation::Clear { key, ts } => {
                            entries.remove(&(key.clone(), Reverse(*ts)));
                        }
                    }
                }
                Ok(())
            }
        };
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(w: u64) -> Timestamp {
        Timestamp::new(w, 0)
    }

    fn now<T>(f: LocalBoxFuture<'_, T>) -> T {
        // The memory engine's futures are ready at once.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = f;
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("memory engine future pending"),
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn engine() -> MemEngine {
        let e = MemEngine::new();
        let mut wb = WriteBatch::new();
        wb.put(b("a"), ts(1), b("a1"));
        wb.put(b("a"), ts(3), b("a3"));
        wb.delete(b("b"), ts(2));
        wb.put(b("b"), ts(1), b("b1"));
        wb.put(b("c"), ts(5), b("c5"));
        now(e.apply(&wb)).unwrap();
        e
    }

    #[test]
    fn get_returns_newest_at_or_below() {
        let e = engine();
        assert_eq!(now(e.get(b"a", ts(0))).unwrap(), None);
        assert_eq!(
            now(e.get(b"a", ts(2))).unwrap().unwrap().value,
            Some(b("a1"))
        );
        assert_eq!(now(e.get(b"a", ts(3))).unwrap().unwrap().ts, ts(3));
        let b2 = now(e.get(b"b", ts(9))).unwrap().unwrap();
        assert_eq!((b2.ts, b2.value), (ts(2), None));
        assert_eq!(now(e.get(b"bb", ts(9))).unwrap(), None);
    }

    #[test]
    fn scans_forward_reverse_and_limited() {
        let e = engine();
        let keys = |v: Vec<KeyVersion>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(now(e.scan(b"a", b"z", ts(2), false, 10)).unwrap()),
            vec![b("a"), b("b")]
        );
        assert_eq!(
            keys(now(e.scan(b"a", b"z", ts(9), true, 10)).unwrap()),
            vec![b("c"), b("b"), b("a")]
        );
        assert_eq!(
            keys(now(e.scan(b"a", b"c", ts(9), true, 1)).unwrap()),
            vec![b("b")]
        );
        assert_eq!(now(e.scan_versions(b"a", b"b", 10)).unwrap().len(), 2);
    }

    #[test]
    fn clear_removes_and_injected_failure_applies_nothing() {
        let e = engine();
        let mut wb = WriteBatch::new();
        wb.clear(b("a"), ts(3));
        now(e.apply(&wb)).unwrap();
        assert_eq!(now(e.get(b"a", ts(9))).unwrap().unwrap().ts, ts(1));
        e.fail_next_apply(EngineError::Io("boom".into()));
        let mut wb = WriteBatch::new();
        wb.put(b("z"), ts(1), b("z"));
        assert!(now(e.apply(&wb)).is_err());
        assert_eq!(now(e.get(b"z", ts(9))).unwrap(), None);
    }
}
