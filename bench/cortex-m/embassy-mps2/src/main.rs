//! The embassy column of the Cortex-M3 benchmark (`scripts/cortexm-bench.sh`): embassy-executor
//! 0.10's thread-mode Cortex-M executor (`platform-cortex-m` + `executor-thread`: poll, then
//! `wfe`; a wake is `sev`), bare metal on QEMU mps2-an385, measured exactly the way the
//! uasyncio firmware measures itself (`firmware/mps2-an385/rust/src/bench.rs` and
//! `main.c`):
//!
//! - `embassy-yield`: two tasks each looping on `embassy_futures::yield_now().await`;
//!   instructions per task switch (our row: two tasks looping on `sleep_ms(0)`).
//! - `embassy-spawn`: spawning a trivial task (`#[embassy_executor::task(pool_size = 1)]`) and
//!   waiting for it to finish: the task signals a `Signal<NoopRawMutex, ()>` the spawner awaits
//!   (embassy tasks have no join handle); instructions per spawn + complete, which covers
//!   claiming the pool slot, the task's poll, its completion (slot freed) and the spawner's
//!   wake-up (our row: `create_task(trivial).await`).
//! - `embassy-signal`: timer0's interrupt handler sets a `Signal<CriticalSectionRawMutex, ()>`
//!   a task awaits; instructions from the interrupt to the task running again (our row: a C
//!   ISR setting a `ThreadSafeFlag`).
//!
//! Clocks, as in the uasyncio firmware: under QEMU `-icount shift=S` one instruction takes 2^S
//! ns of virtual time and the CMSDK timers count SYSCLK (40 ns), so `ticks * 40 >> S`
//! instructions passed. The interrupt row reads timer0 (`RELOAD - VALUE` after the interrupt
//! at zero, 201 samples after 5 warm-up ones); the other two are clocked by free-running
//! timer1 in 201 short batches after 5 warm-up ones, minus the cost of two clock reads; each
//! report is the median.
//!
//! Program and shift come from the semihosting command line:
//! `qemu-system-arm -M mps2-an385 ... -semihosting-config enable=on,target=native,arg=fw,arg=<program>,arg=shift=7 -icount shift=7`.
#![no_std]
#![no_main]

mod board;
/// The benchmarks' method, shared with the uasyncio firmware (firmware/mps2-an385).
#[path = "../../common/measure.rs"]
mod measure;

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cortex_m_rt::{entry, exception, ExceptionFrame};
use embassy_executor::{Executor, Spawner};
use embassy_futures::yield_now;
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};
use embassy_sync::signal::Signal;
use measure::{BATCHES, BATCH_WARMUP};

/// Timer0's period for the interrupt row: the same as the uasyncio firmware's (main.c).
const RELOAD: u32 = 19_997;
const SAMPLES: usize = 201;
const WARMUP: usize = 5;
/// Iterations of the measuring task per batch; every iteration is two task switches.
const YIELD_ITERS: u32 = 2;
/// Spawns per batch.
const SPAWN_ITERS: u32 = 1;

/// A value only tasks of the one thread-mode executor touch (never an interrupt handler), so
/// it may live in a `static` without being `Sync` itself: what an embassy user gets from a
/// `StaticCell` or a leaked box. It lets the spawn row use `NoopRawMutex`, as embassy code
/// between tasks of one executor does.
struct ExecutorLocal<T>(T);

// SAFETY: see the type's doc: every access comes from the thread-mode executor, one task at a
// time; nothing else runs Rust code that touches these values.
unsafe impl<T> Sync for ExecutorLocal<T> {}

static EXECUTOR: ExecutorLocal<core::cell::UnsafeCell<MaybeUninit<Executor>>> =
    ExecutorLocal(core::cell::UnsafeCell::new(MaybeUninit::uninit()));

