//! PPP link tests: `ppp_stack` + `PppLink::run` over an in-memory serial line against a
//! small PPP peer (tests/common/ppp_peer.rs) with a second stack behind it, so real TCP
//! runs over the link. Every test runs on virtual time: restart timers, keepalives and
//! lingering cost no wall time, and a hang fails at the guard instead of stalling.

#[path = "common/capture_log.rs"]
mod capture_log;
#[path = "common/ppp_peer.rs"]
mod ppp_peer;

#[path = "common/vtime.rs"]
mod vtime;
use std::future::Future;
use std::net::Ipv4Addr;
use std::rc::Rc;

use ppp_peer::{pipe, Peer, PeerState, CLIENT_IP, DNS_IP, PEER_IP};
use uasyncio::{create_task, sleep_ms, ticks_ms, Error, Task};
use uasyncio_net::ppp::{ppp_stack, PppConfig, PppEnd, PppLink, PAP_CREDENTIALS_MAX};
use uasyncio_net::rt::errno::*;
use uasyncio_net::{Server, Stack, StackConfig, Stream};
use vtime::run;

fn spawn<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> Task<T> {
    create_task(async move { Ok(f.await) })
}

fn client(cfg: PppConfig) -> (Stack, PppLink) {
    let mut sc = StackConfig::for_ip_link();
    sc.random_seed = 0xC11E_0001;
    ppp_stack(sc, cfg).unwrap()
}

/// Start a peer on a fresh line and run the link on the client end in a task.
fn connect(link: &PppLink, state: PeerState) -> (Peer, Task<PppEnd>) {
    let (mut end, line) = pipe();
    let peer = Peer::start(line, state);
    let mut l = link.clone();
    let task = spawn(async move { l.run(&mut end).await });
    (peer, task)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn echo(r: Stream, w: Stream) -> uasyncio::Result<()> {
    loop {
        let d = r.read(4093).await?;
        if d.is_empty() {
            break;
        }
        w.write(&d);
        w.drain().await?;
    }
    w.wait_closed().await
}

/// Write `data` and read it back through the echo server on the peer.
async fn echo_roundtrip(stack: &Stack, data: Rc<Vec<u8>>) -> Vec<u8> {
    let (r, w) = stack.open_connection(&PEER_IP.to_string(), 7, None).await.unwrap();
    let d2 = data.clone();
    let writer = spawn(async move {
        for chunk in d2.chunks(3001) {
            w.write(chunk);
            w.drain().await.unwrap();
        }
        w.close();
        w.wait_closed().await.unwrap();
    });
    let mut got = Vec::new();
    loop {
        let d = r.read(2048).await.unwrap();
        if d.is_empty() {
            break;
        }
        got.extend_from_slice(&d);
    }
    writer.await.unwrap();
    got
}

/// A stream whose link dropped says so (`ENETDOWN`), not "reset by peer".
fn is_link_gone(e: &Error) -> bool {
    matches!(e, Error::Os(ENETDOWN))
}

/// A call up with an echo server on the peer and one connection to it.
struct EchoCall {
    stack: Stack,
    link: PppLink,
    peer: Peer,
    task: Task<PppEnd>,
    _server: Server,
    r: Stream,
    w: Stream,
}

/// The link up, an echo server on the peer, and `data` sent to it through one connection.
async fn echo_call(data: &[u8]) -> EchoCall {
    let (stack, link) = client(PppConfig::default());
    let (peer, task) = connect(&link, PeerState::default());
    stack.wait_config_up().await.unwrap();
    let _server = peer.stack.start_server(echo, "0.0.0.0", 7, 2, None).await.unwrap();
    let (r, w) = stack.open_connection(&PEER_IP.to_string(), 7, None).await.unwrap();
    w.write(data);
    w.drain().await.unwrap();
    EchoCall {
        stack,
        link,
        peer,
        task,
        _server,
        r,
        w,
    }
}

/// The call drops: the modem prints NO CARRIER, the network goes quiet, the link ends.
async fn no_carrier(peer: &Peer, task: Task<PppEnd>) {
    peer.state.borrow_mut().mute = true;
    peer.inject(b"\r\nNO CARRIER\r\n");
    assert!(matches!(task.await.unwrap(), PppEnd::NoCarrier));
}

/// Reads until an error: the bytes read, and the error (a clean end of stream fails the test).
async fn read_to_error(r: &Stream) -> (Vec<u8>, Error) {
    let mut got = Vec::new();
    loop {
        match r.read(4096).await {
            Ok(d) if !d.is_empty() => got.extend(d),
            Ok(_) => panic!("read saw a clean end of stream, not the link going down"),
            Err(e) => return (got, e),
        }
    }
}

/// A serial line that loses input now and then, as a UART overrun does: every `every`th
/// read throws its bytes away and reports `ErrorKind::InvalidData`.
struct Lossy {
    inner: ppp_peer::ClientEnd,
    every: u32,
    reads: u32,
    lost: u32,
}

impl embedded_io_async::ErrorType for Lossy {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io_async::Read for Lossy {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = self.inner.read(buf).await?;
        self.reads += 1;
        if n > 0 && self.reads.is_multiple_of(self.every) {
            self.lost += 1;
            return Err(embedded_io::ErrorKind::InvalidData);
        }
        Ok(n)
    }
}

impl embedded_io_async::Write for Lossy {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.inner.write(buf).await
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await
    }
}

