//! embassy-executor's `raw::Executor` driven by a cheap park/unpark pender of ours: the
//! "embassy-raw" column, i.e. what an embassy port to a thread-based RTOS would look like
//! when the wake path stays out of the kernel unless the loop really sleeps.
//!
//! The raw executor calls the global `__pender(context)` whenever a task is queued into an
//! empty run queue, from whatever thread woke it. Our `context` is a leaked [`Parker`]: one
//! atomic state word and the loop thread's handle.
//!
//! - `__pender` swaps in `PENDED`; only if it found `SLEEPING` does it `unpark` the loop
//!   thread (a futex call). A pend from the loop thread itself, the common case, is one
//!   atomic swap.
//! - The loop, after each `poll`, swaps in `POLLING`: if it finds `PENDED`, something was
//!   queued meanwhile and it polls again; otherwise it moves `POLLING → SLEEPING` with a
//!   compare-and-swap and parks until the state leaves `SLEEPING`. A pend that lands between
//!   the swap and the CAS makes the CAS fail, so no wake is lost.
//!
//! Only one `__pender` may exist per binary, and embassy's `platform-std` defines one; that
//! is why embassy's std executor is measured from a separate binary (`bench/embassy-std`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::{self, Thread};

use embassy_executor::{raw, Spawner};

const POLLING: u8 = 0;
const SLEEPING: u8 = 1;
const PENDED: u8 = 2;

/// What a raw executor's pender context points to.
struct Parker {
    state: AtomicU8,
    thread: Thread,
}

/// Called by embassy (any thread) when a task is queued into an empty run queue.
#[unsafe(no_mangle)]
fn __pender(context: *mut ()) {
    // SAFETY: every `raw::Executor` in this binary is created by `run` below with a context
    // that points to a leaked, never freed `Parker`, so the pointer is valid for `'static`
    // and only ever read through shared references (its fields are `Sync`).
    let parker = unsafe { &*(context as *const Parker) };
    if parker.state.swap(PENDED, Ordering::AcqRel) == SLEEPING {
        parker.thread.unpark();
    }
}

/// Runs a fresh raw executor on the calling thread: `init` spawns the first task(s), then
/// poll until `done()` is true after a poll. The executor is leaked (embassy needs
/// `&'static`); that is a few dozen bytes per workload run.
pub fn run(init: impl FnOnce(Spawner), mut done: impl FnMut() -> bool) {
    let parker: &'static Parker = Box::leak(Box::new(Parker {
        state: AtomicU8::new(POLLING),
        thread: thread::current(),
    }));
    let context = parker as *const Parker as *mut ();
    let executor: &'static raw::Executor = Box::leak(Box::new(raw::Executor::new(context)));
    init(executor.spawner());
    loop {
        // SAFETY: `poll` must not be called reentrantly nor from two threads at once; this
        // executor is local to this call, polled only here, on this thread, never from a task.
        unsafe { executor.poll() };
        if done() {
            return;
        }
        if parker.state.swap(POLLING, Ordering::AcqRel) == PENDED {
            continue;
        }
        if parker
            .state
            .compare_exchange(POLLING, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            while parker.state.load(Ordering::Acquire) == SLEEPING {
                thread::park();
            }
            parker.state.swap(POLLING, Ordering::AcqRel);
        }
    }
}
