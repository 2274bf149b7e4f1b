//! The examples of the two seed documents, run as written (fake LEDs, prints into a log).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use uasyncio::{create_task, get_event_loop, run, sleep, sleep_ms, wait_for, Error, Lock, Result};

use crate::{expect_eq, fresh_loop, Case, Log, Outcome};

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "seeds::blink_two_leds",
        run: blink_two_leds,
    },
    Case {
        name: "seeds::bar_instances",
        run: bar_instances,
    },
    Case {
        name: "seeds::cancel_wait_for_task",
        run: cancel_wait_for_task,
    },
    Case {
        name: "seeds::wait_for_timeout",
        run: wait_for_timeout,
    },
    Case {
        name: "seeds::nested_run_is_an_error",
        run: nested_run_is_an_error,
    },
    Case {
        name: "seeds::gather_return_exceptions",
        run: gather_return_exceptions,
    },
    Case {
        name: "seeds::lock_three_tasks",
        run: lock_three_tasks,
    },
    Case {
        name: "seeds::global_exception_handler",
        run: global_exception_handler,
    },
    Case {
        name: "seeds::new_event_loop_clears_state",
        run: new_event_loop_clears_state,
    },
];

/// A fake LED that logs its state changes.
#[derive(Clone)]
struct Led {
    name: &'static str,
    log: Log,
}

impl Led {
    fn on(&self) {
        self.log.at(format!("{} on", self.name));
    }
    fn off(&self) {
        self.log.at(format!("{} off", self.name));
    }
}

async fn blink(led: Led, period_ms: u32) -> Result<()> {
    loop {
        led.on();
        sleep_ms(5).await?;
        led.off();
        sleep_ms(period_ms).await?;
    }
}

/// The first example of the MicroPython reference: two LEDs, 700 and 400 ms, for 10 s.
fn blink_two_leds() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let (led1, led2) = (
        Led {
            name: "LED1",
            log: log.clone(),
        },
        Led {
            name: "LED2",
            log: log.clone(),
        },
    );
    run(async move {
        create_task(blink(led1, 700));
        create_task(blink(led2, 400));
        sleep_ms(10_000).await
    })
    .map_err(|e| format!("run: {e}"))?;
    // The same schedule computed independently: LED k is on at t, off at t+5, on again at
    // t+5+period; LED1 before LED2 at equal times (it was created first).
    let mut want: Vec<(u64, usize, String)> = Vec::new();
    for (idx, (name, period)) in [("LED1", 700u64), ("LED2", 400u64)].into_iter().enumerate() {
        let mut t = 0;
        while t < 10_000 {
            want.push((t, idx, format!("{t} {name} on")));
            if t + 5 < 10_000 {
                want.push((t + 5, idx, format!("{} {name} off", t + 5)));
            }
            t += 5 + period;
        }
    }
    want.sort_by_key(|(t, idx, _)| (*t, *idx));
    let want: Vec<&str> = want.iter().map(|(_, _, s)| s.as_str()).collect();
    log.expect(&want)?;
    expect_eq("blink tasks still alive after run()", get_event_loop().live_tasks(), 2)
}

async fn bar(log: Log, x: u32) -> Result<()> {
    let mut count = 0;
    loop {
        count += 1;
        log.at(format!("Instance: {x} count: {count}"));
        sleep(2.0).await?;
        log.at(format!("sleep count instance = {x} count = {count}"));
    }
}

/// The vendor document's `run(main())`: ten `bar` instances for 10 s.
fn bar_instances() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        for x in 0..10 {
            create_task(bar(l.clone(), x));
        }
        sleep(10.0).await
    })
    .map_err(|e| format!("run: {e}"))?;
    let mut want = Vec::new();
    for x in 0..10 {
        want.push(format!("0 Instance: {x} count: 1"));
    }
    for round in 1..5u32 {
        for x in 0..10 {
            want.push(format!("{} sleep count instance = {x} count = {round}", round * 2000));
            want.push(format!("{} Instance: {x} count: {}", round * 2000, round + 1));
        }
    }
    // At 10 s main's deadline (set first) fires first, and run() returns at once.
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    log.expect(&want)
}

async fn cancellable_bar(log: Log, mut n: i32) -> Result<i32> {
    log.at("Start cancellable bar()");
    loop {
        if let Err(e) = sleep(1.0).await {
            log.at(format!("bar got {e} at n={n}"));
            return Err(e);
        }
        n += 1;
    }
}

/// The vendor document's cancel example: a `wait_for(bar(10), 7)` task cancelled at 5 s.
fn cancel_wait_for_task() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    let out = run(async move {
        let task = create_task(wait_for(cancellable_bar(l.clone(), 10), 7.0));
        let victim = task.task_ref();
        let l2 = l.clone();
        create_task(async move {
            sleep(5.0).await?;
            l2.at("About to cancel bar");
            victim.cancel()
        });
        let r = task.await;
        l.at(format!("task ended: {r:?}"));
        sleep(1.0).await?;
        Ok(r)
    })
    .map_err(|e| format!("run: {e}"))?;
    expect_eq("wait_for task outcome", out, Err(Error::Cancelled))?;
    log.expect(&[
        "0 Start cancellable bar()",
        "5000 About to cancel bar",
        // bar's own 5 s timer fired in the same pass, before the cancel reached it: n=15.
        "5000 bar got CancelledError at n=15",
        "5000 task ended: Err(Cancelled)",
    ])
}

