//! A freertos-rust application on QEMU mps2-an385 (Cortex-M3) that adds uasyncio.
//!
//! The application already uses freertos-rust for everything: the kernel build
//! (freertos-cargo-build, `build.rs`), tasks, queues, `InterruptContext` in its interrupt
//! handler, `CriticalRegion`, and `FreeRtosAllocator` as the global allocator. Adding uasyncio
//! takes one dependency (`uasyncio`, features `freertos-port` + `critical-section-impl`), one C
//! file in the kernel build, and a task that runs the loop:
//!
//! - the **loop task** is a freertos-rust `Task` whose body calls `uasyncio::run`;
//! - the **timer0 interrupt** (CMSDK timer, IRQ 8) opens an `InterruptContext`, sets a
//!   uasyncio `ThreadSafeFlag`, and notifies two tasks with freertos-rust's
//!   `Task::notify_from_isr` (notification index 0): a freertos-rust task that counts them,
//!   and the loop task itself, whose uasyncio wake-ups use index 1 and must not notice;
//! - a **freertos-rust worker task** and a **uasyncio task** exchange messages: requests go
//!   into a freertos-rust `Queue<u32>` (sent without blocking from the loop), replies come
//!   back through a uasyncio `MessageQueue` (sent without blocking from the worker, awaited
//!   by the uasyncio task).
//!
//! 32-bit targets only: freertos-rust hard-codes 32-bit `BaseType_t`/`TickType_t`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt::{self, Write};
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use cortex_m_rt::entry;
use freertos_rust::{
    CriticalRegion, Duration, FreeRtosAllocator, InterruptContext, Queue, Task, TaskNotification, TaskPriority,
};
use uasyncio::ffi::MessageQueue;
use uasyncio::{create_task, Error, Result, ThreadSafeFlag};

#[cfg(not(target_pointer_width = "32"))]
compile_error!("freertos-rust hard-codes 32-bit kernel types: build this sample for a 32-bit target");

#[global_allocator]
static HEAP: FreeRtosAllocator = FreeRtosAllocator;

const ROUNDS: u32 = 10;
const IRQ_WAKES: u32 = 20;

/// Set by the timer0 interrupt; awaited by a uasyncio task.
static IRQ_FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
/// Task handles the interrupt notifies (freertos-rust, index 0).
static COUNTER_TASK: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(ptr::null_mut());
static LOOP_TASK: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(ptr::null_mut());
static IRQS: AtomicU32 = AtomicU32::new(0);
static COUNTED: AtomicU32 = AtomicU32::new(0);

// ---- board: UART0, timer0, NVIC, semihosting exit ------------------------------------------

const UART0: usize = 0x4000_4000;
const TIMER0: usize = 0x4000_0000;
const TIMER0_IRQ: usize = 8;

fn reg(addr: usize) -> *mut u32 {
    addr as *mut u32
}

struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let _region = CriticalRegion::enter();
        for b in s.bytes() {
            // SAFETY: CMSDK UART0 registers on mps2-an385 (STATE bit 0: TX full; DATA).
            unsafe {
                while ptr::read_volatile(reg(UART0 + 4)) & 1 != 0 {}
                ptr::write_volatile(reg(UART0), u32::from(b));
            }
        }
        Ok(())
    }
}

macro_rules! println {
    ($($arg:tt)*) => {{ let _ = writeln!(Uart, $($arg)*); }};
}

fn uart_init() {
    // SAFETY: UART0's BAUDDIV and CTRL (TX enable); nothing else uses them yet.
    unsafe {
        ptr::write_volatile(reg(UART0 + 16), 16);
        ptr::write_volatile(reg(UART0 + 8), 1);
    }
}

fn timer0_start(reload: u32) {
    // SAFETY: timer0's registers and its NVIC priority/enable bits, used only here and in the
    // handler. Priority 0xC0 is below configMAX_SYSCALL_INTERRUPT_PRIORITY (0xA0), so the
    // handler may call FromISR APIs.
    unsafe {
        ptr::write_volatile((0xE000_E400 + TIMER0_IRQ) as *mut u8, 0xC0);
        ptr::write_volatile(reg(TIMER0 + 8), reload);
        ptr::write_volatile(reg(TIMER0 + 4), reload);
        ptr::write_volatile(reg(TIMER0), 1 | 8);
        ptr::write_volatile(reg(0xE000_E100), 1 << TIMER0_IRQ);
    }
}

fn timer0_stop() {
    // SAFETY: as in `timer0_start`.
    unsafe {
        ptr::write_volatile(reg(TIMER0), 0);
        ptr::write_volatile(reg(0xE000_E180), 1 << TIMER0_IRQ);
    }
}

