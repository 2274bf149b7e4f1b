//! The task cell: one heap allocation per task, reached through a thin pointer.
//!
//! ```text
//! TaskCell<F, T>  (#[repr(C)], Box-allocated)
//! ├── Header                      shared with wakers on any thread / ISR
//! │   ├── refs   AtomicU32        wakers, wake stack entries and flag slots each own one;
//! │   │                           the loop thread's references together own `held`
//! │   ├── state  AtomicU32        SCHEDULED: the task is queued or being polled
//! │   ├── next   AtomicPtr        link in the loop's cross-context wake stack
//! │   ├── vtable &'static Vtable  the operations that need F and T
//! │   ├── shared Arc<Shared>      the loop's cross-context half (wake stack, semaphore)
//! │   └── local  Local            loop-thread-only bookkeeping (Cells)
//! └── stage  Pending(F) | Done(Result<T, StoredError>) | Taken      loop thread only
//! ```
//!
//! ## Two kinds of reference
//! A cell is freed when its last reference goes. References that may move to another context
//! — wakers, the entries of the cross-context wake stack, a `ThreadSafeFlag`'s waiter slot —
//! are counted in the atomic `refs`. References that never leave the loop's thread —
//! [`TaskRef`]s: task handles, the registry's entries, the ready queue's, the `awaiting`
//! links — are counted in the plain `Local::local_refs`, and all of them together own
//! `Local::held` (at least one while there are any) of the atomic references. Cloning or
//! dropping a `TaskRef` is then a plain add or subtract; only the last one touches `refs`,
//! giving back the `held` references in one operation. A counted reference handed to the loop
//! (a woken task taken from the wake stack, a waker whose wake the loop carries out) becomes a
//! `TaskRef` by joining `held` ([`TaskRef::from_counted`]), again without an atomic operation.
//! (An atomic read-modify-write is a locked instruction on x86 and an `LDREX`/`STREX` loop
//! between barriers on Arm; a spawn and an await of the task made nine of them on reference
//! counts, and make two now: the waker that joins the awaiting task and the last drop.)
//! Both counts are guarded against overflow, as [`inc_ref`] says.
//!
//! ## Who touches what
//! Wakers are `Send + Sync`, so a `Header` is reachable from other threads and from interrupt
//! handlers. Those contexts touch only `refs`, `state`, `next` and `shared` (all atomics or
//! `Sync`). Everything else — `local` and `stage` — is touched only on the thread that runs
//! the task's loop. That is the invariant every `// SAFETY:` comment in this crate leans on.
//! One field of `local` is read elsewhere too: `flags`, an `AtomicU8` that only the loop
//! thread writes (plain loads and stores, `Relaxed`: no read-modify-write), so a future's
//! second poll can see "no cancel pending" through its waker without first proving it runs
//! on the loop's thread ([`crate::cancel::no_cancel_pending`]); from any other thread such a
//! read is stale at worst, never a data race. And one field is written elsewhere too:
//! `requeue`, an `AtomicU8` (plain `Relaxed` loads and stores) that the loop sets to
//! `POLLING` around each poll and a yield's first poll sets to `WOKEN` through its waker, so
//! that a yield need not look up the loop ([`crate::scheduler::waker::own_yield`]). A store
//! from another thread there (a foreign executor polling with our task's waker) is no data
//! race and at worst costs the task one poll more; it decides nothing else.
//!
//! ## Why the future is never dropped on a foreign thread
//! The future `F` and the output `T` need not be `Send`. The last reference to a cell may be a
//! waker dropped on another thread, so the cell must hold nothing that cares where it is
//! dropped by then. The loop guarantees it: the future is dropped on the loop thread when the
//! task finishes (or when the loop is reset or torn down, which finishes every live task
//! first), and an `Ok` output is dropped on the loop thread when the typed handle takes it or
//! goes away. What may remain is an `Error`, which is `Send + Sync` by construction.

use crate::atomic::Arc;
use alloc::alloc::Layout;
use alloc::borrow::Cow;
use alloc::boxed::Box;
use core::cell::{Cell, UnsafeCell};
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::task::{Context, Poll, Waker};

use super::shared::Shared;
use super::wake::Linked;
use crate::atomic::{AtomicPtr, AtomicU32, Ordering};
use crate::error::{Error, StoredError};

/// Task cells allocated and not yet freed (read by `diagnostics::allocated_task_cells`).
///
/// A plain atomic even under loom: a static counter outside the modelled protocols (loom's
/// atomics cannot be statics). Otherwise the crate's, which are portable-atomic's on targets
/// without atomic read-modify-write (Armv6-M).
#[cfg(feature = "diagnostics")]
pub(crate) static LIVE_CELLS: LiveCounter = LiveCounter::new(0);
#[cfg(all(feature = "diagnostics", not(loom)))]
type LiveCounter = crate::atomic::AtomicUsize;
#[cfg(all(feature = "diagnostics", loom))]
type LiveCounter = core::sync::atomic::AtomicUsize;

/// `Header::state`: the task is in a ready queue (the loop's, or the wake stack) or is being
/// polled. Whoever sets it queues the task; only the loop clears it, when a poll returns
/// `Pending` ([`Header::settle`]). Kept set through the poll, so that a task waking itself on
/// the loop's thread (a yield) costs no atomic operation: the loop requeues it.
pub(crate) const SCHEDULED: u32 = 1;
/// `Header::state`: the last wake from another context came from an interrupt handler (for
/// the loop's counters and traces: set only with feature `stats`).
pub(crate) const FROM_ISR: u32 = 2;
/// `Header::state`: a wake from another context found `SCHEDULED` set, so the task may have
/// been being polled: if that poll returns `Pending`, the loop polls the task again.
pub(crate) const NOTIFIED: u32 = 4;

/// Loop-thread-only flags in [`Local::flags`].
pub(crate) mod flag {
    /// `cancel()` was called and no runtime awaitable has observed it yet.
    pub(crate) const CANCEL_PENDING: u8 = 1 << 0;
    /// The future has been polled at least once.
    pub(crate) const STARTED: u8 = 1 << 1;
    /// The stage holds the outcome; the future is gone.
    pub(crate) const FINISHED: u8 = 1 << 2;
    /// Someone awaited (or gathered) the task: its error counts as retrieved.
    pub(crate) const AWAITED: u8 = 1 << 3;
    /// The typed `Task<T>` handle is alive and has not taken the output, so an `Ok` output
    /// must be kept for it (and the handle's drop drops it).
    pub(crate) const HANDLE_ALIVE: u8 = 1 << 4;
    /// The task ended in an error nobody awaited; the loop reports it one pass later.
    pub(crate) const REPORT_PENDING: u8 = 1 << 5;
    /// A spawn's stand-in born finished with an error (`scheduler::orphan`): its cell is not
    /// typed by the handle's output, so the handle takes the error and never the output.
    pub(crate) const ORPHAN: u8 = 1 << 6;
}

