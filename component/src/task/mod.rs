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

pub(crate) mod raw;

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};

use raw::{flag, Header};

use crate::error::{Error, Result};
use crate::scheduler;

/// A type-erased, clonable reference to a task: what [`current_task`] returns and what the
/// exception handler's [`Context::future`](crate::Context::future) carries.
///
/// ```
/// uasyncio::run(async {
///     let me = uasyncio::current_task()?;
///     assert!(!me.done());
///     assert!(me.cancel().is_err()); // can't cancel self
///     Ok(())
/// }).unwrap();
/// ```
pub struct TaskRef {
    ptr: NonNull<Header>,
    _not_send: PhantomData<*const ()>,
}

impl TaskRef {
    /// Takes ownership of one reference to the cell at `ptr`.
    pub(crate) fn from_raw(ptr: NonNull<Header>) -> Self {
        TaskRef {
            ptr,
            _not_send: PhantomData,
        }
    }

    /// A new owned reference to the cell at `ptr`, which the caller keeps alive meanwhile.
    pub(crate) fn clone_from_ptr(ptr: NonNull<Header>) -> Self {
        raw::inc_ref(ptr);
        TaskRef::from_raw(ptr)
    }

    pub(crate) fn ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a TaskRef owns a reference, so the cell is alive while `self` is.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn local(&self) -> &raw::Local {
        &self.header().local
    }

    /// True once the task has finished (returned, failed or was cancelled).
    pub fn done(&self) -> bool {
        self.local().has(flag::FINISHED)
    }

    /// Cancels the task (see the [module docs](crate::task) for the cases).
    ///
    /// Returns `Ok(false)` if it had already finished, `Ok(true)` if the cancel was delivered
    /// (or forwarded to the task it awaits), `Err(Error::Runtime)` if called from the task
    /// itself.
    pub fn cancel(&self) -> Result<bool> {
        scheduler::cancel(self.ptr)
    }

    /// A small number that tells tasks of one loop apart in logs.
    pub fn id(&self) -> u32 {
        self.local().id
    }

    /// The error the task ended with, if it ended with one that is still stored.
    pub(crate) fn error(&self) -> Option<Error> {
        if !self.done() {
            return None;
        }
        let error = self.header().vtable.error;
        // SAFETY: called on the loop thread (TaskRef is !Send) for a finished task.
        unsafe { error(self.ptr) }
    }

    /// Registers `waker` to be woken when the task finishes (the task's single join slot).
    pub(crate) fn set_join_waker(&self, waker: &Waker) {
        let slot = &self.local().join_waker;
        match slot.take() {
            Some(old) if old.will_wake(waker) => slot.set(Some(old)),
            _ => slot.set(Some(waker.clone())),
        }
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        TaskRef::clone_from_ptr(self.ptr)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: `self` owned one reference and is going away.
        unsafe { raw::drop_ref(self.ptr) };
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}
impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Task {}{}>", self.id(), if self.done() { " done" } else { "" })
    }
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

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
        unsafe { take(self.raw.ptr, (&mut out as *mut Option<Result<T>>).cast()) };
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
        if scheduler::current_task_ptr() == Some(this.raw.ptr) {
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
            unsafe { drop_output(self.raw.ptr) };
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
