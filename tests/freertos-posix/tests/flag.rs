//! uasyncio's cross-context paths on the real FreeRTOS kernel (POSIX simulator port):
//! `ThreadSafeFlag` set from the tick interrupt and from another FreeRTOS task, the C API's
//! message queue fed from both (a full queue refuses, never blocks), the misuse check of a
//! task-only C API call from the interrupt, `create_task` on a task that does not own the
//! loop, and a timer that fires while the loop never idles. Each case runs in its own process.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use freertos_posix_tests::{delay_ms, main as run_cases, report, sys, Case, Expect, CASE_PRIORITY};
use uasyncio::{create_task, run, wait_for_ms, Error, Result, ThreadSafeFlag};

use uasyncio::ffi;

fn install_hook(hook: Option<extern "C" fn()>) {
    // SAFETY: the hooks below only touch atomics, flags and the lock-free queue.
    unsafe { sys::posix_set_tick_hook(hook) }
}

// ---- tick interrupt → flag → task ---------------------------------------------------------

static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
static SETS: AtomicU32 = AtomicU32::new(0);
static LIMIT: AtomicU32 = AtomicU32::new(0);
static STAMP_NS: AtomicU64 = AtomicU64::new(0);
static HOOK_CONTEXT_OK: AtomicBool = AtomicBool::new(true);

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

extern "C" fn set_flag_hook() {
    if !rtos_shims::in_isr() {
        HOOK_CONTEXT_OK.store(false, Ordering::SeqCst);
    }
    if SETS.load(Ordering::SeqCst) >= LIMIT.load(Ordering::SeqCst) {
        return;
    }
    STAMP_NS.store(epoch().elapsed().as_nanos() as u64, Ordering::SeqCst);
    SETS.fetch_add(1, Ordering::SeqCst);
    FLAG.set();
}

/// 10,000 tick interrupts set the flag; the awaiting task must see the last one (a set is
/// never lost; sets that land before the task ran coalesce, by the flag's definition).
fn tick_hook_flag_10000() -> std::result::Result<(), String> {
    const N: u32 = 10_000;
    let _ = epoch();
    LIMIT.store(N, Ordering::SeqCst);
    let outcome = run(async {
        install_hook(Some(set_flag_hook));
        let mut wakes = 0u32;
        let mut latency = Vec::with_capacity(N as usize);
        while SETS.load(Ordering::SeqCst) < N {
            match wait_for_ms(FLAG.wait(), 10_000).await {
                Ok(()) => {}
                Err(Error::Timeout) => return Err(Error::runtime("no wake for 10 s: a set was lost")),
                Err(e) => return Err(e),
            }
            latency.push((epoch().elapsed().as_nanos() as u64).saturating_sub(STAMP_NS.load(Ordering::SeqCst)));
            wakes += 1;
        }
        install_hook(None);
        Ok((wakes, latency))
    });
    let (wakes, mut latency) = outcome.map_err(|e| e.to_string())?;
    if !HOOK_CONTEXT_OK.load(Ordering::SeqCst) {
        return Err("in_isr() was false inside the tick hook".into());
    }
    latency.sort_unstable();
    let p = |q: usize| latency.get((latency.len() - 1) * q / 100).copied().unwrap_or(0) as f64 / 1e3;
    report(&format!(
        "tick hook -> ThreadSafeFlag -> task: {N} sets, {wakes} wakes ({} coalesced), none lost; latency p50 {:.1} us, p99 {:.1} us",
        N - wakes,
        p(50),
        p(99)
    ));
    Ok(())
}

/// Another FreeRTOS task (a "legacy" thread, higher priority) sets the flag every tick.
fn task_sets_flag() -> std::result::Result<(), String> {
    const N: u32 = 1_000;
    static DONE: AtomicBool = AtomicBool::new(false);
    static SET_BY_TASK: AtomicU32 = AtomicU32::new(0);
    let config = rtos_shims::ThreadConfig {
        name: "legacy",
        stack_size: 16 * 1024,
        priority: CASE_PRIORITY + 2,
    };
    rtos_shims::spawn_thread(
        config,
        Box::new(|| {
            for _ in 0..N {
                delay_ms(1);
                SET_BY_TASK.fetch_add(1, Ordering::SeqCst);
                FLAG.set();
            }
            DONE.store(true, Ordering::SeqCst);
        }),
    )
    .map_err(|e| e.to_string())?;
    let wakes = run(async {
        let mut wakes = 0u32;
        while SET_BY_TASK.load(Ordering::SeqCst) < N {
            wait_for_ms(FLAG.wait(), 10_000).await?;
            wakes += 1;
        }
        Ok(wakes)
    })
    .map_err(|e| e.to_string())?;
    report(&format!(
        "FreeRTOS task -> ThreadSafeFlag -> loop: {N} sets, {wakes} wakes"
    ));
    Ok(())
}

