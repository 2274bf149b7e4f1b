//! The loop: run, run_forever/stop, run_until_complete, new_event_loop, the exception
//! handler and its context, current_task, and misuse errors.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use critical_section::Mutex;
use uasyncio::{create_task, current_task, get_event_loop, run, sleep, sleep_ms, Error, ExceptionContext, Loop};

use crate::{expect_eq, fresh_loop, Case, Log, Outcome};

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "loop::run_returns_main_output",
        run: run_returns_main_output,
    },
    Case {
        name: "loop::run_leaves_pending_tasks_for_next_run",
        run: run_leaves_pending_tasks_for_next_run,
    },
    Case {
        name: "loop::run_forever_until_stop",
        run: run_forever_until_stop,
    },
    Case {
        name: "loop::stop_after_ready_tasks_run",
        run: stop_after_ready_tasks_run,
    },
    Case {
        name: "loop::stop_leaves_tasks_made_ready_later_waiting",
        run: stop_leaves_tasks_made_ready_later_waiting,
    },
    Case {
        name: "loop::stop_inside_run_does_nothing",
        run: stop_inside_run_does_nothing,
    },
    Case {
        name: "loop::run_forever_returns_when_no_task_is_left",
        run: run_forever_returns_when_no_task_is_left,
    },
    Case {
        name: "loop::run_until_complete_leaves_others_queued",
        run: run_until_complete_leaves_others_queued,
    },
    Case {
        name: "loop::unretrieved_error_reaches_handler_one_pass_later",
        run: unretrieved_error_reaches_handler,
    },
    Case {
        name: "loop::awaited_error_is_not_reported",
        run: awaited_error_is_not_reported,
    },
    Case {
        name: "loop::cancelled_task_is_not_reported",
        run: cancelled_task_is_not_reported,
    },
    Case {
        name: "loop::handler_get_set_call",
        run: handler_get_set_call,
    },
    Case {
        name: "loop::current_task_outside_a_task",
        run: current_task_outside_a_task,
    },
    Case {
        name: "loop::current_task_inside",
        run: current_task_inside,
    },
    Case {
        name: "loop::run_while_running_is_an_error",
        run: run_while_running_is_an_error,
    },
    Case {
        name: "loop::new_event_loop_while_running_is_an_error",
        run: new_event_loop_while_running,
    },
    Case {
        name: "loop::close",
        run: close,
    },
    Case {
        name: "loop::await_self_is_an_error",
        run: await_self_is_an_error,
    },
    Case {
        name: "loop::sleep_rounding_and_negative",
        run: sleep_rounding_and_negative,
    },
    Case {
        name: "loop::fifo_among_equal_deadlines",
        run: fifo_among_equal_deadlines,
    },
    Case {
        name: "loop::sleep_zero_yields_round_robin",
        run: sleep_zero_yields_round_robin,
    },
    Case {
        name: "loop::many_sleepers_fire_in_deadline_order",
        run: many_sleepers_fire_in_deadline_order,
    },
];

/// A log the exception handler (a plain `fn`) can write to: a static, guarded by a
/// critical section.
pub(crate) struct HandlerLog(Mutex<RefCell<Vec<String>>>);

impl HandlerLog {
    pub(crate) const fn new() -> Self {
        HandlerLog(Mutex::new(RefCell::new(Vec::new())))
    }
    pub(crate) fn push(&self, line: String) {
        critical_section::with(|cs| self.0.borrow(cs).borrow_mut().push(line));
    }
    pub(crate) fn take(&self) -> Vec<String> {
        critical_section::with(|cs| core::mem::take(&mut *self.0.borrow(cs).borrow_mut()))
    }
    pub(crate) fn clear(&self) {
        self.take();
    }
    pub(crate) fn len(&self) -> usize {
        critical_section::with(|cs| self.0.borrow(cs).borrow().len())
    }
}

static REPORTS: HandlerLog = HandlerLog::new();

fn recording_handler(_lp: &Loop, ctx: &ExceptionContext) {
    REPORTS.push(format!(
        "{} {} | {} | {}",
        uasyncio::ticks_ms(),
        ctx.message,
        ctx.exception.as_ref().map(|e| format!("{e}")).unwrap_or_default(),
        ctx.future
            .as_ref()
            .map(|t| format!("task done={}", t.done()))
            .unwrap_or_default()
    ));
}

