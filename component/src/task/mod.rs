//! Tasks: `create_task`, `Task`, `current_task`, and `Task.cancel()`.
//!
//! A task wraps a future whose output is `Result<T>`. [`create_task`] puts it in the loop's
//! ready queue and returns a [`Task<T>`] handle; awaiting the handle gives the task's output.
//! Dropping the handle **detaches** the task: it keeps running, as a Python task does.
//! [`TaskRef`] is the type-erased, clonable form, used by [`current_task`] and by the
//! exception handler's context.
//!
//! ## Cancellation (MicroPython's, not Rust's drop-cancellation)
//! [`Task::cancel`] marks the task and wakes it; the task observes `Err(Error::Cancelled)` from
//! the next runtime awaitable it polls (see [`crate::cancel`]). It may propagate it with `?`,
//! clean up asynchronously and return, or ignore it and go on. Case by case, as MicroPython:
//! - a task that already finished: `Ok(false)`, no effect;
//! - the calling task itself: `Err(Error::Runtime("can't cancel self"))`;
//! - a task that never started: `Ok(true)`, its body never runs, awaiters get `Cancelled`;
//! - a task awaiting another task: the cancel goes to the **innermost** awaited task; the
//!   outer one sees the inner's outcome when it ends (so if the inner swallows the cancel,
//!   the outer goes on);
//! - cancelled twice before it runs: both `Ok(true)`, one `Cancelled` delivered.

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::error::{Error, Result};
use crate::raw::flag;
pub use crate::raw::TaskRef;
use crate::scheduler;

/// A running task whose output is `Result<T>`: MicroPython's `Task`.
///
/// Await it to get the output. Dropping it detaches the task, which keeps running.
///
/// **Cancellation of the awaiter:** a task awaiting a `Task` that is cancelled forwards the
/// cancel to the awaited task and keeps waiting for it; it gets the awaited task's outcome
/// (`Err(Cancelled)` unless that task swallowed the cancel).
///
/// ```
/// use uasyncio::{create_task, run, sleep_ms};
/// let out = run(async {
///     let t = create_task(async { sleep_ms(5).await?; Ok(21 * 2) });
///     t.await
/// });
/// assert_eq!(out.unwrap(), 42);
/// ```
pub struct Task<T> {
    raw: TaskRef,
    /// The task currently awaiting this one, whose `awaiting` link points back here.
    awaiter: Option<TaskRef>,
    _output: PhantomData<T>,
}

impl TaskRef {
    /// Cancels the task (see the [module docs](crate::task) for the cases).
    ///
    /// Returns `Ok(false)` if it had already finished, `Ok(true)` if the cancel was delivered
    /// (or forwarded to the task it awaits), `Err(Error::Runtime)` if called from the task
    /// itself.
    pub fn cancel(&self) -> Result<bool> {
        scheduler::cancel(self.ptr())
    }
}

impl<T> Task<T> {
    pub(crate) fn from_ref(raw: TaskRef) -> Self {
        Task {
            raw,
            awaiter: None,
            _output: PhantomData,
        }
    }

    /// Cancels the task; see [`TaskRef::cancel`].
    ///
    /// ```
    /// use uasyncio::{create_task, run, sleep, Error};
    /// let r = run(async {
    ///     let t = create_task(async { sleep(3600.0).await?; Ok(()) });
    ///     sleep(0.0).await?;
    ///     assert_eq!(t.cancel(), Ok(true));
    ///     t.await
    /// });
    /// assert_eq!(r, Err(Error::Cancelled));
    /// ```
    pub fn cancel(&self) -> Result<bool> {
        self.raw.cancel()
    }

    /// True once the task has finished.
    pub fn done(&self) -> bool {
        self.raw.done()
    }

    /// A type-erased reference to the task.
    pub fn task_ref(&self) -> TaskRef {
        self.raw.clone()
    }

    pub(crate) fn raw(&self) -> &TaskRef {
        &self.raw
    }

    /// Moves the outcome out of a finished task.
    pub(crate) fn take_result(&mut self) -> Result<T> {
        let mut out: Option<Result<T>> = None;
        let take = self.raw.header().vtable.take_output;
        // SAFETY: on the loop thread (Task is !Send); the out pointer is an `Option<Result<T>>`
        // with the `T` this task was spawned with.
        unsafe { take(self.raw.ptr(), (&mut out as *mut Option<Result<T>>).cast()) };
        out.unwrap_or_else(|| Err(Error::runtime("task result already retrieved")))
    }

    /// Poll for completion. `link` records this task as awaited by the current task, so that
    /// cancelling the current task is forwarded here.
    pub(crate) fn poll_join(&mut self, cx: &mut Context<'_>, link: bool) -> Poll<Result<T>> {
        let local = self.raw.local();
        local.set(flag::AWAITED);
        if local.has(flag::FINISHED) {
            self.unlink();
            return Poll::Ready(self.take_result());
        }
        self.raw.set_join_waker(cx.waker());
        if link && self.awaiter.is_none() {
            if let Some(cur) = scheduler::current_task_ptr() {
                let cur = TaskRef::clone_from_ptr(cur);
                cur.local().awaiting.set(Some(self.raw.clone()));
                self.awaiter = Some(cur);
            }
        }
        Poll::Pending
    }

    fn unlink(&mut self) {
        if let Some(awaiter) = self.awaiter.take() {
            let slot = &awaiter.local().awaiting;
            match slot.take() {
                Some(t) if t == self.raw => {}
                other => slot.set(other),
            }
        }
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T>;

    /// Waits for the task to finish and gives its output.
    ///
    /// Errors: the task's own error; `Runtime("can't await self")` from inside the task
    /// itself; `Cancelled` if the awaiting task had a pending cancel that was not forwarded.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        if scheduler::current_task_ptr() == Some(this.raw.ptr()) {
            return Poll::Ready(Err(Error::runtime("can't await self")));
        }
        if crate::cancel::poll_cancelled(cx) {
            this.unlink();
            return Poll::Ready(Err(Error::Cancelled));
        }
        this.poll_join(cx, true)
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.unlink();
        let local = self.raw.local();
        local.clear(flag::HANDLE_ALIVE);
        if local.has(flag::FINISHED) {
            let drop_output = self.raw.header().vtable.drop_output;
            // SAFETY: on the loop thread; the task finished, so its stage is not being polled.
            unsafe { drop_output(self.raw.ptr()) };
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.raw, f)
    }
}

/// Creates a task from `coro` and schedules it to run; returns its [`Task`] handle.
///
/// Tasks run in FIFO order of becoming ready. If no loop runs yet on this thread, the task
/// waits for the next [`run`](crate::run) / `run_forever` on it.
///
/// ```
/// use uasyncio::{create_task, run};
/// run(async {
///     let a = create_task(async { Ok("a") });
///     let b = create_task(async { Ok("b") });
///     assert_eq!((a.await?, b.await?), ("a", "b"));
///     Ok(())
/// }).unwrap();
/// ```
pub fn create_task<F, T>(coro: F) -> Task<T>
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    Task::from_ref(scheduler::spawn(coro))
}

/// The task that is running now.
///
/// Errors with `RuntimeError("no running event loop")` outside a task.
///
/// ```
/// assert!(uasyncio::current_task().is_err());
/// ```
pub fn current_task() -> Result<TaskRef> {
    scheduler::current_task_ptr()
        .map(TaskRef::clone_from_ptr)
        .ok_or_else(|| Error::runtime("no running event loop"))
}

// The handle never pins the output: it only points at the heap cell.
impl<T> Unpin for Task<T> {}
