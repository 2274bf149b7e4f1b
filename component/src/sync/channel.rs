//! `ThreadSafeQueue<T>`: a bounded FIFO of typed items from interrupt handlers and other
//! threads to a task on the loop.
//!
//! What the C API's message queue (`uasyncio_queue_*`, `uasyncio::ffi`) does for C, for Rust:
//! any number of producers (interrupt handlers, RTOS threads, other tasks) call
//! [`try_send`](ThreadSafeQueue::try_send), which never blocks, never allocates and never takes
//! a lock or a critical section; one consumer on the loop awaits
//! [`recv`](ThreadSafeQueue::recv). The storage is allocated once, by
//! [`new`](ThreadSafeQueue::new).
//!
//! **The name** follows MicroPython's `ThreadSafeFlag`, the one primitive it lets an ISR or a
//! thread touch: `ThreadSafeQueue` is to [`Queue`](super::Queue) (loop thread only, `!Sync`)
//! what `ThreadSafeFlag` is to [`Event`](super::Event). The methods use the channel words
//! (`try_send`/`recv`) because the contract is a channel's, not `asyncio.Queue`'s: a producer
//! outside the loop cannot await a free slot, so there is no `put().await`; a full queue hands
//! the item back at once; and a closed queue tells the consumer the stream has ended.
//!
//! **Why not shared with `ffi`.** The C queue carries byte strings of a size chosen at run
//! time in one flat buffer, and counts what it drops; this one moves typed `T`s. Their common
//! part is the slot protocol below, about forty lines; sharing it would have meant rewriting
//! the C queue, so the two are kept apart (and both argued in their module docs).
//!
//! ## The algorithm
//! Dmitry Vyukov's bounded queue, as in `ffi`, with the closed state folded into the tail.
//! Positions advance in steps of 2 ([`STEP`]) and wrap at `usize::MAX`, so a position is
//! always even and bit 0 is free for other uses:
//!
//! - `tail`: the next position a producer claims, with bit 0 ([`CLOSED`]) set once the queue
//!   is closed.
//! - `head`: the next position the consumer takes.
//! - each slot `i` has a sequence number `seq` and a value cell. `seq == p` (even) means "free
//!   for the producer of position `p`"; `seq == p + 1` (odd) means "holds the item of position
//!   `p`, published". Initially slot `i`'s `seq` is `i * STEP`. The slot of position `p` is
//!   `(p / STEP) & mask`, with the slot count a power of two (the capacity rounded up), so
//!   positions wrap cleanly. The capacity itself is enforced exactly, against `head`.
//!
//! ## Who touches what
//! - **A producer** ([`try_send`](ThreadSafeQueue::try_send), any context) loads `tail`,
//!   returns `Closed` if bit 0 is set, loads `head` (`Acquire`) and returns `Full` if
//!   `tail - head` is the capacity; then loads its slot's `seq` (`Acquire`). If `seq == tail`,
//!   it claims the position with a compare-and-swap of `tail` to `tail + STEP`; it then owns the
//!   slot's value cell alone: it writes the item and publishes it with
//!   `seq.store(tail + 1, Release)`, then sets the queue's [`ThreadSafeFlag`]. If `seq` is
//!   ahead, or the CAS fails, another producer claimed that position first: it reloads `tail`
//!   and tries again (so a producer retries only when another one made progress: lock-free).
//! - **The consumer** ([`try_recv`](ThreadSafeQueue::try_recv) /
//!   [`recv`](ThreadSafeQueue::recv)) loads its slot's `seq` (`Acquire`); if it reads
//!   `head + 1`, the item is published: it moves the item out, frees the slot for the next lap
//!   with `seq.store(head + slots * STEP, Release)`, then advances
//!   `head.store(head + STEP, Release)`. Otherwise the queue is empty, or the producer of
//!   `head` is between its claim and its publication (see "Preemption" below).
//! - **`close`** (any context) sets bit 0 of `tail` with `fetch_or`, then sets the flag.
//!
//! ## Why no value cell is ever accessed by two contexts at once
//! 1. *Producer against producer:* a producer writes the cell of position `p` only after its
//!    CAS moved `tail` from `p` to `p + STEP`; `tail` takes each value once per wrap of the
//!    position counter (2^63 positions: a producer would have to be preempted while 2^63 other
//!    items went through for the CAS to succeed by ABA), so one producer per position.
//! 2. *Producer against consumer, publication:* the producer's write is sequenced before its
//!    `Release` store of `p + 1`; the consumer reads the cell only after an `Acquire` load
//!    that returned `p + 1`, so the write happens-before the read and is complete.
//! 3. *Consumer against the next lap's producer:* the consumer's read is sequenced before its
//!    `Release` store of `p + slots * STEP`; the producer of that next position claims and
//!    writes only after an `Acquire` load that returned exactly that value, so the read
//!    happens-before the overwrite. (A stale `tail` cannot match a `seq` of a later lap: the
//!    `seq` of a slot only grows, and equals `p` only while position `p` is unclaimed.)
//! 4. *Consumer against consumer:* there is one consumer at a time. `&self` methods cannot
//!    promise that by type, so receiving claims `receiving` with an atomic swap (`Acquire`)
//!    and gives it back with a `Release` store: a second concurrent receiver gets a clear
//!    error ([`TryRecvError::Busy`], or `RuntimeError` from `recv`), never a duplicated item;
//!    and a consumer on another thread sees the previous one's `head` and slot states.
//!    Producers never touch `receiving`.
//!
//! Full is decided only by `tail - head` against the capacity: the consumer frees a slot
//! *before* it advances `head`, so a producer that saw the new `head` (`Acquire`) also sees
//! the slot freed. A `tail` loaded before the consumer went past it gives a negative
//! difference; the producer reloads `tail` rather than report a full queue. The capacity is
//! never exceeded: `head` only grows between a producer's check and its CAS.
//!
//! ## Closing
//! The closed bit lives in `tail`, so closing and claiming are ordered by the one word:
//! every claim whose CAS came before the `fetch_or` is a position below the final tail and
//! will be published; every later claim fails (its expected value lacks the bit) and that
//! producer gets `Closed` with its item. The consumer reports `Closed` only once it has
//! taken every position below the final tail, so no item sent with `Ok` is ever stranded.
//!
//! ## No lost wake-up
//! A producer sets the flag after publishing; the consumer, finding no item, waits on the
//! flag, whose `wait` returns at once if a set came after the wait that last returned (see
//! `sync::flag`). Sets are `SeqCst` and the flag's clearing swap too, so if the
//! consumer's clearing swap read a producer's set, that producer's publication
//! happens-before the consumer's next look at the slot; if it did not, the flag is still set
//! and the next wait returns at once. Closing sets the flag for the same reason.
//!
//! ## Preemption
//! A producer preempted between its claim and its publication (a few instructions: the
//! `ptr::write` of one item) holds back the items claimed after it: the consumer sees the
//! earlier slot unpublished and waits; nothing is lost, and the producer's set wakes the
//! consumer when it finishes. Interrupt handlers never wait on it: a handler that preempts
//! such a producer claims the next position and returns.
//!
//! **Armv6-M** (no atomic read-modify-write): there the compare-and-swap, `fetch_or` and
//! swaps come from `portable-atomic`, each a few instructions inside `critical_section::with`
//! (see `crate::atomic`); the arguments above only need each to be indivisible, which it is.
//!
//! **Nothing is freed in an interrupt handler** by this queue: `try_send` drops nothing (a
//! refused item is handed back), and the flag's set frees nothing there (see its module docs).

