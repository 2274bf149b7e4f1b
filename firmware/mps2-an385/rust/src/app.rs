//! uasyncio itself on the board: the C API's flag and queue driven from the C timer0 ISR and
//! a legacy C task, the typed `ThreadSafeQueue` fed by a Rust interrupt handler, instruction
//! counts through `ThreadSafeFlag`, RAM per task.

use alloc::vec::Vec;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use uasyncio::{create_task, run, sleep_ms, Error, Result, ThreadSafeFlag, ThreadSafeQueue, TrySendError};

use crate::ffi::{self, MessageQueue};
use crate::{board, println};

/// Set by TIMER0_Handler through the C API (`uasyncio_flag_set_from_isr(&FW_TIMER_FLAG)`).
#[no_mangle]
pub static FW_TIMER_FLAG: ThreadSafeFlag = ThreadSafeFlag::new();

/// Timer0 period for the flag tests: 250 us (6,250 SYSCLK cycles).
const FLAG_RELOAD: u32 = 6_249;
const FLAG_IRQS: u32 = 10_000;

static SEEN_IRQS: AtomicU32 = AtomicU32::new(0);

/// Awaits `FW_TIMER_FLAG` until timer0 raised `FLAG_IRQS` interrupts; returns the wakes.
async fn count_timer_flag() -> Result<u32> {
    let mut wakes = 0;
    loop {
        FW_TIMER_FLAG.wait().await?;
        wakes += 1;
        let irqs = board::timer0_irqs();
        SEEN_IRQS.store(irqs, Ordering::Relaxed);
        if irqs >= FLAG_IRQS {
            board::timer0_stop();
            return Ok(wakes);
        }
    }
}

fn check_flag_count(wakes: u32) -> core::result::Result<(), &'static str> {
    let irqs = board::timer0_irqs();
    println!("report: timer0 IRQ -> uasyncio_flag_set_from_isr -> task: {irqs} interrupts, {wakes} task wakes");
    if irqs != FLAG_IRQS || SEEN_IRQS.load(Ordering::Relaxed) != FLAG_IRQS {
        return Err("the task did not see the last interrupt");
    }
    if wakes != FLAG_IRQS {
        return Err("wakes != interrupts: a set was lost or two coalesced at a 250 us period");
    }
    Ok(())
}

/// `flag-isr`: 10,000 timer interrupts set a flag from C; a task counts its wakes.
pub fn flag_isr() -> i32 {
    board::timer0_start_mode(board::ISR_FLAG, None, FLAG_RELOAD);
    match run(count_timer_flag()) {
        Ok(wakes) => match check_flag_count(wakes) {
            Ok(()) => 0,
            Err(e) => {
                println!("flag-isr: {e}");
                1
            }
        },
        Err(e) => {
            println!("flag-isr: {e}");
            1
        }
    }
}

/// `bench-flag`: instructions from the timer0 IRQ to the task awaiting `FW_TIMER_FLAG`
/// running again (compare with `raw-sem` / `raw-notify`).
pub fn bench_flag(shift: u32) -> i32 {
    const SAMPLES: usize = 201;
    const WARMUP: usize = 5;
    let result = run(async {
        let mut ticks = [0u32; SAMPLES];
        board::timer0_start_mode(board::ISR_FLAG, None, crate::bench::RELOAD);
        for i in 0..SAMPLES + WARMUP {
            FW_TIMER_FLAG.wait().await?;
            let value = board::timer0_value();
            if i >= WARMUP {
                ticks[i - WARMUP] = crate::bench::RELOAD - value;
            }
        }
        board::timer0_stop();
        Ok(ticks)
    });
    match result {
        Ok(mut ticks) => {
            board::report_latency(
                "uasyncio ThreadSafeFlag (C ISR -> uasyncio_flag_set_from_isr)",
                &mut ticks,
                shift,
            );
            0
        }
        Err(e) => {
            println!("bench-flag: {e}");
            1
        }
    }
}

/// `queue-isr`: the ISR sends into a 4-message queue nobody reads for a while: the first four
/// are queued, the rest refused with UASYNCIO_E_FULL (the ISR goes on; nothing blocks), then
/// the task drains what was queued in order.
pub fn queue_isr() -> i32 {
    let queue: &'static MessageQueue = match MessageQueue::new(4, 4) {
        Ok(q) => alloc::boxed::Box::leak(alloc::boxed::Box::new(q)),
        Err(e) => {
            println!("queue-isr: {e}");
            return 1;
        }
    };
    board::set_isr_queue(queue.as_c_ptr());
    let result = run(async move {
        board::timer0_start_mode(board::ISR_QUEUE, None, 24_999);
        sleep_ms(20).await?; // ~20 interrupts, nobody receiving
        board::timer0_stop();
        let (ok, full) = board::isr_queue_counts();
        let mut got = Vec::new();
        let mut buf = [0u8; 4];
        while let Some(n) = queue.try_recv_into(&mut buf)? {
            if n != 4 {
                return Err(Error::value("message length"));
            }
            got.push(u32::from_le_bytes(buf));
        }
        Ok((ok, full, got))
    });
    match result {
        Ok((ok, full, got)) => {
            println!(
                "report: ISR sends into a full queue: {ok} queued, {full} refused with UASYNCIO_E_FULL (dropped counter {}), received {:?}",
                queue.dropped(),
                got
            );
            let in_order = got.windows(2).all(|w| w[1] == w[0] + 1);
            if ok == 4 && full >= 10 && queue.dropped() == full && got.len() == 4 && in_order {
                0
            } else {
                1
            }
        }
        Err(e) => {
            println!("queue-isr: {e}");
            1
        }
    }
}

