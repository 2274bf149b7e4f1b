//! The loop: one thread, one ready queue, one timer heap, one semaphore.
//!
//! [`LoopCore`] is the loop-thread half (plain `Cell`s and `RefCell`s, never shared);
//! [`Shared`] is the half other threads and interrupt handlers may touch.
//!
//! ## A pass of the loop
//! 1. take every task woken from other contexts (oldest first) into the ready queue;
//! 2. fire every timer whose deadline has passed (deadline order, FIFO among equal deadlines);
//! 3. if nothing is ready, block on the semaphore until the nearest deadline (plus the timer
//!    slack, `Loop::set_timer_slack_us`) or a wake; a wake from another context (an
//!    interrupt, a thread) queues its tasks and goes straight to step 4, so the timers of
//!    that moment fire right after those tasks, in the next pass;
//! 4. otherwise poll each task that was ready at the start of the pass, in FIFO order. Tasks
//!    made ready meanwhile wait for the next pass, so a task that yields in a loop cannot
//!    starve timers or wakes from other threads.
//!
//! No busy polling and no periodic tick of our own: with nothing to do the loop thread
//! sleeps in the kernel, which is what lets a battery-powered modem sleep.
//!
//! ## Wakes
//! See [`waker`]: a wake on the loop thread goes straight to the ready queue; one from another
//! thread or an ISR goes through the cross-context stack of `raw::wake`.
//!
//! ## Layer
//! Layer 2 of the core (see `raw`): it uses only `raw` beneath it. What the loop reports (a
//! task error nobody retrieved) goes to a `report` function its caller — `event_loop`, two
//! layers up — passes to [`LoopCore::run_until`].

mod current;
mod exception;
mod ready;
mod registry;
pub(crate) mod stats;
pub(crate) mod timers;
pub(crate) mod waker;

use crate::atomic::Arc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::Future;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};

pub(crate) use current::{try_with, with_or_init};
pub use exception::{ExceptionContext, ExceptionHandler, Loop};
use ready::ReadyQueue;
use registry::Registry;
#[cfg(feature = "stats")]
pub use stats::{LoopStats, Trace};
use stats::{Recorder, WokenBy};
pub(crate) use timers::Timer;
use timers::Timers;

use crate::atomic::Ordering;
use crate::error::{Error, Result};
use crate::raw::{self, flag, Header, Shared, TaskRef, FROM_ISR, SCHEDULED};

/// The loop-thread half of an event loop.
pub(crate) struct LoopCore {
    pub(crate) shared: Arc<Shared<Header>>,
    pub(crate) ready: ReadyQueue,
    pub(crate) timers: RefCell<Timers>,
    /// Every unfinished task, so a reset or the thread's exit can finish them on this thread.
    pub(crate) registry: Registry,
    current: Cell<Option<NonNull<Header>>>,
    pub(crate) running: Cell<bool>,
    /// `Loop::stop` was called: stop after this many more tasks have run (the ones that were
    /// ready then). A countdown, so a loop nobody stops pays one test per task.
    pub(crate) stop_after: Cell<Option<usize>>,
    /// The loop runs in `run_forever` (not `run` / `run_until_complete`): the one mode that
    /// `Loop::stop` ends, as in MicroPython.
    pub(crate) forever: Cell<bool>,
    next_id: Cell<u32>,
    /// The exception handler `Loop::set_exception_handler` installed (`None`: the default).
    pub(crate) handler: Cell<Option<ExceptionHandler>>,
    /// `Some(now)` when the loop runs on virtual time (tests). Set with `set_virtual_time`.
    virtual_now: Cell<Option<u64>>,
    /// The length of a tick of the port's cheap clock (`rtos_shims::tick_count`), in
    /// microseconds rounded up; 0 where the port has none, or on virtual time.
    tick_us: Cell<u32>,
    /// The cheap clock's count read just before the pass's last read of the loop's clock, and
    /// that read (`u64::MAX`: none yet): the reference `surely_before` bounds the clock from.
    gate_tick: Cell<u32>,
    gate_us: Cell<u64>,
    /// Bumped by `new_event_loop()`; timers armed before it are void.
    pub(crate) epoch: Cell<u32>,
    /// How late the loop may fire a timer to fire others with it (`Loop::set_timer_slack_us`).
    pub(crate) timer_slack_us: Cell<u32>,
    fired: RefCell<Vec<Waker>>,
    /// True while `fire_timers` wakes timers' wakers (so their wakes count as timer wakes).
    firing_timers: Cell<bool>,
    /// Tasks finished so far, wrapping: the completion order of tasks (`Local::key_or_seq`)
    /// and `LoopStats::finished`.
    finished: Cell<u64>,
    /// Counters and the trace recorder (`Loop::stats`, `Loop::start_trace`; feature `stats`).
    pub(crate) stats: Recorder,
}

impl LoopCore {
    fn new() -> Result<Self> {
        let shared = Arc::new(Shared::new()?);
        // This loop owns `shared` and is created on its thread; `close_reserve` in `Drop`
        // comes before the loop's own `Arc` goes.
        // SAFETY: as just argued, the contract of `open_reserve`.
        unsafe { Shared::open_reserve(&shared) };
        Ok(LoopCore {
            shared,
            ready: ReadyQueue::new(),
            timers: RefCell::new(Timers::new()),
            registry: Registry::default(),
            current: Cell::new(None),
            running: Cell::new(false),
            stop_after: Cell::new(None),
            forever: Cell::new(false),
            next_id: Cell::new(1),
            handler: Cell::new(None),
            virtual_now: Cell::new(None),
            tick_us: Cell::new(rtos_shims::tick_period_us()),
            gate_tick: Cell::new(0),
            gate_us: Cell::new(u64::MAX),
            epoch: Cell::new(0),
            timer_slack_us: Cell::new(0),
            fired: RefCell::new(Vec::new()),
            firing_timers: Cell::new(false),
            finished: Cell::new(0),
            stats: Recorder::default(),
        })
    }

    /// The loop's clock, in microseconds.
    pub(crate) fn now_us(&self) -> u64 {
        self.virtual_now.get().unwrap_or_else(rtos_shims::now_us)
    }

