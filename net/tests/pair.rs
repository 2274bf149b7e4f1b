//! Whole-API tests over the in-memory device pair: two stacks in one loop.
//!
//! Every test runs under a hard wall-clock limit (`run`), so a bug fails the test instead
//! of hanging the suite.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use uasyncio::{create_task, get_event_loop, sleep_ms, ticks_ms, wait_for_ms, Error, Task};
use uasyncio_net::device::pair::{pair, LinkControl, LinkFaults};
use uasyncio_net::rt::errno::*;
use uasyncio_net::{Server, Stack, StackConfig, Stream};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Run `f` on this thread's loop under a time limit (loop time: virtual in loss tests).
fn run<T: 'static>(secs: u32, f: impl std::future::Future<Output = T> + 'static) -> T {
    let r = uasyncio::run(async move { wait_for_ms(async move { Ok(f.await) }, secs * 1000).await });
    match r {
        Ok(v) => v,
        Err(e) => panic!("test did not finish within its {secs} s limit: {e}"),
    }
}

fn spawn<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> Task<T> {
    create_task(async move { Ok(f.await) })
}

fn cfg(mac_last: u8, ip: Ipv4Addr) -> StackConfig {
    let mut c = StackConfig::with_static([0x02, 0, 0, 0, 0, mac_last], ip, 24);
    c.random_seed = 0x1234_5678 + u64::from(mac_last);
    c
}

/// Two stacks on one in-memory link; `tweak` edits both configs.
fn stacks(faults: LinkFaults, tweak: impl Fn(&mut StackConfig, bool)) -> (Stack, Stack, LinkControl) {
    let (da, db, ctl) = pair(faults);
    let mut ca = cfg(1, A);
    let mut cb = cfg(2, B);
    tweak(&mut ca, true);
    tweak(&mut cb, false);
    (Stack::new(da, ca).unwrap(), Stack::new(db, cb).unwrap(), ctl)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A server on `b` (port `port`, backlog 2) whose callback is `serve`, and one connection to
/// it from `a`; the server lives as long as the returned handle.
async fn served<F, Fut>(a: &Stack, b: &Stack, port: u16, serve: F) -> (Server, Stream, Stream)
where
    F: FnMut(Stream, Stream) -> Fut + 'static,
    Fut: std::future::Future<Output = uasyncio::Result<()>> + 'static,
{
    let srv = b.start_server(serve, "", port, 2, None).await.unwrap();
    let (r, w) = a.open_connection("10.0.0.2", port, None).await.unwrap();
    (srv, r, w)
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

/// Send `data` in odd chunk sizes through an echo server and read it back concurrently.
async fn echo_roundtrip(client: &Stack, data: Rc<Vec<u8>>) -> Vec<u8> {
    let (r, w) = client.open_connection(&B.to_string(), 7, None).await.unwrap();
    let d2 = data.clone();
    let writer = spawn(async move {
        let sizes = [1usize, 7, 13, 1000, 4093, 65_537, 3, 8191];
        let mut off = 0;
        let mut i = 0;
        while off < d2.len() {
            let n = sizes[i % sizes.len()].min(d2.len() - off);
            w.write(&d2[off..off + n]);
            w.drain().await.unwrap();
            off += n;
            i += 1;
        }
        w.close();
        w.wait_closed().await.unwrap();
    });
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 3001];
    let sizes = [3001usize, 17, 512, 1, 2999];
    let mut i = 0;
    loop {
        let want = sizes[i % sizes.len()];
        let n = r.readinto(&mut buf[..want]).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        i += 1;
    }
    writer.await.unwrap();
    got
}

#[test]
fn echo_1mib_odd_chunks() {
    run(60, async {
        let (a, b, _) = stacks(LinkFaults::default(), |c, _| {
            c.tcp_rx_buffer = 16 * 1024;
            c.tcp_tx_buffer = 16 * 1024;
        });
        let server = b.start_server(echo, "0.0.0.0", 7, 5, None).await.unwrap();
        let data = Rc::new(pattern(1 << 20));
        let got = echo_roundtrip(&a, data.clone()).await;
        assert_eq!(got.len(), data.len());
        assert!(got == *data, "echoed bytes differ");
        server.close();
        server.wait_closed().await.unwrap();
    });
}

#[test]
fn readline_across_split_segments() {
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let _srv = b
            .start_server(
                |_r: Stream, w: Stream| async move {
                    for part in [&b"hel"[..], b"lo\nwor", b"ld\n", b"\n", b"tail"] {
                        w.write(part);
                        w.drain().await.unwrap();
                        sleep_ms(5).await.unwrap();
                    }
                    w.wait_closed().await
                },
                "",
                80,
                2,
                None,
            )
            .await
            .unwrap();
        let (r, _w) = a.open_connection("10.0.0.2", 80, None).await.unwrap();
        assert_eq!(r.readline().await.unwrap(), b"hello\n");
        assert_eq!(r.readline().await.unwrap(), b"world\n");
        assert_eq!(r.readline().await.unwrap(), b"\n");
        assert_eq!(r.readline().await.unwrap(), b"tail");
        assert_eq!(r.readline().await.unwrap(), b"");
        assert_eq!(r.read(-1).await.unwrap(), b"");
    });
}

