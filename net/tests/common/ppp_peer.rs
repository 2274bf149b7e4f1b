//! A small PPP peer for the tests: the network side of a cellular data call, in memory.
//!
//! [`pipe`] makes a duplex byte line; the client end implements `embedded-io-async`'s
//! `Read` + `Write` (reads are cancel-safe: bytes move only when a read completes). The
//! [`Peer`] owns the other end: HDLC with FCS-16, LCP (acks every request, answers echoes
//! and Terminate-Requests), IPCP (NAKs address 0.0.0.0 with 10.64.0.2 and DNS 0.0.0.0 with
//! 10.64.0.1, rejects everything else), and IPv4 to and from a second smoltcp `Stack`
//! (`Medium::Ip`, 10.64.0.1). It never retransmits: the client's restart timer must cope.
//! Knobs: drop the first N LCP Configure-Requests, ask for PAP, go mute, inject raw bytes (text,
//! garbage, a Terminate-Request) between frames, hang up (EOF).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use uasyncio_net::device::NetDevice;
use uasyncio_net::{Stack, StackConfig};

pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 1);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 2);
pub const DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 1);

const LCP: u16 = 0xC021;
const IPCP: u16 = 0x8021;
const IPV4: u16 = 0x0021;
const PAP: u16 = 0xC023;

/// Everything the two ends share: the byte line both ways and the peer stack's packets.
#[derive(Default)]
pub struct Line {
    to_client: VecDeque<u8>,
    to_peer: VecDeque<u8>,
    ip_rx: VecDeque<Vec<u8>>, // for the peer stack
    ip_tx: VecDeque<Vec<u8>>, // from the peer stack
    client: Option<Waker>,
    peer: Option<Waker>,
    driver: Option<Waker>,
    closed: bool,
}

type Shared = Rc<RefCell<Line>>;

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// The client's end of the line.
pub struct ClientEnd(Shared);

/// A duplex in-memory byte line: (client end, peer's handle).
pub fn pipe() -> (ClientEnd, Shared) {
    let l = Shared::default();
    (ClientEnd(l.clone()), l)
}