/// The operations on a cell that need its concrete future and output types.
pub(crate) struct Vtable {
    /// Polls the future; `Ready` once the outcome is stored in the stage.
    pub(crate) poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> Poll<()>,
    /// Drops the future (if still pending) and stores `Err(err)` as the outcome.
    pub(crate) finish_with: unsafe fn(NonNull<Header>, Error),
    /// Drops an `Ok` output nobody can take any more (errors are kept for reporting).
    pub(crate) drop_output: unsafe fn(NonNull<Header>),
    /// Moves an `Ok` outcome (copies an `Err` one) into `*mut Option<Result<T>>`.
    pub(crate) take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// A copy of the error, if the task finished with one that is still stored.
    pub(crate) error: unsafe fn(NonNull<Header>) -> Option<Error>,
    /// Frees the cell.
    /// Frees the cell; `on_loop`: the caller runs on the loop's thread (see `drop_ref_on_loop`).
    pub(crate) dealloc: unsafe fn(NonNull<Header>, bool),
}

/// What a suspended task waits on, as the runtime's awaitables record it for task dumps
/// ([`crate::task::dump_tasks`]); an awaitable outside this crate records its own with
/// [`crate::cancel::poll_cancelled_waiting`].
///
/// ```
/// use uasyncio::task::WaitingOn;
/// assert_eq!(WaitingOn::Sleep.as_str(), "sleep");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[repr(u8)]
pub enum WaitingOn {
    /// Not suspended in a runtime awaitable (ready, running, finished, or awaiting a future
    /// that records nothing).
    Nothing,
    /// `sleep` / `sleep_ms`.
    Sleep,
    /// `Event::wait`.
    Event,
    /// `Lock::acquire`.
    Lock,
    /// `ThreadSafeFlag::wait`.
    Flag,
    /// `Queue::get` / `put` / `join`, or a channel's receive.
    Queue,
    /// `Semaphore::acquire`.
    Semaphore,
    /// Awaiting another task.
    Task,
    /// `gather`.
    Gather,
    /// `wait_for` (its inner awaitable runs as a task of its own).
    WaitFor,
    /// `wait`.
    Wait,
    /// The end of a `TaskGroup`.
    TaskGroup,
    /// Network or serial I/O (a stream read/write, a connect, an accept, a datagram).
    Io,
    /// Something else that records itself.
    Other,
}

impl WaitingOn {
    const ALL: [WaitingOn; 14] = [
        WaitingOn::Nothing,
        WaitingOn::Sleep,
        WaitingOn::Event,
        WaitingOn::Lock,
        WaitingOn::Flag,
        WaitingOn::Queue,
        WaitingOn::Semaphore,
        WaitingOn::Task,
        WaitingOn::Gather,
        WaitingOn::WaitFor,
        WaitingOn::Wait,
        WaitingOn::TaskGroup,
        WaitingOn::Io,
        WaitingOn::Other,
    ];

    /// A short lower-case label, as dumps print it.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingOn::Nothing => "-",
            WaitingOn::Sleep => "sleep",
            WaitingOn::Event => "Event.wait",
            WaitingOn::Lock => "Lock.acquire",
            WaitingOn::Flag => "ThreadSafeFlag.wait",
            WaitingOn::Queue => "queue",
            WaitingOn::Semaphore => "Semaphore.acquire",
            WaitingOn::Task => "task",
            WaitingOn::Gather => "gather",
            WaitingOn::WaitFor => "wait_for",
            WaitingOn::Wait => "wait",
            WaitingOn::TaskGroup => "TaskGroup",
            WaitingOn::Io => "I/O",
            WaitingOn::Other => "other",
        }
    }

    pub(crate) fn from_u8(v: u8) -> WaitingOn {
        WaitingOn::ALL.get(usize::from(v)).copied().unwrap_or(WaitingOn::Other)
    }
}

/// The values of [`Local::requeue`].
struct Requeue;

impl Requeue {
    /// The loop is not polling the task.
    const IDLE: u8 = 0;
    /// The loop is polling the task.
    const POLLING: u8 = 1;
    /// The loop is polling the task, which woke itself: the loop queues it again when the
    /// poll returns `Pending` (its `SCHEDULED` bit is still set from the poll).
    const WOKEN: u8 = 2;
}

/// Loop-thread-only bookkeeping of a task. `Cell`s, so no `&mut` ever aliases across a poll.
pub(crate) struct Local {
    /// The `flag::*` bits. Written only on the loop thread; atomic (`Relaxed` loads and
    /// stores, which compile to plain ones) so that a read from anywhere is not a data race
    /// (the module docs say who reads it elsewhere). Not loom's: no protocol rests on it.
    pub(crate) flags: core::sync::atomic::AtomicU8,
    /// A small number for `Display`, unique per loop.
    pub(crate) id: u32,
    /// Until the task finishes, its key in the loop's registry of unfinished tasks; from then
    /// on, its order of completion within the loop (for gather's "first error in time"),
    /// wrapping: compare two with [`crate::scheduler::completed_before`]. One field for both
    /// keeps a trivial task's cell in the cache's 96-byte class.
    pub(crate) key_or_seq: Cell<u32>,
    /// The loop thread's references ([`TaskRef`]s); see the module docs.
    local_refs: Cell<u32>,
    /// How many of the atomic `refs` the loop thread's references own together: at least one
    /// while `local_refs` is not zero, none when it is.
    held: Cell<u8>,
    /// The one task (or gather) waiting for this task to finish.
    pub(crate) join_waker: Cell<Option<Waker>>,
    /// The task this task is awaiting, so `cancel()` can be forwarded to it ([`TaskRef::awaited`]).
    /// Not a counted reference: the awaiting `Task` handle's poll sets it and that handle
    /// clears it (`Task::unlink`, when it completes or is dropped), and the handle holds a
    /// reference to the awaited task all that time, so while set it points at a live cell.
    /// (Counting it cost a clone and a drop per `create_task(..).await`.)
    pub(crate) awaiting: Cell<Option<NonNull<Header>>>,
    /// What the task last said it waits on (a [`WaitingOn`] as `u8`, the low four bits): for
    /// task dumps. With feature `stats`, the high four bits hold what made the task ready
    /// last (`scheduler::stats::WokenBy`): for traces. (Two fields in one byte, so that
    /// `requeue` has one of its own and the header stays 80 bytes on a 64-bit host, which a
    /// trivial task's cell needs to stay in the cache's 96-byte class.) Read and written through
    /// [`waiting_on`](Local::waiting_on), [`set_waiting_on`](Local::set_waiting_on), and
    /// with `stats` `woken_by` and `set_woken_by`.
    waiting: Cell<u8>,
    /// Whether the loop is polling the task and whether it woke itself meanwhile: a
    /// [`Requeue`] value. The one field of `local` written off the loop thread too (see the
    /// module docs); every access is a plain `Relaxed` load or store, through
    /// [`begin_poll`](Local::begin_poll), [`woke_itself`](Local::woke_itself),
    /// [`end_pending_poll`](Local::end_pending_poll) and
    /// [`yield_if_polled`](Local::yield_if_polled).
    requeue: core::sync::atomic::AtomicU8,
    /// The name `set_name` gave; `None`: the default `Task-<id>`. Boxed so that an unnamed
    /// task pays one pointer.
    pub(crate) name: Cell<Option<Box<Cow<'static, str>>>>,
}

