//! The public face of the loop: `run`, `get_event_loop`, `new_event_loop` and `Loop`.
//!
//! MicroPython has one loop; we have one per thread that uses the API (`std`), or one per
//! firmware (no `std`). [`Loop`] is a handle to the calling thread's loop: it cannot be
//! created directly, only through [`get_event_loop`] and [`new_event_loop`], as in the seed.

//!
//! Layer 5 of the core (see `raw`), the top: it starts the loop of `scheduler` and gives it
//! the function that reports unretrieved task errors to the exception handler.

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;

use crate::error::{Error, Result};
use crate::funcs::promote_to_task;
use crate::raw::{flag, TaskRef};
use crate::scheduler::{self as current};
pub use crate::scheduler::{ExceptionContext, ExceptionHandler, Loop};
#[cfg(feature = "stats")]
pub use crate::scheduler::{LoopStats, Trace};
use crate::task::Task;

/// The calling thread's event loop (created on first use).
///
/// ```
/// let lp = uasyncio::get_event_loop();
/// assert_eq!(lp.run_until_complete(async { Ok(6 * 7) }), Ok(42));
/// ```
pub fn get_event_loop() -> Loop {
    Loop { _not_send: PhantomData }
}

/// What the scheduler calls for a task that ended with an error nobody retrieved.
fn report_unretrieved(task: &TaskRef) {
    let ctx = ExceptionContext {
        message: "Task exception wasn't retrieved".into(),
        exception: task.error(),
        future: Some(task.clone()),
    };
    let lp = get_event_loop();
    match current::try_with(|core| core.handler.get()).flatten() {
        Some(handler) => handler(&lp, &ctx),
        None => lp.default_exception_handler(&ctx),
    }
}

/// Resets the calling thread's loop and returns it: every pending task is dropped (its
/// future is dropped here, and awaiting its handle gives `RuntimeError`), the ready queue and
/// the timers are emptied. The exception handler, the timer slack and the counters of
/// `Loop::stats` (feature `stats`) are kept.
///
/// Errors with `RuntimeError` if the loop is running (call it between runs).
///
/// ```
/// use uasyncio::{create_task, new_event_loop, sleep};
/// let forgotten = create_task(async { sleep(1.0).await });
/// new_event_loop().unwrap();
/// assert!(forgotten.done());
/// ```
pub fn new_event_loop() -> Result<Loop> {
    current::with_or_init(|core| {
        if core.running.get() {
            return Err(Error::runtime("can't reset a running event loop"));
        }
        core.reset(&Error::runtime("the task was dropped by new_event_loop()"));
        Ok(())
    })??;
    Ok(get_event_loop())
}

/// Runs `coro` as the main task on the calling thread until it completes; returns its output.
///
/// Tasks still pending when it returns stay in the loop and run in the next `run()`, as in
/// MicroPython. Errors with `RuntimeError` when a loop already runs on this thread.
///
/// ```
/// let answer = uasyncio::run(async { Ok(42) }).unwrap();
/// assert_eq!(answer, 42);
/// ```
#[inline(always)]
pub fn run<F, T>(coro: F) -> Result<T>
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    get_event_loop().run_until_complete(coro)
}