#[test]
fn a_line_longer_than_the_limit_is_an_error_and_loses_nothing() {
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let (_srv, r, _w) = served(&a, &b, 81, |_r: Stream, w: Stream| async move {
            w.write(b"short\n");
            w.write(&[b'x'; 100]);
            w.write(b"\n");
            w.write(&[b'y'; 300]);
            w.drain().await?;
            sleep_ms(20).await?;
            // Past the default limit (64 KiB) with no newline at all.
            w.write(&vec![b'z'; 70 * 1024]);
            w.drain().await?;
            w.wait_closed().await
        })
        .await;
        r.set_line_limit(64);
        assert_eq!(r.readline().await.unwrap(), b"short\n");
        let too_long = |e: Option<Error>| match e {
            Some(Error::Value(m)) => assert!(m.contains("Stream::set_line_limit"), "{m}"),
            other => panic!("expected a ValueError, got {other:?}"),
        };
        // 101 bytes with its newline: over 64.
        too_long(r.readline().await.err());
        let mut x = r.readexactly(101).await.unwrap();
        assert_eq!(x.pop(), Some(b'\n'));
        assert_eq!(x, vec![b'x'; 100]);
        // 300 bytes and no newline yet: refused once 64 are buffered, all of them kept.
        too_long(r.readline().await.err());
        assert_eq!(r.readexactly(300).await.unwrap(), vec![b'y'; 300]);
        r.set_line_limit(uasyncio_net::stream::DEFAULT_LINE_LIMIT);
        too_long(r.readline().await.err());
        assert_eq!(r.read(-1).await.unwrap(), vec![b'z'; 70 * 1024]);
    });
}

#[test]
fn readexactly_at_eof_keeps_partial_bytes() {
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let (_srv, r, _w) = served(&a, &b, 81, |_r: Stream, w: Stream| async move {
            w.write(b"0123456789");
            w.drain().await.unwrap();
            w.wait_closed().await
        })
        .await;
        assert_eq!(r.readexactly(4).await.unwrap(), b"0123");
        assert_eq!(r.readexactly(10).await, Err(Error::Eof));
        assert_eq!(r.read(-1).await.unwrap(), b"456789");
        assert_eq!(r.read(100).await.unwrap(), b"");
    });
}

#[test]
fn two_way_close_frees_every_socket() {
    run(30, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let done = Rc::new(RefCell::new(Vec::new()));
        let d2 = done.clone();
        let srv = b
            .start_server(
                move |r: Stream, w: Stream| {
                    let d2 = d2.clone();
                    async move {
                        let got = r.read(-1).await.unwrap();
                        w.write(&got);
                        w.write(b"!");
                        w.drain().await.unwrap();
                        w.wait_closed().await?;
                        d2.borrow_mut().push(got);
                        Ok(())
                    }
                },
                "",
                82,
                1,
                None,
            )
            .await
            .unwrap();
        let base_b = b.stats().tcp_sockets;
        assert_eq!(base_b, 1, "one listener");
        let (r, w) = a.open_connection("10.0.0.2", 82, None).await.unwrap();
        w.write(b"ping");
        w.drain().await.unwrap();
        w.close();
        // Half close: we can still read the answer after our FIN.
        assert_eq!(r.read(-1).await.unwrap(), b"ping!");
        w.wait_closed().await.unwrap();
        assert_eq!(w.get_extra_info("peername").unwrap(), SocketAddr::from((B, 82)));
        assert!(matches!(w.get_extra_info("nonsense"), Err(Error::Value(_))));
        drop((r, w));
        for _ in 0..200 {
            if a.stats().tcp_sockets == 0 && b.stats().tcp_sockets == 1 {
                break;
            }
            sleep_ms(5).await.unwrap();
        }
        assert_eq!(done.borrow().as_slice(), &[b"ping".to_vec()]);
        assert_eq!(a.stats().tcp_sockets, 0, "client socket reclaimed: {:?}", a.stats());
        assert_eq!(b.stats().tcp_sockets, 1, "only the listener is left: {:?}", b.stats());
        srv.close();
        srv.wait_closed().await.unwrap();
        assert_eq!(b.stats().tcp_sockets, 0);
    });
}

