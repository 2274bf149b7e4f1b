//! Time: `sleep`, `sleep_ms`, `ticks_ms`.
//!
//! A [`Sleep`] arms a timer on the loop's timer heap (`scheduler::timers`) and is woken when
//! the loop fires it; nothing ticks periodically. Deadlines are in microseconds of the loop's
//! clock (the port's monotonic clock, or virtual time in tests); the API speaks milliseconds
//! and seconds, as MicroPython does.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::error::{Error, Result};
use crate::scheduler::{self, Timer};

/// Converts seconds to milliseconds as MicroPython does: `int(t * 1000)`, negative → 0.
pub(crate) fn seconds_to_ms(seconds: f32) -> u32 {
    let ms = seconds * 1000.0;
    if ms.is_nan() || ms <= 0.0 {
        0
    } else if ms >= u32::MAX as f32 {
        u32::MAX
    } else {
        ms as u32
    }
}

/// The future of [`sleep`] and [`sleep_ms`].
///
/// **Cancellation:** a pending cancel makes it return `Err(Error::Cancelled)` at once; the
/// timer leaves the heap. **Dropping** it also takes its timer out of the heap, so a dropped
/// sleep never wakes anything.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    ms: u32,
    deadline: Option<u64>,
    yielded: bool,
    timer: Timer,
}

impl Future for Sleep {
    type Output = Result<()>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        // The out-of-line halves answer with a one-byte `Step`, turned into the
        // `Poll<Result<()>>` here, inlined into the awaiting code: a `Result` with an `Error`
        // inside comes back through memory, and the awaiting code then copied it out to look
        // at it. Cortex-M3: a task switch 219 -> 215 instructions, the FreeRTOS benchmark
        // firmware's text +272 B over its sleep awaits; host (callgrind, the yield workload):
        // 1,230.5M -> 1,185.5M instructions.
        let step = if this.ms == 0 {
            // A yield by a task of ours that its loop is polling, with no cancel pending,
            // inlined: the second poll is done, the first marks the task to be queued again,
            // both through the waker's task without the look-up of the loop (`own_yield`).
            // Cortex-M3: a task switch 190 -> 178 instructions for the second poll, 158 ->
            // 137 for the first.
            match scheduler::waker::own_yield(cx, this.yielded) {
                Some(true) => return Poll::Ready(Ok(())),
                Some(false) => {
                    this.yielded = true;
                    return Poll::Pending;
                }
                None => this.poll_yield(cx),
            }
        } else {
            this.poll_timer(cx)
        };
        match step {
            Step::Pending => Poll::Pending,
            Step::Done => Poll::Ready(Ok(())),
            Step::Cancelled => Poll::Ready(Err(Error::Cancelled)),
            Step::NoLoop => Poll::Ready(Err(Error::no_running_loop())),
        }
    }
}

impl Sleep {
    /// `sleep(0)`: pending once, woken at once, so it runs again behind every task that is
    /// ready now. A task switch's path: out of line and apart from the timer's, so it saves
    /// only the few registers it uses (Cortex-M3: a task switch 244 → 234 instructions).
    #[inline(never)]
    fn poll_yield(&mut self, cx: &mut Context<'_>) -> Step {
        // `poll` answered a yield of the task being polled without a cancel pending already;
        // here is a cancel to take, a waker not of our tasks, or the waker of a task that is
        // not being polled.
        let yielded = self.yielded;
        // One look-up of the loop for the whole poll: the cancellation check and the yield.
        // No timer is ever armed for `sleep(0)`, so a cancel has none to disarm.
        let step = scheduler::with_core(|core| {
            let current = core.current_task();
            if let Some(task) = current {
                // SAFETY: the loop holds a reference to the task it is polling.
                if crate::cancel::take_cancel(unsafe { task.as_ref() }, crate::raw::WaitingOn::Sleep) {
                    return Step::Cancelled;
                }
            }
            self.yield_once(yielded, cx, Some((core, current)))
        });
        match step {
            Some(step) => step,
            // No loop on this thread: a yield still works (the waker knows its executor).
            None => self.yield_once(yielded, cx, None),
        }
    }

