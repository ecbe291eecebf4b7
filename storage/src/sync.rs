//! Single-threaded async coordination for one shard's tasks: a [`LocalMutex`]
//! that may be held across awaits and a [`Notify`] event. No atomics, no OS
//! locks: every user runs on the shard's thread, and these only decide which
//! task goes next. Runtime-agnostic (glommio in production, any local executor
//! or `block_on` in tests).
//!
//! Wake-ups go to *every* waiter; each re-checks its condition (its ticket, for
//! the mutex). That cannot lose a wake-up when a waiting future is dropped.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

fn register(wakers: &RefCell<Vec<Waker>>, waker: &Waker) {
    let mut w = wakers.borrow_mut();
    if !w.iter().any(|x| x.will_wake(waker)) {
        w.push(waker.clone());
    }
}

fn wake_all(wakers: &RefCell<Vec<Waker>>) {
    let all = std::mem::take(&mut *wakers.borrow_mut());
    for w in all {
        w.wake();
    }
}

/// A mutual-exclusion lock for tasks of one thread, granted in arrival order.
///
/// Fairness matters here: a task that unlocks and at once locks again (a
/// writer committing back to back) would otherwise win every time against a
/// waiter that must first be scheduled (the background task truncating the
/// WAL), starving it. Each `lock()` takes a ticket at its first poll; the lock
/// goes to the lowest ticket still waiting. A waiting `Lock` that is dropped
/// gives its turn up.
#[derive(Debug, Default)]
pub struct LocalMutex<T> {
    locked: Cell<bool>,
    /// The next ticket to hand out.
    next_ticket: Cell<u64>,
    /// The ticket whose turn it is (the holder's while locked).
    serving: Cell<u64>,
    /// Tickets of waiters dropped before their turn.
    abandoned: RefCell<BTreeSet<u64>>,
    waiters: RefCell<Vec<Waker>>,
    value: RefCell<T>,
}

impl<T> LocalMutex<T> {
    pub fn new(value: T) -> Self {
        LocalMutex {
            locked: Cell::new(false),
            next_ticket: Cell::new(0),
            serving: Cell::new(0),
            abandoned: RefCell::new(BTreeSet::new()),
            waiters: RefCell::new(Vec::new()),
            value: RefCell::new(value),
        }
    }

    pub fn lock(&self) -> Lock<'_, T> {
        Lock {
            mutex: self,
            ticket: None,
        }
    }

    /// The lock if it is free now and nobody waits for it.
    pub fn try_lock(&self) -> Option<LocalGuard<'_, T>> {
        if self.locked.get() || self.serving.get() != self.next_ticket.get() {
            return None;
        }
        let ticket = self.take_ticket();
        Some(self.acquire(ticket))
    }

    pub fn is_locked(&self) -> bool {
        self.locked.get()
    }

    fn take_ticket(&self) -> u64 {
        let t = self.next_ticket.get();
        self.next_ticket.set(t + 1);
        t
    }

    fn acquire(&self, ticket: u64) -> LocalGuard<'_, T> {
        assert!(!self.locked.get() && self.serving.get() == ticket);
        self.locked.set(true);
        LocalGuard {
            mutex: self,
            value: Some(self.value.borrow_mut()),
        }
    }

    /// Passes the turn to the next ticket still waiting, and wakes waiters.
    fn advance(&self) {
        let mut next = self.serving.get() + 1;
        let mut abandoned = self.abandoned.borrow_mut();
        while abandoned.remove(&next) {
            next += 1;
        }
        drop(abandoned);
        self.serving.set(next);
        wake_all(&self.waiters);
    }
}

pub struct Lock<'a, T> {
    mutex: &'a LocalMutex<T>,
    /// Taken at the first poll; `None` again once the lock is granted.
    ticket: Option<u64>,
}

impl<'a, T> Future for Lock<'a, T> {
    type Output = LocalGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LocalGuard<'a, T>> {
        let mutex = self.mutex;
        let ticket = *self.ticket.get_or_insert_with(|| mutex.take_ticket());
        if !mutex.locked.get() && mutex.serving.get() == ticket {
            self.ticket = None;
            return Poll::Ready(mutex.acquire(ticket));
        }
        register(&mutex.waiters, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        if self.mutex.serving.get() == ticket {
            // Its turn came (the lock is free) but it will never take it.
            assert!(!self.mutex.locked.get(), "a waiter's turn while locked");
            self.mutex.advance();
        } else {
            self.mutex.abandoned.borrow_mut().insert(ticket);
        }
    }
}

pub struct LocalGuard<'a, T> {
    mutex: &'a LocalMutex<T>,
    value: Option<RefMut<'a, T>>,
}