#[test]
fn sixty_four_concurrent_connections_through_one_server() {
    run(60, async {
        let (a, b, _) = stacks(LinkFaults::default(), |c, _| c.max_sockets = 160);
        let srv = b.start_server(echo, "0.0.0.0", 7, 64, None).await.unwrap();
        let peak = Rc::new(RefCell::new((0usize, 0usize)));
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let a = a.clone();
            let b2 = b.clone();
            let peak = peak.clone();
            tasks.push(spawn(async move {
                let (r, w) = a.open_connection("10.0.0.2", 7, None).await?;
                let msg = format!("client {i}\n");
                // Wait a little so that all 64 are connected at the same time.
                sleep_ms(50).await?;
                {
                    let mut p = peak.borrow_mut();
                    p.0 += 1;
                    p.1 = p.1.max(b2.stats().tcp_sockets);
                }
                w.write(msg.as_bytes());
                w.drain().await?;
                let line = r.readline().await?;
                assert_eq!(line, msg.as_bytes());
                w.wait_closed().await?;
                Ok::<_, Error>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let (n, max_sockets) = *peak.borrow();
        assert_eq!(n, 64);
        assert!(max_sockets >= 64, "server held {max_sockets} sockets at the peak");
        srv.close();
    });
}

#[test]
fn cancelled_reads_lose_no_data() {
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let gate = Rc::new(uasyncio_net_test_gate::Gate::default());
        let g2 = gate.clone();
        let _srv = b
            .start_server(
                move |_r: Stream, w: Stream| {
                    let g2 = g2.clone();
                    async move {
                        w.write(b"abc");
                        w.drain().await.unwrap();
                        g2.wait().await;
                        w.write(b"def\nrest");
                        w.drain().await.unwrap();
                        w.wait_closed().await
                    }
                },
                "",
                83,
                1,
                None,
            )
            .await
            .unwrap();
        let (r, _w) = a.open_connection("10.0.0.2", 83, None).await.unwrap();
        // A readline that has already gathered "abc" is cancelled.
        let r2 = r.clone();
        let t = spawn(async move { r2.readline().await });
        sleep_ms(30).await.unwrap();
        assert_eq!(t.cancel(), Ok(true));
        assert_eq!(t.await.unwrap(), Err(Error::Cancelled));
        // A readexactly waiting for more is cancelled too.
        let r3 = r.clone();
        let t = spawn(async move { r3.readexactly(100).await });
        sleep_ms(10).await.unwrap();
        assert_eq!(t.cancel(), Ok(true));
        assert_eq!(t.await.unwrap(), Err(Error::Cancelled));
        gate.open();
        assert_eq!(r.readline().await.unwrap(), b"abcdef\n");
        assert_eq!(r.read(-1).await.unwrap(), b"rest");
    });
}

#[test]
fn concurrent_readers_get_a_clear_error_and_directions_are_independent() {
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let _srv = b.start_server(echo, "", 7, 1, None).await.unwrap();
        let (r, w) = a.open_connection("10.0.0.2", 7, None).await.unwrap();
        let r2 = r.clone();
        let reader = spawn(async move { r2.readexactly(5).await });
        sleep_ms(10).await.unwrap();
        assert!(matches!(r.read(1).await, Err(Error::Runtime(_))));
        // The writer is not blocked by the waiting reader.
        w.write(b"hello");
        w.drain().await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), b"hello");
    });
}

#[test]
fn bad_input_gives_clear_errors_and_leaks_no_socket() {
    run(30, async {
        let (a, b, _) = stacks(LinkFaults::default(), |c, client| {
            if client {
                c.max_sockets = 3;
            }
            c.connect_timeout_ms = 300;
        });
        // Refused: nobody listens.
        assert_eq!(
            a.open_connection("10.0.0.2", 9, None).await.err(),
            Some(Error::Os(ECONNREFUSED))
        );
        // Unanswered ARP: timeout.
        assert_eq!(
            a.open_connection("10.0.0.77", 9, None).await.err(),
            Some(Error::Os(ETIMEDOUT))
        );
        // No DNS server configured: told apart from an unknown name, with where to set one.
        match a.open_connection("no.such.host", 9, None).await {
            Err(Error::Runtime(m)) => assert!(m.contains("dns_servers") && m.contains("StackConfig"), "{m}"),
            other => panic!("no DNS server: {:?}", other.err()),
        }
        // IPv6, or a port left in the name: told at once, not "no such name".
        for host in ["::1", "[fe80::1]", "echo.test:7000"] {
            let e = a.open_connection(host, 9, None).await.err();
            assert!(
                matches!(&e, Some(Error::Value(m)) if m.contains("IPv6 is not supported")),
                "{host}: {e:?}"
            );
        }
        // Server on a port already in use; server on someone else's address.
        let srv = b.start_server(echo, "", 7, 1, None).await.unwrap();
        assert_eq!(
            b.start_server(echo, "", 7, 1, None).await.err(),
            Some(Error::Os(EADDRINUSE))
        );
        assert_eq!(
            b.start_server(echo, "10.0.0.1", 8, 1, None).await.err(),
            Some(Error::Os(EADDRNOTAVAIL))
        );
        assert!(matches!(
            b.start_server(echo, "", 8, 1, Some(&Default::default())).await,
            Err(Error::Runtime(_))
        ));
        // All sockets in use (the half-open socket of the timeout above was freed at once).
        assert_eq!(a.stats().tcp_sockets, 0, "{:?}", a.stats());
        let c1 = a.open_connection("10.0.0.2", 7, None).await.unwrap();
        let c2 = a.open_connection("10.0.0.2", 7, None).await.unwrap();
        let c3 = a.open_connection("10.0.0.2", 7, None).await.unwrap();
        assert_eq!(
            a.open_connection("10.0.0.2", 7, None).await.err(),
            Some(Error::Os(ENOMEM))
        );
        drop((c1, c2, c3));
        for _ in 0..200 {
            if a.stats().tcp_sockets == 0 {
                break;
            }
            sleep_ms(5).await.unwrap();
        }
        assert_eq!(a.stats().tcp_sockets, 0, "{:?}", a.stats());
        srv.close();
        // Reset mid-transfer: the server aborts after the first bytes.
        let _srv2 = b
            .start_server(
                |r: Stream, w: Stream| async move {
                    w.write(&[1u8; 1000]);
                    w.drain().await.unwrap();
                    let _ = r.read(1).await;
                    w.abort();
                    Ok(())
                },
                "",
                84,
                1,
                None,
            )
            .await
            .unwrap();
        let (r, w) = a.open_connection("10.0.0.2", 84, None).await.unwrap();
        assert_eq!(r.readexactly(1000).await.unwrap().len(), 1000);
        w.write(b"x");
        w.drain().await.unwrap();
        assert_eq!(r.read(10).await.err(), Some(Error::Os(ECONNRESET)));
        w.write(b"more");
        assert_eq!(w.drain().await.err(), Some(Error::Os(ECONNRESET)));
        drop((r, w));
        for _ in 0..200 {
            if a.stats().tcp_sockets == 0 {
                break;
            }
            sleep_ms(5).await.unwrap();
        }
        assert_eq!(a.stats().tcp_sockets, 0, "{:?}", a.stats());
        // Write after close fails on drain.
        let srv3 = b.start_server(echo, "", 85, 1, None).await.unwrap();
        let (_r, w) = a.open_connection("10.0.0.2", 85, None).await.unwrap();
        w.close();
        w.write(b"late");
        assert_eq!(w.drain().await.err(), Some(Error::Os(EBADF)));
        srv3.close();
    });
}