    /// `sleep_ms(ms)` with `ms > 0`: a timer on the loop's heap.
    #[inline(never)]
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Step {
        // One look-up of the loop for the whole poll: the cancellation check and the timer
        // both go through it.
        let step = scheduler::with_core(|core| {
            // A loop that exists but does not run (after `run` returned, polled by another
            // executor) would never fire the timer: say so instead of pending for ever.
            if !core.running.get() {
                self.timer.disarm(core);
                return Step::NoLoop;
            }
            if let Some(task) = core.current_task() {
                // SAFETY: the loop holds a reference to the task it is polling.
                if crate::cancel::take_cancel(unsafe { task.as_ref() }, crate::raw::WaitingOn::Sleep) {
                    self.timer.disarm(core);
                    return Step::Cancelled;
                }
            }
            let deadline = *self
                .deadline
                .get_or_insert_with(|| core.now_us() + u64::from(self.ms) * 1000);
            if self.timer.poll_at(core, deadline, cx.waker()) {
                Step::Done
            } else {
                Step::Pending
            }
        });
        step.unwrap_or(Step::NoLoop)
    }

    /// The yield itself: pending the first time (the task woken at once), done after.
    #[inline(always)]
    fn yield_once(
        &mut self,
        yielded: bool,
        cx: &mut Context<'_>,
        on_loop: Option<(&scheduler::LoopCore, Option<core::ptr::NonNull<crate::raw::Header>>)>,
    ) -> Step {
        if yielded {
            return Step::Done;
        }
        self.yielded = true;
        match on_loop {
            // The task being polled wakes itself: straight onto the loop's queue, without the
            // waker's dispatch and a second look-up of the loop.
            Some((core, Some(task))) if scheduler::waker::waker_task(cx.waker()) == Some(task) => {
                core.wake_current(task)
            }
            _ => cx.waker().wake_by_ref(),
        }
        Step::Pending
    }
}

/// What one poll of a [`Sleep`] came to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Pending,
    Done,
    Cancelled,
    /// A timer asked for on a thread with no running loop.
    NoLoop,
}

/// Sleeps `ms` milliseconds (MicroPython's extension). `sleep_ms(0)` yields to every task
/// that is ready now.
///
/// **Cancellation:** returns `Err(Error::Cancelled)` at once when the task is cancelled.
/// **Dropping** the future takes its timer out of the loop's heap.
///
/// Errors with `RuntimeError("no running event loop")` (`ms > 0`) when polled while no loop
/// runs on the thread: nothing would fire the timer.
///
/// ```
/// uasyncio::run(async {
///     let t0 = uasyncio::ticks_ms();
///     uasyncio::sleep_ms(20).await?;
///     assert!(uasyncio::ticks_ms() - t0 >= 20);
///     Ok(())
/// }).unwrap();
/// ```
pub fn sleep_ms(ms: u32) -> Sleep {
    Sleep {
        ms,
        deadline: None,
        yielded: false,
        timer: Timer::default(),
    }
}

/// Sleeps `seconds` (a float): `sleep_ms(int(seconds * 1000))`; a negative delay is 0.
///
/// `seconds` is an `f32`, as MicroPython's float is on most boards, so a whole number is
/// written `sleep(1.0)`, and the product is truncated as MicroPython does with single
/// precision: `sleep(0.251)` sleeps 250 ms (CPython and MicroPython's double-precision ports:
/// 251). Use [`sleep_ms`] for exact milliseconds.
///
/// **Cancellation:** as [`sleep_ms`]. **Dropping** the future takes its timer out of the
/// loop's heap, as for [`sleep_ms`].
///
/// ```
/// use uasyncio::{get_event_loop, run, sleep, ticks_ms};
/// get_event_loop().use_virtual_time(true); // the clock starts at 0 and jumps to deadlines
/// run(async { sleep(0.251).await }).unwrap();
/// assert_eq!(ticks_ms(), 250);
/// get_event_loop().use_virtual_time(false);
/// ```
pub fn sleep(seconds: f32) -> Sleep {
    sleep_ms(seconds_to_ms(seconds))
}