    /// Runs the loop on virtual time (`Some(start)`) or on the port's clock (`None`).
    pub(crate) fn set_virtual_time(&self, start: Option<u64>) {
        self.virtual_now.set(start);
        // Virtual time is not the cheap clock's: the pass reads it each time (it is a load).
        self.tick_us.set(if start.is_some() {
            0
        } else {
            rtos_shims::tick_period_us()
        });
        self.gate_us.set(u64::MAX);
    }

    /// Whether the loop runs on virtual time.
    pub(crate) fn on_virtual_time(&self) -> bool {
        self.virtual_now.get().is_some()
    }

    /// True when the loop's clock is surely below `deadline`, told from the port's cheap
    /// clock without reading the loop's (FreeRTOS: `xTaskGetTickCount` instead of a critical
    /// section and SysTick; a pass with a timer pending looks at it each time). False where
    /// the port has no cheap clock, and within about three ticks of the deadline.
    ///
    /// The reference (`gate_tick`, `gate_us`) is renewed by the pass's clock reads, which
    /// come at least every 2^30 ticks while the loop runs (`surely_before` refuses more), and
    /// dropped by a long sleep (`idle`), so the 32-bit count never wraps past it unseen; only
    /// a single poll holding the loop for 2^32 ticks (49 days at 1 kHz) could.
    #[inline(always)]
    fn surely_before(&self, deadline: u64) -> bool {
        let tick_us = self.tick_us.get();
        tick_us != 0
            && surely_before(
                deadline,
                self.gate_us.get(),
                self.gate_tick.get(),
                rtos_shims::tick_count(),
                tick_us,
            )
    }

    /// The pass's look at the nearest timer (`deadline`), when the cheap clock could not
    /// tell it is not due: reads the clock and fires the timers that are due.
    #[inline(never)]
    fn look_at_timers(&self, deadline: u64) {
        let now = self.pass_now_us();
        if deadline <= now {
            self.fire_timers(now);
        }
    }

    /// The loop's clock, read for the pass's look at the timers: the reference of
    /// `surely_before` too, where the port has a cheap clock.
    fn pass_now_us(&self) -> u64 {
        if self.tick_us.get() == 0 {
            return self.now_us();
        }
        let tick = rtos_shims::tick_count();
        let now = self.now_us();
        self.gate_tick.set(tick);
        self.gate_us.set(now);
        now
    }

    fn spawn<F, T>(&self, fut: F) -> TaskRef
    where
        F: Future<Output = Result<T>> + 'static,
        T: 'static,
    {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        // Three references, counted at birth instead of cloned (no atomics): the returned
        // handle's, the registry's and the ready queue's.
        // SAFETY: the loop's thread (`&self`).
        let ptr = raw::allocate(fut, unsafe { Shared::cell_ref(&self.shared) }, id, 3);
        self.enroll(ptr)
    }

    /// The part of a spawn that does not depend on the future's type: the registry, the
    /// ready queue, the counters. Out of line, so that each spawned future type adds only
    /// its cell's allocation to the image.
    #[inline(never)]
    fn enroll(&self, ptr: NonNull<Header>) -> TaskRef {
        let task = TaskRef::from_raw(ptr);
        let key = self.registry.insert(TaskRef::from_raw(ptr));
        task.local().key_or_seq.set(u32::try_from(key).unwrap_or(u32::MAX));
        // A new task is ready at once; nobody else can see it yet, so no race on the bit.
        task.header().state.store(SCHEDULED, Ordering::Relaxed);
        self.ready.push_back(TaskRef::from_raw(ptr));
        self.stats.count_spawn();
        #[cfg(feature = "rtos-trace")]
        {
            let id = task.local().id;
            rtos_trace::trace::task_new(id);
            rtos_trace::trace::task_ready_begin(id);
        }
        if let Some(hooks) = self.stats.hooks() {
            (hooks.spawned)(self, task.local().id);
        }
        task
    }

    /// Tasks finished so far (wrapping).
    #[cfg(feature = "stats")]
    pub(crate) fn finished_count(&self) -> u64 {
        self.finished.get()
    }

    /// The task being polled, if any.
    pub(crate) fn current_task(&self) -> Option<NonNull<Header>> {
        self.current.get()
    }

    /// Wakes `ptr`, the task this loop is polling (`current_task`), from inside its poll: what
    /// its waker's `wake_by_ref` does, without the dispatch through the waker and the second
    /// look-up of the loop. The task's `SCHEDULED` bit is still set from the poll and the loop
    /// requeues it when the poll returns (its `requeue` says `WOKEN`), so nothing is queued
    /// here, no reference taken and no read-modify-write made.
    pub(crate) fn wake_current(&self, ptr: NonNull<Header>) {
        debug_assert_eq!(self.current.get(), Some(ptr));
        // A wake by a task (the loop fires timers between polls, never during one), counted
        // when the poll returns, once per poll, as a wake that queues the task.
        // SAFETY: the loop holds a reference to the task it is polling.
        unsafe { ptr.as_ref() }.local.woke_itself();
    }

    /// A wake on this thread of `ptr`, a task of this loop. `counted`: the caller hands over a
    /// counted reference (the ready queue entry takes it, or it is given back); otherwise the
    /// caller keeps its own and the entry gets a new one.
    fn wake_here(&self, ptr: NonNull<Header>, counted: bool) {
        // SAFETY: the caller owns a reference, so the header is alive.
        let header = unsafe { ptr.as_ref() };
        if self.current.get() == Some(ptr) {
            // Being polled, its bit still set: requeued when the poll returns (and counted
            // then, once per poll, as a wake that queues the task).
            header.local.woke_itself();
        } else if header.schedule_here() {
            // Whoever sets the bit queues the task.
            self.count_wake(&header.local);
            self.ready.push_back(if counted {
                // SAFETY: the caller's counted reference, handed over once, on the loop's thread.
                unsafe { TaskRef::from_counted(ptr) }
            } else {
                TaskRef::clone_from_ptr(ptr)
            });
            return;
        }
        if counted {
            // SAFETY: the caller's reference, given back once, on the loop's thread.
            unsafe { raw::drop_ref_on_loop(ptr) };
        }
    }

