//! `RxRing`: the byte ring between a UART receive interrupt and the loop thread.
//!
//! ## Shape
//! A classic single-producer / single-consumer ring (Lamport's queue) over `N` bytes, `N` a
//! power of two. Two free-running indices count bytes since the start: `head` (bytes the
//! producer has published) and `tail` (bytes the consumer has released). `head - tail`
//! (wrapping) is the fill level; slot `i % N` holds byte number `i`. Free-running indices
//! need no "one slot empty" rule, and because `N` divides `2^usize::BITS` the slot of an
//! index stays right when the counters wrap (after 4 GiB on a 32-bit MCU: this matters in
//! firmware that runs for months).
//!
//! ## Who touches what
//! - The **producer** (`push_from_isr`, an ISR or the tty reader thread) writes only the free
//!   slots `[head, tail + N)`, then publishes them with one `Release` store of `head`, adds
//!   dropped bytes to `overruns`, and sets the ring's [`ThreadSafeFlag`]. Atomics only: no
//!   lock, no allocation, no spinning, so it is safe in an interrupt handler of any priority.
//! - The **consumer** ([`RxReader`], claimed once, on the loop thread) reads only the filled
//!   slots `[tail, head)`, then releases them with one `Release` store of `tail`.
//!
//! ## Memory ordering
//! - Producer: `tail.load(Acquire)` synchronizes with the consumer's `tail.store(Release)`,
//!   so the consumer's reads of the slots it released happen before the producer's writes
//!   into them (no read/write race on a reused slot). The slot writes are then published by
//!   `head.store(Release)`.
//! - Consumer: `head.load(Acquire)` synchronizes with that store, so every byte below the
//!   loaded `head` is visible. Its own index it loads `Relaxed` (only it writes it).
//! - Wake-up: `ThreadSafeFlag::set()` is a `SeqCst` store after the `head` store in program
//!   order; the reader's `wait()` consumes the flag with a `SeqCst` swap that reads from it,
//!   which synchronizes with it, so after `wait()` returns the reader's next `head` load sees
//!   at least the bytes that came with that set. The flag is latched, so a push that lands
//!   between the reader's "ring empty" check and its wait is never lost (argued in
//!   `uasyncio::sync::flag`).
//!
//! ## One producer, one consumer — enforced, not assumed
//! Two producers racing on `head` would be a data race. The producer side therefore takes a
//! `busy` bit with one atomic swap; a second producer that finds it taken (a nested
//! interrupt on a second UART wired to the same ring, a C thread and an ISR) does not wait:
//! its bytes are counted as overruns and it returns 0. The consumer side is a claim
//! ([`RxRing::reader`]) that only one [`RxReader`] can hold at a time.
//!
//! ## Overruns
//! Bytes that do not fit are dropped and counted (`overruns()`, exact, wrapping at 2^32).
//! The ring itself never reports them in-band: [`SerialPort`](super::SerialPort) turns a
//! change of the count into one `SerialError::Overrun` from its next read (see there).
//!
//! ## Closing
//! A producer that will never push again (the tty reader thread after EOF or an I/O error)
//! calls [`RxRing::close`]; the reader drains what is left and then sees the close. An
//! interrupt-fed ring never closes.

#[cfg(not(loom))]
use core::cell::UnsafeCell;
#[cfg(not(loom))]
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

use uasyncio::ThreadSafeFlag;

/// No close yet (value of `closed`).
const OPEN: i32 = i32::MIN;

/// A byte slot. Under loom it is loom's cell, so the model checks every slot access for races.
#[cfg(not(loom))]
struct Slot(UnsafeCell<u8>);
#[cfg(loom)]
struct Slot(loom::cell::UnsafeCell<u8>);

impl Slot {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Slot(UnsafeCell::new(0))
    }
    #[cfg(loom)]
    fn new() -> Self {
        Slot(loom::cell::UnsafeCell::new(0))
    }

    /// # Safety
    /// Only the producer, on a free slot (not in `[tail, head)`).
    #[inline]
    unsafe fn write(&self, b: u8) {
        #[cfg(not(loom))]
        // Soundness: the caller owns this free slot: the consumer does not read it until a
        // later `head` store publishes it.
        // SAFETY: as argued in the comment just above.
        unsafe {
            *self.0.get() = b
        };
        #[cfg(loom)]
        // SAFETY: as above; loom checks it.
        self.0.with_mut(|p| unsafe { *p = b });
    }

    /// # Safety
    /// Only the consumer, on a filled slot (in `[tail, head)`).
    #[inline]
    unsafe fn read(&self) -> u8 {
        #[cfg(not(loom))]
        // Soundness: the slot is published and the producer does not write it until a later
        // `tail` store releases it.
        // SAFETY: as argued in the comment just above.
        unsafe {
            *self.0.get()
        }
        #[cfg(loom)]
        // SAFETY: as above; loom checks it.
        self.0.with(|p| unsafe { *p })
    }
}

