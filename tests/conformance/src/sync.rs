//! `Event`, `ThreadSafeFlag` and `Lock`, case by case.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use uasyncio::{create_task, run, sleep_ms, wait_for_ms, Error, Event, Lock, ThreadSafeFlag};

use crate::{expect_eq, fresh_loop, Case, Log, Outcome};

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "event::set_wakes_all_in_order",
        run: set_wakes_all_in_order,
    },
    Case {
        name: "event::wait_on_set_event_does_not_yield",
        run: wait_on_set_event_does_not_yield,
    },
    Case {
        name: "event::clear_after_set_still_wakes_waiters",
        run: clear_after_set_still_wakes_waiters,
    },
    Case {
        name: "flag::sets_collapse_and_wait_clears",
        run: sets_collapse_and_wait_clears,
    },
    Case {
        name: "flag::second_waiter_is_an_error",
        run: second_waiter_is_an_error,
    },
    Case {
        name: "flag::clear_discards_an_earlier_set",
        run: clear_discards_an_earlier_set,
    },
    Case {
        name: "flag::cancelled_waiter_keeps_the_flag",
        run: cancelled_waiter_keeps_the_flag,
    },
    Case {
        name: "flag::thread_set_wakes_task",
        run: thread_set_wakes_task,
    },
    Case {
        name: "lock::fifo_handoff_no_barging",
        run: fifo_handoff_no_barging,
    },
    Case {
        name: "lock::release_unlocked_is_an_error",
        run: release_unlocked_is_an_error,
    },
    Case {
        name: "lock::guard_and_explicit_release",
        run: guard_and_explicit_release,
    },
];

fn set_wakes_all_in_order() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let ev = Rc::new(Event::new());
        let mut tasks = Vec::new();
        for name in ["a", "b", "c"] {
            let (ev, l) = (ev.clone(), l.clone());
            tasks.push(create_task(async move {
                ev.wait().await?;
                l.at(name);
                Ok(())
            }));
        }
        sleep_ms(7).await?;
        l.at(format!("set, is_set was {}", ev.is_set()));
        ev.set();
        for t in tasks {
            t.await?;
        }
        l.at(format!("is_set {}", ev.is_set()));
        Ok(())
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&["7 set, is_set was false", "7 a", "7 b", "7 c", "7 is_set true"])
}

fn wait_on_set_event_does_not_yield() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let ev = Event::new();
        ev.set();
        let l1 = l.clone();
        create_task(async move {
            l1.put("other");
            Ok(())
        });
        ev.wait().await?;
        l.put("waited");
        sleep_ms(0).await
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&["waited", "other"])
}

fn clear_after_set_still_wakes_waiters() -> Outcome {
    fresh_loop();
    let out = run(async {
        let ev = Rc::new(Event::new());
        let e2 = ev.clone();
        let t = create_task(async move { e2.wait().await });
        sleep_ms(1).await?;
        ev.set();
        ev.clear();
        let r = wait_for_ms(t, 10).await;
        Ok((r, ev.is_set()))
    });
    expect_eq("waiter", out, Ok((Ok(()), false)))
}

fn sets_collapse_and_wait_clears() -> Outcome {
    fresh_loop();
    let out = run(async {
        let flag = Rc::new(ThreadSafeFlag::new());
        flag.set();
        flag.set();
        flag.set();
        flag.wait().await?; // returns at once
        let cleared = !flag.is_set();
        let f2 = flag.clone();
        let second = wait_for_ms(async move { f2.wait().await }, 10).await;
        Ok((cleared, second))
    });
    expect_eq("outcome", out, Ok((true, Err(Error::Timeout))))
}

fn second_waiter_is_an_error() -> Outcome {
    fresh_loop();
    let out = run(async {
        let flag = Rc::new(ThreadSafeFlag::new());
        let f1 = flag.clone();
        let first = create_task(async move { f1.wait().await });
        sleep_ms(1).await?;
        let second = flag.wait().await;
        flag.set();
        Ok((second, first.await))
    });
    expect_eq(
        "outcome",
        out,
        Ok((Err(Error::runtime("ThreadSafeFlag already has a waiting task")), Ok(()))),
    )
}