use core::fmt;
use core::future::Future;
use core::mem::MaybeUninit;
use core::pin::Pin;
use core::task::{Context, Poll};

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::flag::{FlagWait, ThreadSafeFlag};
use crate::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::error::{Error, Result};

/// One position: positions advance by 2 so that bit 0 of `tail` can hold [`CLOSED`].
const STEP: usize = 2;
/// Bit 0 of `tail`: the queue is closed.
const CLOSED: usize = 1;

#[cfg(loom)]
use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` with loom's access API, so that the loom build checks every access
/// to a value cell against the model.
#[cfg(not(loom))]
struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    fn new(value: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

struct Slot<T> {
    /// See the module docs: even = free for that position, odd = published.
    seq: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded first-in first-out queue from interrupt handlers and other threads (any number of
/// producers) to one task on the loop: the typed Rust form of the C API's `uasyncio_queue_t`.
///
/// - [`try_send`](Self::try_send) is safe **in an interrupt handler** and on any thread: it
///   never blocks, never allocates, never takes a lock or a critical section (on Armv6-M,
///   which lacks atomic read-modify-write, each atomic step is a short one); a full (or
///   closed) queue hands the item back in the error.
/// - [`recv`](Self::recv) waits on the loop for the next item (or the end of a closed queue);
///   [`try_recv`](Self::try_recv) does not wait. One receiver at a time: a second concurrent
///   one gets an error, never a duplicated item.
/// - Items come out in the order their `try_send` calls took a position, so the items of one
///   producer keep their order.
///
/// The capacity is fixed by [`new`](Self::new), which allocates all the storage (the capacity
/// rounded up to a power of two, in slots of one `T` and one `usize`). Share the queue with a
/// handler as a `&'static` (`Box::leak`, or a `static` cell the handler reads) or, between
/// threads, in an `Arc`. The module docs (`sync::channel`) argue why it is sound.
///
/// ```
/// use uasyncio::{run, ThreadSafeQueue};
///
/// let q: &'static ThreadSafeQueue<u32> = Box::leak(Box::new(ThreadSafeQueue::new(8).unwrap()));
/// // e.g. an interrupt handler or an RTOS thread:
/// let producer = std::thread::spawn(move || {
///     for sample in 0..20 {
///         let mut item = sample;
///         while let Err(e) = q.try_send(item) {
///             item = e.into_inner(); // full: retry (a real ISR would count a drop)
///             std::thread::yield_now();
///         }
///     }
///     q.close();
/// });
/// let got = run(async move {
///     let mut got = Vec::new();
///     while let Some(sample) = q.recv().await? {
///         got.push(sample);
///     }
///     Ok(got)
/// })
/// .unwrap();
/// producer.join().unwrap();
/// assert_eq!(got, (0..20).collect::<Vec<_>>());
/// ```
pub struct ThreadSafeQueue<T> {
    slots: Box<[Slot<T>]>,
    /// Slot count - 1.
    mask: usize,
    /// The most items it holds, times [`STEP`].
    capacity_steps: usize,
    /// Next position to claim, with [`CLOSED`] in bit 0.
    tail: AtomicUsize,
    /// Next position to take (written by the consumer only).
    head: AtomicUsize,
    /// A consumer is receiving (one at a time).
    receiving: AtomicBool,
    /// Set by every publication and by `close`; the consumer waits on it.
    ready: ThreadSafeFlag,
}