#[test]
fn lost_input_bytes_drop_a_frame_not_the_link() {
    // The losses are said, not only counted (the application sees only slow TCP): the
    // first, then every 64th.
    capture_log::install();
    run(600, async {
        let (stack, link) = client(PppConfig::default());
        let (end, line) = pipe();
        let peer = Peer::start(line, PeerState::default());
        let mut l = link.clone();
        let task = spawn(async move {
            let mut io = Lossy {
                inner: end,
                every: 40,
                reads: 0,
                lost: 0,
            };
            let end = l.run(&mut io).await;
            (end, io.lost)
        });
        stack.wait_config_up().await.unwrap();
        let _srv = peer.stack.start_server(echo, "0.0.0.0", 7, 2, None).await.unwrap();
        let data = Rc::new(pattern(32 * 1024));
        let got = echo_roundtrip(&stack, data.clone()).await;
        assert!(got == *data, "echoed bytes differ ({} of {})", got.len(), data.len());
        assert!(link.is_up(), "a lost-input read ended the link");
        let st = link.stats();
        peer.hang_up();
        let (end, lost) = task.await.unwrap();
        assert!(matches!(end, PppEnd::NoCarrier), "{end:?}");
        assert!(lost > 0, "the test line lost nothing");
        assert_eq!(st.input_losses, u64::from(lost));
        assert!(st.frames_dropped > 0, "{st:?}");
        // Only this test loses input; other tests of the binary may warn of other things.
        let warned: Vec<String> = capture_log::take()
            .into_iter()
            .filter(|w| w.starts_with("ppp: input bytes lost"))
            .collect();
        assert_eq!(warned.len() as u32, lost.div_ceil(64), "{warned:?}");
        assert!(
            warned[0].contains("1 time(s) so far") && warned[0].contains("receive ring more room"),
            "{warned:?}"
        );
    });
}

#[test]
fn link_opens_and_carries_64k_of_tcp_echo() {
    run(120, async {
        let (stack, link) = client(PppConfig::default());
        let (peer, task) = connect(&link, PeerState::default());
        let t0 = ticks_ms();
        stack.wait_config_up().await.unwrap();
        assert!(link.is_up());
        assert_eq!(link.ipv4_address(), Some(CLIENT_IP));
        assert_eq!(stack.ipv4_address(), Some(CLIENT_IP));
        assert_eq!(stack.dns_servers(), vec![DNS_IP]);
        assert!(ticks_ms() - t0 < 100, "negotiation needed no restart");
        assert!(peer.state.borrow().ipcp_open());
        let _srv = peer.stack.start_server(echo, "0.0.0.0", 7, 2, None).await.unwrap();
        let data = Rc::new(pattern(64 * 1024));
        let got = echo_roundtrip(&stack, data.clone()).await;
        assert_eq!(got.len(), data.len());
        assert!(got == *data, "echoed bytes differ");
        let st = link.stats();
        assert_eq!(st.restarts, 0);
        assert_eq!(st.frames_dropped, 0);
        assert_eq!(peer.state.borrow().bad_frames, 0);
        eprintln!("64 KiB echo over PPP: {st:?}, {} virtual ms", ticks_ms() - t0);
        peer.hang_up();
        assert!(matches!(task.await.unwrap(), PppEnd::NoCarrier)); // EOF
        assert!(!link.is_up());
        assert_eq!(stack.ipv4_address(), None);
        assert!(stack.dns_servers().is_empty());
    });
}