    /// The statistics and trace side of a wake on this thread.
    fn count_wake(&self, local: &raw::Local) {
        let by = if self.firing_timers.get() {
            WokenBy::Timer
        } else {
            WokenBy::Task
        };
        self.count_wake_by(local, by);
    }

    /// [`count_wake`](Self::count_wake) when the caller knows what woke the task. One counter
    /// for both kinds (`Recorder::local_wakes`); `fire_timers` tells the timers' share apart.
    #[inline(always)]
    fn count_wake_by(&self, local: &raw::Local, by: WokenBy) {
        self.stats.count_local_wake(local, by);
        #[cfg(feature = "rtos-trace")]
        rtos_trace::trace::task_ready_begin(local.id);
    }

    /// `w.wake()` for a waker the loop itself holds (a fired timer's, a finished task's
    /// joiner) or a loop-thread primitive handed it (the free function [`wake`]): when it is a
    /// waker of this loop's task, the task goes straight to the ready queue and takes over the
    /// waker's reference, without the waker's dispatch and without looking up the loop again
    /// (we are on its thread: `&self`).
    fn wake_from_loop(&self, w: Waker) {
        let Some(ptr) = waker::waker_task(&w) else {
            return w.wake();
        };
        // SAFETY: the waker owns a reference, so the header is alive.
        let header = unsafe { ptr.as_ref() };
        if !Arc::ptr_eq(&self.shared, &header.shared) {
            return w.wake();
        }
        // The waker's reference is ours from here on: the ready queue entry takes it, or it
        // is given back.
        let _ = core::mem::ManuallyDrop::new(w);
        self.wake_here(ptr, true);
    }

    fn drain_remote(&self) {
        self.shared.drain(|ptr| self.adopt_remote(ptr));
    }

    /// A task the wake stack handed over (with a reference), to the ready queue.
    #[inline(always)]
    fn adopt_remote(&self, ptr: NonNull<Header>) {
        self.ready.push_back(self.adopted(ptr));
    }

    /// A task the wake stack handed over (with a reference), as a loop-thread reference.
    #[inline(always)]
    fn adopted(&self, ptr: NonNull<Header>) -> TaskRef {
        // SAFETY: the wake stack handed over a reference with the pointer.
        let header = unsafe { ptr.as_ref() };
        // The drain acquired what the waker's push released, the state word included.
        self.count_remote_wake(&header.local, || header.state.load(Ordering::Relaxed));
        // SAFETY: as above; the loop's thread.
        unsafe { TaskRef::from_counted(ptr) }
    }

    /// The statistics and trace side of a wake from another context; `state` gives the task's
    /// state word as that wake left it. Thread or ISR: the word's `FROM_ISR` bit tells (read
    /// here, not at every poll, and only with feature `stats`).
    #[inline(always)]
    fn count_remote_wake(&self, local: &raw::Local, state: impl FnOnce() -> u32) {
        self.stats.count_remote_wake(local, || state() & FROM_ISR != 0);
        #[cfg(feature = "rtos-trace")]
        rtos_trace::trace::task_ready_begin(local.id);
    }

    fn fire_timers(&self, now: u64) {
        let mut fired = self.fired.take();
        self.timers.borrow_mut().expire(now, &mut fired);
        self.firing_timers.set(true);
        // The wakes these make are the timers' (`Recorder::local_wakes` counts every wake on
        // this thread, so each one costs a single counter).
        let before = self.stats.local_wakes();
        for w in fired.drain(..) {
            self.wake_from_loop(w);
        }
        self.stats
            .add_timer_wakes(self.stats.local_wakes().wrapping_sub(before));
        self.firing_timers.set(false);
        self.fired.replace(fired);
    }

    /// The nearest timer's deadline. Read once per pass: without a `RefCell` borrow's
    /// increment and decrement, a test of the borrow flag only.
    fn next_deadline(&self) -> Option<u64> {
        // The reference lives only for this read, so nothing can borrow the timers mutably
        // before it ends (`try_borrow_unguarded` has already refused a current borrow).
        // SAFETY: as just argued.
        unsafe { self.timers.try_borrow_unguarded() }
            .ok()
            .and_then(Timers::next_deadline)
    }

    /// Runs until `main` finishes (or, with `None`, until `stop()` or no task is left).
    ///
    /// `report` receives each task that ended with an error nobody retrieved, one pass after
    /// it ended (the exception handler lives with the caller, in `event_loop`).
    pub(crate) fn run_until(&self, main: Option<NonNull<Header>>, report: &dyn Fn(&TaskRef)) -> Result<()> {
        if self.running.get() {
            return Err(Error::runtime("event loop already running"));
        }
        self.running.set(true);
        self.forever.set(main.is_none());
        let _guard = RunningGuard(self);
        let main_done = || {
            // SAFETY: the caller of `run_until` holds a reference to `main`.
            main.is_some_and(|m| unsafe { m.as_ref() }.local.has(flag::FINISHED))
        };
        // `main` may be over before the first pass (awaited to the end elsewhere); from then on
        // only a poll ends a task, and the pass looks at `main` after each task that ended.
        if main_done() {
            return Ok(());
        }
        loop {
            self.drain_remote();
            // Back here after a sleep: `idle` took the other contexts' wakes already, and
            // `main` cannot have ended while the loop slept (only a poll ends a task).
            // `first`: a task a wake-up handed over without the ready queue (`idle`); `last`:
            // the pass ends after it.
            let (first, last) = loop {
                // With a timer pending the pass asks the cheap clock first (FreeRTOS: the tick
                // count) and reads the clock only near the deadline.
                if let Some(deadline) = self.next_deadline() {
                    if !self.surely_before(deadline) {
                        self.look_at_timers(deadline);
                    }
                }
                // The pass runs the tasks ready now, up to the one at the tail: a task queued
                // during the pass (a yield included) runs in the next one, after the timers
                // and the other contexts' wakes. Only this loop's pops take entries out while
                // it runs (a reset needs a loop that is not running), so the tail is always
                // reached.
                if let Some(last) = self.ready.tail() {
                    break (None, last);
                }
                if self.stop_after.take().is_some() {
                    return Ok(());
                }
                if main.is_none() && self.registry.is_empty() {
                    return Ok(());
                }
                // Woken by another context (an interrupt, a thread): its tasks run first,
                // before the clock is read again, so the clock read is not on the interrupt →
                // task path (on Zephyr it is ~100 instructions). Timers that fell due meanwhile
                // fire in the next pass, right after these tasks: late by their polls, never
                // early. A wake-up that found nothing (a timeout) looks at the timers at once.
                if let Some((first, last)) = self.idle() {
                    break (Some(first), last);
                }
                if let Some(last) = self.ready.tail() {
                    break (None, last);
                }
            };
            let mut next = first.or_else(|| self.ready.pop_front());
            while let Some(task) = next {
                let was_last = task.ptr() == last;
                // Only a task that ends can end `main`, so `main` is looked at only then.
                if self.run_one(task, report) && main_done() {
                    return Ok(());
                }
                if let Some(left) = self.stop_after.get() {
                    if left == 0 {
                        self.stop_after.set(None);
                        return Ok(());
                    }
                    self.stop_after.set(Some(left - 1));
                }
                if was_last {
                    break;
                }
                next = self.ready.pop_front();
            }
        }
    }

