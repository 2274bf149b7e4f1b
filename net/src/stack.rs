//! The network stack object: one smoltcp `Interface`, its sockets, and the driver task.
//!
//! A [`Stack`] is a cheap handle (`Rc`) to a `Core` that owns the smoltcp interface and
//! socket set behind a `RefCell`. Every borrow of that cell is short and never spans an
//! `.await`: socket futures borrow it inside `poll`, the driver borrows it for one pass.
//!
//! # The driver task
//! [`Stack::new`] starts one task per stack that owns the device and runs
//! "poll smoltcp, then sleep until something happens" forever. It wakes on exactly three
//! things, never on a tick of its own:
//! 1. the device signals that frames arrived ([`NetDevice::poll_rx_ready`]);
//! 2. a socket operation changed something smoltcp must act on (`Core::kick`: data
//!    queued for sending, receive window opened, socket opened or closed);
//! 3. smoltcp's own deadline (`Interface::poll_at`: retransmission, delayed ACK, ARP
//!    retry, DHCP renewal), or the earliest linger deadline of a closing socket.
//!
//! Ingress is processed one frame at a time (`poll_ingress_single`), at most
//! [`INGRESS_BATCH`] frames per pass, then the driver yields; after every frame, servers
//! re-arm their listening sockets, so a burst of SYNs finds a listener as long as the
//! server's backlog has room. Socket futures register smoltcp's per-socket wakers, so a
//! reader sleeps until its socket has data and is woken by the pass that delivered it.
//!
//! # Socket lifecycle
//! TCP sockets are created on demand (`open_connection`, listeners) up to
//! [`StackConfig::max_sockets`]; past that an operation fails with `OSError(ENOMEM)` and the
//! stack logs a warning naming the limit and how many slots are listening or closing. A
//! connect that never completed (timed out, cancelled, dropped) frees its socket at once. A
//! stream whose last handle is dropped closes gracefully: its socket lingers (FIN, wait for
//! the ACK) in a list the driver reaps, and is aborted with RST after
//! [`StackConfig::linger_ms`]. So no socket outlives its use by more than the linger time.
//!
//! # Ethernet or an IP link, and addresses that come and go
//! The medium is the device's: an Ethernet device (TAP, the in-memory pair) or an IP link
//! with no link-layer header (PPP, feature `ppp`). The address is static, from DHCP, or
//! supplied by the link at run time ([`Ipv4Config::Unconfigured`]): PPP's IPCP sets a /32
//! with a default route and DNS servers when the link opens, and takes them away again when
//! it ends. Taking the address away also aborts every TCP connection of the stack, because
//! no segment of theirs can arrive any more: their owners see an error at the next read or
//! write (instead of waiting for a retransmission timeout), and new connections fail at
//! once with `OSError(ENETUNREACH)`. Listening servers stay and serve the next link.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::net::Ipv4Addr;
use core::task::{Context, Poll, Waker};

use smoltcp::iface::{Config as IfaceConfig, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::Medium;
use smoltcp::socket::{dhcpv4, dns, tcp};
use smoltcp::time::Instant as SInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpListenEndpoint, Ipv4Cidr};

use crate::device::NetDevice;
use crate::rt::{self, errno, Error, Result};
use crate::select::{select, yield_now};

/// Frames processed per driver pass before it lets other tasks run.
pub const INGRESS_BATCH: usize = 64;
/// DNS queries that can be in flight at once per stack.
pub(crate) const DNS_QUERY_SLOTS: usize = 4;
/// How long an aborted socket may wait for its RST to go out before it is removed anyway.
const RST_GRACE_US: u64 = 1_000_000;
/// First port of the ephemeral range (IANA).
pub(crate) const EPHEMERAL_FIRST: u16 = 49152;

/// How the interface gets its IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipv4Config {
    /// A fixed address.
    Static {
        /// The interface address.
        address: Ipv4Addr,
        /// Prefix length of the local network (24 for a /24).
        prefix_len: u8,
        /// Default gateway, if any.
        gateway: Option<Ipv4Addr>,
        /// DNS servers (smoltcp uses the first one it can fit; one is the usual case).
        dns_servers: Vec<Ipv4Addr>,
    },
    /// Ask a DHCP server; [`Stack::wait_config_up`] waits for the lease.
    Dhcp,
    /// No address until the link itself supplies one at run time (PPP's IPCP, see
    /// `ppp::PppLink`); until then, and after the link goes down, connects fail at once
    /// with `OSError(ENETUNREACH)`. [`Stack::wait_config_up`] waits for the link.
    Unconfigured,
}

/// Everything a [`Stack`] is built from.
///
/// The medium (Ethernet or a bare IP link such as PPP) is the device's: [`Stack::new`] reads
/// it from the device's capabilities, so one configuration type serves both.
#[derive(Clone)]
pub struct StackConfig {
    /// Ethernet address of the interface (must be unicast). Unused on an IP link.
    pub mac: [u8; 6],
    /// Static address or DHCP.
    pub ipv4: Ipv4Config,
    /// TCP sockets the stack may hold at once: connections, listeners and closing sockets.
    pub max_sockets: usize,
    /// Receive buffer per TCP socket, bytes (the advertised window); at most 1 GiB.
    pub tcp_rx_buffer: usize,
    /// Transmit buffer per TCP socket, bytes.
    pub tcp_tx_buffer: usize,
    /// Seed for smoltcp's sequence numbers and our ephemeral ports; make it differ per boot
    /// (from a hardware RNG). Left at the constructors' fixed default, every boot picks the
    /// same initial sequence numbers and local ports, which a peer can predict and which
    /// collide with what it remembers of the last boot's connections: [`Stack::new`] logs a
    /// warning (`log::warn!`) then.
    pub random_seed: u64,
    /// How long `open_connection` waits for the handshake (ARP included), ms.
    pub connect_timeout_ms: u32,
    /// How long a name lookup may take, ms.
    pub dns_timeout_ms: u32,
    /// How long a closing socket may wait for the peer's ACK of our FIN before it is
    /// aborted with RST, ms (also bounds `Stream::wait_closed`).
    pub linger_ms: u32,
    /// Nagle's algorithm on new TCP sockets. Off by default: streams already batch writes
    /// until `drain()`, and Nagle with delayed ACKs stalls request/response traffic.
    pub nagle: bool,
    /// UDP sockets ([`crate::UdpSocket`]) the stack may hold at once, a pool separate from
    /// `max_sockets`; past it `UdpSocket::bind` fails with `OSError(ENOMEM)`.
    pub max_udp_sockets: usize,
    /// Receive buffer per UDP socket, payload bytes: a datagram larger than this is never
    /// received, and datagrams that arrive while it is full are dropped (as UDP does).
    pub udp_rx_buffer: usize,
    /// Transmit buffer per UDP socket, payload bytes: no datagram can be larger.
    pub udp_tx_buffer: usize,
    /// Datagrams each UDP buffer (receive, transmit) holds at most, whatever their size.
    pub udp_packets: usize,
}

