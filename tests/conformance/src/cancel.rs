//! `Task.cancel()`, row by row of the table in `docs/SEMANTICS.md`.

use alloc::format;
use alloc::rc::Rc;

use uasyncio::{create_task, current_task, gather, run, sleep, sleep_ms, Error, Event, Lock};

use crate::{expect_eq, fresh_loop, Case, Log, Outcome};

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "cancel::done_task_returns_false",
        run: done_task_returns_false,
    },
    Case {
        name: "cancel::self_is_an_error",
        run: self_is_an_error,
    },
    Case {
        name: "cancel::never_started_body_never_runs",
        run: never_started_body_never_runs,
    },
    Case {
        name: "cancel::sleeping_task_wakes_at_once",
        run: sleeping_task_wakes_at_once,
    },
    Case {
        name: "cancel::already_ready_still_cancelled",
        run: already_ready_still_cancelled,
    },
    Case {
        name: "cancel::yielding_task_cancelled_at_its_yield",
        run: yielding_task_cancelled_at_its_yield,
    },
    Case {
        name: "cancel::event_waiter_leaves_queue_in_order",
        run: event_waiter_leaves_queue_in_order,
    },
    Case {
        name: "cancel::lock_waiter_passes_granted_lock_on",
        run: lock_waiter_passes_granted_lock_on,
    },
    Case {
        name: "cancel::forwarded_to_innermost_awaited_task",
        run: forwarded_to_innermost_awaited_task,
    },
    Case {
        name: "cancel::inner_swallows_outer_goes_on",
        run: inner_swallows_outer_goes_on,
    },
    Case {
        name: "cancel::inside_gather_cancels_subtasks",
        run: inside_gather_cancels_subtasks,
    },
    Case {
        name: "cancel::twice_before_it_runs_delivers_once",
        run: twice_before_it_runs_delivers_once,
    },
    Case {
        name: "cancel::main_task_of_run",
        run: main_task_of_run,
    },
    Case {
        name: "cancel::async_cleanup_then_return",
        run: async_cleanup_then_return,
    },
    Case {
        name: "cancel::awaiting_cancelled_task_gives_cancelled",
        run: awaiting_cancelled_task_gives_cancelled,
    },
];

fn done_task_returns_false() -> Outcome {
    fresh_loop();
    let out = run(async {
        let t = create_task(async { Ok(1) });
        sleep_ms(0).await?;
        let c = t.cancel();
        Ok((c, t.await))
    });
    expect_eq("cancel of a done task", out, Ok((Ok(false), Ok(1))))
}

fn self_is_an_error() -> Outcome {
    fresh_loop();
    let out = run(async { Ok(current_task()?.cancel()) });
    expect_eq("cancel self", out, Ok(Err(Error::runtime("can't cancel self"))))
}

fn never_started_body_never_runs() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    let out = run(async move {
        let l2 = l.clone();
        let t = create_task(async move {
            l2.put("body ran");
            Ok(())
        });
        let c = t.cancel()?;
        Ok((c, t.await))
    });
    expect_eq("outcome", out, Ok((true, Err(Error::Cancelled))))?;
    log.expect(&[])
}

fn sleeping_task_wakes_at_once() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let l2 = l.clone();
        let t = create_task(async move {
            let r = sleep(3600.0).await;
            l2.at(format!("sleep -> {r:?}"));
            r
        });
        sleep_ms(10).await?;
        t.cancel()?;
        let r = t.await;
        l.at(format!("awaited -> {r:?}"));
        Ok(())
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&["10 sleep -> Err(Cancelled)", "10 awaited -> Err(Cancelled)"])
}

fn already_ready_still_cancelled() -> Outcome {
    fresh_loop();
    let out = run(async {
        let ev = Rc::new(Event::new());
        let e2 = ev.clone();
        let t = create_task(async move { e2.wait().await });
        sleep_ms(1).await?;
        ev.set(); // t is ready now...
        t.cancel()?; // ...and cancelled before it runs
        Ok(t.await)
    });
    expect_eq("outcome", out, Ok(Err(Error::Cancelled)))
}

/// A task that yielded (`sleep(0)`) is in the run queue when it is cancelled: the
/// `CancelledError` comes out of that `sleep(0)`, before its loop goes round again.
fn yielding_task_cancelled_at_its_yield() -> Outcome {
    fresh_loop();
    let out = run(async {
        let spins = Rc::new(core::cell::Cell::new(0u32));
        let s2 = spins.clone();
        let t = create_task(async move {
            loop {
                s2.set(s2.get() + 1);
                sleep_ms(0).await?;
            }
        });
        sleep_ms(0).await?; // t ran once and yielded: it is queued again, behind us
        let before = spins.get();
        t.cancel()?;
        let r: Result<(), Error> = t.await;
        Ok((before, spins.get(), r))
    });
    expect_eq(
        "spins before and after the cancel, outcome",
        out,
        Ok((1, 1, Err(Error::Cancelled))),
    )
}

fn event_waiter_leaves_queue_in_order() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let ev = Rc::new(Event::new());
        let mut tasks = alloc::vec::Vec::new();
        for name in ["a", "b", "c", "d"] {
            let (ev, l) = (ev.clone(), l.clone());
            tasks.push(create_task(async move {
                let r = ev.wait().await;
                l.put(format!("{name} {r:?}"));
                r
            }));
        }
        sleep_ms(1).await?;
        tasks[1].cancel()?;
        sleep_ms(1).await?;
        ev.set();
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&["b Err(Cancelled)", "a Ok(())", "c Ok(())", "d Ok(())"])
}