#[test]
fn big_windows_fill_the_transmit_queue_without_loss() {
    run(300, async {
        let mut sc = StackConfig::for_ip_link();
        sc.tcp_rx_buffer = 64 * 1024;
        sc.tcp_tx_buffer = 64 * 1024;
        let (stack, link) = ppp_stack(sc, PppConfig::default()).unwrap();
        let mut ps = PeerState::default();
        ps.big_windows = true;
        let (peer, task) = connect(&link, ps);
        stack.wait_config_up().await.unwrap();
        let _srv = peer.stack.start_server(echo, "0.0.0.0", 7, 2, None).await.unwrap();
        let data = Rc::new(pattern(256 * 1024));
        let wall = std::time::Instant::now();
        let got = echo_roundtrip(&stack, data.clone()).await;
        let wall = wall.elapsed();
        assert!(got == *data, "echoed bytes differ");
        let st = link.stats();
        assert_eq!(st.tx_dropped, 0, "{st:?}");
        assert_eq!(st.frames_dropped, 0, "{st:?}");
        eprintln!("256 KiB echo, 64 KiB windows: {wall:?} wall (not asserted), {st:?}");
        task.cancel().unwrap();
        task.await.unwrap();
    });
}

#[test]
fn many_one_byte_writes_arrive_intact() {
    run(300, async {
        let (stack, link) = client(PppConfig::default());
        let (peer, task) = connect(&link, PeerState::default());
        stack.wait_config_up().await.unwrap();
        let _srv = peer
            .stack
            .start_server(
                |_r: Stream, w: Stream| async move {
                    for i in 0..3000u32 {
                        w.write(&[(i % 251) as u8]);
                        w.drain().await?;
                    }
                    w.close();
                    w.wait_closed().await
                },
                "0.0.0.0",
                9,
                2,
                None,
            )
            .await
            .unwrap();
        let (r, _w) = stack.open_connection(&PEER_IP.to_string(), 9, None).await.unwrap();
        let got = r.read(-1).await.unwrap();
        let want: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        assert!(got == want, "got {} bytes", got.len());
        let st = link.stats();
        assert_eq!(st.frames_dropped, 0, "{st:?}");
        eprintln!("3000 one-byte writes: {st:?}");
        task.cancel().unwrap();
        task.await.unwrap();
    });
}

/// A minimal IPv4 packet from the peer to the client (protocol 253, "for experiments").
fn tiny_ipv4(id: u16) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 20, (id >> 8) as u8, id as u8, 0, 0, 64, 253, 0, 0];
    h.extend_from_slice(&PEER_IP.octets());
    h.extend_from_slice(&CLIENT_IP.octets());
    let sum: u32 = h.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    let sum = !((sum & 0xFFFF) + (sum >> 16)) as u16;
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

#[test]
fn a_burst_larger_than_the_receive_queue_is_held_not_lost() {
    run(60, async {
        let (stack, link) = client(PppConfig::default());
        let (peer, task) = connect(&link, PeerState::default());
        stack.wait_config_up().await.unwrap();
        let before = link.stats().frames_in;
        let burst: Vec<u8> = (0..100).flat_map(|i| ppp_peer::hdlc(0x0021, &tiny_ipv4(i))).collect();
        peer.inject(&burst);
        sleep_ms(10).await.unwrap();
        let st = link.stats();
        assert_eq!(st.frames_in - before, 100, "{st:?}");
        assert_eq!(st.frames_dropped, 0, "{st:?}");
        // The link still carries TCP.
        let _srv = peer.stack.start_server(echo, "0.0.0.0", 7, 2, None).await.unwrap();
        let got = echo_roundtrip(&stack, Rc::new(pattern(10_000))).await;
        assert_eq!(got, pattern(10_000));
        task.cancel().unwrap();
        task.await.unwrap();
    });
}