    /// Blocks until a wake from another context or the nearest timer is due, then takes the
    /// other contexts' wakes (`Shared::sleep` drains; the caller need not). Called with the
    /// ready queue empty. Returns the first task woken, kept out of the ready queue for the
    /// pass to run first, and the last one, after which the pass ends (the others wait in the
    /// queue, in the order of their wakes); `None` if nothing woke it (a timeout).
    ///
    /// The first task's push and pop are what the hand-off spares: with the wake stack's
    /// single-task path, Cortex-M3's interrupt → task path went 439 → 420 instructions on
    /// FreeRTOS and 664 → 645 on Zephyr's `qemu_cortex_m3` (2026-12-07).
    ///
    /// With a timer slack (`Loop::set_timer_slack_us`) the loop sleeps until the nearest
    /// deadline *plus the slack*, so every timer due by then fires in the one wake-up (what
    /// Linux's timer slack does for a thread's timers). A timer never fires early: a loop that
    /// is awake anyway (tasks ready) fires timers at their deadlines; only the sleep is
    /// stretched.
    ///
    /// Out of line: it ends in a kernel wait, and kept apart the pass around it compiles
    /// shorter (Cortex-M3: a task switch 246 → 244 instructions, a spawn 808 → 800; the
    /// interrupt → task path pays the call, 505 → 510).
    ///
    /// With a timer pending it reads the clock itself. (Handing it the pass's read, when the
    /// pass made one, saved one read per sleep before the pass asked the tick count first; on
    /// FreeRTOS the pass now rarely reads, and the hand-over cost 70 B of flash and two
    /// instructions on the rows measured.)
    #[inline(never)]
    fn idle(&self) -> Option<(TaskRef, NonNull<Header>)> {
        let slack = u64::from(self.timer_slack_us.get());
        let deadline = self.next_deadline().map(|d| d.saturating_add(slack));
        let hooks = self.stats.hooks();
        // The clock is read only when something needs it (a deadline to sleep to, or timing):
        // a loop with no timer that an interrupt wakes pays no clock read per wake-up.
        let now = if deadline.is_some() || hooks.is_some() {
            self.now_us()
        } else {
            0
        };
        if let (Some(d), true) = (deadline, self.on_virtual_time()) {
            if !self.shared.has_remote() {
                // Virtual time: jump to the next deadline instead of waiting for it.
                self.virtual_now.set(Some(d.max(now)));
                return None;
            }
        }
        self.stats.count_sleep();
        #[cfg(feature = "rtos-trace")]
        rtos_trace::trace::system_idle();
        let timeout = deadline.map(|d| d.saturating_sub(now));
        // The cheap clock's reference stays good across a sleep shorter than 2^29 ticks: the
        // 32-bit count cannot wrap past it unseen (`surely_before` refuses 2^30 ticks and
        // more). A longer sleep, or one with no deadline (a wake after 50 days would find the
        // count wrapped), drops it: the next pass with a timer reads the clock.
        if timeout.is_none_or(|t| t >= (1u64 << 29) * u64::from(self.tick_us.get())) {
            self.gate_us.set(u64::MAX);
        }
        // The first task woken stays out of the ready queue (empty: the pass found no task
        // before it slept): the pass runs it first, sparing the interrupt → task path a push
        // and a pop. The others join the queue behind it, in order; the last of them ends the
        // pass.
        // Two variables, `last` read only with `first` set: one `Option` of the pair compiled
        // an instruction longer on the interrupt → task path (Zephyr `qemu_cortex_m3` 634 →
        // 635, `mps2/an385` 594 → 595).
        let mut first = None;
        let mut last = NonNull::dangling();
        self.shared.sleep(timeout, |ptr| {
            last = ptr;
            match first {
                None => first = Some(self.adopted(ptr)),
                Some(_) => self.ready.push_back(self.adopted(ptr)),
            }
        });
        // One clock read more per wake-up, so only while timing is on (it is on the interrupt
        // → task path).
        if let Some(hooks) = hooks {
            (hooks.woke)(self, now);
        }
        first.map(|first| (first, last))
    }

    /// Runs one task popped from the ready queue; true if a task ended (or was already over).
    fn run_one(&self, task: TaskRef, report: &dyn Fn(&TaskRef)) -> bool {
        let local = task.local();
        // The task's SCHEDULED bit stays set through the poll (`raw::SCHEDULED`): a wake from
        // now on either finds the task being polled (this thread: `Local::requeue`; another
        // context: `NOTIFIED`, read by `settle` below) or, after `settle`, queues it. What a
        // waker wrote before its wake is visible to a poll: a wake on this thread came before
        // in program order; one from another context through the wake stack's drain
        // (`Acquire`), or through `settle`'s swap, which reads its `NOTIFIED` and queues the
        // task for one more poll (a wake that found the task queued, not running, may not be
        // visible to the poll right after it, but is to that one).
        let flags = local.all();
        // Started and not finished, the common case, asked with one test (Cortex-M3: one
        // instruction fewer per poll than the two questions below).
        if flags & (flag::FINISHED | flag::STARTED) != flag::STARTED && self.not_to_poll(&task, flags, report) {
            return true;
        }
        self.poll_task(task)
    }