// SAFETY: items move from a producer's context to the consumer's, never shared by reference:
// `T: Send` is all that needs. The value cells are accessed by one context at a time (the
// module docs' four cases); everything else is atomics.
unsafe impl<T: Send> Sync for ThreadSafeQueue<T> {}
// SAFETY: the queue owns its items; moving it moves them, which `T: Send` allows.
unsafe impl<T: Send> Send for ThreadSafeQueue<T> {}

impl<T> fmt::Debug for ThreadSafeQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadSafeQueue")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> ThreadSafeQueue<T> {
    /// A new, empty, open queue holding at most `capacity` items. All its storage is
    /// allocated here, once (slots for `capacity` rounded up to a power of two).
    ///
    /// Errors with `ValueError` for a zero capacity and `OSError(ENOMEM)` when the heap is too
    /// small.
    ///
    /// ```
    /// use uasyncio::{Error, ThreadSafeQueue};
    /// let q = ThreadSafeQueue::<u8>::new(3).unwrap();
    /// assert_eq!(q.capacity(), 3);
    /// assert!(matches!(ThreadSafeQueue::<u8>::new(0), Err(Error::Value(_))));
    /// ```
    pub fn new(capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::value("ThreadSafeQueue capacity must be non-zero"));
        }
        let no_memory = || Error::Os(12);
        let slot_count = capacity.checked_next_power_of_two().ok_or_else(no_memory)?;
        // Positions wrap at 2^63 (steps of 2); the slot count must divide that.
        let capacity_steps = capacity
            .checked_mul(STEP)
            .filter(|&c| c <= isize::MAX as usize)
            .ok_or_else(no_memory)?;
        let mut slots = Vec::new();
        slots.try_reserve_exact(slot_count).map_err(|_| no_memory())?;
        slots.extend((0..slot_count).map(|i| Slot {
            seq: AtomicUsize::new(i * STEP),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }));
        Ok(ThreadSafeQueue {
            slots: slots.into_boxed_slice(),
            mask: slot_count - 1,
            capacity_steps,
            tail: AtomicUsize::new(0),
            head: AtomicUsize::new(0),
            receiving: AtomicBool::new(false),
            ready: ThreadSafeFlag::new(),
        })
    }

    /// The most items the queue holds.
    ///
    /// ```
    /// assert_eq!(uasyncio::ThreadSafeQueue::<u8>::new(5).unwrap().capacity(), 5);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity_steps / STEP
    }

    /// The number of items sent and not yet received (a snapshot: producers and the consumer
    /// may change it at any time). Counts an item whose producer is still writing it.
    ///
    /// ```
    /// let q = uasyncio::ThreadSafeQueue::new(4).unwrap();
    /// q.try_send('a').unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire) & !CLOSED;
        let used = tail.wrapping_sub(head) as isize;
        (used.max(0) as usize).min(self.capacity_steps) / STEP
    }

    /// True if no item waits (a snapshot, as [`len`](Self::len)).
    ///
    /// ```
    /// assert!(uasyncio::ThreadSafeQueue::<u8>::new(1).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once [`close`](Self::close) was called (items sent before may still wait).
    ///
    /// ```
    /// let q = uasyncio::ThreadSafeQueue::<u8>::new(1).unwrap();
    /// q.close();
    /// assert!(q.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Puts `item` at the end of the queue and wakes the receiver. Safe in an interrupt
    /// handler and on any thread: it never blocks, never allocates and takes no lock or
    /// critical section (atomics only; on Armv6-M each atomic step is a short critical section;
    /// see the module docs).
    ///
    /// A full queue is `Err(TrySendError::Full(item))` and a closed one
    /// `Err(TrySendError::Closed(item))`: the item comes back, to retry, count or drop.
    /// `?` turns the error into [`Error::QueueFull`] or a `RuntimeError`, dropping the item.
    ///
    /// ```
    /// use uasyncio::{ThreadSafeQueue, TrySendError};
    /// let q = ThreadSafeQueue::new(1).unwrap();
    /// assert_eq!(q.try_send("a"), Ok(()));
    /// assert_eq!(q.try_send("b"), Err(TrySendError::Full("b")));
    /// q.close();
    /// assert_eq!(q.try_send("c").unwrap_err().into_inner(), "c");
    /// ```
    pub fn try_send(&self, item: T) -> core::result::Result<(), TrySendError<T>> {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(TrySendError::Closed(item));
            }
            let used = tail.wrapping_sub(self.head.load(Ordering::Acquire)) as isize;
            if used < 0 {
                // The consumer went past this `tail` after we loaded it: it is stale.
                tail = self.tail.load(Ordering::Relaxed);
                continue;
            }
            if used as usize >= self.capacity_steps {
                return Err(TrySendError::Full(item));
            }
            let slot = &self.slots[(tail / STEP) & self.mask];
            if slot.seq.load(Ordering::Acquire) != tail {
                // Another producer claimed this position (our `tail` is stale).
                tail = self.tail.load(Ordering::Relaxed);
                continue;
            }
            match self
                .tail
                .compare_exchange_weak(tail, tail.wrapping_add(STEP), Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    // SAFETY: the CAS gave this producer position `tail`, and the `Acquire`
                    // load above saw the slot freed for it: no other context accesses the
                    // cell until the `Release` store below publishes it (module docs, cases 1
                    // and 3). The cell is `MaybeUninit`: writing does not drop anything.
                    slot.value.with_mut(|cell| unsafe { (*cell).write(item) });
                    slot.seq.store(tail.wrapping_add(1), Ordering::Release);
                    self.ready.set();
                    return Ok(());
                }
                Err(now) => tail = now,
            }
        }
    }

    /// Closes the queue: later sends fail with [`TrySendError::Closed`] (handing their item
    /// back); items sent before stay and are received as usual; once they are all received,
    /// [`recv`](Self::recv) returns `Ok(None)` and [`try_recv`](Self::try_recv)
    /// [`TryRecvError::Closed`]. Safe in any context, as `try_send`; closing twice is harmless.
    ///
    /// ```
    /// use uasyncio::{ThreadSafeQueue, TryRecvError};
    /// let q = ThreadSafeQueue::new(2).unwrap();
    /// q.try_send(1).unwrap();
    /// q.close();
    /// assert_eq!(q.try_recv(), Ok(1));
    /// assert_eq!(q.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn close(&self) {
        if self.tail.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED == 0 {
            self.ready.set();
        }
    }

    /// Takes the oldest item without waiting.
    ///
    /// Errors: [`TryRecvError::Empty`] when no item is ready (also while the producer of the
    /// oldest item is still writing it: it follows shortly); [`TryRecvError::Closed`] when the
    /// queue is closed and every item has been received; [`TryRecvError::Busy`] when another
    /// receive is in progress (a pending [`recv`](Self::recv), or a `try_recv` on another
    /// thread): one receiver at a time.
    ///
    /// Usually called on the loop; callable from any thread, but not meant for interrupt
    /// handlers (the consumer is one task).
    ///
    /// ```
    /// use uasyncio::{ThreadSafeQueue, TryRecvError};
    /// let q = ThreadSafeQueue::new(2).unwrap();
    /// assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    /// q.try_send(7).unwrap();
    /// assert_eq!(q.try_recv(), Ok(7));
    /// ```
    pub fn try_recv(&self) -> core::result::Result<T, TryRecvError> {
        if !self.claim() {
            return Err(TryRecvError::Busy);
        }
        let r = self.take();
        self.unclaim();
        r
    }

    /// Waits for the next item: `Ok(Some(item))`, or `Ok(None)` once the queue is closed and
    /// every item sent before the close has been received. Await it from a uasyncio task.
    ///
    /// Errors with `RuntimeError` when another receive is in progress (one receiver at a
    /// time) or when polled outside a uasyncio task.
    ///
    /// **Cancellation (cancel-safe):** a cancelled receive returns `Err(Error::Cancelled)` and
    /// has taken nothing: an item leaves the queue only in the poll that returns it, so an item
    /// that arrived meanwhile stays first in the queue for the next receive. Dropping the future
    /// does the same (and lets another receiver start). A cancellation is seen before an item
    /// that is ready, as for `Queue::get`, so a busy queue cannot keep a task from being
    /// cancelled.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use uasyncio::{run, ThreadSafeQueue};
    /// let q = Arc::new(ThreadSafeQueue::new(4).unwrap());
    /// let tx = q.clone();
    /// std::thread::spawn(move || tx.try_send("from a thread").unwrap());
    /// let got = run(async move { q.recv().await }).unwrap();
    /// assert_eq!(got, Some("from a thread"));
    /// ```
    pub fn recv(&self) -> Recv<'_, T> {
        Recv {
            queue: self,
            wait: None,
            claimed: false,
        }
    }

    /// Takes the receiving role (see the module docs, case 4).
    fn claim(&self) -> bool {
        !self.receiving.swap(true, Ordering::Acquire)
    }

    fn unclaim(&self) {
        self.receiving.store(false, Ordering::Release);
    }

    /// The consumer's step. Only while holding the receiving role.
    fn take(&self) -> core::result::Result<T, TryRecvError> {
        let head = self.head.load(Ordering::Relaxed);
        let slot = &self.slots[(head / STEP) & self.mask];
        if slot.seq.load(Ordering::Acquire) != head.wrapping_add(1) {
            let tail = self.tail.load(Ordering::Acquire);
            return Err(if tail & CLOSED != 0 && tail & !CLOSED == head {
                TryRecvError::Closed
            } else {
                TryRecvError::Empty
            });
        }
        // SAFETY: the `Acquire` load saw the producer's publication of position `head`: the
        // cell holds its initialised item, and no producer touches it until the `Release`
        // store below frees it (module docs, cases 2 and 3); we hold the receiving role, so
        // no other consumer reads it (case 4). Reading moves the item out; the slot is then
        // treated as uninitialised.
        let item = slot.value.with_mut(|cell| unsafe { (*cell).assume_init_read() });
        slot.seq
            .store(head.wrapping_add(self.slots.len() * STEP), Ordering::Release);
        self.head.store(head.wrapping_add(STEP), Ordering::Release);
        Ok(item)
    }
}