fn clear_discards_an_earlier_set() -> Outcome {
    fresh_loop();
    let out = run(async {
        let flag = Rc::new(ThreadSafeFlag::new());
        flag.set();
        flag.clear();
        let f = flag.clone();
        Ok(wait_for_ms(async move { f.wait().await }, 5).await)
    });
    expect_eq("outcome", out, Ok(Err(Error::Timeout)))
}

fn cancelled_waiter_keeps_the_flag() -> Outcome {
    fresh_loop();
    let out = run(async {
        let flag = Rc::new(ThreadSafeFlag::new());
        let f = flag.clone();
        let t = create_task(async move { f.wait().await });
        sleep_ms(1).await?;
        flag.set();
        t.cancel()?; // ready, but cancelled before it runs: the set stays
        let r = t.await;
        let still_set = flag.is_set();
        flag.wait().await?; // a new waiter may wait, and consumes it
        Ok((r, still_set))
    });
    expect_eq("outcome", out, Ok((Err(Error::Cancelled), true)))
}

/// Another thread sets the flag 1,000 times; each set is acknowledged before the next, so
/// none may be lost. Real clock (another thread is involved).
fn thread_set_wakes_task() -> Outcome {
    let lp = fresh_loop();
    lp.use_virtual_time(false);
    static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
    let rounds = crate::scaled(1000);
    let acked = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (a, s) = (acked.clone(), stop.clone());
    rtos_shims::spawn_thread(
        rtos_shims::ThreadConfig {
            name: "setter",
            stack_size: 16 * 1024,
            priority: 2,
        },
        Box::new(move || {
            for i in 0..rounds {
                FLAG.set();
                while a.load(Ordering::Acquire) == i && !s.load(Ordering::Acquire) {
                    core::hint::spin_loop();
                }
            }
        }),
    )
    .map_err(|e| format!("spawn: {e}"))?;
    let out = run(async move {
        for i in 0..rounds {
            let r = wait_for_ms(FLAG.wait(), 5_000).await;
            if r.is_err() {
                return Ok(Err(format!("round {i}: {r:?}")));
            }
            acked.store(i + 1, Ordering::Release);
        }
        Ok(Ok(()))
    });
    stop.store(true, Ordering::Release);
    lp.use_virtual_time(true);
    match out {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(format!("run: {e}")),
    }
}

fn fifo_handoff_no_barging() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let lock = Rc::new(Lock::new());
        let guard = lock.acquire().await?;
        let mut tasks = Vec::new();
        for name in ["a", "b"] {
            let (lock, l) = (lock.clone(), l.clone());
            tasks.push(create_task(async move {
                let _g = lock.acquire().await?;
                l.put(format!("{name} has it"));
                sleep_ms(1).await
            }));
        }
        sleep_ms(1).await?;
        drop(guard); // hand-off to a; main asks again at once and must queue behind b
        l.put(format!("locked during hand-off: {}", lock.locked()));
        let _g = lock.acquire().await?;
        l.put("main has it again");
        for t in tasks {
            t.await?;
        }
        Ok(())
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&[
        "locked during hand-off: false",
        "a has it",
        "b has it",
        "main has it again",
    ])
}

fn release_unlocked_is_an_error() -> Outcome {
    fresh_loop();
    let lock = Lock::new();
    expect_eq("release", lock.release(), Err(Error::runtime("Lock not acquired")))
}

fn guard_and_explicit_release() -> Outcome {
    fresh_loop();
    let out = run(async {
        let lock = Rc::new(Lock::new());
        let g = lock.acquire().await?;
        lock.release()?; // explicit release...
        let l2 = lock.clone();
        let other = create_task(async move {
            let _g = l2.acquire().await?;
            sleep_ms(5).await?;
            Ok(l2.locked())
        });
        sleep_ms(1).await?;
        drop(g); // ...so the old guard must not release the other task's hold
        let still_locked = lock.locked();
        let inside = other.await?;
        Ok((still_locked, inside, lock.locked()))
    });
    expect_eq("locked states", out, Ok((true, true, false)))
}