/// The constructors' `random_seed`: the same on every boot, so [`Stack::new`] warns about it.
const DEFAULT_RANDOM_SEED: u64 = 0x0005_EED0_F0A5_FC10;

impl StackConfig {
    /// A static configuration with the defaults for everything else.
    pub fn with_static(mac: [u8; 6], address: Ipv4Addr, prefix_len: u8) -> Self {
        StackConfig {
            mac,
            ipv4: Ipv4Config::Static {
                address,
                prefix_len,
                gateway: None,
                dns_servers: Vec::new(),
            },
            max_sockets: 16,
            tcp_rx_buffer: 8 * 1024,
            tcp_tx_buffer: 8 * 1024,
            random_seed: DEFAULT_RANDOM_SEED,
            connect_timeout_ms: 10_000,
            dns_timeout_ms: 5_000,
            linger_ms: 10_000,
            nagle: false,
            max_udp_sockets: 4,
            udp_rx_buffer: 4 * 1024,
            udp_tx_buffer: 4 * 1024,
            udp_packets: 8,
        }
    }

    /// A DHCP configuration with the defaults for everything else.
    pub fn with_dhcp(mac: [u8; 6]) -> Self {
        StackConfig {
            ipv4: Ipv4Config::Dhcp,
            ..StackConfig::with_static(mac, Ipv4Addr::UNSPECIFIED, 0)
        }
    }

    /// A configuration for an IP link (no Ethernet, e.g. PPP): no address until the link
    /// supplies one ([`Ipv4Config::Unconfigured`]), the defaults for everything else.
    ///
    /// ```
    /// use uasyncio_net::{Ipv4Config, StackConfig};
    /// let mut cfg = StackConfig::for_ip_link();
    /// cfg.random_seed = 0x5eed; // make it differ per boot
    /// assert_eq!(cfg.ipv4, Ipv4Config::Unconfigured);
    /// ```
    pub fn for_ip_link() -> Self {
        StackConfig {
            ipv4: Ipv4Config::Unconfigured,
            ..StackConfig::with_static(LOCAL_MAC, Ipv4Addr::UNSPECIFIED, 0)
        }
    }
}

/// The placeholder Ethernet address of [`StackConfig::for_ip_link`] (locally administered).
const LOCAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// Socket counts of a stack, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StackStats {
    /// TCP sockets in existence (all kinds below together).
    pub tcp_sockets: usize,
    /// Of those, listening or half-open sockets owned by servers.
    pub listening: usize,
    /// Of those, sockets of dropped streams still closing.
    pub lingering: usize,
    /// UDP sockets in existence (closed ones still sending their last datagrams included).
    pub udp_sockets: usize,
    /// Driver passes so far.
    pub driver_passes: u64,
}

pub(crate) struct ServerEntry {
    pub(crate) endpoint: IpListenEndpoint,
    pub(crate) backlog: usize,
    pub(crate) listening: Vec<SocketHandle>,
    pub(crate) pending: VecDeque<SocketHandle>,
    pub(crate) waker: Option<Waker>,
}

struct Linger {
    handle: SocketHandle,
    deadline_us: u64,
    aborted: bool,
}

/// The smoltcp state of one stack (inside `Core::st`).
pub(crate) struct State {
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) dns: SocketHandle,
    dhcp: Option<SocketHandle>,
    pub(crate) tcp_count: usize,
    pub(crate) next_port: u16,
    pub(crate) servers: Vec<Option<ServerEntry>>,
    lingering: Vec<Linger>,
    pub(crate) dns_servers: Vec<Ipv4Addr>,
    /// Sockets aborted because the link went down (see [`State::aborted_by_link_down`]),
    /// each with the bytes it had received and nobody had read yet: a read gives them
    /// before `OSError(ENETDOWN)` (smoltcp drops a closed socket's receive buffer from view).
    net_down: Vec<NetDown>,
    /// A TCP socket was removed since the driver last re-armed the servers: a server whose
    /// backlog could not be refilled while the pool was full gets its listeners back in the
    /// driver's next pass, before a SYN finds none and is refused.
    freed: bool,
}

/// A socket aborted because its link went down, with what it had received and nobody had read
/// (`bytes[at..]`).
struct NetDown {
    handle: SocketHandle,
    bytes: Vec<u8>,
    at: usize,
}

impl State {
    /// UDP sockets in the socket set.
    pub(crate) fn udp_count(&self) -> usize {
        self.sockets
            .iter()
            .filter(|(_, s)| matches!(s, smoltcp::socket::Socket::Udp(_)))
            .count()
    }

