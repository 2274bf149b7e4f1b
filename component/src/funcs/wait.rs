//! `wait` / `wait_ms`: wait for some or all of a set of tasks, with an optional timeout.

use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::scheduler;
use crate::scheduler::Timer;
use crate::task::{Task, TaskRef};
use crate::time::seconds_to_ms;

/// When [`wait`] returns: CPython's `return_when` constants.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReturnWhen {
    /// `FIRST_COMPLETED`: as soon as any task has finished (or was cancelled).
    FirstCompleted,
    /// `FIRST_EXCEPTION`: as soon as any task has finished with an error other than
    /// `Cancelled`; when none does, when all have finished.
    FirstException,
    /// `ALL_COMPLETED`: when every task has finished.
    AllCompleted,
}

/// `asyncio.FIRST_COMPLETED`: see [`ReturnWhen::FirstCompleted`].
pub const FIRST_COMPLETED: ReturnWhen = ReturnWhen::FirstCompleted;
/// `asyncio.FIRST_EXCEPTION`: see [`ReturnWhen::FirstException`].
pub const FIRST_EXCEPTION: ReturnWhen = ReturnWhen::FirstException;
/// `asyncio.ALL_COMPLETED`: see [`ReturnWhen::AllCompleted`].
pub const ALL_COMPLETED: ReturnWhen = ReturnWhen::AllCompleted;

/// Waits for the tasks until `return_when` says so or `timeout` seconds pass (`None`: no
/// limit), and gives back `(done, pending)`: CPython's `asyncio.wait` (MicroPython has none).
///
/// - Cancels nothing: the tasks in `pending` keep running. Every task comes back, in the order
///   given, in `done` (finished: returned, failed or cancelled) or in `pending`; await a done
///   task to get its outcome at once.
/// - The timeout is not an error: `wait` just returns what is done by then.
/// - No task at all is `ValueError("Set of Tasks/Futures is empty.")`.
/// - Takes tasks, not bare futures (CPython refuses coroutines too): use
///   [`create_task`](crate::create_task) first.
/// - A task's error counts as retrieved by whoever holds its handle (as for `gather`): the
///   loop's exception handler is not called for a task that fails while `wait` waits for it.
/// - If `return_when` is met already when `wait` is first polled, it returns without yielding.
///   **We differ:** CPython always yields once there.
///
/// **Cancellation:** if the task calling `wait` is cancelled, `wait` returns
/// `Err(Error::Cancelled)` at once and cancels none of the tasks; they keep running detached,
/// as when a [`Task`] handle is dropped (keep a [`TaskRef`] from [`Task::task_ref`] to cancel
/// or check them later). Dropping the future does the same.
///
/// ```
/// use uasyncio::{create_task, run, sleep_ms, wait, FIRST_COMPLETED};
/// run(async {
///     let fast = create_task(async { sleep_ms(10).await?; Ok("fast") });
///     let slow = create_task(async { sleep_ms(10_000).await?; Ok("slow") });
///     let (done, pending) = wait([fast, slow], None, FIRST_COMPLETED).await?;
///     assert_eq!((done.len(), pending.len()), (1, 1));
///     for t in done {
///         assert_eq!(t.await?, "fast");
///     }
///     for t in pending {
///         t.cancel()?; // still asleep: `wait` left it running
///     }
///     Ok(())
/// }).unwrap();
/// ```
pub fn wait<I, T>(tasks: I, timeout: impl Into<Option<f32>>, return_when: ReturnWhen) -> Wait<T>
where
    I: IntoIterator<Item = Task<T>>,
{
    wait_ms(tasks, timeout.into().map(seconds_to_ms), return_when)
}