/// Milliseconds on the calling thread's loop clock (the kernel's monotonic clock, or the
/// virtual clock in tests): MicroPython's `time.ticks_ms()`, without the wrap-around.
///
/// ```
/// use uasyncio::{get_event_loop, run, sleep_ms, ticks_ms};
/// get_event_loop().use_virtual_time(true); // the clock starts at 0 and jumps to deadlines
/// run(async {
///     let t0 = ticks_ms();
///     sleep_ms(1500).await?;
///     assert_eq!(ticks_ms() - t0, 1500);
///     Ok(())
/// }).unwrap();
/// get_event_loop().use_virtual_time(false);
/// ```
pub fn ticks_ms() -> u64 {
    scheduler::with_core(|core| core.now_us()).unwrap_or_else(rtos_shims::now_us) / 1000
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use core::cell::Cell;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use std::rc::Rc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use crate::{create_task, run, sleep_ms};

    /// A yield's first poll marks the task to be queued again without the loop (the task's
    /// `requeue`) only when that task is the one being polled: polled with the waker of a
    /// task that waits, it wakes that task, as the waker's `wake_by_ref` would.
    #[test]
    fn a_yield_polled_with_a_waiting_tasks_waker_wakes_that_task() {
        let r = run(async {
            let polls = Rc::new(Cell::new(0u32));
            let slot: Rc<Cell<Option<Waker>>> = Rc::new(Cell::new(None));
            let (p, s) = (polls.clone(), slot.clone());
            let waiter = create_task(core::future::poll_fn(move |cx| {
                p.set(p.get() + 1);
                s.set(Some(cx.waker().clone()));
                Poll::<crate::Result<()>>::Pending
            }));
            sleep_ms(0).await?;
            assert_eq!(polls.get(), 1, "the waiter ran once");
            let Some(w) = slot.take() else {
                panic!("the waiter left no waker");
            };
            let mut y = pin!(sleep_ms(0));
            assert!(y.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
            sleep_ms(0).await?;
            assert_eq!(polls.get(), 2, "the yield did not wake the waiting task");
            assert!(waiter.cancel()?);
            Ok(())
        });
        assert_eq!(r, Ok(()));
    }

    /// Another thread polling yields with a task's waker while the loop polls that task
    /// (the store to `requeue` from off the loop thread): each yield still ends on its
    /// second poll, the task keeps running and the loop ends.
    #[test]
    fn yields_polled_on_another_thread_with_a_running_tasks_waker() {
        // Fewer under Miri, which runs this test with the runtime's others.
        const POLLS: usize = if cfg!(miri) { 200 } else { 10_000 };
        let r = run(async {
            let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
            let done = Arc::new(AtomicBool::new(false));
            let (s, d) = (slot.clone(), done.clone());
            let spinner = create_task(async move {
                let mut turns = 0u32;
                while !d.load(Ordering::Relaxed) {
                    core::future::poll_fn(|cx| {
                        if let Ok(mut g) = s.lock() {
                            *g = Some(cx.waker().clone());
                        }
                        Poll::Ready(())
                    })
                    .await;
                    sleep_ms(0).await?;
                    turns += 1;
                }
                Ok(turns)
            });
            sleep_ms(0).await?;
            let w = slot.lock().ok().and_then(|mut g| g.take());
            let Some(w) = w else {
                panic!("the spinner left no waker");
            };
            let d = done.clone();
            let t = std::thread::spawn(move || {
                let mut pending = 0;
                for _ in 0..POLLS {
                    let mut y = pin!(sleep_ms(0));
                    let mut cx = Context::from_waker(&w);
                    if y.as_mut().poll(&mut cx).is_pending() {
                        pending += 1;
                    }
                    assert!(y.as_mut().poll(&mut cx).is_ready(), "a yield's second poll must end it");
                }
                d.store(true, Ordering::Relaxed);
                pending
            });
            while !done.load(Ordering::Relaxed) {
                sleep_ms(1).await?;
            }
            let pending = t
                .join()
                .map_err(|_| crate::Error::runtime("the polling thread panicked"))?;
            assert_eq!(pending, POLLS, "every first poll of a yield is pending");
            assert!(spinner.await? > 0);
            Ok(())
        });
        assert_eq!(r, Ok(()));
    }
}
