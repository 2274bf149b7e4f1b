//! The workloads on embassy-executor, written the way an embassy user would: statically
//! allocated tasks (`#[embassy_executor::task(pool_size = N)]`), `embassy_futures::yield_now`,
//! `embassy_sync::signal::Signal` and `embassy_sync::mutex::Mutex` (`NoopRawMutex` between
//! tasks of one executor, `CriticalSectionRawMutex` when another thread signals),
//! `embassy_time::Timer` with the std time driver, `embassy_sync::channel::Channel` (a
//! `CriticalSectionRawMutex` one where an ISR or a thread may send).
//!
//! Embassy tasks have no join handle and return `()`, so completion is counted down in a
//! [`Ctx`] shared by reference and the main task waits for a `Signal`.
//!
//! This file is compiled into both embassy binaries: `uasyncio-bench` (raw executor with our
//! park/unpark pender, `embassy_exec.rs`) and `uasyncio-bench-embassy-std` (embassy's own
//! `platform-std` executor). Each provides `crate::embassy_exec::run`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use embassy_executor::{raw::TaskStorage, Spawner};
use embassy_futures::yield_now;
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};
use embassy_sync::channel::Channel;
use embassy_sync::mutex::Mutex;
use embassy_sync::signal::Signal;
use embassy_time::Timer;

use crate::measure::{self, Metrics, Params, WakeProbe};

/// Task pool sizes: the full workload sizes (the quick pass uses fewer).
const SPAWN_POOL: usize = 10_000;
const YIELD_POOL: usize = 100;
const TIMER_POOL: usize = 10_000;
const LOCK_POOL: usize = 10;

/// One workload run's shared state: a countdown of live tasks, the samples they record, and
/// the main task's result. Leaked, so tasks can hold `&'static Ctx`.
struct Ctx {
    left: Cell<usize>,
    zero: Signal<NoopRawMutex, ()>,
    samples: RefCell<Vec<u64>>,
    elapsed: Cell<Duration>,
    finished: Cell<bool>,
}

impl Ctx {
    fn tick(&self) {
        let left = self.left.get() - 1;
        self.left.set(left);
        if left == 0 {
            self.zero.signal(());
        }
    }

    async fn all_done(&self) {
        if self.left.get() != 0 {
            self.zero.wait().await;
        }
        self.zero.reset();
    }