    /// `Ok` when a packet to the host `addr` can leave: it is on the interface's network, or
    /// a default route exists. Where smoltcp would queue the packet and never send it (a
    /// connect would wait out its whole timeout), an error at once instead:
    /// `ValueError` for the stack's own or a loopback address (smoltcp has no loopback);
    /// `OSError(ENETUNREACH)` without a route, also while the interface has no address (the
    /// errno's docs say what to change: the host is off the network of `prefix_len` and no
    /// `gateway` is set).
    pub(crate) fn route_to(&self, addr: Ipv4Addr) -> Result<()> {
        if addr.is_loopback() || self.iface.has_ip_addr(IpAddress::Ipv4(addr)) {
            return Err(Error::Value(
                "no loopback: the destination is this stack's own or a loopback address".into(),
            ));
        }
        let on_link = self
            .iface
            .ip_addrs()
            .iter()
            .any(|c| c.contains_addr(&IpAddress::Ipv4(addr)));
        if on_link || (self.iface.ipv4_addr().is_some() && self.iface.routes().get_default_ipv4_route().is_some()) {
            Ok(())
        } else {
            Err(Error::Os(errno::ENETUNREACH))
        }
    }

    /// Whether `addr` is one host: not 0.0.0.0, not a broadcast (the limited one, or the
    /// interface network's own), not multicast. A TCP connection needs one.
    pub(crate) fn is_one_host(&self, addr: Ipv4Addr) -> bool {
        if !is_unicast(&addr) {
            return false;
        }
        !self.iface.ip_addrs().iter().any(|c| match c {
            IpCidr::Ipv4(c) => c.broadcast() == Some(addr),
            #[allow(unreachable_patterns)] // with smoltcp's proto-ipv6 on
            _ => false,
        })
    }

    /// Whether socket `h` was aborted because its link went down (`Core::link_down`), so
    /// that an operation on it can report `OSError(ENETDOWN)` rather than a reset.
    pub(crate) fn aborted_by_link_down(&self, h: SocketHandle) -> bool {
        self.net_down.iter().any(|d| d.handle == h)
    }

    /// Abort every TCP connection (listeners stay) because the network under them is gone
    /// (the link went down, or [`Stack::shutdown`]): their owners get `OSError(ENETDOWN)`
    /// at the next operation, after the bytes they had received and not read.
    fn abort_connections(&mut self) {
        let mut aborted = Vec::new();
        for (h, s) in self.sockets.iter_mut() {
            if let smoltcp::socket::Socket::Tcp(t) = s {
                if !matches!(t.state(), tcp::State::Listen | tcp::State::Closed) {
                    // What arrived before the drop stays readable: taken out of the
                    // socket's buffer, which a closed smoltcp socket no longer gives.
                    let mut bytes = Vec::new();
                    while let Ok(n) = t.recv(|d| {
                        bytes.extend_from_slice(d);
                        (d.len(), d.len())
                    }) {
                        if n == 0 {
                            break;
                        }
                    }
                    // Wakes the socket's reader and writer (smoltcp wakes both on a
                    // state change).
                    t.abort();
                    aborted.push(NetDown {
                        handle: h,
                        bytes,
                        at: 0,
                    });
                }
            }
        }
        self.net_down.extend(aborted);
    }

    /// Close every UDP socket in smoltcp (their owners' handles stay): wakes a task waiting
    /// in `recv` or `send_to`, which then finds the stack stopped (`Core::check_running`).
    /// Datagrams not yet received or sent are dropped.
    fn close_udp_sockets(&mut self) {
        for (_, s) in self.sockets.iter_mut() {
            if let smoltcp::socket::Socket::Udp(u) = s {
                u.close();
            }
        }
    }

    /// Gives `f` the bytes socket `h` had received but not delivered when the link went
    /// down (as `poll_recv_with`'s reader takes them: it returns how many it took); `None`
    /// if it was not aborted so or none are left.
    pub(crate) fn read_left_by_link_down(
        &mut self,
        h: SocketHandle,
        f: &mut dyn FnMut(&[u8]) -> usize,
    ) -> Option<usize> {
        let d = self
            .net_down
            .iter_mut()
            .find(|d| d.handle == h && d.at < d.bytes.len())?;
        let n = f(&d.bytes[d.at..]);
        d.at += n;
        Some(n)
    }
}

/// Shared state of one stack.
pub(crate) struct Core {
    pub(crate) st: RefCell<State>,
    pub(crate) cfg: StackConfig,
    /// The largest UDP payload one IP packet of the device carries (no fragmentation).
    pub(crate) max_udp_payload: usize,
    driver_waker: RefCell<Option<Waker>>,
    kicked: Cell<bool>,
    stop: Cell<bool>,
    /// The driver future was dropped without [`Stack::shutdown`] (the loop that ran it was
    /// replaced by `new_event_loop()`, or its thread ended): see [`Core::check_driver`].
    driver_gone: Cell<bool>,
    config_waiters: RefCell<Vec<Waker>>,
    passes: Cell<u64>,
}

