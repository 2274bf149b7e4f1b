//! The workloads on our runtime (`uasyncio`, std port), written the way the seed's asyncio
//! programs are: `create_task` + awaiting the `Task`, `sleep_ms(0)` to yield, two `Event`s,
//! `Lock`, a static `ThreadSafeFlag` set from another thread, `sleep_ms` timers, `Queue`
//! between tasks and `ThreadSafeQueue` from another thread.
//! A fresh `run` (a fresh loop) per repetition.

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uasyncio::{create_task, sleep_ms, Error, Event, Lock, Queue, ThreadSafeFlag, ThreadSafeQueue};

use crate::alloc_count;
use crate::measure::{self, Metrics, Params, WakeProbe};

const NAME: &str = "ours";

fn run<T: 'static>(main: impl Future<Output = uasyncio::Result<T>> + 'static) -> T {
    uasyncio::run(main).expect("uasyncio::run")
}

/// Every workload except peak RSS.
pub fn run_all(p: &Params) -> Metrics {
    let mut m = Metrics::default();
    let n = p.spawn_tasks;

    if p.runs("spawn") {
        measure::progress(NAME, "spawn");
        let d = measure::median_of(p.reps, || run(spawn_alive(n)));
        m.put("spawn_alive_ns", measure::per_op_ns(d, n));
        let d = measure::median_of(p.reps, || run(spawn_serial(n)));
        m.put("spawn_serial_ns", measure::per_op_ns(d, n));
    }

    if p.runs("yield") {
        measure::progress(NAME, "yield");
        let d = measure::median_of(p.reps, || run(yields(p.yield_tasks, p.yields_per_task)));
        m.put("yield_ns", measure::per_op_ns(d, p.yield_tasks * p.yields_per_task));
        // What looking costs: the same with the poll timer on, then with the timeline
        // recorded (room for every event, so none is dropped).
        let switches = p.yield_tasks * p.yields_per_task;
        let (tasks, per_task) = (p.yield_tasks, p.yields_per_task);
        let d = measure::median_of(p.reps, || {
            run(async move {
                let lp = uasyncio::get_event_loop();
                lp.measure_polls(true);
                let d = yields(tasks, per_task).await;
                // Off again: the setting belongs to the thread's loop, which the workloads
                // after this one reuse (left on, it timed every poll of theirs too).
                lp.measure_polls(false);
                d
            })
        });
        m.put("yield_timed_ns", measure::per_op_ns(d, switches));
        let d = measure::median_of(p.reps, || {
            run(async move {
                let lp = uasyncio::get_event_loop();
                lp.start_trace(2 * switches + 4 * tasks + 16);
                let d = yields(tasks, per_task).await;
                drop(lp.stop_trace());
                d
            })
        });
        m.put("yield_traced_ns", measure::per_op_ns(d, switches));
    }

    if p.runs("pingpong") {
        measure::progress(NAME, "ping-pong");
        let d = measure::median_of(p.reps, || run(ping_pong(p.pingpong_rounds)));
        m.put("pingpong_ns", measure::per_op_ns(d, p.pingpong_rounds));
    }

    if p.runs("timers") {
        measure::progress(NAME, "timers");
        let (cpu, mut late) = run(timers(p.clone()));
        m.put("timer_cpu_ns", measure::per_op_ns(cpu, p.timer_tasks));
        m.put_p50_p99_us("timer_late_p50_us", "timer_late_p99_us", &mut late);
        // The same with 1 ms of timer slack (tokio's timer resolution): timers due within a
        // millisecond of each other fire in one wake-up. The slack is reset afterwards.
        let lp = uasyncio::get_event_loop();
        lp.set_timer_slack_us(1_000);
        let (cpu, mut late) = run(timers(p.clone()));
        lp.set_timer_slack_us(0);
        m.put("timer_slack_cpu_ns", measure::per_op_ns(cpu, p.timer_tasks));
        m.put_p50_p99_us("timer_slack_late_p50_us", "timer_slack_late_p99_us", &mut late);
    }

    if p.runs("xwake") {
        measure::progress(NAME, "cross-thread wake");
        let mut lat = cross_thread_wake(p);
        m.put_p50_p99_us("xwake_p50_us", "xwake_p99_us", &mut lat);
    }

    if p.runs("lock") {
        measure::progress(NAME, "lock");
        let d = measure::median_of(p.reps, || run(lock(p.lock_tasks, p.lock_total)));
        m.put("lock_ns", measure::per_op_ns(d, p.lock_total));
    }

    if p.runs("queue") {
        measure::progress(NAME, "queue round trip");
        let d = measure::median_of(p.reps, || run(queue_round_trip(p.queue_rounds)));
        m.put("queue_ns", measure::per_op_ns(d, p.queue_rounds));
        let d = measure::median_of(p.reps, || run(xqueue_round_trip(p.queue_rounds)));
        m.put("xqueue_rt_ns", measure::per_op_ns(d, p.queue_rounds));
    }

    if p.runs("xqueue") {
        measure::progress(NAME, "queue from an OS thread");
        let d = measure::median_of(p.reps, || xqueue_thread(p.xqueue_items));
        m.put("xqueue_thread_ns", measure::per_op_ns(d, p.xqueue_items));
    }

    if p.runs("memory") {
        measure::progress(NAME, "memory");
        m.put("task_bytes", run(task_bytes(n)));
    }
    m
}

