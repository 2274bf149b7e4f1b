//! Instruction counts from the timer0 interrupt to the waiting task running again, through
//! rtos-shims' semaphores (compare with main.c's raw FreeRTOS figures); and uasyncio's own
//! task switch (`bench-yield`) and spawn + complete (`bench-spawn`), clocked by timer1.

use core::sync::atomic::{AtomicPtr, Ordering};

use crate::measure::{self, BATCHES, BATCH_WARMUP};
use crate::{board, println};

/// The same period as main.c's raw benchmark.
pub const RELOAD: u32 = 19_997;
const SAMPLES: usize = 201;
const WARMUP: usize = 5;

/// The two semaphore flavours behind one interface.
pub trait Sem: Sync + 'static {
    /// A leaked instance.
    fn create() -> &'static Self;
    /// From the ISR.
    fn give_from_isr(&self);
    /// From the task.
    fn take(&self, timeout_us: Option<u64>) -> bool;
}

impl Sem for rtos_shims::BinarySemaphore {
    fn create() -> &'static Self {
        match rtos_shims::BinarySemaphore::new() {
            Ok(s) => alloc::boxed::Box::leak(alloc::boxed::Box::new(s)),
            Err(e) => panic!("semaphore: {e}"),
        }
    }
    fn give_from_isr(&self) {
        rtos_shims::BinarySemaphore::give_from_isr(self)
    }
    fn take(&self, t: Option<u64>) -> bool {
        rtos_shims::BinarySemaphore::take(self, t)
    }
}

impl Sem for rtos_shims::NotifySemaphore {
    fn create() -> &'static Self {
        alloc::boxed::Box::leak(alloc::boxed::Box::new(rtos_shims::NotifySemaphore::new_const()))
    }
    fn give_from_isr(&self) {
        rtos_shims::NotifySemaphore::give_from_isr(self)
    }
    fn take(&self, t: Option<u64>) -> bool {
        rtos_shims::NotifySemaphore::take(self, t)
    }
}

static SEM: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

extern "C" fn give_hook<S: Sem>() {
    let sem = SEM.load(Ordering::Relaxed) as *const S;
    // SAFETY: SEM holds a leaked `&'static S` stored before the timer started.
    unsafe { &*sem }.give_from_isr();
}

/// Timer0 IRQ → `give_from_isr` → the task blocked in `take(None)`; prints the counts.
pub fn shim<S: Sem>(what: &str, shift: u32) -> i32 {
    let sem = S::create();
    SEM.store(sem as *const S as *mut (), Ordering::Relaxed);
    let mut ticks = [0u32; SAMPLES];
    board::timer0_start(give_hook::<S>, RELOAD);
    for i in 0..SAMPLES + WARMUP {
        sem.take(None);
        let value = board::timer0_value();
        if i >= WARMUP {
            ticks[i - WARMUP] = RELOAD - value;
        }
    }
    board::timer0_stop();
    board::report_latency(what, &mut ticks, shift);
    0
}

// ---- uasyncio's own costs: task switch (sleep_ms(0)) and spawn + complete ---------------
//
// Timer1 runs free (no interrupt) as the clock; the method (batches, warm-up, the clock's
// own cost, ticks to instructions) is `measure`, shared with embassy's image.

/// CMSDK timer1 (the benchmarks and flag tests use timer0 and its IRQ).
const TIMER1: usize = 0x4000_1000;

fn timer1_free_run() {
    // SAFETY: CMSDK timer1 registers (CTRL +0, VALUE +4, RELOAD +8, INTCLEAR +0xC), a device
    // nothing else uses; CTRL bit 3 (interrupt enable) stays clear, so no IRQ is raised.
    unsafe {
        core::ptr::write_volatile(TIMER1 as *mut u32, 0);
        core::ptr::write_volatile((TIMER1 + 0xC) as *mut u32, 1);
        core::ptr::write_volatile((TIMER1 + 8) as *mut u32, u32::MAX);
        core::ptr::write_volatile((TIMER1 + 4) as *mut u32, u32::MAX);
        core::ptr::write_volatile(TIMER1 as *mut u32, 1);
    }
}

fn timer1_stop() {
    // SAFETY: CTRL of CMSDK timer1, as above.
    unsafe { core::ptr::write_volatile(TIMER1 as *mut u32, 0) }
}

#[inline(always)]
fn timer1_value() -> u32 {
    // SAFETY: VALUE register of CMSDK timer1, always readable.
    unsafe { core::ptr::read_volatile((TIMER1 + 4) as *const u32) }
}