impl Local {
    /// The low bits of `waiting`: the [`WaitingOn`] as `u8`.
    const WAITING_MASK: u8 = 0x0F;

    /// What the task last said it waits on (a [`WaitingOn`] as `u8`).
    #[inline(always)]
    pub(crate) fn waiting_on(&self) -> u8 {
        self.waiting.get() & Self::WAITING_MASK
    }
    /// Records what the task waits on (a [`WaitingOn`] as `u8`), during its poll (or just
    /// before it). One plain store: it clears the `woken_by` bits (feature `stats`) too,
    /// which the poll's start has read already (the trace's `poll_start`), and nothing sets
    /// again during the poll (a wake of the task being polled is counted when the poll
    /// returns).
    #[inline(always)]
    pub(crate) fn set_waiting_on(&self, on: u8) {
        const { assert!((WaitingOn::Other as u8) <= Local::WAITING_MASK) };
        self.waiting.set(on);
    }
    /// What made the task ready last (`scheduler::stats::WokenBy` as `u8`).
    #[cfg(feature = "stats")]
    #[inline(always)]
    pub(crate) fn woken_by(&self) -> u8 {
        self.waiting.get() >> 4
    }
    /// Records what made the task ready (`scheduler::stats::WokenBy` as `u8`, below 16), when
    /// a wake queues it. One plain store: it clears what the task waited on too, which says
    /// nothing from then on (a queued task waits on nothing: [`WaitingOn::Nothing`], see
    /// `Task::waiting_on`) and which its next poll records anew.
    #[cfg(feature = "stats")]
    #[inline(always)]
    pub(crate) fn set_woken_by(&self, by: u8) {
        self.waiting.set(by << 4);
    }
    /// The loop, right before it polls the task: `POLLING`.
    #[inline(always)]
    pub(crate) fn begin_poll(&self) {
        self.requeue
            .store(Requeue::POLLING, core::sync::atomic::Ordering::Relaxed);
    }
    /// The loop's thread, during the task's poll: the task woke itself (`WOKEN`).
    #[inline(always)]
    pub(crate) fn woke_itself(&self) {
        self.requeue
            .store(Requeue::WOKEN, core::sync::atomic::Ordering::Relaxed);
    }
    /// The loop, after a poll that returned `Pending`: back to `IDLE`; true if the task woke
    /// itself during the poll. (A finished task's stays `POLLING`: nothing polls it again.)
    #[inline(always)]
    pub(crate) fn end_pending_poll(&self) -> bool {
        let requeue = self.requeue.load(core::sync::atomic::Ordering::Relaxed);
        self.requeue.store(Requeue::IDLE, core::sync::atomic::Ordering::Relaxed);
        requeue == Requeue::WOKEN
    }
    /// Any thread, through a waker (atomics only): marks the task `WOKEN` if it is not
    /// `IDLE`, i.e. if its loop is polling it; false (nothing written) if it is not. What a
    /// store from a thread other than the loop's can leave behind is argued at
    /// `scheduler::waker::own_yield`.
    #[inline(always)]
    pub(crate) fn yield_if_polled(&self) -> bool {
        if self.requeue.load(core::sync::atomic::Ordering::Relaxed) == Requeue::IDLE {
            return false;
        }
        self.woke_itself();
        true
    }
    #[inline(always)]
    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags.load(core::sync::atomic::Ordering::Relaxed) & f != 0
    }
    /// All the `flag::*` bits at once (one load where several are looked at).
    #[inline(always)]
    pub(crate) fn all(&self) -> u8 {
        self.flags.load(core::sync::atomic::Ordering::Relaxed)
    }
    /// Loop thread only (a load and a store, not a read-modify-write: one writer).
    #[inline(always)]
    pub(crate) fn set(&self, f: u8) {
        self.set_was(f);
    }
    /// [`set`](Self::set), answering the bits as they were before.
    #[inline(always)]
    pub(crate) fn set_was(&self, f: u8) -> u8 {
        let v = self.all();
        self.flags.store(v | f, core::sync::atomic::Ordering::Relaxed);
        v
    }
    /// Loop thread only, as [`set`](Self::set).
    #[inline(always)]
    pub(crate) fn clear(&self, f: u8) {
        self.clear_was(f);
    }
    /// [`clear`](Self::clear), answering the bits as they were before.
    #[inline(always)]
    pub(crate) fn clear_was(&self, f: u8) -> u8 {
        let v = self.all();
        self.flags.store(v & !f, core::sync::atomic::Ordering::Relaxed);
        v
    }
}

/// The part of a task every context may see. See the module doc for who touches what.
#[repr(C)]
pub(crate) struct Header {
    /// 32 bits on every target (so that it pairs with `state` in one word on 64-bit ones),
    /// guarded against overflow in [`inc_ref`].
    pub(crate) refs: AtomicU32,
    pub(crate) state: AtomicU32,
    pub(crate) next: AtomicPtr<Header>,
    pub(crate) vtable: &'static Vtable,
    /// Taken out by hand when the cell is freed (see `dealloc`).
    pub(crate) shared: ManuallyDrop<Arc<Shared<Header>>>,
    pub(crate) local: Local,
}

