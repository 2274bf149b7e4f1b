//! `TaskGroup`: structured concurrency with Python 3.11's semantics (CPython's
//! `asyncio.TaskGroup`; MicroPython has none).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::raw::flag;
use crate::scheduler;
use crate::task::{create_task, Task, TaskRef};

/// What the group's handles, its children and its [`TaskGroupRun`] future share.
#[derive(Default)]
struct State {
    /// Children whose future has not been dropped yet (running, or not started).
    live: Cell<usize>,
    /// The body has finished: the group is waiting for its children (`__aexit__`).
    exiting: Cell<bool>,
    /// A child failed or the body failed or was cancelled: the children were cancelled.
    aborting: Cell<bool>,
    /// A child failed and the group has not reacted yet.
    failed: Cell<bool>,
    /// [`TaskGroupRun`] finished or was dropped.
    ended: Cell<bool>,
    /// [`TaskGroupRun`] was dropped before it finished: children now are ordinary detached tasks.
    dropped: Cell<bool>,
    /// Errors of the children other than `Cancelled`, in the order they happened.
    errors: RefCell<Vec<Error>>,
    /// The children (finished ones are pruned from time to time).
    tasks: RefCell<Vec<TaskRef>>,
    /// The task running [`TaskGroupRun`], to wake when a child fails or the last one ends.
    waker: RefCell<Option<Waker>>,
}