impl embedded_io_async::ErrorType for ClientEnd {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io_async::Read for ClientEnd {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        poll_fn(|cx| {
            let mut l = self.0.borrow_mut();
            let n = buf.len().min(l.to_client.len());
            if n > 0 || l.closed {
                buf.iter_mut().zip(l.to_client.drain(..n)).for_each(|(d, s)| *d = s);
                return Poll::Ready(Ok(n));
            }
            l.client = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl embedded_io_async::Write for ClientEnd {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let mut l = self.0.borrow_mut();
        if l.closed {
            return Err(embedded_io::ErrorKind::BrokenPipe);
        }
        l.to_peer.extend(buf);
        wake(&mut l.peer);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// RFC 1662 FCS-16 (bitwise; the tests do not need speed).
fn fcs16(data: &[u8]) -> u16 {
    let mut fcs = 0xFFFFu16;
    for &b in data {
        fcs ^= u16::from(b);
        for _ in 0..8 {
            fcs = if fcs & 1 != 0 { (fcs >> 1) ^ 0x8408 } else { fcs >> 1 };
        }
    }
    fcs
}

/// HDLC-frame `proto` + `payload`, escaping every control character.
pub fn hdlc(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [&[0xFF, 0x03][..], &proto.to_be_bytes(), payload].concat();
    let fcs = fcs16(&f) ^ 0xFFFF;
    f.extend_from_slice(&fcs.to_le_bytes());
    let mut out = vec![0x7E];
    for b in f {
        match b {
            0..0x20 | 0x7D | 0x7E => out.extend([0x7D, b ^ 0x20]),
            _ => out.push(b),
        }
    }
    out.push(0x7E);
    out
}

/// The peer stack's device: IPv4 packets to and from the peer task.
struct PeerDevice(Shared);
struct Rx(Vec<u8>);
struct Tx(Shared);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut p = vec![0; len];
        let r = f(&mut p);
        let mut l = self.0.borrow_mut();
        l.ip_tx.push_back(p);
        wake(&mut l.peer);
        r
    }
}

impl phy::Device for PeerDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;
    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(Rx, Tx)> {
        let p = self.0.borrow_mut().ip_rx.pop_front()?;
        Some((Rx(p), Tx(self.0.clone())))
    }
    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Tx> {
        Some(Tx(self.0.clone()))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = 1500;
        c
    }
}

impl NetDevice for PeerDevice {
    fn poll_rx_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut l = self.0.borrow_mut();
        if l.ip_rx.is_empty() {
            l.driver = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(())
    }
}

/// What the peer saw and how it behaves.
#[derive(Default)]
pub struct PeerState {
    pub drop_lcp_confreq: u32, // drop this many more LCP Configure-Requests
    pub mute: bool,            // answer nothing, send no IPv4
    pub big_windows: bool,     // 64 KiB TCP buffers on the peer stack (default 8 KiB)
    pub pap: Option<Vec<u8>>,  // ask for PAP; then the Authenticate-Request's data
    pub lcp_confreqs: u32,     // LCP Configure-Requests received (dropped ones included)
    pub echo_requests: u32,
    pub terminate_acks: u32,
    pub bad_frames: u32, // bad FCS or header
    /// The address IPCP gives the client (`None`: `CLIENT_IP`).
    pub assign: Option<Ipv4Addr>,
    lcp_acked_ours: bool,
    lcp_acked_theirs: bool,
    ipcp_sent: bool,
    ipcp_acked_ours: bool,
    ipcp_acked_theirs: bool,
    frame: Vec<u8>,
    esc: bool,
}

impl PeerState {
    pub fn ipcp_open(&self) -> bool {
        self.ipcp_acked_ours && self.ipcp_acked_theirs
    }
}

/// The PPP peer and the stack behind it.
pub struct Peer {
    line: Shared,
    pub state: Rc<RefCell<PeerState>>,
    pub stack: Stack,
}

impl Peer {
    /// A peer on `line` with its own stack (10.64.0.1/24); starts its task.
    pub fn start(line: Shared, state: PeerState) -> Peer {
        // The MAC is ignored on an IP link.
        let mut cfg = StackConfig::with_static([2, 0, 0, 0, 0, 2], PEER_IP, 24);
        if state.big_windows {
            cfg.tcp_rx_buffer = 64 * 1024;
            cfg.tcp_tx_buffer = 64 * 1024;
        }
        cfg.random_seed = 0xFEED_0001;
        let stack = Stack::new(PeerDevice(line.clone()), cfg).unwrap();
        let peer = Peer {
            line,
            state: Rc::new(RefCell::new(state)),
            stack,
        };
        // The peer's own LCP Configure-Request (ACCM 0, PAP if asked), sent once.
        let req = [1, 1, 0, 14, 2, 6, 0, 0, 0, 0, 3, 4, 0xC0, 0x23];
        let pap = peer.state.borrow().pap.is_some();
        peer.send(LCP, if pap { &req } else { &[1, 1, 0, 10, 2, 6, 0, 0, 0, 0] });
        let (line, st) = (peer.line.clone(), peer.state.clone());
        drop(uasyncio::create_task(async move {
            run(line, st).await;
            Ok(())
        }));
        peer
    }

    fn send(&self, proto: u16, payload: &[u8]) {
        (!self.state.borrow().mute).then(|| send_on(&self.line, proto, payload));
    }

    /// Raw bytes on the line, between frames (the peer writes whole frames at once).
    pub fn inject(&self, bytes: &[u8]) {
        let mut l = self.line.borrow_mut();
        l.to_client.extend(bytes);
        wake(&mut l.client);
    }