// `UnsafeCell` is `!Sync`; the ring shares its slots between two contexts under the protocol
// of the module docs.
// SAFETY: producer and consumer touch disjoint slots, handed over with Release/Acquire
// stores/loads of `head` and `tail`; both sides are single (the `busy` bit and the reader
// claim enforce it).
unsafe impl<const N: usize> Sync for RxRing<N> {}

/// Filled by a UART receive interrupt; drained by the loop thread. Lock-free SPSC,
/// `const`-constructible so it can be a `static` an interrupt handler reaches.
///
/// `N` must be a power of two (checked at compile time).
///
/// ```
/// use uasyncio_cellular::serial::RxRing;
/// static RX: RxRing<64> = RxRing::new();
///
/// // In the UART RX interrupt:
/// let accepted = RX.push_from_isr(b"OK\r\n");
/// assert_eq!(accepted, 4);
/// // On the loop thread:
/// let mut reader = RX.reader().expect("one reader per ring");
/// let mut buf = [0u8; 8];
/// assert_eq!(reader.pop(&mut buf), 4);
/// assert_eq!(&buf[..4], b"OK\r\n");
/// ```
pub struct RxRing<const N: usize> {
    buf: [Slot; N],
    /// Bytes published by the producer (free-running).
    head: AtomicUsize,
    /// Bytes released by the consumer (free-running).
    tail: AtomicUsize,
    /// Bytes dropped because the ring was full (or a second producer collided).
    overruns: AtomicU32,
    /// A producer is inside `push_from_isr`.
    busy: AtomicBool,
    /// An `RxReader` exists.
    claimed: AtomicBool,
    /// `OPEN`, or the errno (0 for a plain end of stream) the producer closed the ring with.
    closed: AtomicI32,
    /// Set by every push; the reader waits on it.
    flag: ThreadSafeFlag,
}

impl<const N: usize> Default for RxRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Debug for RxRing<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RxRing")
            .field("capacity", &N)
            .field("len", &self.len())
            .field("overruns", &self.overruns())
            .finish()
    }
}

impl<const N: usize> RxRing<N> {
    const CHECK: () = assert!(
        N.is_power_of_two() && N <= usize::MAX / 2,
        "RxRing<N>: N must be a power of two"
    );

