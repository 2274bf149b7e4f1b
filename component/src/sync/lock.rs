//! `Lock`: mutual exclusion between tasks, FIFO, with direct hand-off.

use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::wait_queue::{left_notified, repoll, Repoll, WaitQueue};
use crate::error::{Error, Result};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Unlocked,
    Locked,
    /// Released to the head waiter, which has not run yet.
    HandingOff,
}

/// A lock for coordinating tasks: MicroPython's `asyncio.Lock`. Starts unlocked.
///
/// FIFO with **direct hand-off**: `release()` passes the lock to the oldest waiter, so no
/// task can barge in meanwhile. While the hand-off is in flight `locked()` is false (as in
/// MicroPython) but new `acquire()` calls still queue. `release()` when not locked is
/// `RuntimeError("Lock not acquired")`; there is no owner check.
///
/// `acquire()` gives a [`LockGuard`] that releases on drop: the `async with lock:` form.
///
/// ```
/// use std::rc::Rc;
/// use uasyncio::{create_task, run, sleep_ms, Lock};
/// run(async {
///     let lock = Rc::new(Lock::new());
///     let l2 = lock.clone();
///     let guard = lock.acquire().await?;
///     let other = create_task(async move {
///         let _g = l2.acquire().await?; // waits for the hand-off
///         Ok(())
///     });
///     sleep_ms(1).await?;
///     assert!(lock.locked());
///     drop(guard); // hands the lock to `other`
///     other.await
/// }).unwrap();
/// ```
pub struct Lock {
    state: Cell<State>,
    /// Bumped at each acquisition, so a stale guard cannot release someone else's hold.
    generation: Cell<u32>,
    waiters: RefCell<WaitQueue>,
}

impl Default for Lock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").field("state", &self.state.get()).finish()
    }
}

impl Lock {
    /// A new, unlocked lock.
    ///
    /// ```
    /// let lock = uasyncio::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    pub const fn new() -> Self {
        Lock {
            state: Cell::new(State::Unlocked),
            generation: Cell::new(0),
            waiters: RefCell::new(WaitQueue::new()),
        }
    }

    /// True if a task holds the lock.
    ///
    /// False while a released lock is being handed to a waiter that has not run yet, though
    /// a new `acquire()` would still queue behind that waiter:
    ///
    /// ```
    /// use std::rc::Rc;
    /// use uasyncio::{create_task, run, sleep_ms, Lock};
    /// run(async {
    ///     let lock = Rc::new(Lock::new());
    ///     let guard = lock.acquire().await?;
    ///     assert!(lock.locked());
    ///     let l2 = lock.clone();
    ///     let waiter = create_task(async move { l2.acquire().await.map(drop) });
    ///     sleep_ms(1).await?; // the waiter queues
    ///     drop(guard); // handed to the waiter, which has not run yet
    ///     assert!(!lock.locked());
    ///     waiter.await
    /// }).unwrap();
    /// ```
    pub fn locked(&self) -> bool {
        self.state.get() == State::Locked
    }

    /// Waits until the lock is free, takes it, and returns a guard that releases it on drop;
    /// [`LockGuard::forget`] keeps the lock locked for a later [`release`](Self::release)
    /// (MicroPython's `await lock.acquire()` … `lock.release()`).
    ///
    /// **Cancellation:** a cancelled waiter leaves the queue and gets `Err(Error::Cancelled)`;
    /// if the lock had already been handed to it, it passes the lock on to the next waiter
    /// first. Dropping the future does the same.
    ///
    /// ```
    /// use uasyncio::{run, Lock};
    /// run(async {
    ///     let lock = Lock::new();
    ///     {
    ///         let _guard = lock.acquire().await?; // async with lock:
    ///         assert!(lock.locked());
    ///     }
    ///     assert!(!lock.locked()); // released as the guard went
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire { lock: self, key: None }
    }

    /// Releases the lock: hands it to the oldest waiter, or unlocks it if none waits.
    ///
    /// Errors with `RuntimeError("Lock not acquired")` when the lock is not locked.
    ///
    /// ```
    /// use uasyncio::{run, Error, Lock};
    /// run(async {
    ///     let lock = Lock::new();
    ///     assert_eq!(lock.release(), Err(Error::runtime("Lock not acquired")));
    ///     lock.acquire().await?.forget(); // MicroPython's `await lock.acquire()`
    ///     lock.release()?;
    ///     assert!(!lock.locked());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn release(&self) -> Result<()> {
        if self.state.get() != State::Locked {
            return Err(Error::runtime("Lock not acquired"));
        }
        let next = match self.waiters.try_borrow_mut() {
            Ok(mut q) => q.notify_one(),
            Err(_) => return Err(Error::runtime("Lock is busy")),
        };
        match next {
            Some(w) => {
                self.state.set(State::HandingOff);
                crate::scheduler::wake(w);
            }
            None => self.state.set(State::Unlocked),
        }
        Ok(())
    }

    fn take(&self) -> LockGuard<'_> {
        self.state.set(State::Locked);
        let generation = self.generation.get().wrapping_add(1);
        self.generation.set(generation);
        LockGuard { lock: self, generation }
    }
}