fn run_returns_main_output() -> Outcome {
    fresh_loop();
    expect_eq("run output", run(async { Ok(7) }), Ok(7))?;
    expect_eq(
        "run error",
        run(async { Err::<(), _>(Error::Os(104)) }),
        Err(Error::Os(104)),
    )
}

fn run_leaves_pending_tasks_for_next_run() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        create_task(async move {
            sleep_ms(20).await?;
            l.at("leftover ran");
            Ok(())
        });
        sleep_ms(10).await
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&[])?;
    run(async { sleep_ms(30).await }).map_err(|e| format!("{e}"))?;
    log.expect(&["20 leftover ran"])
}

fn run_forever_until_stop() -> Outcome {
    let lp = fresh_loop();
    let log = Log::new();
    let l = log.clone();
    lp.create_task(async move {
        for i in 0..3 {
            l.at(format!("tick {i}"));
            sleep_ms(100).await?;
        }
        get_event_loop().stop();
        l.at("stopped");
        sleep_ms(100).await?;
        l.at("resumed");
        Ok(())
    });
    lp.run_forever().map_err(|e| format!("{e}"))?;
    log.expect(&["0 tick 0", "100 tick 1", "200 tick 2", "300 stopped"])?;
    // The pending task continues on the next run_forever().
    lp.run_forever().map_err(|e| format!("{e}"))?;
    log.expect(&["0 tick 0", "100 tick 1", "200 tick 2", "300 stopped", "400 resumed"])
}

/// `stop()` takes effect after the tasks already ready run; tasks made ready later wait.
fn stop_after_ready_tasks_run() -> Outcome {
    let lp = fresh_loop();
    let log = Log::new();
    for name in ["a", "b"] {
        let l = log.clone();
        lp.create_task(async move {
            l.put(format!("{name} 1"));
            sleep_ms(0).await?;
            l.put(format!("{name} 2"));
            Ok(())
        });
    }
    spawn_stopper(&lp, &log);
    lp.run_forever().map_err(|e| format!("{e}"))?;
    log.expect(&["a 1", "b 1", "stopper", "a 2", "b 2"])
}

/// A task that logs "stopper" and calls `stop()`.
fn spawn_stopper(lp: &Loop, log: &Log) {
    let l = log.clone();
    lp.create_task(async move {
        l.put("stopper");
        get_event_loop().stop();
        Ok(())
    });
}

/// `stop()` lets the tasks ready when it was called run once more, not the ones they make
/// ready: a task that keeps yielding does not keep the loop running (MicroPython: `stop()`
/// queues the loop's stop task behind the ready ones). The next `run_forever()` goes on.
fn stop_leaves_tasks_made_ready_later_waiting() -> Outcome {
    let lp = fresh_loop();
    let log = Log::new();
    let l = log.clone();
    lp.create_task(async move {
        for i in 0..4 {
            l.put(format!("spin {i}"));
            sleep_ms(0).await?;
        }
        Ok(())
    });
    spawn_stopper(&lp, &log);
    lp.run_forever().map_err(|e| format!("{e}"))?;
    log.expect(&["spin 0", "stopper", "spin 1"])?;
    lp.run_forever().map_err(|e| format!("{e}"))?;
    log.expect(&["spin 0", "stopper", "spin 1", "spin 2", "spin 3"])
}

/// `stop()` inside `run()` changes nothing, since only `run_forever()` makes the stop task it
/// queues: main goes on to its end and `run()` returns its output. Called from a task and
/// from the exception handler, as the vendor document's handler example would ("loop.stop()
/// does not work when used this way"; `seeds::global_exception_handler` runs that example).
fn stop_inside_run_does_nothing() -> Outcome {
    fn stopping_handler(lp: &Loop, ctx: &ExceptionContext) {
        recording_handler(lp, ctx);
        lp.stop();
    }
    let lp = fresh_loop();
    REPORTS.clear();
    lp.set_exception_handler(Some(stopping_handler));
    let log = Log::new();
    let l = log.clone();
    let out = run(async move {
        get_event_loop().stop();
        sleep_ms(0).await?;
        l.at("after stop()");
        create_task(async { Err::<(), _>(Error::value("boom")) });
        sleep_ms(100).await?; // the handler, which calls stop(), runs meanwhile
        l.at(format!("after the handler ({} report)", REPORTS.len()));
        Ok(7)
    });
    expect_eq("run's outcome", out, Ok(7))?;
    log.expect(&["0 after stop()", "100 after the handler (1 report)"])
}