    /// End of file on the client's side of the line.
    pub fn hang_up(&self) {
        let mut l = self.line.borrow_mut();
        l.closed = true;
        wake(&mut l.client);
    }
}

fn send_on(line: &Shared, proto: u16, payload: &[u8]) {
    let mut l = line.borrow_mut();
    if !l.closed {
        l.to_client.extend(hdlc(proto, payload));
        wake(&mut l.client);
    }
}

/// The peer task: frames from the client, packets from the peer stack.
async fn run(line: Shared, st: Rc<RefCell<PeerState>>) {
    loop {
        let next: Option<(Vec<u8>, Vec<Vec<u8>>)> = poll_fn(|cx| {
            let mut l = line.borrow_mut();
            if l.to_peer.is_empty() && l.ip_tx.is_empty() {
                l.peer = Some(cx.waker().clone());
                return if l.closed { Poll::Ready(None) } else { Poll::Pending };
            }
            let l = &mut *l;
            Poll::Ready(Some((l.to_peer.drain(..).collect(), l.ip_tx.drain(..).collect())))
        })
        .await;
        let Some((bytes, packets)) = next else { return };
        for b in bytes {
            let mut s = st.borrow_mut();
            if b == 0x7E {
                let f = std::mem::take(&mut s.frame);
                drop(s);
                if !f.is_empty() {
                    handle(&line, &st, &f);
                }
            } else if b == 0x7D {
                s.esc = true;
            } else {
                let b = if std::mem::take(&mut s.esc) { b ^ 0x20 } else { b };
                s.frame.push(b);
            }
        }
        let up = st.borrow().ipcp_open() && !st.borrow().mute;
        for p in packets.iter().filter(|_| up) {
            send_on(&line, IPV4, p);
        }
    }
}

/// One frame from the client (address to FCS, unescaped).
fn handle(line: &Shared, st: &Rc<RefCell<PeerState>>, f: &[u8]) {
    let mut s = st.borrow_mut();
    if f.len() < 6 || fcs16(f) != 0xF0B8 || f[0] != 0xFF || f[1] != 0x03 {
        s.bad_frames += 1;
        return;
    }
    let proto = u16::from_be_bytes([f[2], f[3]]);
    let p = &f[4..f.len() - 2];
    if proto == LCP && p.first() == Some(&1) {
        s.lcp_confreqs += 1;
        if s.drop_lcp_confreq > 0 {
            s.drop_lcp_confreq -= 1;
            return;
        }
    }
    if s.mute {
        return;
    }
    let reply = |proto: u16, code: u8, id: u8, data: &[u8]| {
        let mut pkt = vec![code, id];
        pkt.extend_from_slice(&((data.len() + 4) as u16).to_be_bytes());
        pkt.extend_from_slice(data);
        send_on(line, proto, &pkt);
    };
    match proto {
        IPV4 => {
            let mut l = line.borrow_mut();
            l.ip_rx.push_back(p.to_vec());
            wake(&mut l.driver);
        }
        LCP if p.len() >= 4 => {
            let (code, id, body) = (p[0], p[1], &p[4..]);
            match code {
                1 => {
                    reply(LCP, 2, id, body);
                    s.lcp_acked_theirs = true;
                }
                2 => s.lcp_acked_ours = true,
                5 => reply(LCP, 6, id, &[]),
                6 => s.terminate_acks += 1,
                9 => {
                    s.echo_requests += 1;
                    reply(LCP, 10, id, body);
                }
                _ => {}
            }
            if s.lcp_acked_ours && s.lcp_acked_theirs && !s.ipcp_sent && s.pap.is_none() {
                s.ipcp_sent = true;
                let [a, b, c, d] = PEER_IP.octets();
                reply(IPCP, 1, 1, &[3, 6, a, b, c, d]);
            }
        }
        PAP if p.len() >= 4 && p[0] == 1 => {
            s.pap = Some(p[4..].to_vec());
            reply(PAP, 2, p[1], &[0]); // Authenticate-Ack, no message
            let [a, b, c, d] = PEER_IP.octets();
            reply(IPCP, 1, 1, &[3, 6, a, b, c, d]);
        }
        IPCP if p.len() >= 4 => {
            let (code, id, mut body) = (p[0], p[1], &p[4..]);
            match code {
                1 => {
                    let (mut ack, mut nak, mut rej) = (Vec::new(), Vec::new(), Vec::new());
                    while body.len() >= 2 && body[1] >= 2 && usize::from(body[1]) <= body.len() {
                        let opt = &body[..usize::from(body[1])];
                        body = &body[opt.len()..];
                        let want = match opt[0] {
                            3 => s.assign.unwrap_or(CLIENT_IP),
                            129 => DNS_IP,
                            _ => {
                                rej.extend_from_slice(opt);
                                continue;
                            }
                        };
                        if opt[2..] == want.octets() {
                            ack.extend_from_slice(opt);
                        } else {
                            nak.extend_from_slice(&[opt[0], 6]);
                            nak.extend_from_slice(&want.octets());
                        }
                    }
                    if !rej.is_empty() {
                        reply(IPCP, 4, id, &rej);
                    } else if !nak.is_empty() {
                        reply(IPCP, 3, id, &nak);
                    } else {
                        reply(IPCP, 2, id, &ack);
                        s.ipcp_acked_theirs = true;
                    }
                }
                2 => s.ipcp_acked_ours = true,
                5 => reply(IPCP, 6, id, &[]),
                _ => {}
            }
        }
        _ => {}
    }
}
