//! UDP sockets over the in-memory device pair: two stacks in one loop, on virtual time (the
//! loop jumps its clock to the next deadline when no task is ready, so send timeouts and ARP
//! retries cost no wall time). Every test runs under a limit (`run`), so a bug fails the test
//! instead of hanging the suite.

#[path = "common/vtime.rs"]
mod vtime;
use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use uasyncio::{create_task, sleep_ms, wait_for_ms, Error, Task};
use uasyncio_net::device::pair::{pair, LinkFaults};
use uasyncio_net::rt::errno::*;
use uasyncio_net::udp::RecvMeta;
use uasyncio_net::{Stack, StackConfig, UdpSocket};
use vtime::run;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn spawn<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> Task<T> {
    create_task(async move { Ok(f.await) })
}

fn cfg(mac_last: u8, ip: Ipv4Addr) -> StackConfig {
    let mut c = StackConfig::with_static([0x02, 0, 0, 0, 0, mac_last], ip, 24);
    c.random_seed = 0x1234_5678 + u64::from(mac_last);
    c
}

fn stacks(tweak: impl Fn(&mut StackConfig)) -> (Stack, Stack) {
    let (da, db, _ctl) = pair(LinkFaults::default());
    let mut ca = cfg(1, A);
    let mut cb = cfg(2, B);
    tweak(&mut ca);
    tweak(&mut cb);
    (Stack::new(da, ca).unwrap(), Stack::new(db, cb).unwrap())
}

/// An echo server on `stack`, port 7, until the socket is closed.
fn echo_server(stack: &Stack) -> Rc<UdpSocket> {
    let s = Rc::new(UdpSocket::bind(stack, sa("0.0.0.0:7")).unwrap());
    let s2 = s.clone();
    drop(spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = s2.recv_from(&mut buf).await {
            if s2.send_to(&buf[..n], from).await.is_err() {
                break;
            }
        }
    }));
    s
}

fn pattern(seed: usize, n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + seed * 13 + i / 251) as u8).collect()
}

#[test]
fn echo_between_two_stacks_unconnected_and_connected() {
    run(60, async {
        let (a, b) = stacks(|_| {});
        let _srv = echo_server(&b);
        let c = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        assert!(c.local_addr().port() >= 49152);
        assert_eq!(c.send_to(b"hello", sa("10.0.0.2:7")).await, Ok(5));
        let mut buf = [0u8; 64];
        let m = c.recv_meta(&mut buf).await.unwrap();
        assert_eq!(&buf[..m.len], b"hello");
        assert_eq!(
            m,
            RecvMeta {
                len: 5,
                datagram_len: 5,
                remote: sa("10.0.0.2:7"),
                local: SocketAddr::new(A.into(), c.local_addr().port()),
            }
        );
        // Connected (the name is a dotted address: no DNS needed).
        c.connect("10.0.0.2", 7).await.unwrap();
        assert_eq!(c.peer_addr(), Some(sa("10.0.0.2:7")));
        c.send(b"again").await.unwrap();
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"again");
        // An empty datagram is a datagram.
        c.send(b"").await.unwrap();
        assert_eq!(c.recv(&mut buf).await, Ok(0));
        // Bound to the stack's own address.
        let d = UdpSocket::bind(&a, sa("10.0.0.1:4000")).unwrap();
        d.send_to(b"x", sa("10.0.0.2:7")).await.unwrap();
        assert_eq!(d.recv_from(&mut buf).await, Ok((1, sa("10.0.0.2:7"))));
    });
}

#[test]
fn connected_socket_only_sees_its_peer() {
    run(60, async {
        let (a, b) = stacks(|_| {});
        let c = UdpSocket::bind(&a, sa("0.0.0.0:5000")).unwrap();
        c.connect_addr(sa("10.0.0.2:7000")).unwrap();
        let other = UdpSocket::bind(&b, sa("0.0.0.0:7001")).unwrap();
        let peer = UdpSocket::bind(&b, sa("0.0.0.0:7000")).unwrap();
        other.send_to(b"stranger", sa("10.0.0.1:5000")).await.unwrap();
        peer.send_to(b"peer", sa("10.0.0.1:5000")).await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(c.recv_from(&mut buf).await, Ok((4, sa("10.0.0.2:7000"))));
        assert_eq!(&buf[..4], b"peer");
    });
}