    /// [`run_one`](Self::run_one) for a task that has finished or never started: true if it
    /// is over (a finished task's report made, a task cancelled before it ever ran
    /// finished), false if it is to be polled (marked started).
    #[inline(always)]
    fn not_to_poll(&self, task: &TaskRef, flags: u8, report: &dyn Fn(&TaskRef)) -> bool {
        let ptr = task.ptr();
        let header = task.header();
        let local = &header.local;
        if flags & flag::FINISHED != 0 {
            if local.has(flag::REPORT_PENDING) {
                local.clear(flag::REPORT_PENDING);
                if !local.has(flag::AWAITED) {
                    report(task);
                }
            }
            // Its bit stays set: a finished task never runs again.
            return true;
        }
        if flags & flag::STARTED == 0 {
            local.set(flag::STARTED);
            if flags & flag::CANCEL_PENDING != 0 {
                // Cancelled before it ever ran: its body never runs.
                local.clear(flag::CANCEL_PENDING);
                let finish_with = header.vtable.finish_with;
                // SAFETY: loop thread; the task is not being polled.
                unsafe { finish_with(ptr, Error::Cancelled) };
                self.finished(task.clone());
                return true;
            }
        }
        false
    }

    /// Polls a started, unfinished task once; true if it ended.
    #[inline(always)]
    fn poll_task(&self, task: TaskRef) -> bool {
        let ptr = task.ptr();
        let header = task.header();
        let local = &header.local;
        self.current.set(Some(ptr));
        local.begin_poll();
        self.stats.count_poll();
        // The hooks are looked up again after the poll rather than kept: nothing but the task
        // stays live across the call (on a 32-bit core the pass runs short of registers).
        if self.stats.hooks().is_some() {
            self.poll_start_hook();
        }
        // After the hook, which reads what woke the task: this store clears that too.
        local.set_waiting_on(crate::raw::WaitingOn::Nothing as u8);
        let waker = waker::waker_ref(&ptr);
        let mut cx = Context::from_waker(&waker);
        let poll = header.vtable.poll;
        #[cfg(feature = "rtos-trace")]
        rtos_trace::trace::task_exec_begin(local.id);
        #[cfg(not(feature = "std"))]
        // SAFETY: loop thread; popped from the ready queue (not polled elsewhere); `task` keeps it alive.
        let res = unsafe { poll(ptr, &mut cx) };
        // On the host a panic unwinds: the task is finished first (see `panicked`), then the
        // panic goes on out of `run`.
        #[cfg(feature = "std")]
        // The closure runs once, right here, with what the no_std poll above has.
        // SAFETY: loop thread; popped from the ready queue (not polled elsewhere); `task` keeps it alive.
        let res = match std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| unsafe { poll(ptr, &mut cx) })) {
            Ok(res) => res,
            Err(payload) => self.panicked(task, payload),
        };
        #[cfg(feature = "rtos-trace")]
        rtos_trace::trace::task_exec_end();
        self.current.set(None);
        if let Some(hooks) = self.stats.hooks() {
            (hooks.polled)(self, &task);
        }
        match res {
            Poll::Ready(()) => {
                self.finished(task);
                true
            }
            Poll::Pending => {
                if local.end_pending_poll() {
                    // Counted once per poll, however often the task woke itself in it.
                    self.count_wake_by(local, WokenBy::Task);
                    // Woken on this thread during the poll, its bit still set: queued again
                    // without an atomic operation (a yield).
                    self.ready.push_back(task);
                } else if let Some(state) = header.settle() {
                    // Woken from another context during the poll.
                    self.count_remote_wake(local, || state);
                    self.ready.push_back(task);
                }
                false
            }
        }
    }

    /// A task's poll panicked (host, `std`: the panic unwinds). The task ends as if it had
    /// failed with `RuntimeError("the task panicked")` — its future is dropped, its joiner
    /// woken, its registry entry gone — so the loop stays whole: a later `run_forever()`
    /// does not wait for it, and awaiting it gives that error. Then the panic goes on.
    #[cfg(feature = "std")]
    #[cold]
    #[inline(never)]
    fn panicked(&self, task: TaskRef, payload: alloc::boxed::Box<dyn core::any::Any + Send>) -> ! {
        self.current.set(None);
        let finish_with = task.header().vtable.finish_with;
        // Dropping a future whose poll panicked is sound; its drop may panic in turn, which
        // aborts, as any drop during unwinding does.
        // SAFETY: loop thread; the panicked poll has unwound (not being polled); `task` keeps it alive.
        unsafe { finish_with(task.ptr(), Error::runtime("the task panicked")) };
        self.finished(task);
        std::panic::resume_unwind(payload)
    }

    /// The `poll_start` hook, out of line and cold: with timing off the pass pays the test
    /// and one predicated call instruction for it, where the inlined call had compiled to an
    /// IT block of three (the table's load, the argument, the indirect call) (Cortex-M3: two
    /// to four instructions per poll).
    #[cold]
    #[inline(never)]
    fn poll_start_hook(&self) {
        if let Some(hooks) = self.stats.hooks() {
            (hooks.poll_start)(self);
        }
    }

    /// Bookkeeping when a task's outcome has just been stored.
    fn finished(&self, task: TaskRef) {
        let header = task.header();
        let local = &header.local;
        let finished = self.finished.get().wrapping_add(1);
        self.finished.set(finished);
        #[cfg(feature = "rtos-trace")]
        rtos_trace::trace::task_terminate(local.id);
        if let Some(hooks) = self.stats.hooks() {
            (hooks.finished)(self, &task);
        }
        local.set(flag::FINISHED);
        // Its SCHEDULED bit is set (it was just polled, or popped from the ready queue
        // unstarted) and stays so: stale wakers leave it alone (`keep_off_queues`).
        // The registry key gives way to the completion number (one field for both): the count
        // of finished tasks, its low 32 bits (see `completed_before`).
        let key = local.key_or_seq.replace(finished as u32) as usize;
        let entry = self.registry.remove(key);
        drop(entry);
        local.awaiting.set(None);
        if !local.has(flag::HANDLE_ALIVE) {
            let drop_output = header.vtable.drop_output;
            // SAFETY: loop thread; finished, so not being polled; nobody can take the output.
            unsafe { drop_output(task.ptr()) };
        }
        if let Some(w) = local.join_waker.take() {
            self.wake_from_loop(w);
        } else if !local.has(flag::AWAITED) && task.error().is_some_and(|e| !e.is_cancelled()) {
            // Nobody waits for it: report the error one pass later unless someone awaits it
            // meanwhile (MicroPython requeues the dead task for the same purpose).
            local.set(flag::REPORT_PENDING);
            self.ready.push_back(task);
        }
    }

    /// Takes every task woken from other contexts into `out` (for `reset`, which drops them).
    fn take_remote(&self, out: &mut Vec<TaskRef>) {
        self.shared.drain(|ptr| {
            // SAFETY: the entry's counted reference, handed over once, on the loop's thread.
            out.push(unsafe { TaskRef::from_counted(ptr) })
        });
    }

    /// Finishes every live task with `err` on this thread and empties the queues.
    pub(crate) fn reset(&self, err: &Error) {
        // Take everything out first: dropping futures may call back into the loop.
        let registry = self.registry.take();
        let ready = self.ready.take_all();
        let timers = core::mem::replace(&mut *self.timers.borrow_mut(), Timers::new());
        self.epoch.set(self.epoch.get().wrapping_add(1));
        self.stop_after.set(None);
        let mut remote = Vec::new();
        self.take_remote(&mut remote);
        for (_, task) in registry.iter() {
            let header = task.header();
            header.local.set(flag::FINISHED | flag::STARTED);
            // No completion number (the registry key's field; see `finished`).
            header.local.key_or_seq.set(0);
            keep_off_queues(header);
            header.local.awaiting.set(None);
            let finish_with = header.vtable.finish_with;
            // SAFETY: loop thread, not running (reset refuses a running loop), so no task is
            // being polled.
            unsafe { finish_with(task.ptr(), err.clone()) };
            if !header.local.has(flag::HANDLE_ALIVE) {
                let drop_output = header.vtable.drop_output;
                // SAFETY: as above.
                unsafe { drop_output(task.ptr()) };
            }
        }
        drop(registry);
        drop(ready);
        drop(timers);
        drop(remote);
        // Dropping futures can wake other tasks (a dropped lock guard hands the lock on):
        // let go of those queue entries too, until nothing more arrives.
        loop {
            let mut late = Vec::new();
            self.take_remote(&mut late);
            let ready = self.ready.take_all();
            if late.is_empty() && ready.is_empty() {
                break;
            }
        }
    }
}

