//! Latches: short-lived span locks that serialize the evaluation of
//! overlapping requests on one range.
//!
//! A request takes read latches on what it reads and write latches on what
//! it writes, in engine-key space, for the time of evaluation and apply only
//! (never while waiting for a transaction lock). Two latches conflict when
//! their spans overlap and either is a write latch.
//!
//! Fairness: requests are ordered by arrival; a request proceeds once no
//! *earlier* request still holding or waiting for latches conflicts with it.
//! So a stream of readers cannot starve a writer. Acquisition is all spans at
//! once, in arrival order, which rules out latch deadlocks.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use crate::sync::Signal;

/// An engine-key span `[start, end)` and whether it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatchSpan {
    pub start: Bytes,
    pub end: Bytes,
    pub write: bool,
}

impl LatchSpan {
    fn conflicts(&self, other: &LatchSpan) -> bool {
        (self.write || other.write) && self.start < other.end && other.start < self.end
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    spans: Vec<LatchSpan>,
    signal: Signal,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Holders and waiters in arrival order.
    entries: Vec<Entry>,
}

/// The latch manager of one range.
#[derive(Clone, Debug, Default)]
pub struct Latches {
    state: Rc<RefCell<State>>,
}

/// Held latches; dropping releases them.
#[derive(Debug)]
pub struct LatchGuard {
    state: Rc<RefCell<State>>,
    id: u64,
}

impl Latches {
    pub fn new() -> Latches {
        Latches::default()
    }

    /// Waits until no earlier request conflicts, then holds `spans`.
    pub async fn acquire(&self, spans: Vec<LatchSpan>) -> LatchGuard {
        let (id, signal) = {
            let mut state = self.state.borrow_mut();
            let id = state.next_id;
            state.next_id += 1;
            let signal = Signal::new();
            state.entries.push(Entry {
                id,
                spans,
                signal: signal.clone(),
            });
            (id, signal)
        };
        // The guard exists from here on, so a cancelled wait still removes
        // the entry.
        let guard = LatchGuard {
            state: self.state.clone(),
            id,
        };
        while self.blocked(id) {
            signal.wait().await;
        }
        guard
    }

    fn blocked(&self, id: u64) -> bool {
        let state = self.state.borrow();
        let pos = state
            .entries
            .iter()
            .position(|e| e.id == id)
            .expect("latch entry present while waiting");
        let mine = &state.entries[pos];
        state.entries[..pos].iter().any(|earlier| {
            earlier
                .spans
                .iter()
                .any(|a| mine.spans.iter().any(|b| a.conflicts(b)))
        })
    }

    /// Requests holding or waiting for latches.
    pub fn len(&self) -> usize {
        self.state.borrow().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for LatchGuard {
    fn drop(&mut self) {
        let signals: Vec<Signal> = {
            let mut state = self.state.borrow_mut();
            state.entries.retain(|e| e.id != self.id);
            state.entries.iter().map(|e| e.signal.clone()).collect()
        };
        // Later requests re-check; the ones still blocked wait again.
        for s in signals {
            s.fire();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn span(a: &'static str, b: &'static str, write: bool) -> LatchSpan {
        LatchSpan {
            start: Bytes::from_static(a.as_bytes()),
            end: Bytes::from_static(b.as_bytes()),
            write,
        }
    }

    fn poll<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn readers_share_writers_exclude_in_arrival_order() {
        let l = Latches::new();
        let mut r1 = Box::pin(l.acquire(vec![span("a", "c", false)]));
        let g1 = match poll(r1.as_mut()) {
            Poll::Ready(g) => g,
            Poll::Pending => panic!("first reader blocked"),
        };
        let mut w = Box::pin(l.acquire(vec![span("b", "d", true)]));
        assert!(poll(w.as_mut()).is_pending());
        // A later reader overlapping the waiting writer queues behind it.
        let mut r2 = Box::pin(l.acquire(vec![span("b", "c", false)]));
        assert!(poll(r2.as_mut()).is_pending());
        // A disjoint writer passes.
        let mut w2 = Box::pin(l.acquire(vec![span("x", "z", true)]));
        assert!(poll(w2.as_mut()).is_ready());
        drop(g1);
        let gw = match poll(w.as_mut()) {
            Poll::Ready(g) => g,
            Poll::Pending => panic!("writer still blocked"),
        };
        assert!(poll(r2.as_mut()).is_pending());
        drop(gw);
        assert!(poll(r2.as_mut()).is_ready());
    }

    #[test]
    fn cancelled_wait_releases_its_place() {
        let l = Latches::new();
        let g = match poll(Box::pin(l.acquire(vec![span("a", "b", true)])).as_mut()) {
            Poll::Ready(g) => g,
            Poll::Pending => panic!(),
        };
        let mut waiting = Box::pin(l.acquire(vec![span("a", "b", true)]));
        assert!(poll(waiting.as_mut()).is_pending());
        drop(waiting);
        drop(g);
        assert!(l.is_empty());
    }
}
