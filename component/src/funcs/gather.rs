//! `gather`: run awaitables concurrently and collect their outcomes in argument order.

use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::promote_to_task;
use crate::error::{Error, Result};
use crate::raw::flag;
use crate::task::{Task, TaskRef};

/// The sub-tasks a gather waits for: their references, and whether the gather has claimed
/// them (`AWAITED`, its first poll). A gather that ends before all of them finish (the first
/// error, a cancel) or is dropped unfinished gives the unfinished ones back on drop: they run
/// on as detached tasks, so an error they end with later goes to the exception handler ("Task
/// exception wasn't retrieved"), as MicroPython's gather leaves them, and they no longer
/// wake the gathering task.
struct Children {
    refs: Vec<TaskRef>,
    started: bool,
}

impl Children {
    fn new(refs: Vec<TaskRef>) -> Self {
        Children { refs, started: false }
    }

    /// The shared engine of every gather form: waits for the sub-tasks to finish.
    ///
    /// `fail_fast` is `return_exceptions=False`: the first sub-task to fail (in time) ends the
    /// gather with its error; the others keep running. A pending cancel of the gathering task
    /// cancels every unfinished sub-task and ends the gather with `Cancelled` at once.
    fn poll(&mut self, fail_fast: bool, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if !self.started {
            self.started = true;
            // Sub-tasks count as awaited, except those that had already failed before the
            // gather (they still go to the exception handler, as in MicroPython).
            for t in self.refs.iter().filter(|t| !t.done()) {
                t.local().set(flag::AWAITED);
            }
        }
        if crate::cancel::poll_cancelled_waiting(cx, crate::raw::WaitingOn::Gather) {
            for t in self.refs.iter().filter(|t| !t.done()) {
                let _ = t.cancel();
            }
            return Poll::Ready(Err(Error::Cancelled));
        }
        let mut all_done = true;
        let mut first_error: Option<(u32, Error)> = None;
        for t in &self.refs {
            if t.done() {
                if fail_fast {
                    if let Some(e) = t.error() {
                        let seq = t.local().key_or_seq.get();
                        if first_error
                            .as_ref()
                            .is_none_or(|(s, _)| crate::scheduler::completed_before(seq, *s))
                        {
                            first_error = Some((seq, e));
                        }
                    }
                }
            } else {
                all_done = false;
                t.set_join_waker(cx.waker());
            }
        }
        match first_error {
            Some((_, e)) => Poll::Ready(Err(e)),
            None if all_done => Poll::Ready(Ok(())),
            None => Poll::Pending,
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        for t in self.refs.iter().filter(|t| !t.done()) {
            let local = t.local();
            local.clear(flag::AWAITED);
            // The gathering task's waker: no longer wanted (dropped on this, the loop's thread).
            drop(local.join_waker.take());
        }
    }
}

/// Runs every awaitable concurrently (each becomes a task) and gives their outputs in order:
/// MicroPython's `gather(*aws)`.
///
/// `.await` fails with the first error (`return_exceptions=False`);
/// [`.return_exceptions()`](Gather::return_exceptions) gives every outcome instead. For
/// awaitables of different output types, use the [`gather!`](crate::gather!) macro. After a
/// first error the other sub-tasks keep running, detached: an error one of them ends with
/// later goes to the loop's exception handler ("Task exception wasn't retrieved"), as in
/// MicroPython.
///
/// **Cancellation:** cancelling the gathering task cancels every unfinished sub-task and
/// returns `Err(Error::Cancelled)` at once (a sub-task that ignores the cancel and fails later
/// is reported as above). A cancel that reaches the gathering task in the same pass as the
/// last sub-task finished wins too, as in MicroPython: the sub-tasks' outputs are dropped
/// (keep their [`Task`] handles and await those by `&mut` to keep them).
///
/// **Dropping** the future (before or while it waits, e.g. in a `select`) cancels nothing:
/// the sub-tasks were created as tasks when `gather` was called and **keep running**, as a
/// task whose `Task` handle is dropped does (MicroPython's rule). Cancel the gathering task
/// instead of dropping the future to stop them, or keep their `TaskRef`s.
///
/// ```
/// use uasyncio::{gather, run, sleep_ms};
/// let out = run(async {
///     let jobs = (1..=3u32).map(|i| async move { sleep_ms(10 - i).await?; Ok(i * 10) });
///     gather(jobs).await
/// });
/// assert_eq!(out.unwrap(), vec![10, 20, 30]);
/// ```
pub fn gather<I, A, T>(aws: I) -> Gather<T>
where
    I: IntoIterator<Item = A>,
    A: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    let tasks: Vec<Task<T>> = aws.into_iter().map(promote_to_task).collect();
    let refs = tasks.iter().map(|t| t.raw().clone()).collect();
    Gather {
        tasks,
        children: Children::new(refs),
    }
}