impl Drop for LoopCore {
    fn drop(&mut self) {
        // The thread is exiting: drop every pending future here, on its own thread, then
        // refuse wakes from other contexts (they give their reference back instead).
        self.reset(&Error::runtime("the event loop's thread exited"));
        // SAFETY: each entry's counted reference, handed over once, on the loop's thread.
        self.shared.close(|ptr| drop(unsafe { TaskRef::from_counted(ptr) }));
        // SAFETY: the loop's thread, before `self.shared` is dropped (after this function).
        unsafe { Shared::close_reserve(&self.shared) };
    }
}

/// Keeps a finished task off every queue for good: its `SCHEDULED` bit set, so stale wakers
/// leave it alone. Wakers only ever set this bit and the loop does not need the old value, so
/// a store, not a read-modify-write (a locked instruction on x86): a waker racing with it
/// either sees the bit, or set it first and queued the task once, and that entry finds the
/// task finished. The `FROM_ISR` bit such a wake set may be lost, which only changes what a
/// trace says woke a finished task.
fn keep_off_queues(header: &Header) {
    header.state.store(SCHEDULED, Ordering::Release);
}

/// The cheap clock's bound (`rtos_shims::tick_count`'s contract): with `ref_tick` read before
/// a read of the clock that gave `ref_us`, and `tick` read now, the clock is below
/// `ref_us + (tick - ref_tick + 3) * tick_us`; true if that is at or before `deadline`. False
/// without a reference (`ref_us` `u64::MAX`) or when 2^30 ticks or more passed (the 32-bit
/// count may have wrapped: the caller reads the clock instead).
#[inline(always)]
fn surely_before(deadline: u64, ref_us: u64, ref_tick: u32, tick: u32, tick_us: u32) -> bool {
    let elapsed = tick.wrapping_sub(ref_tick);
    elapsed < 1 << 30 && ref_us.saturating_add(u64::from(elapsed + 3) * u64::from(tick_us)) <= deadline
}

struct RunningGuard<'a>(&'a LoopCore);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.set(false);
        self.0.forever.set(false);
        self.0.current.set(None);
        self.0.stop_after.set(None);
    }
}

/// Called by `waker::schedule` on every wake from a task context: the wake is carried out here
/// if this is the task's loop thread (true), else the caller takes the cross-context path.
/// `counted`: the caller hands over a counted reference (taken over or given back here, if
/// this returns true); otherwise it keeps its own.
///
/// Out of line, one copy for every waker entry point (`wake`, `wake_by_ref`, a flag's `set`):
/// the interrupt → task path never comes here, and inlined it doubled the size of each.
///
/// # Safety
/// The caller is not an interrupt handler (`rtos_shims::in_isr()` is false): it asked, and
/// this does not ask again (see [`current::try_with_in_task`]).
#[inline(never)]
pub(crate) unsafe fn wake_local(ptr: NonNull<Header>, counted: bool) -> bool {
    let queue = |core: &LoopCore| {
        // SAFETY: the waker calling us owns a reference.
        let header = unsafe { ptr.as_ref() };
        let ours = Arc::ptr_eq(&core.shared, &header.shared);
        if ours {
            core.wake_here(ptr, counted);
        }
        ours
    };
    // SAFETY: the caller's contract (not an interrupt handler).
    unsafe { current::try_with_in_task(queue) }.unwrap_or(false)
}

