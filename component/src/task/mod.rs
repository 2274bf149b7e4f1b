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

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::raw::{flag, Header};
pub use crate::raw::{TaskRef, WaitingOn};
use crate::scheduler;

/// A running task whose output is `Result<T>`: MicroPython's `Task`.
///
/// Await it to get the output. Dropping it detaches the task, which keeps running.
///
/// **Cancellation of the awaiter:** a task awaiting a `Task` that is cancelled forwards the
/// cancel to the awaited task and keeps waiting for it; it gets the awaited task's outcome
/// (`Err(Cancelled)` unless that task swallowed the cancel).
///
/// **A cancel that races the awaited task's end:** when the awaited task has already
/// finished (its end woke the awaiter) and the awaiter is cancelled before it runs again,
/// there is nothing left to forward to, and the cancel wins, as in MicroPython (a task
/// "already made ready still gets CancelledError"): the await gives `Err(Cancelled)`.
/// `t.await` then drops the output with the handle; awaiting `&mut t` keeps the handle, and
/// awaiting it again gives the output:
///
/// ```
/// use std::rc::Rc;
/// use uasyncio::{create_task, run, sleep_ms, Error, Queue};
/// run(async {
///     let q = Rc::new(Queue::<u32>::new(1));
///     let q2 = q.clone();
///     let mut inner = create_task(async move { q2.get().await });
///     let outer = create_task(async move {
///         match (&mut inner).await {
///             // Cancelled after `inner` took the item: the item is still in `inner`.
///             Err(Error::Cancelled) => Ok(Some(inner.await?)),
///             r => r.map(|_| None),
///         }
///     });
///     sleep_ms(1).await?; // both wait now
///     q.put_nowait(7)?;
///     sleep_ms(0).await?; // `inner` takes the item and ends, which makes `outer` ready...
///     outer.cancel()?; // ...and `outer` is cancelled before it runs again
///     assert_eq!(outer.await?, Some(7));
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// ```
/// use uasyncio::{create_task, run, sleep_ms};
/// let out = run(async {
///     let t = create_task(async { sleep_ms(5).await?; Ok(21 * 2) });
///     t.await
/// });
/// assert_eq!(out.unwrap(), 42);
/// ```
///
/// A `Task` stays on the thread that created it (it is `!Send`; awaiting it relies on that):
///
/// ```compile_fail,E0277
/// fn send<S: Send>(_: S) {}
/// send(uasyncio::create_task(async { Ok(()) }));
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

    /// The task's name: the one [`set_name`](Self::set_name) gave, else `Task-<id>`, as
    /// CPython's `Task.get_name()` (MicroPython has no names).
    ///
    /// ```
    /// uasyncio::run(async {
    ///     let me = uasyncio::current_task()?;
    ///     assert_eq!(me.get_name(), format!("Task-{}", me.id()));
    ///     me.set_name("modem");
    ///     assert_eq!(me.get_name(), "modem");
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn get_name(&self) -> String {
        self.name_string()
    }

    /// Names the task (CPython's `Task.set_name()`): dumps, traces and the loop's statistics
    /// show it. A `&'static str` costs one small allocation, a `String` its own.
    pub fn set_name(&self, name: impl Into<Cow<'static, str>>) {
        self.local().name.set(Some(Box::new(name.into())));
    }

    /// What the task waits on, as far as the runtime knows (see [`WaitingOn`]): the awaitable
    /// it polled last when it is suspended; [`WaitingOn::Nothing`] when it is ready, running
    /// or done.
    pub fn waiting_on(&self) -> WaitingOn {
        if self.done() || self.header().state.load(core::sync::atomic::Ordering::Relaxed) & crate::raw::SCHEDULED != 0 {
            return WaitingOn::Nothing;
        }
        WaitingOn::from_u8(self.local().waiting_on())
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
    ///
    /// ```
    /// use uasyncio::{create_task, run, sleep_ms};
    /// run(async {
    ///     let t = create_task(sleep_ms(5));
    ///     assert!(!t.done());
    ///     sleep_ms(10).await?;
    ///     assert!(t.done()); // awaiting it now gives its outcome at once
    ///     t.await
    /// }).unwrap();
    /// ```
    pub fn done(&self) -> bool {
        self.raw.done()
    }

    /// The task's name (see [`TaskRef::get_name`]).
    pub fn get_name(&self) -> String {
        self.raw.get_name()
    }

    /// Names the task (see [`TaskRef::set_name`]).
    pub fn set_name(&self, name: impl Into<Cow<'static, str>>) {
        self.raw.set_name(name)
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
        if self.raw.local().has(flag::ORPHAN) {
            // Its cell holds no `T` (see `flag::ORPHAN`), only the error it was born with.
            return Err(self.raw.error().unwrap_or_else(|| Error::runtime("no event loop")));
        }
        let mut out: Option<Result<T>> = None;
        let take = self.raw.header().vtable.take_output;
        // SAFETY: on the loop thread (Task is !Send); the out pointer is an `Option<Result<T>>`
        // with the `T` this task was spawned with (not an orphan, checked above; an orphan's
        // `take_output` would write nothing anyway).
        unsafe { take(self.raw.ptr(), (&mut out as *mut Option<Result<T>>).cast()) };
        // The stage holds no output for this handle any more: its drop need not look.
        self.raw.local().clear(flag::HANDLE_ALIVE);
        out.unwrap_or_else(|| Err(Error::runtime("task result already retrieved")))
    }

    /// Poll for completion. `link` records this task as awaited by the current task, so that
    /// cancelling the current task is forwarded here.
    pub(crate) fn poll_join(&mut self, cx: &mut Context<'_>, link: bool) -> Poll<Result<T>> {
        let cur = if link { scheduler::current_task_ptr() } else { None };
        self.poll_join_from(cx, cur)
    }

    /// [`poll_join`](Self::poll_join) for a caller that already looked up the task being
    /// polled (`cur`, from `scheduler::current_task_ptr` in this poll); `None` links nothing.
    fn poll_join_from(&mut self, cx: &mut Context<'_>, cur: Option<NonNull<Header>>) -> Poll<Result<T>> {
        if self.raw.local().set_was(flag::AWAITED) & flag::FINISHED != 0 {
            self.unlink();
            return Poll::Ready(self.take_result());
        }
        register_joiner(&self.raw, cx.waker(), cur);
        if self.awaiter.is_none() {
            if let Some(cur) = cur {
                let cur = TaskRef::clone_from_ptr(cur);
                cur.local().awaiting.set(Some(self.raw.ptr()));
                self.awaiter = Some(cur);
            }
        }
        Poll::Pending
    }

    fn unlink(&mut self) {
        if let Some(awaiter) = self.awaiter.take() {
            let slot = &awaiter.local().awaiting;
            if slot.get() == Some(self.raw.ptr()) {
                slot.set(None);
            }
        }
    }
}