/// A network stack: a handle, cheap to clone, valid for the loop that created it.
///
/// Its driver task (and the tasks of its servers and TLS streams) live in that loop:
/// `uasyncio::new_event_loop()` drops them, and from then on every operation on the stack
/// and on its streams, servers and UDP sockets fails at once with a `RuntimeError` that says
/// so (create the stack again on the new loop) instead of waiting forever.
#[derive(Clone)]
pub struct Stack {
    pub(crate) core: Rc<Core>,
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stack")
            .field("ipv4_address", &self.ipv4_address())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Stack {
    /// Build a stack on `device` and start its driver task on the running loop.
    ///
    /// The medium is the device's (`capabilities().medium`): on Ethernet the stack uses
    /// [`StackConfig::mac`]; on an IP link (feature `ppp`) there is no link-layer address
    /// and `mac` is ignored.
    ///
    /// # Errors
    /// `ValueError` for a multicast or broadcast `mac` or a prefix length above 32, for a
    /// static address that is not one host's (0.0.0.0, a broadcast or multicast address),
    /// for a static gateway off the address's network on Ethernet (it could never be
    /// resolved), for DHCP on an IP link (DHCP needs Ethernet), and for a device medium this
    /// build does not support; for a zero `tcp_rx_buffer` or `tcp_tx_buffer` (every
    /// connection would stall), and, when `max_udp_sockets` is not 0, a zero
    /// `udp_rx_buffer` or `udp_tx_buffer` (no datagram would ever pass), and for a zero
    /// `connect_timeout_ms` or `dns_timeout_ms` (every attempt would time out at once), for a
    /// `tcp_rx_buffer` over 1 GiB (TCP cannot offer a larger window): the message names the
    /// field; and for a device whose MTU leaves less than 68 or more than 65,535 bytes for an
    /// IP datagram.
    pub fn new<D: NetDevice + 'static>(mut device: D, cfg: StackConfig) -> Result<Stack> {
        check_sizes(&cfg)?;
        let caps = device.capabilities();
        let hw = match caps.medium {
            Medium::Ethernet => {
                let mac = EthernetAddress(cfg.mac);
                if !mac.is_unicast() {
                    return Err(Error::Value("mac must be a unicast Ethernet address".into()));
                }
                HardwareAddress::Ethernet(mac)
            }
            #[cfg(feature = "ppp")]
            Medium::Ip => {
                if cfg.ipv4 == Ipv4Config::Dhcp {
                    return Err(Error::Value(
                        "DHCP needs an Ethernet device: on an IP link use Ipv4Config::Unconfigured \
                         (StackConfig::for_ip_link) or a static address"
                            .into(),
                    ));
                }
                HardwareAddress::Ip
            }
            #[allow(unreachable_patterns)]
            _ => {
                return Err(Error::Value(
                    "the device's medium is not supported by this build (IP links need feature `ppp`)".into(),
                ))
            }
        };
        // smoltcp takes the link header out of the device's MTU (underflowing below it) and
        // the IP and TCP headers out of what is left (underflowing when the MSS would be
        // negative): a device too small for an IP datagram is refused here.
        let link_header = if caps.medium == Medium::Ethernet {
            ETHERNET_HEADER
        } else {
            0
        };
        if caps.max_transmission_unit < link_header + MIN_IP_MTU {
            return Err(Error::Value(
                "the device's MTU leaves less than 68 bytes for an IP datagram (RFC 791's minimum): \
                 give the device a larger MTU (1500 on Ethernet is usual)"
                    .into(),
            ));
        }
        // Above it smoltcp's 16-bit IPv4 total length wraps: a UDP datagram over 65,507 bytes
        // overflowed (a panic with overflow checks, a corrupt header without), and full-size
        // TCP segments went out with a wrong length and were dropped.
        if caps.max_transmission_unit - link_header > MAX_IP_MTU {
            return Err(Error::Value(
                "the device's MTU leaves more than 65,535 bytes for an IP datagram, the largest IPv4 \
                 can carry: report at most 65,535 (plus the link header) as the device's MTU"
                    .into(),
            ));
        }
        // IP header (20) and UDP header (8) out of the link's IP MTU.
        let max_udp_payload = caps.ip_mtu().saturating_sub(28);
        if cfg.random_seed == DEFAULT_RANDOM_SEED {
            log::warn!(
                "uasyncio-net: StackConfig::random_seed is the default: TCP sequence numbers and local \
                 ports repeat on every boot; set it from a hardware RNG"
            );
        }
        let mut icfg = IfaceConfig::new(hw);
        icfg.random_seed = cfg.random_seed;
        let now = SInstant::from_micros(rt::now_us() as i64);
        let mut iface = Interface::new(icfg, &mut device, now);
        let mut sockets = SocketSet::new(vec![]);
        let queries: Vec<Option<dns::DnsQuery>> = (0..DNS_QUERY_SLOTS).map(|_| None).collect();
        let mut dns_servers = Vec::new();
        let mut dhcp = None;
        match &cfg.ipv4 {
            Ipv4Config::Static {
                address,
                prefix_len,
                gateway,
                dns_servers: servers,
            } => {
                if *prefix_len > 32 {
                    return Err(Error::Value("prefix_len must be at most 32".into()));
                }
                let net = Ipv4Cidr::new(*address, *prefix_len);
                // A /31 or /32 has no network or broadcast address of its own (RFC 3021).
                let edge =
                    |a: &Ipv4Addr| *prefix_len <= 30 && (*a == net.network().address() || net.broadcast() == Some(*a));
                if !is_host(address) || edge(address) {
                    return Err(Error::Value(
                        "static address is not a host of its network: change address or prefix_len".into(),
                    ));
                }
                if let (Some(gw), HardwareAddress::Ethernet(_)) = (gateway, hw) {
                    // On Ethernet the gateway is reached by ARP, so it must be a neighbour;
                    // smoltcp would route through it and never resolve it.
                    if !net.contains_addr(gw) || gw == address || !is_host(gw) || edge(gw) {
                        return Err(Error::Value(
                            "gateway must be another host of the static network: change gateway or prefix_len".into(),
                        ));
                    }
                }
                let cidr = IpCidr::Ipv4(Ipv4Cidr::new(*address, *prefix_len));
                iface.update_ip_addrs(|a| {
                    let _ = a.push(cidr);
                });
                if let Some(gw) = gateway {
                    let _ = iface.routes_mut().add_default_ipv4_route(*gw);
                }
                dns_servers.clone_from(servers);
            }
            Ipv4Config::Dhcp => {
                dhcp = Some(sockets.add(dhcpv4::Socket::new()));
            }
            Ipv4Config::Unconfigured => {}
        }
        let addrs: Vec<IpAddress> = dns_servers.iter().map(|a| IpAddress::Ipv4(*a)).collect();
        let dns = sockets.add(dns::Socket::new(&addrs, queries));
        // Spread ephemeral ports by seed so that two boots do not reuse the same 4-tuples.
        let span = u64::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        let next_port = EPHEMERAL_FIRST + (cfg.random_seed.wrapping_mul(0x9E37_79B9) % span) as u16;
        let st = State {
            iface,
            sockets,
            dns,
            dhcp,
            tcp_count: 0,
            next_port,
            servers: Vec::new(),
            lingering: Vec::new(),
            dns_servers,
            net_down: Vec::new(),
            freed: false,
        };
        let core = Rc::new(Core {
            st: RefCell::new(st),
            cfg,
            max_udp_payload,
            driver_waker: RefCell::new(None),
            kicked: Cell::new(false),
            stop: Cell::new(false),
            driver_gone: Cell::new(false),
            config_waiters: RefCell::new(Vec::new()),
            passes: Cell::new(0),
        });
        rt::spawn_detached(drive(core.clone(), device));
        Ok(Stack { core })
    }