/// Whether the task that finished with number `a` finished before the one with `b`.
///
/// Completion numbers are 32 bits and wrap (a cell spends 4 bytes on its number, not 8), so
/// two are compared by their wrapping distance: right whenever they are less than 2^31
/// completions apart. `gather`, the one user, compares children it sees finished when it is
/// polled, and a finished child wakes it at once, so its children's numbers are close.
pub(crate) fn completed_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Creates a task on this thread's loop.
pub(crate) fn spawn<F, T>(fut: F) -> TaskRef
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    // The closure borrows the future instead of owning it: moved into a closure, a large
    // future (an application's whole state machine, tens of KiB) was copied onto the stack
    // once more for each layer the closure passes through, and overflowed a FreeRTOS task's
    // stack that the borrowed form fits (the cellular firmware's `session`, 24 KiB future).
    let mut fut = Some(fut);
    match current::with_or_init(|core| fut.take().map(|f| core.spawn(f))) {
        Ok(Some(task)) => task,
        // Not reached (the closure runs once, with the future there); an orphan, not a panic.
        Ok(None) => orphan(Error::runtime("no event loop")),
        // The closure did not run; `fut` is dropped here, on this thread.
        Err(err) => orphan(err),
    }
}

/// A task for a place where no loop can exist: born finished with `err`, so awaiting it
/// reports the problem instead of hanging.
///
/// One cell type and one small set of operations for every orphan, whatever the spawned
/// future and its output (not a set of vtable functions per output type in the firmware); a
/// typed handle of an orphan takes its error without the cell's `take_output`
/// (`flag::ORPHAN`).
#[cold]
fn orphan(err: Error) -> TaskRef {
    let ptr = raw::allocate_orphan(err, Arc::new(Shared::orphan()));
    let task = TaskRef::from_raw(ptr);
    let header = task.header();
    header
        .local
        .set(flag::FINISHED | flag::STARTED | flag::AWAITED | flag::ORPHAN);
    // Finished without a completion number (the registry key's field; see `finished`).
    header.local.key_or_seq.set(0);
    header.state.store(SCHEDULED, Ordering::Relaxed);
    task
}

/// The task being polled on this thread, if any.
pub(crate) fn current_task_ptr() -> Option<NonNull<Header>> {
    current::try_with(|core| core.current.get()).flatten()
}

/// [`current_task_ptr`] for a caller that holds a handle to a task (`!Send`): unless the task
/// is an orphan, its loop made it on this thread, so this is the loop's thread and no thread
/// check is made.
pub(crate) fn current_task_ptr_for(handle: &TaskRef) -> Option<NonNull<Header>> {
    // With `std` the look-up is a thread-local's, which needs no proof; an orphan was made
    // wherever `create_task` found no loop, which may be any thread.
    if cfg!(feature = "std") || handle.local().has(flag::ORPHAN) {
        return current_task_ptr();
    }
    // Not an orphan, so the loop of this thread's slot made the task on its thread (the slot
    // is READY); the caller's handle is `!Send` and holds it, so this is that thread, and not
    // an interrupt handler (see `try_with_on_owner`).
    // SAFETY: as just argued, `try_with_on_owner`'s contract holds.
    unsafe { current::try_with_on_owner(|core| core.current.get()) }.flatten()
}

/// Runs `f` on the header of the task being polled, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(&Header) -> R) -> Option<R> {
    current::try_with(|core| {
        core.current.get().map(|ptr| {
            // SAFETY: the loop holds a reference to the task it is polling.
            f(unsafe { ptr.as_ref() })
        })
    })
    .flatten()
}

/// `w.wake()` for a waker a primitive of the loop's thread (`Event`, `Lock`, `Semaphore`,
/// `Queue`) took out of its wait queue: on the loop's thread, a waker of one of its tasks
/// goes straight into the ready queue and its reference becomes the queue entry's, as the
/// loop's own wakes do ([`LoopCore::wake_from_loop`]). The waker's `wake` would find the same
/// loop and then clone a reference for the entry and drop the waker's: two atomic operations
/// and a dispatch more per wake. Any other waker, or any other thread, gets `w.wake()`.
pub(crate) fn wake(w: Waker) {
    let mut w = Some(w);
    current::try_with(|core| {
        if let Some(w) = w.take() {
            core.wake_from_loop(w);
        }
    });
    if let Some(w) = w {
        w.wake();
    }
}

/// Runs `f` on this thread's loop, if one exists.
pub(crate) fn with_core<R>(f: impl FnOnce(&LoopCore) -> R) -> Option<R> {
    current::try_with(f)
}