impl<T> Drop for ThreadSafeQueue<T> {
    fn drop(&mut self) {
        // `&mut self`: no producer or consumer is running, and whatever handed us the queue
        // synchronised with them, so `Relaxed` loads see their last stores. Drop the items
        // published and not received.
        let tail = self.tail.load(Ordering::Relaxed) & !CLOSED;
        let mut pos = self.head.load(Ordering::Relaxed);
        while pos != tail {
            let slot = &self.slots[(pos / STEP) & self.mask];
            if slot.seq.load(Ordering::Relaxed) == pos.wrapping_add(1) {
                // SAFETY: the slot holds the published, not yet received item of `pos`, and
                // we have exclusive access to the whole queue.
                slot.value.with_mut(|cell| unsafe { (*cell).assume_init_drop() });
            }
            pos = pos.wrapping_add(STEP);
        }
    }
}

/// The future of [`ThreadSafeQueue::recv`]: `Ok(Some(item))`, or `Ok(None)` at the end of a
/// closed queue. Cancellation and drop: see `recv`.
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    queue: &'a ThreadSafeQueue<T>,
    /// Waiting for the next publication (or `close`).
    wait: Option<FlagWait<'a>>,
    /// This future holds the queue's receiving role.
    claimed: bool,
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").field("waiting", &self.wait.is_some()).finish()
    }
}

