//! Port test: the `zephyr` port of `rtos-shims` inside a real Zephyr image, without the
//! runtime. Runs in the loop thread that the shim starts (`rust_main`); a `k_timer` expiry
//! handler in `main.c` calls [`port_test_on_timer`] in interrupt context.
//!
//! Prints one line per check, then `N passed, N failed`, then exits with the number of
//! failures (native_sim: process status; QEMU: semihosting).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::Cell;
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use critical_section::Mutex;
use rtos_shims::{in_isr, now_us, spawn_thread, Semaphore, ThreadConfig};

extern "C" {
    fn port_test_timer_start(period_us: u32);
    fn port_test_timer_stop();
    fn port_test_cycles() -> u32;
    fn port_test_cycles_per_sec() -> u32;
    fn uasyncio_test_exit(status: c_int) -> !;
    fn printk(fmt: *const core::ffi::c_char, ...);
}

type Check = fn() -> Result<(), String>;

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

fn sem_starts_empty() -> Result<(), String> {
    let sem = Semaphore::new().map_err(|e| format!("new: {e}"))?;
    ensure(!sem.take(Some(0)), || "a new semaphore was given".into())
}

fn sem_gives_coalesce() -> Result<(), String> {
    let sem = Semaphore::new().map_err(|e| format!("new: {e}"))?;
    sem.give();
    sem.give();
    ensure(sem.take(Some(0)), || "first take failed".into())?;
    ensure(!sem.take(Some(0)), || "two gives counted twice: not binary".into())
}

fn sem_timeout_is_never_short() -> Result<(), String> {
    let sem = Semaphore::new().map_err(|e| format!("new: {e}"))?;
    for wait_us in [1u64, 1_500, 20_000] {
        let t0 = now_us();
        let taken = sem.take(Some(wait_us));
        let waited = now_us() - t0;
        ensure(!taken, || format!("take({wait_us} us) succeeded with no give"))?;
        ensure(waited >= wait_us, || {
            format!("take({wait_us} us) returned after {waited} us")
        })?;
    }
    Ok(())
}

fn clock_is_monotonic() -> Result<(), String> {
    let mut prev = now_us();
    for _ in 0..10_000 {
        let now = now_us();
        ensure(now >= prev, || format!("clock went back: {prev} -> {now}"))?;
        prev = now;
    }
    Ok(())
}

fn thread_context() -> Result<(), String> {
    ensure(!in_isr(), || "in_isr() is true in a thread".into())?;
    ensure(rtos_shims::current_thread_id() != 0, || {
        "current_thread_id() is 0".into()
    })
}

fn spawned_threads_run_and_are_reaped() -> Result<(), String> {
    let me = rtos_shims::current_thread_id();
    // More threads than the heap could hold at once if finished ones were never freed.
    for i in 0..40u32 {
        let done = Arc::new(Semaphore::new().map_err(|e| format!("new: {e}"))?);
        let seen = Arc::new(AtomicUsize::new(0));
        let (d, s) = (done.clone(), seen.clone());
        let config = ThreadConfig {
            name: "port-test-worker",
            stack_size: 2048,
            priority: (i % 8) as u8 + 1,
        };
        spawn_thread(
            config,
            Box::new(move || {
                s.store(rtos_shims::current_thread_id(), Ordering::SeqCst);
                d.give();
            }),
        )
        .map_err(|e| format!("spawn {i}: {e}"))?;
        ensure(done.take(Some(1_000_000)), || {
            format!("thread {i} did not run within 1 s")
        })?;
        let id = seen.load(Ordering::SeqCst);
        ensure(id != 0 && id != me, || {
            format!("thread {i} saw id {id:#x}, loop thread is {me:#x}")
        })?;
    }
    // Priorities beyond Zephyr's preemptible range are refused, not clamped.
    let bad = ThreadConfig {
        name: "bad",
        stack_size: 2048,
        priority: 200,
    };
    let r = spawn_thread(bad, Box::new(|| {}));
    ensure(r == Err(rtos_shims::Error::Refused), || {
        format!("priority 200 gave {r:?}")
    })
}

fn critical_section_nests() -> Result<(), String> {
    let cell = Mutex::new(Cell::new(0u32));
    critical_section::with(|cs| {
        cell.borrow(cs).set(1);
        critical_section::with(|cs2| cell.borrow(cs2).set(cell.borrow(cs2).get() + 1));
    });
    let v = critical_section::with(|cs| cell.borrow(cs).get());
    ensure(v == 2, || format!("value {v}"))
}

fn allocator_honours_alignment() -> Result<(), String> {
    #[repr(align(64))]
    struct Aligned([u8; 64]);
    let mut boxes = Vec::new();
    for _ in 0..8 {
        let b = Box::new(Aligned([7; 64]));
        let addr = &*b as *const Aligned as usize;
        ensure(addr.is_multiple_of(64), || format!("Box<align 64> at {addr:#x}"))?;
        boxes.push(b);
    }
    ensure(boxes.iter().all(|b| b.0.iter().all(|&x| x == 7)), || {
        "Box contents".into()
    })?;
    let v: Vec<u64> = (0..1000).collect();
    ensure(v.iter().sum::<u64>() == 499_500, || "Vec<u64> contents".into())
}

// ---- interrupt-to-thread wakes ----------------------------------------------------------

/// Expiries the timer test waits for.
const EXPIRIES: u32 = 2_000;

