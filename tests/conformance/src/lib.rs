//! # MicroPython asyncio conformance cases
//!
//! Every example of the two seed documents and every case of `docs/SEMANTICS.md` (plus
//! `Queue`, `Semaphore` and `wait` against CPython's asyncio, in `prims`), as
//! functions that run a loop and check the exact sequence of events it produced. The cases
//! use only the public `uasyncio` API and the `rtos-shims` seam, so the same list runs on
//! the host (`tests/host.rs`), on the FreeRTOS POSIX port and on Cortex-M firmware.
//!
//! Deterministic: each case runs its loop on **virtual time** (see
//! `Loop::use_virtual_time`), so timestamps in the logs are exact milliseconds and nothing
//! depends on the speed of the machine. Cases that involve another thread say so in their
//! name (`thread_`) and use the real clock, asserting order only.
#![no_std]

#[cfg(all(feature = "half-a", feature = "half-b"))]
compile_error!("uasyncio-conformance: `half-a` and `half-b` together would run no case; enable at most one");

extern crate alloc;

mod cancel;
mod funcs;
mod loop_api;
mod prims;
mod seeds;
mod sync;

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt::Debug;

/// What a case gives: `Err` says what differed from MicroPython's behaviour.
pub type Outcome = core::result::Result<(), String>;

/// One conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// `module::what_it_checks`.
    pub name: &'static str,
    /// Runs the case on the calling thread's loop; `Err` says what differed.
    pub run: fn() -> Outcome,
}

/// Every case, in a stable order (half of them with the feature `half-a` or `half-b`).
pub fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    if !cfg!(feature = "half-b") {
        all.extend_from_slice(seeds::CASES);
        all.extend_from_slice(cancel::CASES);
        all.extend_from_slice(funcs::CASES);
        all.extend_from_slice(prims::FUNCS_CASES);
    }
    if !cfg!(feature = "half-a") {
        all.extend_from_slice(sync::CASES);
        all.extend_from_slice(prims::SYNC_CASES);
        all.extend_from_slice(loop_api::CASES);
    }
    all
}

/// Resets the calling thread's loop for a case: no pending task, default exception handler,
/// virtual time from 0.
pub fn fresh_loop() -> uasyncio::Loop {
    let lp = match uasyncio::new_event_loop() {
        Ok(lp) => lp,
        Err(_) => uasyncio::get_event_loop(),
    };
    lp.set_exception_handler(None);
    lp.use_virtual_time(false);
    lp.use_virtual_time(true);
    lp
}

/// An event log shared by the tasks of a case: each line is `"<ms> <what>"`.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    /// An empty log.
    pub fn new() -> Self {
        Log::default()
    }

    /// Records `what` at the loop's current time.
    pub fn at(&self, what: impl AsRef<str>) {
        self.0
            .borrow_mut()
            .push(format!("{} {}", uasyncio::ticks_ms(), what.as_ref()));
    }

    /// Records `what` without a timestamp.
    pub fn put(&self, what: impl AsRef<str>) {
        self.0.borrow_mut().push(String::from(what.as_ref()));
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// Checks the log against `want`, line by line.
    pub fn expect(&self, want: &[&str]) -> Outcome {
        let got = self.lines();
        if got.len() == want.len() && got.iter().zip(want).all(|(g, w)| g == w) {
            return Ok(());
        }
        let first = got
            .iter()
            .zip(want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        Err(format!(
            "log differs at line {first}: got {:?}, want {:?}\n full log: {got:?}",
            got.get(first),
            want.get(first)
        ))
    }
}

/// `n`, or a fiftieth of it under Miri (which runs code about a thousand times slower).
pub fn scaled(n: u32) -> u32 {
    if cfg!(miri) {
        (n / 50).max(1)
    } else {
        n
    }
}

/// `Err` with both values unless `got == want`.
pub fn expect_eq<T: Debug + PartialEq>(what: &str, got: T, want: T) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}
