//! rtos-shims' `freertos` port on the real kernel (POSIX simulator): semaphores between tasks
//! and from the tick interrupt, timeouts, the clock, critical sections, the heap, tasks, and
//! the misuse checks. Each case runs in its own process (see the harness in `src/lib.rs`).
//!
//! Two cases also measure (printed as `report:` lines, never asserted): task→task and
//! tick-ISR→task wake latency for the binary semaphore and the task notification.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use freertos_posix_tests::{delay_ms, main as run_cases, report, sys, Case, Expect, CASE_PRIORITY};
use rtos_shims::{BinarySemaphore, NotifySemaphore, ThreadConfig};

/// The two semaphore flavours behind one interface, so each case runs on both.
trait Sem: Send + Sync + 'static {
    const NAME: &'static str;
    fn make() -> &'static Self;
    fn give(&self);
    fn give_from_isr(&self);
    fn take(&self, timeout_us: Option<u64>) -> bool;
}

impl Sem for BinarySemaphore {
    const NAME: &'static str = "binary semaphore";
    fn make() -> &'static Self {
        Box::leak(Box::new(BinarySemaphore::new().expect("heap has room for a semaphore")))
    }
    fn give(&self) {
        BinarySemaphore::give(self)
    }
    fn give_from_isr(&self) {
        BinarySemaphore::give_from_isr(self)
    }
    fn take(&self, t: Option<u64>) -> bool {
        BinarySemaphore::take(self, t)
    }
}

impl Sem for NotifySemaphore {
    const NAME: &'static str = "task notification";
    fn make() -> &'static Self {
        Box::leak(Box::new(NotifySemaphore::new_const()))
    }
    fn give(&self) {
        NotifySemaphore::give(self)
    }
    fn give_from_isr(&self) {
        NotifySemaphore::give_from_isr(self)
    }
    fn take(&self, t: Option<u64>) -> bool {
        NotifySemaphore::take(self, t)
    }
}

fn spawn(name: &'static str, priority: u8, body: impl FnOnce() + Send + 'static) {
    let config = ThreadConfig {
        name,
        stack_size: 16 * 1024,
        priority,
    };
    if let Err(e) = rtos_shims::spawn_thread(config, Box::new(body)) {
        panic!("spawn {name}: {e}");
    }
}

fn percentile(samples: &mut [u64], p: usize) -> u64 {
    samples.sort_unstable();
    samples
        .get(samples.len().saturating_sub(1) * p / 100)
        .copied()
        .unwrap_or(0)
}

// ---- task → task -------------------------------------------------------------------------

/// A higher-priority task echoes every `ping` with a `pong`; the case task measures the round
/// trip (two wakes).
fn ping_pong<S: Sem>() -> Result<(), String> {
    const ROUNDS: usize = 5_000;
    let ping = S::make();
    let pong = S::make();
    spawn("echo", CASE_PRIORITY + 1, move || {
        for _ in 0..ROUNDS {
            ping.take(None);
            pong.give();
        }
    });
    let mut rtt = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let t0 = Instant::now();
        ping.give();
        if !pong.take(Some(20_000_000)) {
            return Err(format!("{}: no pong in round {round}", S::NAME));
        }
        rtt.push(t0.elapsed().as_nanos() as u64);
    }
    let p50 = percentile(&mut rtt, 50);
    let p99 = percentile(&mut rtt, 99);
    report(&format!(
        "{}: task->task round trip (2 wakes) p50 {:.1} us, p99 {:.1} us",
        S::NAME,
        p50 as f64 / 1e3,
        p99 as f64 / 1e3
    ));
    Ok(())
}

fn gives_coalesce<S: Sem>() -> Result<(), String> {
    let s = S::make();
    s.give();
    s.give();
    if !s.take(Some(0)) {
        return Err("a given semaphore did not take".into());
    }
    if s.take(Some(5_000)) {
        return Err("two gives counted twice".into());
    }
    // A give from another task wakes a waiter blocked forever.
    spawn("giver", CASE_PRIORITY - 1, move || s.give());
    if !s.take(None) {
        return Err("take(None) returned false".into());
    }
    Ok(())
}

