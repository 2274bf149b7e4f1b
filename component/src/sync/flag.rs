//! `ThreadSafeFlag`: signal a task from another thread or an interrupt handler.
//!
//! ## One word: the flag and the waiter slot
//! The flag's state is one atomic pointer: null (clear, nobody waits), `SET` (set, and nobody
//! waits, since a set takes the waiter out: address 1, [`set_word`]), or the waiting task's
//! header (clear, that task waits), which then owns one counted reference to the task's cell.
//! Every change is a read-modify-write of that word:
//!
//! - `set()` (any context) swaps in `SET`. If it took a task out, it schedules it (an atomic
//!   `fetch_or`, a push on the loop's lock-free wake stack and, only if that push found the
//!   loop asleep, one give of the semaphore it sleeps on, with the `FromISR` call:
//!   `rtos_shims::LoopSignal`, on FreeRTOS a direct-to-task notification); the slot's
//!   reference goes with the task onto the wake stack, or is given back if the task was
//!   queued already.
//! - `wait()` (the loop thread) takes `SET` with a compare-and-swap to null, or registers its
//!   task with a compare-and-swap from null (or from its own earlier task, see `register`).
//! - a cancelled or dropped wait takes its task out with a compare-and-swap back to null; if
//!   a set came first, the word stays `SET` (the flag keeps its state).
//!
//! Read-modify-writes of one location are totally ordered, so a set is never lost: either
//! the setter's swap comes after the waiter's registration (and takes the task), or the
//! registration's compare-and-swap finds `SET` (and the waiter takes it). The swap is
//! `Release` and every take of `SET` `Acquire`, so a waiter that takes the flag also sees what
//! was written before the `set()` (the `ThreadSafeQueue` built on the flag depends on it);
//! the swap is `Acquire` too, for the task's cell the setter then reads. (Until the interrupt
//! → task path was counted, the flag and the slot were two words, and each side needed two
//! `SeqCst` operations: Cortex-M3, the path 447 → 442 instructions with one.)
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
    /// Null, `SET` ([`set_word`]), or the waiting task owning one reference (see the module
    /// docs).
    state: AtomicPtr<Header>,
    /// A `FlagWait` is registered (one waiter at a time).
    waiting: AtomicBool,
}

/// The flag's word when set: address 1, never a task header's (headers are aligned to 4 or
/// more), never null.
fn set_word() -> *mut Header {
    ptr::null_mut::<Header>().wrapping_byte_add(1)
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
            state: AtomicPtr::new(ptr::null_mut()),
            waiting: AtomicBool::new(false),
        }
    }

    /// A new, cleared flag (loom build: not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        ThreadSafeFlag {
            state: AtomicPtr::new(ptr::null_mut()),
            waiting: AtomicBool::new(false),
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
        // Release: a waiter that takes the flag sees what was written before the set. Acquire:
        // a task taken out is read (its cell) after the waiter's registration wrote it.
        let old = self.state.swap(set_word(), Ordering::AcqRel);
        if let Some(task) = NonNull::new(old).filter(|_| old != set_word()) {
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
        // Only a set flag changes; a waiting task's word already says "clear".
        let _ = self
            .state
            .compare_exchange(set_word(), ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed);
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
        self.state.load(Ordering::Acquire) == set_word()
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

    /// Takes the flag if it is set (`Acquire`: what the setter wrote before is visible).
    fn consume(&self) -> bool {
        self.state
            .compare_exchange(set_word(), ptr::null_mut(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Puts `task` in the waiter slot (loop thread, the one waiter): `true` if the flag was
    /// found set instead, and taken.
    ///
    /// The word holds null, `SET`, or a task of ours: `task` itself (registered by an earlier
    /// poll), or another one when the `FlagWait` moved to another task between polls, whose
    /// reference is given back. Only setters change the word meanwhile, and only to `SET`.
    fn register(&self, task: NonNull<Header>) -> bool {
        let mut cur = self.state.load(Ordering::Acquire);
        if cur == task.as_ptr() {
            return false;
        }
        // The slot's own reference, made before the task is published there.
        raw::inc_ref(task);
        loop {
            if cur == set_word() {
                if self.consume() {
                    // The reference made above, never published; the waker this poll was
                    // given holds another, so this one is not the last.
                    // SAFETY: as just argued.
                    unsafe { raw::drop_ref(task) };
                    return true;
                }
                cur = self.state.load(Ordering::Acquire);
                continue;
            }
            // Release: a setter that takes the task out sees its cell as written here.
            match self
                .state
                .compare_exchange(cur, task.as_ptr(), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if let Some(old) = NonNull::new(cur) {
                        // The slot owned that reference and the exchange took it out; we are
                        // on the loop thread.
                        // SAFETY: as just argued.
                        unsafe { raw::drop_ref(old) };
                    }
                    return false;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes our task out of the waiter slot (loop thread), so a `static` flag does not keep
    /// a task alive; a `SET` (a set took the task out) stays.
    fn unregister(&self) {
        let cur = self.state.load(Ordering::Acquire);
        let Some(task) = NonNull::new(cur).filter(|_| cur != set_word()) else {
            return;
        };
        if self
            .state
            .compare_exchange(cur, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // The slot owned that reference and the exchange took it out; we are on the loop
            // thread. (On failure a set took it, and owns it now.)
            // SAFETY: as just argued.
            unsafe { raw::drop_ref(task) };
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
        // Polled again, most likely by the set() that took our task out: with no cancel
        // pending (the waker's task says so, without the look-up of the loop), take the flag
        // with one compare-and-swap (`Acquire`: what the setter wrote before is visible).
        // Otherwise (a cancel, a spurious wake with our task still in the slot) the whole way
        // below, which may drop the slot's reference on the loop thread. `waiting` only keeps
        // a second waiter out and publishes nothing, hence `Relaxed` (its next swap still
        // reads this store or a later one).
        if this.registered && crate::cancel::no_cancel_pending(cx) && this.flag.consume() {
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
        let Some(task) = waker::waker_task(cx.waker()).or_else(scheduler::current_task_ptr) else {
            this.finish();
            return Poll::Ready(Err(Error::runtime(
                "ThreadSafeFlag.wait() must be awaited in a uasyncio task",
            )));
        };
        // A set between the look above and the registration is found by the registration.
        if this.flag.register(task) {
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