/// The state word's protocol (see [`SCHEDULED`]). Three parties touch it: a wake on the
/// task's loop thread ([`schedule_here`](Header::schedule_here), for a task that is not
/// being polled: the loop thread knows which one is), a wake from any other context
/// ([`notify_remote`](Header::notify_remote)) and the loop after a `Pending` poll
/// ([`settle`](Header::settle)). Their changes are read-modify-writes, so they are totally
/// ordered on the word (the two plain stores, a new task's `SCHEDULED` before anyone can wake
/// it and `keep_off_queues`', are argued where they are made):
///
/// - a remote wake before the loop's `settle` finds `SCHEDULED` set and leaves `NOTIFIED`,
///   which `settle` reads: the loop queues the task again (or a remote wake after `settle`
///   found the bit clear and queued it: `settle` re-sets the bit with a `fetch_or` and queues
///   only if that set it). A wake during a poll is never lost, and the task is queued once.
/// - a remote wake after `settle` finds the bit clear, sets it and queues the task on the
///   wake stack, as before this protocol.
///
/// Orderings: a waker's write is `Release` (what it wrote before waking is visible to the poll
/// that follows: through the wake stack's `Acquire` drain, or through `settle`'s `Acquire`
/// swap when `settle` queues the task) and `Acquire` (the loop's last use of the `next` link,
/// before its `Release` clear, happens before the waker's push writes it).
impl Header {
    /// A wake from a context other than the task's loop thread (another thread, an interrupt
    /// handler): true if this call set `SCHEDULED`, so the caller queues the task on the wake
    /// stack; otherwise the task is queued already or being polled, and `NOTIFIED` tells the
    /// loop to poll it again if that poll returns `Pending`.
    ///
    /// The common case, a waiting task, is one `fetch_or`, as a wake was before `NOTIFIED`
    /// existed; `NOTIFIED` is set apart ([`notify_queued`](Header::notify_queued)), only when
    /// `SCHEDULED` was, or every remote wake would cost its task a second poll.
    #[inline(always)]
    pub(crate) fn notify_remote(&self, isr: bool) -> bool {
        // `FROM_ISR` is read only by the loop's counters (feature `stats`): without them the
        // wake does not ask (Cortex-M3: the interrupt → task path 442 → 438 instructions).
        let bits = if cfg!(feature = "stats") && isr {
            SCHEDULED | FROM_ISR
        } else {
            SCHEDULED
        };
        self.state.fetch_or(bits, Ordering::AcqRel) & SCHEDULED == 0 || self.notify_queued(bits)
    }

    /// [`notify_remote`](Header::notify_remote) of a task found `SCHEDULED`: sets `NOTIFIED`
    /// while the bit is still set. If the loop settled the task between the two operations
    /// (its poll returned `Pending` and it saw no `NOTIFIED`), the task now waits and the wake
    /// starts over: it sets `SCHEDULED` and queues the task, or finds it queued or polled
    /// again. (The `NOTIFIED` left on the waiting task then costs it one extra poll at most.)
    #[cold]
    #[inline(never)]
    fn notify_queued(&self, bits: u32) -> bool {
        loop {
            if self.state.fetch_or(NOTIFIED, Ordering::AcqRel) & SCHEDULED != 0 {
                return false;
            }
            if self.state.fetch_or(bits, Ordering::AcqRel) & SCHEDULED == 0 {
                return true;
            }
        }
    }

    /// A wake on the task's loop thread of a task that is not being polled: true if this call
    /// set `SCHEDULED`, so the caller puts it in the ready queue.
    #[inline(always)]
    pub(crate) fn schedule_here(&self) -> bool {
        self.state.fetch_or(SCHEDULED, Ordering::AcqRel) & SCHEDULED == 0
    }

    /// The loop, after a poll that returned `Pending` without the task waking itself on the
    /// loop's thread: clears the state word. `Some(old state)` if a wake from another context
    /// arrived during the poll (`NOTIFIED`) and this call set `SCHEDULED` again, so the loop
    /// must queue the task; `None` if the task now waits (or a remote wake that came after the
    /// clear has queued it on the wake stack).
    ///
    /// The swap is `Release`, not `AcqRel`. Acquire: what a waker wrote before its `NOTIFIED`
    /// is needed only when the loop polls the task again, and `schedule_here`'s
    /// read-modify-write, which comes first, acquires it (the swap, a read-modify-write,
    /// continues the waker's release sequence); a task that now waits needs nothing from a
    /// waker (the loom model `loom_wake_during_poll_runs_the_task_again` fails with
    /// `schedule_here` `Relaxed` here). Release: a waker that reads the cleared word pushes
    /// the task on the wake stack and so writes its `next`, which the loop's ready queue wrote
    /// before the poll; the release puts the loop's write first, or the drain could follow
    /// the ready queue's stale link (`loom_ready_queue_link_then_remote_push` fails with the
    /// swap `Relaxed`). (Cortex-M: one `dmb` less after every wait.)
    #[inline(always)]
    pub(crate) fn settle(&self) -> Option<u32> {
        let old = self.state.swap(0, Ordering::Release);
        if old & NOTIFIED != 0 && self.schedule_here() {
            return Some(old);
        }
        None
    }
}

impl Linked for Header {
    fn next(&self) -> &AtomicPtr<Self> {
        &self.next
    }

    unsafe fn release(node: NonNull<Self>) {
        // SAFETY: the caller owns the reference it gives up (the trait's contract).
        unsafe { drop_ref(node) };
    }
}

enum Stage<F, T> {
    Pending(F),
    Done(core::result::Result<T, StoredError>),
    Taken,
}

#[repr(C)]
struct TaskCell<F, T> {
    header: Header,
    stage: UnsafeCell<Stage<F, T>>,
}

struct VtableFor<F, T>(PhantomData<(F, T)>);

impl<F, T> VtableFor<F, T>
where
    F: Future<Output = crate::Result<T>> + 'static,
    T: 'static,
{
    const VTABLE: Vtable = Vtable {
        poll: poll::<F, T>,
        finish_with: finish_with::<F, T>,
        drop_output: drop_output::<F, T>,
        take_output: take_output::<F, T>,
        error: error::<F, T>,
        dealloc: dealloc::<F, T>,
    };
}

/// Allocates a task cell holding `fut`, with `local` loop-thread references owned by the
/// caller (each becomes one `TaskRef::from_raw` of the returned pointer); with `local == 0`,
/// one counted reference instead (given back with `drop_ref`: the loom models, which have no
/// loop thread). Counting them here instead of cloning costs nothing: no other context can
/// see the cell yet.
///
/// The memory comes from `shared`'s cell cache (`raw::cache`) when it has a block of the
/// cell's size class. Called only on the loop's thread (its callers: the loop's spawn, and
/// the orphan task of a `Shared` no other context has seen yet), as the cache requires.
pub(crate) fn allocate<F, T>(fut: F, shared: Arc<Shared<Header>>, id: u32, local: u32) -> NonNull<Header>
where
    F: Future<Output = crate::Result<T>> + 'static,
    T: 'static,
{
    allocate_stage::<F, T>(Stage::Pending(fut), &VtableFor::<F, T>::VTABLE, shared, id, local)
}