#[test]
fn many_datagrams_of_every_size_arrive_intact_and_in_order() {
    run(600, async {
        let (a, b) = stacks(|_| {});
        let _srv = echo_server(&b);
        let c = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        c.connect_addr(sa("10.0.0.2:7")).unwrap();
        const N: usize = 3000;
        const WINDOW: usize = 4; // below the 8 datagram slots of every buffer: no drops
        let size = |i: usize| (i * 37) % 1473; // 0..=1472, the largest one Ethernet frame carries
        let mut buf = vec![0u8; 2048];
        let mut sent = 0;
        for i in 0..N {
            while sent < N && sent < i + WINDOW {
                c.send(&pattern(sent, size(sent))).await.unwrap();
                sent += 1;
            }
            let n = c.recv(&mut buf).await.unwrap();
            assert_eq!(n, size(i), "datagram {i}");
            assert!(buf[..n] == pattern(i, n)[..], "datagram {i} differs");
        }
        // A burst fills the transmit buffer's 8 slots; try_send_to never waits.
        let burst = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        for _ in 0..8 {
            assert_eq!(burst.try_send_to(b"b", sa("10.0.0.2:9")), Ok(1));
        }
        assert_eq!(burst.try_send_to(b"b", sa("10.0.0.2:9")), Err(Error::Os(EAGAIN)));
        // send_to waits for the driver to make room instead.
        assert_eq!(burst.send_to(b"b", sa("10.0.0.2:9")).await, Ok(1));
    });
}

#[test]
fn too_large_is_emsgsize_and_nothing_is_sent() {
    run(60, async {
        let (a, b) = stacks(|c| c.udp_tx_buffer = 1000);
        let _srv = echo_server(&b);
        let c = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        let big = vec![1u8; 1001];
        assert_eq!(c.send_to(&big, sa("10.0.0.2:7")).await, Err(Error::Os(EMSGSIZE)));
        assert_eq!(c.try_send_to(&big, sa("10.0.0.2:7")), Err(Error::Os(EMSGSIZE)));
        // Larger buffers: one Ethernet frame (1500-byte IP MTU) is the limit, no fragments.
        let (a2, _b2) = stacks(|c| c.udp_tx_buffer = 8192);
        let c2 = UdpSocket::bind(&a2, sa("0.0.0.0:0")).unwrap();
        assert_eq!(
            c2.send_to(&vec![0u8; 1473], sa("10.0.0.2:7")).await,
            Err(Error::Os(EMSGSIZE))
        );
        assert_eq!(c2.send_to(&vec![0u8; 1472], sa("10.0.0.2:7")).await, Ok(1472));
        // The socket still works after the refusal.
        c.send_to(b"fits", sa("10.0.0.2:7")).await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(c.recv_from(&mut buf).await, Ok((4, sa("10.0.0.2:7"))));
        assert_eq!(&buf[..4], b"fits");
        assert_eq!(format!("{}", Error::Os(EMSGSIZE)), "OSError: [Errno 90] EMSGSIZE");
    });
}

#[test]
fn small_buffer_truncates_like_posix_recvfrom() {
    run(60, async {
        let (a, b) = stacks(|_| {});
        let rx = UdpSocket::bind(&b, sa("0.0.0.0:9")).unwrap();
        let tx = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        tx.send_to(b"0123456789", sa("10.0.0.2:9")).await.unwrap();
        tx.send_to(b"next", sa("10.0.0.2:9")).await.unwrap();
        tx.send_to(b"abcdef", sa("10.0.0.2:9")).await.unwrap();
        let mut small = [0u8; 4];
        // The buffer is filled, the rest of that datagram is gone, the count is what was copied.
        assert_eq!(rx.recv_from(&mut small).await, Ok((4, tx_addr(&tx))));
        assert_eq!(&small, b"0123");
        // The next call gets the next datagram, not the rest of the first one.
        assert_eq!(rx.recv(&mut small).await, Ok(4));
        assert_eq!(&small, b"next");
        // recv_meta says how long the datagram was.
        let m = rx.recv_meta(&mut small).await.unwrap();
        assert_eq!((m.len, m.datagram_len, m.truncated()), (4, 6, true));
        assert_eq!(&small, b"abcd");
    });
}

fn tx_addr(s: &UdpSocket) -> SocketAddr {
    SocketAddr::new(A.into(), s.local_addr().port())
}

#[test]
fn closed_socket_is_ebadf_and_wakes_a_waiting_receiver() {
    run(60, async {
        let (a, _b) = stacks(|_| {});
        let s = Rc::new(UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap());
        let s2 = s.clone();
        let waiter = spawn(async move {
            let mut buf = [0u8; 8];
            s2.recv_from(&mut buf).await
        });
        sleep_ms(10).await.unwrap();
        s.close();
        assert_eq!(waiter.await.unwrap(), Err(Error::Os(EBADF)));
        let mut buf = [0u8; 8];
        assert_eq!(s.recv(&mut buf).await, Err(Error::Os(EBADF)));
        assert_eq!(s.send_to(b"x", sa("10.0.0.2:7")).await, Err(Error::Os(EBADF)));
        assert_eq!(s.send(b"x").await, Err(Error::Os(EBADF)));
        assert_eq!(s.connect_addr(sa("10.0.0.2:7")), Err(Error::Os(EBADF)));
        s.close(); // idempotent
        assert!(s.is_closed());
        assert_eq!(a.stats().udp_sockets, 0);
        // Errors a user can make before any close.
        let t = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        assert_eq!(t.send(b"x").await, Err(Error::Os(ENOTCONN)));
        assert!(matches!(t.send_to(b"x", sa("10.0.0.2:0")).await, Err(Error::Value(_))));
        assert_eq!(t.send_to(b"x", sa("[::1]:7")).await, Err(Error::Os(EHOSTUNREACH)));
    });
}