/// The future of [`Lock::acquire`].
///
/// **Cancellation:** a cancelled waiter leaves the queue and gets `Err(Error::Cancelled)`; if
/// the lock had already been handed to it, it passes the lock on to the next waiter (or
/// unlocks it if none waits) first. **Dropping** it does the same. See [`Lock::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    lock: &'a Lock,
    key: Option<u32>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<LockGuard<'a>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Polled again after a release handed us the lock: the fast path (no look-up of
        // the loop).
        if left_notified(&this.lock.waiters, &mut this.key, cx) {
            return Poll::Ready(Ok(this.lock.take()));
        }
        let waiting = crate::cancel::Waiting::check(cx, crate::raw::WaitingOn::Lock);
        if waiting.cancelled {
            this.leave();
            return Poll::Ready(Err(Error::Cancelled));
        }
        let lock = this.lock;
        match repoll(&lock.waiters, &mut this.key, cx.waker()) {
            Repoll::Notified => Poll::Ready(Ok(lock.take())),
            Repoll::Waiting => Poll::Pending,
            Repoll::NotWaiting if lock.state.get() == State::Unlocked => Poll::Ready(Ok(lock.take())),
            Repoll::NotWaiting => {
                this.key = Some(lock.waiters.borrow_mut().push(waiting.clone_waker(cx.waker())));
                Poll::Pending
            }
        }
    }
}

impl Acquire<'_> {
    /// Stops waiting; a lock already handed to us goes to the next waiter.
    fn leave(&mut self) {
        let Some(key) = self.key.take() else { return };
        let granted = match self.lock.waiters.try_borrow_mut() {
            Ok(mut q) => q.remove(key),
            Err(_) => false,
        };
        if granted {
            self.lock.state.set(State::Locked);
            let _ = self.lock.release();
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Holds a [`Lock`]; releases it when dropped (the end of an `async with` block).
///
/// If the lock was released explicitly with [`Lock::release`] meanwhile, dropping the guard
/// does nothing, even if another task holds the lock by then.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    generation: u32,
}

impl LockGuard<'_> {
    /// Keeps the lock locked without releasing it: a later [`Lock::release`] unlocks it (the
    /// Python form `await lock.acquire()` … `lock.release()`). A bare
    /// `lock.acquire().await?;` drops the guard at once, which releases the lock again.
    ///
    /// ```
    /// use uasyncio::{run, Lock};
    /// run(async {
    ///     let lock = Lock::new();
    ///     lock.acquire().await?.forget();
    ///     assert!(lock.locked());
    ///     lock.release()?;
    ///     assert!(!lock.locked());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn forget(self) {
        core::mem::forget(self);
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if self.lock.state.get() == State::Locked && self.lock.generation.get() == self.generation {
            let _ = self.lock.release();
        }
    }
}