#[test]
fn a_server_refills_its_backlog_as_soon_as_the_full_pool_frees_sockets() {
    run(30, async {
        // The server's pool of 4 holds 2 listeners; once 4 connections hold it all, a SYN is
        // refused (no listener left). After the clients go, the freed sockets must become
        // listeners again without waiting for a SYN to be refused first.
        let (a, b, _) = stacks(LinkFaults::default(), |c, client| {
            if !client {
                c.max_sockets = 4;
            }
        });
        let srv = b.start_server(echo, "", 7, 2, None).await.unwrap().guard();
        let mut held = Vec::new();
        loop {
            match a.open_connection("10.0.0.2", 7, None).await {
                Ok(c) => held.push(c),
                Err(e) => {
                    assert_eq!(e, Error::Os(ECONNREFUSED));
                    break;
                }
            }
            assert!(held.len() <= 4, "the server's pool of 4 took more connections");
        }
        assert_eq!(held.len(), 4, "{:?}", b.stats());
        drop(held);
        for _ in 0..400 {
            if a.stats().tcp_sockets == 0 && b.stats().listening == 2 && b.stats().tcp_sockets == 2 {
                break;
            }
            sleep_ms(5).await.unwrap();
        }
        assert_eq!(b.stats().listening, 2, "backlog not refilled: {:?}", b.stats());
        // The first connection after that is accepted (it used to be refused, re-arming the
        // listeners on its way out).
        let (r, w) = a.open_connection("10.0.0.2", 7, None).await.unwrap();
        w.write(b"again\n");
        w.drain().await.unwrap();
        assert_eq!(r.readline().await.unwrap(), b"again\n");
        srv.close();
    });
}

#[test]
fn a_wrong_ip_configuration_fails_at_once_with_what_to_change() {
    run(20, async {
        // 10.0.0.1/24, no gateway: a host on another network has no route. The error comes
        // at once (ENETUNREACH), not after the connect timeout (ETIMEDOUT) on a SYN that
        // smoltcp never sends.
        let (a, _b, _) = stacks(LinkFaults::default(), |_, _| {});
        assert_eq!(
            a.open_connection("10.0.1.2", 7, None).await.err(),
            Some(Error::Os(ENETUNREACH))
        );
        for not_one_host in ["255.255.255.255", "10.0.0.255", "224.0.0.1", "0.0.0.0"] {
            match a.open_connection(not_one_host, 7, None).await {
                Err(Error::Value(m)) => assert!(m.contains("TCP needs one host"), "{not_one_host}: {m}"),
                other => panic!("{not_one_host}: {:?}", other.err()),
            }
        }
        // No loopback: the stack's own address and 127/8 are refused (TCP and UDP).
        for own in ["10.0.0.1", "127.0.0.1"] {
            match a.open_connection(own, 7, None).await {
                Err(Error::Value(m)) => assert!(m.contains("no loopback"), "{own}: {m}"),
                other => panic!("{own}: {:?}", other.err()),
            }
        }
        // A backlog that would take every socket of the stack.
        match _b.start_server(echo, "", 7, 17, None).await {
            Err(Error::Value(m)) => assert!(m.contains("max_sockets"), "{m}"),
            other => panic!("backlog 17 of 16: {:?}", other.err()),
        }
        let u = uasyncio_net::UdpSocket::bind(&a, "0.0.0.0:0".parse().unwrap()).unwrap();
        assert!(matches!(
            u.send_to(b"x", "10.0.0.1:7".parse().unwrap()).await,
            Err(Error::Value(_))
        ));
        assert_eq!(
            u.send_to(b"x", "10.0.1.2:7".parse().unwrap()).await.err(),
            Some(Error::Os(ENETUNREACH))
        );
        // Broadcasts go out on the link.
        assert_eq!(u.send_to(b"x", "10.0.0.255:7".parse().unwrap()).await.ok(), Some(1));
        // Refused at construction: an address that is not one host's, a gateway off the network.
        let bad = |address: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>| {
            let mut c = cfg(9, address);
            if let uasyncio_net::Ipv4Config::Static {
                prefix_len, gateway: g, ..
            } = &mut c.ipv4
            {
                *prefix_len = prefix;
                *g = gateway;
            }
            let (d, _, _) = pair(LinkFaults::default());
            match Stack::new(d, c) {
                Err(Error::Value(m)) => m.to_string(),
                Err(e) => panic!("{address}: {e}"),
                Ok(_) => panic!("{address}/{prefix} via {gateway:?} accepted"),
            }
        };
        for (address, prefix) in [
            (Ipv4Addr::UNSPECIFIED, 24),
            (Ipv4Addr::BROADCAST, 24),
            (Ipv4Addr::LOCALHOST, 8),
            (Ipv4Addr::new(10, 0, 0, 255), 24),
            (Ipv4Addr::new(10, 0, 0, 0), 24),
        ] {
            let m = bad(address, prefix, None);
            assert!(m.contains("not a host of its network"), "{address}/{prefix}: {m}");
        }
        for (address, prefix, gateway) in [
            (Ipv4Addr::new(10, 0, 1, 2), 24, A),
            (Ipv4Addr::new(10, 0, 0, 2), 32, A),
            (Ipv4Addr::new(10, 0, 0, 2), 24, Ipv4Addr::new(10, 0, 0, 2)),
            (Ipv4Addr::new(10, 0, 0, 2), 24, Ipv4Addr::new(10, 0, 0, 255)),
        ] {
            let m = bad(address, prefix, Some(gateway));
            assert!(
                m.contains("change gateway or prefix_len"),
                "{address}/{prefix} via {gateway}: {m}"
            );
        }
        // A point-to-point /31 has no network or broadcast address of its own (RFC 3021).
        let (d, _, _) = pair(LinkFaults::default());
        let mut c = cfg(9, Ipv4Addr::new(10, 0, 0, 0));
        if let uasyncio_net::Ipv4Config::Static {
            prefix_len, gateway, ..
        } = &mut c.ipv4
        {
            *prefix_len = 31;
            *gateway = Some(Ipv4Addr::new(10, 0, 0, 1));
        }
        assert!(Stack::new(d, c).is_ok());
    });
}