#[test]
fn socket_pool_exhaustion_ports_and_addresses() {
    run(60, async {
        let (a, _b) = stacks(|c| c.max_udp_sockets = 3);
        let s1 = UdpSocket::bind(&a, sa("0.0.0.0:5000")).unwrap();
        assert_eq!(
            UdpSocket::bind(&a, sa("0.0.0.0:5000")).err(),
            Some(Error::Os(EADDRINUSE))
        );
        assert_eq!(
            UdpSocket::bind(&a, sa("10.9.9.9:0")).err(),
            Some(Error::Os(EADDRNOTAVAIL))
        );
        let s2 = a.udp_bind(sa("0.0.0.0:0")).unwrap();
        let s3 = UdpSocket::bind(&a, sa("[::]:0")).unwrap();
        assert_eq!(a.stats().udp_sockets, 3);
        assert_eq!(UdpSocket::bind(&a, sa("0.0.0.0:0")).err(), Some(Error::Os(ENOMEM)));
        assert_eq!(format!("{}", Error::Os(ENOMEM)), "OSError: [Errno 12] ENOMEM");
        // Closing frees the slot and the port at once (nothing queued).
        drop(s1);
        assert_eq!(a.stats().udp_sockets, 2);
        let again = UdpSocket::bind(&a, sa("0.0.0.0:5000")).unwrap();
        // TCP's pool is separate.
        assert_eq!(a.stats().tcp_sockets, 0);
        drop((s2, s3, again));
        assert_eq!(a.stats().udp_sockets, 0);
    });
}

#[test]
fn full_transmit_buffer_is_enobufs_after_the_send_timeout() {
    run(600, async {
        let (a, _b) = stacks(|_| {});
        // 10.0.0.99 does not exist: ARP is never answered, so nothing leaves the buffer.
        let s = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        s.set_send_timeout(Some(3_000));
        for _ in 0..8 {
            s.send_to(b"lost", sa("10.0.0.99:9")).await.unwrap();
        }
        assert_eq!(s.try_send_to(b"lost", sa("10.0.0.99:9")), Err(Error::Os(EAGAIN)));
        assert_eq!(s.send_to(b"lost", sa("10.0.0.99:9")).await, Err(Error::Os(ENOBUFS)));
        assert_eq!(format!("{}", Error::Os(ENOBUFS)), "OSError: [Errno 105] ENOBUFS");
        // Dropped with datagrams queued: the socket lingers in the pool until the stack's
        // linger time, then goes.
        drop(s);
        assert_eq!(a.stats().udp_sockets, 1);
        sleep_ms(11_000).await.unwrap();
        assert_eq!(a.stats().udp_sockets, 0);
    });
}

#[test]
fn queued_datagrams_still_go_out_after_close() {
    run(60, async {
        let (a, b) = stacks(|_| {});
        let rx = UdpSocket::bind(&b, sa("0.0.0.0:9")).unwrap();
        let tx = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        for i in 0..5u8 {
            tx.try_send_to(&[i], sa("10.0.0.2:9")).unwrap();
        }
        tx.close();
        let mut buf = [0u8; 4];
        for i in 0..5u8 {
            assert_eq!(rx.recv(&mut buf).await, Ok(1));
            assert_eq!(buf[0], i);
        }
        sleep_ms(10).await.unwrap();
        assert_eq!(a.stats().udp_sockets, 0);
    });
}