/// `Task.cancel()`: see the `task` module docs for the cases.
pub(crate) fn cancel(ptr: NonNull<Header>) -> Result<bool> {
    // SAFETY: the caller (a TaskRef) owns a reference.
    let header = unsafe { ptr.as_ref() };
    if header.local.has(flag::FINISHED) {
        return Ok(false);
    }
    let current = current_task_ptr();
    if current == Some(ptr) {
        return Err(Error::runtime("can't cancel self"));
    }
    // Forward to the innermost task being awaited (still running).
    let target = TaskRef::clone_from_ptr(ptr).innermost_awaited();
    if current == Some(target.ptr()) {
        return Err(Error::runtime("can't cancel self"));
    }
    target.local().set(flag::CANCEL_PENDING);
    waker::schedule(target.ptr());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::completed_before;

    /// `surely_before` against a model of the FreeRTOS port's clock, over tick lengths exact
    /// and not (1 kHz, 100 Hz, 1024 Hz, 3 kHz), kernel counts near the 32-bit wrap, a SysTick
    /// pending at either read, and deadlines on both sides of the clock: whenever it says
    /// "surely before", the clock at the second read is below the deadline; and far from the
    /// deadline it does say so (it is not a test that always says "read the clock").
    #[test]
    fn the_cheap_clock_never_calls_a_due_timer_not_due() {
        // The port's clock at kernel count `k` (64-bit), `pending` SysTick, `cycles` into the
        // tick out of `per_tick`: the tick widened and counted one ahead when pending, in µs
        // (floor for a rate that does not divide 1 s), plus the position inside the tick.
        fn clock(hz: u64, k: u64, pending: bool, cycles: u64, per_tick: u64) -> u64 {
            let p = k + u64::from(pending);
            let tick_us = 1_000_000 / hz;
            let sub = (cycles * 1_000_000 / hz / per_tick).min(tick_us.saturating_sub(1));
            p * 1_000_000 / hz + sub
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Miri runs the arithmetic about a thousand times slower: fewer draws there.
        let rounds = if cfg!(miri) { 500 } else { 20_000 };
        let mut said_yes = 0u32;
        for hz in [1000u64, 100, 1024, 3000] {
            let tick_us = u32::try_from(1_000_000u64.div_ceil(hz)).unwrap();
            for _ in 0..rounds {
                // Near a wrap of the kernel's 32-bit count, or anywhere.
                let k0 = if next() % 2 == 0 {
                    (1u64 << 32) * (next() % 4) + (u64::from(u32::MAX) - next() % 8)
                } else {
                    next() % (1 << 40)
                };
                let t0 = k0 as u32; // read before the clock
                let k0r = k0 + next() % 2; // a tick may come between the two reads
                let u0 = clock(hz, k0r, next() % 2 == 0, next() % 1000, 1000);
                let k1 = k0r + next() % 50;
                let t1 = k1 as u32;
                let now = clock(hz, k1, next() % 2 == 0, next() % 1000, 1000);
                let deadline = now.saturating_add_signed((next() % 20_000) as i64 - 5_000);
                if super::surely_before(deadline, u0, t0, t1, tick_us) {
                    assert!(
                        now < deadline,
                        "hz {hz}: now {now} is at/after {deadline} (u0 {u0}, ticks {t0} -> {t1})"
                    );
                    said_yes += 1;
                }
                // Far ahead of the clock it answers yes.
                assert!(
                    super::surely_before(
                        now + 10 * u64::from(tick_us) + 100 * 1_000_000 / hz,
                        u0,
                        t0,
                        t1,
                        tick_us
                    ) || k1 - k0 >= 1 << 30
                );
            }
        }
        assert!(said_yes > rounds, "said yes {said_yes} times in {} draws", 4 * rounds);
        // No reference yet, or too long ago: read the clock.
        assert!(!super::surely_before(u64::MAX - 1, u64::MAX, 0, 5, 1000));
        assert!(!super::surely_before(u64::MAX - 1, 0, 0, 1 << 30, 1000));
    }

    /// A spawn that finds no loop gives an orphan, one cell type for every output type: a
    /// handle typed for another output gets the orphan's error (and never reads an output
    /// the cell does not hold), and dropping the handle frees the cell.
    #[test]
    fn an_orphan_gives_its_error_to_a_handle_of_any_output_type() {
        use core::future::Future;
        let err = crate::Error::runtime("no event loop here");
        // An output type whose `Option<Result<_>>` is laid out unlike the orphan cell's own.
        let task = crate::Task::<[u64; 4]>::from_ref(super::orphan(err.clone()));
        assert!(task.done());
        let mut task = core::pin::pin!(task);
        let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
        assert_eq!(task.as_mut().poll(&mut cx), core::task::Poll::Ready(Err(err.clone())));
        // Awaiting it again gives the error again, as for any task that failed.
        assert_eq!(task.as_mut().poll(&mut cx), core::task::Poll::Ready(Err(err)));
    }

    /// Cells freed on the loop's thread leave their reference to the loop's `Shared` in its
    /// reserve for the next spawns; the loop's end gives every kept reference back, so the
    /// `Shared` (its semaphore, its cell cache) is freed with the last outside reference.
    #[test]
    #[cfg(feature = "std")]
    fn a_loop_keeps_its_cells_references_and_gives_them_back_at_its_end() {
        extern crate std;
        use crate::atomic::Arc;
        let shared = std::thread::spawn(|| {
            let shared = super::with_or_init(|core| core.shared.clone()).unwrap();
            let before = Arc::strong_count(&shared);
            crate::run(async {
                for i in 0..20u32 {
                    assert_eq!(crate::create_task(async move { Ok(i) }).await?, i);
                }
                Ok(())
            })
            .unwrap();
            // The finished tasks' references are kept (each spawn took one back from there).
            assert!(Arc::strong_count(&shared) > before, "no reference was kept");
            shared
        })
        .join()
        .unwrap();
        // The thread exited: its loop gave back the reserve and its own reference.
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    /// A trace says what made each run slice's task ready: a timer, another task, another
    /// thread (through the wake stack; an interrupt handler is told apart there too).
    #[test]
    #[cfg(all(feature = "std", feature = "stats"))]
    fn a_trace_tells_timer_task_and_thread_wakes_apart() {
        extern crate std;
        use alloc::format;
        use alloc::vec::Vec;
        std::thread::spawn(|| {
            let flag = std::sync::Arc::new(crate::ThreadSafeFlag::new());
            let lp = crate::get_event_loop();
            lp.start_trace(1000);
            crate::run(async move {
                crate::sleep_ms(1).await?; // woken by a timer
                let ev = alloc::rc::Rc::new(crate::Event::new());
                let e2 = ev.clone();
                let waiter = crate::create_task(async move { e2.wait().await });
                crate::sleep_ms(0).await?;
                ev.set(); // wakes `waiter`: a task
                waiter.await?;
                let f2 = flag.clone();
                let setter = std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    f2.set();
                });
                flag.wait().await?; // woken by another thread
                setter.join().map_err(|_| crate::Error::runtime("setter panicked"))?;
                Ok(())
            })
            .unwrap();
            let json = lp.stop_trace().unwrap().to_chrome_json();
            let by: Vec<&str> = ["timer", "task", "thread"]
                .into_iter()
                .filter(|w| json.contains(&format!("\"woken_by\":\"{w}\"")))
                .collect();
            assert_eq!(by, ["timer", "task", "thread"], "{json}");
            assert!(!json.contains("\"woken_by\":\"isr\""), "{json}");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn completion_order_survives_the_wrap() {
        assert!(completed_before(1, 2));
        assert!(!completed_before(2, 1));
        assert!(!completed_before(7, 7));
        // 0 is the completion after u32::MAX.
        assert!(completed_before(u32::MAX, 0));
        assert!(completed_before(u32::MAX - 5, 3));
        assert!(!completed_before(3, u32::MAX - 5));
    }
}