/// Puts the awaiting side's waker in the join slot of `raw` (not generic: one copy for every
/// output type). `cur`: the task this thread's loop is polling, if any.
fn register_joiner(raw: &TaskRef, waker: &Waker, cur: Option<NonNull<Header>>) {
    match cur {
        // The common case: the task being polled awaits with its own waker. Its copy for the
        // join slot takes a reference its loop-thread references hold spare (one the last wake
        // handed over) instead of an atomic increment.
        Some(c) if scheduler::waker::waker_task(waker) == Some(c) => raw.set_join_waker_with(waker, || {
            // SAFETY: `c` is the task this thread's loop is polling (`current_task_ptr`, this poll).
            unsafe { scheduler::waker::spare_waker(c) }
        }),
        _ => raw.set_join_waker(waker),
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
        // The task has finished (most likely its end woke us) and no cancel is pending (the
        // waker's task says so, without the look-up of the loop: see `no_cancel_pending`):
        // the outcome, as `poll_join_from` gives it. A finished task is not the one being
        // polled, and the handle is `!Send`, so this is the thread that made it.
        let local = this.raw.local();
        if local.has(flag::FINISHED) && crate::cancel::no_cancel_pending(cx) {
            local.set(flag::AWAITED);
            this.unlink();
            return Poll::Ready(this.take_result());
        }
        // One look at the loop serves the three questions below; the handle is `!Send`, so
        // the loop that made the task is this thread's and no thread check is needed.
        let cur = scheduler::current_task_ptr_for(&this.raw);
        if cur == Some(this.raw.ptr()) {
            return Poll::Ready(Err(Error::runtime("can't await self")));
        }
        if let Some(cur) = cur {
            // SAFETY: `cur` is the task this thread's loop is polling right now (so we are on
            // its thread), and the loop holds a reference to it for the whole poll.
            if crate::cancel::take_cancel(unsafe { cur.as_ref() }, crate::raw::WaitingOn::Task) {
                this.unlink();
                return Poll::Ready(Err(Error::Cancelled));
            }
        }
        this.poll_join_from(cx, cur)
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.unlink();
        // An output the handle took (`take_result` cleared HANDLE_ALIVE) needs no drop.
        let both = flag::HANDLE_ALIVE | flag::FINISHED;
        if self.raw.local().clear_was(flag::HANDLE_ALIVE) & both == both {
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
///
/// A future larger than [`LARGE_FUTURE_BYTES`] is moved to the heap once, here, and the task
/// holds it there (one allocation more for such a task).
#[inline(always)]
pub fn create_task<F, T>(coro: F) -> Task<T>
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    box_if_large!(coro => Task::from_ref(scheduler::spawn(coro)))
}

/// Futures larger than this many bytes are moved to the heap where they enter the runtime
/// ([`create_task`], [`run`](crate::run), `wait_for`, `gather`, `TaskGroup::create_task`, the
/// C API's `run_entry`), so that only a pointer travels on.
///
/// Passed by value through the runtime's layers, a large future was copied onto the calling
/// thread's stack at each of them: measured in release builds on Cortex-M3 and x86-64, a future
/// holding a 6,000-byte buffer took about three times that of the loop thread's stack on its
/// way into its task, enough to overflow a FreeRTOS task's stack. Boxed where it enters, it is
/// copied once, from the caller's frame to the heap. A smaller future is written into its
/// task's cell directly, with no allocation more; its copies cost at most a few times this.
///
/// Still, the caller's frame holds the future once while it is built: an application whose
/// main future is tens of KiB can build it in a `Box::pin(async { ... })` itself.
///
/// ```
/// // A task holding a large buffer across an await: its future goes to the heap at once.
/// let out = uasyncio::run(async {
///     let t = uasyncio::create_task(async {
///         let mut buf = [0u8; 4096];
///         uasyncio::sleep_ms(0).await?;
///         buf[1] = 7;
///         Ok(buf.iter().map(|&b| u32::from(b)).sum::<u32>())
///     });
///     t.await
/// });
/// assert_eq!(out, Ok(7));
/// assert!(uasyncio::task::LARGE_FUTURE_BYTES < 4096);
/// ```
pub const LARGE_FUTURE_BYTES: usize = 512;

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
        .ok_or_else(Error::no_running_loop)
}

// The handle never pins the output: it only points at the heap cell.
impl<T> Unpin for Task<T> {}

/// Every task of the calling thread's loop that has not finished yet (CPython's
/// `asyncio.all_tasks()`), oldest first; empty where no loop exists.
///
/// ```
/// use uasyncio::{all_tasks, create_task, run, sleep_ms};
/// run(async {
///     let t = create_task(sleep_ms(10));
///     t.set_name("sleeper");
///     let names: Vec<String> = all_tasks().iter().map(|t| t.get_name()).collect();
///     assert!(names.contains(&"sleeper".to_string()));
///     assert_eq!(names.len(), 2); // the main task and the sleeper
///     t.await
/// }).unwrap();
/// ```
pub fn all_tasks() -> Vec<TaskRef> {
    scheduler::with_core(|core| {
        let mut tasks: Vec<TaskRef> = core.registry.snapshot();
        tasks.sort_by_key(|t| t.id());
        tasks
    })
    .unwrap_or_default()
}

/// Writes a dump of the calling thread's loop: a line with the count of unfinished tasks and
/// (feature `stats`) the loop's statistics, then one line per
/// unfinished task with its id, name, state (`running`, `ready`, `waiting`, with `cancel
/// pending` when a cancel has not been seen yet) and what it waits on (the task it awaits,
/// by name, or the runtime awaitable it polled last). From C: `uasyncio_dump_tasks()`;
/// from a debugger: `uasyncio_log_tasks()` on the loop's thread. On a thread that runs no
/// loop it dumps that thread's own (empty) loop: call it from a task, e.g. one that awaits a
/// `ThreadSafeFlag` a watchdog thread sets. It returns `fmt::Result`; in a task, where `?`
/// needs a `uasyncio::Error`, a `String` target cannot fail (`let _ = dump_tasks(&mut s);`).
///
/// ```
/// use uasyncio::{create_task, run, sleep_ms, Event};
/// run(async {
///     let ev = std::rc::Rc::new(Event::new());
///     let e2 = ev.clone();
///     let t = create_task(async move { e2.wait().await });
///     t.set_name("waiter");
///     sleep_ms(1).await?;
///     let mut dump = String::new();
///     uasyncio::task::dump_tasks(&mut dump).unwrap();
///     assert!(dump.contains("'waiter' waiting on Event.wait"), "{dump}");
///     ev.set();
///     t.await
/// }).unwrap();
/// ```
pub fn dump_tasks(out: &mut dyn fmt::Write) -> fmt::Result {
    let tasks = all_tasks();
    let current = scheduler::current_task_ptr();
    #[cfg(feature = "stats")]
    {
        let stats = crate::get_event_loop().stats();
        writeln!(
            out,
            "uasyncio: {} unfinished task(s); {} polls, wakes: {} task {} timer {} remote; {} sleeps, {} us idle",
            tasks.len(),
            stats.polls,
            stats.task_wakes,
            stats.timer_wakes,
            stats.remote_wakes,
            stats.sleeps,
            stats.idle_us
        )?;
        if let Some((id, name)) = &stats.longest_poll_task {
            writeln!(
                out,
                "  longest poll: {} us by Task {} '{}'",
                stats.longest_poll_us, id, name
            )?;
        }
    }
    #[cfg(not(feature = "stats"))]
    writeln!(out, "uasyncio: {} unfinished task(s)", tasks.len())?;
    for t in &tasks {
        let local = t.local();
        let state = if current == Some(t.ptr()) {
            "running"
        } else if t.header().state.load(core::sync::atomic::Ordering::Relaxed) & crate::raw::SCHEDULED != 0 {
            "ready"
        } else {
            "waiting"
        };
        write!(out, "  {:>4} '{}' {}", t.id(), t.get_name(), state)?;
        if state == "waiting" {
            match t.awaited() {
                Some(inner) => write!(out, " on task {} '{}'", inner.id(), inner.get_name())?,
                None => write!(out, " on {}", t.waiting_on().as_str())?,
            }
        }
        if local.has(flag::CANCEL_PENDING) {
            write!(out, " (cancel pending)")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