/// Random control packets with good FCS: whatever ppproto cannot take must be dropped
/// before it reaches it (ppproto 0.2.1 panics on some), the rest handled; never a panic.
#[test]
fn random_control_frames_never_crash_the_link() {
    run(3600, async {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(n)) as u32
        };
        let (stack, link) = client(PppConfig {
            restart_ms: 500,
            ..PppConfig::default()
        });
        let mut ends = Vec::new();
        for round in 0..40 {
            let (peer, task) = connect(&link, PeerState::default());
            if round % 2 == 0 {
                stack.wait_config_up().await.unwrap(); // half the rounds fuzz an open link
            }
            for _ in 0..500 {
                let proto = [0xC021u16, 0x8021, 0xC023, 0x0021, 0x80FD, rnd(65536) as u16][rnd(6) as usize];
                let code = [1u8, 2, 3, 4, 6, 7, 8, 9, 10, 11, rnd(256) as u8][rnd(11) as usize];
                let mut body: Vec<u8> = Vec::new();
                if code <= 4 && rnd(2) == 0 {
                    for _ in 0..rnd(9) {
                        let len = rnd(9) as u8;
                        body.push(rnd(256) as u8);
                        body.push(len);
                        body.extend((2..len).map(|_| rnd(256) as u8));
                    }
                } else {
                    body.extend((0..rnd(200)).map(|_| rnd(256) as u8));
                }
                let len = match rnd(3) {
                    0 => (body.len() + 4) as u16,
                    1 => rnd(300) as u16,
                    _ => rnd(8) as u16,
                };
                let mut pkt = vec![code, rnd(256) as u8];
                pkt.extend_from_slice(&len.to_be_bytes());
                pkt.extend_from_slice(&body);
                pkt.truncate(rnd(pkt.len() as u32 + 1) as usize);
                peer.inject(&ppp_peer::hdlc(proto, &pkt));
            }
            sleep_ms(3000).await.unwrap();
            if task.done() {
                ends.push(format!("{:?}", task.await.unwrap()));
            } else {
                task.cancel().unwrap();
                task.await.unwrap();
            }
            peer.stack.shutdown();
        }
        eprintln!("fuzz: {:?} dropped, ends {ends:?}", link.stats());
        assert!(link.stats().frames_dropped > 0);
    });
}

#[test]
fn pap_credentials_go_to_a_peer_that_asks_for_them() {
    run(60, async {
        let cfg = PppConfig {
            username: Some("user".into()),
            password: Some("pass".into()),
            ..PppConfig::default()
        };
        let (stack, link) = client(cfg);
        let mut st = PeerState::default();
        st.pap = Some(Vec::new());
        let (peer, task) = connect(&link, st);
        stack.wait_config_up().await.unwrap();
        assert_eq!(link.ipv4_address(), Some(CLIENT_IP));
        assert_eq!(peer.state.borrow().pap.as_deref(), Some(&b"\x04user\x04pass"[..]));
        assert_eq!(link.stats().restarts, 0);
        task.cancel().unwrap();
        task.await.unwrap();
    });
}

#[test]
fn pap_credentials_too_long_for_ppproto_are_refused() {
    // ppproto builds the Authenticate-Request in a 128-byte buffer and panics above it.
    run(60, async {
        let with = |user: usize, pass: usize| PppConfig {
            username: Some("u".repeat(user)),
            password: Some("p".repeat(pass)),
            ..PppConfig::default()
        };
        assert_eq!(PAP_CREDENTIALS_MAX, 120);
        for (user, pass) in [(100, 100), (121, 0), (0, 121), (60, 61)] {
            match ppp_stack(StackConfig::for_ip_link(), with(user, pass)) {
                Err(Error::Value(m)) => assert!(m.contains("together must be at most 120 bytes"), "{m}"),
                Err(e) => panic!("{user}+{pass}: {e}"),
                Ok(_) => panic!("{user}+{pass} bytes of PAP credentials accepted"),
            }
        }
        // The longest allowed goes to the peer whole.
        let (stack, link) = client(with(60, 60));
        let mut st = PeerState::default();
        st.pap = Some(Vec::new());
        let (peer, task) = connect(&link, st);
        stack.wait_config_up().await.unwrap();
        let mut want = vec![60u8];
        want.extend(b"u".repeat(60));
        want.push(60);
        want.extend(b"p".repeat(60));
        assert_eq!(peer.state.borrow().pap.as_deref(), Some(&want[..]));
        task.cancel().unwrap();
        task.await.unwrap();
    });
}

