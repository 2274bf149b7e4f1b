//! A hostile PPP peer: arbitrary bytes and frames from the network side of the serial line
//! into `PppLink::run`, beside (or instead of) the tests' well-behaved peer
//! (`net/tests/common/ppp_peer.rs`), on virtual time. Then the same link is run again
//! against a well-behaved peer, which must bring it up and carry TCP.
//!
//! Input: byte 0 flags (bit 0: the well-behaved peer is mute, so the input is the only
//! peer; bit 1: LCP keepalive on; bit 2: the peer asks for PAP; bit 3: the peer drops the
//! first LCP Configure-Request; bit 4: the first run ends by a cancel, else by a hang-up).
//! Then chunks `[delay / 10 ms][kind][len][bytes]`, each put on the line between the
//! peer's frames: kind 0 raw bytes, 1 an HDLC frame (valid FCS) of protocol `bytes[0..2]`
//! and payload `bytes[2..]`, 2 an LCP frame of `bytes`, 3 an IPCP frame of `bytes`, 4 an
//! IPv4 frame of `bytes` (others: raw).
//!
//! Invariants (fuzz/README.md): no panic; while the input plays, the heap never grows by
//! more than `HEAP_LIMIT` plus a few times the input; after it, a hang-up or a cancel ends
//! `run` within `END_LIMIT_MS`; then the same link and stack come up again against the
//! well-behaved peer (IPCP's address) and carry a TCP echo, within bounded virtual time.
#![no_main]

#[path = "../../net/tests/common/ppp_peer.rs"]
#[allow(dead_code)]
mod ppp_peer;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use ppp_peer::{hdlc, pipe, Peer, PeerState, CLIENT_IP, PEER_IP};
use uasyncio::{create_task, get_event_loop, new_event_loop, sleep_ms, wait_for_ms};
use uasyncio_net::ppp::{ppp_stack, PppConfig, PppEnd};
use uasyncio_net::{StackConfig, Stream};

