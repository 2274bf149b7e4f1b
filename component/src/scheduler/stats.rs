//! What the loop counts about itself (`LoopStats`) and, when asked, records (`Trace`):
//! cargo feature `stats` (on with the default features; off in a firmware that does not ask
//! for it).
//!
//! The counters are plain `Cell` increments on the loop thread: a few adds per poll. Timing
//! each poll (for the longest poll, and for a trace) reads the clock twice per poll, so it is
//! off until `Loop::measure_polls` or `Loop::start_trace` turns it on.
//!
//! Without the feature, [`Recorder`]'s methods are empty and inlined, and its hook table is
//! always `None`: the loop's passes compile with no counter, no hook test and no record of
//! what woke a task (Cortex-M3, `scripts/freertos-bench.sh`, which prints both builds: a task
//! switch 177 → 158 instructions, a spawn 654 → 615, the interrupt → task path 463 → 438).
//!
//! A trace is a bounded buffer of events in the loop's memory: task run slices (with what
//! woke the task: another task, a timer, another thread or an interrupt handler), task
//! creation and end, and the loop's idle periods. `Trace::to_chrome_json` writes it in the
//! Chrome trace event format, which Perfetto (<https://ui.perfetto.dev>) and
//! `chrome://tracing` open.

#[cfg(feature = "stats")]
use alloc::collections::BTreeMap;
#[cfg(feature = "stats")]
use alloc::string::String;
#[cfg(feature = "stats")]
use alloc::vec::Vec;
#[cfg(feature = "stats")]
use core::cell::{Cell, RefCell};
#[cfg(feature = "stats")]
use core::fmt::Write as _;

use super::LoopCore;
use crate::raw::TaskRef;

/// What woke a task, as recorded for traces (`Local::woken_by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[cfg_attr(not(feature = "stats"), allow(dead_code))]
pub(crate) enum WokenBy {
    /// Ready since it was created.
    Spawn = 0,
    /// A waker called on the loop's thread (another task, or the task itself: a yield).
    Task = 1,
    /// A timer the loop fired.
    Timer = 2,
    /// Another thread.
    Thread = 3,
    /// An interrupt handler.
    Isr = 4,
}

#[cfg(feature = "stats")]
impl WokenBy {
    pub(crate) fn from_u8(v: u8) -> WokenBy {
        match v {
            1 => WokenBy::Task,
            2 => WokenBy::Timer,
            3 => WokenBy::Thread,
            4 => WokenBy::Isr,
            _ => WokenBy::Spawn,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            WokenBy::Spawn => "spawn",
            WokenBy::Task => "task",
            WokenBy::Timer => "timer",
            WokenBy::Thread => "thread",
            WokenBy::Isr => "isr",
        }
    }
}

#[cfg(feature = "stats")]
/// The loop's counters: [`Loop::stats`](crate::Loop::stats).
///
/// ```
/// let lp = uasyncio::get_event_loop();
/// lp.measure_polls(true);
/// uasyncio::run(async { uasyncio::sleep_ms(1).await }).unwrap();
/// let s = lp.stats();
/// assert!(s.polls >= 2 && s.timer_wakes >= 1);
/// assert!(s.longest_poll_task.is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Task polls.
    pub polls: u64,
    /// Tasks created.
    pub spawned: u64,
    /// Tasks that finished.
    pub finished: u64,
    /// Wakes on the loop's thread by tasks (a yield included).
    pub task_wakes: u64,
    /// Wakes by timers the loop fired.
    pub timer_wakes: u64,
    /// Wakes from other threads and from interrupt handlers.
    pub remote_wakes: u64,
    /// Times the loop blocked in its semaphore with nothing to do.
    pub sleeps: u64,
    /// Microseconds the loop spent blocked (asleep) while
    /// [`Loop::measure_polls`](crate::Loop::measure_polls) (or a trace) was on: measuring it
    /// costs a clock read per wake-up, which the interrupt → task path does not pay otherwise.
    pub idle_us: u64,
    /// The longest single poll seen while [`Loop::measure_polls`](crate::Loop::measure_polls)
    /// was on, in microseconds. Only finished polls count: a poll that never returns (a task
    /// spinning) is not here; the task dump shows its task `running`.
    pub longest_poll_us: u64,
    /// The task that made that poll: its id and name.
    pub longest_poll_task: Option<(u32, String)>,
}

