//! Instruction counts from the timer0 interrupt to the waiting task running again, through
//! rtos-shims' semaphores (compare with main.c's raw FreeRTOS figures).

use core::sync::atomic::{AtomicPtr, Ordering};

use crate::board;

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
