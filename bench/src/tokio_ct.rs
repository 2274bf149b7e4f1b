//! The workloads on tokio's current-thread runtime, written the way a tokio user would:
//! `tokio::spawn` + `JoinHandle`, `yield_now`, `Notify`, `tokio::sync::Mutex`, `tokio::time`,
//! bounded `tokio::sync::mpsc` channels.
//! The runtime is built as `#[tokio::main(flavor = "current_thread")]` builds it (all drivers
//! enabled), a fresh one per repetition.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex, Notify};

use crate::alloc_count;
use crate::measure::{self, Metrics, Params, WakeProbe};

const NAME: &str = "tokio-ct";

fn block_on<T>(fut: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(fut)
}

/// Every workload except peak RSS.
pub fn run_all(p: &Params) -> Metrics {
    let mut m = Metrics::default();
    let n = p.spawn_tasks;

    if p.runs("spawn") {
        measure::progress(NAME, "spawn");
        let d = measure::median_of(p.reps, || block_on(spawn_alive(n)));
        m.put("spawn_alive_ns", measure::per_op_ns(d, n));
        let d = measure::median_of(p.reps, || block_on(spawn_serial(n)));
        m.put("spawn_serial_ns", measure::per_op_ns(d, n));
    }

    if p.runs("yield") {
        measure::progress(NAME, "yield");
        let d = measure::median_of(p.reps, || block_on(yields(p.yield_tasks, p.yields_per_task)));
        m.put("yield_ns", measure::per_op_ns(d, p.yield_tasks * p.yields_per_task));
    }

    if p.runs("pingpong") {
        measure::progress(NAME, "ping-pong");
        let d = measure::median_of(p.reps, || block_on(ping_pong(p.pingpong_rounds)));
        m.put("pingpong_ns", measure::per_op_ns(d, p.pingpong_rounds));
    }

    if p.runs("timers") {
        measure::progress(NAME, "timers");
        let (cpu, mut late) = block_on(timers(p.clone()));
        m.put("timer_cpu_ns", measure::per_op_ns(cpu, p.timer_tasks));
        m.put_p50_p99_us("timer_late_p50_us", "timer_late_p99_us", &mut late);
    }

    if p.runs("xwake") {
        measure::progress(NAME, "cross-thread wake");
        let mut lat = cross_thread_wake(p);
        m.put_p50_p99_us("xwake_p50_us", "xwake_p99_us", &mut lat);
    }

    if p.runs("lock") {
        measure::progress(NAME, "lock");
        let d = measure::median_of(p.reps, || block_on(lock(p.lock_tasks, p.lock_total)));
        m.put("lock_ns", measure::per_op_ns(d, p.lock_total));
    }

    if p.runs("queue") {
        measure::progress(NAME, "queue round trip");
        let d = measure::median_of(p.reps, || block_on(queue_round_trip(p.queue_rounds, false)));
        m.put("queue_ns", measure::per_op_ns(d, p.queue_rounds));
        let d = measure::median_of(p.reps, || block_on(queue_round_trip(p.queue_rounds, true)));
        m.put("xqueue_rt_ns", measure::per_op_ns(d, p.queue_rounds));
    }

    if p.runs("xqueue") {
        measure::progress(NAME, "queue from an OS thread");
        let d = measure::median_of(p.reps, || xqueue_thread(p.xqueue_items));
        m.put("xqueue_thread_ns", measure::per_op_ns(d, p.xqueue_items));
    }

    if p.runs("memory") {
        measure::progress(NAME, "memory");
        m.put("task_bytes", block_on(task_bytes(n)));
    }
    m
}

/// Workload 1 (all alive) once, for the peak-RSS child.
pub fn run_rss(p: &Params) {
    block_on(spawn_alive(p.spawn_tasks));
}

async fn spawn_alive(n: usize) -> Duration {
    let mut handles = Vec::with_capacity(n);
    let t0 = Instant::now();
    for _ in 0..n {
        handles.push(tokio::spawn(async {}));
    }
    for h in handles {
        h.await.expect("task");
    }
    t0.elapsed()
}

async fn spawn_serial(n: usize) -> Duration {
    let t0 = Instant::now();
    for _ in 0..n {
        tokio::spawn(async {}).await.expect("task");
    }
    t0.elapsed()
}