#[cfg(feature = "stats")]
/// One recorded event; times in microseconds of the loop's clock.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    Slice {
        task: u32,
        start: u64,
        dur: u64,
        woken_by: WokenBy,
    },
    Spawn {
        task: u32,
        at: u64,
    },
    End {
        task: u32,
        at: u64,
    },
    Idle {
        start: u64,
        dur: u64,
    },
}

#[cfg(feature = "stats")]
/// A recorded timeline: [`Loop::stop_trace`](crate::Loop::stop_trace).
///
/// ```
/// let lp = uasyncio::get_event_loop();
/// lp.start_trace(1000);
/// uasyncio::run(async { uasyncio::sleep_ms(2).await }).unwrap();
/// let trace = lp.stop_trace().unwrap();
/// assert!(trace.len() >= 2);
/// assert!(trace.to_chrome_json().starts_with("{\"traceEvents\":["));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub(crate) events: Vec<Event>,
    pub(crate) names: BTreeMap<u32, String>,
    /// Events that did not fit the buffer (the newest are dropped).
    pub dropped: u64,
}

#[cfg(feature = "stats")]
impl Trace {
    /// Recorded events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The trace in the Chrome trace event format (JSON object with `traceEvents`), which
    /// <https://ui.perfetto.dev> and `chrome://tracing` open: one track ("thread") per task
    /// with its run slices, the loop's idle periods on a track of their own, instants for
    /// task creation and end. Each slice's `args.woken_by` says what made the task ready.
    pub fn to_chrome_json(&self) -> String {
        let mut out = String::from("{\"traceEvents\":[");
        let mut first = true;
        let mut push = |out: &mut String, s: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(s);
        };
        let mut line = String::new();
        // Track names: tid 0 is the loop itself (idle), tid N is task N.
        push(
            &mut out,
            "{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"thread_name\",\"args\":{\"name\":\"loop (idle)\"}}",
        );
        for (id, name) in &self.names {
            line.clear();
            let _ = write!(
                line,
                "{{\"ph\":\"M\",\"pid\":1,\"tid\":{id},\"name\":\"thread_name\",\"args\":{{\"name\":\"{}\"}}}}",
                Escaped(name)
            );
            push(&mut out, &line);
        }
        for e in &self.events {
            line.clear();
            let _ = match e {
                Event::Slice { task, start, dur, woken_by } => write!(
                    line,
                    "{{\"ph\":\"X\",\"pid\":1,\"tid\":{task},\"ts\":{start},\"dur\":{dur},\"name\":\"run\",\"args\":{{\"woken_by\":\"{}\"}}}}",
                    woken_by.as_str()
                ),
                Event::Spawn { task, at } => write!(
                    line,
                    "{{\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":{task},\"ts\":{at},\"name\":\"created\"}}"
                ),
                Event::End { task, at } => write!(
                    line,
                    "{{\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":{task},\"ts\":{at},\"name\":\"finished\"}}"
                ),
                Event::Idle { start, dur } => write!(
                    line,
                    "{{\"ph\":\"X\",\"pid\":1,\"tid\":0,\"ts\":{start},\"dur\":{dur},\"name\":\"idle\"}}"
                ),
            };
            push(&mut out, &line);
        }
        out.push_str("]}");
        out
    }
}

#[cfg(feature = "stats")]
/// JSON string escaping for task names.
struct Escaped<'a>(&'a str);

#[cfg(feature = "stats")]
impl core::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The loop's live counters and its recorder (in `LoopCore`). Without feature `stats` it
/// holds nothing and its methods do nothing (see the module docs).
#[cfg(feature = "stats")]
#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) polls: Cell<u64>,
    pub(crate) spawned: Cell<u64>,
    /// Wakes on the loop's thread, by tasks and by timers: `LoopStats::task_wakes` is this
    /// minus `timer_wakes`.
    pub(crate) local_wakes: Cell<u64>,
    pub(crate) timer_wakes: Cell<u64>,
    pub(crate) remote_wakes: Cell<u64>,
    pub(crate) sleeps: Cell<u64>,
    pub(crate) idle_us: Cell<u64>,
    pub(crate) longest_poll_us: Cell<u64>,
    /// When the poll in progress started (µs; set by the `poll_start` hook, taken by
    /// `polled`; `None` for a poll during which timing was turned on, which is not timed).
    pub(crate) poll_started_us: Cell<Option<u64>>,
    /// What made the task of the poll in progress ready (`WokenBy` as `u8`), noted when the
    /// poll starts: a wake during the poll (a yield) overwrites the task's own record.
    pub(crate) poll_woken_by: Cell<u8>,
    pub(crate) longest_poll_task: RefCell<Option<(u32, String)>>,
    /// Poll timing on (`measure_polls`, or a trace): what the loop calls then.
    pub(crate) hooks: Cell<Option<&'static TimingHooks>>,
    pub(crate) measure: Cell<bool>,
    /// `Some` while a trace records: the buffer and its capacity.
    pub(crate) trace: RefCell<Option<(Trace, usize)>>,
}