/// The future of [`gather`] (`return_exceptions=False`).
///
/// **Cancellation:** a cancel of the task awaiting it cancels every unfinished sub-task and
/// gives `Err(Error::Cancelled)` at once, without waiting for them to finish.
/// **Dropping** it cancels nothing: the sub-tasks keep running, detached, and an error one of
/// them ends with later goes to the loop's exception handler. See [`gather`].
#[must_use = "futures do nothing unless awaited"]
pub struct Gather<T> {
    tasks: Vec<Task<T>>,
    children: Children,
}

impl<T> Gather<T> {
    /// `return_exceptions=True`: wait for every sub-task and give each outcome, errors
    /// (`Cancelled` included) in place.
    ///
    /// **Cancellation:** a cancel of the gathering task is not an outcome in place: it cancels
    /// every unfinished sub-task and gives `Err(Error::Cancelled)` for the whole gather at once,
    /// as [`gather`] does. **Dropping** the future cancels nothing: the sub-tasks keep running,
    /// detached, as for [`gather`].
    ///
    /// ```
    /// use uasyncio::{gather, run, Error};
    /// let out = run(async {
    ///     let a = Box::pin(async { Ok(1) });
    ///     let b = Box::pin(async { Err(Error::value("bad")) });
    ///     gather(vec![a as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>, b]).return_exceptions().await
    /// }).unwrap();
    /// assert_eq!(out, vec![Ok(1), Err(Error::value("bad"))]);
    /// ```
    pub fn return_exceptions(self) -> GatherAll<T> {
        GatherAll { inner: self }
    }
}

impl<T> Future for Gather<T> {
    type Output = Result<Vec<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.children.poll(true, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => Poll::Ready(this.tasks.iter_mut().map(Task::take_result).collect()),
        }
    }
}

/// The future of [`Gather::return_exceptions`].
///
/// **Cancellation:** a cancel of the task awaiting it cancels every unfinished sub-task and
/// gives `Err(Error::Cancelled)` for the whole gather at once (not an outcome in place).
/// **Dropping** it cancels nothing: the sub-tasks keep running, detached. See
/// [`Gather::return_exceptions`].
#[must_use = "futures do nothing unless awaited"]
pub struct GatherAll<T> {
    inner: Gather<T>,
}

impl<T> Future for GatherAll<T> {
    type Output = Result<Vec<Result<T>>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut self.get_mut().inner;
        match this.children.poll(false, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => Poll::Ready(Ok(this.tasks.iter_mut().map(Task::take_result).collect())),
        }
    }
}

/// A tuple of tasks with possibly different output types, for [`gather!`](crate::gather!).
pub trait TaskTuple {
    /// `(A, B, …)`: every output, when all succeeded.
    type Values;
    /// `(Result<A>, Result<B>, …)`: every outcome.
    type Outcomes;
    /// References to the tasks, in order.
    fn refs(&self) -> Vec<TaskRef>;
    /// Takes every output (all tasks finished without error).
    fn take_values(&mut self) -> Result<Self::Values>;
    /// Takes every outcome (all tasks finished).
    fn take_outcomes(&mut self) -> Self::Outcomes;
}