/// The queue `tsq_hook` sends into (set before timer0 starts; leaked, so it lives forever).
static TSQ: AtomicPtr<ThreadSafeQueue<u32>> = AtomicPtr::new(core::ptr::null_mut());
/// Items the handler has sent (the next one to send), and sends refused because the queue
/// was full (the handler retries the same item at the next interrupt).
static TSQ_SENT: AtomicU32 = AtomicU32::new(0);
static TSQ_FULL: AtomicU32 = AtomicU32::new(0);
const TSQ_ITEMS: u32 = 10_000;
const TSQ_CAPACITY: usize = 4;

/// Timer0's body in `tsq-isr` (a Rust interrupt handler): sends the next sequence number; a
/// full queue hands it back and it is sent again at the next interrupt. After the last one
/// the handler closes the queue.
extern "C" fn tsq_hook() {
    // SAFETY: TSQ is null or a leaked `ThreadSafeQueue` that lives for the rest of the program.
    let Some(q) = (unsafe { TSQ.load(Ordering::Acquire).as_ref() }) else {
        return;
    };
    let n = TSQ_SENT.load(Ordering::Relaxed);
    if n >= TSQ_ITEMS {
        return;
    }
    match q.try_send(n) {
        Ok(()) => {
            TSQ_SENT.store(n + 1, Ordering::Relaxed);
            if n + 1 == TSQ_ITEMS {
                q.close();
            }
        }
        Err(TrySendError::Full(_)) => {
            TSQ_FULL.fetch_add(1, Ordering::Relaxed);
        }
        Err(TrySendError::Closed(_)) => {}
    }
}

/// `tsq-isr`: a Rust interrupt handler sends 10,000 sequence numbers into a typed
/// `ThreadSafeQueue<u32>` of 4 and then closes it; a task receives them, sleeping 5 ms after
/// every 1,000th so that the handler meets a full queue (5 interrupts per sleep, 4 fit). Passes if
/// every number arrives once and in order, the end of the queue is seen, and full sends
/// were refused and retried.
pub fn tsq_isr() -> i32 {
    let q: &'static ThreadSafeQueue<u32> = match ThreadSafeQueue::new(TSQ_CAPACITY) {
        Ok(q) => alloc::boxed::Box::leak(alloc::boxed::Box::new(q)),
        Err(e) => {
            println!("tsq-isr: {e}");
            return 1;
        }
    };
    TSQ.store(core::ptr::from_ref(q).cast_mut(), Ordering::Release);
    let result = run(async move {
        board::timer0_start(tsq_hook, 24_999); // 1 ms
        let mut expect = 0u32;
        while let Some(v) = q.recv().await? {
            if v != expect {
                return Err(Error::value("an item was lost, repeated or reordered"));
            }
            expect += 1;
            if expect % 1_000 == 0 {
                sleep_ms(5).await?;
            }
        }
        Ok(expect)
    });
    board::timer0_stop();
    let full = TSQ_FULL.load(Ordering::Relaxed);
    match result {
        Ok(got) => {
            println!(
                "report: timer0 IRQ (Rust handler) -> ThreadSafeQueue<u32>::try_send -> task: {got} items received in order, then the close; {full} sends refused (queue full) and retried"
            );
            if got == TSQ_ITEMS && full > 0 {
                0
            } else {
                println!("tsq-isr: expected {TSQ_ITEMS} items and some refused sends");
                1
            }
        }
        Err(e) => {
            println!("tsq-isr: {e}");
            1
        }
    }
}

/// `misuse-isr`: the ISR calls `uasyncio_queue_create` ([task only]); the firmware must stop
/// with a message naming the call (exit code 1).
pub fn misuse_isr() -> i32 {
    board::timer0_start_mode(board::ISR_MISUSE, None, 24_999);
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
    board::timer0_stop();
    println!("misuse-isr: the misuse was not caught");
    0 // the script expects exit code 1 and the message; 0 here means "not caught"
}