/// The system allocator, keeping the live and the peak heap size.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: as above.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
            let now = LIVE.fetch_add(new, Ordering::Relaxed) + new;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap growth allowed while the hostile input plays (three stacks with their sockets and
/// buffers, the link's ~7 KB, the line's queues), besides four times the input's size.
const HEAP_LIMIT: usize = 1 << 20;
/// Virtual time a hang-up or a cancel may take to end `run`.
const END_LIMIT_MS: u32 = 10_000;
/// Virtual time the second run may take to come up and echo.
const UP_LIMIT_MS: u32 = 60_000;
/// Virtual seconds any input may take in all before it counts as a hang.
const HANG_LIMIT_S: u32 = 3600;

/// `FUZZ_DEBUG=1` prints what each run did (for seeds and crash triage).
fn debug() -> bool {
    std::env::var_os("FUZZ_DEBUG").is_some()
}

const LCP: u16 = 0xC021;
const IPCP: u16 = 0x8021;
const IPV4: u16 = 0x0021;

fn chunks(mut rest: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    while let [d, k, l, r @ ..] = rest {
        let n = usize::from(*l).min(r.len());
        let b = &r[..n];
        rest = &r[n..];
        let bytes = match k {
            1 if b.len() >= 2 => hdlc(u16::from_be_bytes([b[0], b[1]]), &b[2..]),
            2 => hdlc(LCP, b),
            3 => hdlc(IPCP, b),
            4 => hdlc(IPV4, b),
            _ => b.to_vec(),
        };
        out.push((u32::from(*d) * 10, bytes));
    }
    out
}

fn config(flags: u8) -> PppConfig {
    let mut c = PppConfig {
        restart_ms: 1000,
        max_configure: 5,
        ..PppConfig::default()
    };
    if flags & 2 != 0 {
        c.echo_interval_ms = 5000;
        c.echo_failures = 2;
    }
    c.username = Some("user".into());
    c.password = Some("pass".into());
    c
}

async fn echo(r: Stream, w: Stream) -> uasyncio::Result<()> {
    loop {
        let d = r.read(1024).await?;
        if d.is_empty() {
            break;
        }
        w.write(&d);
        w.drain().await?;
    }
    w.wait_closed().await
}

async fn scenario(flags: u8, input: Vec<(u32, Vec<u8>)>, input_len: usize) {
    let mut sc = StackConfig::for_ip_link();
    sc.random_seed = 0xC11E_0001;
    let (stack, link) = ppp_stack(sc, config(flags)).expect("a valid configuration");

    // The hostile run.
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let (mut end, line) = pipe();
    let mut st = PeerState::default();
    st.mute = flags & 1 != 0;
    st.pap = (flags & 4 != 0).then(Vec::new);
    st.drop_lcp_confreq = u32::from(flags >> 3 & 1);
    let peer = Peer::start(line, st);
    let mut l = link.clone();
    let run = create_task(async move { Ok(l.run(&mut end).await) });
    for (delay, bytes) in input {
        sleep_ms(delay).await.expect("not cancelled");
        peer.inject(&bytes);
    }
    // Let timers (restarts, echoes, TCP) act on what the input left.
    sleep_ms(5000).await.expect("not cancelled");
    let grew = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    if debug() {
        eprintln!(
            "after the input: up {} addr {:?} heap +{grew} {:?}",
            link.is_up(),
            link.ipv4_address(),
            link.stats()
        );
    }
    assert!(
        grew <= HEAP_LIMIT + 4 * input_len,
        "the heap grew by {grew} bytes during an input of {input_len} bytes"
    );
    if flags & 16 != 0 {
        let _ = run.cancel();
    } else {
        peer.hang_up();
    }
    let ended = wait_for_ms(async { Ok(run.await) }, END_LIMIT_MS).await;
    if debug() {
        eprintln!("first run: {ended:?}");
    }
    assert!(
        ended.is_ok(),
        "run did not end within {END_LIMIT_MS} ms of the hang-up or cancel"
    );
    if flags & 16 == 0 {
        if let Ok(Ok(e)) = &ended {
            assert!(!matches!(e, PppEnd::Cancelled), "a hang-up ended run as cancelled");
        }
    }
    assert!(!link.is_up(), "the link is up after run ended");
    assert_eq!(stack.ipv4_address(), None, "the stack keeps an address after run ended");
    drop(peer);

    // The same link against a well-behaved peer.
    let (mut end, line) = pipe();
    let peer = Peer::start(line, PeerState::default());
    let mut l = link.clone();
    let run = create_task(async move { Ok(l.run(&mut end).await) });
    let s2 = stack.clone();
    let peer_stack = peer.stack.clone();
    let usable = wait_for_ms(
        async move {
            s2.wait_config_up().await?;
            let _srv = peer_stack.start_server(echo, "0.0.0.0", 7, 1, None).await?;
            let (r, w) = s2.open_connection(&PEER_IP.to_string(), 7, None).await?;
            let data: Vec<u8> = (0..600u32).map(|i| (i * 7) as u8).collect();
            w.write(&data);
            w.drain().await?;
            let mut got = Vec::new();
            while got.len() < data.len() {
                let d = r.read(1024).await?;
                if d.is_empty() {
                    break;
                }
                got.extend_from_slice(&d);
            }
            assert!(got == data, "the echo differs after the hostile run");
            w.close();
            Ok(())
        },
        UP_LIMIT_MS,
    )
    .await;
    if let Err(e) = usable {
        panic!("the link did not come back usable after the hostile run: {e}");
    }
    assert_eq!(link.ipv4_address(), Some(CLIENT_IP));
    if debug() {
        eprintln!("second run: up and echoed; {:?}", link.stats());
    }
    peer.hang_up();
    let ended = wait_for_ms(async { Ok(run.await) }, END_LIMIT_MS).await;
    assert!(ended.is_ok(), "the second run did not end after a hang-up");
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let input = chunks(rest);
    let input_len = data.len();
    new_event_loop().expect("no loop runs here");
    get_event_loop().use_virtual_time(true);
    let r = uasyncio::run(async move {
        wait_for_ms(
            async move {
                scenario(flags, input, input_len).await;
                Ok(())
            },
            HANG_LIMIT_S * 1000,
        )
        .await
    });
    get_event_loop().use_virtual_time(false);
    if let Err(e) = r {
        panic!("hang: no end within {HANG_LIMIT_S} virtual seconds ({e})");
    }
});