#[test]
fn a_dns_server_that_never_answers_is_eai_again_not_a_connect_timeout() {
    run(30, async {
        let (a, _b, _) = stacks(LinkFaults::default(), |c, client| {
            if client {
                // The peer has no DNS server: the query goes unanswered.
                if let uasyncio_net::Ipv4Config::Static { dns_servers, .. } = &mut c.ipv4 {
                    dns_servers.push(B);
                }
                c.dns_timeout_ms = 1_000;
            }
        });
        let t0 = ticks_ms();
        assert_eq!(
            a.open_connection("echo.test", 7, None).await.err(),
            Some(Error::Os(EAI_AGAIN))
        );
        assert!(ticks_ms() - t0 >= 1_000);
    });
}

#[test]
fn server_close_keeps_accepted_connections() {
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let srv = b.start_server(echo, "", 7, 2, None).await.unwrap().guard();
        let (r, w) = a.open_connection("10.0.0.2", 7, None).await.unwrap();
        // Let the accept task hand the connection over (un-accepted ones are reset by close).
        sleep_ms(20).await.unwrap();
        srv.close();
        srv.wait_closed().await.unwrap();
        assert_eq!(
            a.open_connection("10.0.0.2", 7, None).await.err(),
            Some(Error::Os(ECONNREFUSED))
        );
        w.write(b"still here\n");
        w.drain().await.unwrap();
        assert_eq!(r.readline().await.unwrap(), b"still here\n");
    });
}

#[test]
fn embedded_io_traits() {
    use embedded_io_async::{BufRead, Read, Write};
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let _srv = b.start_server(echo, "", 7, 1, None).await.unwrap();
        let (mut r, mut w) = a.open_connection("10.0.0.2", 7, None).await.unwrap();
        w.write_all(b"line one\nline two\n").await.unwrap();
        w.flush().await.unwrap();
        let mut buf = [0u8; 9];
        r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"line one\n");
        let got = r.fill_buf().await.unwrap().to_vec();
        assert!(!got.is_empty() && b"line two\n".starts_with(&got));
        let n = got.len();
        r.consume(n);
        let mut rest = vec![0u8; 9 - n];
        r.read_exact(&mut rest).await.unwrap();
        assert_eq!([got, rest].concat(), b"line two\n");
    });
}

#[test]
fn one_mib_through_ten_percent_loss_and_reorder_on_virtual_time() {
    // The loop jumps its clock to the next deadline whenever no task is ready, so smoltcp's
    // retransmission timeouts (1 s minimum, doubling) cost no wall time.
    get_event_loop().use_virtual_time(true);
    let (stats, virtual_ms) = run(3600, async {
        let faults = LinkFaults {
            loss_per_mille: 100,
            reorder_per_mille: 100,
            seed: 42,
        };
        let (a, b, ctl) = stacks(faults, |c, _| {
            c.tcp_rx_buffer = 16 * 1024;
            c.tcp_tx_buffer = 16 * 1024;
            c.connect_timeout_ms = 600_000;
            c.linger_ms = 600_000;
        });
        let _srv = b.start_server(echo, "", 7, 1, None).await.unwrap();
        let data = Rc::new(pattern(1 << 20));
        let got = echo_roundtrip(&a, data.clone()).await;
        assert!(
            got == *data,
            "bytes differ after loss ({} of {})",
            got.len(),
            data.len()
        );
        (ctl.stats(), ticks_ms())
    });
    get_event_loop().use_virtual_time(false);
    assert!(
        stats.dropped > 100 && stats.reordered > 100,
        "faults were injected: {stats:?}"
    );
    eprintln!("loss test: {stats:?}, virtual time {:.1} s", virtual_ms as f64 / 1e3);
}

/// A tiny one-shot gate for the tests.
mod uasyncio_net_test_gate {
    use std::cell::{Cell, RefCell};
    use std::future::poll_fn;
    use std::task::{Poll, Waker};

    #[derive(Default)]
    pub struct Gate {
        open: Cell<bool>,
        waiters: RefCell<Vec<Waker>>,
    }

