//! DHCP leases from a scripted server on the in-memory link: what the stack does with the
//! options a server sends. smoltcp's DHCP client checks the leased address, the mask and the
//! DNS servers, not the router; a router that is not a host address made its neighbour cache
//! assert (`protocol_addr.is_unicast()`) at the first packet off the leased network, or at
//! the lease's renewal with no traffic at all (D1 in `net/ROBUSTNESS.md`).

#[path = "common/vtime.rs"]
mod vtime;
use std::net::Ipv4Addr;

use smoltcp::phy::{self, ChecksumCapabilities};
use smoltcp::time::Instant;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol,
    Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};
use uasyncio::{create_task, sleep_ms, Error};
use uasyncio_net::device::pair::{pair, LinkFaults, PairDevice};
use uasyncio_net::rt::errno::*;
use uasyncio_net::{Stack, StackConfig};
use vtime::run;

const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x99]);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const LEASED: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 50);

/// A DHCP server at `server_ip` on the other end of the link: answers DISCOVER with OFFER
/// and REQUEST with ACK, leasing `LEASED`/24 for `lease_s` with `router`; ignores the rest.
async fn dhcp_server(mut dev: PairDevice, router: Ipv4Addr, server_ip: Ipv4Addr, lease_s: u32) {
    let caps = ChecksumCapabilities::default();
    loop {
        let frame = phy::Device::receive(&mut dev, Instant::ZERO)
            .map(|(rx, _)| phy::RxToken::consume(rx, |b: &[u8]| b.to_vec()));
        let Some(frame) = frame else {
            let _ = sleep_ms(1).await;
            continue;
        };
        let Some(req) = dhcp_request(&frame) else { continue };
        let message_type = match req.0 {
            DhcpMessageType::Discover => DhcpMessageType::Offer,
            DhcpMessageType::Request => DhcpMessageType::Ack,
            _ => continue,
        };
        let reply = DhcpRepr {
            message_type,
            transaction_id: req.1,
            secs: 0,
            client_hardware_address: req.2,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: LEASED,
            server_ip,
            router: Some(router),
            subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(server_ip),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: Some(lease_s),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let dhcp_len = reply.buffer_len();
        let udp = UdpRepr {
            src_port: 67,
            dst_port: 68,
        };
        let ip = Ipv4Repr {
            src_addr: server_ip,
            dst_addr: Ipv4Addr::BROADCAST,
            next_header: IpProtocol::Udp,
            payload_len: udp.header_len() + dhcp_len,
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: SERVER_MAC,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut out = vec![0u8; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
        let mut f = EthernetFrame::new_unchecked(&mut out[..]);
        eth.emit(&mut f);
        let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
        ip.emit(&mut p, &caps);
        let mut u = UdpPacket::new_unchecked(p.payload_mut());
        let (src, dst) = (server_ip.into(), Ipv4Addr::BROADCAST.into());
        udp.emit(
            &mut u,
            &src,
            &dst,
            dhcp_len,
            |b| reply.emit(&mut DhcpPacket::new_unchecked(b)).unwrap(),
            &caps,
        );
        let tx = phy::Device::transmit(&mut dev, Instant::ZERO).expect("the pair's transmit token");
        phy::TxToken::consume(tx, out.len(), |b: &mut [u8]| b.copy_from_slice(&out));
    }
}

/// A DHCP client message in `frame`: its type, transaction id and hardware address.
fn dhcp_request(frame: &[u8]) -> Option<(DhcpMessageType, u32, EthernetAddress)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    (eth.ethertype() == EthernetProtocol::Ipv4).then_some(())?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    (ip.next_header() == IpProtocol::Udp).then_some(())?;
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    (udp.dst_port() == 67).then_some(())?;
    let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
    let r = DhcpRepr::parse(&dhcp).ok()?;
    Some((r.message_type, r.transaction_id, r.client_hardware_address))
}

/// A stack leasing from a server that sends `router`; started on the running loop.
fn leasing(router: Ipv4Addr, server_ip: Ipv4Addr, lease_s: u32) -> Stack {
    let (da, db, _) = pair(LinkFaults::default());
    let mut c = StackConfig::with_dhcp([0x02, 0, 0, 0, 0, 7]);
    c.random_seed = 77;
    c.connect_timeout_ms = 2_000;
    let stack = Stack::new(da, c).unwrap();
    drop(create_task(async move {
        dhcp_server(db, router, server_ip, lease_s).await;
        Ok(())
    }));
    stack
}

#[test]
fn a_dhcp_router_that_is_not_a_host_is_left_out() {
    for router in [
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(127, 0, 0, 1),
        LEASED,
    ] {
        run(60, async move {
            let stack = leasing(router, SERVER_IP, 3600);
            stack.wait_config_up().await.unwrap();
            assert_eq!(stack.ipv4_address(), Some(LEASED));
            // Off the leased network: no route, as with no router at all.
            let r = stack.open_connection("8.8.8.8", 80, None).await;
            assert_eq!(r.err(), Some(Error::Os(ENETUNREACH)), "router {router}");
        });
    }
}

#[test]
fn a_dhcp_router_that_is_a_host_is_the_default_route() {
    run(60, async {
        let stack = leasing(SERVER_IP, SERVER_IP, 3600);
        stack.wait_config_up().await.unwrap();
        // Routed to the router, which never answers ARP: the connect times out instead.
        let r = stack.open_connection("8.8.8.8", 80, None).await;
        assert_eq!(r.err(), Some(Error::Os(ETIMEDOUT)));
    });
}

#[test]
fn the_renewal_through_a_bogus_router_keeps_the_lease_without_a_panic() {
    // The server is off the leased network (172.16.0.1 leasing 192.168.1.50/24), so at T1
    // smoltcp unicasts the renewal to it, through the router if there were one.
    run(120, async {
        let stack = leasing(Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(172, 16, 0, 1), 20);
        stack.wait_config_up().await.unwrap();
        // Past T1 (10 s) and T2 (17.5 s).
        let _ = sleep_ms(30_000).await;
        assert!(stack.ipv4_address().is_some());
    });
}
