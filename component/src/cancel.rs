//! Cooperative cancellation, as in Python: how a runtime awaitable observes `Task.cancel()`.
//!
//! `cancel()` sets a *pending* bit on the target task and wakes it. Every runtime awaitable
//! (sleep, `Event`/`Lock`/`ThreadSafeFlag` waits, awaiting a task, `gather`, `wait_for`, stream
//! I/O) starts its poll with [`poll_cancelled`]: if the bit is set it clears it, undoes its own
//! registration (leaves the timer heap, the wait queue, hands a granted lock on) and returns
//! `Err(Error::Cancelled)`. So exactly one awaitable sees each cancel, at the point where the
//! task is suspended — the Rust spelling of Python throwing `CancelledError` into the
//! coroutine. The task may then propagate it with `?`, clean up with further awaits, or go on.
//!
//! A task suspended in a future that is not the runtime's (a user's own future, another
//! crate's channel) observes the cancel at its next runtime await instead. Dropping the
//! future outright (a hard abort) is not the default and is not offered yet.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::task::{Context, Waker};

use crate::raw::{flag, Header, WaitingOn};
use crate::scheduler::{self, waker};

/// True — and the pending cancel is consumed — if the task being polled has a pending cancel.
///
/// Call it first in every poll of an awaitable that should be a cancellation point, and
/// return `Err(Error::Cancelled)` when it says true. Outside a task it is always false.
///
/// ```
/// use core::future::poll_fn;
/// use core::task::Poll;
/// use uasyncio::{cancel::poll_cancelled, create_task, run, sleep_ms, Error};
///
/// // A hand-written awaitable that waits forever but honours cancellation.
/// let r = run(async {
///     let t = create_task(poll_fn(|cx| {
///         if poll_cancelled(cx) { Poll::Ready(Err::<(), _>(Error::Cancelled)) } else { Poll::Pending }
///     }));
///     sleep_ms(1).await?;
///     t.cancel()?;
///     t.await
/// });
/// assert_eq!(r, Err(Error::Cancelled));
/// ```
pub fn poll_cancelled(cx: &mut Context<'_>) -> bool {
    poll_cancelled_waiting(cx, WaitingOn::Other)
}

/// [`poll_cancelled`], and records what the task waits on for task dumps
/// ([`crate::task::dump_tasks`]) and [`crate::task::WaitingOn`]: what an awaitable of another
/// crate (a driver, a network stream) calls first in its poll so that a dump names it.
///
/// ```
/// use core::future::poll_fn;
/// use core::task::Poll;
/// use uasyncio::{cancel::poll_cancelled_waiting, task::WaitingOn, Error};
///
/// // An awaitable that waits for a modem and shows up as "I/O" in task dumps.
/// let wait_modem = poll_fn(|cx| {
///     if poll_cancelled_waiting(cx, WaitingOn::Io) {
///         return Poll::Ready(Err::<(), _>(Error::Cancelled));
///     }
///     Poll::Ready(Ok(()))
/// });
/// uasyncio::run(wait_modem).unwrap();
/// ```
#[inline]
pub fn poll_cancelled_waiting(_cx: &mut Context<'_>, on: WaitingOn) -> bool {
    scheduler::with_current(|task| take_cancel(task, on)).unwrap_or(false)
}

/// What a waiting primitive of the loop's own thread (`Event`, `Lock`, `Semaphore`, `Queue`)
/// learns at the top of its poll: whether a cancel was pending (taken, as
/// [`poll_cancelled_waiting`] does) and which task is being polled, for
/// [`Waiting::clone_waker`]. It borrows the poll's `Context`, so it cannot outlive the poll.
pub(crate) struct Waiting<'a> {
    pub(crate) cancelled: bool,
    task: Option<NonNull<Header>>,
    _poll: PhantomData<&'a ()>,
}

impl<'a> Waiting<'a> {
    /// [`poll_cancelled_waiting`], keeping the task it looked up.
    #[inline]
    pub(crate) fn check(_cx: &'a Context<'_>, on: WaitingOn) -> Waiting<'a> {
        let task = scheduler::current_task_ptr();
        // SAFETY: the task this thread's loop is polling; the loop holds a reference to it.
        let cancelled = task.is_some_and(|t| take_cancel(unsafe { t.as_ref() }, on));
        Waiting {
            cancelled,
            task,
            _poll: PhantomData,
        }
    }

    /// A copy of `waker` for a wait queue. When it is the waker of the task being polled (a
    /// task awaiting the primitive itself, the common case), the copy takes one of the
    /// references that task's loop-thread references hold spare (the last wake handed one
    /// over) instead of an atomic increment, as a task's join waker does.
    #[inline]
    pub(crate) fn clone_waker(&self, waker: &Waker) -> Waker {
        match self.task {
            Some(t) if waker::waker_task(waker) == Some(t) => {
                // `t` is the task this thread's loop is polling: `check` found it in this
                // same poll (the borrow of the poll's `Context` keeps `self` inside it).
                // SAFETY: as just argued, `spare_waker`'s contract.
                unsafe { waker::spare_waker(t) }
            }
            _ => waker.clone(),
        }
    }
}

/// The body of [`poll_cancelled_waiting`] for a caller that already holds the header of the
/// task being polled (from `scheduler::with_current`, or `current_task_ptr` on the loop
/// thread): records `on` and takes a pending cancel, without looking up the loop again.
#[inline]
pub(crate) fn take_cancel(task: &crate::raw::Header, on: WaitingOn) -> bool {
    let local = &task.local;
    local.set_waiting_on(on as u8);
    let pending = local.has(flag::CANCEL_PENDING);
    if pending {
        local.clear(flag::CANCEL_PENDING);
    }
    pending
}

/// True when the task whose waker `cx` carries has no cancel pending: the check a future's
/// poll after a wake-up can make before it looks up the loop (a thread-identity check: on
/// FreeRTOS about a dozen instructions). False means "go the whole way": a cancel is pending,
/// or the waker is not a task's of ours (a combinator's own waker), and the caller takes the
/// path that looks up the loop and takes the cancel with [`take_cancel`].
///
/// It asks the waker's task, not the loop's current task: the two are the same task unless a
/// future is polled with a waker borrowed from another task, and then a cancel of the task
/// being polled is seen at its next runtime await instead of this one. It reads nothing that
/// only the loop thread may read (`Local::flags` is atomic), so a caller on a wrong thread
/// gets a stale answer at worst; it must not touch loop-thread state on the strength of it.
#[inline(always)]
pub(crate) fn no_cancel_pending(cx: &Context<'_>) -> bool {
    match waker::waker_task(cx.waker()) {
        // The waker owns a counted reference to the task for as long as `cx` lives, and of
        // its loop-thread part only the atomic `flags` is read.
        // SAFETY: as just argued, the header is alive and nothing non-atomic is read.
        Some(t) => !unsafe { t.as_ref() }.local.has(flag::CANCEL_PENDING),
        None => false,
    }
}
