//! Two Ethernet devices wired back to back in memory, for unit tests.
//!
//! [`pair`] returns the two ends of one link. A frame transmitted on one end is queued on
//! the other and the other end's waker is woken, all on the loop thread, without copies
//! beyond the one into the queue. [`LinkFaults`] adds loss and reordering, decided by a
//! seeded xorshift generator so that a failing run can be replayed. Reordering holds a frame
//! back and delivers it right after the next frame in the same direction; a held frame with
//! no successor is delivered by the next transmission (a retransmission, in the worst case).
//!
//! For a scripted fault (replaying a trace a fuzzer found), [`LinkControl::set_hook`]
//! installs a closure that sees every frame with its [`Direction`] and returns a
//! [`Verdict`]: deliver, drop, or hold it until the next frame in that direction. The hook
//! decides before the random faults, which then apply only to frames it delivers.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::task::{Context, Poll, Waker};

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::NetDevice;

/// Ethernet MTU of the link (frame size including the 14-byte header).
pub const FRAME_MTU: usize = 1514;
/// Frames queued per direction before the link drops new ones (a NIC ring).
const QUEUE_LIMIT: usize = 4096;

/// Faults injected on both directions of a link.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkFaults {
    /// Frames dropped, per thousand.
    pub loss_per_mille: u16,
    /// Frames delivered after their successor, per thousand.
    pub reorder_per_mille: u16,
    /// Seed of the fault generator (any value; 0 is replaced by a fixed constant).
    pub seed: u64,
}

/// Counters of one link, both directions together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames handed to the link.
    pub sent: u64,
    /// Frames the link dropped on purpose (loss) or because a queue was full.
    pub dropped: u64,
    /// Frames delivered out of order.
    pub reordered: u64,
}

/// Which way a frame travels on a link: from the first device [`pair`] returns to the
/// second (`AToB`), or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the first end to the second.
    AToB,
    /// From the second end to the first.
    BToA,
}

/// What a fault hook does with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it (subject to the link's random faults).
    Deliver,
    /// Lose it.
    Drop,
    /// Deliver it right after the next frame in the same direction (a reorder). If a frame
    /// is already held in that direction, this one is delivered in order instead.
    HoldUntilNext,
    /// Deliver it right after the next frame in the opposite direction is sent (delivered
    /// or lost): the receiver gets it only after it has sent something (a late duplicate). If a frame is already
    /// held this way in that direction, this one is delivered in order instead.
    HoldUntilReply,
}

/// A per-frame fault script: sees each frame (an Ethernet frame) and decides its fate.
/// It runs on the loop thread inside the transmitting stack's poll; it must not call
/// [`LinkControl::set_hook`] (a nested call is ignored).
pub type FaultHook = Box<dyn FnMut(Direction, &[u8]) -> Verdict>;

struct Side {
    inbox: VecDeque<Vec<u8>>,
    held: Option<Vec<u8>>,
    /// A frame for this side released by the next frame from this side.
    held_for_reply: Option<Vec<u8>>,
    waker: Option<Waker>,
}

struct Link {
    sides: [Side; 2],
    faults: LinkFaults,
    rng: u64,
    stats: LinkStats,
}

impl Link {
    fn verdict(hook: &RefCell<Option<FaultHook>>, to: usize, frame: &[u8]) -> Verdict {
        let Ok(mut h) = hook.try_borrow_mut() else {
            return Verdict::Deliver;
        };
        match h.as_mut() {
            Some(f) => f(if to == 1 { Direction::AToB } else { Direction::BToA }, frame),
            None => Verdict::Deliver,
        }
    }

    fn roll(&mut self, per_mille: u16) -> bool {
        if per_mille == 0 {
            return false;
        }
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % 1000 < u64::from(per_mille)
    }

