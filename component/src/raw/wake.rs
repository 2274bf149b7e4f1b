//! The lock-free primitives of the cross-context wake path (the `Shared` half of `raw::shared` holds them).
//!
//! Two lock-free pieces, both argued here and model-checked with `loom`
//! (`src/loom_tests.rs`):
//!
//! - [`WakeStack`]: a Treiber stack of task headers. Wakers on other threads or in ISRs push
//!   with a compare-and-swap; the loop takes the whole stack with one `swap(null)` and
//!   reverses it, so tasks run in the order they were woken. There is no single-item pop, so
//!   there is no ABA problem. A task is pushed at most once at a time: its `SCHEDULED` bit is
//!   set by the pusher and cleared by the loop just before polling it.
//! - [`IdleState`]: the one atomic word that says whether the loop is polling, sleeping in its
//!   semaphore, or has a wake pended. A waker swaps in `PENDED` and gives the semaphore only if
//!   it found `SLEEPING`; the loop moves `POLLING → SLEEPING` with a compare-and-swap before it
//!   blocks, and that CAS fails if a wake was pended since it last looked. Either the loop sees
//!   `PENDED` and does not block, or the waker sees `SLEEPING` and gives: a wake is never lost.
//!   A semaphore give left over from a wake that raced a timeout only causes one spurious
//!   wake-up.
//!
//! Wakes from the loop's own thread never come here: they go straight to the loop's local
//! ready queue (see `scheduler::waker`), touching no kernel object.

use core::ptr::{self, NonNull};

use crate::atomic::{AtomicPtr, AtomicU32, Ordering};

/// A node of the wake stack: something with an intrusive `next` link, handed over with a
/// reference that the stack gives back through [`release`](Linked::release) when it cannot
/// keep it. The task cell's header is the one node type (`raw::cell`); the stack is generic
/// so that this layer sits below the cell and `loom` can model it with a plain node.
pub(crate) trait Linked: Sized {
    fn next(&self) -> &AtomicPtr<Self>;

    /// Gives back the reference a push handed over.
    ///
    /// # Safety
    /// The caller owns that reference and does not use `node` afterwards.
    unsafe fn release(node: NonNull<Self>);
}

/// A multi-producer, single-consumer, lock-free stack (see the module docs).
pub(crate) struct WakeStack<N> {
    head: AtomicPtr<N>,
}

impl<N: Linked> WakeStack<N> {
    pub(crate) fn new() -> Self {
        WakeStack {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The head once the consumer is gone: pushes are refused from then on.
    fn closed() -> *mut N {
        ptr::dangling_mut()
    }

    /// Pushes `node`. Safe from any thread and from interrupt context (CAS only).
    ///
    /// The caller hands over a reference that keeps `node` alive until the consumer takes it.
    /// After [`close`](Self::close) the push is refused and the node handed back.
    pub(crate) fn push(&self, node: NonNull<N>) -> Result<(), NonNull<N>> {
        // SAFETY: the caller keeps `node` alive (see above), and nobody else writes its link
        // while it is being pushed (it is in at most one stack, once).
        let next = unsafe { node.as_ref() }.next();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            if head == Self::closed() {
                return Err(node);
            }
            next.store(head, Ordering::Relaxed);
            // Release: the link just written, and everything the waker wrote before waking,
            // is visible to the consumer's Acquire swap.
            match self
                .head
                .compare_exchange_weak(head, node.as_ptr(), Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => head = actual,
            }
        }
    }

    /// Takes every node pushed so far, oldest first; `f` gets each one (with its reference).
    pub(crate) fn drain(&self, f: impl FnMut(NonNull<N>)) {
        if self.head.load(Ordering::Relaxed) != Self::closed() {
            self.take(ptr::null_mut(), f);
        }
    }

    /// [`drain`](Self::drain) for a consumer that has just seen the stack non-empty
    /// ([`is_empty`](Self::is_empty) false): it is open (only the consumer closes it), so the
    /// look at the head before the swap is skipped (the loop's wake path).
    pub(crate) fn drain_seen(&self, f: impl FnMut(NonNull<N>)) {
        self.take(ptr::null_mut(), f);
    }

    /// Drains for the last time and refuses every later push (the consumer is going away).
    pub(crate) fn close(&self, f: impl FnMut(NonNull<N>)) {
        self.take(Self::closed(), f);
    }

    fn take(&self, new_head: *mut N, mut f: impl FnMut(NonNull<N>)) {
        let mut node = self.head.swap(new_head, Ordering::Acquire);
        if node == Self::closed() {
            return;
        }
        // Reverse the LIFO chain in place so wakes are served in FIFO order.
        let mut fifo: *mut N = ptr::null_mut();
        while let Some(n) = NonNull::new(node) {
            // SAFETY: every node in the chain was pushed with a reference that keeps it alive
            // until `f` receives it; the chain is ours alone after the swap.
            let link = unsafe { n.as_ref() }.next();
            node = link.load(Ordering::Relaxed);
            link.store(fifo, Ordering::Relaxed);
            fifo = n.as_ptr();
        }
        while let Some(n) = NonNull::new(fifo) {
            // SAFETY: as above; the link is read before `f` may re-push the node.
            fifo = unsafe { n.as_ref() }.next().load(Ordering::Relaxed);
            f(n);
        }
    }

    /// Whether anything is waiting to be drained (a hint; racy by nature).
    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::Acquire);
        head.is_null() || head == Self::closed()
    }
}

const POLLING: u32 = 0;
const SLEEPING: u32 = 1;
const PENDED: u32 = 2;

/// The loop's state word: polling, sleeping, or pended (see the module docs).
pub(crate) struct IdleState {
    state: AtomicU32,
}

impl IdleState {
    pub(crate) fn new() -> Self {
        IdleState {
            state: AtomicU32::new(POLLING),
        }
    }

    /// Waker side, after publishing its work: true if the loop sleeps and must be given.
    pub(crate) fn pend(&self) -> bool {
        self.state.swap(PENDED, Ordering::AcqRel) == SLEEPING
    }

    /// Loop side, before blocking: true if it may block now; false if a wake was pended, in
    /// which case the state is back to polling and the loop must look at its queues again.
    pub(crate) fn try_sleep(&self) -> bool {
        match self
            .state
            .compare_exchange(POLLING, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                // A read-modify-write, not a store: it reads the last waker's `PENDED` and
                // so acquires that waker's push, which the loop's next look at the wake
                // stack (a plain load) must see. A store here let a second waker's pend be
                // overwritten while its push stayed invisible to that look; the loop then
                // slept with a task queued and nobody to give the semaphore (a lost wake,
                // seen as a reader stuck with bytes in its ring; `loom_no_lost_wake`).
                self.state.swap(POLLING, Ordering::AcqRel);
                false
            }
        }
    }

    /// Loop side, after the semaphore returned (given or timed out).
    pub(crate) fn woke(&self) {
        self.state.swap(POLLING, Ordering::AcqRel);
    }
}