/// See the `stats` version: nothing to keep.
#[cfg(not(feature = "stats"))]
#[derive(Default)]
pub(crate) struct Recorder {}

#[cfg(feature = "stats")]
#[inline(always)]
fn bump(c: &Cell<u64>) {
    c.set(c.get().wrapping_add(1));
}

/// The loop's calls, one per thing counted: plain increments with feature `stats`, nothing
/// without it.
#[cfg(feature = "stats")]
impl Recorder {
    #[inline(always)]
    pub(crate) fn count_spawn(&self) {
        bump(&self.spawned);
    }
    #[inline(always)]
    pub(crate) fn count_poll(&self) {
        bump(&self.polls);
    }
    #[inline(always)]
    pub(crate) fn count_sleep(&self) {
        bump(&self.sleeps);
    }
    /// A wake on the loop's thread of the task whose bookkeeping is `local`, by `by`.
    #[inline(always)]
    pub(crate) fn count_local_wake(&self, local: &crate::raw::Local, by: WokenBy) {
        bump(&self.local_wakes);
        local.set_woken_by(by as u8);
    }
    /// A wake from another context (`isr` answers whether an interrupt handler's).
    #[inline(always)]
    pub(crate) fn count_remote_wake(&self, local: &crate::raw::Local, isr: impl FnOnce() -> bool) {
        bump(&self.remote_wakes);
        let isr = isr();
        let by = if isr { WokenBy::Isr } else { WokenBy::Thread };
        local.set_woken_by(by as u8);
    }
    /// Wakes on the loop's thread so far (`fire_timers` tells the timers' share by the
    /// difference).
    #[inline(always)]
    pub(crate) fn local_wakes(&self) -> u64 {
        self.local_wakes.get()
    }
    #[inline(always)]
    pub(crate) fn add_timer_wakes(&self, n: u64) {
        self.timer_wakes.set(self.timer_wakes.get().wrapping_add(n));
    }
    /// The timing hooks, while poll timing is on.
    #[inline(always)]
    pub(crate) fn hooks(&self) -> Option<&'static TimingHooks> {
        self.hooks.get()
    }

    /// The counters; `finished` is the loop's count of finished tasks (kept apart: the
    /// completion order of tasks rests on it, with or without this feature).
    pub(crate) fn snapshot(&self, finished: u64) -> LoopStats {
        LoopStats {
            polls: self.polls.get(),
            spawned: self.spawned.get(),
            finished,
            task_wakes: self.local_wakes.get().wrapping_sub(self.timer_wakes.get()),
            timer_wakes: self.timer_wakes.get(),
            remote_wakes: self.remote_wakes.get(),
            sleeps: self.sleeps.get(),
            idle_us: self.idle_us.get(),
            longest_poll_us: self.longest_poll_us.get(),
            longest_poll_task: self.longest_poll_task.borrow().clone(),
        }
    }

    pub(crate) fn tracing(&self) -> bool {
        self.trace.try_borrow().map(|t| t.is_some()).unwrap_or(false)
    }

    pub(crate) fn record(&self, e: Event) {
        if let Ok(mut slot) = self.trace.try_borrow_mut() {
            if let Some((trace, cap)) = slot.as_mut() {
                if trace.events.len() < *cap {
                    trace.events.push(e);
                } else {
                    trace.dropped += 1;
                }
            }
        }
    }

    pub(crate) fn name_task(&self, id: u32, name: String) {
        if let Ok(mut slot) = self.trace.try_borrow_mut() {
            if let Some((trace, _)) = slot.as_mut() {
                trace.names.insert(id, name);
            }
        }
    }

    /// Turns the timing hooks on or off to match `measure` and the trace. Only
    /// `Loop::measure_polls`, `start_trace` and `stop_trace` call this, so only a program that
    /// calls one of them links the hooks (see [`TimingHooks`]).
    pub(crate) fn update_timing(&self) {
        let on = self.measure.get() || self.tracing();
        self.hooks.set(on.then_some(&HOOKS));
    }
}

