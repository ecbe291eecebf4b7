//! Shard-local one-shot and level signals: an `Rc` cell and a waker, nothing
//! shared between threads. Used for replies on the mesh and for cancellation.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A single value handed from one task to another on the same shard.
pub struct Oneshot<T> {
    state: Rc<RefCell<OneshotState<T>>>,
}

struct OneshotState<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The sending side was dropped without a value.
    abandoned: bool,
}

/// The sending half of a [`Oneshot`].
pub struct OneshotSender<T> {
    state: Rc<RefCell<OneshotState<T>>>,
    sent: bool,
}

pub fn oneshot<T>() -> (OneshotSender<T>, Oneshot<T>) {
    let state = Rc::new(RefCell::new(OneshotState {
        value: None,
        waker: None,
        abandoned: false,
    }));
    (
        OneshotSender {
            state: state.clone(),
            sent: false,
        },
        Oneshot { state },
    )
}

impl<T> OneshotSender<T> {
    pub fn send(mut self, value: T) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.value = Some(value);
            state.waker.take()
        };
        self.sent = true;
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        if !self.sent {
            let waker = {
                let mut state = self.state.borrow_mut();
                state.abandoned = true;
                state.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl<T> Future for Oneshot<T> {
    /// `None` if the sender was dropped without sending.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.state.borrow_mut();
        if let Some(value) = state.value.take() {
            return Poll::Ready(Some(value));
        }
        if state.abandoned {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A flag that can be raised and awaited; awaiting resolves once it is raised.
/// Lowering it (`clear`) re-arms it.
#[derive(Default)]
pub struct Flag {
    state: RefCell<FlagState>,
}

#[derive(Default)]
struct FlagState {
    raised: bool,
    wakers: Vec<Waker>,
}

impl Flag {
    pub fn raise(&self) {
        let wakers = {
            let mut state = self.state.borrow_mut();
            state.raised = true;
            std::mem::take(&mut state.wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    pub fn clear(&self) {
        self.state.borrow_mut().raised = false;
    }

    pub fn is_raised(&self) -> bool {
        self.state.borrow().raised
    }

    pub fn wait(&self) -> FlagWait<'_> {
        FlagWait { flag: self }
    }
}

pub struct FlagWait<'a> {
    flag: &'a Flag,
}

impl Future for FlagWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.flag.state.borrow_mut();
        if state.raised {
            return Poll::Ready(());
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn oneshot_delivers_value() {
        let (tx, rx) = oneshot();
        tx.send(7);
        assert_eq!(block_on(rx), Some(7));
    }

    #[test]
    fn oneshot_reports_abandoned_sender() {
        let (tx, rx) = oneshot::<u32>();
        drop(tx);
        assert_eq!(block_on(rx), None);
    }

    #[test]
    fn flag_wait_pends_until_raised_and_rearms_after_clear() {
        let flag = Flag::default();
        assert!(block_on(poll_once(flag.wait())).is_none());
        flag.raise();
        assert!(block_on(poll_once(flag.wait())).is_some());
        flag.clear();
        assert!(!flag.is_raised());
        assert!(block_on(poll_once(flag.wait())).is_none());
    }
}
