//! Layer 1 of the core: the task cell and the wake path beneath it.
//!
//! The core is built in layers; each module uses only the ones above it in this list, never
//! one below (no module circles):
//!
//! 1. `raw` (here): [`wake`] — the lock-free stack other threads and interrupt handlers wake
//!    tasks through, which is also the word that says whether the loop sleeps; [`cache`] —
//!    freed task cells kept for the next spawns (on that same kind of stack); [`shared`] — a
//!    loop's cross-context half (its wake stack, the signal it sleeps on, and the cache);
//!    then [`cell`] — the task cell
//!    (one heap allocation per task, type-erased behind a vtable), its reference count and
//!    [`TaskRef`], the owned reference every layer holds tasks by.
//! 2. `scheduler` — the loop's thread-local half: ready queue, registry of unfinished tasks,
//!    the timer heap (`scheduler::timers`), the waker (`scheduler::waker`: a wake on the
//!    loop's thread goes to the ready queue, any other goes through [`wake`]), and the pass
//!    of the loop.
//! 3. `task`, `cancel` — task handles (`Task`, `create_task`, `current_task`,
//!    `TaskRef::cancel`) and how awaitables observe a cancel.
//! 4. `time`, `sync`, `funcs` — the awaitables users call: `sleep`, `Event`, `Lock`,
//!    `ThreadSafeFlag`, `Queue`, `Semaphore`, `wait_for`, `gather`, `wait`, `TaskGroup`.
//! 5. `event_loop` — `run`, `Loop`, `get_event_loop`, `new_event_loop` and the exception
//!    handler: what starts the loop and what it reports to.
//!
//! `error`, `atomic` and `fmt` sit beneath all of them; `ffi` (the C API) and `diagnostics`
//! on top.

pub(crate) mod cache;
pub(crate) mod cell;
pub(crate) mod shared;
pub(crate) mod wake;

pub(crate) use cell::{
    allocate, allocate_orphan, counted_ref_on_loop, drop_ref, drop_ref_on_loop, flag, inc_ref, Header, Local, FROM_ISR,
    SCHEDULED,
};
pub use cell::{TaskRef, WaitingOn};
pub(crate) use shared::Shared;
