//! The `std` port: hosted development and tests.
//!
//! There are no interrupts on a hosted OS, so [`in_isr`] is always false and
//! [`Semaphore::give_from_isr`] is [`Semaphore::give`]. The semaphore is a `Mutex<bool>` with a
//! `Condvar`; the clock is `std::time::Instant` measured from the first call.

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{Error, ThreadBody, ThreadConfig};

/// A binary semaphore: [`give`](Self::give) makes one [`take`](Self::take) succeed; gives that
/// happen before a take collapse into one.
///
/// ```
/// let sem = rtos_shims::Semaphore::new().unwrap();
/// sem.give();
/// sem.give();
/// assert!(sem.take(Some(0)));
/// assert!(!sem.take(Some(1_000))); // the two gives were one
/// ```
#[derive(Debug)]
pub struct Semaphore {
    given: Mutex<bool>,
    cond: Condvar,
}

impl Semaphore {
    /// Creates a semaphore in the taken (empty) state.
    pub fn new() -> Result<Self, Error> {
        Ok(Semaphore {
            given: Mutex::new(false),
            cond: Condvar::new(),
        })
    }

    /// Gives the semaphore from a thread.
    pub fn give(&self) {
        let mut given = self.given.lock().unwrap_or_else(|e| e.into_inner());
        *given = true;
        drop(given);
        self.cond.notify_one();
    }

    /// Gives the semaphore from interrupt context. The host has none: same as [`give`](Self::give).
    pub fn give_from_isr(&self) {
        self.give();
    }

    /// Waits until the semaphore is given or `timeout_us` microseconds passed (`None`: forever).
    /// Returns `true` if it was given (and takes it), `false` on timeout.
    pub fn take(&self, timeout_us: Option<u64>) -> bool {
        let mut given = self.given.lock().unwrap_or_else(|e| e.into_inner());
        match timeout_us {
            None => {
                while !*given {
                    given = self.cond.wait(given).unwrap_or_else(|e| e.into_inner());
                }
            }
            Some(us) => {
                let deadline = Instant::now() + Duration::from_micros(us);
                while !*given {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    given = self
                        .cond
                        .wait_timeout(given, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        *given = false;
        true
    }
}

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Microseconds since the first call in this process; monotonic.
///
/// ```
/// let a = rtos_shims::now_us();
/// assert!(rtos_shims::now_us() >= a);
/// ```
pub fn now_us() -> u64 {
    u64::try_from(origin().elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// 0: the host's clock is cheap to read (a vDSO call), so the port has no coarser one
/// ([`tick_count`] is never needed).
///
/// ```
/// assert_eq!(rtos_shims::tick_period_us(), 0);
/// ```
pub fn tick_period_us() -> u32 {
    0
}

/// 0 (see [`tick_period_us`]).
pub fn tick_count() -> u32 {
    0
}

/// Always `false`: a hosted OS runs no Rust code in interrupt context.
pub fn in_isr() -> bool {
    false
}

std::thread_local! {
    static THREAD_TOKEN: u8 = const { 0 };
}

/// A non-zero number that identifies the calling thread among live threads (the address of
/// a thread-local).
///
/// ```
/// let me = rtos_shims::current_thread_id();
/// let other = std::thread::spawn(rtos_shims::current_thread_id).join().unwrap();
/// assert_ne!(me, 0);
/// assert_ne!(me, other);
/// ```
pub fn current_thread_id() -> usize {
    THREAD_TOKEN.with(|t| t as *const u8 as usize)
}

/// Whether the caller is the thread `id`, a value [`current_thread_id`] returned.
///
/// ```
/// let me = rtos_shims::current_thread_id();
/// assert!(rtos_shims::is_current_thread(me));
/// assert!(!std::thread::spawn(move || rtos_shims::is_current_thread(me)).join().unwrap());
/// ```
pub fn is_current_thread(id: usize) -> bool {
    current_thread_id() == id
}

/// Starts a thread; `priority` is ignored on a hosted OS.
pub fn spawn_thread(config: ThreadConfig, body: ThreadBody) -> Result<(), Error> {
    std::thread::Builder::new()
        .name(config.name.into())
        .stack_size(config.stack_size)
        .spawn(body)
        .map(|_| ())
        .map_err(|_| Error::Refused)
}
