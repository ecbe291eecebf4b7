//! Single-threaded async coordination for one shard's tasks: a [`LocalMutex`]
//! that may be held across awaits and a [`Notify`] event. No atomics, no OS
//! locks: every user runs on the shard's thread, and these only decide which
//! task goes next. Runtime-agnostic (glommio in production, any local executor
//! or `block_on` in tests).
//!
//! Wake-ups go to *every* waiter; each re-checks its condition. That is simpler
//! than a fair queue and cannot lose a wake-up when a waiting future is dropped.

use std::cell::{Cell, RefCell, RefMut};
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

/// A mutual-exclusion lock for tasks of one thread.
#[derive(Debug, Default)]
pub struct LocalMutex<T> {
    locked: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
    value: RefCell<T>,
}

impl<T> LocalMutex<T> {
    pub fn new(value: T) -> Self {
        LocalMutex {
            locked: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
            value: RefCell::new(value),
        }
    }

    pub fn lock(&self) -> Lock<'_, T> {
        Lock { mutex: self }
    }

    /// The lock if it is free now.
    pub fn try_lock(&self) -> Option<LocalGuard<'_, T>> {
        if self.locked.get() {
            return None;
        }
        self.locked.set(true);
        Some(LocalGuard {
            mutex: self,
            value: Some(self.value.borrow_mut()),
        })
    }

    pub fn is_locked(&self) -> bool {
        self.locked.get()
    }
}

pub struct Lock<'a, T> {
    mutex: &'a LocalMutex<T>,
}

impl<'a, T> Future for Lock<'a, T> {
    type Output = LocalGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LocalGuard<'a, T>> {
        match self.mutex.try_lock() {
            Some(guard) => Poll::Ready(guard),
            None => {
                register(&self.mutex.waiters, cx.waker());
                Poll::Pending
            }
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
        wake_all(&self.mutex.waiters);
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