/// A setter task of *lower* priority than the loop, and a new waiting task each round (as
/// `wait_for` makes): the set's give preempts the setter in the middle of its wake. (An
/// earlier flag design kept its waker slot marked "waking" across that preemption and the
/// next waiter livelocked the loop; this case is the regression test.)
fn lower_priority_setter() -> std::result::Result<(), String> {
    const ROUNDS: u32 = 200;
    static LOW_FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
    static ACKED: AtomicU32 = AtomicU32::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    let config = rtos_shims::ThreadConfig {
        name: "low-setter",
        stack_size: 16 * 1024,
        priority: CASE_PRIORITY - 1,
    };
    rtos_shims::spawn_thread(
        config,
        Box::new(|| {
            for i in 0..ROUNDS {
                LOW_FLAG.set();
                while ACKED.load(Ordering::Acquire) == i && !STOP.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            }
        }),
    )
    .map_err(|e| e.to_string())?;
    let out = run(async {
        for i in 0..ROUNDS {
            if let Err(e) = wait_for_ms(LOW_FLAG.wait(), 20_000).await {
                return Ok(Err(format!("round {i}: {e}")));
            }
            ACKED.store(i + 1, Ordering::Release);
        }
        Ok(Ok(()))
    });
    STOP.store(true, Ordering::Release);
    out.map_err(|e| e.to_string())?
}

// ---- create_task on a thread that does not own the loop -------------------------------------

/// A FreeRTOS task that is not the loop's owner calls `create_task` while the loop runs on
/// the case's task: it gets a task born finished with `RuntimeError("the event loop belongs
/// to another thread")`, which it awaits on its own thread (polled by hand: no loop is there),
/// while the loop's task is in the middle of an await. The loop's task is not disturbed.
fn create_task_on_another_thread() -> std::result::Result<(), String> {
    static OTHER_FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
    static OUTCOME: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let out = run(async {
        let config = rtos_shims::ThreadConfig {
            name: "not-owner",
            stack_size: 16 * 1024,
            priority: CASE_PRIORITY + 1,
        };
        rtos_shims::spawn_thread(
            config,
            Box::new(|| {
                let mut task = create_task(async { Ok(7u32) });
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                let got = match std::pin::Pin::new(&mut task).poll(&mut cx) {
                    std::task::Poll::Ready(r) => format!("{r:?}"),
                    std::task::Poll::Pending => "Pending".into(),
                };
                *OUTCOME.lock().unwrap_or_else(|e| e.into_inner()) = Some(got);
                OTHER_FLAG.set();
            }),
        )
        .map_err(|e| Error::runtime(e.to_string()))?;
        wait_for_ms(OTHER_FLAG.wait(), 10_000).await?;
        // The loop's own tasks still work.
        create_task(async { Ok(5u32) }).await
    })
    .map_err(|e| e.to_string())?;
    let got = OUTCOME.lock().unwrap_or_else(|e| e.into_inner()).take();
    let want = format!(
        "{:?}",
        Result::<u32>::Err(Error::runtime("the event loop belongs to another thread"))
    );
    if out != 5 || got.as_deref() != Some(want.as_str()) {
        return Err(format!(
            "loop task gave {out}, the other thread's task gave {got:?} (want {want})"
        ));
    }
    report(&format!("create_task on a non-owner FreeRTOS task: {want}"));
    Ok(())
}

// ---- the C API's queue --------------------------------------------------------------------

static QUEUE: AtomicUsize = AtomicUsize::new(0);
static ISR_OK: AtomicU32 = AtomicU32::new(0);
static ISR_FULL: AtomicU32 = AtomicU32::new(0);
static ISR_SENT: AtomicU32 = AtomicU32::new(0);

