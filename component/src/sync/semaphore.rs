//! `Semaphore` and `BoundedSemaphore`: a counted lock, FIFO, with direct hand-off.

use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::wait_queue::{repoll, Repoll, WaitQueue};
use crate::error::{Error, Result};

/// A semaphore for coordinating tasks: CPython's `asyncio.Semaphore` (MicroPython has none).
///
/// It holds a number of free permits. [`acquire()`](Semaphore::acquire) takes one, waiting
/// while there is none; [`release()`](Semaphore::release) gives one back.
///
/// FIFO with **direct hand-off**, as [`Lock`](crate::Lock): a permit released while tasks wait
/// goes to the oldest waiter, and a task that calls `acquire()` meanwhile queues behind it (no
/// barging). `locked()` is true when `acquire()` would wait, so it stays true while a released
/// permit is on its way to a waiter (as CPython 3.11.7). `release()` never fails and has no
/// owner check; releasing more than was acquired raises the count (use [`BoundedSemaphore`]
/// to catch that).
///
/// `acquire()` gives a [`SemaphoreGuard`] that releases on drop: the `async with sem:` form.
///
/// ```
/// use std::rc::Rc;
/// use uasyncio::{gather, run, sleep_ms, Semaphore};
/// run(async {
///     let sem = Rc::new(Semaphore::new(2)); // at most two at a time
///     let jobs = (0..4).map(|i| {
///         let sem = sem.clone();
///         async move {
///             let _permit = sem.acquire().await?;
///             sleep_ms(10).await?;
///             Ok(i)
///         }
///     });
///     assert_eq!(gather(jobs).await?, [0, 1, 2, 3]);
///     Ok(())
/// }).unwrap();
/// ```
pub struct Semaphore {
    /// Free permits. Zero whenever a task waits: a release with waiters hands its permit over.
    value: Cell<usize>,
    /// `BoundedSemaphore`'s initial value.
    bound: Option<usize>,
    waiters: RefCell<WaitQueue>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").field("value", &self.value.get()).finish()
    }
}

impl Default for Semaphore {
    /// `Semaphore(1)`, CPython's default.
    fn default() -> Self {
        Self::new(1)
    }
}

impl Semaphore {
    /// A semaphore with `value` free permits (CPython's default is 1).
    ///
    /// ```
    /// let sem = uasyncio::Semaphore::new(0);
    /// assert!(sem.locked());
    /// ```
    pub const fn new(value: usize) -> Self {
        Semaphore {
            value: Cell::new(value),
            bound: None,
            waiters: RefCell::new(WaitQueue::new()),
        }
    }

    /// True if `acquire()` would wait: no free permit.
    ///
    /// ```
    /// use uasyncio::{run, Semaphore};
    /// run(async {
    ///     let sem = Semaphore::new(1);
    ///     let permit = sem.acquire().await?;
    ///     assert!(sem.locked());
    ///     drop(permit);
    ///     assert!(!sem.locked());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn locked(&self) -> bool {
        self.value.get() == 0
    }

    /// Waits for a free permit, takes it, and returns a guard that gives it back on drop.
    ///
    /// Returns without waiting when a permit is free (nobody can be waiting then).
    ///
    /// **Cancellation:** a cancelled waiter leaves the queue (the others keep their order) and
    /// gets `Err(Error::Cancelled)`; if a permit had already been handed to it, it passes the
    /// permit on to the next waiter first (or frees it if none waits), so no permit is lost.
    /// Dropping the future does the same.
    ///
    /// ```
    /// use uasyncio::{run, Semaphore};
    /// run(async {
    ///     let sem = Semaphore::new(1);
    ///     {
    ///         let _permit = sem.acquire().await?; // async with sem:
    ///     }
    ///     assert!(!sem.locked());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn acquire(&self) -> SemaphoreAcquire<'_> {
        SemaphoreAcquire { sem: self, key: None }
    }

    /// Gives a permit back: hands it to the oldest waiter, or adds it to the free permits if
    /// none waits. Never fails (CPython's `Semaphore.release()`).
    ///
    /// ```
    /// let sem = uasyncio::Semaphore::new(0);
    /// sem.release();
    /// assert!(!sem.locked());
    /// ```
    pub fn release(&self) {
        let next = match self.waiters.try_borrow_mut() {
            Ok(mut q) => q.notify_one(),
            Err(_) => None,
        };
        match next {
            Some(w) => crate::scheduler::wake(w),
            None => self.value.set(self.value.get().saturating_add(1)),
        }
    }

    /// `release()` with `BoundedSemaphore`'s check (CPython's: the free permits only).
    fn release_checked(&self) -> Result<()> {
        if let Some(bound) = self.bound {
            if self.value.get() >= bound {
                return Err(Error::value("BoundedSemaphore released too many times"));
            }
        }
        self.release();
        Ok(())
    }
}

/// The future of [`Semaphore::acquire`] and [`BoundedSemaphore::acquire`].
///
/// **Cancellation:** a cancelled waiter leaves the queue and gets `Err(Error::Cancelled)`; if
/// a permit had already been handed to it, it passes the permit on to the next waiter (or
/// frees it if none waits), so no permit is lost. **Dropping** it does the same. See
/// [`Semaphore::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct SemaphoreAcquire<'a> {
    sem: &'a Semaphore,
    key: Option<u32>,
}

