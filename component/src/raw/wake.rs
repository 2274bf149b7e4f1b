//! The lock-free primitive of the cross-context wake path (the `Shared` half of `raw::shared` holds it).
//!
//! [`WakeStack`]: one atomic word, argued here and model-checked with `loom`
//! (`src/loom_tests.rs`). It is both the queue of tasks woken from other contexts and the
//! word that says whether the loop sleeps:
//!
//! - **The queue**: a Treiber stack of task headers. Wakers on other threads or in ISRs push
//!   with a compare-and-swap; the loop takes the whole stack with one `swap(null)` and
//!   reverses it, so tasks run in the order they were woken. There is no single-item pop, so
//!   there is no ABA problem. A task is pushed at most once at a time: its `SCHEDULED` bit is
//!   set by the pusher and cleared by the loop only after a poll that returned `Pending`
//!   (`Header::settle`; a wake that finds the bit set leaves `NOTIFIED` instead).
//! - **The sleep**: before it blocks in its signal, the loop moves an *empty* stack to the
//!   sentinel `SLEEPING` with a compare-and-swap, which fails if anything was pushed since it
//!   last looked (then it drains instead of sleeping). A push that replaces `SLEEPING` is the
//!   one that must signal the loop; every other push finds the loop awake or already
//!   signalled. After its wait the loop swaps the word back to null, taking whatever was
//!   pushed meanwhile. Either the loop's CAS sees a push (and does not sleep), or the push
//!   sees `SLEEPING` (and signals): a wake is never lost. A signal left over from a push that
//!   raced a timeout only causes one spurious wake-up.
//!
//! One word for both saves an atomic read-modify-write on each side of every cross-context
//! wake: the waker's push is its "pend", and the loop's drain after a wait is its "woke".
//! (They were two words, the stack and an idle state, until the interrupt → task path was
//! measured: see the README's Cortex-M figures.)
//!
//! Wakes from the loop's own thread never come here: they go straight to the loop's local
//! ready queue (see `scheduler::waker`), touching no kernel object.

use core::ptr::{self, NonNull};

use crate::atomic::{AtomicPtr, Ordering};

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

/// A multi-producer, single-consumer, lock-free stack whose consumer can sleep on it (see
/// the module docs).
pub(crate) struct WakeStack<N> {
    head: AtomicPtr<N>,
}

impl<N: Linked> WakeStack<N> {
    pub(crate) fn new() -> Self {
        const { assert!(core::mem::align_of::<N>() >= 4, "the sentinels need nodes aligned to 4") };
        WakeStack {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The head while the consumer sleeps (or is about to) and nothing was pushed since.
    /// Address 1: never a node's (nodes are aligned to 4 or more), never null.
    fn sleeping() -> *mut N {
        ptr::null_mut::<N>().wrapping_byte_add(1)
    }

    /// The head once the consumer is gone: pushes are refused from then on. Address 2.
    fn closed() -> *mut N {
        ptr::null_mut::<N>().wrapping_byte_add(2)
    }

    /// Pushes `node`: `Ok(true)` if the consumer sleeps and the caller must signal it,
    /// `Ok(false)` if it is awake or already signalled. Safe from any thread and from
    /// interrupt context (CAS only).
    ///
    /// The caller hands over a reference that keeps `node` alive until the consumer takes it.
    /// After [`close`](Self::close) the push is refused and the node handed back.
    pub(crate) fn push(&self, node: NonNull<N>) -> Result<bool, NonNull<N>> {
        // SAFETY: the caller keeps `node` alive (see above), and nobody else writes its link
        // while it is being pushed (it is in at most one stack, once).
        let next = unsafe { node.as_ref() }.next();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            if head == Self::closed() {
                return Err(node);
            }
            next.store(
                if head == Self::sleeping() {
                    ptr::null_mut()
                } else {
                    head
                },
                Ordering::Relaxed,
            );
            // Release: the link just written, and everything the waker wrote before waking,
            // is visible to the consumer's Acquire swap. Acquire: a push that replaces
            // `sleeping` sees what the consumer wrote before its CAS to `sleeping` (whom its
            // signal must reach: `LoopSignal::prepare`). A strong CAS: on Armv7-M the weak
            // one's success path compiled to three instructions more.
            match self
                .head
                .compare_exchange(head, node.as_ptr(), Ordering::AcqRel, Ordering::Relaxed)
            {
                // Asked of the value replaced rather than kept from before the exchange: a
                // compare and a branch on the interrupt → task path, where the kept answer
                // compiled to five instructions (Cortex-M3).
                Ok(prev) => return Ok(prev == Self::sleeping()),
                Err(actual) => head = actual,
            }
        }
    }

    /// Consumer, before it blocks: moves an empty stack to `sleeping`. False if something was
    /// pushed since the consumer last drained: it must drain instead of sleeping.
    pub(crate) fn try_sleep(&self) -> bool {
        // Release: publishes what the consumer wrote before (the signal's owner) to the push
        // that will replace `sleeping`. A failure reads a node, which the next drain's
        // Acquire swap takes properly.
        self.head
            .compare_exchange(ptr::null_mut(), Self::sleeping(), Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Consumer, after its wait returned (signalled, timed out or spuriously): awake again,
    /// and takes every node pushed meanwhile, oldest first. One swap whatever happened.
    pub(crate) fn wake(&self, f: impl FnMut(NonNull<N>)) {
        self.take(ptr::null_mut(), f);
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
        if node == Self::closed() || node == Self::sleeping() {
            return;
        }
        let Some(first) = NonNull::new(node) else {
            return;
        };
        // Every node in the chain was pushed with a reference that keeps it alive until `f`
        // receives it; the chain is ours alone after the swap.
        // SAFETY: as just argued.
        if unsafe { first.as_ref() }.next().load(Ordering::Relaxed).is_null() {
            // One node, the common case (an interrupt woke one task): nothing to reverse, and
            // a path of its own, with no loop (Cortex-M3: the interrupt → task path 453 → 447
            // instructions without the reversal, 430 → 420 without the loop).
            f(first);
            return;
        }
        // Reverse the LIFO chain in place so wakes are served in FIFO order.
        let mut fifo: *mut N = ptr::null_mut();
        while let Some(n) = NonNull::new(node) {
            // SAFETY: as above.
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
    ///
    /// `Relaxed`: the answer orders nothing. "Not empty" is followed by the drain's `Acquire`
    /// swap, which reads the pushes; "empty" reads no node, and a push it missed is taken by
    /// the next drain or, before the consumer sleeps, refused by its CAS to `sleeping`.
    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        head.is_null() || head == Self::closed() || head == Self::sleeping()
    }
}