    impl Gate {
        pub fn open(&self) {
            self.open.set(true);
            for w in self.waiters.borrow_mut().drain(..) {
                w.wake();
            }
        }
        pub async fn wait(&self) {
            poll_fn(|cx| {
                if self.open.get() {
                    Poll::Ready(())
                } else {
                    self.waiters.borrow_mut().push(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await
        }
    }
}

#[test]
fn dropping_every_handle_sends_what_was_written_then_fin() {
    use uasyncio_net_test_gate::Gate;
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let got = Rc::new(RefCell::new(None));
        let done = Rc::new(Gate::default());
        let (g2, d2) = (got.clone(), done.clone());
        let _srv = b
            .start_server(
                move |r: Stream, _w: Stream| {
                    let (g2, d2) = (g2.clone(), d2.clone());
                    async move {
                        // Ends at the client's FIN: every byte before it, then b"".
                        *g2.borrow_mut() = Some(r.read(-1).await);
                        d2.open();
                        Ok(())
                    }
                },
                "",
                86,
                1,
                None,
            )
            .await
            .unwrap();
        {
            let (_r, w) = a.open_connection("10.0.0.2", 86, None).await.unwrap();
            w.write(&[b'a'; 1000]);
            // No drain, no close: both handles are dropped here.
        }
        done.wait().await;
        let got = got.borrow_mut().take().unwrap().unwrap();
        assert_eq!(got, vec![b'a'; 1000], "the server got every written byte, then FIN");
    });
}

#[test]
fn after_shutdown_streams_fail_with_enetdown_instead_of_hanging() {
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let (_srv, r, w) = served(&a, &b, 87, echo).await;
        w.write(b"before\n");
        w.drain().await.unwrap();
        // Wait until the echo is in `a`'s socket: it stays readable after the shutdown.
        let mut first = r.read(1).await.unwrap();
        assert_eq!(first, b"b");
        a.shutdown();
        first.extend(r.readline().await.unwrap());
        assert_eq!(first, b"before\n", "bytes received before the shutdown are read first");
        assert_eq!(r.readline().await.err(), Some(Error::Os(ENETDOWN)));
        w.write(b"after\n");
        assert_eq!(w.drain().await.err(), Some(Error::Os(ENETDOWN)));
        assert_eq!(
            a.open_connection("10.0.0.2", 87, None).await.err(),
            Some(Error::Os(ENETDOWN))
        );
        assert_eq!(
            a.start_server(echo, "", 88, 1, None).await.err(),
            Some(Error::Os(ENETDOWN))
        );
        assert_eq!(a.resolve("echo.test").await.err(), Some(Error::Os(ENETDOWN)));
        a.shutdown(); // idempotent
    });
}

#[test]
fn a_zero_buffer_size_or_timeout_is_refused_naming_the_field() {
    run(20, async {
        type Set = fn(&mut StackConfig);
        // With a timeout of 0 every connect (or lookup) timed out at once, peer or not.
        let cases: [(&str, Set); 6] = [
            ("tcp_rx_buffer", |c| c.tcp_rx_buffer = 0),
            ("tcp_tx_buffer", |c| c.tcp_tx_buffer = 0),
            ("udp_rx_buffer", |c| c.udp_rx_buffer = 0),
            ("udp_tx_buffer", |c| c.udp_tx_buffer = 0),
            ("connect_timeout_ms", |c| c.connect_timeout_ms = 0),
            ("dns_timeout_ms", |c| c.dns_timeout_ms = 0),
        ];
        for (field, set) in cases {
            let mut c = cfg(9, A);
            set(&mut c);
            let (d, _, _) = pair(LinkFaults::default());
            match Stack::new(d, c) {
                Err(Error::Value(m)) => assert!(m.contains(&format!("StackConfig::{field} is 0")), "{field}: {m}"),
                Err(e) => panic!("{field}: {e}"),
                Ok(_) => panic!("{field} = 0 accepted"),
            }
        }
        // No UDP sockets at all: their buffer sizes do not matter.
        let mut c = cfg(9, A);
        c.max_udp_sockets = 0;
        c.udp_rx_buffer = 0;
        c.udp_tx_buffer = 0;
        let (d, _, _) = pair(LinkFaults::default());
        assert!(Stack::new(d, c).is_ok());
    });
}

#[test]
fn a_tcp_receive_buffer_over_one_gib_is_refused() {
    // smoltcp panics when it makes a socket with a larger buffer (at the first connect).
    run(20, async {
        let mut c = cfg(9, A);
        c.tcp_rx_buffer = (1 << 30) + 1;
        let (d, _, _) = pair(LinkFaults::default());
        match Stack::new(d, c) {
            Err(Error::Value(m)) => assert!(m.contains("StackConfig::tcp_rx_buffer is over 1 GiB"), "{m}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a tcp_rx_buffer of 1 GiB + 1 accepted"),
        }
        let mut c = cfg(9, A);
        c.tcp_rx_buffer = 1 << 30;
        let (d, _, _) = pair(LinkFaults::default());
        assert!(Stack::new(d, c).is_ok(), "1 GiB is the largest window, and allowed");
    });
}

/// A pair device that reports another MTU (the pair itself carries frames of any size).
struct Mtu(uasyncio_net::device::pair::PairDevice, usize);

impl smoltcp::phy::Device for Mtu {
    type RxToken<'a> = <uasyncio_net::device::pair::PairDevice as smoltcp::phy::Device>::RxToken<'a>;
    type TxToken<'a> = <uasyncio_net::device::pair::PairDevice as smoltcp::phy::Device>::TxToken<'a>;
    fn receive(&mut self, t: smoltcp::time::Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.0.receive(t)
    }
    fn transmit(&mut self, t: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        self.0.transmit(t)
    }
    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        let mut c = self.0.capabilities();
        c.max_transmission_unit = self.1;
        c
    }
}

