//! Synchronisation between tasks: `Event`, `Lock`, `ThreadSafeFlag`, `Semaphore`,
//! `BoundedSemaphore`, `Queue` and `ThreadSafeQueue`.
//!
//! `Event`, `Lock`, `Semaphore` and `Queue` belong to the loop thread: they are `!Sync`, so the compiler refuses to
//! share them with another thread or reach them from an interrupt handler (MicroPython
//! forbids `Event.set()` from an ISR but cannot stop it; Rust can). `ThreadSafeFlag` is the
//! one to signal from outside the loop: `Sync`, `const`-constructible for a `static`, and
//! settable from any thread or ISR. `ThreadSafeQueue` is its counterpart for items: a bounded
//! queue that interrupt handlers and threads send into and one task receives from.

mod channel;
#[cfg(all(test, loom))]
mod channel_loom;
mod event;
mod flag;
mod lock;
mod queue;
mod semaphore;
mod wait_queue;

pub use channel::{Recv, ThreadSafeQueue, TryRecvError, TrySendError};
pub use event::{Event, EventWait};
pub use flag::{FlagWait, ThreadSafeFlag};
pub use lock::{Acquire, Lock, LockGuard};
pub use queue::{Get, Put, Queue, QueueFull};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreAcquire, SemaphoreGuard};