fn exit(code: i32) -> ! {
    let reason: u32 = if code == 0 { 0x20026 } else { 0x20023 };
    loop {
        // SAFETY: ARM semihosting SYS_EXIT (r0 = 0x18, r1 = reason); QEMU stops.
        unsafe {
            core::arch::asm!("bkpt 0xAB", in("r0") 0x18u32, in("r1") reason, options(nostack));
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Uart, "\npanic: {info}");
    exit(1)
}

// ---- interrupts ------------------------------------------------------------------------------

/// The timer0 interrupt: freertos-rust's InterruptContext for its own FromISR calls (its Drop
/// yields if a task woke), uasyncio's flag set (which yields itself when the loop must run).
extern "C" fn timer0_handler() {
    // SAFETY: writing 1 to timer0's INTCLEAR acknowledges the interrupt.
    unsafe { ptr::write_volatile(reg(TIMER0 + 12), 1) };
    IRQS.fetch_add(1, Ordering::Relaxed);
    let mut ctx = InterruptContext::new();
    IRQ_FLAG.set();
    for handle in [&COUNTER_TASK, &LOOP_TASK] {
        let raw = handle.load(Ordering::Acquire);
        if !raw.is_null() {
            // SAFETY: a handle stored by `main` of a task that is never deleted.
            let task = unsafe { Task::from_raw_handle(raw) };
            let _ = task.notify_from_isr(&mut ctx, TaskNotification::Increment);
        }
    }
    drop(ctx);
}

extern "C" fn unexpected_irq() {
    println!("unexpected interrupt");
    exit(1)
}

/// The device interrupt table (cortex-m-rt feature `device`): timer0 at IRQ 8.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
static __INTERRUPTS: [extern "C" fn(); 32] = {
    let mut table: [extern "C" fn(); 32] = [unexpected_irq; 32];
    table[TIMER0_IRQ] = timer0_handler;
    table
};

#[no_mangle]
extern "C" fn vApplicationMallocFailedHook() {}

#[no_mangle]
extern "C" fn vApplicationStackOverflowHook(_task: *mut core::ffi::c_void, _name: *const u8) {
    println!("FATAL: stack overflow");
    exit(1)
}

// ---- the application -------------------------------------------------------------------------

/// The uasyncio side: a task awaiting the interrupt's flag, and request/reply rounds with the
/// freertos-rust worker.
async fn app_main(requests: Arc<Queue<u32>>, replies: &'static MessageQueue) -> Result<u32> {
    timer0_start(62_499); // 2.5 ms at 25 MHz
    let irq_task = create_task(async {
        for _ in 0..IRQ_WAKES {
            IRQ_FLAG.wait().await?;
        }
        Ok(IRQ_WAKES)
    });
    let mut buf = [0u8; 4];
    for round in 1..=ROUNDS {
        // A freertos-rust queue, sent without blocking from the loop task.
        requests
            .send(round, Duration::zero())
            .map_err(|_| Error::runtime("the worker's queue is full"))?;
        // The reply through uasyncio's queue, awaited.
        let n = replies.recv_into(&mut buf).await?;
        let reply = u32::from_ne_bytes(buf);
        if n != 4 || reply != round * round {
            return Err(Error::value("wrong reply from the freertos-rust worker"));
        }
    }
    let _ = requests.send(0, Duration::zero()); // stop the worker
    let wakes = irq_task.await?;
    timer0_stop();
    Ok(wakes)
}

#[entry]
fn main() -> ! {
    uart_init();
    println!("sample: freertos-rust + uasyncio on mps2-an385");

    let requests = Arc::new(Queue::<u32>::new(4).unwrap_or_else(|_| fail("Queue::new")));
    let replies: &'static MessageQueue = Box::leak(Box::new(
        MessageQueue::new(4, 4).unwrap_or_else(|_| fail("MessageQueue::new")),
    ));

    // freertos-rust worker: answers each request with its square, through uasyncio's queue.
    let worker_requests = requests.clone();
    Task::new()
        .name("worker")
        .stack_size(512)
        .priority(TaskPriority(3))
        .start(move |_| loop {
            let Ok(n) = worker_requests.receive(Duration::infinite()) else {
                continue;
            };
            if n == 0 {
                break;
            }
            if replies.send(&(n * n).to_ne_bytes()).is_err() {
                println!("worker: uasyncio queue refused the reply");
            }
        })
        .unwrap_or_else(|_| fail("worker task"));

    // freertos-rust task counting the interrupt's index-0 notifications.
    let counter = Task::new()
        .name("counter")
        .stack_size(512)
        .priority(TaskPriority(3))
        .start(|task| loop {
            if let Ok(n) = task.wait_for_notification(0, u32::MAX, Duration::infinite()) {
                COUNTED.fetch_add(n, Ordering::Relaxed);
            }
        })
        .unwrap_or_else(|_| fail("counter task"));
    COUNTER_TASK.store(counter.raw_handle().cast_mut(), Ordering::Release);

    // The loop: a freertos-rust task whose body runs uasyncio.
    Task::new()
        .name("uasyncio")
        .stack_size(2048)
        .priority(TaskPriority(2))
        .start(move |task| {
            LOOP_TASK.store(task.raw_handle().cast_mut(), Ordering::Release);
            let result = uasyncio::run(app_main(requests, replies));
            // What the interrupt's freertos-rust notifications left on index 0 of this task:
            // uasyncio slept and woke on index 1 all along.
            let index0 = task.wait_for_notification(0, u32::MAX, Duration::zero()).unwrap_or(0);
            let unused = Task::current().map(|t| t.get_stack_high_water_mark() * 4).unwrap_or(0);
            match result {
                Ok(wakes) => {
                    println!("sample: {ROUNDS} request/reply rounds between a freertos-rust task and a uasyncio task");
                    println!(
                        "sample: {wakes} ThreadSafeFlag wakes from the InterruptContext ISR ({} interrupts); \
                         index-0 notifications: {} counted by a freertos-rust task, {index0} pending on the loop task",
                        IRQS.load(Ordering::Relaxed),
                        COUNTED.load(Ordering::Relaxed)
                    );
                    if index0 == 0 {
                        println!("sample: FAIL: the loop task's index-0 notifications went missing");
                        exit(1)
                    }
                    println!("sample: loop task stack never used: {unused} of 8192 bytes");
                    println!("sample: PASS");
                    exit(0)
                }
                Err(e) => {
                    println!("sample: FAIL: {e}");
                    exit(1)
                }
            }
        })
        .unwrap_or_else(|_| fail("loop task"));

    freertos_rust::FreeRtosUtils::start_scheduler();
}

fn fail(what: &str) -> ! {
    println!("sample: {what} failed");
    exit(1)
}
