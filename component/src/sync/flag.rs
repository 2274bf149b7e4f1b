//! `ThreadSafeFlag`: signal a task from another thread or an interrupt handler.
//!
//! ## The waiter slot
//! The flag holds the waiting task in an atomic pointer that owns one counted reference to
//! the task's cell. The two sides touch it only with atomic swaps:
//!
//! - `set()` (any context) stores the flag, then swaps the slot to null. If it got a task, it
//!   schedules it (an atomic `fetch_or`, a push on the loop's lock-free wake stack and, only
//!   if that push found the loop asleep, one give of the semaphore it sleeps on, with the
//!   `FromISR` call: `rtos_shims::LoopSignal`, on FreeRTOS a direct-to-task notification); the
//!   slot's reference goes with the task onto the wake stack, or is given back if the task
//!   was queued already.
//! - `wait()` (the loop thread) swaps its task into the slot, then looks at the flag again.
//!
//! The swaps of the slot are `SeqCst` read-modify-writes of one location, so they are totally
//! ordered: either the setter's swap comes after the waiter's (and the setter finds the task),
//! or the waiter's swap reads the setter's (or a later one in its release sequence), which
//! makes the setter's flag store, sequenced before its swap, visible to the waiter's look at
//! the flag after its swap: a set is never lost. (A waiter already in the slot only loads it;
//! a setter's swap after that load in the `SeqCst` order finds it.) The flag store itself is
//! `Release`, which a waiter that finds the flag set needs: it must also see what was written
//! before the `set()` (the `ThreadSafeQueue` built on the flag depends on it; loom finds a
//! lost close with `Relaxed`).
//! Nobody spins and nobody holds a lock, so a setter of lower priority than the loop can be
//! preempted anywhere without stalling the loop.
//!
//! **Nothing is freed in an interrupt handler.** The reference `set()` gives back is never
//! the last one while a wait is registered: the waiting task is unfinished, so its loop's
//! registry holds it too. (It can be the last only on a thread setter that was preempted
//! while the task finished and was dropped; freeing a finished task's cell from a thread is
//! sound, see `task::raw`.)
//!
//! One waiter at a time, as the seed says. MicroPython silently replaces the first waiter
//! (which then hangs); here a second concurrent waiter gets `RuntimeError`.

use core::future::Future;
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::task::{Context, Poll};

use crate::atomic::{AtomicBool, AtomicPtr, Ordering};
use crate::error::{Error, Result};
use crate::raw::{self, Header};
use crate::scheduler::{self, waker};

/// A flag set from outside the loop (another thread, an ISR) that one task waits for:
/// MicroPython's `asyncio.ThreadSafeFlag`. Starts cleared.
///
/// Sets before a wait collapse into one wake; `wait()` returns at once if the flag is set;
/// the flag clears itself when `wait()` returns. The RTOS semaphore behind it is the loop's
/// own (a `k_sem` on Zephyr, a direct-to-task notification on FreeRTOS): the loop thread
/// blocks in it, so a set costs at most one give.
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
    /// A `FlagWait` is registered (one waiter at a time).
    waiting: AtomicBool,
    /// The waiting task, owning one reference, or null.
    task: AtomicPtr<Header>,
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
    ///
    /// ```
    /// use uasyncio::ThreadSafeFlag;
    /// static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
    /// assert!(!FLAG.is_set());
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        ThreadSafeFlag {
            flag: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            task: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A new, cleared flag (loom build: not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        ThreadSafeFlag {
            flag: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            task: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Sets the flag and schedules the waiting task, if any. Safe from any thread and from
    /// interrupt context: atomics only, no lock, no allocation (see the module docs).
    ///
    /// ```
    /// use uasyncio::{run, ThreadSafeFlag};
    /// static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
    /// FLAG.set();
    /// FLAG.set(); // sets before a wait collapse into one
    /// run(async {
    ///     FLAG.wait().await?; // set: returns at once and clears the flag
    ///     assert!(!FLAG.is_set());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn set(&self) {
        // Release, not SeqCst: see the module docs (a waiter that sees the flag must see what
        // was written before the set; the slot swap orders the rest).
        self.flag.store(true, Ordering::Release);
        if let Some(task) = NonNull::new(self.task.swap(ptr::null_mut(), Ordering::SeqCst)) {
            // The reference goes to the loop's queue with the task, or is given back (the
            // module docs argue it is then not the last one in interrupt context).
            // SAFETY: the slot owned this reference and the swap took it out: it is ours, used once.
            unsafe { waker::schedule_owned(task) };
        }
    }

    /// Clears the flag, so that a set that happened earlier does not satisfy the next wait.
    ///
    /// ```
    /// let flag = uasyncio::ThreadSafeFlag::new();
    /// flag.set(); // a stale set...
    /// flag.clear(); // ...forgotten: the next wait waits for a new one
    /// assert!(!flag.is_set());
    /// ```
    pub fn clear(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }

    /// True if the flag is set (a snapshot; another context may change it at any time).
    ///
    /// ```
    /// let flag = uasyncio::ThreadSafeFlag::new();
    /// assert!(!flag.is_set());
    /// flag.set();
    /// assert!(flag.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Waits until the flag is set, then clears it. Returns at once if it is set, without
    /// yielding (as in MicroPython): a task that loops on `wait()` while another context sets
    /// the flag faster than the task handles it never lets the other tasks run; put a
    /// `sleep_ms(0)` in such a loop.
    ///
    /// Await it from a uasyncio task, directly or through a combinator that polls all its
    /// children when the task wakes (`join`/`select` style): the flag wakes the task.
    ///
    /// Errors with `RuntimeError` if another task is already waiting on this flag, or when
    /// polled outside a uasyncio task.
    ///
    /// **Cancellation:** a cancelled waiter gets `Err(Error::Cancelled)`; the flag keeps its
    /// state (a set that arrived meanwhile is not consumed) and the next waiter may wait.
    /// **Dropping** the future does the same: it gives up the flag's waiter slot and consumes
    /// nothing.
    ///
    /// ```
    /// use uasyncio::{create_task, run, sleep_ms, Error, ThreadSafeFlag};
    /// static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
    /// run(async {
    ///     let waiter = create_task(FLAG.wait());
    ///     sleep_ms(1).await?; // it waits now
    ///     // One waiter at a time: a second one is refused.
    ///     assert!(matches!(FLAG.wait().await, Err(Error::Runtime(_))));
    ///     FLAG.set();
    ///     waiter.await
    /// }).unwrap();
    /// ```
    pub fn wait(&self) -> FlagWait<'_> {
        FlagWait {
            flag: self,
            registered: false,
        }
    }

    /// Takes the flag if it is set; looks before it swaps, so an unset flag costs a load.
    fn consume(&self) -> bool {
        self.flag.load(Ordering::SeqCst) && self.flag.swap(false, Ordering::SeqCst)
    }

    /// Puts `task` in the waiter slot (loop thread).
    fn register(&self, task: NonNull<Header>) {
        if self.task.load(Ordering::SeqCst) == task.as_ptr() {
            return;
        }
        raw::inc_ref(task);
        if let Some(old) = NonNull::new(self.task.swap(task.as_ptr(), Ordering::SeqCst)) {
            // SAFETY: the slot owned that reference; we are on the loop thread.
            unsafe { raw::drop_ref(old) };
        }
    }

    /// Empties the waiter slot (loop thread), so a `static` flag does not keep a task alive.
    fn unregister(&self) {
        // Only this thread puts a task in the slot, so an empty slot stays empty: no need for
        // the swap (the common case: the `set()` that woke us emptied it).
        if self.task.load(Ordering::SeqCst).is_null() {
            return;
        }
        if let Some(old) = NonNull::new(self.task.swap(ptr::null_mut(), Ordering::SeqCst)) {
            // SAFETY: the slot owned that reference; we are on the loop thread.
            unsafe { raw::drop_ref(old) };
        }
    }
}