impl<T> Recv<'_, T> {
    /// Stops receiving: leaves the flag (FlagWait's drop unregisters) and the receiving role.
    fn finish(&mut self) {
        self.wait = None;
        if self.claimed {
            self.claimed = false;
            self.queue.unclaim();
        }
    }
}

impl<T> Future for Recv<'_, T> {
    type Output = Result<Option<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Option<T>>> {
        let this = self.get_mut();
        if crate::cancel::poll_cancelled_waiting(cx, crate::raw::WaitingOn::Queue) {
            this.finish();
            return Poll::Ready(Err(Error::Cancelled));
        }
        if !this.claimed {
            if !this.queue.claim() {
                return Poll::Ready(Err(Error::runtime("ThreadSafeQueue already has a receiver")));
            }
            this.claimed = true;
        }
        loop {
            match this.queue.take() {
                Ok(item) => {
                    this.finish();
                    return Poll::Ready(Ok(Some(item)));
                }
                Err(TryRecvError::Closed) => {
                    this.finish();
                    return Poll::Ready(Ok(None));
                }
                Err(_) => {}
            }
            let wait = this.wait.get_or_insert_with(|| this.queue.ready.wait());
            match Pin::new(wait).poll(cx) {
                // Set since we last looked (or just now): look again.
                Poll::Ready(Ok(())) => this.wait = None,
                Poll::Ready(Err(e)) => {
                    this.finish();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    // The flag's poll recorded itself; a dump should say "queue". (No
                    // cancellation can be pending here: it was consumed at the top.)
                    let _ = crate::cancel::poll_cancelled_waiting(cx, crate::raw::WaitingOn::Queue);
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The error of [`ThreadSafeQueue::try_send`], carrying the item that was not sent.
///
/// `?` converts it into [`Error::QueueFull`] (full) or a `RuntimeError` (closed), dropping
/// the item.
///
/// ```
/// use uasyncio::{ThreadSafeQueue, TrySendError};
/// let q = ThreadSafeQueue::new(1).unwrap();
/// q.try_send(1).unwrap();
/// let e = q.try_send(2).unwrap_err();
/// assert!(matches!(e, TrySendError::Full(2)));
/// assert_eq!(e.to_string(), "QueueFull");
/// let r: uasyncio::Result<()> = (|| Ok(q.try_send(3)?))();
/// assert_eq!(r, Err(uasyncio::Error::QueueFull));
/// ```
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue holds its capacity of items.
    Full(T),
    /// The queue was closed.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The item that was not sent.
    ///
    /// ```
    /// assert_eq!(uasyncio::TrySendError::Full('x').into_inner(), 'x');
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(item) | TrySendError::Closed(item) => item,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.debug_tuple("Full").finish_non_exhaustive(),
            TrySendError::Closed(_) => f.debug_tuple("Closed").finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "QueueFull",
            TrySendError::Closed(_) => "queue closed",
        })
    }
}