impl State {
    fn wake(&self) {
        let waker = self.waker.borrow().clone();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Cancels every unfinished child (`TaskGroup._abort`).
    fn abort(&self) {
        self.aborting.set(true);
        let tasks: Vec<TaskRef> = self.tasks.borrow().iter().filter(|t| !t.done()).cloned().collect();
        for t in tasks {
            let _ = t.cancel();
        }
    }
}

/// Lives inside each child's future: records its error and counts it out when the future is
/// dropped — after it finished, or unstarted (cancelled before it ran, or the loop was reset).
struct ChildGuard {
    state: Rc<State>,
}

impl ChildGuard {
    fn outcome<T>(&self, out: &Result<T>) {
        let s = &self.state;
        if let Err(e) = out {
            if !e.is_cancelled() && !s.dropped.get() {
                s.errors.borrow_mut().push(e.clone());
                if !s.aborting.get() && !s.failed.get() {
                    s.failed.set(true);
                    s.wake();
                }
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let s = &self.state;
        let live = s.live.get().saturating_sub(1);
        s.live.set(live);
        if live == 0 && s.exiting.get() && !s.ended.get() {
            s.wake();
        }
    }
}

/// A handle to a task group, given to the body of [`TaskGroup::run`]: CPython's
/// `asyncio.TaskGroup` (the `async with asyncio.TaskGroup() as tg:` block is the body).
///
/// - [`create_task`](TaskGroup::create_task) starts a task in the group.
/// - When the body returns, the group **waits for every task** it holds.
/// - The **first failure** of a task (any error but `Cancelled`) cancels every other task of
///   the group *and the body*; the group still waits for them all to finish (their cleanup
///   runs), then [`run`](TaskGroup::run) gives `Err(Error::Group(errors))` with every error
///   that is not a cancellation, in the order they happened — the body's own error, if it
///   failed, last. An error collected by the group never reaches the loop's exception handler.
/// - A body that fails (any error but `Cancelled`) cancels every task of the group too.
/// - [`create_task`](TaskGroup::create_task) on a group that has ended, or is shutting down
///   after a failure, is a `RuntimeError` (the future is dropped unstarted).
///
/// The handle is a cheap clone: a task of the group may hold one and add tasks itself.
///
/// ```
/// use uasyncio::{run, sleep_ms, TaskGroup};
/// let sum = run(async {
///     TaskGroup::run(|tg| async move {
///         let a = tg.create_task(async { sleep_ms(20).await?; Ok(1) })?;
///         let b = tg.create_task(async { sleep_ms(10).await?; Ok(2) })?;
///         Ok(a.await? + b.await?)
///     })
///     .await
/// });
/// assert_eq!(sum, Ok(3));
/// ```
#[derive(Clone)]
pub struct TaskGroup {
    state: Rc<State>,
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.state;
        f.debug_struct("TaskGroup")
            .field("tasks", &s.live.get())
            .field("aborting", &s.aborting.get())
            .field("ended", &s.ended.get())
            .finish()
    }
}

impl TaskGroup {
    /// Runs `body` with a new group and waits for the group's tasks: the
    /// `async with asyncio.TaskGroup() as tg:` block.
    ///
    /// Gives the body's output when the body and every task of the group succeeded (a task
    /// that ends with `Cancelled`, say from someone's `cancel()`, is no failure);
    /// `Err(Error::Group(errors))` when any of them failed (see [`TaskGroup`]); and
    /// `Err(Error::Cancelled)` when the task running the group was cancelled and nothing
    /// failed.
    ///
    /// **Cancellation:** cancelling the task that awaits `run` cancels the body (the cancel
    /// reaches it as for any task, at its next runtime await); if the body lets the
    /// `Cancelled` out, or the cancel arrives once the body has returned, every task of the
    /// group is cancelled and `run` **still waits for all of them to finish**, then gives
    /// `Err(Error::Cancelled)` (or the group error, if one of them failed with another error).
    /// A body that catches the cancel and goes on leaves the tasks alone, as in Python.
    ///
    /// **The group's cancel of the body** (after a task failed) reaches the body as a cancel
    /// of its task would — at its next runtime await, or forwarded to the task it awaits —
    /// once the tasks just cancelled have run, as in CPython. A body that swallows it still
    /// ends in the group error; one that returns before observing it has it taken back, so
    /// it never hits the owner's next await (CPython's `uncancel`).
    ///
    /// **Dropping** the future before it completes (say, in a `select`) drops the body and
    /// cancels every unfinished task of the group (`Task::cancel`: each ends at its next
    /// runtime await, its cleanup runs, unobserved by the group). From then on they are
    /// ordinary detached tasks: an error other than `Cancelled` they end with goes to the
    /// loop's exception handler; errors collected before the drop are discarded. A task that
    /// ignores the cancel **keeps running**, detached, as any task whose handle was dropped:
    /// keep its [`Task`] or [`TaskRef`] (from [`Task::task_ref`]) to watch or await it.
    /// `create_task` on the group fails from then on.
    ///
    /// **We differ:** a cancel from outside that arrives in the same loop pass as the
    /// group's own cancel of the body, before the body observes it, merges with it (CPython
    /// counts them and re-raises `CancelledError` after the group error is built); the
    /// group error wins here. A group awaited outside any task cannot cancel its body on a
    /// failure (the tasks are still cancelled).
    ///
    /// ```
    /// use uasyncio::{run, sleep_ms, Error, TaskGroup};
    /// let out = run(async {
    ///     TaskGroup::run(|tg| async move {
    ///         tg.create_task(async { sleep_ms(5).await?; Err::<(), _>(Error::value("boom")) })?;
    ///         tg.create_task(async { sleep_ms(1000).await })?; // cancelled at 5 ms
    ///         sleep_ms(1000).await?; // the body too: Cancelled comes out of here
    ///         Ok("unreachable")
    ///     })
    ///     .await
    /// });
    /// assert_eq!(out, Err(Error::Group(vec![Error::value("boom")])));
    /// ```
    pub fn run<B, Fut, R>(body: B) -> TaskGroupRun<Fut, R>
    where
        B: FnOnce(TaskGroup) -> Fut,
        Fut: Future<Output = Result<R>>,
    {
        let group = TaskGroup {
            state: Rc::new(State::default()),
        };
        let body = Box::pin(body(group.clone()));
        TaskGroupRun {
            group,
            body: Some(body),
            value: None,
            body_error: None,
            owner: None,
            cancelled_body: false,
            propagate_cancel: false,
        }
    }