#[test]
fn a_peer_assigning_a_non_host_address_ends_the_link_with_a_clear_error() {
    // smoltcp panics on an interface address that is not unicast; ppproto takes any.
    for bad in [
        Ipv4Addr::new(224, 0, 0, 5),
        Ipv4Addr::new(255, 255, 255, 255),
        Ipv4Addr::new(127, 0, 0, 1),
    ] {
        run(120, async move {
            let (stack, link) = client(PppConfig::default());
            let mut st = PeerState::default();
            st.assign = Some(bad);
            let (_peer, task) = connect(&link, st);
            match task.await.unwrap() {
                PppEnd::NegotiationTimeout { phase } => {
                    assert!(
                        phase.contains("broadcast, multicast, unspecified or loopback"),
                        "{bad}: {phase}"
                    )
                }
                end => panic!("{bad}: {end:?}"),
            }
            assert!(!link.is_up());
            assert_eq!(stack.ipv4_address(), None, "{bad}");
            // The same link comes up on a peer that assigns a host address.
            let (_peer, task) = connect(&link, PeerState::default());
            stack.wait_config_up().await.unwrap();
            assert_eq!(link.ipv4_address(), Some(CLIENT_IP));
            task.cancel().unwrap();
            task.await.unwrap();
        });
    }
}

#[test]
fn restart_timer_recovers_lost_configure_requests() {
    run(120, async {
        let cfg = PppConfig {
            restart_ms: 2000,
            ..PppConfig::default()
        };
        let (stack, link) = client(cfg);
        let mut st = PeerState::default();
        st.drop_lcp_confreq = 2;
        let (peer, task) = connect(&link, st);
        let t0 = ticks_ms();
        stack.wait_config_up().await.unwrap();
        let took = ticks_ms() - t0;
        assert!((4000..4100).contains(&took), "up after two restarts, took {took} ms");
        assert_eq!(peer.state.borrow().lcp_confreqs, 3);
        assert_eq!(link.stats().restarts, 2);
        task.cancel().unwrap();
        assert!(matches!(task.await.unwrap(), PppEnd::Cancelled));
        assert!(!link.is_up());
    });
}

#[test]
fn silent_peer_times_out_after_max_configure() {
    run(600, async {
        let cfg = PppConfig {
            restart_ms: 3000,
            max_configure: 4,
            ..PppConfig::default()
        };
        let (stack, link) = client(cfg);
        let mut st = PeerState::default();
        st.mute = true;
        let (peer, task) = connect(&link, st);
        let t0 = ticks_ms();
        let end = task.await.unwrap();
        assert!(
            matches!(end, PppEnd::NegotiationTimeout { phase: "LCP" }),
            "ended with {end:?}"
        );
        assert_eq!(ticks_ms() - t0, 12_000, "4 requests, 3 s apart, then 3 s more");
        assert_eq!(peer.state.borrow().lcp_confreqs, 4);
        assert_eq!(stack.ipv4_address(), None);
    });
}

#[test]
fn no_carrier_mid_transfer_ends_link_and_fails_streams() {
    run(300, async {
        let EchoCall {
            stack,
            link,
            peer,
            task,
            _server,
            r,
            w,
        } = echo_call(&pattern(32 * 1024)).await;
        let first = r.read(1000).await.unwrap();
        assert!(!first.is_empty());
        no_carrier(&peer, task).await;
        assert!(!link.is_up());
        // Reads fail once the bytes received before the drop are used up.
        let (_, err) = read_to_error(&r).await;
        assert!(is_link_gone(&err), "read failed with {err:?}");
        w.write(b"more");
        let derr = w.drain().await.unwrap_err();
        assert!(is_link_gone(&derr), "drain failed with {derr:?}");
        // New connections fail at once.
        let t0 = ticks_ms();
        let e = stack.open_connection(&PEER_IP.to_string(), 7, None).await.err();
        assert!(matches!(e, Some(Error::Os(ENETUNREACH))), "{e:?}");
        let e = stack.open_connection("example.com", 80, None).await.err();
        assert!(matches!(e, Some(Error::Os(ENETUNREACH))), "{e:?}");
        assert_eq!(ticks_ms(), t0);
        // No socket outlives its streams by more than the linger time, and the dead
        // link does not keep the stack busy meanwhile.
        drop((r, w));
        let passes = stack.stats().driver_passes;
        sleep_ms(12_000).await.unwrap();
        let st = stack.stats();
        assert_eq!(st.tcp_sockets, 0, "{st:?}");
        assert!(st.driver_passes - passes < 50, "the driver spun on a dead link: {st:?}");
        eprintln!("after NO CARRIER: read/drain failed with {err:?}; {st:?}");
    });
}