impl<T> std::ops::Deref for LocalGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("guard holds the value")
    }
}

impl<T> std::ops::DerefMut for LocalGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("guard holds the value")
    }
}

impl<T> Drop for LocalGuard<'_, T> {
    fn drop(&mut self) {
        self.value = None;
        self.mutex.locked.set(false);
        self.mutex.advance();
    }
}

/// An event: tasks wait for the generation to pass a value they saw.
#[derive(Debug, Default)]
pub struct Notify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    pub fn notify_all(&self) {
        self.generation.set(self.generation.get() + 1);
        wake_all(&self.waiters);
    }

    /// Resolves once [`Notify::notify_all`] is called after `seen` was read.
    pub fn wait(&self, seen: u64) -> Wait<'_> {
        Wait { notify: self, seen }
    }
}

pub struct Wait<'a> {
    notify: &'a Notify,
    seen: u64,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.seen {
            return Poll::Ready(());
        }
        register(&self.notify.waiters, cx.waker());
        Poll::Pending
    }
}

/// Polls every future until all are done; outputs in order. For a handful of
/// concurrent I/Os of one task (bounded by the caller).
pub fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> JoinAll<F> {
    let futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let outputs = futures.iter().map(|_| None).collect();
    JoinAll { futures, outputs }
}

pub struct JoinAll<F: Future> {
    futures: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
}

impl<F: Future> Future for JoinAll<F>
where
    F::Output: Unpin,
{
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        let this = self.get_mut(); // Unpin: the futures are boxed.
        for (slot, out) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(f) = slot {
                if let Poll::Ready(v) = f.as_mut().poll(cx) {
                    *out = Some(v);
                    *slot = None;
                }
            }
        }
        if this.futures.iter().all(Option::is_none) {
            Poll::Ready(
                this.outputs
                    .iter_mut()
                    .map(|o| o.take().expect("every future finished"))
                    .collect(),
            )
        } else {
            Poll::Pending
        }
    }
}

/// Gives other tasks of the executor a turn.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, zip};
    use std::rc::Rc;

    #[test]
    fn mutex_serialises_across_awaits() {
        let m = Rc::new(LocalMutex::new(Vec::new()));
        let task = |id: u32| {
            let m = Rc::clone(&m);
            async move {
                let mut g = m.lock().await;
                g.push((id, 0));
                yield_now().await;
                g.push((id, 1));
            }
        };
        block_on(zip(task(1), task(2)));
        let log = m.try_lock().unwrap().clone();
        assert_eq!(log, [(1, 0), (1, 1), (2, 0), (2, 1)]);
    }

    #[test]
    fn mutex_is_granted_in_arrival_order_and_a_relock_waits_its_turn() {
        let m = Rc::new(LocalMutex::new(Vec::new()));
        // Task 1 locks twice in a row; task 2 queued meanwhile goes between.
        let t1 = {
            let m = Rc::clone(&m);
            async move {
                let mut g = m.lock().await;
                g.push(1);
                yield_now().await;
                yield_now().await;
                drop(g);
                m.lock().await.push(1);
            }
        };
        let t2 = {
            let m = Rc::clone(&m);
            async move {
                yield_now().await;
                m.lock().await.push(2);
            }
        };
        block_on(zip(t1, t2));
        assert_eq!(*m.try_lock().unwrap(), [1, 2, 1]);
    }

    #[test]
    fn a_dropped_waiter_gives_up_its_turn() {
        let m = LocalMutex::new(0);
        let held = m.try_lock().unwrap();
        let mut dropped = Box::pin(m.lock());
        let mut waiting = Box::pin(m.lock());
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        assert!(dropped.as_mut().poll(&mut cx).is_pending());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        assert!(m.try_lock().is_none(), "waiters go first");
        drop(dropped);
        drop(held);
        assert!(matches!(waiting.as_mut().poll(&mut cx), Poll::Ready(_)));
        // Its turn came while it was dropped: the next one still gets the lock.
        let g = m.try_lock().unwrap();
        let mut late = Box::pin(m.lock());
        assert!(late.as_mut().poll(&mut cx).is_pending());
        drop(g);
        drop(late);
        assert!(m.try_lock().is_some());
    }

    #[test]
    fn notify_wakes_waiters() {
        let n = Rc::new(Notify::new());
        let seen = n.generation();
        let n2 = Rc::clone(&n);
        let (_, _) = block_on(zip(n.wait(seen), async move {
            yield_now().await;
            n2.notify_all();
        }));
        assert_eq!(n.generation(), seen + 1);
    }
}