#[test]
fn cancelled_recv_leaves_the_socket_usable_and_loses_nothing() {
    run(60, async {
        let (a, b) = stacks(|_| {});
        let rx = Rc::new(UdpSocket::bind(&b, sa("0.0.0.0:9")).unwrap());
        let tx = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        // A waiting recv is cancelled.
        let r2 = rx.clone();
        let t = spawn(async move {
            let mut buf = [0u8; 8];
            r2.recv_from(&mut buf).await
        });
        sleep_ms(10).await.unwrap();
        assert_eq!(t.cancel(), Ok(true));
        assert_eq!(t.await.unwrap(), Err(Error::Cancelled));
        // A recv cancelled while a datagram is already waiting does not take it.
        tx.send_to(b"one", sa("10.0.0.2:9")).await.unwrap();
        sleep_ms(10).await.unwrap();
        let r3 = rx.clone();
        let got = Rc::new(Cell::new(false));
        let g2 = got.clone();
        let t = spawn(async move {
            let mut buf = [0u8; 8];
            let r = r3.recv_from(&mut buf).await;
            g2.set(r.is_ok());
            r
        });
        assert_eq!(t.cancel(), Ok(true)); // before its first poll
        let r = t.await;
        assert!(matches!(r, Err(Error::Cancelled) | Ok(Err(Error::Cancelled))), "{r:?}");
        assert!(!got.get());
        // A recv future dropped while waiting (wait_for's timeout) loses nothing either.
        let mut buf = [0u8; 8];
        assert_eq!(rx.recv(&mut buf).await, Ok(3));
        assert_eq!(&buf[..3], b"one");
        let r4 = rx.clone();
        let timed = wait_for_ms(
            async move {
                let mut buf = [0u8; 8];
                r4.recv(&mut buf).await
            },
            50,
        )
        .await;
        assert_eq!(timed, Err(Error::Timeout));
        tx.send_to(b"two", sa("10.0.0.2:9")).await.unwrap();
        assert_eq!(rx.recv_from(&mut buf).await, Ok((3, tx_addr(&tx))));
        assert_eq!(&buf[..3], b"two");
        // Two receivers at once: the second gets a clear error, the first is unaffected.
        let r5 = rx.clone();
        let first = spawn(async move {
            let mut buf = [0u8; 8];
            r5.recv(&mut buf).await.map(|n| buf[..n].to_vec())
        });
        sleep_ms(10).await.unwrap();
        assert!(matches!(rx.recv(&mut buf).await, Err(Error::Runtime(_))));
        tx.send_to(b"three", sa("10.0.0.2:9")).await.unwrap();
        assert_eq!(first.await.unwrap(), Ok(b"three".to_vec()));
    });
}

#[test]
fn after_shutdown_udp_fails_with_enetdown_instead_of_hanging_or_faking_a_send() {
    run(20, async {
        let (a, b) = stacks(|_| {});
        let peer = Rc::new(UdpSocket::bind(&b, sa("0.0.0.0:9")).unwrap());
        let s = Rc::new(UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap());
        s.send_to(b"before", sa("10.0.0.2:9")).await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(peer.recv(&mut buf).await.unwrap(), 6);
        // A receiver already waiting when the stack stops is woken with the error.
        let s2 = s.clone();
        let waiting = spawn(async move { s2.recv(&mut [0u8; 16]).await.err() });
        sleep_ms(10).await.unwrap();
        a.shutdown();
        assert_eq!(waiting.await.unwrap(), Some(Error::Os(ENETDOWN)), "waiting recv");
        assert_eq!(s.recv(&mut buf).await.err(), Some(Error::Os(ENETDOWN)), "recv after");
        assert_eq!(
            s.send_to(b"after", sa("10.0.0.2:9")).await.err(),
            Some(Error::Os(ENETDOWN)),
            "send_to after"
        );
        assert_eq!(
            s.try_send_to(b"after", sa("10.0.0.2:9")).err(),
            Some(Error::Os(ENETDOWN)),
            "try_send_to after"
        );
        assert_eq!(
            UdpSocket::bind(&a, sa("0.0.0.0:0")).err().map(|e| e.to_string()),
            Some(Error::Os(ENETDOWN).to_string()),
            "bind after"
        );
        // Nothing reached the peer after the shutdown.
        let p2 = peer.clone();
        let late = wait_for_ms(async move { p2.recv(&mut [0u8; 16]).await }, 1_000).await;
        assert!(late.is_err(), "the peer got {late:?}");
    });
}

#[test]
fn a_zero_send_timeout_queues_what_fits_and_fails_at_once_when_full() {
    run(600, async {
        let (a, _b) = stacks(|_| {});
        // 10.0.0.99 does not exist: ARP is never answered, so nothing leaves the buffer.
        let s = UdpSocket::bind(&a, sa("0.0.0.0:0")).unwrap();
        s.set_send_timeout(Some(0));
        for _ in 0..8 {
            s.send_to(b"lost", sa("10.0.0.99:9")).await.unwrap();
        }
        let t0 = uasyncio::ticks_ms();
        assert_eq!(s.send_to(b"lost", sa("10.0.0.99:9")).await, Err(Error::Os(ENOBUFS)));
        assert!(
            uasyncio::ticks_ms() - t0 <= 1,
            "waited {} ms of loop time",
            uasyncio::ticks_ms() - t0
        );
    });
}