#[test]
fn bytes_received_before_the_call_dropped_are_read_before_enetdown() {
    run(300, async {
        let data = pattern(3000);
        let call = echo_call(&data).await;
        let (peer, r) = (&call.peer, &call.r);
        // Let the echo arrive into the socket, unread.
        sleep_ms(2_000).await.unwrap();
        no_carrier(peer, call.task).await;
        // Everything the stack had received comes first, then ENETDOWN.
        let (got, err) = read_to_error(r).await;
        assert!(is_link_gone(&err), "read failed with {err:?}");
        assert!(
            got == data,
            "read {} of the {} bytes received before the drop",
            got.len(),
            data.len()
        );
    });
}

#[test]
fn garbage_between_frames_is_ignored_and_terminate_request_ends() {
    run(60, async {
        let (stack, link) = client(PppConfig::default());
        let (mut end, line) = pipe();
        let peer = Peer::start(line, PeerState::default());
        // Before the client even starts: modem chatter, junk, a frame with a bad FCS.
        peer.inject(b"\r\nCONNECT 115200\r\n~junk\x00\x13\x11~\xff\x03\xc0\x21\x01\x02~");
        let mut l = link.clone();
        let task = spawn(async move { l.run(&mut end).await });
        stack.wait_config_up().await.unwrap();
        peer.inject(b"\x7e\x7e\x7e garbage \x7d\x7e\xff\x03\x00\x21\x45\x00\x7e");
        let _srv = peer.stack.start_server(echo, "0.0.0.0", 7, 2, None).await.unwrap();
        let got = echo_roundtrip(&stack, Rc::new(pattern(5000))).await;
        assert_eq!(got, pattern(5000));
        assert!(link.stats().frames_dropped >= 2, "{:?}", link.stats());
        assert!(link.is_up());
        peer.inject(&ppp_peer::hdlc(0xC021, &[5, 77, 0, 4])); // LCP Terminate-Request
        assert!(matches!(task.await.unwrap(), PppEnd::PeerTerminated));
        assert_eq!(peer.state.borrow().terminate_acks, 1, "the client acknowledged");
        assert_eq!(stack.ipv4_address(), None);
    });
}

#[test]
fn link_comes_back_on_a_fresh_line_with_the_same_stack() {
    run(300, async {
        let (stack, link) = client(PppConfig::default());
        for round in 0..3 {
            let (peer, task) = connect(&link, PeerState::default());
            stack.wait_config_up().await.unwrap();
            assert!(link.is_up(), "round {round}");
            let _srv = peer.stack.start_server(echo, "0.0.0.0", 7, 2, None).await.unwrap();
            let got = echo_roundtrip(&stack, Rc::new(pattern(20_000))).await;
            assert_eq!(got, pattern(20_000), "round {round}");
            peer.inject(b"\r\nNO CARRIER\r\n");
            assert!(matches!(task.await.unwrap(), PppEnd::NoCarrier));
            assert!(!link.is_up());
            let e = stack.connect_addr(PEER_IP, 7).await.err();
            assert!(matches!(e, Some(Error::Os(ENETUNREACH))), "{e:?}");
            peer.stack.shutdown();
        }
        sleep_ms(12_000).await.unwrap();
        assert_eq!(stack.stats().tcp_sockets, 0, "{:?}", stack.stats());
    });
}