/// The future type of an orphan's cell (`TaskCell<OrphanFuture, ()>`): a task born finished
/// with an error (`scheduler::orphan`), never polled.
type OrphanFuture = core::future::Pending<crate::Result<()>>;

/// The orphan's operations: one set for every orphan, whatever the output type of the handle
/// given out for it. Only `error` and `dealloc` do anything. The stage is `Done(Err)` from
/// birth and never polled, so `poll`, `finish_with` and `drop_output` have nothing to do; and
/// `take_output` writes nothing (the caller's pointer is typed by the handle's output, which
/// is not this cell's), so a handle takes the orphan's error through `error` instead
/// (`flag::ORPHAN`).
static ORPHAN_VTABLE: Vtable = Vtable {
    poll: orphan_poll,
    finish_with: orphan_finish_with,
    drop_output: orphan_nothing,
    take_output: orphan_take_output,
    error: error::<OrphanFuture, ()>,
    dealloc: dealloc::<OrphanFuture, ()>,
};

unsafe fn orphan_poll(_: NonNull<Header>, _: &mut Context<'_>) -> Poll<()> {
    Poll::Ready(())
}
unsafe fn orphan_finish_with(_: NonNull<Header>, _: Error) {}
unsafe fn orphan_nothing(_: NonNull<Header>) {}
unsafe fn orphan_take_output(_: NonNull<Header>, _: *mut ()) {}

/// Allocates the cell of an orphan holding `err` (see [`OrphanFuture`]), with one loop-thread
/// reference owned by the caller.
pub(crate) fn allocate_orphan(err: Error, shared: Arc<Shared<Header>>) -> NonNull<Header> {
    let stage: Stage<OrphanFuture, ()> = Stage::Done(Err(StoredError::from(err)));
    allocate_stage(stage, &ORPHAN_VTABLE, shared, 0, 1)
}

/// Writes a new cell: `vtable` is `VtableFor::<F, T>::VTABLE`, or the orphan's.
#[inline(always)]
fn allocate_stage<F, T>(
    stage: Stage<F, T>,
    vtable: &'static Vtable,
    shared: Arc<Shared<Header>>,
    id: u32,
    local: u32,
) -> NonNull<Header> {
    let layout = Layout::new::<TaskCell<F, T>>();
    // SAFETY: on the loop's thread (see above), the only one that takes from the cache.
    let mem = unsafe { shared.cells.take(layout) }.cast::<TaskCell<F, T>>();
    let Some(mem) = NonNull::new(mem) else {
        // What `Box::new` does when the heap is exhausted.
        alloc::alloc::handle_alloc_error(layout)
    };
    let cell = TaskCell {
        header: Header {
            // The one counted reference: the caller's, or the one `held` for its `TaskRef`s.
            refs: AtomicU32::new(1),
            state: AtomicU32::new(0),
            next: AtomicPtr::new(ptr::null_mut()),
            vtable,
            shared: ManuallyDrop::new(shared),
            local: Local {
                flags: core::sync::atomic::AtomicU8::new(flag::HANDLE_ALIVE),
                id,
                key_or_seq: Cell::new(u32::MAX),
                local_refs: Cell::new(local),
                held: Cell::new(u8::from(local > 0)),
                join_waker: Cell::new(None),
                awaiting: Cell::new(None),
                waiting: Cell::new(WaitingOn::Nothing as u8),
                requeue: core::sync::atomic::AtomicU8::new(Requeue::IDLE),
                name: Cell::new(None),
            },
        },
        stage: UnsafeCell::new(stage),
    };
    // SAFETY: `mem` is a fresh block of at least `layout`'s size and alignment (the cache's
    // contract), unused by anyone else.
    unsafe { mem.as_ptr().write(cell) };
    #[cfg(feature = "diagnostics")]
    LIVE_CELLS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    // The cell is `#[repr(C)]` with the header first, so a pointer to the cell is a pointer to
    // its header, and it keeps the provenance of the whole allocation for the casts back.
    mem.cast()
}

/// Gives the stage of `ptr`'s cell.
///
/// # Safety
/// `ptr` was made by [`allocate::<F, T>`] with these `F`, `T`, is still allocated, and the
/// caller is on the loop thread with no other reference to the stage live.
unsafe fn stage<'a, F, T>(ptr: NonNull<Header>) -> &'a mut Stage<F, T> {
    let cell = ptr.cast::<TaskCell<F, T>>().as_ptr();
    // SAFETY: per this function's contract the cell is alive and of this type, and the stage
    // is only reached from the loop thread, one borrow at a time.
    unsafe { &mut *(*cell).stage.get() }
}

