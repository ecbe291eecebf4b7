//! Group commit: every write that reaches the WAL — engine batches, Raft
//! entries, explicit syncs — queues here. The first writer to find no leader
//! becomes the leader: it takes every queued request (up to
//! [`GROUP_REQUESTS_MAX`]), appends all their records, makes them durable with
//! one write and one fdatasync if any request asked for a sync, applies the
//! batches to the memtable in LSN order, completes every request, and hands the
//! lead to the first request that queued meanwhile. Writers that arrive while a
//! sync is in flight therefore share the next one.
//!
//! A synced batch becomes visible to readers only once it is durable; an
//! unsynced one (the caller chose speed) becomes visible when its group is
//! logged, before it is durable.

use super::batch::WriteBatch;
use super::EngineError;
use crate::wal::{Lsn, RecordMeta};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Most requests one leader takes in one group.
pub const GROUP_REQUESTS_MAX: usize = 4096;

enum Stage {
    Queued(Option<Waker>),
    Lead,
    Done(Result<Lsn, EngineError>),
    Taken,
}

/// One caller's records, and the batch to apply once they are logged.
pub struct Request {
    pub records: Vec<(RecordMeta, Vec<u8>)>,
    pub batch: Option<WriteBatch>,
    pub sync: bool,
    stage: RefCell<Stage>,
}

impl Request {
    pub fn new(
        records: Vec<(RecordMeta, Vec<u8>)>,
        batch: Option<WriteBatch>,
        sync: bool,
    ) -> Rc<Self> {
        Rc::new(Request {
            records,
            batch,
            sync,
            stage: RefCell::new(Stage::Queued(None)),
        })
    }

    fn wake_with(&self, stage: Stage) {
        let mut current = self.stage.borrow_mut();
        if matches!(*current, Stage::Done(_) | Stage::Taken) {
            // Already completed: the first result stands.
            return;
        }
        let old = std::mem::replace(&mut *current, stage);
        drop(current);
        if let Stage::Queued(Some(w)) = old {
            w.wake();
        }
    }

    /// Completes the request and wakes its caller (once: later calls are ignored).
    pub fn finish(&self, result: Result<Lsn, EngineError>) {
        self.wake_with(Stage::Done(result));
    }

    fn lead(&self) {
        self.wake_with(Stage::Lead);
    }

    /// Resolves to `true` when the caller must lead, `false` when done.
    pub fn turn(&self) -> Turn<'_> {
        Turn { request: self }
    }

    /// The result of a finished request (once).
    pub fn take_result(&self) -> Result<Lsn, EngineError> {
        match std::mem::replace(&mut *self.stage.borrow_mut(), Stage::Taken) {
            Stage::Done(result) => result,
            _ => panic!("commit request result taken before it finished"),
        }
    }
}

pub struct Turn<'a> {
    request: &'a Request,
}

impl Future for Turn<'_> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut stage = self.request.stage.borrow_mut();
        match &mut *stage {
            Stage::Lead => Poll::Ready(true),
            Stage::Done(_) => Poll::Ready(false),
            Stage::Queued(waker) => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Stage::Taken => panic!("commit request polled after completion"),
        }
    }
}

/// The queue of requests waiting for a leader.
#[derive(Default)]
pub struct CommitQueue {
    waiting: VecDeque<Rc<Request>>,
    leader: bool,
}

impl CommitQueue {
    /// Queues a request; it leads at once if nobody does.
    pub fn enqueue(&mut self, request: &Rc<Request>) {
        self.waiting.push_back(Rc::clone(request));
        if !self.leader {
            self.leader = true;
            request.lead();
        }
    }

    /// The leader's group: everything queued, oldest first, up to the bound.
    pub fn take_group(&mut self) -> Vec<Rc<Request>> {
        let n = self.waiting.len().min(GROUP_REQUESTS_MAX);
        self.waiting.drain(..n).collect()
    }

    /// The leader is done: the first queued request leads next, if any.
    pub fn hand_off(&mut self) {
        match self.waiting.front() {
            Some(next) => next.lead(),
            None => self.leader = false,
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}