impl uasyncio_net::device::NetDevice for Mtu {
    fn poll_rx_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.0.poll_rx_ready(cx)
    }
}

#[test]
fn a_device_mtu_outside_what_ipv4_carries_is_refused() {
    // Below its 14-byte header smoltcp's IP MTU of an Ethernet device underflowed; below 40
    // bytes of IP MTU its TCP segment size did (at the first connect); above 65,535 its
    // 16-bit IPv4 total length wrapped (a 65,510-byte UDP datagram overflowed).
    run(20, async {
        for frame in [0, 10, 14, 20 + 14, 67 + 14, 65_536 + 14, 100_000] {
            let (d, _, _) = pair(LinkFaults::default());
            match Stack::new(Mtu(d, frame), cfg(1, A)) {
                Err(Error::Value(m)) if frame < 100 => {
                    assert!(m.contains("MTU leaves less than 68 bytes"), "{frame}: {m}")
                }
                Err(Error::Value(m)) => assert!(m.contains("MTU leaves more than 65,535 bytes"), "{frame}: {m}"),
                Err(e) => panic!("{frame}: {e}"),
                Ok(_) => panic!("a frame MTU of {frame} accepted"),
            }
        }
        // RFC 791's smallest datagram, 68 bytes: segments of 28 bytes, and they carry data.
        let (da, db, _) = pair(LinkFaults::default());
        let a = Stack::new(Mtu(da, 68 + 14), cfg(1, A)).unwrap();
        let b = Stack::new(Mtu(db, 68 + 14), cfg(2, B)).unwrap();
        let _srv = b.start_server(echo, "", 7, 2, None).await.unwrap();
        let data = Rc::new((0..1000).map(|i| i as u8).collect::<Vec<u8>>());
        assert_eq!(echo_roundtrip(&a, data.clone()).await, *data);
        // The largest: a UDP datagram of 65,507 bytes fills it; one more byte is EMSGSIZE.
        let (da, db, _) = pair(LinkFaults::default());
        let big = |c: &mut StackConfig| {
            c.udp_tx_buffer = 128 * 1024;
            c.udp_rx_buffer = 128 * 1024;
        };
        let (mut ca, mut cb) = (cfg(1, A), cfg(2, B));
        big(&mut ca);
        big(&mut cb);
        let a = Stack::new(Mtu(da, 65_535 + 14), ca).unwrap();
        let b = Stack::new(Mtu(db, 65_535 + 14), cb).unwrap();
        let tx = uasyncio_net::UdpSocket::bind(&a, "0.0.0.0:0".parse().unwrap()).unwrap();
        let rx = uasyncio_net::UdpSocket::bind(&b, "0.0.0.0:9".parse().unwrap()).unwrap();
        let to: SocketAddr = "10.0.0.2:9".parse().unwrap();
        assert_eq!(tx.send_to(&vec![0x55; 65_508], to).await, Err(Error::Os(EMSGSIZE)));
        assert_eq!(tx.send_to(&vec![0x55; 65_507], to).await, Ok(65_507));
        let mut buf = vec![0; 70_000];
        let (n, _) = rx.recv_from(&mut buf).await.unwrap();
        assert_eq!(n, 65_507);
        assert!(buf[..n].iter().all(|&b| b == 0x55));
    });
}

#[test]
fn a_zero_keepalive_or_peer_timeout_is_a_value_error_not_a_reset() {
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let (_srv, r, w) = served(&a, &b, 89, echo).await;
        for (keepalive, timeout) in [(Some(0), None), (None, Some(0)), (Some(0), Some(0))] {
            match r.set_keepalive(keepalive, timeout) {
                Err(Error::Value(m)) => assert!(m.contains("None to turn it off"), "{m}"),
                other => panic!("{keepalive:?}, {timeout:?}: {other:?}"),
            }
        }
        // The connection is untouched.
        w.write(b"still alive\n");
        w.drain().await.unwrap();
        assert_eq!(r.readline().await.unwrap(), b"still alive\n");
        r.set_keepalive(Some(1_000), None).unwrap();
        r.set_keepalive(None, None).unwrap();
    });
}

#[test]
fn a_malformed_name_is_a_value_error_before_any_lookup() {
    run(20, async {
        // No DNS server and, for the second stack, no address: neither is reached.
        let (a, _b, _) = stacks(LinkFaults::default(), |_, _| {});
        let (d, _, _) = pair(LinkFaults::default());
        let mut c = StackConfig::with_dhcp([0x02, 0, 0, 0, 0, 9]);
        c.random_seed = 9;
        let unaddressed = Stack::new(d, c).unwrap();
        let long_label = "a".repeat(64);
        for host in [
            "",
            "10.0.0.300",
            " 10.0.0.1",
            "10.0.0",
            "a b",
            "-bad-",
            "a..b",
            ".a",
            long_label.as_str(),
            "host.123",
        ] {
            for stack in [&a, &unaddressed] {
                match stack.resolve(host).await {
                    Err(Error::Value(m)) => assert!(m.contains("invalid host name"), "{host:?}: {m}"),
                    other => panic!("{host:?}: {other:?}"),
                }
                match stack.open_connection(host, 7, None).await {
                    Err(Error::Value(m)) => assert!(m.contains("invalid host name"), "{host:?}: {m}"),
                    other => panic!("{host:?}: {:?}", other.err()),
                }
            }
        }
        // Well-formed names get past the check (to the missing DNS server).
        for host in ["echo.test", "echo.test.", "a-b.c_d.lan", "x1"] {
            assert!(matches!(a.resolve(host).await, Err(Error::Runtime(_))), "{host}");
        }
        assert_eq!(
            unaddressed.resolve("echo.test").await.err(),
            Some(Error::Os(ENETUNREACH))
        );
    });
}