    fn finish(&self, t0: Instant) {
        self.elapsed.set(t0.elapsed());
        self.finished.set(true);
    }
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// Runs one executor until `main` (spawned by `init`) calls [`Ctx::finish`].
fn run_workload(init: impl FnOnce(Spawner, &'static Ctx)) -> &'static Ctx {
    let ctx = leak(Ctx {
        left: Cell::new(0),
        zero: Signal::new(),
        samples: RefCell::new(Vec::new()),
        elapsed: Cell::new(Duration::ZERO),
        finished: Cell::new(false),
    });
    crate::embassy_exec::run(|spawner| init(spawner, ctx), || ctx.finished.get());
    ctx
}

/// Every workload except peak RSS. `name` is the column, for progress lines.
pub fn run_all(name: &str, p: &Params) -> Metrics {
    assert!(p.spawn_tasks <= SPAWN_POOL && p.timer_tasks <= TIMER_POOL);
    assert!(p.yield_tasks <= YIELD_POOL && p.lock_tasks <= LOCK_POOL);
    let mut m = Metrics::default();
    let n = p.spawn_tasks;

    if p.runs("spawn") {
        measure::progress(name, "spawn");
        let d = measure::median_of(p.reps, || spawn_alive(n));
        m.put("spawn_alive_ns", measure::per_op_ns(d, n));
        let d = measure::median_of(p.reps, || {
            let ctx = run_workload(|s, ctx| s.spawn(spawn_serial_main(s, n, ctx).expect("spawn")));
            ctx.elapsed.get()
        });
        m.put("spawn_serial_ns", measure::per_op_ns(d, n));
    }

    if p.runs("yield") {
        measure::progress(name, "yield");
        let (tasks, per_task) = (p.yield_tasks, p.yields_per_task);
        let d = measure::median_of(p.reps, || {
            let ctx = run_workload(|s, ctx| s.spawn(yields_main(s, tasks, per_task, ctx).expect("spawn")));
            ctx.elapsed.get()
        });
        m.put("yield_ns", measure::per_op_ns(d, tasks * per_task));
    }

    if p.runs("pingpong") {
        measure::progress(name, "ping-pong");
        let rounds = p.pingpong_rounds;
        let d = measure::median_of(p.reps, || {
            let ctx = run_workload(|s, ctx| s.spawn(ping_pong_main(s, rounds, ctx).expect("spawn")));
            ctx.elapsed.get()
        });
        m.put("pingpong_ns", measure::per_op_ns(d, rounds));
    }

    if p.runs("timers") {
        measure::progress(name, "timers");
        let params = leak(p.clone());
        let ctx = run_workload(|s, ctx| s.spawn(timers_main(s, params, ctx).expect("spawn")));
        m.put("timer_cpu_ns", measure::per_op_ns(ctx.elapsed.get(), p.timer_tasks));
        m.put_p50_p99_us("timer_late_p50_us", "timer_late_p99_us", &mut ctx.samples.borrow_mut());
    }

    if p.runs("xwake") {
        measure::progress(name, "cross-thread wake");
        let mut lat = cross_thread_wake(p);
        m.put_p50_p99_us("xwake_p50_us", "xwake_p99_us", &mut lat);
    }

    if p.runs("lock") {
        measure::progress(name, "lock");
        let (tasks, total) = (p.lock_tasks, p.lock_total);
        let d = measure::median_of(p.reps, || {
            let ctx = run_workload(|s, ctx| s.spawn(lock_main(s, tasks, total, ctx).expect("spawn")));
            ctx.elapsed.get()
        });
        m.put("lock_ns", measure::per_op_ns(d, total));
    }

    if p.runs("queue") {
        measure::progress(name, "queue round trip");
        let rounds = p.queue_rounds;
        let d = measure::median_of(p.reps, || {
            let ctx = run_workload(|s, ctx| s.spawn(queue_main(s, rounds, ctx).expect("spawn")));
            ctx.elapsed.get()
        });
        m.put("queue_ns", measure::per_op_ns(d, rounds));
        let d = measure::median_of(p.reps, || {
            let ctx = run_workload(|s, ctx| s.spawn(xqueue_rt_main(s, rounds, ctx).expect("spawn")));
            ctx.elapsed.get()
        });
        m.put("xqueue_rt_ns", measure::per_op_ns(d, rounds));
    }

    if p.runs("xqueue") {
        measure::progress(name, "queue from an OS thread");
        let d = measure::median_of(p.reps, || xqueue_thread(p.xqueue_items));
        m.put("xqueue_thread_ns", measure::per_op_ns(d, p.xqueue_items));
    }

    if p.runs("memory") {
        // Embassy tasks are static: each pool slot is a `TaskStorage<F>` in .bss, reserved
        // whether or not the task runs. Report that slot's size for the trivial task.
        let probe = leak(Ctx {
            left: Cell::new(0),
            zero: Signal::new(),
            samples: RefCell::new(Vec::new()),
            elapsed: Cell::new(Duration::ZERO),
            finished: Cell::new(false),
        });
        m.put("task_bytes", storage_bytes(&__trivial_task(probe)) as f64);
    }
    m
}

/// Workload 1 (all alive) once, for the peak-RSS child.
pub fn run_rss(p: &Params) {
    spawn_alive(p.spawn_tasks);
}

/// Workload 8's channels: between tasks of one executor, and the cross-context kind.
type LocalChannel = Channel<NoopRawMutex, usize, 1>;
type SharedChannel = Channel<CriticalSectionRawMutex, usize, 1>;

#[embassy_executor::task]
async fn queue_echo(rounds: usize, there: &'static LocalChannel, back: &'static LocalChannel) {
    for _ in 0..rounds {
        let v = there.receive().await;
        back.send(v).await;
    }
}

#[embassy_executor::task]
async fn queue_main(spawner: Spawner, rounds: usize, ctx: &'static Ctx) {
    let there = leak(Channel::new());
    let back = leak(Channel::new());
    let t0 = Instant::now();
    spawner.spawn(queue_echo(rounds, there, back).expect("spawn"));
    for i in 0..rounds {
        there.send(i).await;
        assert_eq!(back.receive().await, i);
    }
    ctx.finish(t0);
}

#[embassy_executor::task]
async fn xqueue_echo(rounds: usize, there: &'static SharedChannel, back: &'static SharedChannel) {
    for _ in 0..rounds {
        let v = there.receive().await;
        back.try_send(v).expect("room");
    }
}

#[embassy_executor::task]
async fn xqueue_rt_main(spawner: Spawner, rounds: usize, ctx: &'static Ctx) {
    let there = leak(Channel::new());
    let back = leak(Channel::new());
    let t0 = Instant::now();
    spawner.spawn(xqueue_echo(rounds, there, back).expect("spawn"));
    for i in 0..rounds {
        there.try_send(i).expect("room");
        assert_eq!(back.receive().await, i);
    }
    ctx.finish(t0);
}

/// Workload 9's channel: an OS thread sends, a task receives.
type ThreadChannel = Channel<CriticalSectionRawMutex, usize, { measure::XQUEUE_CAPACITY }>;

fn xqueue_thread(items: usize) -> Duration {
    let q: &'static ThreadChannel = leak(Channel::new());
    let go: &'static AtomicBool = leak(AtomicBool::new(false));
    let producer = std::thread::spawn(move || measure::produce(items, go, |i| q.try_send(i).is_ok()));
    let ctx = run_workload(|s, ctx| s.spawn(xqueue_thread_main(items, q, go, ctx).expect("spawn")));
    producer.join().expect("producer thread");
    ctx.elapsed.get()
}

#[embassy_executor::task]
async fn xqueue_thread_main(items: usize, q: &'static ThreadChannel, go: &'static AtomicBool, ctx: &'static Ctx) {
    let t0 = Instant::now();
    go.store(true, Ordering::Release);
    for i in 0..items {
        assert_eq!(q.receive().await, i);
    }
    ctx.finish(t0);
}

fn storage_bytes<F: Future + 'static>(_future: &F) -> usize {
    std::mem::size_of::<TaskStorage<F>>()
}

fn spawn_alive(n: usize) -> Duration {
    let ctx = run_workload(|s, ctx| s.spawn(spawn_alive_main(s, n, ctx).expect("spawn")));
    ctx.elapsed.get()
}

#[embassy_executor::task(pool_size = SPAWN_POOL)]
async fn trivial(ctx: &'static Ctx) {
    ctx.tick();
}

#[embassy_executor::task]
async fn spawn_alive_main(spawner: Spawner, n: usize, ctx: &'static Ctx) {
    let t0 = Instant::now();
    ctx.left.set(n);
    for _ in 0..n {
        spawner.spawn(trivial(ctx).expect("spawn"));
    }
    ctx.all_done().await;
    ctx.finish(t0);
}

#[embassy_executor::task]
async fn spawn_serial_main(spawner: Spawner, n: usize, ctx: &'static Ctx) {
    let t0 = Instant::now();
    for _ in 0..n {
        ctx.left.set(1);
        spawner.spawn(trivial(ctx).expect("spawn"));
        ctx.all_done().await;
    }
    ctx.finish(t0);
}

#[embassy_executor::task(pool_size = YIELD_POOL)]
async fn yielder(per_task: usize, ctx: &'static Ctx) {
    for _ in 0..per_task {
        yield_now().await;
    }
    ctx.tick();
}

#[embassy_executor::task]
async fn yields_main(spawner: Spawner, tasks: usize, per_task: usize, ctx: &'static Ctx) {
    let t0 = Instant::now();
    ctx.left.set(tasks);
    for _ in 0..tasks {
        spawner.spawn(yielder(per_task, ctx).expect("spawn"));
    }
    ctx.all_done().await;
    ctx.finish(t0);
}

#[embassy_executor::task]
async fn responder(rounds: usize, ping: &'static Signal<NoopRawMutex, ()>, pong: &'static Signal<NoopRawMutex, ()>) {
    for _ in 0..rounds {
        ping.wait().await;
        pong.signal(());
    }
}

#[embassy_executor::task]
async fn ping_pong_main(spawner: Spawner, rounds: usize, ctx: &'static Ctx) {
    let ping = leak(Signal::new());
    let pong = leak(Signal::new());
    let t0 = Instant::now();
    spawner.spawn(responder(rounds, ping, pong).expect("spawn"));
    for _ in 0..rounds {
        ping.signal(());
        pong.wait().await;
    }
    ctx.finish(t0);
}

#[embassy_executor::task(pool_size = TIMER_POOL)]
async fn sleeper(ms: u32, ctx: &'static Ctx) {
    let start = Instant::now();
    Timer::after_millis(u64::from(ms)).await;
    ctx.samples.borrow_mut().push(measure::lateness_ns(start, ms));
    ctx.tick();
}

/// Reports CPU time (not wall time) in `ctx.elapsed`.
#[embassy_executor::task]
async fn timers_main(spawner: Spawner, p: &'static Params, ctx: &'static Ctx) {
    ctx.samples.borrow_mut().reserve(p.timer_tasks);
    let cpu0 = measure::cpu_time();
    ctx.left.set(p.timer_tasks);
    for i in 0..p.timer_tasks {
        spawner.spawn(sleeper(p.timer_delay_ms(i), ctx).expect("spawn"));
    }
    ctx.all_done().await;
    ctx.elapsed.set(measure::cpu_time() - cpu0);
    ctx.finished.set(true);
}

/// Set from the waking OS thread, so it needs a real (critical-section) mutex.
static WAKE: Signal<CriticalSectionRawMutex, ()> = Signal::new();

fn cross_thread_wake(p: &Params) -> Vec<u64> {
    WAKE.reset();
    let probe = leak(WakeProbe::new());
    let (iters, gap) = (p.wake_iters, p.wake_gap);
    let waker = std::thread::spawn(move || probe.drive(iters, gap, || WAKE.signal(())));
    let ctx = run_workload(|s, ctx| s.spawn(wake_main(iters, probe, ctx).expect("spawn")));
    waker.join().expect("waker thread");
    ctx.samples.take()
}

#[embassy_executor::task]
async fn wake_main(iters: usize, probe: &'static WakeProbe, ctx: &'static Ctx) {
    let mut lat = Vec::with_capacity(iters);
    for _ in 0..iters {
        WAKE.wait().await;
        lat.push(probe.woke());
    }
    *ctx.samples.borrow_mut() = lat;
    ctx.finished.set(true);
}

#[embassy_executor::task(pool_size = LOCK_POOL)]
async fn locker(per_task: usize, mutex: &'static Mutex<NoopRawMutex, usize>, ctx: &'static Ctx) {
    for _ in 0..per_task {
        let mut guard = mutex.lock().await;
        *guard += 1;
        // Hold it across a switch, so the other tasks queue up behind it.
        yield_now().await;
    }
    ctx.tick();
}

#[embassy_executor::task]
async fn lock_main(spawner: Spawner, tasks: usize, total: usize, ctx: &'static Ctx) {
    let mutex = leak(Mutex::new(0usize));
    let per_task = total / tasks;
    let t0 = Instant::now();
    ctx.left.set(tasks);
    for _ in 0..tasks {
        spawner.spawn(locker(per_task, mutex, ctx).expect("spawn"));
    }
    ctx.all_done().await;
    assert_eq!(*mutex.lock().await, per_task * tasks);
    ctx.finish(t0);
}