extern "C" fn queue_hook() {
    if ISR_SENT.load(Ordering::SeqCst) >= 40 {
        return;
    }
    let n = ISR_SENT.fetch_add(1, Ordering::SeqCst) + 1;
    let msg = n.to_le_bytes();
    // SAFETY: QUEUE holds a pointer from `uasyncio_queue_create`; `msg` is 4 valid bytes.
    let rc = unsafe { ffi::uasyncio_queue_send(QUEUE.load(Ordering::SeqCst) as *const _, msg.as_ptr().cast(), 4) };
    match rc {
        ffi::OK => ISR_OK.fetch_add(1, Ordering::SeqCst),
        ffi::E_FULL => ISR_FULL.fetch_add(1, Ordering::SeqCst),
        _ => 0,
    };
}

/// The tick hook sends into a 4-message queue nobody reads for 100 ms: four are queued, the
/// rest are refused with E_FULL (the hook returns at once). Then bad input, then a FreeRTOS
/// task and the loop exchange 2,000 messages in order.
fn queue_full_and_flow() -> std::result::Result<(), String> {
    let q = ffi::uasyncio_queue_create(4, 4);
    if q.is_null() {
        return Err("uasyncio_queue_create(4, 4) failed".into());
    }
    QUEUE.store(q as usize, Ordering::SeqCst);
    install_hook(Some(queue_hook));
    delay_ms(100);
    install_hook(None);
    let (ok, full) = (ISR_OK.load(Ordering::SeqCst), ISR_FULL.load(Ordering::SeqCst));
    // SAFETY: `q` is a live queue.
    let (count, dropped) = unsafe { (ffi::uasyncio_queue_count(q), ffi::uasyncio_queue_dropped(q)) };
    if ok != 4 || full != 36 || count != 4 || dropped != 36 {
        return Err(format!(
            "tick-hook sends: {ok} ok, {full} full, count {count}, dropped {dropped}"
        ));
    }
    // SAFETY: bad input on purpose: NULL queue, NULL message, too long.
    let bad = unsafe {
        [
            ffi::uasyncio_queue_send(std::ptr::null(), b"x".as_ptr().cast(), 1),
            ffi::uasyncio_queue_send(q, std::ptr::null(), 3),
            ffi::uasyncio_queue_send(q, b"12345".as_ptr().cast(), 5),
        ]
    };
    if bad != [ffi::E_INVAL, ffi::E_INVAL, ffi::E_TOO_BIG] {
        return Err(format!("bad input returned {bad:?}"));
    }
    if !ffi::uasyncio_queue_create(0, 4).is_null() || !ffi::uasyncio_queue_create(4, 0).is_null() {
        return Err("a zero-sized queue was created".into());
    }
    // SAFETY: `q` came from uasyncio_queue_create.
    let queue = unsafe { ffi::MessageQueue::from_c(q) }.ok_or("from_c")?;
    const N: u32 = 2_000;
    let got = run(async move {
        let mut buf = [0u8; 4];
        for expect in 1..=4u32 {
            let n = queue.recv_into(&mut buf).await?;
            if n != 4 || u32::from_le_bytes(buf) != expect {
                return Err(Error::value("tick-hook messages out of order"));
            }
        }
        let q_addr = q as usize;
        let config = rtos_shims::ThreadConfig {
            name: "sender",
            stack_size: 16 * 1024,
            priority: CASE_PRIORITY + 1,
        };
        rtos_shims::spawn_thread(
            config,
            Box::new(move || {
                let mut i = 1u32;
                while i <= N {
                    let msg = i.to_le_bytes();
                    // SAFETY: a live queue; 4 valid bytes.
                    match unsafe { ffi::uasyncio_queue_send(q_addr as *const _, msg.as_ptr().cast(), 4) } {
                        ffi::OK => i += 1,
                        _ => delay_ms(1), // full: the loop is behind, try again next tick
                    }
                }
            }),
        )
        .map_err(|_| Error::Os(12))?;
        let mut expect = 1u32;
        while expect <= N {
            let msg = wait_for_ms(queue.recv(), 20_000).await?;
            if msg.as_slice() != expect.to_le_bytes() {
                return Err(Error::value("task messages out of order"));
            }
            expect += 1;
        }
        Ok(expect - 1)
    })
    .map_err(|e| e.to_string())?;
    report(&format!(
        "queue: tick hook 4 queued + 36 refused (E_FULL); FreeRTOS task -> loop {got} messages in order"
    ));
    Ok(())
}