    fn deliver(&mut self, to: usize, frame: Vec<u8>, verdict: Verdict) {
        self.stats.sent += 1;
        // This frame (even if it is lost) answers what was held back for a reply.
        if let Some(h) = self.sides[1 - to].held_for_reply.take() {
            let from = &mut self.sides[1 - to];
            from.inbox.push_back(h);
            if let Some(w) = from.waker.take() {
                w.wake();
            }
        }
        if verdict == Verdict::Drop || self.roll(self.faults.loss_per_mille) {
            self.stats.dropped += 1;
            return;
        }
        let reorder = verdict == Verdict::HoldUntilNext || self.roll(self.faults.reorder_per_mille);
        let side = &mut self.sides[to];
        if side.inbox.len() >= QUEUE_LIMIT {
            self.stats.dropped += 1;
            return;
        }
        if verdict == Verdict::HoldUntilReply && side.held_for_reply.is_none() {
            side.held_for_reply = Some(frame);
            self.stats.reordered += 1;
            return;
        }
        if reorder && side.held.is_none() {
            side.held = Some(frame);
            self.stats.reordered += 1;
        } else {
            side.inbox.push_back(frame);
            if let Some(h) = side.held.take() {
                side.inbox.push_back(h);
            }
        }
        if let Some(w) = side.waker.take() {
            w.wake();
        }
    }
}

/// One end of an in-memory link; a [`NetDevice`].
pub struct PairDevice {
    link: Rc<RefCell<Link>>,
    hook: Rc<RefCell<Option<FaultHook>>>,
    me: usize,
}

/// A handle to read a link's counters and change its faults while it runs.
#[derive(Clone)]
pub struct LinkControl {
    link: Rc<RefCell<Link>>,
    hook: Rc<RefCell<Option<FaultHook>>>,
}

impl LinkControl {
    /// Counters so far.
    pub fn stats(&self) -> LinkStats {
        self.link.borrow().stats
    }
    /// Replace the faults (for example, turn loss off for a clean shutdown).
    pub fn set_faults(&self, faults: LinkFaults) {
        self.link.borrow_mut().faults = faults;
    }
    /// Install (or with `None` remove) a per-frame fault script; see the module doc.
    ///
    /// ```
    /// use uasyncio_net::device::pair::{pair, Direction, LinkFaults, Verdict};
    /// let (_a, _b, ctl) = pair(LinkFaults::default());
    /// // Lose every other frame from A to B.
    /// let mut n = 0;
    /// ctl.set_hook(Some(Box::new(move |dir, _frame: &[u8]| {
    ///     n += 1;
    ///     if dir == Direction::AToB && n % 2 == 0 { Verdict::Drop } else { Verdict::Deliver }
    /// })));
    /// ```
    pub fn set_hook(&self, hook: Option<FaultHook>) {
        if let Ok(mut h) = self.hook.try_borrow_mut() {
            *h = hook;
        }
    }
}

/// Make the two ends of a link with the given faults.
pub fn pair(faults: LinkFaults) -> (PairDevice, PairDevice, LinkControl) {
    let side = || Side {
        inbox: VecDeque::new(),
        held: None,
        held_for_reply: None,
        waker: None,
    };
    let rng = if faults.seed == 0 {
        0x9E37_79B9_7F4A_7C15
    } else {
        faults.seed
    };
    let link = Rc::new(RefCell::new(Link {
        sides: [side(), side()],
        faults,
        rng,
        stats: LinkStats::default(),
    }));
    let hook = Rc::new(RefCell::new(None));
    (
        PairDevice {
            link: link.clone(),
            hook: hook.clone(),
            me: 0,
        },
        PairDevice {
            link: link.clone(),
            hook: hook.clone(),
            me: 1,
        },
        LinkControl { link, hook },
    )
}

/// A received frame.
pub struct PairRx(Vec<u8>);
/// Permission to send one frame to the other end.
pub struct PairTx<'a>(&'a PairDevice);

impl phy::RxToken for PairRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for PairTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        let to = 1 - self.0.me;
        let verdict = Link::verdict(&self.0.hook, to, &frame);
        self.0.link.borrow_mut().deliver(to, frame, verdict);
        r
    }
}

impl phy::Device for PairDevice {
    type RxToken<'a> = PairRx;
    type TxToken<'a> = PairTx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(PairRx, PairTx<'_>)> {
        let frame = self.link.borrow_mut().sides[self.me].inbox.pop_front()?;
        Some((PairRx(frame), PairTx(self)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<PairTx<'_>> {
        Some(PairTx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME_MTU;
        caps
    }
}

impl NetDevice for PairDevice {
    fn poll_rx_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut link = self.link.borrow_mut();
        let side = &mut link.sides[self.me];
        if side.inbox.is_empty() {
            side.waker = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}