/// Workload 1 (all alive) once, for the peak-RSS child.
pub fn run_rss(p: &Params) {
    run(spawn_alive(p.spawn_tasks));
}

async fn spawn_alive(n: usize) -> uasyncio::Result<Duration> {
    let mut tasks = Vec::with_capacity(n);
    let t0 = Instant::now();
    for _ in 0..n {
        tasks.push(create_task(async { Ok(()) }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(t0.elapsed())
}

async fn spawn_serial(n: usize) -> uasyncio::Result<Duration> {
    let t0 = Instant::now();
    for _ in 0..n {
        create_task(async { Ok(()) }).await?;
    }
    Ok(t0.elapsed())
}

async fn yields(tasks: usize, per_task: usize) -> uasyncio::Result<Duration> {
    let mut handles = Vec::with_capacity(tasks);
    let t0 = Instant::now();
    for _ in 0..tasks {
        handles.push(create_task(async move {
            for _ in 0..per_task {
                sleep_ms(0).await?;
            }
            Ok(())
        }));
    }
    for h in handles {
        h.await?;
    }
    Ok(t0.elapsed())
}

async fn ping_pong(rounds: usize) -> uasyncio::Result<Duration> {
    let ping = Rc::new(Event::new());
    let pong = Rc::new(Event::new());
    let t0 = Instant::now();
    let responder = {
        let (ping, pong) = (ping.clone(), pong.clone());
        create_task(async move {
            for _ in 0..rounds {
                ping.wait().await?;
                ping.clear();
                pong.set();
            }
            Ok(())
        })
    };
    for _ in 0..rounds {
        ping.set();
        pong.wait().await?;
        pong.clear();
    }
    responder.await?;
    Ok(t0.elapsed())
}

async fn timers(p: Params) -> uasyncio::Result<(Duration, Vec<u64>)> {
    let mut handles = Vec::with_capacity(p.timer_tasks);
    let cpu0 = measure::cpu_time();
    for i in 0..p.timer_tasks {
        let ms = p.timer_delay_ms(i);
        handles.push(create_task(async move {
            let start = Instant::now();
            sleep_ms(ms).await?;
            Ok(measure::lateness_ns(start, ms))
        }));
    }
    let mut late = Vec::with_capacity(p.timer_tasks);
    for h in handles {
        late.push(h.await?);
    }
    Ok((measure::cpu_time() - cpu0, late))
}

/// Set from the waking OS thread.
static WAKE: ThreadSafeFlag = ThreadSafeFlag::new();

fn cross_thread_wake(p: &Params) -> Vec<u64> {
    let probe: &'static WakeProbe = Box::leak(Box::new(WakeProbe::new()));
    let (iters, gap) = (p.wake_iters, p.wake_gap);
    let waker = std::thread::spawn(move || probe.drive(iters, gap, || WAKE.set()));
    let lat = run(async move {
        let mut lat = Vec::with_capacity(iters);
        for _ in 0..iters {
            WAKE.wait().await?;
            lat.push(probe.woke());
        }
        Ok(lat)
    });
    waker.join().expect("waker thread");
    lat
}

async fn lock(tasks: usize, total: usize) -> uasyncio::Result<Duration> {
    let lock = Rc::new(Lock::new());
    let count = Rc::new(std::cell::Cell::new(0usize));
    let per_task = total / tasks;
    let mut handles = Vec::with_capacity(tasks);
    let t0 = Instant::now();
    for _ in 0..tasks {
        let (lock, count) = (lock.clone(), count.clone());
        handles.push(create_task(async move {
            for _ in 0..per_task {
                let _guard = lock.acquire().await?;
                count.set(count.get() + 1);
                // Hold it across a switch, so the other tasks queue up behind it.
                sleep_ms(0).await?;
            }
            Ok(())
        }));
    }
    for h in handles {
        h.await?;
    }
    let elapsed = t0.elapsed();
    assert_eq!(count.get(), per_task * tasks);
    Ok(elapsed)
}

/// Workload 8, task to task: an item there and back through two `Queue`s of capacity 1.
async fn queue_round_trip(rounds: usize) -> uasyncio::Result<Duration> {
    let there = Rc::new(Queue::new(1));
    let back = Rc::new(Queue::new(1));
    let t0 = Instant::now();
    let echo = {
        let (there, back) = (there.clone(), back.clone());
        create_task(async move {
            for _ in 0..rounds {
                let v = there.get().await?;
                back.put(v).await?;
            }
            Ok(())
        })
    };
    for i in 0..rounds {
        there.put(i).await?;
        assert_eq!(back.get().await?, i);
    }
    echo.await?;
    Ok(t0.elapsed())
}

/// Workload 8, cross-context queue: the same through two `ThreadSafeQueue`s of capacity 1.
async fn xqueue_round_trip(rounds: usize) -> uasyncio::Result<Duration> {
    let closed = || Error::runtime("queue closed");
    let there = Rc::new(ThreadSafeQueue::new(1)?);
    let back = Rc::new(ThreadSafeQueue::new(1)?);
    let t0 = Instant::now();
    let echo = {
        let (there, back) = (there.clone(), back.clone());
        create_task(async move {
            for _ in 0..rounds {
                let v = there.recv().await?.ok_or_else(closed)?;
                back.try_send(v)?;
            }
            Ok(())
        })
    };
    for i in 0..rounds {
        there.try_send(i)?;
        assert_eq!(back.recv().await?.ok_or_else(closed)?, i);
    }
    echo.await?;
    Ok(t0.elapsed())
}

/// Workload 9: an OS thread sends `items` into a `ThreadSafeQueue`; the main task receives.
fn xqueue_thread(items: usize) -> Duration {
    let q = Arc::new(ThreadSafeQueue::new(measure::XQUEUE_CAPACITY).expect("ThreadSafeQueue::new"));
    let go = Arc::new(AtomicBool::new(false));
    let producer = {
        let (q, go) = (q.clone(), go.clone());
        std::thread::spawn(move || measure::produce(items, &go, |i| q.try_send(i).is_ok()))
    };
    let d = run(async move {
        let t0 = Instant::now();
        go.store(true, Ordering::Release);
        for i in 0..items {
            assert_eq!(q.recv().await?, Some(i));
        }
        Ok(t0.elapsed())
    });
    producer.join().expect("producer thread");
    d
}

async fn task_bytes(n: usize) -> uasyncio::Result<f64> {
    let mut tasks = Vec::with_capacity(n);
    let ((), bytes) = alloc_count::window(|| {
        for _ in 0..n {
            tasks.push(create_task(async { Ok(()) }));
        }
    });
    for t in tasks {
        t.await?;
    }
    Ok(bytes as f64 / n as f64)
}
