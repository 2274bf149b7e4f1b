//! Stress: many tasks, many timers, cross-thread wake storms, cancel storms — with counts
//! checked and no leak (`diagnostics::allocated_task_cells` returns to zero).
//!
//! Sizes scale with `STRESS_SCALE` (a divisor; default 1, or 2000 under Miri): the sanitizer
//! run uses 20. Run in release for the full sizes: `cargo test --release -p uasyncio --test stress`.
//!
//! Not built under `--cfg loom`: these run real threads, outside any loom model (the loom models
//! are in the library's `loom_tests`).
#![cfg(not(loom))]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use uasyncio::{
    create_task, diagnostics, get_event_loop, new_event_loop, run, sleep_ms, wait_for_ms, Error, Event, Lock, Queue,
    TaskGroup, ThreadSafeFlag,
};

fn scaled(n: u32) -> u32 {
    let div: u32 = std::env::var("STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    (n / div.max(1)).max(1)
}

/// Tests in this file share the process-wide live-task counter: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn assert_no_live_tasks() {
    new_event_loop().unwrap();
    assert_eq!(diagnostics::allocated_task_cells(), 0, "task cells leaked");
}

#[test]
fn hundred_thousand_tasks_alive_at_once() {
    let _s = serial();
    let n = scaled(100_000);
    let done = Rc::new(AtomicU32::new(0));
    let d = done.clone();
    let peak = run(async move {
        let ev = Rc::new(Event::new());
        let mut tasks = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (ev, d) = (ev.clone(), d.clone());
            tasks.push(create_task(async move {
                ev.wait().await?;
                d.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }));
        }
        sleep_ms(0).await?;
        let alive = get_event_loop().live_tasks();
        ev.set();
        for t in tasks {
            t.await?;
        }
        Ok(alive)
    })
    .unwrap();
    assert_eq!(peak, n as usize + 1, "every task (and main) alive at once");
    assert_eq!(done.load(Ordering::Relaxed), n);
    assert_no_live_tasks();
}

#[test]
fn ten_thousand_sleepers_fire_in_deadline_order() {
    let _s = serial();
    let n = scaled(10_000);
    get_event_loop().use_virtual_time(true);
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    run(async move {
        for i in 0..n {
            let ms = (i.wrapping_mul(2_654_435_761) >> 7) % 1000;
            let o = o.clone();
            create_task(async move {
                sleep_ms(ms).await?;
                o.borrow_mut().push((ms, i, uasyncio::ticks_ms()));
                Ok(())
            });
        }
        sleep_ms(1000).await
    })
    .unwrap();
    get_event_loop().use_virtual_time(false);
    let order = order.borrow();
    assert_eq!(order.len(), n as usize);
    assert!(
        order.windows(2).all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)),
        "fired out of order"
    );
    assert!(
        order.iter().all(|&(ms, _, t)| u64::from(ms) == t),
        "fired at the wrong time"
    );
    assert_no_live_tasks();
}

/// A binary "ack" a std thread can block on.
struct Ack {
    count: Mutex<u32>,
    cond: Condvar,
}

/// One std thread sets the flag; the task wakes and acknowledges; the thread waits for the
/// acknowledgement before the next set. A lost wake shows up as a 5 s timeout.
#[test]
fn million_set_wake_ack_rounds_with_a_thread() {
    let _s = serial();
    static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
    let rounds = scaled(1_000_000);
    let ack = Arc::new(Ack {
        count: Mutex::new(0),
        cond: Condvar::new(),
    });
    let a = ack.clone();
    let setter = std::thread::spawn(move || {
        for i in 0..rounds {
            FLAG.set();
            let mut c = a.count.lock().unwrap();
            while *c == i {
                c = a.cond.wait(c).unwrap();
            }
        }
    });
    let out = run(async move {
        for i in 0..rounds {
            match wait_for_ms(FLAG.wait(), 50_000).await {
                Ok(()) => {}
                Err(e) => return Ok(Err(format!("round {i}: {e}"))),
            }
            *ack.count.lock().unwrap() = i + 1;
            ack.cond.notify_one();
        }
        Ok(Ok(()))
    });
    assert_eq!(out, Ok(Ok(())));
    setter.join().unwrap();
    assert_no_live_tasks();
}

/// Four threads set the flag at once, many times; the task must never sleep while a set is
/// pending: a timeout with the flag set is a lost wake.
#[test]
fn four_threads_setting_at_once() {
    let _s = serial();
    static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
    let per_thread = scaled(100_000);
    let finished = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let finished = finished.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    FLAG.set();
                    if (i + t) % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
                finished.fetch_add(1, Ordering::Release);
                FLAG.set();
            })
        })
        .collect();
    let f = finished.clone();
    let out = run(async move {
        let mut wakes = 0u64;
        loop {
            match wait_for_ms(FLAG.wait(), 50_000).await {
                Ok(()) => wakes += 1,
                Err(Error::Timeout) if FLAG.is_set() => return Err(Error::runtime("lost wake: flag set, task asleep")),
                Err(Error::Timeout) => {}
                Err(e) => return Err(e),
            }
            // Each thread sets the flag once more after counting itself finished, so with all
            // four counted and no set pending every set has been seen. (Read after the wait:
            // read before it, the last wake could leave the task waiting out the whole timeout.)
            if f.load(Ordering::Acquire) == 4 && !FLAG.is_set() {
                return Ok(wakes);
            }
        }
    });
    for t in threads {
        t.join().unwrap();
    }
    let wakes = out.unwrap();
    assert!(wakes >= 1 && wakes <= 4 * u64::from(per_thread) + 4, "wakes {wakes}");
    assert_no_live_tasks();
}