/// Without feature `stats`: the same calls, doing nothing (inlined away), and never a hook.
#[cfg(not(feature = "stats"))]
impl Recorder {
    #[inline(always)]
    pub(crate) fn count_spawn(&self) {}
    #[inline(always)]
    pub(crate) fn count_poll(&self) {}
    #[inline(always)]
    pub(crate) fn count_sleep(&self) {}
    #[inline(always)]
    pub(crate) fn count_local_wake(&self, _local: &crate::raw::Local, _by: WokenBy) {}
    #[inline(always)]
    pub(crate) fn count_remote_wake(&self, _local: &crate::raw::Local, _isr: impl FnOnce() -> bool) {}
    #[inline(always)]
    pub(crate) fn local_wakes(&self) -> u64 {
        0
    }
    #[inline(always)]
    pub(crate) fn add_timer_wakes(&self, _n: u64) {}
    #[inline(always)]
    pub(crate) fn hooks(&self) -> Option<&'static TimingHooks> {
        None
    }
}

/// What the loop calls while poll timing is on, through one pointer that is `None` otherwise.
///
/// The loop's hot path names none of this code: it only tests `Recorder::hooks`. The table is
/// installed by `update_timing`, which only the methods that turn timing on call, so a
/// firmware that never measures or traces links none of it (the clock reads, the trace
/// buffer, the task names and their formatting: about 2 KiB of flash on Cortex-M).
pub(crate) struct TimingHooks {
    /// A task was created (`id`).
    pub(crate) spawned: fn(&LoopCore, u32),
    /// The loop woke after sleeping since `start` (µs).
    pub(crate) woke: fn(&LoopCore, u64),
    /// The loop is about to poll a task (the hook notes the time in `poll_started_us`, so
    /// the loop keeps nothing of it alive across the poll).
    pub(crate) poll_start: fn(&LoopCore),
    /// The poll that `poll_start` saw begin ended.
    pub(crate) polled: fn(&LoopCore, &TaskRef),
    /// A task finished.
    pub(crate) finished: fn(&LoopCore, &TaskRef),
}

#[cfg(feature = "stats")]
static HOOKS: TimingHooks = TimingHooks {
    spawned: |core, task| {
        core.stats.record(Event::Spawn {
            task,
            at: core.now_us(),
        })
    },
    woke: |core, start| {
        let slept = core.now_us().saturating_sub(start);
        let stats = &core.stats;
        stats.idle_us.set(stats.idle_us.get().wrapping_add(slept));
        stats.record(Event::Idle { start, dur: slept });
    },
    poll_start: |core| {
        if let Some(task) = core.current_task() {
            // SAFETY: the loop holds a reference to the task it is about to poll.
            let by = unsafe { task.as_ref() }.local.woken_by();
            core.stats.poll_woken_by.set(by);
        }
        core.stats.poll_started_us.set(Some(core.now_us()))
    },
    polled: |core, task| {
        let stats = &core.stats;
        let Some(start) = stats.poll_started_us.take() else {
            return;
        };
        let dur = core.now_us().saturating_sub(start);
        let local = task.local();
        if dur > stats.longest_poll_us.get() || stats.longest_poll_task.borrow().is_none() {
            stats.longest_poll_us.set(dur);
            *stats.longest_poll_task.borrow_mut() = Some((local.id, task.name_string()));
        }
        stats.record(Event::Slice {
            task: local.id,
            start,
            dur,
            woken_by: WokenBy::from_u8(stats.poll_woken_by.get()),
        });
    },
    finished: |core, task| {
        if core.stats.tracing() {
            let id = task.local().id;
            core.stats.record(Event::End {
                task: id,
                at: core.now_us(),
            });
            core.stats.name_task(id, task.name_string());
        }
    },
};