extern "C" fn misuse_hook() {
    let _ = ffi::uasyncio_queue_create(1, 1);
}

fn misuse_c_api_in_isr() -> std::result::Result<(), String> {
    install_hook(Some(misuse_hook));
    delay_ms(100);
    Err("uasyncio_queue_create from the tick hook was not caught".into())
}

fn flag_from_c_handles() -> std::result::Result<(), String> {
    let flag = ffi::uasyncio_flag_create();
    // SAFETY: from uasyncio_flag_create.
    let rust_flag = unsafe { ffi::flag_from_c(flag.cast()) }.ok_or("uasyncio_flag_create returned NULL")?;
    // SAFETY: a live flag, and NULL (ignored).
    unsafe {
        ffi::uasyncio_flag_set(std::ptr::null());
        ffi::uasyncio_flag_set(flag);
        if ffi::uasyncio_flag_is_set(flag) != 1 {
            return Err("flag not set".into());
        }
    }
    run(async move {
        let waiter = create_task(async move { rust_flag.wait().await });
        waiter.await?;
        // A second concurrent waiter is refused.
        let first = create_task(async move { rust_flag.wait().await });
        uasyncio::sleep_ms(1).await?;
        match rust_flag.wait().await {
            Err(Error::Runtime(_)) => {}
            other => return Err(Error::runtime(format!("second waiter got {other:?}"))),
        }
        // SAFETY: a live flag.
        unsafe { ffi::uasyncio_flag_set(flag) };
        first.await?;
        Result::Ok(())
    })
    .map_err(|e| e.to_string())
}

// ---- a timer while the loop never idles -------------------------------------------------

/// Two tasks yield to each other without end while a third sleeps 2 ms: each pass of the loop
/// looks at the pending timer through the port's cheap tick count (`rtos_shims::tick_count`)
/// and must still fire it (the sleeper then stops the yielders). A loop that never fired it
/// would have them give up after two million yields each, which is seconds of loop time for a
/// 2 ms timer on any machine.
fn timer_fires_while_loop_busy() -> std::result::Result<(), String> {
    static WOKE: AtomicBool = AtomicBool::new(false);
    WOKE.store(false, Ordering::SeqCst);
    run(async {
        let sleeper = create_task(async {
            uasyncio::sleep_ms(2).await?;
            WOKE.store(true, Ordering::SeqCst);
            Result::Ok(())
        });
        let spin = || async {
            let mut yields = 0u32;
            while !WOKE.load(Ordering::SeqCst) {
                yields += 1;
                if yields == 2_000_000 {
                    return Err(Error::runtime("the 2 ms timer never fired while the loop was busy"));
                }
                uasyncio::sleep_ms(0).await?;
            }
            Result::Ok(yields)
        };
        let a = create_task(spin());
        let b = create_task(spin());
        let (ya, yb) = (a.await?, b.await?);
        sleeper.await?;
        report(&format!("busy loop: the 2 ms timer fired after {ya} + {yb} yields"));
        Result::Ok(())
    })
    .map_err(|e| e.to_string())
}

fn main() {
    let cases = [
        Case {
            name: "tick_hook_flag_10000",
            run: tick_hook_flag_10000,
            expect: Expect::Success,
        },
        Case {
            name: "task_sets_flag",
            run: task_sets_flag,
            expect: Expect::Success,
        },
        Case {
            name: "lower_priority_setter",
            run: lower_priority_setter,
            expect: Expect::Success,
        },
        Case {
            name: "queue_full_and_flow",
            run: queue_full_and_flow,
            expect: Expect::Success,
        },
        Case {
            name: "timer_fires_while_loop_busy",
            run: timer_fires_while_loop_busy,
            expect: Expect::Success,
        },
        Case {
            name: "flag_from_c_handles",
            run: flag_from_c_handles,
            expect: Expect::Success,
        },
        Case {
            name: "create_task_on_another_thread",
            run: create_task_on_another_thread,
            expect: Expect::Success,
        },
        Case {
            name: "misuse_c_api_in_isr",
            run: misuse_c_api_in_isr,
            expect: Expect::Abort("uasyncio_queue_create called from an interrupt handler"),
        },
    ];
    run_cases(&cases)
}