/// Tasks sleep, wait on events and locks, await each other; a canceller cancels random tasks
/// at random moments. Everything must end, and every cell must be freed.
#[test]
fn cancel_storm_leaks_nothing() {
    let _s = serial();
    let n = scaled(20_000);
    get_event_loop().use_virtual_time(true);
    let stop = Rc::new(AtomicBool::new(false));
    let out = run(async move {
        let ev = Rc::new(Event::new());
        let lock = Rc::new(Lock::new());
        let mut refs = Vec::new();
        let mut handles = Vec::new();
        let mut seed: u32 = 0x9E37_79B9;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for i in 0..n {
            let (ev, lock) = (ev.clone(), lock.clone());
            let kind = rnd() % 5;
            let ms = rnd() % 50;
            let t = create_task(async move {
                match kind {
                    0 => sleep_ms(ms).await,
                    1 => ev.wait().await,
                    2 => {
                        let _g = lock.acquire().await?;
                        sleep_ms(ms % 3).await
                    }
                    3 => {
                        // Ignores the first cancel and cleans up asynchronously.
                        if sleep_ms(ms).await.is_err() {
                            sleep_ms(1).await?;
                        }
                        Ok(())
                    }
                    _ => {
                        let inner = create_task(async move { sleep_ms(ms + 1).await });
                        inner.await
                    }
                }
                .map(|()| i)
            });
            refs.push(t.task_ref());
            handles.push(t);
        }
        for _ in 0..n {
            let victim = (rnd() as usize) % refs.len();
            let _ = refs[victim].cancel();
            if rnd() % 16 == 0 {
                sleep_ms(rnd() % 3).await?;
            }
        }
        sleep_ms(60).await?;
        ev.set();
        let (mut ok, mut cancelled) = (0, 0);
        for h in handles {
            match h.await {
                Ok(_) => ok += 1,
                Err(Error::Cancelled) => cancelled += 1,
                Err(e) => return Err(e),
            }
        }
        Ok((ok, cancelled, lock.locked()))
    });
    stop.store(true, Ordering::Relaxed);
    get_event_loop().use_virtual_time(false);
    let (ok, cancelled, locked) = out.unwrap();
    assert_eq!(ok + cancelled, n);
    assert!(cancelled > 0 && ok > 0, "ok {ok}, cancelled {cancelled}");
    assert!(!locked, "the lock must end unlocked");
    assert_no_live_tasks();
}

/// A bounded `Queue` between a producer task and three consumer tasks, 1,000,000 items: none
/// lost or taken twice, each consumer sees them in increasing order, and `join` returns once
/// every item is `task_done`. Consumers try `get_nowait` first and yield now and then, so
/// waiting getters, woken getters and waiting putters all occur under load.
#[test]
fn million_items_through_a_queue() {
    let _s = serial();
    let n = scaled(1_000_000);
    let out = run(async move {
        let q = Rc::new(Queue::new(16));
        let seen = Rc::new(RefCell::new(vec![false; n as usize]));
        let mut consumers = Vec::new();
        for c in 0..3u32 {
            let (q, seen) = (q.clone(), seen.clone());
            consumers.push(create_task(async move {
                let mut last: Option<u32> = None;
                let mut count = 0u32;
                loop {
                    let item = match q.get_nowait() {
                        Ok(item) => item,
                        Err(_) => q.get().await?,
                    };
                    q.task_done()?;
                    if item == u32::MAX {
                        return Ok(count);
                    }
                    assert!(last.is_none_or(|l| l < item), "consumer {c}: {item} after {last:?}");
                    last = Some(item);
                    let taken_before = std::mem::replace(&mut seen.borrow_mut()[item as usize], true);
                    assert!(!taken_before, "item {item} taken twice");
                    count += 1;
                    if item % 7 == c {
                        sleep_ms(0).await?;
                    }
                }
            }));
        }
        for i in 0..n {
            q.put(i).await?;
        }
        for _ in 0..3 {
            q.put(u32::MAX).await?;
        }
        q.join().await?;
        let mut total = 0;
        for c in consumers {
            total += c.await?;
        }
        let all_seen = seen.borrow().iter().all(|s| *s);
        Ok((total, all_seen, q.qsize()))
    });
    let (total, all_seen, left) = out.unwrap();
    assert_eq!(total, n, "items consumed");
    assert!(all_seen, "an item was lost");
    assert_eq!(left, 0);
    assert_no_live_tasks();
}

static TG_REPORTS: AtomicU32 = AtomicU32::new(0);