/// `task-ram`: heap bytes per uasyncio task (an `async` block that awaits a flag) and per
/// FreeRTOS task, measured as the FreeRTOS heap's drop.
pub fn task_ram() -> i32 {
    const N: usize = 100;
    static NEVER: ThreadSafeFlag = ThreadSafeFlag::new();
    let result = run(async {
        let before = board::heap_free();
        let mut tasks = Vec::with_capacity(N);
        let after_vec = board::heap_free();
        for _ in 0..N {
            tasks.push(create_task(async {
                sleep_ms(1_000_000).await?;
                Ok(())
            }));
        }
        let after = board::heap_free();
        let future_size = core::mem::size_of_val(&async {
            sleep_ms(1_000_000).await?;
            Ok::<(), Error>(())
        });
        for t in &tasks {
            let _ = t.cancel();
        }
        let _ = NEVER.is_set();
        Ok((before - after_vec, (after_vec - after) / N, future_size))
    });
    match result {
        Ok((_vec, per_task, future)) => {
            println!(
                "report: uasyncio task: {per_task} heap bytes each (FreeRTOS heap_4, incl. its 8-byte block header), of which the future is {future} bytes"
            );
            0
        }
        Err(e) => {
            println!("task-ram: {e}");
            1
        }
    }
}

/// Bytes of the buffer each `large-future` case holds across an await.
#[cfg(feature = "conformance")]
const LARGE_BUF: usize = 4000;

/// A task body holding `LARGE_BUF` bytes across an await (its future is larger than that).
#[cfg(feature = "conformance")]
async fn large_body(seed: u8) -> Result<u32> {
    let mut buf = [seed; LARGE_BUF];
    sleep_ms(0).await?;
    buf[core::hint::black_box(LARGE_BUF - 1)] = 1;
    Ok(core::hint::black_box(&buf).iter().map(|&b| u32::from(b)).sum())
}

/// `large-future`: a future larger than the buffer it holds goes through each way a future
/// enters the runtime (`run`, `create_task`, `wait_for`, `gather!`, `TaskGroup::create_task`)
/// and must cost the calling task's stack much less than its size: it is moved to the heap
/// where it enters (`uasyncio::task::LARGE_FUTURE_BYTES`). Passed on by value, it was copied
/// at each layer (3 to 9 copies measured), which overflowed task stacks. In the test
/// firmware only (feature `conformance`): the benchmark image stays without `gather` and
/// `TaskGroup`.
#[cfg(feature = "conformance")]
pub fn large_future() -> i32 {
    let me = rtos_shims::current_thread_id();
    // The loop made and a small run done first: what any run costs is in the mark already.
    let _ = run(async { sleep_ms(0).await });
    let before = rtos_shims::stack_high_water_bytes(me);
    let mut total = 0u32;
    let mut outcome = run(large_body(0));
    if let Ok(v) = outcome {
        total += v;
        outcome = run(async {
            let a = create_task(large_body(0)).await?;
            let b = uasyncio::wait_for(large_body(0), None).await?;
            let (c,) = uasyncio::gather!(large_body(0)).await?;
            let d = uasyncio::TaskGroup::run(|tg| async move { tg.create_task(large_body(0))?.await }).await?;
            Ok(a + b + c + d)
        });
    }
    let after = rtos_shims::stack_high_water_bytes(me);
    let used = before.saturating_sub(after);
    match outcome {
        Ok(v) if total + v == 5 => {
            println!("report: large futures ({LARGE_BUF}-byte buffer, 5 entries): {used} bytes of the calling task's stack more than a small run");
            if used > LARGE_BUF / 2 {
                println!("large-future: {used} bytes of stack for a {LARGE_BUF}-byte future: copied on the stack");
                return 1;
            }
            0
        }
        Ok(v) => {
            println!("large-future: the bodies summed to {}, expected 5", total + v);
            1
        }
        Err(e) => {
            println!("large-future: {e}");
            1
        }
    }
}

/// The loop thread's entry for `uasyncio_start` (main.c's `app` mode): `arg` is the queue the
/// legacy C task feeds.
#[no_mangle]
pub extern "C" fn fw_app_entry(arg: *mut c_void) -> c_int {
    // SAFETY: main.c passes the queue it got from `uasyncio_queue_create`.
    let Some(queue) = (unsafe { MessageQueue::from_c(arg) }) else {
        return ffi::E_INVAL;
    };
    ffi::run_entry(app_main(queue))
}

async fn app_main(queue: &'static MessageQueue) -> Result<()> {
    board::timer0_start_mode(board::ISR_FLAG, None, FLAG_RELOAD);
    let ticker = create_task(count_timer_flag());
    let mut expected = 1u32;
    let mut buf = [0u8; 4];
    loop {
        let n = queue.recv_into(&mut buf).await?;
        if n == 0 {
            break; // the legacy task is done
        }
        let cycle = u32::from_le_bytes(buf);
        if cycle < expected {
            return Err(Error::value("legacy messages out of order"));
        }
        expected = cycle + 1;
    }
    let wakes = ticker.await?;
    println!("report: loop received legacy messages up to cycle {}", expected - 1);
    check_flag_count(wakes).map_err(Error::runtime)
}