#[entry]
fn main() -> ! {
    board::uart_init();
    let mut buf = [0u8; 160];
    let cmd = board::cmdline(&mut buf);
    println!("embassy mps2-an385: {cmd}");
    let mut words = cmd.split_ascii_whitespace();
    // Skip the program name ("fw").
    let _ = words.next();
    let program = words.next().unwrap_or("");
    let shift = words
        .find_map(|w| w.strip_prefix("shift="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let program = match program {
        "embassy-yield" => Program::Yield,
        "embassy-spawn" => Program::Spawn,
        "embassy-signal" => Program::Signal,
        other => {
            println!("unknown program {other:?} (embassy-yield, embassy-spawn, embassy-signal)");
            board::exit(1)
        }
    };
    // SAFETY: `main` runs once, so this is the only reference to EXECUTOR ever made.
    let executor = unsafe { (*EXECUTOR.0.get()).write(Executor::new()) };
    executor.run(|spawner| match bench_main(spawner, program, shift) {
        Ok(token) => spawner.spawn(token),
        Err(e) => {
            println!("spawn: {e:?}");
            board::exit(1)
        }
    })
}

#[derive(Clone, Copy)]
enum Program {
    Yield,
    Spawn,
    Signal,
}

#[embassy_executor::task]
async fn bench_main(spawner: Spawner, program: Program, shift: u32) {
    let code = match program {
        Program::Yield => bench_yield(spawner, shift).await,
        Program::Spawn => bench_spawn(spawner, shift).await,
        Program::Signal => bench_signal(shift).await,
    };
    println!("{}", if code == 0 { "firmware: PASS" } else { "firmware: FAIL" });
    board::exit(code)
}

// ---- the free-running clock (timer1) --------------------------------------------------------

#[inline(always)]
fn clock() -> u32 {
    board::timer_value(board::TIMER1)
}

/// Prints `report: <what>: <PerOp>`, the uasyncio firmware's format (one shared method).
fn report_per_op(what: &str, ticks: &mut [u32], per_batch: u32, shift: u32) {
    println!("report: {what}: {}", measure::PerOp::new(ticks, per_batch, shift));
}

/// Prints `report: <what>: IRQ -> task resumed, n=.. instructions min .. median .. max ..`,
/// the format of the uasyncio firmware's `fw_report_latency` (main.c).
fn report_latency(what: &str, ticks: &mut [u32], shift: u32) {
    ticks.sort_unstable();
    let n = ticks.len();
    let (min, med, max) = (ticks[0], ticks[n / 2], ticks[n - 1]);
    let ins = |t: u32| (t * 40) >> shift;
    println!(
        "report: {what}: IRQ -> task resumed, n={n} instructions min {} median {} max {} (timer ticks {min}/{med}/{max}, icount shift {shift})",
        ins(min),
        ins(med),
        ins(max)
    );
}

// ---- embassy-yield -----------------------------------------------------------------------

static STOP: AtomicBool = AtomicBool::new(false);
static PARTNER_YIELDS: AtomicU32 = AtomicU32::new(0);
static PARTNER_DONE: ExecutorLocal<Signal<NoopRawMutex, ()>> = ExecutorLocal(Signal::new());

#[embassy_executor::task]
async fn partner() {
    while !STOP.load(Ordering::Relaxed) {
        PARTNER_YIELDS.fetch_add(1, Ordering::Relaxed);
        yield_now().await;
    }
    PARTNER_DONE.0.signal(());
}

async fn bench_yield(spawner: Spawner, shift: u32) -> i32 {
    board::timer_start(board::TIMER1, u32::MAX, false);
    let overhead = measure::clock_overhead(clock);
    match partner() {
        Ok(token) => spawner.spawn(token),
        Err(e) => {
            println!("embassy-yield: spawn: {e:?}");
            return 1;
        }
    }
    // Let the partner start.
    yield_now().await;
    let start = PARTNER_YIELDS.load(Ordering::Relaxed);
    let mut ticks = [0u32; BATCHES];
    for i in 0..BATCHES + BATCH_WARMUP {
        let t0 = clock();
        for _ in 0..YIELD_ITERS {
            yield_now().await;
        }
        let t1 = clock();
        if let Some((slot, v)) = measure::batch(i, t0, t1, overhead) {
            ticks[slot] = v;
        }
    }
    let partner_runs = PARTNER_YIELDS.load(Ordering::Relaxed) - start;
    STOP.store(true, Ordering::Relaxed);
    PARTNER_DONE.0.wait().await;
    board::timer_stop(board::TIMER1);
    // Both tasks run once per executor pass; which of the two goes first in a pass alternates
    // (embassy's run queue is a stack), so the partner's count may be one off either way.
    let expected = (BATCHES + BATCH_WARMUP) as u32 * YIELD_ITERS;
    if partner_runs.abs_diff(expected) > 1 {
        println!("embassy-yield: the partner ran {partner_runs} times, expected {expected} (not alternating)");
        return 1;
    }
    report_per_op(
        "embassy task switch (2 tasks, yield_now)",
        &mut ticks,
        2 * YIELD_ITERS,
        shift,
    );
    0
}

// ---- embassy-spawn -----------------------------------------------------------------------

static TRIVIAL_DONE: ExecutorLocal<Signal<NoopRawMutex, u32>> = ExecutorLocal(Signal::new());

#[embassy_executor::task(pool_size = 1)]
async fn trivial() {
    TRIVIAL_DONE.0.signal(core::hint::black_box(1u32));
}

async fn bench_spawn(spawner: Spawner, shift: u32) -> i32 {
    board::timer_start(board::TIMER1, u32::MAX, false);
    let overhead = measure::clock_overhead(clock);
    let mut ticks = [0u32; BATCHES];
    for i in 0..BATCHES + BATCH_WARMUP {
        let t0 = clock();
        for _ in 0..SPAWN_ITERS {
            // With one slot, a spawn fails unless the previous task has finished and freed it.
            match trivial() {
                Ok(token) => spawner.spawn(token),
                Err(e) => {
                    println!("embassy-spawn: spawn: {e:?}");
                    return 1;
                }
            }
            core::hint::black_box(TRIVIAL_DONE.0.wait().await);
        }
        let t1 = clock();
        if let Some((slot, v)) = measure::batch(i, t0, t1, overhead) {
            ticks[slot] = v;
        }
    }
    board::timer_stop(board::TIMER1);
    report_per_op(
        "embassy spawn + complete (spawn pool_size=1 task, await its Signal)",
        &mut ticks,
        SPAWN_ITERS,
        shift,
    );
    0
}

// ---- embassy-signal ----------------------------------------------------------------------

static IRQ_SIGNAL: Signal<CriticalSectionRawMutex, ()> = Signal::new();
static TIMER0_IRQS: AtomicU32 = AtomicU32::new(0);
/// NVIC priority of timer0, as in the uasyncio firmware (no RTOS here, so any would do).
const IRQ_PRIORITY: u8 = 0xC0;

/// Timer0's interrupt handler (vector in `board::__INTERRUPTS`): clears the interrupt, counts
/// it and sets the signal, as main.c's TIMER0_Handler does with its semaphore or flag.
#[no_mangle]
extern "C" fn TIMER0_Handler() {
    board::timer_clear(board::TIMER0);
    TIMER0_IRQS.store(TIMER0_IRQS.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    IRQ_SIGNAL.signal(());
}

async fn bench_signal(shift: u32) -> i32 {
    IRQ_SIGNAL.reset();
    let mut ticks = [0u32; SAMPLES];
    board::irq_enable(board::TIMER0_IRQ, IRQ_PRIORITY);
    board::timer_start(board::TIMER0, RELOAD, true);
    for i in 0..SAMPLES + WARMUP {
        IRQ_SIGNAL.wait().await;
        let value = board::timer_value(board::TIMER0);
        if i >= WARMUP {
            ticks[i - WARMUP] = RELOAD - value;
        }
    }
    board::timer_stop(board::TIMER0);
    board::irq_disable(board::TIMER0_IRQ);
    let irqs = TIMER0_IRQS.load(Ordering::Relaxed);
    if irqs != (SAMPLES + WARMUP) as u32 {
        println!(
            "embassy-signal: {irqs} interrupts for {} wakes (a wake was late by a whole period)",
            SAMPLES + WARMUP
        );
        return 1;
    }
    report_latency(
        "embassy Signal (timer0 ISR -> Signal::signal -> awaiting task)",
        &mut ticks,
        shift,
    );
    0
}

// ---- faults ------------------------------------------------------------------------------

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("\r\nFATAL: {info}");
    board::exit(1)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    println!("\r\nFATAL: hard fault at pc {:#010x}", frame.pc());
    board::exit(1)
}