    /// An empty ring; `const`, so it can be a `static`.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        RxRing {
            buf: [const { Slot::new() }; N],
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            overruns: AtomicU32::new(0),
            busy: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
            closed: AtomicI32::new(OPEN),
            flag: ThreadSafeFlag::new(),
        }
    }

    /// An empty ring (loom build: not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        RxRing {
            buf: core::array::from_fn(|_| Slot::new()),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            overruns: AtomicU32::new(0),
            busy: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
            closed: AtomicI32::new(OPEN),
            flag: ThreadSafeFlag::new(),
        }
    }

    /// The ring's capacity in bytes (`N`).
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Copies as many of `bytes` as fit into the ring and wakes the reader. Returns the
    /// number accepted; the rest are dropped and added to [`overruns`](Self::overruns).
    ///
    /// Safe from an interrupt handler or any thread: atomics only, never blocks. Meant for
    /// one producer; a second producer that collides with a running push gets 0 and its
    /// bytes are counted as overruns (see the module docs).
    /// ```
    /// use uasyncio_cellular::serial::RxRing;
    /// static RX: RxRing<4> = RxRing::new();
    /// // In the UART's receive interrupt (or its DMA-complete handler):
    /// assert_eq!(RX.push_from_isr(b"OK\r\n+CREG"), 4); // the ring holds 4 bytes
    /// assert_eq!(RX.overruns(), 5); // the rest were dropped, and counted
    /// ```
    pub fn push_from_isr(&self, bytes: &[u8]) -> usize {
        if bytes.is_empty() {
            return 0;
        }
        if self.busy.swap(true, Ordering::Acquire) {
            self.count_overrun(bytes.len());
            self.flag.set();
            return 0;
        }
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let free = N - head.wrapping_sub(tail);
        let n = bytes.len().min(free);
        for (i, &b) in bytes.iter().take(n).enumerate() {
            let slot = &self.buf[head.wrapping_add(i) & (N - 1)];
            // Soundness: we are the only producer (the `busy` bit) and index `head + i` lies in
            // the free region `[head, tail + N)`, which the consumer does not read.
            // SAFETY: as argued in the comment just above.
            unsafe { slot.write(b) };
        }
        self.head.store(head.wrapping_add(n), Ordering::Release);
        if n < bytes.len() {
            self.count_overrun(bytes.len() - n);
        }
        self.busy.store(false, Ordering::Release);
        self.flag.set();
        n
    }

    fn count_overrun(&self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        // Relaxed: a counter; the reader compares snapshots and needs no ordering with data.
        self.overruns.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes dropped because the ring was full, since it was made (wraps at 2^32).
    pub fn overruns(&self) -> u32 {
        self.overruns.load(Ordering::Relaxed)
    }

    /// Bytes waiting for the reader (a snapshot).
    pub fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        self.head.load(Ordering::Acquire).wrapping_sub(tail).min(N)
    }

    /// True if no byte waits for the reader (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks the end of the byte stream: the producer will push no more. `errno` 0 means a
    /// plain end of stream (EOF), another value an I/O error. The reader gets the remaining
    /// bytes first, then the close. Wakes the reader.
    pub fn close(&self, errno: i32) {
        let v = if errno == OPEN { -1 } else { errno };
        let _ = self
            .closed
            .compare_exchange(OPEN, v, Ordering::Release, Ordering::Relaxed);
        self.flag.set();
    }

    /// `Some(errno)` once [`close`](Self::close) was called.
    pub fn closed(&self) -> Option<i32> {
        let v = self.closed.load(Ordering::Acquire);
        (v != OPEN).then_some(v)
    }

    /// The flag every push sets (the reader waits on it).
    pub fn flag(&self) -> &ThreadSafeFlag {
        &self.flag
    }

    /// Claims the consumer side; `None` if an [`RxReader`] for this ring exists already.
    /// ```
    /// use uasyncio_cellular::serial::RxRing;
    /// static RX: RxRing<64> = RxRing::new();
    /// let reader = RX.reader().expect("no reader yet");
    /// assert!(RX.reader().is_none()); // one reader at a time
    /// drop(reader);
    /// assert!(RX.reader().is_some());
    /// ```
    pub fn reader(&self) -> Option<RxReader<'_, N>> {
        if self.claimed.swap(true, Ordering::Acquire) {
            None
        } else {
            Some(RxReader { ring: self })
        }
    }
}

/// The consumer side of an [`RxRing`] (one at a time; released when dropped).
pub struct RxReader<'a, const N: usize> {
    ring: &'a RxRing<N>,
}

impl<const N: usize> core::fmt::Debug for RxReader<'_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RxReader").field("ring", self.ring).finish()
    }
}

impl<'a, const N: usize> RxReader<'a, N> {
    /// The ring this reader drains.
    pub fn ring(&self) -> &'a RxRing<N> {
        self.ring
    }

    /// Copies up to `buf.len()` waiting bytes into `buf` and frees their slots; returns the
    /// count (0 when the ring is empty). Never blocks.
    pub fn pop(&mut self, buf: &mut [u8]) -> usize {
        let tail = self.ring.tail.load(Ordering::Relaxed);
        let head = self.ring.head.load(Ordering::Acquire);
        let n = head.wrapping_sub(tail).min(buf.len());
        for (i, out) in buf.iter_mut().take(n).enumerate() {
            let slot = &self.ring.buf[tail.wrapping_add(i) & (N - 1)];
            // Soundness: we are the only reader (the claim) and `tail + i` lies in the filled
            // region `[tail, head)` published by the Acquire load of `head`.
            // SAFETY: as argued in the comment just above.
            *out = unsafe { slot.read() };
        }
        self.ring.tail.store(tail.wrapping_add(n), Ordering::Release);
        n
    }

    /// The waiting bytes that are contiguous in memory (up to the end of the array), without
    /// consuming them; empty when the ring is empty. Follow with [`consume`](Self::consume).
    #[cfg(not(loom))]
    pub fn peek(&mut self) -> &[u8] {
        let tail = self.ring.tail.load(Ordering::Relaxed);
        let head = self.ring.head.load(Ordering::Acquire);
        let start = tail & (N - 1);
        let n = head.wrapping_sub(tail).min(N - start);
        let base = self.ring.buf.as_ptr().cast::<u8>();
        // Soundness: `Slot` is `UnsafeCell<u8>` (repr(transparent) over u8 per UnsafeCell's
        // docs, and `Slot` is a one-field tuple struct of it, same layout), so the array is
        // `N` consecutive bytes. `[start, start + n)` lies inside the array and inside the
        // filled region, which the producer does not write until `consume` stores a later
        // `tail`; `consume` needs `&mut self`, which this borrow excludes.
        // SAFETY: as argued in the comment just above.
        unsafe { core::slice::from_raw_parts(base.add(start), n) }
    }

    /// Frees the first `n` waiting bytes (at most the number waiting).
    pub fn consume(&mut self, n: usize) {
        let tail = self.ring.tail.load(Ordering::Relaxed);
        let head = self.ring.head.load(Ordering::Acquire);
        let n = n.min(head.wrapping_sub(tail));
        self.ring.tail.store(tail.wrapping_add(n), Ordering::Release);
    }
}

