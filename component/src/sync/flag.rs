//! `ThreadSafeFlag`: signal a task from another thread or an interrupt handler.
//!
//! ## Why it is sound from an ISR
//! `set()` does three things, all interrupt-safe: an atomic store of the flag, an atomic
//! `fetch_or` on the waker slot's state, and a wake by reference of the registered task
//! waker. That wake sets the task's `SCHEDULED` bit, takes a reference (an atomic increment,
//! no allocation), pushes the task on the loop's lock-free wake stack, and — only if the loop
//! thread sleeps — gives the loop's RTOS semaphore with the `FromISR` call. No lock, no
//! allocation, no free. The RTOS semaphore that backs the flag is the loop's own: the loop
//! thread blocks in it, so one flag set costs at most one semaphore give.
//!
//! One waiter at a time, as the seed says. MicroPython silently replaces the first waiter
//! (which then hangs); here a second concurrent waiter gets `RuntimeError`.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::AtomicWaker;
use crate::atomic::{AtomicBool, Ordering};
use crate::error::{Error, Result};

/// A flag set from outside the loop (another thread, an ISR) that one task waits for:
/// MicroPython's `asyncio.ThreadSafeFlag`. Starts cleared.
///
/// Sets before a wait collapse into one wake; `wait()` returns at once if the flag is set;
/// the flag clears itself when `wait()` returns.
///
/// ```
/// use uasyncio::{run, ThreadSafeFlag};
/// static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
///
/// run(async {
///     std::thread::spawn(|| FLAG.set()); // e.g. an interrupt handler or a C thread
///     FLAG.wait().await?;
///     assert!(!FLAG.is_set()); // cleared by wait()
///     Ok(())
/// }).unwrap();
/// ```
pub struct ThreadSafeFlag {
    flag: AtomicBool,
    waiting: AtomicBool,
    waker: AtomicWaker,
}

impl Default for ThreadSafeFlag {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for ThreadSafeFlag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThreadSafeFlag").field("set", &self.is_set()).finish()
    }
}

impl ThreadSafeFlag {
    /// A new, cleared flag; `const`, so it can be a `static` an interrupt handler reaches.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        ThreadSafeFlag {
            flag: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// A new, cleared flag (loom build: not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        ThreadSafeFlag {
            flag: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// Sets the flag and schedules the waiting task, if any. Safe from any thread and from
    /// interrupt context.
    pub fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Clears the flag, so that a set that happened earlier does not satisfy the next wait.
    pub fn clear(&self) {
        self.flag.store(false, Ordering::Release);
    }

    /// True if the flag is set (a snapshot; another context may change it at any time).
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Waits until the flag is set, then clears it. Returns at once if it is set.
    ///
    /// Errors with `RuntimeError` if another task is already waiting on this flag.
    ///
    /// **Cancellation:** a cancelled waiter gets `Err(Error::Cancelled)`; the flag keeps its
    /// state (a set that arrived meanwhile is not consumed) and the next waiter may wait.
    pub fn wait(&self) -> FlagWait<'_> {
        FlagWait {
            flag: self,
            registered: false,
        }
    }

    fn consume(&self) -> bool {
        self.flag.load(Ordering::Relaxed) && self.flag.swap(false, Ordering::Acquire)
    }
}

/// The future of [`ThreadSafeFlag::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct FlagWait<'a> {
    flag: &'a ThreadSafeFlag,
    registered: bool,
}

impl FlagWait<'_> {
    fn finish(&mut self) {
        if self.registered {
            self.registered = false;
            self.flag.waker.clear();
            self.flag.waiting.store(false, Ordering::Release);
        }
    }
}

impl Future for FlagWait<'_> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if crate::cancel::poll_cancelled(cx) {
            this.finish();
            return Poll::Ready(Err(Error::Cancelled));
        }
        if !this.registered {
            if this.flag.waiting.swap(true, Ordering::AcqRel) {
                return Poll::Ready(Err(Error::runtime("ThreadSafeFlag already has a waiting task")));
            }
            this.registered = true;
        }
        if this.flag.consume() {
            this.finish();
            return Poll::Ready(Ok(()));
        }
        this.flag.waker.register(cx.waker());
        // A set between the check above and the registration woke the old waker (or none):
        // look again now that ours is in place.
        if this.flag.consume() {
            this.finish();
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl Drop for FlagWait<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}