fn lock_waiter_passes_granted_lock_on() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let lock = Rc::new(Lock::new());
        let guard = lock.acquire().await?;
        let mk = |name: &'static str, lock: Rc<Lock>, l: Log| async move {
            match lock.acquire().await {
                Ok(_g) => {
                    l.put(format!("{name} got the lock"));
                    Ok(())
                }
                Err(e) => {
                    l.put(format!("{name} {e}"));
                    Err(e)
                }
            }
        };
        let a = create_task(mk("a", lock.clone(), l.clone()));
        let b = create_task(mk("b", lock.clone(), l.clone()));
        sleep_ms(1).await?;
        drop(guard); // hands the lock to a...
        l.put(format!("locked during hand-off: {}", lock.locked()));
        a.cancel()?; // ...which is cancelled before it runs: b must get it
        let _ = a.await;
        b.await?;
        l.put(format!("locked at the end: {}", lock.locked()));
        Ok(())
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&[
        "locked during hand-off: false",
        "a CancelledError",
        "b got the lock",
        "locked at the end: false",
    ])
}

fn forwarded_to_innermost_awaited_task() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let l1 = l.clone();
        let outer = create_task(async move {
            let l2 = l1.clone();
            let inner = create_task(async move {
                let r = sleep(100.0).await;
                l2.at(format!("inner sleep -> {r:?}"));
                r?;
                Ok(1)
            });
            let r = inner.await;
            l1.at(format!("outer await -> {r:?}"));
            r
        });
        sleep_ms(5).await?;
        l.at(format!("cancel -> {:?}", outer.cancel()));
        let r = outer.await;
        l.at(format!("main -> {r:?}"));
        Ok(())
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&[
        "5 cancel -> Ok(true)",
        "5 inner sleep -> Err(Cancelled)",
        "5 outer await -> Err(Cancelled)",
        "5 main -> Err(Cancelled)",
    ])
}

fn inner_swallows_outer_goes_on() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    let out = run(async move {
        let l1 = l.clone();
        let outer = create_task(async move {
            let inner = create_task(async move {
                if sleep(100.0).await.is_err() {
                    sleep_ms(3).await?; // swallow, clean up, return a value
                    return Ok(5);
                }
                Ok(0)
            });
            let v = inner.await?;
            l1.at(format!("outer got {v}"));
            sleep_ms(2).await?; // not sticky: the outer goes on normally
            Ok(v * 2)
        });
        sleep_ms(5).await?;
        outer.cancel()?;
        outer.await
    });
    expect_eq("outer result", out, Ok(10))?;
    log.expect(&["8 outer got 5"])
}

fn inside_gather_cancels_subtasks() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let l1 = l.clone();
        let gatherer = create_task(async move {
            let subs = (0..3).map(|i| {
                let l = l1.clone();
                async move {
                    let r = sleep_ms(100 + i).await;
                    l.at(format!("sub {i} -> {r:?}"));
                    r
                }
            });
            let r = gather(subs).await;
            l1.at(format!("gather -> {r:?}"));
            r
        });
        sleep_ms(10).await?;
        gatherer.cancel()?;
        let _ = gatherer.await;
        sleep_ms(1).await
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&[
        "10 gather -> Err(Cancelled)",
        "10 sub 0 -> Err(Cancelled)",
        "10 sub 1 -> Err(Cancelled)",
        "10 sub 2 -> Err(Cancelled)",
    ])
}

fn twice_before_it_runs_delivers_once() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    let out = run(async move {
        let l1 = l.clone();
        let t = create_task(async move {
            let first = sleep(100.0).await;
            l1.at(format!("first -> {first:?}"));
            let second = sleep_ms(5).await;
            l1.at(format!("second -> {second:?}"));
            Ok(())
        });
        sleep_ms(1).await?;
        let c1 = t.cancel()?;
        let c2 = t.cancel()?;
        t.await?;
        Ok((c1, c2))
    });
    expect_eq("both cancels", out, Ok((true, true)))?;
    log.expect(&["1 first -> Err(Cancelled)", "6 second -> Ok(())"])
}

fn main_task_of_run() -> Outcome {
    fresh_loop();
    let out = run(async {
        let me = current_task()?;
        create_task(async move {
            sleep_ms(1).await?;
            me.cancel()
        });
        sleep(10.0).await?;
        Ok("not cancelled")
    });
    expect_eq("run()", out, Err(Error::Cancelled))
}

fn async_cleanup_then_return() -> Outcome {
    fresh_loop();
    let out = run(async {
        let t = create_task(async {
            match sleep(10.0).await {
                Err(Error::Cancelled) => {
                    sleep_ms(20).await?; // async cleanup after the cancel
                    Err(Error::Cancelled)
                }
                other => other,
            }
        });
        sleep_ms(5).await?;
        t.cancel()?;
        let r = t.await;
        Ok((uasyncio::ticks_ms(), r))
    });
    expect_eq(
        "cleanup ran before the task ended",
        out,
        Ok((25, Err(Error::Cancelled))),
    )
}

fn awaiting_cancelled_task_gives_cancelled() -> Outcome {
    fresh_loop();
    let out = run(async {
        let t = create_task(async { sleep(10.0).await });
        let r = t.task_ref();
        create_task(async move {
            sleep_ms(1).await?;
            r.cancel()
        });
        Ok(t.await)
    });
    expect_eq("awaited", out, Ok(Err(Error::Cancelled)))
}