    /// The interface's IPv4 address, if it has one (static, or once DHCP answered).
    pub fn ipv4_address(&self) -> Option<Ipv4Addr> {
        self.core.st.borrow().iface.ipv4_addr()
    }

    /// Wait until the interface has an IPv4 address: at once for a static configuration,
    /// when DHCP got a lease, or when a PPP link opened IPCP.
    ///
    /// Cancellation: returns `Err(Cancelled)`; nothing else changes.
    ///
    /// Dropping the future: nothing changes either; the waker it registered stays with the
    /// stack until the next configuration change wakes it (to no effect).
    pub async fn wait_config_up(&self) -> Result<()> {
        poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            if self.ipv4_address().is_some() {
                return Poll::Ready(Ok(()));
            }
            self.core.check_driver()?;
            let mut waiters = self.core.config_waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Socket counts (see [`StackStats`]).
    pub fn stats(&self) -> StackStats {
        let st = self.core.st.borrow();
        let listening = st
            .servers
            .iter()
            .flatten()
            .map(|s| s.listening.len() + s.pending.len())
            .sum();
        StackStats {
            tcp_sockets: st.tcp_count,
            listening,
            lingering: st.lingering.len(),
            udp_sockets: st.udp_count(),
            driver_passes: self.core.passes.get(),
        }
    }

    /// The DNS servers in use (static, or from DHCP).
    pub fn dns_servers(&self) -> Vec<Ipv4Addr> {
        self.core.st.borrow().dns_servers.clone()
    }

    /// Stop the driver task; use this when the stack is no longer needed (the driver
    /// otherwise lives as long as the loop). Idempotent.
    ///
    /// Every TCP connection of the stack is aborted: the driver's last pass sends their
    /// RSTs, and their owners get `OSError(ENETDOWN)` at the next read, write or `drain`
    /// (after the bytes that had arrived before, as when a PPP link goes down), instead of
    /// waiting for a driver that no longer runs. New connections, listeners and name
    /// lookups on the stack fail at once with `OSError(ENETDOWN)` too. So do the
    /// [`UdpSocket`](crate::UdpSocket)s of the stack: a waiting `recv` is woken with that
    /// error, later sends and receives get it, and datagrams not yet received or sent are
    /// dropped (UDP promises no delivery); a new `bind` fails with it.
    pub fn shutdown(&self) {
        if self.core.stop.replace(true) {
            return;
        }
        let mut st = self.core.st.borrow_mut();
        st.abort_connections();
        st.close_udp_sockets();
        drop(st);
        self.core.kick();
    }
}

impl Core {
    /// Tell the driver that socket state changed and smoltcp should run a pass.
    pub(crate) fn kick(&self) {
        self.kicked.set(true);
        let w = self.driver_waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    pub(crate) fn now_us(&self) -> u64 {
        rt::now_us()
    }

    /// A new TCP socket with the stack's buffer sizes, counted against `max_sockets`.
    pub(crate) fn new_tcp_socket(&self, st: &mut State) -> Result<SocketHandle> {
        self.check_running()?;
        if st.tcp_count >= self.cfg.max_sockets {
            return Err(Error::Os(errno::ENOMEM));
        }
        let rx = tcp::SocketBuffer::new(vec![0u8; self.cfg.tcp_rx_buffer]);
        let tx = tcp::SocketBuffer::new(vec![0u8; self.cfg.tcp_tx_buffer]);
        let mut s = tcp::Socket::new(rx, tx);
        s.set_nagle_enabled(self.cfg.nagle);
        st.tcp_count += 1;
        Ok(st.sockets.add(s))
    }

    /// `OSError(ENOMEM)` for a TCP socket pool with no free slot. The errno carries no text,
    /// so the reason goes to the log (`log::warn!`): the pool size and what holds the slots,
    /// closing sockets in particular (freed when the peer acknowledges their FIN, at most
    /// `linger_ms` later).
    pub(crate) fn pool_full(&self, st: &State) -> Error {
        let listening: usize = st
            .servers
            .iter()
            .flatten()
            .map(|s| s.listening.len() + s.pending.len())
            .sum();
        log::warn!(
            "uasyncio-net: OSError(ENOMEM): TCP socket pool full (StackConfig::max_sockets = {}: {} listening, \
             {} still closing, freed within linger_ms = {} ms; the rest connections): raise max_sockets \
             or close streams sooner",
            self.cfg.max_sockets,
            listening,
            st.lingering.len(),
            self.cfg.linger_ms,
        );
        Error::Os(errno::ENOMEM)
    }

    /// Remove a TCP socket at once (it must be closed, or the peer sees nothing).
    pub(crate) fn remove_tcp_socket(st: &mut State, h: SocketHandle) {
        st.sockets.remove(h);
        st.tcp_count -= 1;
        st.freed = true;
        // The handle may be reused by a new socket: forget its history.
        st.net_down.retain(|d| d.handle != h);
    }

    /// The link supplied an address (PPP: IPCP opened): `address`/32, a default route via
    /// `gateway` (on an IP link any address will do: there is no neighbour to resolve) and
    /// `dns_servers`. Wakes [`Stack::wait_config_up`].
    #[allow(dead_code)] // used by `ppp`
    pub(crate) fn link_up(&self, address: Ipv4Addr, gateway: Ipv4Addr, dns_servers: Vec<Ipv4Addr>) {
        {
            let mut guard = self.st.borrow_mut();
            let st = &mut *guard;
            st.iface.update_ip_addrs(|a| {
                a.clear();
                let _ = a.push(IpCidr::Ipv4(Ipv4Cidr::new(address, 32)));
            });
            let _ = st.iface.routes_mut().add_default_ipv4_route(gateway);
            let addrs: Vec<IpAddress> = dns_servers.iter().map(|a| IpAddress::Ipv4(*a)).collect();
            st.sockets.get_mut::<dns::Socket>(st.dns).update_servers(&addrs);
            st.dns_servers = dns_servers;
        }
        for w in self.config_waiters.borrow_mut().drain(..) {
            w.wake();
        }
        self.kick();
    }

    /// The link went down: remove the address, the default route and the DNS servers,
    /// and abort every TCP connection (listeners stay and serve again on the next link).
    /// An aborted socket's RST cannot go out any more; its owner sees the error at its next
    /// operation and the socket is reaped as usual once dropped. Idempotent.
    #[allow(dead_code)] // used by `ppp`
    pub(crate) fn link_down(&self) {
        {
            let mut guard = self.st.borrow_mut();
            let st = &mut *guard;
            st.iface.update_ip_addrs(|a| a.clear());
            st.iface.routes_mut().remove_default_ipv4_route();
            st.sockets.get_mut::<dns::Socket>(st.dns).update_servers(&[]);
            st.dns_servers.clear();
            st.abort_connections();
        }
        self.kick();
    }

    /// `RuntimeError` once the driver task is gone without [`Stack::shutdown`]: its loop
    /// dropped it (`uasyncio::new_event_loop()` drops every task of the old loop), so
    /// nothing on the stack would ever move again and every wait would last forever.
    /// Operations check it where they start and where they wait.
    pub(crate) fn check_driver(&self) -> Result<()> {
        if self.driver_gone.get() {
            Err(driver_gone())
        } else {
            Ok(())
        }
    }

    /// `RuntimeError` as [`Core::check_driver`], else `OSError(ENETDOWN)` once [`Stack::shutdown`] stopped the driver: nothing on the
    /// stack moves any more, so a new socket or query would wait forever.
    pub(crate) fn check_running(&self) -> Result<()> {
        self.check_driver()?;
        if self.stop.get() {
            Err(Error::Os(errno::ENETDOWN))
        } else {
            Ok(())
        }
    }

    /// The last owner of a connected socket is gone: close it gracefully and let the
    /// driver reap it, or remove it now if it is already closed or never got past SYN-SENT.
    /// An aborted socket lingers until its RST is out, at most `RST_GRACE_US`.
    pub(crate) fn release_socket(&self, h: SocketHandle) {
        let now = self.now_us();
        {
            let mut st = self.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(h);
            let closed = s.state() == tcp::State::Closed;
            // A connect that never completed (SYN-SENT: cancelled, timed out, or its future
            // dropped) owes the peer nothing: removed at once, so its slot is free for the
            // next connect. A SYN-ACK that still comes finds no socket, and smoltcp answers
            // it with RST itself.
            if (closed && s.remote_endpoint().is_none()) || s.state() == tcp::State::SynSent {
                Core::remove_tcp_socket(&mut st, h);
                drop(st);
                // A server may be waiting for a free socket (see `State::freed`).
                self.kick();
                return;
            }
            // Closed with a peer still known means an abort whose RST is not sent yet.
            s.close();
            let deadline_us = if closed {
                now + RST_GRACE_US
            } else {
                now + u64::from(self.cfg.linger_ms) * 1000
            };
            st.lingering.push(Linger {
                handle: h,
                deadline_us,
                aborted: closed,
            });
        }
        self.kick();
    }

    /// A free ephemeral port: not the local port of any TCP socket or server.
    pub(crate) fn alloc_port(&self, st: &mut State) -> Result<u16> {
        let span = u32::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        for _ in 0..span {
            let p = st.next_port;
            st.next_port = if p == u16::MAX { EPHEMERAL_FIRST } else { p + 1 };
            if !port_in_use(st, p) {
                return Ok(p);
            }
        }
        Err(Error::Os(errno::EADDRINUSE))
    }

    /// Re-arm the listening sockets of server `id` up to its backlog, moving sockets whose
    /// handshake completed to its pending queue.
    pub(crate) fn rearm_server(&self, st: &mut State, id: usize) {
        let Some(Some(mut srv)) = st.servers.get_mut(id).map(Option::take) else {
            return;
        };
        let mut i = 0;
        let mut woke = false;
        while i < srv.listening.len() {
            let h = srv.listening[i];
            let state = st.sockets.get::<tcp::Socket>(h).state();
            match state {
                tcp::State::Listen | tcp::State::SynReceived => i += 1,
                tcp::State::Closed => {
                    srv.listening.swap_remove(i);
                    Core::remove_tcp_socket(st, h);
                }
                _ => {
                    srv.listening.swap_remove(i);
                    srv.pending.push_back(h);
                    woke = true;
                }
            }
        }
        while srv.listening.len() + srv.pending.len() < srv.backlog {
            let Ok(h) = self.new_tcp_socket(st) else { break };
            if st.sockets.get_mut::<tcp::Socket>(h).listen(srv.endpoint).is_err() {
                Core::remove_tcp_socket(st, h);
                break;
            }
            srv.listening.push(h);
        }
        if woke {
            if let Some(w) = srv.waker.take() {
                w.wake();
            }
        }
        st.servers[id] = Some(srv);
    }

    /// [`rearm_server`](Self::rearm_server) for every server; the servers are re-armed
    /// for every socket freed so far (see `State::freed`). Out of line: two call sites.
    #[inline(never)]
    fn rearm_servers(&self, st: &mut State) {
        st.freed = false;
        for id in 0..st.servers.len() {
            self.rearm_server(st, id);
        }
    }

    /// One driver pass; returns the next deadline (µs) and whether frames are left.
    fn pass<D: NetDevice>(&self, dev: &mut D) -> (Option<u64>, bool) {
        self.passes.set(self.passes.get() + 1);
        let now_us = self.now_us();
        let now = SInstant::from_micros(now_us as i64);
        let mut guard = self.st.borrow_mut();
        let st = &mut *guard;
        st.iface.poll_maintenance(now);
        let mut more = false;
        let mut n = 0;
        loop {
            match st.iface.poll_ingress_single(now, dev, &mut st.sockets) {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed | PollIngressSingleResult::SocketStateChanged => {
                    // smoltcp does not report "a listener took a SYN", so check after
                    // every frame (a few state reads per listening socket).
                    self.rearm_servers(st);
                }
            }
            n += 1;
            if n >= INGRESS_BATCH {
                more = true;
                break;
            }
        }
        // Egress is bounded per call; a few rounds flush what ingress made ready.
        for _ in 0..INGRESS_BATCH {
            if st.iface.poll_egress(now, dev, &mut st.sockets) == PollResult::None {
                break;
            }
        }
        let config_changed = self.handle_dhcp(st);
        // Reap lingering sockets.
        let mut next: Option<u64> = None;
        let mut i = 0;
        while i < st.lingering.len() {
            let l = &mut st.lingering[i];
            let s = st.sockets.get_mut::<tcp::Socket>(l.handle);
            // Done: TIME-WAIT (our FIN was acknowledged), or CLOSED with the RST of an
            // abort already sent (smoltcp forgets the 4-tuple once it has sent it).
            let done = match s.state() {
                tcp::State::TimeWait => true,
                tcp::State::Closed => s.remote_endpoint().is_none(),
                _ => false,
            };
            if done {
                let h = l.handle;
                st.lingering.swap_remove(i);
                Core::remove_tcp_socket(st, h);
                continue;
            }
            if now_us >= l.deadline_us {
                if l.aborted {
                    // The RST could not go out (e.g. the peer's ARP never resolved): forget it.
                    let h = l.handle;
                    st.lingering.swap_remove(i);
                    Core::remove_tcp_socket(st, h);
                    continue;
                }
                s.abort();
                l.aborted = true;
                l.deadline_us = now_us + RST_GRACE_US;
                more = true;
            }
            next = Some(next.map_or(l.deadline_us, |d| d.min(l.deadline_us)));
            i += 1;
        }
        // Sockets freed since the servers were last re-armed (reaped above, or released by
        // their owners between passes: `release_socket` and `discard_socket` kick the driver):
        // a server that found the pool full refills its backlog now, not when the next SYN
        // has already been refused.
        if st.freed {
            self.rearm_servers(st);
        }
        if let Some(t) = st.iface.poll_at(now, &st.sockets) {
            let t = t.total_micros().max(0) as u64;
            next = Some(next.map_or(t, |d| d.min(t)));
        }
        drop(guard);
        if config_changed {
            for w in self.config_waiters.borrow_mut().drain(..) {
                w.wake();
            }
        }
        (next, more)
    }

    fn handle_dhcp(&self, st: &mut State) -> bool {
        let Some(h) = st.dhcp else { return false };
        let ev = match st.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
            None => return false,
            Some(dhcpv4::Event::Configured(c)) => {
                Some((c.address, c.router, c.dns_servers.iter().copied().collect::<Vec<_>>()))
            }
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        match ev {
            Some((addr, router, dns_servers)) => {
                st.iface.update_ip_addrs(|a| {
                    a.clear();
                    let _ = a.push(IpCidr::Ipv4(addr));
                });
                // smoltcp checks the leased address, mask and DNS servers, not the router,
                // and asserts in its neighbour cache when it resolves a router that is not
                // unicast (DHCP's `routers 0.0.0.0` is a common misconfiguration). Such a
                // router, or the leased address itself, is left out: off-link destinations
                // are then unreachable (`ENETUNREACH`), as with no router at all.
                let usable = router.filter(|r| is_host(r) && *r != addr.address());
                if router.is_some() && usable.is_none() {
                    // Not formatted: the address's `Display` would link `core::fmt` into an
                    // image that formats nothing else.
                    log::warn!(
                        "uasyncio-net: the DHCP server's router is not a host address (0.0.0.0, \
                         broadcast, multicast, loopback or the leased one): no default route"
                    );
                }
                match usable {
                    Some(r) => {
                        let _ = st.iface.routes_mut().add_default_ipv4_route(r);
                    }
                    None => {
                        st.iface.routes_mut().remove_default_ipv4_route();
                    }
                }
                let addrs: Vec<IpAddress> = dns_servers.iter().map(|a| IpAddress::Ipv4(*a)).collect();
                st.sockets.get_mut::<dns::Socket>(st.dns).update_servers(&addrs);
                st.dns_servers = dns_servers;
            }
            None => {
                st.iface.update_ip_addrs(|a| a.clear());
                st.iface.routes_mut().remove_default_ipv4_route();
            }
        }
        true
    }
}

/// `ValueError` naming the first buffer size of `cfg` that is 0 where a socket of that kind
/// could never move a byte: a TCP window or transmit buffer of 0 stalls every connection, a
/// UDP buffer of 0 passes no datagram (a `udp_packets` of 0 is taken as 1); a connect or DNS
/// timeout of 0; and a TCP receive buffer over [`MAX_TCP_RX_BUFFER`].
fn check_sizes(cfg: &StackConfig) -> Result<()> {
    let mut sizes = vec![
        ("tcp_rx_buffer", cfg.tcp_rx_buffer),
        ("tcp_tx_buffer", cfg.tcp_tx_buffer),
    ];
    if cfg.max_udp_sockets > 0 {
        sizes.extend([
            ("udp_rx_buffer", cfg.udp_rx_buffer),
            ("udp_tx_buffer", cfg.udp_tx_buffer),
        ]);
    }
    // A timeout of 0 ends every connect (TLS handshake included) or lookup before the
    // first answer can arrive.
    let timeouts = [
        ("connect_timeout_ms", cfg.connect_timeout_ms),
        ("dns_timeout_ms", cfg.dns_timeout_ms),
    ];
    if let Some((name, _)) = timeouts.iter().find(|(_, v)| *v == 0) {
        return Err(Error::Value(
            [
                "StackConfig::",
                name,
                " is 0: every attempt would time out at once; give it the ms to wait (seconds are usual)",
            ]
            .concat()
            .into(),
        ));
    }
    if cfg.tcp_rx_buffer > MAX_TCP_RX_BUFFER {
        return Err(Error::Value(
            "StackConfig::tcp_rx_buffer is over 1 GiB, the largest window TCP can offer (RFC 7323): \
             give it at most 1 GiB (a few KiB is usual)"
                .into(),
        ));
    }
    match sizes.iter().find(|(_, v)| *v == 0) {
        None => Ok(()),
        // Concatenated, not `format!`: an image that formats nothing else would link
        // `core::fmt` for this message alone (about 1.3 KB on Cortex-M3).
        Some((name, _)) => Err(Error::Value(
            [
                "StackConfig::",
                name,
                " is 0: no byte could pass; give it at least 1 (a few KiB is usual)",
            ]
            .concat()
            .into(),
        )),
    }
}

/// The error of [`Core::check_driver`]; out of line, as it is checked in many places.
#[cold]
#[inline(never)]
fn driver_gone() -> Error {
    Error::Runtime(
        "the network stack's driver task is gone (new_event_loop() dropped it): \
         create the Stack again on the new loop"
            .into(),
    )
}

/// Not 0.0.0.0, the limited broadcast or multicast.
fn is_unicast(a: &Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast())
}

/// An Ethernet frame's header (destination, source, EtherType): what smoltcp takes out of an
/// Ethernet device's MTU for its IP MTU.
const ETHERNET_HEADER: usize = 14;

/// RFC 791 (section 3.2, "Fragmentation"): every internet module must be able to forward a
/// datagram of 68 octets without fragmenting it; the smallest IP MTU a stack accepts.
const MIN_IP_MTU: usize = 68;

/// The largest IPv4 datagram (its total length is 16 bits).
const MAX_IP_MTU: usize = 65_535;

/// The largest TCP receive buffer: RFC 7323 caps window scaling at a shift of 14, a window of
/// 1 GiB, and smoltcp panics on a larger buffer.
const MAX_TCP_RX_BUFFER: usize = 1 << 30;

/// [`is_unicast`] and not loopback: an address a static configuration may use, or a PPP peer
/// may assign.
pub(crate) fn is_host(a: &Ipv4Addr) -> bool {
    is_unicast(a) && !a.is_loopback()
}

fn port_in_use(st: &State, port: u16) -> bool {
    if st.servers.iter().flatten().any(|s| s.endpoint.port == port) {
        return true;
    }
    st.sockets.iter().any(|(_, s)| match s {
        smoltcp::socket::Socket::Tcp(t) => t.local_endpoint().is_some_and(|e| e.port == port),
        _ => false,
    })
}

/// The driver task of one stack (see the module docs).
///
/// Cancellation: a cancel of the driver task is ignored (it is the stack's engine); use
/// [`Stack::shutdown`] to stop it (after one last pass).
async fn drive<D: NetDevice>(core: Rc<Core>, mut dev: D) {
    /// Dropped with the driver future: unless `Stack::shutdown` ended it, the loop dropped
    /// it (see `Core::check_driver`). Only the mark: the stack is `!Send` and a thread has
    /// one loop, so every task that could be waiting on this stack belongs to the loop that
    /// is dropping the driver and is dropped with it; nothing is left to wake. Operations
    /// started afterwards, and any wait that is polled again, check the mark.
    struct Gone(Rc<Core>);
    impl Drop for Gone {
        fn drop(&mut self) {
            if !self.0.stop.get() {
                self.0.driver_gone.set(true);
            }
        }
    }
    let _gone = Gone(core.clone());
    while !core.stop.get() {
        let (deadline, more) = core.pass(&mut dev);
        if more {
            yield_now().await;
            continue;
        }
        let activity = poll_fn(|cx: &mut Context<'_>| {
            if core.kicked.replace(false) {
                return Poll::Ready(());
            }
            *core.driver_waker.borrow_mut() = Some(cx.waker().clone());
            if core.kicked.replace(false) {
                return Poll::Ready(());
            }
            dev.poll_rx_ready(cx)
        });
        match deadline {
            Some(t) if t <= core.now_us() => yield_now().await,
            Some(t) => {
                // An Err(Cancelled) from the timer is deliberately ignored (see above).
                let _ = select(activity, rt::sleep_until(t)).await;
            }
            None => activity.await,
        }
    }
    // Stopped (`Stack::shutdown`): one last pass sends the RSTs of the aborted connections.
    core.pass(&mut dev);
}