fn run_forever_returns_when_no_task_is_left() -> Outcome {
    let lp = fresh_loop();
    lp.create_task(async { sleep_ms(5).await });
    lp.run_forever().map_err(|e| format!("{e}"))?;
    expect_eq("time", uasyncio::ticks_ms(), 5)
}

fn run_until_complete_leaves_others_queued() -> Outcome {
    let lp = fresh_loop();
    let log = Log::new();
    let l = log.clone();
    lp.create_task(async move {
        l.put("other 1");
        sleep_ms(0).await?;
        l.put("other 2");
        Ok(())
    });
    let l = log.clone();
    let out = lp.run_until_complete(async move {
        l.put("main");
        Ok(5)
    });
    expect_eq("output", out, Ok(5))?;
    log.expect(&["other 1", "main"])?;
    lp.run_forever().map_err(|e| format!("{e}"))?;
    log.expect(&["other 1", "main", "other 2"])
}

fn unretrieved_error_reaches_handler() -> Outcome {
    let lp = fresh_loop();
    REPORTS.clear();
    lp.set_exception_handler(Some(recording_handler));
    let log = Log::new();
    let l = log.clone();
    run(async move {
        create_task(async { Err::<(), _>(Error::value("boom")) });
        for pass in 1..=3 {
            l.put(format!("pass {pass}: {} reports", REPORTS.len()));
            sleep_ms(0).await?;
        }
        Ok(())
    })
    .map_err(|e| format!("{e}"))?;
    // The task dies in pass 1; the report comes one pass later, after main's pass 2.
    log.expect(&["pass 1: 0 reports", "pass 2: 0 reports", "pass 3: 1 reports"])?;
    expect_eq(
        "report",
        REPORTS.take(),
        alloc::vec![String::from(
            "0 Task exception wasn't retrieved | ValueError: boom | task done=true"
        )],
    )
}

fn awaited_error_is_not_reported() -> Outcome {
    let lp = fresh_loop();
    REPORTS.clear();
    lp.set_exception_handler(Some(recording_handler));
    let out = run(async {
        let t = create_task(async { Err::<(), _>(Error::value("boom")) });
        sleep_ms(0).await?; // t dies now...
        Ok(t.await) // ...and is awaited before its report pass
    });
    expect_eq("awaited error", out, Ok(Err(Error::value("boom"))))?;
    run(async { sleep_ms(1).await }).map_err(|e| format!("{e}"))?;
    expect_eq("reports", REPORTS.take().len(), 0)
}

fn cancelled_task_is_not_reported() -> Outcome {
    let lp = fresh_loop();
    REPORTS.clear();
    lp.set_exception_handler(Some(recording_handler));
    run(async {
        let t = create_task(async { sleep(10.0).await });
        sleep_ms(1).await?;
        t.cancel()?;
        sleep_ms(1).await
    })
    .map_err(|e| format!("{e}"))?;
    expect_eq("reports", REPORTS.take().len(), 0)
}

fn handler_get_set_call() -> Outcome {
    let lp = fresh_loop();
    REPORTS.clear();
    expect_eq("default handler", lp.get_exception_handler().is_none(), true)?;
    lp.set_exception_handler(Some(recording_handler));
    expect_eq("custom handler", lp.get_exception_handler().is_some(), true)?;
    lp.call_exception_handler(&ExceptionContext::new("custom").with_exception(Error::Timeout));
    expect_eq(
        "reports",
        REPORTS.take(),
        alloc::vec![String::from("0 custom | TimeoutError | ")],
    )?;
    // The default handler logs and never panics, with or without a task.
    lp.default_exception_handler(&ExceptionContext::new("default"));
    lp.set_exception_handler(None);
    expect_eq("reset to default", lp.get_exception_handler().is_none(), true)
}

fn current_task_outside_a_task() -> Outcome {
    fresh_loop();
    expect_eq(
        "current_task()",
        current_task().err(),
        Some(Error::runtime("no running event loop")),
    )
}