/// As [`wait`], with the timeout in milliseconds (as MicroPython's `wait_for_ms`).
///
/// ```
/// use uasyncio::{create_task, run, sleep_ms, wait_ms, ALL_COMPLETED};
/// run(async {
///     let t = create_task(async { sleep_ms(1000).await });
///     let (done, pending) = wait_ms([t], 5, ALL_COMPLETED).await?; // times out: not an error
///     assert!(done.is_empty() && pending.len() == 1);
///     Ok(())
/// }).unwrap();
/// ```
pub fn wait_ms<I, T>(tasks: I, timeout_ms: impl Into<Option<u32>>, return_when: ReturnWhen) -> Wait<T>
where
    I: IntoIterator<Item = Task<T>>,
{
    Wait {
        tasks: tasks.into_iter().collect(),
        timeout_ms: timeout_ms.into(),
        return_when,
        deadline: None,
        timer: Timer::default(),
        registered: None,
    }
}

/// The future of [`wait`] and [`wait_ms`]: `(done, pending)`.
///
/// **Cancellation:** a cancel of the task awaiting it gives `Err(Error::Cancelled)` at once
/// and cancels none of the tasks: they keep running, detached (their handles go with the
/// future). **Dropping** it does the same: its timer leaves the heap and it leaves no waker
/// in the tasks. See [`wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<T> {
    tasks: Vec<Task<T>>,
    timeout_ms: Option<u32>,
    return_when: ReturnWhen,
    deadline: Option<u64>,
    timer: Timer,
    /// The waker left in the tasks' join slots, to take it out again when we stop waiting.
    registered: Option<Waker>,
}

impl<T> core::fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Wait")
            .field("tasks", &self.tasks.len())
            .field("return_when", &self.return_when)
            .finish_non_exhaustive()
    }
}

// The tasks are handles; nothing is pinned.
impl<T> Unpin for Wait<T> {}

/// Takes our waker out of `task`'s join slot, leaving anyone else's.
fn unregister(task: &TaskRef, ours: &Waker) {
    let slot = &task.local().join_waker;
    match slot.take() {
        Some(w) if w.will_wake(ours) => {}
        other => slot.set(other),
    }
}

impl<T> Wait<T> {
    fn condition_met(&self) -> bool {
        let mut all_done = true;
        for t in &self.tasks {
            let r = t.raw();
            if !r.done() {
                all_done = false;
                continue;
            }
            match self.return_when {
                ReturnWhen::FirstCompleted => return true,
                ReturnWhen::FirstException if r.error().is_some_and(|e| !e.is_cancelled()) => return true,
                _ => {}
            }
        }
        all_done
    }

    /// Stops waiting: disarms the timer and leaves no waker of ours behind.
    fn stop(&mut self) {
        if let Some(w) = self.registered.take() {
            for t in self.tasks.iter().filter(|t| !t.done()) {
                unregister(t.raw(), &w);
            }
        }
        scheduler::with_core(|core| self.timer.disarm(core));
    }

    fn split(&mut self) -> (Vec<Task<T>>, Vec<Task<T>>) {
        self.stop();
        core::mem::take(&mut self.tasks).into_iter().partition(|t| t.done())
    }
}

impl<T> Future for Wait<T> {
    type Output = Result<(Vec<Task<T>>, Vec<Task<T>>)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.tasks.is_empty() {
            return Poll::Ready(Err(Error::value("Set of Tasks/Futures is empty.")));
        }
        if crate::cancel::poll_cancelled_waiting(cx, crate::raw::WaitingOn::Wait) {
            this.stop();
            return Poll::Ready(Err(Error::Cancelled));
        }
        if this.condition_met() {
            return Poll::Ready(Ok(this.split()));
        }
        if let Some(timeout_ms) = this.timeout_ms {
            let fired = scheduler::with_core(|core| {
                let deadline = *this
                    .deadline
                    .get_or_insert_with(|| core.now_us() + u64::from(timeout_ms) * 1000);
                this.timer.poll_at(core, deadline, cx.waker())
            });
            match fired {
                Some(false) => {}
                Some(true) => return Poll::Ready(Ok(this.split())),
                None => return Poll::Ready(Err(Error::no_running_loop())),
            }
        }
        for t in this.tasks.iter().filter(|t| !t.done()) {
            t.raw().set_join_waker(cx.waker());
        }
        match &this.registered {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => this.registered = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Wait<T> {
    fn drop(&mut self) {
        self.stop();
    }
}