/// The vendor document's wait_for example: `bar(10)` never ends, so after 7 s it is cancelled
/// and the caller gets `TimeoutError`.
fn wait_for_timeout() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let r = wait_for(cancellable_bar(l.clone(), 10), 7.0).await;
        l.at(format!("wait_for: {r:?}"));
        Ok(())
    })
    .map_err(|e| format!("run: {e}"))?;
    log.expect(&[
        "0 Start cancellable bar()",
        "7000 bar got CancelledError at n=16",
        "7000 wait_for: Err(Timeout)",
    ])
}

/// The vendor example calls `asyncio.run(task)` inside a running task: a clear error here.
fn nested_run_is_an_error() -> Outcome {
    fresh_loop();
    let out = run(async { Ok(run(async { Ok(1) })) }).map_err(|e| format!("outer run: {e}"))?;
    expect_eq("nested run()", out, Err(Error::runtime("event loop already running")))
}

/// The vendor document's gather example with `return_exceptions=True`.
fn gather_return_exceptions() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    let res = run(async move {
        let barking = |l: Log, n: i32| async move {
            l.at("Start barking");
            for _ in 0..6 {
                sleep(1.0).await?;
            }
            l.at("Done barking.");
            Ok(2 * n)
        };
        #[allow(clippy::disallowed_names)] // the seed names it `foo`
        let foo = |l: Log| async move {
            l.at("Start timeout coro foo()");
            loop {
                sleep(1.0).await?;
            }
        };
        let bar_task = create_task(cancellable_bar(l.clone(), 70));
        let victim = bar_task.task_ref();
        let l2 = l.clone();
        create_task(async move {
            sleep(5.0).await?;
            l2.at("About to cancel bar");
            victim.cancel()
        });
        let res = uasyncio::gather!(return_exceptions: bar_task, barking(l.clone(), 21), wait_for::<_, i32>(foo(l.clone()), 7.0))
            .await;
        l.at(format!("Result: {res:?}"));
        res
    })
    .map_err(|e| format!("run: {e}"))?;
    expect_eq(
        "gather outcomes",
        res,
        (Err(Error::Cancelled), Ok(42), Err::<i32, _>(Error::Timeout)),
    )?;
    log.expect(&[
        "0 Start cancellable bar()",
        "0 Start barking",
        "0 Start timeout coro foo()",
        "5000 About to cancel bar",
        "5000 bar got CancelledError at n=74",
        "6000 Done barking.",
        "7000 Result: Ok((Err(Cancelled), Ok(42), Err(Timeout)))",
    ])
}

/// The vendor document's Lock example: three tasks take turns, FIFO, for 10 s.
fn lock_three_tasks() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let lock = alloc::rc::Rc::new(Lock::new());
        for n in 1..4 {
            let (lock, l) = (lock.clone(), l.clone());
            create_task::<_, ()>(async move {
                loop {
                    let _guard = lock.acquire().await?;
                    l.at(format!("Acquired lock in task {n}"));
                    sleep(0.5).await?;
                }
            });
        }
        sleep(10.0).await
    })
    .map_err(|e| format!("run: {e}"))?;
    let want: Vec<String> = (0..20u64)
        .map(|k| format!("{} Acquired lock in task {}", k * 500, k % 3 + 1))
        .collect();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    log.expect(&want)
}

static HANDLER_LOG: crate::loop_api::HandlerLog = crate::loop_api::HandlerLog::new();

fn global_handler(_lp: &uasyncio::Loop, ctx: &uasyncio::ExceptionContext) {
    HANDLER_LOG.push(format!(
        "{} Global handler: {} / {}",
        uasyncio::ticks_ms(),
        ctx.message,
        ctx.exception.as_ref().map(|e| format!("{e}")).unwrap_or_default()
    ));
}

/// The vendor document's `set_exception_handler` example: a detached task divides by zero.
fn global_exception_handler() -> Outcome {
    fresh_loop();
    HANDLER_LOG.clear();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let lp = get_event_loop();
        lp.set_exception_handler(Some(global_handler));
        create_task(async {
            sleep(0.0).await?;
            Err::<(), _>(Error::value("division by zero"))
        });
        for _ in 0..5 {
            l.at("Working");
            sleep(0.5).await?;
        }
        Ok(())
    })
    .map_err(|e| format!("run: {e}"))?;
    for line in HANDLER_LOG.take() {
        log.put(line);
    }
    log.expect(&[
        "0 Working",
        "500 Working",
        "1000 Working",
        "1500 Working",
        "2000 Working",
        "0 Global handler: Task exception wasn't retrieved / ValueError: division by zero",
    ])
}

/// The vendor document's `new_event_loop()` in `finally`: retained state is cleared.
fn new_event_loop_clears_state() -> Outcome {
    fresh_loop();
    let leftover = run(async {
        let t = create_task(async {
            sleep(100.0).await?;
            Ok(1)
        });
        sleep(5.0).await?;
        Ok(t)
    })
    .map_err(|e| format!("run: {e}"))?;
    expect_eq("pending before reset", get_event_loop().live_tasks(), 1)?;
    uasyncio::new_event_loop().map_err(|e| format!("new_event_loop: {e}"))?;
    expect_eq("pending after reset", get_event_loop().live_tasks(), 0)?;
    expect_eq("dropped task is done", leftover.done(), true)?;
    let out = run(leftover);
    expect_eq(
        "awaiting a dropped task",
        out.map_err(|e| e.python_name()),
        Err("RuntimeError"),
    )
}