fn current_task_inside() -> Outcome {
    fresh_loop();
    let out = run(async {
        let t = create_task(async { current_task() });
        let id = t.task_ref();
        let seen = t.await?;
        Ok(seen == id)
    });
    expect_eq("current_task() is the task", out, Ok(true))
}

fn run_while_running_is_an_error() -> Outcome {
    fresh_loop();
    let out = run(async { Ok(get_event_loop().run_forever()) });
    expect_eq(
        "run_forever inside",
        out,
        Ok(Err(Error::runtime("event loop already running"))),
    )
}

fn new_event_loop_while_running() -> Outcome {
    fresh_loop();
    let out = run(async { Ok(uasyncio::new_event_loop().map(|_| ())) });
    expect_eq(
        "new_event_loop inside",
        out,
        Ok(Err(Error::runtime("can't reset a running event loop"))),
    )
}

fn close() -> Outcome {
    let lp = fresh_loop();
    let out = run(async { Ok(get_event_loop().close()) });
    expect_eq(
        "close inside",
        out,
        Ok(Err(Error::runtime("can't close a running event loop"))),
    )?;
    expect_eq("close outside", lp.close(), Ok(()))
}

fn await_self_is_an_error() -> Outcome {
    fresh_loop();
    let out = run(async {
        let slot = alloc::rc::Rc::new(RefCell::new(None::<uasyncio::Task<()>>));
        let s = slot.clone();
        let t = create_task(async move {
            sleep_ms(1).await?;
            let me = s.borrow_mut().take();
            match me {
                Some(me) => me.await,
                None => Err(Error::runtime("no handle")),
            }
        });
        let probe = t.task_ref();
        *slot.borrow_mut() = Some(t);
        sleep_ms(2).await?;
        Ok(probe.done())
    });
    expect_eq("task that awaited itself finished", out, Ok(true))
}

fn sleep_rounding_and_negative() -> Outcome {
    fresh_loop();
    let out = run(async {
        sleep(0.0015).await?; // int(1.5) = 1 ms
        let a = uasyncio::ticks_ms();
        sleep(-3.0).await?; // negative is 0
        let b = uasyncio::ticks_ms();
        sleep(f32::NAN).await?;
        Ok((a, b))
    });
    expect_eq("times", out, Ok((1, 1)))
}

fn fifo_among_equal_deadlines() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let mut tasks = Vec::new();
        for name in ["a", "b", "c", "d"] {
            let l = l.clone();
            tasks.push(create_task(async move {
                sleep_ms(10).await?;
                l.at(name);
                Ok(())
            }));
        }
        for t in tasks {
            t.await?;
        }
        Ok(())
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&["10 a", "10 b", "10 c", "10 d"])
}

fn sleep_zero_yields_round_robin() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let mk = |name: &'static str, l: Log| async move {
            for i in 0..3 {
                l.put(format!("{name}{i}"));
                sleep_ms(0).await?;
            }
            Ok(())
        };
        let a = create_task(mk("a", l.clone()));
        let b = create_task(mk("b", l.clone()));
        a.await?;
        b.await
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&["a0", "b0", "a1", "b1", "a2", "b2"])
}

/// 10,000 concurrent sleepers with scattered deadlines fire in deadline order.
fn many_sleepers_fire_in_deadline_order() -> Outcome {
    fresh_loop();
    let order = alloc::rc::Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    run(async move {
        let mut seed: u32 = 12345;
        for i in 0..crate::scaled(10_000) {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let ms = (seed >> 8) % 1000;
            let o = o.clone();
            create_task(async move {
                sleep_ms(ms).await?;
                o.borrow_mut().push((uasyncio::ticks_ms(), ms, i));
                Ok(())
            });
        }
        sleep_ms(1001).await
    })
    .map_err(|e| format!("{e}"))?;
    let order = order.borrow();
    expect_eq("fired", order.len(), crate::scaled(10_000) as usize)?;
    for w in order.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a.1, a.2) > (b.1, b.2) {
            return Err(format!("out of order: {a:?} before {b:?}"));
        }
    }
    match order.iter().find(|(t, ms, _)| *t != u64::from(*ms)) {
        Some(late) => Err(format!("fired at the wrong time: {late:?}")),
        None => Ok(()),
    }
}
