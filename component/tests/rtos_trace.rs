//! The `rtos-trace` hooks (feature `rtos-trace`): a tracer that counts what the loop reports.
//! Run with `cargo test -p uasyncio --features rtos-trace --test rtos_trace`.
#![cfg(feature = "rtos-trace")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use rtos_trace::RtosTrace;

static NEW: AtomicU32 = AtomicU32::new(0);
static READY: AtomicU32 = AtomicU32::new(0);
static BEGIN: AtomicU32 = AtomicU32::new(0);
static END: AtomicU32 = AtomicU32::new(0);
static TERMINATE: AtomicU32 = AtomicU32::new(0);
static IDLE: AtomicU32 = AtomicU32::new(0);
/// Begin/end must alternate: the id of the task running now, or 0.
static RUNNING: Mutex<u32> = Mutex::new(0);

struct Counter;

impl RtosTrace for Counter {
    fn start() {}
    fn stop() {}
    fn task_new(_id: u32) {
        NEW.fetch_add(1, Ordering::Relaxed);
    }
    fn task_send_info(_id: u32, _info: rtos_trace::TaskInfo) {}
    fn task_new_stackless(_id: u32, _name: &'static str, _priority: u32) {}
    fn task_terminate(_id: u32) {
        TERMINATE.fetch_add(1, Ordering::Relaxed);
    }
    fn task_exec_begin(id: u32) {
        let mut r = RUNNING.lock().unwrap();
        assert_eq!(*r, 0, "task_exec_begin({id}) while task {} runs", *r);
        *r = id;
        BEGIN.fetch_add(1, Ordering::Relaxed);
    }
    fn task_exec_end() {
        let mut r = RUNNING.lock().unwrap();
        assert_ne!(*r, 0, "task_exec_end without a task running");
        *r = 0;
        END.fetch_add(1, Ordering::Relaxed);
    }
    fn task_ready_begin(_id: u32) {
        READY.fetch_add(1, Ordering::Relaxed);
    }
    fn task_ready_end(_id: u32) {}
    fn system_idle() {
        IDLE.fetch_add(1, Ordering::Relaxed);
    }
    fn isr_enter() {}
    fn isr_exit() {}
    fn isr_exit_to_scheduler() {}
    fn name_marker(_id: u32, _name: &'static str) {}
    fn marker(_id: u32) {}
    fn marker_begin(_id: u32) {}
    fn marker_end(_id: u32) {}
}

rtos_trace::global_trace! {Counter}

#[test]
fn hooks_follow_the_loop() {
    uasyncio::run(async {
        // `t` sleeps long enough that the loop must go idle waiting for it even if this
        // thread is held off the CPU for a while (a loaded machine): only a stall of 200 ms
        // at the wrong moment could leave no idle pass.
        let t = uasyncio::create_task(async { uasyncio::sleep_ms(200).await });
        uasyncio::sleep_ms(1).await?;
        t.await
    })
    .unwrap();
    let (new, ready, begin, end, term, idle) = (
        NEW.load(Ordering::Relaxed),
        READY.load(Ordering::Relaxed),
        BEGIN.load(Ordering::Relaxed),
        END.load(Ordering::Relaxed),
        TERMINATE.load(Ordering::Relaxed),
        IDLE.load(Ordering::Relaxed),
    );
    // Two tasks (main, t): each created and ended once; every poll begins and ends.
    assert_eq!((new, term), (2, 2));
    assert_eq!(begin, end);
    assert!(
        begin >= 4,
        "main: start, after sleep, after t; t: start, after sleep ({begin})"
    );
    assert!(ready >= begin, "every poll follows a ready ({ready} < {begin})");
    assert!(idle >= 1, "the loop slept while both tasks waited");
}