fn count_reports(_lp: &uasyncio::Loop, _ctx: &uasyncio::ExceptionContext) {
    TG_REPORTS.fetch_add(1, Ordering::Relaxed);
}

/// One group of the storm: `kinds` are its tasks, `body` what its body does. Checks that the
/// group's error holds exactly the failures that happened; gives 0 (success) or 1 (failed).
async fn storm_group(kinds: Vec<(u32, u32)>, body: u32, body_ms: u32) -> uasyncio::Result<u32> {
    let failures = Rc::new(std::cell::Cell::new(0u32));
    let fail = |f: &Rc<std::cell::Cell<u32>>, e: Error| {
        if !e.is_cancelled() {
            f.set(f.get() + 1);
        }
        Err::<(), _>(e)
    };
    let f = failures.clone();
    let r = TaskGroup::run(|tg| async move {
        for (kind, ms) in kinds {
            let f = f.clone();
            tg.create_task(async move {
                match kind {
                    0 => sleep_ms(ms).await,
                    1 => {
                        sleep_ms(ms).await?;
                        fail(&f, Error::value("child"))
                    }
                    2 => {
                        // Fails while cleaning up after a cancel.
                        if sleep_ms(ms).await.is_err() {
                            sleep_ms(1).await?;
                            return fail(&f, Error::value("cleanup"));
                        }
                        Ok(())
                    }
                    _ => {
                        // A nested group whose task fails.
                        let r = TaskGroup::run(|inner| async move {
                            inner.create_task(async move {
                                sleep_ms(ms).await?;
                                Err::<(), _>(Error::Timeout)
                            })?;
                            sleep_ms(ms + 1).await
                        })
                        .await;
                        match r {
                            Err(e) => fail(&f, e),
                            Ok(()) => Ok(()),
                        }
                    }
                }
            })?;
        }
        match body {
            0 => sleep_ms(body_ms).await,
            1 => {
                sleep_ms(body_ms).await?;
                fail(&f, Error::value("body"))
            }
            2 => {
                // Adds a task late; refused if the group is shutting down by then.
                sleep_ms(body_ms).await?;
                let _ = tg.create_task(sleep_ms(body_ms));
                sleep_ms(1).await
            }
            _ => {
                // Swallows a cancel and returns normally.
                let _ = sleep_ms(body_ms).await;
                Ok(())
            }
        }
    })
    .await;
    let failed = failures.get();
    match r {
        Ok(()) | Err(Error::Cancelled) if failed != 0 => Err(Error::runtime("a failure was lost")),
        Ok(()) => Ok(0),
        Err(Error::Cancelled) => Err(Error::Cancelled),
        Err(Error::Group(errs)) if errs.len() as u32 == failed && !errs.iter().any(Error::is_cancelled) => Ok(1),
        Err(e) => Err(Error::runtime(format!("group error {e:?} for {failed} failures"))),
    }
}

/// A storm of `TaskGroup`s (nested ones too) with random failures, failures during cleanup,
/// bodies that fail or swallow cancels, and random cancels of the tasks running the groups:
/// every failure is in its group's error, none reaches the exception handler, and no task is
/// leaked.
#[test]
fn task_group_storm_leaks_nothing() {
    let _s = serial();
    new_event_loop().unwrap();
    let start = diagnostics::allocated_task_cells();
    let groups = scaled(20_000);
    let lp = get_event_loop();
    lp.use_virtual_time(true);
    TG_REPORTS.store(0, Ordering::Relaxed);
    lp.set_exception_handler(Some(count_reports));
    let out = run(async move {
        let mut seed: u32 = 0x2545_F491;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut owners = Vec::new();
        for _ in 0..groups {
            // Mostly tasks that succeed (kind 0), so that some groups succeed.
            let kinds = (0..1 + rnd() % 6)
                .map(|_| ((rnd() % 12).saturating_sub(8), rnd() % 20))
                .collect();
            owners.push(create_task(storm_group(
                kinds,
                (rnd() % 8).saturating_sub(4),
                rnd() % 20,
            )));
        }
        let refs: Vec<_> = owners.iter().map(|t| t.task_ref()).collect();
        for _ in 0..groups / 2 {
            let _ = refs[(rnd() as usize) % refs.len()].cancel();
            if rnd() % 256 == 0 {
                sleep_ms(rnd() % 3).await?;
            }
        }
        let mut tally = [0u32; 3];
        for o in owners {
            match o.await {
                Ok(k) => tally[k as usize] += 1,
                Err(Error::Cancelled) => tally[2] += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(tally)
    });
    lp.set_exception_handler(None);
    lp.use_virtual_time(false);
    let [ok, failed, cancelled] = out.unwrap();
    assert_eq!(ok + failed + cancelled, groups);
    if groups >= 100 {
        assert!(
            ok > 0 && failed > 0 && cancelled > 0,
            "ok {ok}, failed {failed}, cancelled {cancelled}"
        );
    }
    assert_eq!(
        TG_REPORTS.load(Ordering::Relaxed),
        0,
        "a group's error reached the handler"
    );
    new_event_loop().unwrap();
    assert_eq!(diagnostics::allocated_task_cells(), start, "task cells leaked");
}
