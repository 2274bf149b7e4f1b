//! rtos-shims' freertos port on Cortex-M3: what the POSIX test cannot show (a real interrupt
//! controller, SysTick sub-tick time, BASEPRI critical sections against a real ISR).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rtos_shims::{NotifySemaphore, ThreadConfig};

use crate::{board, println};

type Check = fn() -> Result<(), &'static str>;

/// Runs every check; prints `N passed, N failed`; returns the verdict.
pub fn run() -> i32 {
    let checks: [(&str, Check); 6] = [
        ("clock_subtick", clock_subtick),
        ("timeouts", timeouts),
        ("isr_gives", isr_gives),
        ("critical_section_vs_isr", critical_section_vs_isr),
        ("heap_alignment", heap_alignment),
        ("spawn_thread", spawn_thread),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        match check() {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    i32::from(failed != 0)
}

fn clock_subtick() -> Result<(), &'static str> {
    let mut last = rtos_shims::now_us();
    let mut distinct_in_tick = 0u32;
    for _ in 0..20_000 {
        let now = rtos_shims::now_us();
        if now < last {
            return Err("now_us went back");
        }
        if now != last && now / 1000 == last / 1000 {
            distinct_in_tick += 1;
        }
        last = now;
    }
    if distinct_in_tick == 0 {
        return Err("no sub-tick resolution");
    }
    println!("report: now_us advanced {distinct_in_tick} times inside ticks (SysTick sub-tick us)");
    Ok(())
}

fn timeouts() -> Result<(), &'static str> {
    let s = NotifySemaphore::new_const();
    for timeout in [1u64, 250, 999, 1_000, 1_500, 12_345] {
        let t0 = rtos_shims::now_us();
        if s.take(Some(timeout)) {
            return Err("take succeeded without a give");
        }
        let waited = rtos_shims::now_us() - t0;
        if waited < timeout {
            return Err("take returned before its deadline");
        }
        if waited > timeout + 2_000 {
            return Err("take overslept by more than two ticks");
        }
    }
    Ok(())
}

static ISR_SEM: NotifySemaphore = NotifySemaphore::new_const();
static ISR_COUNT: AtomicU32 = AtomicU32::new(0);
static ISR_CONTEXT_OK: AtomicBool = AtomicBool::new(true);

extern "C" fn isr_give() {
    if !rtos_shims::in_isr() || rtos_shims::current_thread_id() != usize::MAX {
        ISR_CONTEXT_OK.store(false, Ordering::Relaxed);
    }
    ISR_COUNT.fetch_add(1, Ordering::Relaxed);
    ISR_SEM.give_from_isr();
}

fn isr_gives() -> Result<(), &'static str> {
    const N: u32 = 1_000;
    board::timer0_start(isr_give, 24_999);
    let mut wakes = 0;
    while ISR_COUNT.load(Ordering::Relaxed) < N {
        if !ISR_SEM.take(Some(100_000)) {
            return Err("no wake within 100 ms");
        }
        wakes += 1;
    }
    board::timer0_stop();
    if !ISR_CONTEXT_OK.load(Ordering::Relaxed) {
        return Err("in_isr()/current_thread_id() wrong inside the IRQ");
    }
    if rtos_shims::in_isr() {
        return Err("in_isr() true in a task");
    }
    println!("report: {N} timer0 IRQs -> {wakes} task wakes");
    Ok(())
}

static mut SHARED: u32 = 0;
static CS_ISR_ADDS: AtomicU32 = AtomicU32::new(0);

extern "C" fn isr_add() {
    critical_section::with(|_| {
        // SAFETY: SHARED is only accessed inside critical sections.
        unsafe { core::ptr::write_volatile(&raw mut SHARED, core::ptr::read_volatile(&raw const SHARED) + 1) };
    });
    CS_ISR_ADDS.fetch_add(1, Ordering::Relaxed);
}

fn critical_section_vs_isr() -> Result<(), &'static str> {
    const N: u32 = 200_000;
    // A fast timer (every 250 cycles) so that the IRQ often lands inside the task's section.
    board::timer0_start(isr_add, 249);
    for _ in 0..N {
        critical_section::with(|_| {
            // SAFETY: SHARED is only accessed inside critical sections.
            unsafe {
                let v = core::ptr::read_volatile(&raw const SHARED);
                core::hint::spin_loop();
                core::ptr::write_volatile(&raw mut SHARED, v + 1);
            }
        });
    }
    board::timer0_stop();
    let isr = CS_ISR_ADDS.load(Ordering::Relaxed);
    // SAFETY: the timer is stopped; read inside a critical section.
    let total = critical_section::with(|_| unsafe { core::ptr::read_volatile(&raw const SHARED) });
    if isr == 0 {
        return Err("the timer interrupt never ran");
    }
    if total != N + isr {
        return Err("lost updates between the task and the ISR");
    }
    println!("report: critical sections: {N} task + {isr} ISR increments, none lost");
    Ok(())
}

fn heap_alignment() -> Result<(), &'static str> {
    let heap = rtos_shims::FreeRtosHeap;
    for align in [1usize, 4, 8, 16, 32, 64, 256, 1024] {
        for size in [1usize, 5, 64, 700] {
            let layout = Layout::from_size_align(size, align).map_err(|_| "layout")?;
            // SAFETY: non-zero size.
            let p = unsafe { heap.alloc(layout) };
            if p.is_null() || (p as usize) % align != 0 {
                return Err("misaligned or failed allocation");
            }
            // SAFETY: `p` has `size` writable bytes.
            unsafe { core::ptr::write_bytes(p, 0x5A, size) };
            // SAFETY: allocated above with this layout.
            unsafe { heap.dealloc(p, layout) };
        }
    }
    let v: Vec<u64> = (0..1000).collect();
    if v.iter().sum::<u64>() != 499_500 {
        return Err("Vec through the FreeRTOS heap");
    }
    Ok(())
}

static SPAWN_DONE: NotifySemaphore = NotifySemaphore::new_const();
static SPAWN_HWM: AtomicU32 = AtomicU32::new(0);

fn spawn_thread() -> Result<(), &'static str> {
    let config = ThreadConfig {
        name: "worker",
        stack_size: 4096,
        priority: 4,
    };
    rtos_shims::spawn_thread(
        config,
        Box::new(|| {
            let me = rtos_shims::current_thread_id();
            SPAWN_HWM.store(rtos_shims::stack_high_water_bytes(me) as u32, Ordering::Relaxed);
            SPAWN_DONE.give();
        }),
    )
    .map_err(|_| "spawn failed")?;
    if !SPAWN_DONE.take(Some(100_000)) {
        return Err("the spawned task did not run");
    }
    let bad = ThreadConfig {
        name: "bad",
        stack_size: 4096,
        priority: 8,
    };
    if rtos_shims::spawn_thread(bad, Box::new(|| {})) != Err(rtos_shims::Error::Refused) {
        return Err("priority 8 accepted");
    }
    println!(
        "report: 4096-byte task stack, high-water mark {} bytes free",
        SPAWN_HWM.load(Ordering::Relaxed)
    );
    Ok(())
}
