//! Shard-local async building blocks, without a runtime: a re-armable
//! [`Signal`], a [`oneshot`] channel, [`race`] of two futures and
//! [`join_all`].
//!
//! Waiting in this crate is always on a future that something wakes — a lock
//! release, a latch release, a timer the host provides — never a polling
//! loop. These types are `!Send` on purpose: a shard's futures stay on its
//! thread.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct SignalState {
    fired: bool,
    waker: Option<Waker>,
}

/// A flag that wakes its waiter. `fire` sets it (and wakes); a completed
/// `wait` clears it, so a signal fired before the wait is not lost and a
/// signal can be waited on again.
#[derive(Clone, Debug, Default)]
pub struct Signal {
    state: Rc<RefCell<SignalState>>,
}

impl Signal {
    pub fn new() -> Signal {
        Signal::default()
    }

    pub fn fire(&self) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.fired = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub fn is_fired(&self) -> bool {
        self.state.borrow().fired
    }

    /// Completes once fired, and clears the flag.
    pub fn wait(&self) -> SignalWait {
        SignalWait {
            state: self.state.clone(),
        }
    }
}

/// The future of [`Signal::wait`].
pub struct SignalWait {
    state: Rc<RefCell<SignalState>>,
}

impl Future for SignalWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.borrow_mut();
        if state.fired {
            state.fired = false;
            Poll::Ready(())
        } else {
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[derive(Debug)]
struct OneshotState<T> {
    value: Option<T>,
    sender_alive: bool,
    waker: Option<Waker>,
}

/// The sending half of a [`oneshot`] channel. Dropping it unsent makes the
/// receiver resolve to `None`.
#[derive(Debug)]
pub struct OneshotSender<T> {
    state: Rc<RefCell<OneshotState<T>>>,
}

/// The receiving half of a [`oneshot`] channel: a future of the value, or
/// `None` if the sender was dropped without sending (its task died).
#[derive(Debug)]
pub struct OneshotReceiver<T> {
    state: Rc<RefCell<OneshotState<T>>>,
}

/// A single-value channel between two tasks of one shard.
pub fn oneshot<T>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let state = Rc::new(RefCell::new(OneshotState {
        value: None,
        sender_alive: true,
        waker: None,
    }));
    (
        OneshotSender {
            state: state.clone(),
        },
        OneshotReceiver { state },
    )
}

impl<T> OneshotSender<T> {
    /// Delivers `value` (dropped if the receiver is gone).
    pub fn send(self, value: T) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.value = Some(value);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.sender_alive = false;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for OneshotReceiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.state.borrow_mut();
        if let Some(value) = state.value.take() {
            return Poll::Ready(Some(value));
        }
        if !state.sender_alive {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Returns `Pending` once (waking itself), so that a scheduler may run other
/// tasks first: the model of a message hop.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Which of two raced futures finished first.
#[derive(Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures; completes with the first to finish (the left one
/// wins a tie), dropping the other.
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

/// Runs the futures concurrently; the outputs in input order.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(
                outputs
                    .iter_mut()
                    .map(|o| o.take().expect("joined output"))
                    .collect(),
            )
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        f.poll(&mut cx)
    }

    #[test]
    fn signal_fired_before_wait_is_kept_and_consumed() {
        let s = Signal::new();
        s.fire();
        let mut w = std::pin::pin!(s.wait());
        assert!(poll_once(w.as_mut()).is_ready());
        let mut w2 = std::pin::pin!(s.wait());
        assert!(poll_once(w2.as_mut()).is_pending());
        s.fire();
        assert!(poll_once(w2.as_mut()).is_ready());
    }

    #[test]
    fn oneshot_delivers_or_reports_a_dead_sender() {
        let (tx, rx) = oneshot::<u32>();
        let mut rx = std::pin::pin!(rx);
        assert!(poll_once(rx.as_mut()).is_pending());
        tx.send(5);
        assert_eq!(poll_once(rx.as_mut()), Poll::Ready(Some(5)));
        let (tx, rx) = oneshot::<u32>();
        let mut rx = std::pin::pin!(rx);
        assert!(poll_once(rx.as_mut()).is_pending());
        drop(tx);
        assert_eq!(poll_once(rx.as_mut()), Poll::Ready(None));
    }

    #[test]
    fn race_and_join() {
        let s = Signal::new();
        let mut r = std::pin::pin!(race(s.wait(), async { 7 }));
        assert_eq!(poll_once(r.as_mut()), Poll::Ready(Either::Right(7)));
        let mut j = std::pin::pin!(join_all(vec![
            Box::pin(async { 1 }) as Pin<Box<dyn Future<Output = i32>>>,
            Box::pin(async { 2 })
        ]));
        assert_eq!(poll_once(j.as_mut()), Poll::Ready(vec![1, 2]));
    }
}