impl<const N: usize> Drop for RxReader<'_, N> {
    fn drop(&mut self) {
        self.ring.claimed.store(false, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn fills_drains_and_counts_overruns() {
        let ring = RxRing::<8>::new();
        let mut r = ring.reader().unwrap();
        assert!(ring.reader().is_none(), "second reader refused");
        assert_eq!(ring.push_from_isr(b"0123456789"), 8);
        assert_eq!(ring.overruns(), 2);
        let mut buf = [0u8; 3];
        assert_eq!(r.pop(&mut buf), 3);
        assert_eq!(&buf, b"012");
        assert_eq!(ring.push_from_isr(b"abcd"), 3);
        assert_eq!(ring.overruns(), 3);
        let mut all = Vec::new();
        loop {
            let s = r.peek();
            if s.is_empty() {
                break;
            }
            let n = s.len();
            all.extend_from_slice(s);
            r.consume(n);
        }
        assert_eq!(all, b"34567abc");
        drop(r);
        assert!(ring.reader().is_some(), "claim released on drop");
    }

    #[test]
    fn indices_wrap_around_usize() {
        let ring = RxRing::<4>::new();
        ring.head.store(usize::MAX - 1, Ordering::Relaxed);
        ring.tail.store(usize::MAX - 1, Ordering::Relaxed);
        let mut r = ring.reader().unwrap();
        for round in 0..5u8 {
            assert_eq!(ring.push_from_isr(&[round, round + 1, round + 2]), 3);
            let mut buf = [0u8; 4];
            assert_eq!(r.pop(&mut buf), 3);
            assert_eq!(&buf[..3], &[round, round + 1, round + 2]);
        }
    }

    #[test]
    fn close_is_seen_after_the_data() {
        let ring = RxRing::<8>::new();
        ring.push_from_isr(b"x");
        ring.close(5);
        assert_eq!(ring.closed(), Some(5));
        ring.close(0);
        assert_eq!(ring.closed(), Some(5), "first close wins");
        assert_eq!(ring.len(), 1);
    }

    /// A producer thread pushes a known sequence while a consumer task on a uasyncio loop
    /// drains it (woken by the ring's flag). With a fast consumer nothing may be lost or
    /// reordered, and whatever was lost must equal the overrun count exactly.
    fn stream(total: usize, chunk: usize, paced: bool) -> (usize, u32) {
        let ring: Arc<RxRing<256>> = Arc::new(RxRing::new());
        let producer = {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let mut next = 0usize;
                let mut accepted = 0usize;
                let mut block = [0u8; 64];
                while next < total {
                    let n = chunk.min(total - next);
                    // Paced: push only what fits (the consumer keeps up), so nothing may
                    // be lost. Unpaced: the producer runs ahead and overruns.
                    while paced && ring.capacity() - ring.len() < n {
                        std::thread::yield_now();
                    }
                    for (i, b) in block[..n].iter_mut().enumerate() {
                        *b = ((next + i) % 251) as u8;
                    }
                    accepted += ring.push_from_isr(&block[..n]);
                    next += n;
                }
                ring.close(0);
                accepted
            })
        };
        let consumer_ring = ring.clone();
        let (received, in_order, stalls) = uasyncio::run(async move {
            let mut r = consumer_ring.reader().unwrap();
            let mut received = 0usize;
            let mut stalls = 0u32;
            let mut in_order = true;
            let mut expect: Option<u8> = None;
            let mut buf = [0u8; 97];
            loop {
                let n = r.pop(&mut buf);
                if n == 0 {
                    if consumer_ring.closed().is_some() && consumer_ring.is_empty() {
                        break;
                    }
                    // A 2 s safety net turns a lost wake-up into a clear failure, not a hang.
                    let wait = consumer_ring.flag().wait();
                    if let crate::select::Either::Right(_) =
                        crate::select::select(wait, uasyncio::sleep_ms(2_000)).await
                    {
                        if !consumer_ring.is_empty() {
                            std::eprintln!(
                                "LOST WAKE: {} bytes waiting, flag set: {}",
                                consumer_ring.len(),
                                consumer_ring.flag().is_set()
                            );
                            stalls += 1;
                        }
                    }
                    continue;
                }
                for &b in &buf[..n] {
                    if let Some(e) = expect {
                        // Without overruns every byte is the next one; with overruns bytes
                        // may be skipped but the values must still move forward.
                        if b != e {
                            in_order = false;
                        }
                    }
                    expect = Some(((b as usize + 1) % 251) as u8);
                }
                received += n;
            }
            Ok((received, in_order, stalls))
        })
        .unwrap();
        assert_eq!(
            stalls, 0,
            "the reader slept while bytes waited and the flag was set (a lost wake-up)"
        );
        let accepted = producer.join().unwrap();
        assert_eq!(received, accepted, "every accepted byte reached the reader");
        let lost = (total - received) as u32;
        assert_eq!(ring.overruns(), lost, "overrun count is exact");
        if lost == 0 {
            assert!(in_order, "no overrun, so no byte may be missing or reordered");
        }
        (received, ring.overruns())
    }

    #[test]
    fn threaded_stream_with_room_is_lossless_and_ordered() {
        let total = if cfg!(miri) { 2_000 } else { 10_000_000 };
        let (received, overruns) = stream(total, 13, true);
        std::println!("paced stream: {received} received, {overruns} overruns of {total}");
        assert_eq!((received, overruns), (total, 0));
    }

    #[test]
    fn threaded_stream_overrun_count_is_exact() {
        let total = if cfg!(miri) { 2_000 } else { 10_000_000 };
        let (received, overruns) = stream(total, 13, false);
        std::println!("unpaced stream: {received} received, {overruns} overruns of {total}");
        assert_eq!(received + overruns as usize, total);
    }

    /// A reader that never drains: the count of dropped bytes is exact.
    #[test]
    fn overrun_count_exact_when_full() {
        let ring: Arc<RxRing<64>> = Arc::new(RxRing::new());
        let total = if cfg!(miri) { 500 } else { 100_000 };
        let r2 = ring.clone();
        std::thread::spawn(move || {
            for i in 0..total {
                r2.push_from_isr(&[i as u8]);
            }
        })
        .join()
        .unwrap();
        assert_eq!(ring.len(), 64);
        assert_eq!(ring.overruns() as usize, total - 64);
        let mut r = ring.reader().unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(r.pop(&mut buf), 64);
        assert!(
            buf.iter().enumerate().all(|(i, &b)| b == i as u8),
            "the first 64 bytes kept"
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Loom models of the ring. Run with:
    //! `RUSTFLAGS="--cfg loom" cargo test -p uasyncio-cellular --lib --release loom_`
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    /// A producer pushes 3 bytes in two pushes into a 2-byte ring while the consumer pops:
    /// the consumer gets a prefix-ordered subsequence, and received + overruns = 3.
    #[test]
    fn loom_ring_spsc() {
        loom::model(|| {
            let ring = Arc::new(RxRing::<2>::new());
            let p = {
                let ring = ring.clone();
                thread::spawn(move || {
                    let a = ring.push_from_isr(&[1, 2]);
                    let b = ring.push_from_isr(&[3]);
                    a + b
                })
            };
            let mut r = ring.reader().unwrap();
            let mut got = std::vec::Vec::new();
            let mut buf = [0u8; 2];
            for _ in 0..2 {
                let n = r.pop(&mut buf);
                got.extend_from_slice(&buf[..n]);
            }
            let accepted = p.join().unwrap();
            loop {
                let n = r.pop(&mut buf);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got.len(), accepted);
            assert_eq!(accepted + ring.overruns() as usize, 3);
            assert!(got.windows(2).all(|w| w[0] < w[1]), "order kept: {got:?}");
            assert!(got.first().is_none_or(|&b| b == 1), "first byte never lost: {got:?}");
        });
    }

    /// Two producers collide: the `busy` bit keeps them from racing on a slot (loom would
    /// report the race on the cell), and no byte goes unaccounted.
    #[test]
    fn loom_ring_two_producers() {
        loom::model(|| {
            let ring = Arc::new(RxRing::<4>::new());
            let ps: std::vec::Vec<_> = (0..2u8)
                .map(|k| {
                    let ring = ring.clone();
                    thread::spawn(move || ring.push_from_isr(&[k]))
                })
                .collect();
            let accepted: usize = ps.into_iter().map(|p| p.join().unwrap()).sum();
            let mut r = ring.reader().unwrap();
            let mut buf = [0u8; 4];
            assert_eq!(r.pop(&mut buf), accepted);
            assert_eq!(accepted + ring.overruns() as usize, 2);
        });
    }
}