unsafe fn poll<F, T>(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Poll<()>
where
    F: Future<Output = crate::Result<T>>,
{
    // SAFETY: the vtable is only installed by `allocate::<F, T>`; the loop calls `poll` on its
    // own thread, and a task is never polled re-entrantly (it is not in a queue while polled).
    let stage = unsafe { stage::<F, T>(ptr) };
    let Stage::Pending(fut) = stage else {
        return Poll::Ready(());
    };
    // SAFETY: the future lives inside a heap cell that never moves, and it is only ever
    // dropped in place (by assigning the stage), never moved out.
    let fut = unsafe { Pin::new_unchecked(fut) };
    match fut.poll(cx) {
        Poll::Ready(out) => {
            *stage = Stage::Done(out.map_err(StoredError::from));
            Poll::Ready(())
        }
        Poll::Pending => Poll::Pending,
    }
}

unsafe fn finish_with<F, T>(ptr: NonNull<Header>, err: Error) {
    // SAFETY: as in `poll`; the loop calls this only for a task that is not being polled.
    let stage = unsafe { stage::<F, T>(ptr) };
    if let Stage::Pending(_) = stage {
        *stage = Stage::Done(Err(StoredError::from(err)));
    }
}

unsafe fn drop_output<F, T>(ptr: NonNull<Header>) {
    // SAFETY: as in `poll`; called on the loop thread for a finished task.
    let stage = unsafe { stage::<F, T>(ptr) };
    if let Stage::Done(Ok(_)) = stage {
        *stage = Stage::Taken;
    }
}

unsafe fn take_output<F, T>(ptr: NonNull<Header>, out: *mut ()) {
    // SAFETY: as in `poll`; called on the loop thread for a finished task.
    let stage = unsafe { stage::<F, T>(ptr) };
    let res = match stage {
        // An error stays stored: awaiting again re-raises it, and a pending report sees it.
        Stage::Done(Err(e)) => Err(e.to_error()),
        Stage::Done(Ok(_)) => match core::mem::replace(stage, Stage::Taken) {
            Stage::Done(Ok(v)) => Ok(v),
            _ => return,
        },
        _ => return,
    };
    // SAFETY: `Task<T>` passes a pointer to its own `Option<Result<T>>`, the only caller of
    // this vtable entry; `T` matches because the handle was typed at spawn.
    unsafe { *out.cast::<Option<crate::Result<T>>>() = Some(res) };
}

unsafe fn error<F, T>(ptr: NonNull<Header>) -> Option<Error> {
    // SAFETY: as in `poll`; called on the loop thread for a finished task.
    match unsafe { stage::<F, T>(ptr) } {
        Stage::Done(Err(e)) => Some(e.to_error()),
        _ => None,
    }
}

unsafe fn dealloc<F, T>(ptr: NonNull<Header>, on_loop: bool) {
    #[cfg(feature = "diagnostics")]
    LIVE_CELLS.fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
    let cell = ptr.cast::<TaskCell<F, T>>().as_ptr();
    // SAFETY: the last reference is gone (refcount reached zero), so nothing else can reach
    // the cell, which `allocate::<F, T>` initialised. The loop's `Shared` is taken out first
    // (the cell's drop below leaves it alone: `ManuallyDrop`): its cache receives the block,
    // and this may be the last reference to it.
    let shared = unsafe { ManuallyDrop::take(&mut (*cell).header.shared) };
    // SAFETY: as above; every other field is dropped once, here.
    unsafe { ptr::drop_in_place(cell) };
    let layout = Layout::new::<TaskCell<F, T>>();
    // SAFETY: the block came from this `Shared`'s cache with this layout (`allocate`), and
    // its contents are dropped; the caller vouched for `on_loop`. The loop thread's path (the
    // common one) is inlined; the other goes out of line, one copy for every cell type.
    unsafe {
        if on_loop {
            shared.cells.give_local(cell.cast(), layout);
            Shared::put_cell_ref(shared);
        } else {
            Shared::free_cell_remote(shared, cell.cast(), layout);
        }
    }
}

/// Takes one more reference to the cell.
pub(crate) fn inc_ref(ptr: NonNull<Header>) {
    // SAFETY: the caller owns a reference, so the header is alive.
    let header = unsafe { ptr.as_ref() };
    // Relaxed suffices: a new reference is made from an existing one, which already keeps the
    // cell alive (the same argument as `Arc::clone`).
    let old = header.refs.fetch_add(1, Ordering::Relaxed);
    // A count that wrapped would free the cell under its remaining owners. Only a program
    // that leaks references in a loop (`mem::forget` of a cloned waker) gets here; stop it
    // before the wrap, as `Arc` does, with half the range as margin for other contexts that
    // clone at the same moment.
    if old > MAX_REFS {
        refs_overflow();
    }
}

/// One more counted reference to a task that has [`TaskRef`]s, made on its loop's thread:
/// one of the references `held` for those `TaskRef`s when they own more than the one they
/// need (a wake handed one over: [`TaskRef::from_counted`]), without an atomic operation;
/// else a new one ([`inc_ref`]). For a waker the loop thread makes of the task it is polling
/// (a task that awaits another registers one each time).
///
/// # Safety
/// The caller runs on the thread of the task's loop and holds a `TaskRef` to it (or knows the
/// loop does, as for the task it is polling): `local_refs` is not zero, so `held` is at least
/// one and stays so.
#[inline]
pub(crate) unsafe fn counted_ref_on_loop(ptr: NonNull<Header>) -> NonNull<Header> {
    // SAFETY: the caller's `TaskRef` keeps the header alive; loop thread, so `local` is ours.
    let local = &unsafe { ptr.as_ref() }.local;
    let held = local.held.get();
    if held > 1 {
        // The taken reference stays counted in `refs`; the `TaskRef`s keep at least one.
        local.held.set(held - 1);
    } else {
        inc_ref(ptr);
    }
    ptr
}

/// Largest reference count [`inc_ref`] accepts.
const MAX_REFS: u32 = i32::MAX as u32;

#[cold]
#[inline(never)]
fn refs_overflow() -> ! {
    panic!("uasyncio: over 2^31 references to one task: a waker or task handle is leaked (mem::forget) in a loop")
}

/// Drops one reference; frees the cell when it was the last.
///
/// # Safety
/// The caller owns the reference it gives up and does not use `ptr` afterwards.
pub(crate) unsafe fn drop_ref(ptr: NonNull<Header>) {
    // SAFETY: the caller's contract is ours.
    unsafe { drop_ref_in(ptr, false) }
}

/// [`drop_ref`] on the loop's thread: a freed cell goes straight to the loop's list of free
/// blocks, without the cross-context push (what the last `TaskRef` does too, giving back the
/// references `held` for the loop thread).
///
/// # Safety
/// As [`drop_ref`], and the caller runs on the thread of the task's loop.
pub(crate) unsafe fn drop_ref_on_loop(ptr: NonNull<Header>) {
    // SAFETY: the caller's contract is ours.
    unsafe { drop_ref_in(ptr, true) }
}

#[inline(always)]
unsafe fn drop_ref_in(ptr: NonNull<Header>, on_loop: bool) {
    // SAFETY: the caller's contract is ours.
    unsafe { drop_refs_in(ptr, 1, on_loop) }
}

/// Drops `n` counted references at once; frees the cell when they were the last.
///
/// # Safety
/// The caller owns those `n` references and does not use `ptr` afterwards; `on_loop` as in
/// [`drop_ref_on_loop`].
#[inline(always)]
unsafe fn drop_refs_in(ptr: NonNull<Header>, n: u32, on_loop: bool) {
    // SAFETY: the caller still owns a reference, so the header is alive here.
    let header = unsafe { ptr.as_ref() };
    // The caller's are the only references left (the common end of a task: no waker of it is
    // out): nobody else can make one, since only an owner can, so the cell is freed without
    // the read-modify-write (what `Arc::get_mut` decides with a load). Acquire pairs with the
    // Release decrements of the other owners, as below.
    let last = header.refs.load(Ordering::Acquire) == n || {
        let last = header.refs.fetch_sub(n, Ordering::Release) == n;
        if last {
            // Pairs with the Release decrements of the other owners: their uses of the cell
            // happen before the free (the argument of `Arc::drop`). An Acquire load rather
            // than an Acquire fence: the same guarantee here, and ThreadSanitizer understands
            // it (it does not model fences; std's `Arc` makes the same swap under TSan).
            header.refs.load(Ordering::Acquire);
        }
        last
    };
    if last {
        let dealloc = header.vtable.dealloc;
        // SAFETY: that was the last reference; `on_loop` is the caller's promise.
        unsafe { dealloc(ptr, on_loop) };
    }
}

/// A type-erased, clonable reference to a task: what [`current_task`](crate::current_task) returns and what the
/// exception handler's [`Context::future`](crate::ExceptionContext::future) carries.
///
/// ```
/// uasyncio::run(async {
///     let me = uasyncio::current_task()?;
///     assert!(!me.done());
///     assert!(me.cancel().is_err()); // can't cancel self
///     Ok(())
/// }).unwrap();
/// ```
///
/// Defined here, in the task cell's layer, because every layer above holds tasks through it
/// (the scheduler's queues, wakers' owners); its user-facing `cancel` is added by
/// [`crate::task`], the layer of handles and cancellation.
pub struct TaskRef {
    ptr: NonNull<Header>,
    _not_send: PhantomData<*const ()>,
}

impl TaskRef {
    /// The unfinished task this task awaits (`Local::awaiting`), if any.
    pub(crate) fn awaited(&self) -> Option<TaskRef> {
        // `awaiting` points at a live cell while it is set (see the field); this thread is
        // the loop's (a `TaskRef` never leaves it).
        self.local()
            .awaiting
            .get()
            .map(TaskRef::clone_from_ptr)
            .filter(|t| !t.done())
    }

    /// The innermost unfinished task at the end of this task's chain of awaits (this task if
    /// it awaits none): where a cancel goes. The chain is followed at most 1,024 links deep.
    pub(crate) fn innermost_awaited(self) -> TaskRef {
        let mut target = self;
        for _ in 0..1024 {
            match target.awaited() {
                Some(inner) => target = inner,
                None => break,
            }
        }
        target
    }

    /// Takes ownership of one loop-thread reference to the cell at `ptr` (one that
    /// [`into_raw`](Self::into_raw) or [`allocate`] gave).
    pub(crate) fn from_raw(ptr: NonNull<Header>) -> Self {
        TaskRef {
            ptr,
            _not_send: PhantomData,
        }
    }

    /// Gives up the handle without giving back its reference (the caller now owns it, to
    /// hand back with [`TaskRef::from_raw`]).
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        ManuallyDrop::new(self).ptr
    }

    /// A new owned reference to the cell at `ptr`, which the caller keeps alive meanwhile.
    /// Called on the task's loop thread only (where `TaskRef`s live).
    pub(crate) fn clone_from_ptr(ptr: NonNull<Header>) -> Self {
        // SAFETY: the caller keeps the cell alive.
        let local = &unsafe { ptr.as_ref() }.local;
        if local.local_refs.get() == 0 {
            // The first loop-thread reference of a cell that only counted references keep
            // alive (a waker's wake): the loop thread's references take one of those.
            inc_ref(ptr);
            local.held.set(1);
        }
        add_local(local);
        TaskRef::from_raw(ptr)
    }

    /// Turns one counted reference (a wake stack entry's, a waker's) into a `TaskRef`: it
    /// joins the references `held` for the loop thread, so no atomic operation is made.
    /// Called on the task's loop thread only.
    ///
    /// # Safety
    /// The caller owns that counted reference and does not use it otherwise.
    pub(crate) unsafe fn from_counted(ptr: NonNull<Header>) -> Self {
        // SAFETY: the caller's counted reference keeps the header alive.
        let header = unsafe { ptr.as_ref() };
        let local = &header.local;
        match local.held.get() {
            u8::MAX => {
                // A long-lived task woken many times: give back all but the one the loop
                // thread keeps, in one operation (never the last reference: that one stays,
                // and so does the caller's, which takes its place).
                header.refs.fetch_sub(u32::from(u8::MAX) - 1, Ordering::Release);
                local.held.set(2);
            }
            held => local.held.set(held + 1),
        }
        // Not checked against `MAX_REFS` as clones are: only a leak can grow `local_refs`
        // that far, a leak of clones, which `add_local` stops first; the entries made here
        // are never leaked (the loop drops them), one at most per task at a time (the task
        // is in one queue at most), so the count stays far from wrapping.
        local.local_refs.set(local.local_refs.get() + 1);
        TaskRef::from_raw(ptr)
    }

    pub(crate) fn ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a TaskRef owns a reference, so the cell is alive while `self` is.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn local(&self) -> &Local {
        &self.header().local
    }

    /// True once the task has finished (returned, failed or was cancelled).
    pub fn done(&self) -> bool {
        self.local().has(flag::FINISHED)
    }

    /// A small number that tells tasks of one loop apart in logs.
    pub fn id(&self) -> u32 {
        self.local().id
    }

    /// The error the task ended with, if it ended with one that is still stored.
    pub(crate) fn error(&self) -> Option<Error> {
        if !self.done() {
            return None;
        }
        let error = self.header().vtable.error;
        // SAFETY: called on the loop thread (TaskRef is !Send) for a finished task.
        unsafe { error(self.ptr) }
    }

    /// The task's name: the one `set_name` gave, else `Task-<id>` (as CPython's default).
    pub(crate) fn name_string(&self) -> alloc::string::String {
        let local = self.local();
        let name = local.name.take();
        let out = match &name {
            Some(n) => alloc::string::String::from(n.as_ref().as_ref()),
            None => alloc::format!("Task-{}", local.id),
        };
        local.name.set(name);
        out
    }

    /// Registers `waker` to be woken when the task finishes (the task's single join slot).
    pub(crate) fn set_join_waker(&self, waker: &Waker) {
        self.set_join_waker_with(waker, || waker.clone());
    }

    /// [`set_join_waker`](Self::set_join_waker) with the copy of `waker` made by `make` when
    /// the slot does not hold one that wakes the same task already.
    #[inline]
    pub(crate) fn set_join_waker_with(&self, waker: &Waker, make: impl FnOnce() -> Waker) {
        let slot = &self.local().join_waker;
        match slot.take() {
            Some(old) if old.will_wake(waker) => slot.set(Some(old)),
            _ => slot.set(Some(make())),
        }
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        add_local(self.local());
        TaskRef::from_raw(self.ptr)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // A `TaskRef` is `!Send` and is only made on its task's loop thread (`current_task`,
        // the loop's queues and registry, `Task` handles, all created there), so that is
        // where it is dropped, and the only thread that touches `local_refs` and `held`.
        let local = self.local();
        let left = local.local_refs.get() - 1;
        local.local_refs.set(left);
        if left == 0 {
            // The loop thread's references owned `held` counted ones (at least one: the
            // module docs' invariant), and the last of them is going away, on the loop thread.
            let held = u32::from(local.held.replace(0));
            // SAFETY: those `held` references are ours to give back, once (argued above).
            unsafe { drop_refs_in(self.ptr, held, true) };
        }
    }
}