macro_rules! task_tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t),+> TaskTuple for ($(Task<$t>,)+) {
            type Values = ($($t,)+);
            type Outcomes = ($(Result<$t>,)+);
            fn refs(&self) -> Vec<TaskRef> {
                alloc::vec![$(self.$i.raw().clone()),+]
            }
            fn take_values(&mut self) -> Result<Self::Values> {
                Ok(($(self.$i.take_result()?,)+))
            }
            fn take_outcomes(&mut self) -> Self::Outcomes {
                ($(self.$i.take_result(),)+)
            }
        }
    };
}

task_tuple!(A 0);
task_tuple!(A 0, B 1);
task_tuple!(A 0, B 1, C 2);
task_tuple!(A 0, B 1, C 2, D 3);
task_tuple!(A 0, B 1, C 2, D 3, E 4);
task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
task_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// The future of [`gather!`](crate::gather!): a gather over a tuple of tasks.
///
/// **Cancellation:** as [`Gather`]: a cancel of the task awaiting it cancels every unfinished
/// sub-task and gives `Err(Error::Cancelled)` at once, in both forms (`return_exceptions:`
/// too). **Dropping** it cancels nothing: the sub-tasks keep running, detached.
#[must_use = "futures do nothing unless awaited"]
pub struct GatherTuple<Tup, const RETURN_EXCEPTIONS: bool> {
    tasks: Tup,
    children: Children,
}

impl<Tup: TaskTuple, const R: bool> GatherTuple<Tup, R> {
    /// Gathers the tasks of `tasks` (use the [`gather!`](crate::gather!) macro).
    pub fn new(tasks: Tup) -> Self {
        let children = Children::new(tasks.refs());
        GatherTuple { tasks, children }
    }
}

impl<Tup: TaskTuple + Unpin> Future for GatherTuple<Tup, false> {
    type Output = Result<Tup::Values>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.children.poll(true, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => Poll::Ready(this.tasks.take_values()),
        }
    }
}

impl<Tup: TaskTuple + Unpin> Future for GatherTuple<Tup, true> {
    type Output = Result<Tup::Outcomes>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.children.poll(false, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => Poll::Ready(Ok(this.tasks.take_outcomes())),
        }
    }
}

/// `gather(a, b, c)` for awaitables of different output types.
///
/// `gather!(a, b).await` gives `Result<(A, B)>` and fails with the first error;
/// `gather!(return_exceptions: a, b).await` gives `Result<(Result<A>, Result<B>)>`.
/// Up to 8 awaitables.
///
/// **Cancellation** and **dropping:** as [`gather`](fn@crate::gather) (see [`GatherTuple`]).
///
/// ```
/// use uasyncio::{gather, run, sleep_ms, Error};
/// run(async {
///     let (n, s) = gather!(async { sleep_ms(2).await?; Ok(1) }, async { Ok("two") }).await?;
///     assert_eq!((n, s), (1, "two"));
///     let (a, b) = gather!(return_exceptions: async { Ok(1) }, async { Err::<(), _>(Error::Timeout) }).await?;
///     assert_eq!((a, b), (Ok(1), Err(Error::Timeout)));
///     Ok(())
/// }).unwrap();
/// ```
#[macro_export]
macro_rules! gather {
    (return_exceptions: $($aw:expr),+ $(,)?) => {
        $crate::funcs::GatherTuple::<_, true>::new(($($crate::funcs::promote_to_task($aw),)+))
    };
    ($($aw:expr),+ $(,)?) => {
        $crate::funcs::GatherTuple::<_, false>::new(($($crate::funcs::promote_to_task($aw),)+))
    };
}