    /// Creates a task in the group: CPython's `TaskGroup.create_task`.
    ///
    /// The task runs as one made by [`create_task`], and its handle works
    /// the same (await it for its output; dropping the handle leaves the task in the group).
    /// Its error, if any, is collected by the group instead of going to the exception handler.
    ///
    /// Errors with `RuntimeError("TaskGroup is finished")` once the group has ended, and
    /// `RuntimeError("TaskGroup is shutting down")` once a failure (or a cancel) has made
    /// it cancel its tasks; `coro` is then dropped without running.
    ///
    /// ```
    /// use uasyncio::{run, TaskGroup, Error};
    /// run(async {
    ///     let mut kept = None;
    ///     TaskGroup::run(|tg| {
    ///         kept = Some(tg.clone());
    ///         async move { tg.create_task(async { Ok(()) }).map(drop) }
    ///     })
    ///     .await?;
    ///     let late = kept.map(|tg| tg.create_task(async { Ok(()) }).map(drop));
    ///     assert_eq!(late, Some(Err(Error::runtime("TaskGroup is finished"))));
    ///     Ok(())
    /// }).unwrap();
    /// ```
    #[inline(always)]
    pub fn create_task<F, T>(&self, coro: F) -> Result<Task<T>>
    where
        F: Future<Output = Result<T>> + 'static,
        T: 'static,
    {
        box_if_large!(coro => self.create_child(coro))
    }

    /// [`create_task`](Self::create_task) once a large future is boxed (the task's wrapper
    /// would copy it once more).
    fn create_child<F, T>(&self, coro: F) -> Result<Task<T>>
    where
        F: Future<Output = Result<T>> + 'static,
        T: 'static,
    {
        let s = &self.state;
        if s.ended.get() || (s.exiting.get() && s.live.get() == 0) {
            return Err(Error::runtime("TaskGroup is finished"));
        }
        if s.aborting.get() {
            return Err(Error::runtime("TaskGroup is shutting down"));
        }
        s.live.set(s.live.get() + 1);
        let guard = ChildGuard { state: s.clone() };
        let task = create_task(async move {
            let guard = guard;
            let out = coro.await;
            guard.outcome(&out);
            out
        });
        // The group retrieves the error: the exception handler never sees it.
        task.raw().local().set(flag::AWAITED);
        let mut tasks = s.tasks.borrow_mut();
        if tasks.len() >= 2 * s.live.get() + 8 {
            tasks.retain(|t| !t.done());
        }
        tasks.push(task.task_ref());
        Ok(task)
    }
}

/// The future of [`TaskGroup::run`]: the body, then the wait for the group's tasks.
///
/// See [`TaskGroup::run`] for what cancelling and dropping it do. Dropping it early cancels
/// the group's tasks:
///
/// ```
/// use core::future::{poll_fn, Future};
/// use core::task::Poll;
/// use uasyncio::{run, sleep_ms, Error, TaskGroup};
/// run(async {
///     let mut child = None;
///     let mut group = Box::pin(TaskGroup::run(|tg| {
///         child = tg.create_task(async { sleep_ms(1000).await }).ok();
///         async { sleep_ms(1000).await }
///     }));
///     poll_fn(|cx| { let _ = group.as_mut().poll(cx); Poll::Ready(()) }).await; // started
///     drop(group);
///     if let Some(child) = child {
///         assert_eq!(child.await, Err(Error::Cancelled));
///     }
///     Ok(())
/// }).unwrap();
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct TaskGroupRun<Fut, R> {
    group: TaskGroup,
    body: Option<Pin<Box<Fut>>>,
    value: Option<R>,
    body_error: Option<Error>,
    /// The task that polls us (CPython's parent task).
    owner: Option<TaskRef>,
    /// The group cancelled the body after a task failed (`_parent_cancel_requested`).
    cancelled_body: bool,
    /// The owner was cancelled from outside: end with `Cancelled` if nothing failed.
    propagate_cancel: bool,
}

impl<Fut, R> fmt::Debug for TaskGroupRun<Fut, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroupRun")
            .field("group", &self.group)
            .field("body_running", &self.body.is_some())
            .finish_non_exhaustive()
    }
}

// The body is boxed; nothing else is pinned.
impl<Fut, R> Unpin for TaskGroupRun<Fut, R> {}