impl<T> core::error::Error for TrySendError<T> {}

impl<T> From<TrySendError<T>> for Error {
    fn from(e: TrySendError<T>) -> Self {
        match e {
            TrySendError::Full(_) => Error::QueueFull,
            TrySendError::Closed(_) => Error::runtime("ThreadSafeQueue is closed"),
        }
    }
}

/// Why [`ThreadSafeQueue::try_recv`] returned no item.
///
/// ```
/// use uasyncio::{ThreadSafeQueue, TryRecvError};
/// let q = ThreadSafeQueue::<u8>::new(1).unwrap();
/// assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No item is ready now.
    Empty,
    /// The queue is closed and every item sent before has been received.
    Closed,
    /// Another receive is in progress (one receiver at a time).
    Busy,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "QueueEmpty",
            TryRecvError::Closed => "queue closed",
            TryRecvError::Busy => "another receive is in progress",
        })
    }
}

impl core::error::Error for TryRecvError {}

impl From<TryRecvError> for Error {
    fn from(e: TryRecvError) -> Self {
        match e {
            TryRecvError::Empty => Error::QueueEmpty,
            TryRecvError::Closed => Error::runtime("ThreadSafeQueue is closed"),
            TryRecvError::Busy => Error::runtime("ThreadSafeQueue already has a receiver"),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::vec;
    use core::sync::atomic::AtomicUsize as StdAtomicUsize;

    #[test]
    fn fifo_wraps_and_enforces_exact_capacity() {
        // 3 → 4 slots: capacity is still 3; many laps over the slots.
        let q = ThreadSafeQueue::new(3).unwrap();
        let mut next_out = 0u32;
        let mut next_in = 0u32;
        for round in 0..50 {
            let burst = round % 4;
            for _ in 0..burst {
                match q.try_send(next_in) {
                    Ok(()) => next_in += 1,
                    Err(TrySendError::Full(v)) => {
                        assert_eq!(v, next_in);
                        assert_eq!(q.len(), 3);
                    }
                    Err(TrySendError::Closed(_)) => unreachable!(),
                }
            }
            assert!(q.len() <= 3);
            while let Ok(v) = q.try_recv() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
        assert_eq!(next_in, next_out);
        assert!(next_in > 40);
    }

    #[test]
    fn capacity_one_and_power_of_two() {
        for cap in [1, 2, 4] {
            let q = ThreadSafeQueue::new(cap).unwrap();
            for lap in 0..5 {
                for i in 0..cap {
                    q.try_send(lap * 10 + i).unwrap();
                }
                assert_eq!(q.try_send(99), Err(TrySendError::Full(99)));
                for i in 0..cap {
                    assert_eq!(q.try_recv(), Ok(lap * 10 + i));
                }
                assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
            }
        }
    }

    #[test]
    fn drop_drops_the_items_left() {
        let item = Arc::new(());
        let q = ThreadSafeQueue::new(4).unwrap();
        for _ in 0..3 {
            q.try_send(item.clone()).unwrap();
        }
        drop(q.try_recv().unwrap());
        assert_eq!(Arc::strong_count(&item), 3);
        drop(q);
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[test]
    fn close_keeps_items_then_ends() {
        let q = ThreadSafeQueue::new(4).unwrap();
        q.try_send(vec![1u8]).unwrap();
        q.close();
        q.close();
        assert!(q.is_closed());
        assert_eq!(q.try_send(vec![2]), Err(TrySendError::Closed(vec![2])));
        assert_eq!(q.try_recv(), Ok(vec![1]));
        assert_eq!(q.try_recv(), Err(TryRecvError::Closed));
    }

    #[test]
    fn a_second_receiver_is_refused() {
        let q = ThreadSafeQueue::<u8>::new(1).unwrap();
        assert!(q.claim());
        assert_eq!(q.try_recv(), Err(TryRecvError::Busy));
        q.unclaim();
        assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn recv_on_the_loop_from_threads() {
        let q = Arc::new(ThreadSafeQueue::<(usize, usize)>::new(4).unwrap());
        let per = if cfg!(miri) { 20 } else { 2000 };
        let producers: Vec<_> = (0..3)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..per {
                        let mut item = (p, i);
                        while let Err(e) = q.try_send(item) {
                            item = e.into_inner();
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let closer = {
            let q = q.clone();
            std::thread::spawn(move || {
                for p in producers {
                    p.join().unwrap();
                }
                q.close();
            })
        };
        let count = Arc::new(StdAtomicUsize::new(0));
        let c = count.clone();
        crate::run(async move {
            let mut next = [0usize; 3];
            while let Some((p, i)) = q.recv().await? {
                assert_eq!(i, next[p], "producer {p} reordered");
                next[p] += 1;
                c.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
        closer.join().unwrap();
        assert_eq!(count.load(core::sync::atomic::Ordering::Relaxed), 3 * per);
    }

    #[test]
    fn cancelled_or_dropped_recv_loses_nothing() {
        use crate::{create_task, sleep_ms};
        // An `Rc`, not a leaked `&'static`: Miri checks for leaks.
        let q = alloc::rc::Rc::new(ThreadSafeQueue::<u32>::new(2).unwrap());
        crate::run(async move {
            // A receiver that waits, then is cancelled.
            let t = create_task({
                let q = q.clone();
                async move { q.recv().await }
            });
            sleep_ms(0).await?;
            // A second receiver while the first waits is refused.
            assert!(matches!(q.recv().await, Err(Error::Runtime(_))));
            assert_eq!(q.try_recv(), Err(TryRecvError::Busy));
            t.cancel()?;
            assert_eq!(t.await, Err(Error::Cancelled));
            // The item sent after the cancel is there for the next receiver.
            q.try_send(1).unwrap();
            assert_eq!(q.recv().await?, Some(1));
            // A receive polled once (it holds the role and waits), then dropped: gives the
            // role back and takes nothing.
            {
                let mut r = Box::pin(q.recv());
                let first = core::future::poll_fn(|cx| Poll::Ready(r.as_mut().poll(cx))).await;
                assert!(first.is_pending());
                assert_eq!(q.try_recv(), Err(TryRecvError::Busy));
                drop(r);
            }
            q.try_send(2).unwrap();
            let t = create_task({
                let q = q.clone();
                async move { q.recv().await }
            });
            assert_eq!(t.await?, Some(2));
            // A waiting receiver woken by an item and cancelled before it runs: the cancel
            // is seen first, and the item stays.
            let t = create_task({
                let q = q.clone();
                async move { q.recv().await }
            });
            sleep_ms(0).await?;
            q.try_send(3).unwrap();
            t.cancel()?;
            assert_eq!(t.await, Err(Error::Cancelled));
            assert_eq!(q.try_recv(), Ok(3));
            Ok(())
        })
        .unwrap();
    }
}