#[test]
fn keepalive_is_answered_then_times_out_when_the_peer_goes_quiet() {
    run(600, async {
        let cfg = PppConfig {
            echo_interval_ms: 5000,
            echo_failures: 3,
            ..PppConfig::default()
        };
        let (stack, link) = client(cfg);
        let (peer, task) = connect(&link, PeerState::default());
        stack.wait_config_up().await.unwrap();
        sleep_ms(60_000).await.unwrap();
        assert!(link.is_up());
        let answered = peer.state.borrow().echo_requests;
        assert!((10..=13).contains(&answered), "one echo per 5 s idle: {answered}");
        peer.state.borrow_mut().mute = true;
        let t0 = ticks_ms();
        assert!(matches!(task.await.unwrap(), PppEnd::EchoTimeout));
        let took = ticks_ms() - t0;
        assert!(took <= 20_000, "3 unanswered echoes 5 s apart, then 5 s: {took} ms");
        assert_eq!(stack.ipv4_address(), None);
    });
}

#[test]
fn idle_link_without_keepalive_wakes_nothing() {
    run(600, async {
        let (stack, link) = client(PppConfig::default());
        let (peer, _task) = connect(&link, PeerState::default());
        stack.wait_config_up().await.unwrap();
        sleep_ms(100).await.unwrap();
        let passes = stack.stats().driver_passes;
        let before = link.stats();
        let sent = peer.state.borrow().lcp_confreqs;
        sleep_ms(300_000).await.unwrap();
        assert!(link.is_up());
        assert_eq!(stack.stats().driver_passes, passes, "the stack slept");
        assert_eq!(link.stats(), before, "the link task slept, nothing on the line");
        assert_eq!(peer.state.borrow().lcp_confreqs, sent);
    });
}

#[test]
fn dropping_run_takes_the_link_down() {
    run(60, async {
        let (stack, link) = client(PppConfig::default());
        let (mut end, line) = pipe();
        let _peer = Peer::start(line, PeerState::default());
        let mut l = link.clone();
        {
            let mut fut = Box::pin(l.run(&mut end));
            std::future::poll_fn(|cx| {
                if let std::task::Poll::Ready(e) = fut.as_mut().poll(cx) {
                    panic!("the link ended before it was up: {e}");
                }
                if link.is_up() {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            })
            .await;
            assert_eq!(stack.ipv4_address(), Some(CLIENT_IP));
        } // the run future is dropped here
        assert!(!link.is_up());
        assert_eq!(link.ipv4_address(), None);
        assert_eq!(stack.ipv4_address(), None);
        let e = stack.connect_addr(PEER_IP, 7).await.err();
        assert!(matches!(e, Some(Error::Os(ENETUNREACH))), "{e:?}");
        // The link can run again (on the same line: the peer restarts nothing, so just
        // check that a second run is accepted and negotiates from scratch).
        let (mut end2, line2) = pipe();
        let _peer2 = Peer::start(line2, PeerState::default());
        let task = spawn(async move { l.run(&mut end2).await });
        stack.wait_config_up().await.unwrap();
        task.cancel().unwrap();
        assert!(matches!(task.await.unwrap(), PppEnd::Cancelled));
    });
}

#[test]
fn a_second_concurrent_run_is_refused() {
    run(60, async {
        let (stack, link) = client(PppConfig::default());
        let (_peer, task) = connect(&link, PeerState::default());
        stack.wait_config_up().await.unwrap();
        let (mut end2, _line2) = pipe();
        let mut l2 = link.clone();
        let e = l2.run(&mut end2).await;
        assert!(matches!(&e, PppEnd::Io(Error::Runtime(_))), "{e:?}");
        assert!(link.is_up(), "the first run goes on");
        task.cancel().unwrap();
        assert!(matches!(task.await.unwrap(), PppEnd::Cancelled));
    });
}

#[test]
fn bad_configurations_are_refused_with_a_clear_error() {
    run(10, async {
        let e = ppp_stack(StackConfig::with_dhcp([2, 0, 0, 0, 0, 1]), PppConfig::default()).unwrap_err();
        assert!(matches!(&e, Error::Value(m) if m.contains("for_ip_link")), "{e}");
        let cfg = PppConfig {
            restart_ms: 0,
            ..PppConfig::default()
        };
        assert!(matches!(
            ppp_stack(StackConfig::for_ip_link(), cfg),
            Err(Error::Value(_))
        ));
        let cfg = PppConfig {
            username: Some("u".repeat(256)),
            ..PppConfig::default()
        };
        assert!(matches!(
            ppp_stack(StackConfig::for_ip_link(), cfg),
            Err(Error::Value(_))
        ));
    });
}