impl fmt::Debug for SemaphoreAcquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreAcquire")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

impl<'a> Future for SemaphoreAcquire<'a> {
    type Output = Result<SemaphoreGuard<'a>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let waiting = crate::cancel::Waiting::check(cx, crate::raw::WaitingOn::Semaphore);
        if waiting.cancelled {
            this.leave();
            return Poll::Ready(Err(Error::Cancelled));
        }
        let sem = this.sem;
        match repoll(&sem.waiters, &mut this.key, cx.waker()) {
            // The releaser handed its permit to us: it never went back to `value`.
            Repoll::Notified => Poll::Ready(Ok(SemaphoreGuard { sem })),
            Repoll::Waiting => Poll::Pending,
            Repoll::NotWaiting if sem.value.get() > 0 => {
                sem.value.set(sem.value.get() - 1);
                Poll::Ready(Ok(SemaphoreGuard { sem }))
            }
            Repoll::NotWaiting => {
                this.key = Some(sem.waiters.borrow_mut().push(waiting.clone_waker(cx.waker())));
                Poll::Pending
            }
        }
    }
}

impl SemaphoreAcquire<'_> {
    /// Stops waiting; a permit already handed to us goes to the next waiter (or is freed).
    fn leave(&mut self) {
        let Some(key) = self.key.take() else { return };
        let granted = match self.sem.waiters.try_borrow_mut() {
            Ok(mut q) => q.remove(key),
            Err(_) => false,
        };
        if granted {
            self.sem.release();
        }
    }
}

impl Drop for SemaphoreAcquire<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Holds one permit of a [`Semaphore`] or [`BoundedSemaphore`]; gives it back when dropped
/// (the end of an `async with` block).
///
/// Dropping it always releases one permit, even if the permit was already given back with an
/// explicit `release()`; on a `BoundedSemaphore` such an over-release is ignored (the
/// `ValueError` of an explicit `release()` is not raised from a drop). To keep the permit
/// and release it by hand later, call [`forget`](SemaphoreGuard::forget).
#[must_use = "the permit is released as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit taken without releasing it: a later `release()` gives it back (the
    /// Python form `await sem.acquire()` … `sem.release()`).
    ///
    /// ```
    /// use uasyncio::{run, Semaphore};
    /// run(async {
    ///     let sem = Semaphore::new(1);
    ///     sem.acquire().await?.forget();
    ///     assert!(sem.locked());
    ///     sem.release();
    ///     assert!(!sem.locked());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn forget(self) {
        core::mem::forget(self);
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        let _ = self.sem.release_checked();
    }
}

/// A [`Semaphore`] that refuses to be released above its initial value: CPython's
/// `asyncio.BoundedSemaphore`.
///
/// The check is CPython's: `release()` is a `ValueError("BoundedSemaphore released too many
/// times")` when the number of free permits has already reached the initial value. Everything
/// else is as [`Semaphore`].
///
/// ```
/// use uasyncio::{run, BoundedSemaphore, Error};
/// run(async {
///     let sem = BoundedSemaphore::new(1);
///     sem.acquire().await?.forget();
///     sem.release()?;
///     assert_eq!(sem.release(), Err(Error::value("BoundedSemaphore released too many times")));
///     Ok(())
/// }).unwrap();
/// ```
pub struct BoundedSemaphore {
    inner: Semaphore,
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.inner.value.get())
            .field("bound", &self.inner.bound)
            .finish()
    }
}

impl Default for BoundedSemaphore {
    /// `BoundedSemaphore(1)`, CPython's default.
    fn default() -> Self {
        Self::new(1)
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with `value` free permits, which is also its bound.
    ///
    /// ```
    /// let sem = uasyncio::BoundedSemaphore::new(3);
    /// assert!(!sem.locked());
    /// ```
    pub const fn new(value: usize) -> Self {
        BoundedSemaphore {
            inner: Semaphore {
                value: Cell::new(value),
                bound: Some(value),
                waiters: RefCell::new(WaitQueue::new()),
            },
        }
    }

    /// True if `acquire()` would wait; see [`Semaphore::locked`].
    ///
    /// ```
    /// assert!(uasyncio::BoundedSemaphore::new(0).locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.inner.locked()
    }

    /// Waits for a free permit; see [`Semaphore::acquire`], whose cancellation and drop
    /// behaviour it shares (a cancelled waiter passes a permit it was handed on).
    ///
    /// ```
    /// use uasyncio::{run, BoundedSemaphore};
    /// run(async {
    ///     let sem = BoundedSemaphore::new(1);
    ///     let permit = sem.acquire().await?;
    ///     assert!(sem.locked());
    ///     drop(permit);
    ///     assert!(!sem.locked());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn acquire(&self) -> SemaphoreAcquire<'_> {
        self.inner.acquire()
    }

    /// Gives a permit back (to the oldest waiter, if one waits).
    ///
    /// Errors with `ValueError("BoundedSemaphore released too many times")` when the free
    /// permits already number the initial value; nothing changes then.
    ///
    /// ```
    /// use uasyncio::{BoundedSemaphore, Error};
    /// let sem = BoundedSemaphore::new(2);
    /// assert!(matches!(sem.release(), Err(Error::Value(_))));
    /// ```
    pub fn release(&self) -> Result<()> {
        self.inner.release_checked()
    }
}
