//! `wait_for` / `wait_for_ms`: await with a timeout that cancels the awaitable.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::promote_to_task;
use crate::error::{Error, Result};
use crate::scheduler;
use crate::scheduler::Timer;
use crate::task::Task;
use crate::time::seconds_to_ms;

enum Phase {
    Racing,
    /// The timeout fired and the inner task was cancelled; waiting for it to finish.
    Cancelling,
}

/// The future of [`wait_for`] and [`wait_for_ms`].
///
/// **Cancellation:** before the timeout, a cancel of the task awaiting it cancels the inner
/// task and gives `Err(Error::Cancelled)` at once; after the timeout it goes on to the inner
/// task, and the result is still `Err(Error::Timeout)` once that has finished. With no
/// timeout (`None`) it is awaiting a task: the cancel goes on to the inner task, and the
/// result is the inner task's outcome. **Dropping** it cancels nothing: the inner task keeps
/// running, detached, without a deadline; the timer leaves the heap. See [`wait_for`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitFor<T> {
    task: Task<T>,
    timeout_ms: Option<u32>,
    deadline: Option<u64>,
    timer: Timer,
    phase: Phase,
}

/// Waits for `aw` (which becomes a task) for at most `timeout` seconds; `None` waits without
/// a limit.
///
/// - `aw` finishes first: its output, or its error (`Cancelled` too, if a third party
///   cancelled it).
/// - The timeout passes: the inner task is cancelled, `wait_for` **waits until it has really
///   finished** (it may clean up), then returns `Err(Error::Timeout)` — even if the inner task
///   ignored the cancel and produced a value.
///
/// **Cancellation:** if the task calling `wait_for` is cancelled before the timeout, the inner
/// task is cancelled and `Err(Error::Cancelled)` is returned at once, without waiting for it.
/// After the timeout `wait_for` is already waiting for the cancelled inner task to finish, as
/// MicroPython's does (`await runner_task`): a cancel then goes on to the inner task (the
/// rule for a task awaiting a task), which has one already, and `wait_for` still returns
/// `Err(Error::Timeout)` once it has finished.
///
/// **A cancel that races the inner task's end:** if the inner task finishes in the same pass
/// of the loop as the cancel of the task calling `wait_for` reaches it (the item the inner
/// future waited for arrived, then the cancel, before the caller ran again), the cancel wins,
/// as in MicroPython: `Err(Error::Cancelled)`, and the inner task's output is dropped with
/// it. An inner future that must not lose what it took (a queue item, bytes read from a
/// stream) should put it somewhere the caller keeps (an `Rc<Cell<Option<T>>>` it fills)
/// rather than only in its output.
///
/// **Dropping** the future cancels nothing: `aw` runs as a task of its own (made when
/// `wait_for` was called) and **keeps running** without a deadline, as a task whose `Task`
/// handle is dropped does; the timer is taken out of the heap. Cancel the calling task
/// instead to stop it.
///
/// ```
/// use uasyncio::{run, sleep, wait_for, Error};
/// let r = run(async { wait_for(async { sleep(10.0).await }, 0.01).await });
/// assert_eq!(r, Err(Error::Timeout));
/// ```
///
/// `aw` becomes a task, so it must be `'static`: it cannot borrow from the caller. Move what
/// it uses into it, e.g. a clone of an `Rc`:
///
/// ```
/// use std::rc::Rc;
/// use uasyncio::{run, wait_for, Error, Queue};
/// run(async {
///     let q = Rc::new(Queue::<u32>::new(1));
///     let q2 = q.clone();
///     // Nothing was put yet: the get times out.
///     assert_eq!(wait_for(async move { q2.get().await }, 0.01).await, Err(Error::Timeout));
///     q.put_nowait(7)?;
///     let q2 = q.clone();
///     assert_eq!(wait_for(async move { q2.get().await }, 0.01).await, Ok(7));
///     Ok(())
/// })
/// .unwrap();
/// ```
#[inline(always)]
pub fn wait_for<A, T>(aw: A, timeout: impl Into<Option<f32>>) -> WaitFor<T>
where
    A: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    wait_for_ms(aw, timeout.into().map(seconds_to_ms))
}

/// As [`wait_for`], with the timeout in milliseconds (MicroPython's extension).
///
/// Cancellation and dropping: as [`wait_for`] (the same [`WaitFor`] future): a cancel before
/// the timeout cancels the inner task and gives `Err(Error::Cancelled)` at once; dropping the
/// future cancels nothing, the inner task runs on without a deadline.
///
/// ```
/// use uasyncio::{run, sleep_ms, wait_for_ms};
/// let r = run(async { wait_for_ms(async { sleep_ms(1).await?; Ok(5) }, 1000).await });
/// assert_eq!(r, Ok(5));
/// ```
#[inline(always)]
pub fn wait_for_ms<A, T>(aw: A, timeout_ms: impl Into<Option<u32>>) -> WaitFor<T>
where
    A: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    WaitFor {
        task: promote_to_task(aw),
        timeout_ms: timeout_ms.into(),
        deadline: None,
        timer: Timer::default(),
        phase: Phase::Racing,
    }
}

impl<T> Future for WaitFor<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let Some(timeout_ms) = this.timeout_ms else {
            return Pin::new(&mut this.task).poll(cx);
        };
        if let Phase::Racing = this.phase {
            if crate::cancel::poll_cancelled_waiting(cx, crate::raw::WaitingOn::WaitFor) {
                scheduler::with_core(|core| this.timer.disarm(core));
                let _ = this.task.cancel();
                return Poll::Ready(Err(Error::Cancelled));
            }
            if let Poll::Ready(out) = this.task.poll_join(cx, false) {
                scheduler::with_core(|core| this.timer.disarm(core));
                return Poll::Ready(out);
            }
            let fired = scheduler::with_core(|core| {
                let deadline = *this
                    .deadline
                    .get_or_insert_with(|| core.now_us() + u64::from(timeout_ms) * 1000);
                this.timer.poll_at(core, deadline, cx.waker())
            });
            match fired {
                Some(false) => return Poll::Pending,
                Some(true) => {}
                None => return Poll::Ready(Err(Error::no_running_loop())),
            }
            let _ = this.task.cancel();
            this.phase = Phase::Cancelling;
        }
        // Waiting for the cancelled inner task; a cancel of ours is forwarded to it (`link`).
        match this.task.poll_join(cx, true) {
            Poll::Ready(_) => Poll::Ready(Err(Error::Timeout)),
            Poll::Pending => Poll::Pending,
        }
    }
}