/// Cancels the body of the group, polled by `owner` right now: the cancel goes to the
/// innermost task the owner awaits, as `Task::cancel` would, or stays pending on the owner
/// for the body's next runtime await (then it says true).
fn cancel_body(owner: &TaskRef) -> bool {
    let target = owner.clone().innermost_awaited();
    if target == *owner {
        owner.local().set(flag::CANCEL_PENDING);
        true
    } else {
        let _ = target.cancel();
        false
    }
}

impl<Fut, R> TaskGroupRun<Fut, R> {
    fn is_owner_now(&self) -> bool {
        self.owner
            .as_ref()
            .is_some_and(|o| scheduler::current_task_ptr() == Some(o.ptr()))
    }

    /// The group's own cancel of the body was never observed: take it back
    /// (`Task.uncancel`), so it does not hit the owner's next await.
    fn uncancel(&self) {
        if self.cancelled_body && self.is_owner_now() {
            if let Some(owner) = &self.owner {
                owner.local().clear(flag::CANCEL_PENDING);
            }
        }
    }
}

impl<Fut, R> Future for TaskGroupRun<Fut, R>
where
    Fut: Future<Output = Result<R>>,
{
    type Output = Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R>> {
        let this = self.get_mut();
        let state = this.group.state.clone();
        if state.ended.get() {
            return Poll::Ready(Err(Error::runtime("TaskGroup polled after it ended")));
        }
        {
            let mut slot = state.waker.borrow_mut();
            match &*slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        if this.owner.is_none() {
            this.owner = scheduler::current_task_ptr().map(TaskRef::clone_from_ptr);
        }
        if let Some(body) = this.body.as_mut() {
            if state.failed.get() && !state.aborting.get() {
                state.abort();
                let current = scheduler::current_task_ptr();
                if let Some(owner) = this.owner.as_ref().filter(|o| current == Some(o.ptr())) {
                    this.cancelled_body = true;
                    if cancel_body(owner) {
                        // As CPython: the tasks just cancelled run first, then the body.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
            }
            let out = match body.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(out) => out,
            };
            this.body = None;
            state.exiting.set(true);
            this.uncancel();
            match out {
                Ok(v) => this.value = Some(v),
                Err(e) => {
                    if !e.is_cancelled() {
                        this.body_error = Some(e);
                    } else if !this.cancelled_body {
                        this.propagate_cancel = true;
                    }
                    if !state.aborting.get() {
                        state.abort();
                    }
                }
            }
        }
        if state.live.get() > 0 {
            if crate::cancel::poll_cancelled_waiting(cx, crate::raw::WaitingOn::TaskGroup) && !state.aborting.get() {
                this.propagate_cancel = true;
                state.abort();
            }
            if state.failed.get() && !state.aborting.get() {
                state.abort();
            }
            if state.live.get() > 0 {
                return Poll::Pending;
            }
        }
        state.ended.set(true);
        state.waker.borrow_mut().take();
        state.tasks.borrow_mut().clear();
        let mut errors = core::mem::take(&mut *state.errors.borrow_mut());
        if let Some(e) = this.body_error.take() {
            errors.push(e);
        }
        if !errors.is_empty() {
            return Poll::Ready(Err(Error::Group(errors)));
        }
        if this.propagate_cancel {
            return Poll::Ready(Err(Error::Cancelled));
        }
        match this.value.take() {
            Some(v) => Poll::Ready(Ok(v)),
            None => Poll::Ready(Err(Error::Cancelled)),
        }
    }
}

impl<Fut, R> Drop for TaskGroupRun<Fut, R> {
    fn drop(&mut self) {
        let state = &self.group.state;
        if state.ended.get() {
            return;
        }
        // Drop the body first: it may hold handles of the children.
        self.body = None;
        self.uncancel();
        state.ended.set(true);
        state.dropped.set(true);
        state.aborting.set(true);
        state.waker.borrow_mut().take();
        let tasks = core::mem::take(&mut *state.tasks.borrow_mut());
        for t in tasks.iter().filter(|t| !t.done()) {
            // Nobody collects their errors any more: let the exception handler see them.
            t.local().clear(flag::AWAITED);
            let _ = t.cancel();
        }
        state.errors.borrow_mut().clear();
    }
}