#[test]
fn name_lookup_errors_print_their_errno_names() {
    assert_eq!(Error::Os(EAI_NONAME).to_string(), "OSError: [Errno -2] EAI_NONAME");
    assert_eq!(Error::Os(EAI_AGAIN).to_string(), "OSError: [Errno -3] EAI_AGAIN");
}

#[test]
fn a_connect_that_times_out_or_is_cancelled_frees_its_slot_at_once() {
    // Virtual time: the timeouts below cost no wall time and do not race the machine.
    get_event_loop().use_virtual_time(true);
    run(60, async {
        let (a, b, _) = stacks(LinkFaults::default(), |c, client| {
            if client {
                c.max_sockets = 1;
                c.connect_timeout_ms = 300;
            }
        });
        let _srv = b.start_server(echo, "", 7, 1, None).await.unwrap();
        // Learn B's Ethernet address first: smoltcp sends no ARP request for a second after
        // the unanswered ones for 10.0.0.77 below.
        assert_eq!(
            a.open_connection("10.0.0.2", 9, None).await.err(),
            Some(Error::Os(ECONNREFUSED))
        );
        // Timed out (nobody answers the ARP for 10.0.0.77, so no RST could ever go out).
        assert_eq!(
            a.open_connection("10.0.0.77", 9, None).await.err(),
            Some(Error::Os(ETIMEDOUT))
        );
        assert_eq!(a.stats().tcp_sockets, 0, "freed at once: {:?}", a.stats());
        // Cancelled (wait_for's timeout cancels it; it could never complete).
        let a2 = a.clone();
        assert_eq!(
            wait_for_ms(async move { a2.open_connection("10.0.0.77", 9, None).await }, 50)
                .await
                .err(),
            Some(Error::Timeout)
        );
        assert_eq!(a.stats().tcp_sockets, 0, "freed at once: {:?}", a.stats());
        // Dropped without a cancel.
        {
            use std::future::Future as _;
            let a3 = a.clone();
            let mut f = Box::pin(async move { a3.open_connection("10.0.0.77", 9, None).await });
            // Polled once (the SYN is queued), then dropped.
            let first = std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx).is_pending()));
            assert!(first.await);
            assert_eq!(a.stats().tcp_sockets, 1);
        }
        assert_eq!(a.stats().tcp_sockets, 0, "freed at once: {:?}", a.stats());
        // The one slot is free for the next connect.
        let (r, w) = a.open_connection("10.0.0.2", 7, None).await.unwrap();
        w.write(b"slot\n");
        w.drain().await.unwrap();
        assert_eq!(r.readline().await.unwrap(), b"slot\n");
    });
    get_event_loop().use_virtual_time(false);
}

#[test]
fn a_zero_send_timeout_is_a_value_error_not_a_reset() {
    run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let (_srv, _r, w) = served(&a, &b, 90, |r: Stream, _w: Stream| async move {
            while !r.read(4096).await?.is_empty() {}
            Ok(())
        })
        .await;
        match w.set_send_timeout_ms(Some(0)) {
            Err(Error::Value(m)) => assert!(m.contains("None to wait without limit"), "{m}"),
            other => panic!("Some(0) accepted: {other:?}"),
        }
        // The timeout is unchanged: a drain larger than both windows goes through (with 0 it
        // timed out and reset the connection at the first wait for an ACK).
        w.write(&pattern(64 * 1024));
        w.drain().await.unwrap();
        w.set_send_timeout_ms(None).unwrap();
        w.set_send_timeout_ms(Some(1)).unwrap();
    });
}

/// `RuntimeError` naming the dropped driver.
fn driver_gone(what: &str, e: Option<Error>) {
    match e {
        Some(Error::Runtime(m)) => assert!(
            m.contains("driver task is gone") && m.contains("new_event_loop"),
            "{what}: {m}"
        ),
        other => panic!("{what}: expected a RuntimeError about the driver, got {other:?}"),
    }
}

#[test]
fn a_stack_whose_loop_was_replaced_fails_at_once_instead_of_hanging() {
    let (a, srv, r, w, u) = run(20, async {
        let (a, b, _) = stacks(LinkFaults::default(), |_, _| {});
        let (srv, r, w) = served(&a, &b, 91, echo).await;
        w.write(b"x\n");
        w.drain().await.unwrap();
        assert_eq!(r.readline().await.unwrap(), b"x\n");
        let u = a.udp_bind("0.0.0.0:0".parse().unwrap()).unwrap();
        (a, srv, r, w, u)
    });
    // Drops every task of the old loop: both drivers, the accept task, the echo callback.
    uasyncio::new_event_loop().unwrap();
    run(20, async move {
        driver_gone("connect", a.open_connection("10.0.0.2", 91, None).await.err());
        driver_gone("readline", r.readline().await.err());
        w.write(b"y\n");
        driver_gone("drain", w.drain().await.err());
        driver_gone("start_server", a.start_server(echo, "", 92, 1, None).await.err());
        driver_gone("resolve", a.resolve("echo.test").await.err());
        let mut buf = [0u8; 8];
        driver_gone("udp recv", u.recv(&mut buf).await.err());
        driver_gone("udp send", u.send_to(b"z", "10.0.0.2:9".parse().unwrap()).await.err());
        srv.close();
        driver_gone("server wait_closed", srv.wait_closed().await.err());
    });
}
