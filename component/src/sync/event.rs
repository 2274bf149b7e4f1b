//! `Event`: wake every waiting task at once.

use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::wait_queue::{left_notified, repoll, Repoll, WaitQueue};
use crate::error::{Error, Result};

/// An event tasks can wait for: MicroPython's `asyncio.Event`. Starts cleared.
///
/// `set()` wakes **all** waiters, in the order they started waiting; `wait()` on a set event
/// returns without yielding; `clear()` only clears. Loop thread only: the type is `!Sync`,
/// so it cannot be set from another thread or an interrupt handler — use
/// [`ThreadSafeFlag`](crate::ThreadSafeFlag) for that.
///
/// ```
/// use std::rc::Rc;
/// use uasyncio::{create_task, run, Event};
/// run(async {
///     let ev = Rc::new(Event::new());
///     let ev2 = ev.clone();
///     let waiter = create_task(async move { ev2.wait().await?; Ok("woken") });
///     ev.set();
///     assert_eq!(waiter.await?, "woken");
///     Ok(())
/// }).unwrap();
/// ```
pub struct Event {
    state: Cell<bool>,
    waiters: RefCell<WaitQueue>,
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Event {
    /// A new, cleared event.
    ///
    /// ```
    /// let ev = uasyncio::Event::new();
    /// assert!(!ev.is_set());
    /// ```
    pub const fn new() -> Self {
        Event {
            state: Cell::new(false),
            waiters: RefCell::new(WaitQueue::new()),
        }
    }

    /// True if the event is set.
    ///
    /// ```
    /// let ev = uasyncio::Event::new();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.state.get()
    }

    /// Sets the event and schedules every waiting task, oldest first.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use uasyncio::{create_task, gather, run, sleep_ms, Event};
    /// run(async {
    ///     let ev = Rc::new(Event::new());
    ///     let waiters = (0..3).map(|i| {
    ///         let ev = ev.clone();
    ///         async move { ev.wait().await?; Ok(i) }
    ///     });
    ///     let all = create_task(gather(waiters));
    ///     sleep_ms(1).await?; // all three wait now
    ///     ev.set(); // wakes every one of them
    ///     assert_eq!(all.await?, [0, 1, 2]);
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn set(&self) {
        self.state.set(true);
        loop {
            let waker = match self.waiters.try_borrow_mut() {
                Ok(mut q) => q.notify_one(),
                Err(_) => None,
            };
            match waker {
                Some(w) => crate::scheduler::wake(w),
                None => break,
            }
        }
    }

    /// Clears the event. Tasks already woken by a `set()` still return from `wait()`.
    ///
    /// ```
    /// use uasyncio::{run, Event};
    /// run(async {
    ///     let ev = Event::new();
    ///     ev.set();
    ///     ev.wait().await?; // returns at once, and the event stays set...
    ///     assert!(ev.is_set());
    ///     ev.clear(); // ...until it is cleared
    ///     assert!(!ev.is_set());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn clear(&self) {
        self.state.set(false);
    }

    /// Waits until the event is set; returns at once if it is.
    ///
    /// **Cancellation:** a cancelled waiter leaves the queue (the others keep their order)
    /// and gets `Err(Error::Cancelled)`, even if the event was set just before.
    /// **Dropping** the future leaves the queue the same way; the event is not changed.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use uasyncio::{create_task, run, sleep_ms, Error, Event};
    /// run(async {
    ///     let ev = Rc::new(Event::new());
    ///     let ev2 = ev.clone();
    ///     let waiter = create_task(async move { ev2.wait().await });
    ///     sleep_ms(1).await?; // it waits now
    ///     waiter.cancel()?;
    ///     assert_eq!(waiter.await, Err(Error::Cancelled)); // it left the queue
    ///     assert!(!ev.is_set());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn wait(&self) -> EventWait<'_> {
        EventWait { event: self, key: None }
    }
}

/// The future of [`Event::wait`].
///
/// **Cancellation:** a cancelled waiter leaves the queue (the others keep their order) and
/// gets `Err(Error::Cancelled)`, even if the event was set just before. **Dropping** it leaves
/// the queue the same way; the event is not changed. See [`Event::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    key: Option<u32>,
}

impl Future for EventWait<'_> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        // Polled again after a `set()` picked us: the fast path (no look-up of the loop).
        if left_notified(&this.event.waiters, &mut this.key, cx) {
            return Poll::Ready(Ok(()));
        }
        let waiting = crate::cancel::Waiting::check(cx, crate::raw::WaitingOn::Event);
        if waiting.cancelled {
            this.leave();
            return Poll::Ready(Err(Error::Cancelled));
        }
        match repoll(&this.event.waiters, &mut this.key, cx.waker()) {
            Repoll::Notified => Poll::Ready(Ok(())),
            Repoll::Waiting => Poll::Pending,
            Repoll::NotWaiting if this.event.state.get() => Poll::Ready(Ok(())),
            Repoll::NotWaiting => {
                let waker = waiting.clone_waker(cx.waker());
                this.key = Some(this.event.waiters.borrow_mut().push(waker));
                Poll::Pending
            }
        }
    }
}

impl EventWait<'_> {
    fn leave(&mut self) {
        if let Some(key) = self.key.take() {
            if let Ok(mut q) = self.event.waiters.try_borrow_mut() {
                q.remove(key);
            }
        }
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}
