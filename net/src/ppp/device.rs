//! The smoltcp device between a [`Stack`](crate::Stack) and the PPP link task.
//!
//! Two small bounded queues of IPv4 packets, shared (`Rc<RefCell>`) by the device, which
//! the stack's driver owns, and the link task ([`super::PppLink::run`]):
//! - `rx`: packets PPP received, for the stack. When it is full the link task stops reading
//!   the serial line until the stack took one (backpressure instead of loss);
//! - `tx`: packets the stack sends. When it holds [`TX_QUEUE`] packets, `transmit` refuses
//!   a token and remembers it did; the link task wakes the driver once it made room. Tokens
//!   handed out with a received packet (smoltcp answers inside ingress) may go over the
//!   soft limit, up to [`TX_HARD_LIMIT`], past which packets are dropped and counted.
//!
//! While the link is down (`up == false`) the device swallows whatever the stack sends, so
//! smoltcp never waits on a dead link. Buffers are recycled through a short free list.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::task::{Context, Poll, Waker};

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::device::NetDevice;

/// The IP MTU of the link (PPP's default MRU; ppproto negotiates no other).
pub(crate) const MTU: usize = 1500;
/// Received packets queued for the stack.
pub(crate) const RX_QUEUE: usize = 8;
/// Packets the stack may queue for sending before `transmit` says "not now".
pub(crate) const TX_QUEUE: usize = 8;
/// Packets queued for sending past which answers made during ingress are dropped.
const TX_HARD_LIMIT: usize = 2 * TX_QUEUE;
/// Spare packet buffers kept for reuse.
const FREE_LIST: usize = 4;

/// State shared by the device and the link task.
#[derive(Default)]
pub(crate) struct Queues {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: VecDeque<Vec<u8>>,
    free: Vec<Vec<u8>>,
    /// The stack's driver, waiting for `rx` (or for room in `tx`).
    driver: Option<Waker>,
    /// The link task, waiting for `tx` (or for room in `rx`).
    pub(crate) link: Option<Waker>,
    /// IPCP is open: packets from the stack go out.
    pub(crate) up: bool,
    /// `transmit` refused a token since the link task last made room.
    tx_blocked: bool,
    /// Packets the stack sent that were dropped (link down or queue over the hard limit).
    pub(crate) tx_dropped: u64,
}

impl Queues {
    /// A buffer of `len` bytes, reused if one is spare.
    pub(crate) fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.free.pop().unwrap_or_default();
        b.clear();
        b.resize(len, 0);
        b
    }

    /// Give a buffer back for reuse.
    pub(crate) fn recycle(&mut self, b: Vec<u8>) {
        if self.free.len() < FREE_LIST {
            self.free.push(b);
        }
    }

    /// Queue a received packet for the stack; gives it back if `rx` is full.
    pub(crate) fn deliver(&mut self, p: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.rx.len() >= RX_QUEUE {
            return Err(p);
        }
        self.rx.push_back(p);
        if let Some(w) = self.driver.take() {
            w.wake();
        }
        Ok(())
    }

    /// The link task took packets from `tx`: let a driver that was refused try again.
    pub(crate) fn tx_drained(&mut self) {
        // `tx_blocked` stays set: `poll_rx_ready` clears it when it tells the driver to run.
        if self.tx_blocked && self.tx.len() < TX_QUEUE {
            if let Some(w) = self.driver.take() {
                w.wake();
            }
        }
    }

    /// The link went down (or comes up afresh): drop everything queued.
    pub(crate) fn reset(&mut self, up: bool) {
        self.up = up;
        while let Some(b) = self.rx.pop_front() {
            self.recycle(b);
        }
        while let Some(b) = self.tx.pop_front() {
            self.recycle(b);
        }
        self.tx_blocked = false;
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }
}

/// The stack's side: a [`NetDevice`] with `Medium::Ip`.
pub(crate) struct PppDevice {
    pub(crate) q: Rc<RefCell<Queues>>,
}

/// A received IPv4 packet.
pub(crate) struct PppRx {
    packet: Vec<u8>,
    q: Rc<RefCell<Queues>>,
}

/// Permission to send one IPv4 packet.
pub(crate) struct PppTx {
    q: Rc<RefCell<Queues>>,
}

impl phy::RxToken for PppRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.packet);
        self.q.borrow_mut().recycle(self.packet);
        r
    }
}

impl phy::TxToken for PppTx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = self.q.borrow_mut().buffer(len);
        let r = f(&mut packet);
        let mut q = self.q.borrow_mut();
        if q.up && q.tx.len() < TX_HARD_LIMIT {
            q.tx.push_back(packet);
            if let Some(w) = q.link.take() {
                w.wake();
            }
        } else {
            q.tx_dropped += 1;
            q.recycle(packet);
        }
        r
    }
}

impl phy::Device for PppDevice {
    type RxToken<'a> = PppRx;
    type TxToken<'a> = PppTx;

    fn receive(&mut self, _t: Instant) -> Option<(PppRx, PppTx)> {
        let mut q = self.q.borrow_mut();
        let was_full = q.rx.len() >= RX_QUEUE;
        let packet = q.rx.pop_front()?;
        if was_full {
            // The link task may be holding a packet until there is room.
            if let Some(w) = q.link.take() {
                w.wake();
            }
        }
        drop(q);
        Some((
            PppRx {
                packet,
                q: self.q.clone(),
            },
            PppTx { q: self.q.clone() },
        ))
    }

    fn transmit(&mut self, _t: Instant) -> Option<PppTx> {
        let mut q = self.q.borrow_mut();
        if q.up && q.tx.len() >= TX_QUEUE {
            q.tx_blocked = true;
            return None;
        }
        Some(PppTx { q: self.q.clone() })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps
    }
}

impl NetDevice for PppDevice {
    fn poll_rx_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.q.borrow_mut();
        if !q.rx.is_empty() {
            return Poll::Ready(());
        }
        if q.tx_blocked && q.tx.len() < TX_QUEUE {
            q.tx_blocked = false;
            return Poll::Ready(());
        }
        q.driver = Some(cx.waker().clone());
        Poll::Pending
    }
}