async fn yields(tasks: usize, per_task: usize) -> Duration {
    let mut handles = Vec::with_capacity(tasks);
    let t0 = Instant::now();
    for _ in 0..tasks {
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                tokio::task::yield_now().await;
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    t0.elapsed()
}

async fn ping_pong(rounds: usize) -> Duration {
    let ping = Arc::new(Notify::new());
    let pong = Arc::new(Notify::new());
    let t0 = Instant::now();
    let responder = {
        let (ping, pong) = (ping.clone(), pong.clone());
        tokio::spawn(async move {
            for _ in 0..rounds {
                ping.notified().await;
                pong.notify_one();
            }
        })
    };
    for _ in 0..rounds {
        ping.notify_one();
        pong.notified().await;
    }
    responder.await.expect("task");
    t0.elapsed()
}

async fn timers(p: Params) -> (Duration, Vec<u64>) {
    let mut handles = Vec::with_capacity(p.timer_tasks);
    let cpu0 = measure::cpu_time();
    for i in 0..p.timer_tasks {
        let ms = p.timer_delay_ms(i);
        handles.push(tokio::spawn(async move {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
            measure::lateness_ns(start, ms)
        }));
    }
    let mut late = Vec::with_capacity(p.timer_tasks);
    for h in handles {
        late.push(h.await.expect("task"));
    }
    (measure::cpu_time() - cpu0, late)
}

fn cross_thread_wake(p: &Params) -> Vec<u64> {
    let notify = Arc::new(Notify::new());
    let probe = Arc::new(WakeProbe::new());
    let waker = {
        let (notify, probe, iters, gap) = (notify.clone(), probe.clone(), p.wake_iters, p.wake_gap);
        std::thread::spawn(move || probe.drive(iters, gap, || notify.notify_one()))
    };
    let lat = block_on(async {
        let mut lat = Vec::with_capacity(p.wake_iters);
        for _ in 0..p.wake_iters {
            notify.notified().await;
            lat.push(probe.woke());
        }
        lat
    });
    waker.join().expect("waker thread");
    lat
}

async fn lock(tasks: usize, total: usize) -> Duration {
    let mutex = Arc::new(Mutex::new(0usize));
    let per_task = total / tasks;
    let mut handles = Vec::with_capacity(tasks);
    let t0 = Instant::now();
    for _ in 0..tasks {
        let mutex = mutex.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let mut guard = mutex.lock().await;
                *guard += 1;
                // Hold it across a switch, so the other tasks queue up behind it.
                tokio::task::yield_now().await;
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let elapsed = t0.elapsed();
    assert_eq!(*mutex.lock().await, per_task * tasks);
    elapsed
}

/// Workload 8: an item there and back through two `mpsc::channel(1)`s; `try_send` for the
/// cross-context row (always room: the other side took the previous item), `send` otherwise.
async fn queue_round_trip(rounds: usize, try_send: bool) -> Duration {
    let (there_tx, mut there_rx) = mpsc::channel(1);
    let (back_tx, mut back_rx) = mpsc::channel(1);
    let t0 = Instant::now();
    let echo = tokio::spawn(async move {
        for _ in 0..rounds {
            let v = there_rx.recv().await.expect("open");
            if try_send {
                back_tx.try_send(v).expect("room");
            } else {
                back_tx.send(v).await.expect("open");
            }
        }
    });
    for i in 0..rounds {
        if try_send {
            there_tx.try_send(i).expect("room");
        } else {
            there_tx.send(i).await.expect("open");
        }
        assert_eq!(back_rx.recv().await, Some(i));
    }
    echo.await.expect("task");
    t0.elapsed()
}

/// Workload 9: an OS thread sends `items` into an `mpsc` channel; the main task receives.
fn xqueue_thread(items: usize) -> Duration {
    let (tx, mut rx) = mpsc::channel(measure::XQUEUE_CAPACITY);
    let go = Arc::new(AtomicBool::new(false));
    let producer = {
        let go = go.clone();
        std::thread::spawn(move || measure::produce(items, &go, |i| tx.try_send(i).is_ok()))
    };
    let d = block_on(async move {
        let t0 = Instant::now();
        go.store(true, Ordering::Release);
        for i in 0..items {
            assert_eq!(rx.recv().await, Some(i));
        }
        t0.elapsed()
    });
    producer.join().expect("producer thread");
    d
}

async fn task_bytes(n: usize) -> f64 {
    let mut handles = Vec::with_capacity(n);
    let ((), bytes) = alloc_count::window(|| {
        for _ in 0..n {
            handles.push(tokio::spawn(async {}));
        }
    });
    for h in handles {
        h.await.expect("task");
    }
    bytes as f64 / n as f64
}