/// What the default exception handler prints for a context.
struct Report<'a>(&'a ExceptionContext);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        f.write_str(&c.message)?;
        if let Some(task) = &c.future {
            write!(f, "\nfuture: {task}")?;
        }
        if let Some(e) = &c.exception {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

impl Loop {
    /// Creates a task on this loop; see [`create_task`](crate::create_task).
    ///
    /// ```
    /// use uasyncio::{get_event_loop, sleep_ms};
    /// let lp = get_event_loop();
    /// let t = lp.create_task(async { sleep_ms(1).await?; Ok("done") }); // runs once the loop does
    /// assert_eq!(lp.run_until_complete(t), Ok("done"));
    /// ```
    #[inline(always)]
    pub fn create_task<F, T>(&self, coro: F) -> Task<T>
    where
        F: Future<Output = Result<T>> + 'static,
        T: 'static,
    {
        crate::create_task(coro)
    }

    /// Runs until [`stop`](Self::stop) is called, or until no task is left.
    ///
    /// ```
    /// let lp = uasyncio::get_event_loop();
    /// lp.create_task(async {
    ///     uasyncio::sleep_ms(1).await?;
    ///     uasyncio::get_event_loop().stop();
    ///     Ok(())
    /// });
    /// lp.run_forever().unwrap();
    /// ```
    pub fn run_forever(&self) -> Result<()> {
        current::with_or_init(|core| core.run_until(None, &report_unretrieved))?
    }

    /// Runs until `aw` completes and returns its output. A future that is not a [`Task`]
    /// becomes one. Other tasks stay queued when it returns.
    ///
    /// Errors: `aw`'s own error; `RuntimeError` if the loop is already running.
    /// [`stop`](Self::stop) does not end it (MicroPython's `stop()` ends only `run_forever()`).
    ///
    /// ```
    /// use uasyncio::{get_event_loop, sleep_ms};
    /// let lp = get_event_loop();
    /// let later = lp.create_task(async { sleep_ms(50).await?; Ok("later") });
    /// assert_eq!(lp.run_until_complete(async { Ok("main") }), Ok("main"));
    /// assert!(!later.done()); // started, still asleep: it stays in the loop...
    /// assert_eq!(lp.run_until_complete(later), Ok("later")); // ...and runs on in the next run
    /// ```
    #[inline(always)]
    pub fn run_until_complete<F, T>(&self, aw: F) -> Result<T>
    where
        F: Future<Output = Result<T>> + 'static,
        T: 'static,
    {
        self.run_main(promote_to_task(aw))
    }

    /// [`run_until_complete`](Self::run_until_complete) once its awaitable is a task.
    fn run_main<T: 'static>(&self, mut task: Task<T>) -> Result<T> {
        task.raw().local().set(flag::AWAITED);
        let ptr = task.raw().ptr();
        current::with_or_init(|core| core.run_until(Some(ptr), &report_unretrieved))??;
        if task.done() {
            task.take_result()
        } else {
            // Not reached: `run_until` with a main task returns once that task finished
            // (`stop()` ends only `run_forever`). An error, not a panic, should that change.
            Err(Error::runtime("the event loop stopped before the task completed"))
        }
    }

    /// Stops [`run_forever`](Self::run_forever) once the tasks that are ready now have run.
    /// Tasks still pending continue on the next `run_forever()` / `run()`.
    ///
    /// No effect unless the loop runs in `run_forever()`, as in MicroPython, where `stop()`
    /// queues the stop task that only `run_forever()` makes: inside [`run`] or
    /// `run_until_complete()` the loop goes on until the main task completes (CPython would end
    /// it with `RuntimeError` instead).
    ///
    /// ```
    /// use uasyncio::{get_event_loop, run, sleep_ms};
    /// let r = run(async {
    ///     get_event_loop().stop(); // not in run_forever: nothing happens
    ///     sleep_ms(1).await?;
    ///     Ok("main completed")
    /// });
    /// assert_eq!(r.unwrap(), "main completed");
    /// ```
    pub fn stop(&self) {
        current::try_with(|core| {
            if core.running.get() && core.forever.get() && core.stop_after.get().is_none() {
                core.stop_after.set(Some(core.ready.len()));
            }
        });
    }

    /// Closes the loop. MicroPython has nothing to free here and neither do we: pending tasks
    /// stay (use [`new_event_loop`] to drop them). Errors with `RuntimeError` while running.
    pub fn close(&self) -> Result<()> {
        match current::try_with(|core| core.running.get()) {
            Some(true) => Err(Error::runtime("can't close a running event loop")),
            _ => Ok(()),
        }
    }

    /// Sets the handler called when a task ends with an error that nobody awaited;
    /// `None` restores the default.
    ///
    /// ```
    /// use uasyncio::{get_event_loop, ExceptionContext, Loop};
    /// fn handler(_lp: &Loop, ctx: &ExceptionContext) {
    ///     println!("{}: {:?}", ctx.message, ctx.exception);
    /// }
    /// let lp = get_event_loop();
    /// lp.set_exception_handler(Some(handler));
    /// assert!(lp.get_exception_handler().is_some());
    /// lp.set_exception_handler(None);
    /// ```
    pub fn set_exception_handler(&self, handler: Option<ExceptionHandler>) {
        let _ = current::with_or_init(|core| core.handler.set(handler));
    }

    /// The custom handler, or `None` when the default one is in use.
    pub fn get_exception_handler(&self) -> Option<ExceptionHandler> {
        current::try_with(|core| core.handler.get()).flatten()
    }

    /// The default handler: the message, the task and the error, as MicroPython's prints
    /// them, through `log` at error level (target `uasyncio`). With the `std` feature and no
    /// logger taking error records (none installed, or `log::set_max_level` left at `Off`),
    /// to standard error instead, as MicroPython does: an unretrieved error is never lost
    /// silently on the host.
    ///
    /// ```
    /// use uasyncio::{create_task, get_event_loop, run, sleep_ms, Error};
    /// // Prints "Task exception wasn't retrieved", the task and "ValueError: boom" to stderr.
    /// run(async {
    ///     create_task(async { Err::<(), _>(Error::value("boom")) });
    ///     sleep_ms(1).await
    /// }).unwrap();
    /// # let _ = get_event_loop();
    /// ```
    pub fn default_exception_handler(&self, context: &ExceptionContext) {
        let report = Report(context);
        #[cfg(feature = "std")]
        if !log::log_enabled!(target: "uasyncio", log::Level::Error) {
            std::eprintln!("{report}");
            return;
        }
        crate::fmt::error!("{}", report);
    }

    /// Calls the current handler (custom or default) with `context`.
    pub fn call_exception_handler(&self, context: &ExceptionContext) {
        match current::try_with(|core| core.handler.get()).flatten() {
            Some(handler) => handler(self, context),
            None => self.default_exception_handler(context),
        }
    }

    /// Runs the loop on virtual time (for deterministic tests): the clock starts at 0 and,
    /// when no task is ready, jumps straight to the next deadline instead of waiting for it.
    /// Wakes from other threads still work. `false` returns to the kernel's clock.
    ///
    /// ```
    /// use uasyncio::{get_event_loop, run, sleep, ticks_ms};
    /// get_event_loop().use_virtual_time(true);
    /// run(async { sleep(3600.0).await }).unwrap(); // returns at once
    /// assert_eq!(ticks_ms(), 3_600_000);
    /// get_event_loop().use_virtual_time(false);
    /// ```
    pub fn use_virtual_time(&self, enabled: bool) {
        let _ = current::with_or_init(|core| core.set_virtual_time(enabled.then_some(0)));
    }

    /// Lets the loop fire a timer up to `us` microseconds after its deadline so that timers
    /// due close together fire in one wake-up: with nothing else to do, the loop sleeps until
    /// the nearest deadline plus `us`, then fires every timer due by then. Linux's timer slack,
    /// for this loop's timers (`sleep`, `sleep_ms`, `wait_for` timeouts).
    ///
    /// A timer never fires before its deadline on the loop's clock (whose resolution is the
    /// port's: a microsecond on the host, a kernel tick or better on an RTOS), and a loop that is awake
    /// anyway (tasks ready) fires timers at their deadlines: only the sleeps are stretched. The
    /// default, 0, wakes at each deadline as precisely as the port allows (on an RTOS, the
    /// kernel tick: timers due in the same tick already fire in one wake-up). A
    /// battery-powered device accepts up to `us` of extra lateness per timer, on top of the
    /// usual scheduling delay, for fewer wake-ups; `stats().sleeps` (feature `stats`) counts
    /// the loop's wake-ups (virtual time never sleeps, so it counts none there). The setting
    /// stays across `run()` and [`new_event_loop`].
    ///
    /// ```
    /// use uasyncio::{create_task, get_event_loop, run, sleep_ms, ticks_ms};
    /// let lp = get_event_loop();
    /// lp.use_virtual_time(true);
    /// lp.set_timer_slack_us(5_000);
    /// let woke = run(async {
    ///     let a = create_task(async { sleep_ms(10).await?; Ok(ticks_ms()) });
    ///     let b = create_task(async { sleep_ms(13).await?; Ok(ticks_ms()) });
    ///     Ok((a.await?, b.await?))
    /// }).unwrap();
    /// assert_eq!(woke, (15, 15)); // fired together at 10 ms + 5 ms of slack
    /// assert_eq!(lp.timer_slack_us(), 5_000);
    /// lp.set_timer_slack_us(0);
    /// lp.use_virtual_time(false);
    /// ```
    pub fn set_timer_slack_us(&self, us: u32) {
        let _ = current::with_or_init(|core| core.timer_slack_us.set(us));
    }

    /// The timer slack [`set_timer_slack_us`](Self::set_timer_slack_us) set, in microseconds.
    pub fn timer_slack_us(&self) -> u32 {
        current::try_with(|core| core.timer_slack_us.get()).unwrap_or(0)
    }

    /// The number of tasks on this loop that have not finished yet (the main task of a
    /// running `run()` included). Memory is another count: a finished task's cell lives on
    /// while a handle holds it (`diagnostics::allocated_task_cells`, feature `diagnostics`).
    ///
    /// ```
    /// let lp = uasyncio::get_event_loop();
    /// let t = lp.create_task(async { Ok(()) });
    /// assert_eq!(lp.live_tasks(), 1);
    /// lp.run_until_complete(t).unwrap();
    /// assert_eq!(lp.live_tasks(), 0);
    /// ```
    pub fn live_tasks(&self) -> usize {
        current::try_with(|core| core.registry.len()).unwrap_or(0)
    }
}