/// Prints `report: <what>: <PerOp>` (the line the scripts read).
fn report_per_op(what: &str, ticks: &mut [u32], per_batch: u32, shift: u32) {
    println!("report: {what}: {}", measure::PerOp::new(ticks, per_batch, shift));
}

static STOP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
static PARTNER_YIELDS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Iterations of the measuring task per batch; every iteration is two task switches.
const YIELD_ITERS: u32 = 2;

/// `bench-yield`: two tasks each looping on `sleep_ms(0).await`; instructions per task switch
/// (one task's `sleep_ms(0)` to the other running again). `bench-yield-timer` (`timer`): the
/// same with a third task asleep in a long `sleep_ms`, so that every pass of the loop looks
/// at a pending timer, as it does in most firmware.
pub fn yield_switch(shift: u32, timer: bool) -> i32 {
    STOP.store(false, Ordering::Relaxed);
    PARTNER_YIELDS.store(0, Ordering::Relaxed);
    timer1_free_run();
    let overhead = measure::clock_overhead(timer1_value);
    let result = uasyncio::run(async move {
        let sleeper = timer.then(|| uasyncio::create_task(async { uasyncio::sleep_ms(3_600_000).await }));
        let partner = uasyncio::create_task(async {
            while !STOP.load(Ordering::Relaxed) {
                PARTNER_YIELDS.fetch_add(1, Ordering::Relaxed);
                uasyncio::sleep_ms(0).await?;
            }
            Ok(())
        });
        // Let the partner start and block in its first sleep_ms(0).
        uasyncio::sleep_ms(0).await?;
        let start = PARTNER_YIELDS.load(Ordering::Relaxed);
        let mut ticks = [0u32; BATCHES];
        for i in 0..BATCHES + BATCH_WARMUP {
            let t0 = timer1_value();
            for _ in 0..YIELD_ITERS {
                uasyncio::sleep_ms(0).await?;
            }
            let t1 = timer1_value();
            if let Some((slot, v)) = measure::batch(i, t0, t1, overhead) {
                ticks[slot] = v;
            }
        }
        let partner_runs = PARTNER_YIELDS.load(Ordering::Relaxed) - start;
        STOP.store(true, Ordering::Relaxed);
        partner.await?;
        if let Some(sleeper) = sleeper {
            sleeper.cancel()?;
            // Its sleep's `Cancelled`, the outcome a cancelled task has.
            let _ = sleeper.await;
        }
        Ok((ticks, partner_runs))
    });
    timer1_stop();
    match result {
        Ok((mut ticks, partner_runs)) => {
            let expected = (BATCHES + BATCH_WARMUP) as u32 * YIELD_ITERS;
            if partner_runs != expected {
                println!("bench-yield: the partner ran {partner_runs} times, expected {expected} (not alternating)");
                return 1;
            }
            report_per_op(
                if timer {
                    "uasyncio task switch (2 tasks, sleep_ms(0), a timer pending)"
                } else {
                    "uasyncio task switch (2 tasks, sleep_ms(0))"
                },
                &mut ticks,
                2 * YIELD_ITERS,
                shift,
            );
            0
        }
        Err(e) => {
            println!("bench-yield: {e}");
            1
        }
    }
}

/// Spawns per batch.
const SPAWN_ITERS: u32 = 1;

/// `bench-spawn`: `create_task(trivial).await`, in a loop; instructions per spawn + complete
/// (allocation, first poll, completion, waking and resuming the awaiting task, freeing).
pub fn spawn(shift: u32) -> i32 {
    timer1_free_run();
    let overhead = measure::clock_overhead(timer1_value);
    let result = uasyncio::run(async move {
        let mut ticks = [0u32; BATCHES];
        for i in 0..BATCHES + BATCH_WARMUP {
            let t0 = timer1_value();
            for _ in 0..SPAWN_ITERS {
                uasyncio::create_task(async { Ok(core::hint::black_box(1u32)) }).await?;
            }
            let t1 = timer1_value();
            if let Some((slot, v)) = measure::batch(i, t0, t1, overhead) {
                ticks[slot] = v;
            }
        }
        Ok(ticks)
    });
    timer1_stop();
    match result {
        Ok(mut ticks) => {
            report_per_op(
                "uasyncio spawn + complete (create_task(trivial).await)",
                &mut ticks,
                SPAWN_ITERS,
                shift,
            );
            0
        }
        Err(e) => {
            println!("bench-spawn: {e}");
            1
        }
    }
}