/// Adds one loop-thread reference (see the module docs), refusing to wrap as [`inc_ref`] does.
fn add_local(local: &Local) {
    let n = local.local_refs.get();
    if n > MAX_REFS {
        refs_overflow();
    }
    local.local_refs.set(n + 1);
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}
impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Task {}{}>", self.id(), if self.done() { " done" } else { "" })
    }
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task woken hundreds of times through handed-over references (a plain clone of its
    /// waker, woken by the loop's own primitive path, `scheduler::wake`: the waker's reference
    /// joins the loop thread's `held`), past the point where `held` is trimmed (255):
    /// afterwards the counts still add up — the handle is the only loop-thread reference, and
    /// the counted references are exactly the ones it holds — and dropping it frees the cell
    /// (Miri checks that nothing leaks or is freed twice).
    #[test]
    fn references_handed_to_the_loop_thread_add_up() {
        use alloc::rc::Rc;
        use core::cell::{Cell, RefCell};
        use core::future::poll_fn;
        use core::task::Poll;
        let slot: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let rounds = Rc::new(Cell::new(0u32));
        let (slot2, rounds2) = (slot.clone(), rounds.clone());
        let child = crate::run(async move {
            let t = crate::create_task(async move {
                for i in 1..=600u32 {
                    // Pending until the other task wakes it; the stored waker is a plain
                    // clone (an atomic increment), not one made from `held`.
                    poll_fn(|cx| {
                        if rounds2.get() >= i {
                            Poll::Ready(())
                        } else {
                            *slot2.borrow_mut() = Some(cx.waker().clone());
                            Poll::Pending
                        }
                    })
                    .await;
                }
                Ok(())
            });
            let r = t.task_ref();
            for _ in 0..600 {
                crate::sleep_ms(0).await?;
                let w = slot.borrow_mut().take();
                rounds.set(rounds.get() + 1);
                if let Some(w) = w {
                    crate::scheduler::wake(w);
                }
            }
            t.await?;
            Ok(r)
        })
        .unwrap();
        assert!(child.done());
        let local = child.local();
        assert_eq!(local.local_refs.get(), 1);
        assert!(local.held.get() >= 1);
        assert_eq!(child.header().refs.load(Ordering::Relaxed), u32::from(local.held.get()));
        drop(child);
    }

    /// A task waiting on an `Event` hundreds of times: each wait's waker is made from a
    /// reference its loop side holds spare (`cancel::Waiting::clone_waker`), each set hands
    /// one back, so `held` stays small and the counts add up at the end.
    #[test]
    fn waiting_on_a_primitive_reuses_the_references_its_wakes_hand_over() {
        use alloc::rc::Rc;
        let (a, b) = (Rc::new(crate::Event::new()), Rc::new(crate::Event::new()));
        let (a2, b2) = (a.clone(), b.clone());
        let child = crate::run(async move {
            let t = crate::create_task(async move {
                let me = crate::current_task()?;
                for i in 0..600 {
                    a2.wait().await?;
                    a2.clear();
                    assert!(
                        me.local().held.get() <= 2,
                        "held {} after {i} waits",
                        me.local().held.get()
                    );
                    b2.set();
                }
                Ok(())
            });
            for _ in 0..600 {
                a.set();
                b.wait().await?;
                b.clear();
            }
            let r = t.task_ref();
            t.await?;
            Ok(r)
        })
        .unwrap();
        let local = child.local();
        assert_eq!(local.local_refs.get(), 1);
        assert_eq!(child.header().refs.load(Ordering::Relaxed), u32::from(local.held.get()));
        drop(child);
    }

    /// A task that awaits children one after another: each child's finish hands the parent a
    /// counted reference (its join waker's), and each await takes one back from `held` for
    /// the next join waker (`counted_ref_on_loop`) instead of an atomic increment, so `held`
    /// stays small instead of climbing to the trim at 255, and the counts still add up.
    #[test]
    fn awaiting_children_reuses_the_references_their_wakes_hand_over() {
        let parent = crate::run(async {
            let me = crate::current_task()?;
            for i in 0..600u32 {
                crate::create_task(async move { Ok(i) }).await?;
                assert!(
                    me.local().held.get() <= 2,
                    "held {} after {i} awaits",
                    me.local().held.get()
                );
            }
            Ok(me)
        })
        .unwrap();
        assert!(parent.done());
        let local = parent.local();
        assert_eq!(local.local_refs.get(), 1);
        assert_eq!(
            parent.header().refs.load(Ordering::Relaxed),
            u32::from(local.held.get())
        );
        drop(parent);
    }

    /// `Local::awaiting` is not a counted reference: the awaiting `Task` handle clears it when
    /// it goes, wherever it went. A handle polled once by the parent (the link set), then
    /// handed to another task that drops it after the child ended: the link goes with it, so
    /// nothing reads the freed child through it (Miri runs this).
    #[test]
    fn an_awaiting_link_goes_with_its_handle() {
        use core::future::poll_fn;
        let r = crate::run(async {
            let me = crate::current_task()?;
            let mut child = crate::create_task(async { Ok(7u32) });
            // One poll, as a `select` would: pending, and linked to this task.
            poll_fn(|cx| {
                assert!(Pin::new(&mut child).poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            assert_eq!(me.awaited().map(|t| t.ptr()), Some(child.raw().ptr()));
            let holder = crate::create_task(async move {
                crate::sleep_ms(2).await?;
                assert!(child.done());
                drop(child);
                Ok(())
            });
            holder.await?;
            assert!(me.local().awaiting.get().is_none(), "the link outlived its handle");
            assert!(me.awaited().is_none());
            Ok(())
        });
        assert_eq!(r, Ok(()));
    }

    /// What a task costs in memory is mostly this header: on a 64-bit host it is 80 bytes, so
    /// a trivial task's whole cell (header and a 16-byte stage) fits the cell cache's 96-byte
    /// class. A field added here moves every small task up a class (32 bytes).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_trivial_task_fits_96_bytes() {
        async fn trivial() -> crate::Result<()> {
            Ok(())
        }
        fn cell_size<F: Future<Output = crate::Result<T>>, T>(_: &F) -> usize {
            core::mem::size_of::<TaskCell<F, T>>()
        }
        assert_eq!(core::mem::size_of::<Header>(), 80);
        assert_eq!(core::mem::size_of::<core::result::Result<(), StoredError>>(), 16);
        assert!(cell_size(&trivial()) <= 96, "{}", cell_size(&trivial()));
    }
}