static WAKE: Mutex<Cell<Option<&'static Semaphore>>> = Mutex::new(Cell::new(None));
static ISR_COUNT: AtomicU32 = AtomicU32::new(0);
static ISR_SAW_ISR: AtomicBool = AtomicBool::new(true);
static ISR_COUNTER_CS: Mutex<Cell<u32>> = Mutex::new(Cell::new(0));
static ISR_STAMP: AtomicU32 = AtomicU32::new(0);

/// Called by the k_timer expiry handler (interrupt context). Returns nonzero to stop.
#[no_mangle]
pub extern "C" fn port_test_on_timer() -> c_int {
    if !in_isr() {
        ISR_SAW_ISR.store(false, Ordering::Relaxed);
    }
    critical_section::with(|cs| {
        let c = ISR_COUNTER_CS.borrow(cs);
        c.set(c.get() + 1);
    });
    // SAFETY: reads the cycle counter; ISR-safe.
    ISR_STAMP.store(unsafe { port_test_cycles() }, Ordering::Relaxed);
    let n = ISR_COUNT.fetch_add(1, Ordering::AcqRel) + 1;
    if let Some(sem) = critical_section::with(|cs| WAKE.borrow(cs).get()) {
        sem.give_from_isr();
    }
    c_int::from(n >= EXPIRIES)
}

fn timer_isr_wakes_thread() -> Result<(), String> {
    let sem: &'static Semaphore = Box::leak(Box::new(Semaphore::new().map_err(|e| format!("new: {e}"))?));
    critical_section::with(|cs| WAKE.borrow(cs).set(Some(sem)));
    ISR_COUNT.store(0, Ordering::SeqCst);
    let t0 = now_us();
    // SAFETY: plain C function; starts the k_timer defined in main.c.
    unsafe { port_test_timer_start(1_000) };
    let mut wakes = 0u32;
    let (mut lat_n, mut lat_sum, mut lat_min, mut lat_max) = (0u32, 0u64, u32::MAX, 0u32);
    let result = loop {
        // Every expiry gives; a wait of 1 s with the timer running means a lost wake.
        let before = ISR_COUNT.load(Ordering::Acquire);
        if !sem.take(Some(1_000_000)) {
            break Err(format!(
                "no wake within 1 s after {} expiries",
                ISR_COUNT.load(Ordering::SeqCst)
            ));
        }
        // SAFETY: reads the cycle counter.
        let now = unsafe { port_test_cycles() };
        // The floor the runtime's ISR -> task path is compared with: expiry handler -> this
        // thread through k_sem_give alone, on wakes for exactly one new expiry.
        if ISR_COUNT.load(Ordering::Acquire) == before + 1 {
            let lat = now.wrapping_sub(ISR_STAMP.load(Ordering::Relaxed));
            if (lat as i32) >= 0 {
                lat_n += 1;
                lat_sum += u64::from(lat);
                lat_min = lat_min.min(lat);
                lat_max = lat_max.max(lat);
            }
        }
        wakes += 1;
        if ISR_COUNT.load(Ordering::Acquire) >= EXPIRIES {
            break Ok(());
        }
    };
    // SAFETY: plain C function; stops the k_timer.
    unsafe { port_test_timer_stop() };
    critical_section::with(|cs| WAKE.borrow(cs).set(None));
    result?;
    let elapsed = now_us() - t0;
    let isr_cs = critical_section::with(|cs| ISR_COUNTER_CS.borrow(cs).get());
    log::info!("{EXPIRIES} k_timer expiries in {elapsed} us, {wakes} wakes (gives coalesce)");
    // SAFETY: plain C getter.
    let hz = unsafe { port_test_cycles_per_sec() };
    let avg = lat_sum.checked_div(u64::from(lat_n)).unwrap_or(0);
    log::info!("k_timer ISR -> thread (k_sem) latency over {lat_n} wakes: min {lat_min} / avg {avg} / max {lat_max} cycles at {hz} Hz");
    ensure(ISR_SAW_ISR.load(Ordering::SeqCst), || {
        "in_isr() was false in the k_timer handler".into()
    })?;
    ensure(isr_cs == EXPIRIES, || {
        format!("critical-section counter {isr_cs} != {EXPIRIES}")
    })?;
    ensure(elapsed >= u64::from(EXPIRIES - 1) * 1_000, || {
        format!("{EXPIRIES} 1 ms periods took {elapsed} us")
    })
}

const CHECKS: &[(&str, Check)] = &[
    ("semaphore starts empty", sem_starts_empty),
    ("semaphore gives coalesce (binary)", sem_gives_coalesce),
    ("semaphore timeout is never short", sem_timeout_is_never_short),
    ("clock is monotonic", clock_is_monotonic),
    ("thread context: not in ISR, thread id", thread_context),
    ("spawned threads run and are reaped", spawned_threads_run_and_are_reaped),
    ("critical section nests", critical_section_nests),
    ("allocator honours alignment", allocator_honours_alignment),
    ("k_timer ISR wakes the thread (k_sem_give)", timer_isr_wakes_thread),
];

/// The loop thread's body (CONFIG_UASYNCIO_LOOP_THREAD=y).
#[no_mangle]
pub extern "C" fn rust_main() {
    let (mut passed, mut failed): (c_int, c_int) = (0, 0);
    for (name, check) in CHECKS {
        match check() {
            Ok(()) => {
                passed += 1;
                log::info!("PASS {name}");
            }
            Err(msg) => {
                failed += 1;
                log::error!("FAIL {name}: {msg}");
            }
        }
    }
    // SAFETY: printk with a NUL-terminated format whose two %d match two c_int arguments.
    unsafe { printk(c"%d passed, %d failed\n".as_ptr(), passed, failed) };
    // SAFETY: plain C function; ends the image with this status.
    unsafe { uasyncio_test_exit(failed) }
}