/// The future of [`ThreadSafeFlag::wait`].
///
/// **Cancellation:** a cancelled waiter gets `Err(Error::Cancelled)` and gives up the flag's
/// waiter slot; the flag keeps its state (a set that arrived meanwhile is not consumed).
/// **Dropping** it does the same, consuming nothing. See [`ThreadSafeFlag::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct FlagWait<'a> {
    flag: &'a ThreadSafeFlag,
    registered: bool,
}

impl FlagWait<'_> {
    fn finish(&mut self) {
        if self.registered {
            self.registered = false;
            self.flag.unregister();
            self.flag.waiting.store(false, Ordering::Release);
        }
    }
}

impl Future for FlagWait<'_> {
    type Output = Result<()>;

    /// Inlined: its common case is a few atomics; the rest is `poll_slow`, out of line.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        // Polled again, most likely by the set() that emptied the waiter slot: with no cancel
        // pending (the waker's task says so, without the look-up of the loop) and the slot
        // empty, take the flag with atomics only. Otherwise (a cancel, a spurious wake with
        // our task still in the slot) the whole way below, which may drop the slot's
        // reference on the loop thread.
        //
        // The slot's load is `Relaxed`: it orders nothing. Null is a setter's (the slot held
        // our task since our own swap, which this load cannot read past); the flag's swap is
        // what acquires the set's writes (`Acquire`: the total order of `SeqCst` matters only
        // to the registration below, which pairs its slot swap with its look at the flag).
        // Should that swap not yet see the set's flag store, the way below registers again
        // with a `SeqCst` swap that reads the setter's, and then sees it (the module docs'
        // argument). `waiting` only keeps a second waiter out and publishes nothing, hence
        // `Relaxed` (its next swap still reads this store or a later one).
        if this.registered
            && crate::cancel::no_cancel_pending(cx)
            && this.flag.task.load(Ordering::Relaxed).is_null()
            && this.flag.flag.swap(false, Ordering::Acquire)
        {
            this.registered = false;
            this.flag.waiting.store(false, Ordering::Relaxed);
            return Poll::Ready(Ok(()));
        }
        this.poll_slow(cx)
    }
}

impl FlagWait<'_> {
    /// The whole poll: first polls, cancels, spurious wakes. Out of line, so the common poll
    /// above (the interrupt → task path) saves only the registers it uses.
    #[inline(never)]
    fn poll_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self;
        if crate::cancel::poll_cancelled_waiting(cx, crate::raw::WaitingOn::Flag) {
            this.finish();
            return Poll::Ready(Err(Error::Cancelled));
        }
        let woken = if this.registered {
            // Polled again: most likely the set() that emptied the waiter slot woke us, so the
            // flag is set; take it without looking first.
            this.flag.flag.swap(false, Ordering::SeqCst)
        } else {
            if this.flag.waiting.swap(true, Ordering::AcqRel) {
                return Poll::Ready(Err(Error::runtime("ThreadSafeFlag already has a waiting task")));
            }
            this.registered = true;
            this.flag.consume()
        };
        if woken {
            this.finish();
            return Poll::Ready(Ok(()));
        }
        let Some(task) = waker::waker_task(cx.waker()).or_else(scheduler::current_task_ptr) else {
            this.finish();
            return Poll::Ready(Err(Error::runtime(
                "ThreadSafeFlag.wait() must be awaited in a uasyncio task",
            )));
        };
        this.flag.register(task);
        // A set between the first look and the registration found no task (or the old one):
        // look again now that ours is in the slot.
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