/// The loop's counters and traces: feature `stats` (on with the default features).
#[cfg(feature = "stats")]
impl Loop {
    /// The loop's counters: polls, tasks created and finished, wake-ups by source, time
    /// asleep, and (while [`measure_polls`](Self::measure_polls) is on) the longest poll and
    /// the task that made it — the task that blocks the loop. See [`LoopStats`].
    ///
    /// ```
    /// use uasyncio::{get_event_loop, run, sleep_ms};
    /// let lp = get_event_loop();
    /// let before = lp.stats();
    /// run(async {
    ///     sleep_ms(0).await?; // the task wakes itself: a task wake
    ///     sleep_ms(1).await?; // a timer wakes it
    ///     Ok(())
    /// }).unwrap();
    /// let s = lp.stats();
    /// assert_eq!((s.task_wakes - before.task_wakes, s.timer_wakes - before.timer_wakes), (1, 1));
    /// ```
    pub fn stats(&self) -> LoopStats {
        current::try_with(|core| core.stats.snapshot(core.finished_count())).unwrap_or_default()
    }

    /// Times every poll (two clock reads per poll) so that [`stats`](Self::stats) reports
    /// the longest one. Off by default.
    ///
    /// ```
    /// let lp = uasyncio::get_event_loop();
    /// lp.measure_polls(true);
    /// uasyncio::run(async {
    ///     uasyncio::current_task()?.set_name("busy");
    ///     std::thread::sleep(std::time::Duration::from_millis(5)); // blocks the loop
    ///     Ok(())
    /// }).unwrap();
    /// let s = lp.stats();
    /// assert!(s.longest_poll_us >= 5_000);
    /// assert_eq!(s.longest_poll_task.map(|(_, name)| name).as_deref(), Some("busy"));
    /// ```
    pub fn measure_polls(&self, on: bool) {
        let _ = current::with_or_init(|core| {
            core.stats.measure.set(on);
            core.stats.update_timing();
        });
    }

    /// Starts recording a timeline of at most `max_events` events (task run slices with what
    /// woke each task, task creation and end, idle periods); a trace already recording is
    /// discarded. [`stop_trace`](Self::stop_trace) returns it; [`Trace::to_chrome_json`]
    /// writes it for Perfetto or `chrome://tracing`. The buffer is allocated as it fills.
    pub fn start_trace(&self, max_events: usize) {
        let _ = current::with_or_init(|core| {
            *core.stats.trace.borrow_mut() = Some((Trace::default(), max_events));
            core.stats.update_timing();
        });
    }

    /// Stops recording and returns the trace (`None` if none was recording), with the names
    /// of the tasks in it.
    pub fn stop_trace(&self) -> Option<Trace> {
        current::try_with(|core| {
            let live: alloc::vec::Vec<TaskRef> = core.registry.snapshot();
            for t in &live {
                core.stats.name_task(t.id(), t.name_string());
            }
            let out = core.stats.trace.borrow_mut().take();
            core.stats.update_timing();
            out.map(|(trace, _)| trace)
        })
        .flatten()
    }
}