fn timeouts<S: Sem>() -> Result<(), String> {
    let s = S::make();
    if s.take(Some(0)) {
        return Err("take(Some(0)) on an empty semaphore succeeded".into());
    }
    for timeout in [1u64, 999, 1_000, 1_001, 25_000] {
        let t0 = rtos_shims::now_us();
        if s.take(Some(timeout)) {
            return Err(format!("take({timeout} us) succeeded without a give"));
        }
        let waited = rtos_shims::now_us() - t0;
        if waited < timeout {
            return Err(format!(
                "take({timeout} us) returned after {waited} us: before its deadline"
            ));
        }
        if waited > timeout + 1_000_000 {
            return Err(format!("take({timeout} us) returned after {waited} us"));
        }
    }
    Ok(())
}

// ---- tick interrupt → task ----------------------------------------------------------------

static ISR_GIVES: AtomicU64 = AtomicU64::new(0);
static ISR_LIMIT: AtomicU64 = AtomicU64::new(0);
static ISR_STAMP_NS: AtomicU64 = AtomicU64::new(0);
static ISR_SAW_ISR: AtomicBool = AtomicBool::new(true);
static ISR_SEM: AtomicUsize = AtomicUsize::new(0);

fn epoch() -> Instant {
    use std::sync::OnceLock;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn tick_hook<S: Sem>() -> extern "C" fn() {
    extern "C" fn hook<S: Sem>() {
        if !rtos_shims::in_isr() || rtos_shims::current_thread_id() != usize::MAX {
            ISR_SAW_ISR.store(false, Ordering::SeqCst);
        }
        let sem = ISR_SEM.load(Ordering::SeqCst) as *const S;
        if sem.is_null() || ISR_GIVES.load(Ordering::SeqCst) >= ISR_LIMIT.load(Ordering::SeqCst) {
            return;
        }
        ISR_STAMP_NS.store(epoch().elapsed().as_nanos() as u64, Ordering::SeqCst);
        ISR_GIVES.fetch_add(1, Ordering::SeqCst);
        // SAFETY: ISR_SEM holds a leaked `&'static S` set by the case before arming.
        unsafe { &*sem }.give_from_isr();
    }
    hook::<S>
}

/// The tick hook gives `N` times; the case task counts, none may be lost: after the last give
/// the task is woken and sees the full count. Also records ISR→task wake latency.
fn tick_isr_wakes<S: Sem>() -> Result<(), String> {
    const N: u64 = 2_000;
    let s = S::make();
    let _ = epoch();
    ISR_SEM.store(s as *const S as usize, Ordering::SeqCst);
    ISR_LIMIT.store(N, Ordering::SeqCst);
    // SAFETY: installs a hook that only touches atomics and the semaphore's FromISR give.
    unsafe { sys::posix_set_tick_hook(Some(tick_hook::<S>())) };
    let mut wakes = 0u64;
    let mut latency = Vec::with_capacity(N as usize);
    let deadline = rtos_shims::now_us() + 300_000_000;
    loop {
        if !s.take(Some(10_000_000)) {
            return Err(format!(
                "{}: no wake for 10 s after {} gives",
                S::NAME,
                ISR_GIVES.load(Ordering::SeqCst)
            ));
        }
        let now = epoch().elapsed().as_nanos() as u64;
        latency.push(now.saturating_sub(ISR_STAMP_NS.load(Ordering::SeqCst)));
        wakes += 1;
        if ISR_GIVES.load(Ordering::SeqCst) == N {
            break;
        }
        if rtos_shims::now_us() > deadline {
            return Err("too slow".into());
        }
    }
    // SAFETY: removes the hook.
    unsafe { sys::posix_set_tick_hook(None) };
    if !ISR_SAW_ISR.load(Ordering::SeqCst) {
        return Err("in_isr() was false or current_thread_id() was a task's inside the tick hook".into());
    }
    if rtos_shims::in_isr() {
        return Err("in_isr() true in a task".into());
    }
    let p50 = percentile(&mut latency, 50);
    let p99 = percentile(&mut latency, 99);
    report(&format!(
        "{}: {N} tick-ISR gives, {wakes} wakes (gives coalesce), ISR->task p50 {:.1} us, p99 {:.1} us",
        S::NAME,
        p50 as f64 / 1e3,
        p99 as f64 / 1e3
    ));
    Ok(())
}

// ---- misuse --------------------------------------------------------------------------------

fn take_in_isr<S: Sem>() -> Result<(), String> {
    extern "C" fn hook<S: Sem>() {
        let sem = ISR_SEM.load(Ordering::SeqCst) as *const S;
        // SAFETY: ISR_SEM holds a leaked `&'static S`.
        unsafe { &*sem }.take(Some(0));
    }
    let s = S::make();
    ISR_SEM.store(s as *const S as usize, Ordering::SeqCst);
    // SAFETY: installs a hook that misuses the semaphore on purpose (the case must abort).
    unsafe { sys::posix_set_tick_hook(Some(hook::<S>)) };
    delay_ms(100);
    Err("take() from the tick hook was not caught".into())
}

fn give_in_isr<S: Sem>() -> Result<(), String> {
    extern "C" fn hook<S: Sem>() {
        let sem = ISR_SEM.load(Ordering::SeqCst) as *const S;
        // SAFETY: ISR_SEM holds a leaked `&'static S`.
        let sem = unsafe { &*sem };
        sem.give();
    }
    let s = S::make();
    // Make the notification flavour know its taker, so give() reaches the kernel call.
    let _ = s.take(Some(0));
    ISR_SEM.store(s as *const S as usize, Ordering::SeqCst);
    // SAFETY: installs a hook that misuses the semaphore on purpose (the case must abort).
    unsafe { sys::posix_set_tick_hook(Some(hook::<S>)) };
    delay_ms(100);
    Err("give() from the tick hook was not caught".into())
}

// ---- clock, critical sections, heap, tasks --------------------------------------------------

fn clock() -> Result<(), String> {
    let mut last = rtos_shims::now_us();
    let t0 = last;
    for _ in 0..10_000 {
        let now = rtos_shims::now_us();
        if now < last {
            return Err(format!("now_us went back: {last} -> {now}"));
        }
        last = now;
    }
    // The cheap clock bounds the clock from above (rtos_shims::tick_count's contract): `u1`
    // read after `k1` is below `u0 + (k1 - k0 + 3) * tick` whenever `k0` was read before `u0`.
    let tick = u64::from(rtos_shims::tick_period_us());
    if tick != 1000 {
        return Err(format!("tick_period_us() = {tick}, configTICK_RATE_HZ is 1000"));
    }
    let k0 = rtos_shims::tick_count();
    let u0 = rtos_shims::now_us();
    for i in 0..20_000u32 {
        let k1 = rtos_shims::tick_count();
        let u1 = rtos_shims::now_us();
        let bound = u0 + (u64::from(k1.wrapping_sub(k0)) + 3) * tick;
        if u1 >= bound {
            return Err(format!(
                "now_us {u1} at or past the tick bound {bound} (ticks {k0} -> {k1})"
            ));
        }
        if i % 2_000 == 0 {
            delay_ms(1);
        }
    }
    let a = rtos_shims::now_us();
    delay_ms(50);
    let b = rtos_shims::now_us();
    if b - a < 49_000 || b - a > 5_000_000 {
        return Err(format!("vTaskDelay(50 ticks) took {} us of now_us", b - a));
    }
    report(&format!(
        "now_us resolution: 1 tick = 1000 us (POSIX port); t0 = {t0} us"
    ));
    Ok(())
}

static mut SHARED: u64 = 0;

fn critical_section_excludes() -> Result<(), String> {
    const PER_TASK: u64 = 300_000;
    // The workers count themselves out here and then give `done`. The semaphore is binary:
    // two gives before a take count once (both workers can finish within one time slice,
    // and on a loaded host they often do), so the case counts the workers, not the gives.
    static WORKERS_DONE: AtomicU64 = AtomicU64::new(0);
    WORKERS_DONE.store(0, Ordering::SeqCst);
    let done = NotifySemaphore::make();
    let body = move || {
        for _ in 0..PER_TASK {
            critical_section::with(|_| {
                // Nested sections must work too.
                critical_section::with(|_| {
                    // SAFETY: every access to SHARED happens inside a critical section, which
                    // excludes the other task (and the tick) on this single-core kernel.
                    unsafe {
                        let v = core::ptr::read_volatile(&raw const SHARED);
                        std::hint::spin_loop();
                        core::ptr::write_volatile(&raw mut SHARED, v + 1);
                    }
                })
            });
        }
        WORKERS_DONE.fetch_add(1, Ordering::SeqCst);
        done.give();
    };
    spawn("cs-a", CASE_PRIORITY, body);
    spawn("cs-b", CASE_PRIORITY, body);
    // Same priority as the workers: time slicing on every tick interleaves all three.
    while WORKERS_DONE.load(Ordering::SeqCst) < 2 {
        if !done.take(Some(300_000_000)) {
            let n = WORKERS_DONE.load(Ordering::SeqCst);
            return Err(format!("workers did not finish ({n} of 2 within 300 s)"));
        }
    }
    delay_ms(20);
    // SAFETY: both workers are done (or blocked forever); read inside a critical section.
    let total = critical_section::with(|_| unsafe { core::ptr::read_volatile(&raw const SHARED) });
    if total != 2 * PER_TASK {
        return Err(format!("lost updates: {total} != {}", 2 * PER_TASK));
    }
    Ok(())
}

fn heap_alignment() -> Result<(), String> {
    let heap = rtos_shims::FreeRtosHeap;
    // SAFETY: a FreeRTOS call from a task.
    let before = unsafe { sys::xPortGetFreeHeapSize() };
    for align in [1usize, 2, 4, 8, 16, 32, 64, 128, 256, 4096] {
        for size in [1usize, 3, 8, 24, 100, 1000, 5000] {
            let layout = Layout::from_size_align(size, align).map_err(|e| e.to_string())?;
            // SAFETY: `layout` has a non-zero size.
            let p = unsafe { heap.alloc(layout) };
            if p.is_null() {
                return Err(format!("alloc({size}, {align}) failed"));
            }
            if (p as usize) % align != 0 {
                return Err(format!("alloc({size}, {align}) returned {p:p}: misaligned"));
            }
            // SAFETY: `p` points to `size` writable bytes.
            unsafe { core::ptr::write_bytes(p, 0xA5, size) };
            // SAFETY: `p` came from `alloc` with this layout.
            unsafe { heap.dealloc(p, layout) };
        }
    }
    #[repr(align(64))]
    struct Line([u8; 64]);
    let boxed: Vec<Box<Line>> = (0..100).map(|_| Box::new(Line([7; 64]))).collect();
    if boxed
        .iter()
        .any(|b| (&**b as *const Line as usize) % 64 != 0 || b.0[63] != 7)
    {
        return Err("Box<align(64)> misaligned".into());
    }
    drop(boxed);
    // SAFETY: a FreeRTOS call from a task.
    let after = unsafe { sys::xPortGetFreeHeapSize() };
    if after != before {
        return Err(format!("heap leaked: {before} free before, {after} after"));
    }
    report(&format!(
        "heap_4: {before} bytes free, unchanged after 70 aligned alloc/free pairs"
    ));
    Ok(())
}

fn tasks() -> Result<(), String> {
    let me = rtos_shims::current_thread_id();
    if me == 0 || me == usize::MAX || me == 1 {
        return Err(format!("current_thread_id() = {me}"));
    }
    let done = NotifySemaphore::make();
    let other: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let prio: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    spawn("worker", 5, move || {
        other.store(rtos_shims::current_thread_id(), Ordering::SeqCst);
        // SAFETY: NULL asks for the calling task's priority.
        prio.store(
            unsafe { sys::uxTaskPriorityGet(core::ptr::null_mut()) },
            Ordering::SeqCst,
        );
        done.give();
    });
    if !done.take(Some(10_000_000)) {
        return Err("spawned task did not run".into());
    }
    let other = other.load(Ordering::SeqCst);
    if other == me || other == 0 {
        return Err(format!("ids not distinct: {me:#x} vs {other:#x}"));
    }
    if prio.load(Ordering::SeqCst) != 5 {
        return Err(format!("spawned at priority {}", prio.load(Ordering::SeqCst)));
    }
    let bad_prio = ThreadConfig {
        name: "x",
        stack_size: 4096,
        priority: 8,
    };
    if rtos_shims::spawn_thread(bad_prio, Box::new(|| {})) != Err(rtos_shims::Error::Refused) {
        return Err("priority 8 (configMAX_PRIORITIES) was not refused".into());
    }
    let huge = ThreadConfig {
        name: "x",
        stack_size: 1 << 40,
        priority: 1,
    };
    if rtos_shims::spawn_thread(huge, Box::new(|| {})) != Err(rtos_shims::Error::NoMemory) {
        return Err("a 1 TiB stack did not fail with NoMemory".into());
    }
    // SAFETY: a plain counter read.
    if unsafe { sys::posix_malloc_failures() } == 0 {
        return Err("the malloc-failed hook did not run".into());
    }
    Ok(())
}

fn main() {
    let cases = [
        Case {
            name: "task_to_task_binary",
            run: ping_pong::<BinarySemaphore>,
            expect: Expect::Success,
        },
        Case {
            name: "task_to_task_notify",
            run: ping_pong::<NotifySemaphore>,
            expect: Expect::Success,
        },
        Case {
            name: "coalesce_binary",
            run: gives_coalesce::<BinarySemaphore>,
            expect: Expect::Success,
        },
        Case {
            name: "coalesce_notify",
            run: gives_coalesce::<NotifySemaphore>,
            expect: Expect::Success,
        },
        Case {
            name: "timeouts_binary",
            run: timeouts::<BinarySemaphore>,
            expect: Expect::Success,
        },
        Case {
            name: "timeouts_notify",
            run: timeouts::<NotifySemaphore>,
            expect: Expect::Success,
        },
        Case {
            name: "tick_isr_binary",
            run: tick_isr_wakes::<BinarySemaphore>,
            expect: Expect::Success,
        },
        Case {
            name: "tick_isr_notify",
            run: tick_isr_wakes::<NotifySemaphore>,
            expect: Expect::Success,
        },
        Case {
            name: "misuse_take_in_isr",
            run: take_in_isr::<NotifySemaphore>,
            expect: Expect::Abort("Semaphore::take called from an interrupt handler"),
        },
        Case {
            name: "misuse_take_in_isr_binary",
            run: take_in_isr::<BinarySemaphore>,
            expect: Expect::Abort("Semaphore::take called from an interrupt handler"),
        },
        Case {
            name: "misuse_give_in_isr",
            run: give_in_isr::<NotifySemaphore>,
            expect: Expect::Abort("Semaphore::give called from an interrupt handler"),
        },
        Case {
            name: "clock",
            run: clock,
            expect: Expect::Success,
        },
        Case {
            name: "critical_section",
            run: critical_section_excludes,
            expect: Expect::Success,
        },
        Case {
            name: "heap_alignment",
            run: heap_alignment,
            expect: Expect::Success,
        },
        Case {
            name: "tasks",
            run: tasks,
            expect: Expect::Success,
        },
    ];
    run_cases(&cases)
}
