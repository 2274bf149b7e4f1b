//! Soak run of uasyncio and uasyncio-net on the host (`scripts/soak.sh [minutes]`).
//!
//! ```text
//! uasyncio-soak [--seconds N] [--sample-secs N] [--tap tap0 --peer 192.168.69.100:7000]
//!               [--ip 192.168.69.1] [--tcp-workers N] [--churn-workers N]
//! ```
//! For the whole duration, at the same time:
//! - **task churn**: workers on the loop spawn and cancel tasks in a mix of patterns
//!   (`gather`, `cancel` of sleeping and event-waiting tasks, `wait_for` that times out and
//!   that completes, `gather(..).return_exceptions()` with a failing and a third-party
//!   cancelled child, a cancel forwarded through an awaited task); each pattern checks its
//!   exact outcome;
//! - **cross-thread flags**: three OS threads set two `ThreadSafeFlag`s (two threads share
//!   flag A, whose waiter awaits it plainly; one thread sets flag B, whose waiter awaits it
//!   under a short `wait_for`, so it is cancelled over and over while sets arrive);
//! - **TCP echo over TAP** (with `--tap`): workers connect to a Linux echo peer, send random
//!   blocks, read them back (a quarter of the reads under a 0–1 ms `wait_for`, so reads are
//!   cancelled mid-way), check every byte, then close or abort;
//! - **samples** every `--sample-secs`: RSS (`VmRSS` of `/proc/self/status`), live task cells
//!   (`uasyncio::diagnostics::allocated_task_cells`), operations done and failed, flag sets, TCP sockets.
//!
//! # Lost wake-ups, precisely
//! Each flag has a counter `published`: a setter increments it (getting `k`), then calls
//! `set()`, which is set number `k`. After every returned `wait()` the waiter task reads
//! `published` into `observed`. Sets and wakes differ when sets coalesce (a flag is
//! binary); that is not a loss. A loss is a set that no wake answers:
//! - flag A (two threads, racing each other): the threads set in rounds; after every set of
//!   a round has returned, nobody sets again until a wake has consumed the flag. A round
//!   whose flag is still set after the hang guard is a **lost** wake-up (the waiter sleeps
//!   on a set flag, and no later set could have rescued it);
//! - flag B (one thread): after set `k` the thread waits until `observed >= k` (a wake that
//!   began after set `k` returned). A set not seen within the hang guard is **lost**: this
//!   catches a set consumed by a waiter that was cancelled (by its `wait_for`) without
//!   waking. (A waiter asleep on a set flag would be rescued by its next `wait_for` round
//!   here; flag A is the check for that.)
//!
//! The guard is 30 s and is not a speed check: a healthy round takes microseconds; it only
//! keeps a lost wake from hanging the run. At the end `published - observed` of each flag
//! (0 when the last set of each was answered) is added to the count.
//!
//! # Pass/fail
//! Exit 0 only if: no operation failed, no wake was lost, the live task count after the loop
//! is back to its value before it, no TCP socket is left, and no RSS sample after warm-up
//! (the first fifth of the run, at most 5 minutes) exceeds the warm-up sample by more than
//! max(1 MiB, 10 %). Nothing is judged by speed.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use uasyncio::{
    create_task, diagnostics, gather, new_event_loop, run, sleep_ms, wait_for_ms, Error, Event, Result, ThreadSafeFlag,
};
use uasyncio_net::device::tap::TapDevice;
use uasyncio_net::{Stack, StackConfig};

/// Hang guard of a flag round (see the module doc): a set not seen in this time is lost.
const FLAG_GUARD: Duration = Duration::from_secs(30);
/// Allowed RSS growth after warm-up: the larger of these.
const RSS_SLACK_KIB: u64 = 1024;
const RSS_SLACK_PERCENT: u64 = 10;

#[derive(Clone)]
struct Args {
    seconds: u64,
    sample_secs: u64,
    tap: Option<String>,
    ip: Ipv4Addr,
    peer: (Ipv4Addr, u16),
    tcp_workers: usize,
    churn_workers: usize,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut a = Args {
        seconds: 3600,
        sample_secs: 10,
        tap: None,
        ip: Ipv4Addr::new(192, 168, 69, 1),
        peer: (Ipv4Addr::new(192, 168, 69, 100), 7000),
        tcp_workers: 3,
        churn_workers: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {val}: {e}");
        match flag.as_str() {
            "--seconds" => a.seconds = val.parse().map_err(|e| bad(&e))?,
            "--sample-secs" => a.sample_secs = val.parse::<u64>().map_err(|e| bad(&e))?.max(1),
            "--tap" => a.tap = Some(val),
            "--ip" => a.ip = val.parse().map_err(|e| bad(&e))?,
            "--peer" => {
                let (h, p) = val.split_once(':').ok_or_else(|| bad(&"expected ADDR:PORT"))?;
                a.peer = (h.parse().map_err(|e| bad(&e))?, p.parse().map_err(|e| bad(&e))?);
            }
            "--tcp-workers" => a.tcp_workers = val.parse().map_err(|e| bad(&e))?,
            "--churn-workers" => a.churn_workers = val.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

/// Resident set size of this process, KiB (`VmRSS`), or 0 if unreadable.
fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// xorshift64*: cheap, deterministic per seed.
struct Rng(Cell<u64>);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(Cell::new(seed | 1))
    }
    fn next(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Operation kinds, counted done and failed.
const KINDS: [&str; 9] = [
    "gather",
    "cancel_sleepers",
    "cancel_event_waiters",
    "wait_for_timeout",
    "wait_for_ok",
    "gather_mixed",
    "nested_cancel",
    "tcp_round",
    "tcp_connection",
];
const TCP_ROUND: usize = 7;
const TCP_CONN: usize = 8;

/// Loop-side counters.
#[derive(Default)]
struct Counts {
    done: [Cell<u64>; KINDS.len()],
    failed: [Cell<u64>; KINDS.len()],
    first_errors: RefCell<Vec<String>>,
    tcp_bytes: Cell<u64>,
    tcp_cancelled_reads: Cell<u64>,
    tcp_aborts: Cell<u64>,
    flag_b_timeouts: Cell<u64>,
    stop: Cell<bool>,
}

impl Counts {
    fn record(&self, kind: usize, r: std::result::Result<(), String>) {
        match r {
            Ok(()) => self.done[kind].set(self.done[kind].get() + 1),
            Err(e) => {
                self.failed[kind].set(self.failed[kind].get() + 1);
                let mut fe = self.first_errors.borrow_mut();
                if fe.len() < 20 {
                    eprintln!("soak: {} failed: {e}", KINDS[kind]);
                    fe.push(format!("{}: {e}", KINDS[kind]));
                }
            }
        }
    }
    fn total_done(&self) -> u64 {
        self.done.iter().map(Cell::get).sum()
    }
    fn total_failed(&self) -> u64 {
        self.failed.iter().map(Cell::get).sum()
    }
}

fn expect<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> std::result::Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, expected {want:?}"))
    }
}

const HOUR_MS: u32 = 3_600_000;

type BoxFut<T> = Pin<Box<dyn Future<Output = Result<T>>>>;

/// One churn operation of kind `kind`; checks its exact outcome.
async fn churn_op(kind: usize, rng: &Rng) -> std::result::Result<(), String> {
    match kind {
        0 => {
            let n = 1 + rng.below(16) as u32;
            let delays: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
            let jobs = delays.into_iter().enumerate().map(|(i, d)| async move {
                sleep_ms(d).await?;
                Ok(i as u32)
            });
            expect(gather(jobs).await, Ok((0..n).collect()))
        }
        1 | 2 => {
            let n = 1 + rng.below(12);
            let ev = Rc::new(Event::new());
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let ev = ev.clone();
                    create_task(async move {
                        if kind == 1 {
                            sleep_ms(HOUR_MS).await
                        } else {
                            ev.wait().await
                        }
                    })
                })
                .collect();
            sleep_ms(rng.below(2) as u32).await.map_err(|e| e.to_string())?;
            for t in &tasks {
                expect(t.cancel(), Ok(true))?;
            }
            for t in tasks {
                expect(t.await, Err(Error::Cancelled))?;
            }
            Ok(())
        }
        3 => {
            let r = wait_for_ms(
                async {
                    sleep_ms(HOUR_MS).await?;
                    Ok(())
                },
                1 + rng.below(3) as u32,
            )
            .await;
            expect(r, Err(Error::Timeout))
        }
        4 => {
            let d = rng.below(2) as u32;
            let r = wait_for_ms(
                async move {
                    sleep_ms(d).await?;
                    Ok(7u32)
                },
                60_000,
            )
            .await;
            expect(r, Ok(7))
        }
        5 => {
            let long = create_task(async {
                sleep_ms(HOUR_MS).await?;
                Ok(2u32)
            });
            let target = long.task_ref();
            let canceller = create_task(async move {
                sleep_ms(1).await?;
                target.cancel()
            });
            let children: Vec<BoxFut<u32>> = vec![
                Box::pin(async { Ok(0u32) }),
                Box::pin(async {
                    sleep_ms(0).await?;
                    Err(Error::value("planted failure"))
                }),
                Box::pin(long),
            ];
            let out = gather(children).return_exceptions().await;
            expect(
                out,
                Ok(vec![Ok(0), Err(Error::value("planted failure")), Err(Error::Cancelled)]),
            )?;
            expect(canceller.await, Ok(true))
        }
        _ => {
            let outer = create_task(async {
                let inner = create_task(async {
                    sleep_ms(HOUR_MS).await?;
                    Ok(1u32)
                });
                inner.await
            });
            sleep_ms(rng.below(2) as u32).await.map_err(|e| e.to_string())?;
            expect(outer.cancel(), Ok(true))?;
            expect(outer.await, Err(Error::Cancelled))
        }
    }
}

async fn churn_worker(seed: u64, counts: Rc<Counts>) -> Result<()> {
    let rng = Rng::new(seed);
    while !counts.stop.get() {
        let kind = rng.below(7) as usize;
        let r = churn_op(kind, &rng).await;
        counts.record(kind, r);
    }
    Ok(())
}

/// One flag shared by setter threads and one waiter task.
struct FlagChannel {
    flag: ThreadSafeFlag,
    /// Sets begun (incremented before each `set()`).
    published: AtomicU64,
    /// Highest `published` value a returned wait has read.
    observed: Mutex<u64>,
    seen: Condvar,
    wakes: AtomicU64,
    lost: AtomicU64,
    /// Rounds of the shared flag (see `shared_setter_thread`).
    rounds: AtomicU64,
}

impl FlagChannel {
    fn new() -> Self {
        FlagChannel {
            flag: ThreadSafeFlag::new(),
            published: AtomicU64::new(0),
            observed: Mutex::new(0),
            seen: Condvar::new(),
            wakes: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            rounds: AtomicU64::new(0),
        }
    }

    /// Waiter side, after a wait returned: every set begun so far is seen.
    fn note_wake(&self) {
        let p = self.published.load(Ordering::SeqCst);
        self.wakes.fetch_add(1, Ordering::Relaxed);
        let mut o = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        if p > *o {
            *o = p;
        }
        self.seen.notify_all();
    }

    /// Setter side: wait until set `k` is seen; false if the hang guard ran out.
    fn wait_seen(&self, k: u64) -> bool {
        self.wait_until(|observed| observed >= k)
    }

    /// Setter side of the shared flag, once every set of the round has returned: wait until
    /// a wake consumed the flag; false if it was still set when the hang guard ran out.
    fn wait_consumed(&self) -> bool {
        self.wait_until(|_| !self.flag.is_set())
    }

    /// Waits on `seen` until `done(observed)`; false if the hang guard ran out first.
    fn wait_until(&self, done: impl Fn(u64) -> bool) -> bool {
        let deadline = Instant::now() + FLAG_GUARD;
        let mut o = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        while !done(*o) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            o = self
                .seen
                .wait_timeout(o, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn set_once(&self) -> u64 {
        let k = self.published.fetch_add(1, Ordering::SeqCst) + 1;
        self.flag.set();
        k
    }
}

fn setter_thread(ch: Arc<FlagChannel>, stop: Arc<AtomicBool>, seed: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rng = Rng::new(seed);
        while !stop.load(Ordering::Relaxed) {
            let mut k = ch.set_once();
            if rng.below(8) == 0 {
                ch.set_once();
                k = ch.set_once();
            }
            if !ch.wait_seen(k) {
                ch.lost.fetch_add(1, Ordering::SeqCst);
                eprintln!("soak: flag set {k} not seen within {FLAG_GUARD:?}: lost wake-up");
            }
            let pause = rng.below(300);
            if pause > 0 {
                std::thread::sleep(Duration::from_micros(pause));
            }
        }
    })
}

/// One of the two setters of flag A. Rounds: both threads pass a barrier, each sets the flag
/// (one time in eight three times in a row), both pass a second barrier (every set of the
/// round has returned), then each waits until a wake consumed the flag. Nobody sets again
/// before that, so a set whose wake is lost cannot be rescued by a later one: the flag stays
/// set and the round counts as lost when the hang guard runs out (counted by thread 0).
fn shared_setter_thread(
    ch: Arc<FlagChannel>,
    stop: Arc<AtomicBool>,
    rounds: Arc<(Barrier, AtomicBool)>,
    index: u64,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rng = Rng::new(0xA0 + index);
        let (barrier, go) = &*rounds;
        loop {
            // Both threads must agree on whether there is another round.
            if barrier.wait().is_leader() {
                go.store(!stop.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            barrier.wait();
            if !go.load(Ordering::Relaxed) {
                break;
            }
            ch.set_once();
            if rng.below(8) == 0 {
                ch.set_once();
                ch.set_once();
            }
            barrier.wait();
            let consumed = ch.wait_consumed();
            if index == 0 {
                ch.rounds.fetch_add(1, Ordering::Relaxed);
                if !consumed {
                    ch.lost.fetch_add(1, Ordering::SeqCst);
                    eprintln!("soak: flag A still set {FLAG_GUARD:?} after its round's sets: lost wake-up");
                }
            }
            let pause = rng.below(300);
            if pause > 0 {
                std::thread::sleep(Duration::from_micros(pause));
            }
        }
    })
}

/// Waiter of flag A: plain `wait()`, forever (cancelled at the end).
async fn waiter_plain(ch: Arc<FlagChannel>) -> Result<()> {
    loop {
        ch.flag.wait().await?;
        ch.note_wake();
    }
}

/// Waiter of flag B: `wait()` under a 1–20 ms `wait_for`, so it is cancelled again and again.
async fn waiter_wait_for(ch: Arc<FlagChannel>, counts: Rc<Counts>) -> Result<()> {
    let rng = Rng::new(0xF1A6);
    loop {
        let c = ch.clone();
        match wait_for_ms(async move { c.flag.wait().await }, 1 + rng.below(20) as u32).await {
            Ok(()) => ch.note_wake(),
            Err(Error::Timeout) => counts.flag_b_timeouts.set(counts.flag_b_timeouts.get() + 1),
            Err(e) => return Err(e),
        }
    }
}

/// One TCP connection: 1–8 echo rounds, then close (or, one time in eight, abort).
async fn tcp_connection(
    stack: &Stack,
    peer: (Ipv4Addr, u16),
    rng: &Rng,
    counts: &Counts,
) -> std::result::Result<(), String> {
    let s = stack
        .connect_addr(peer.0, peer.1)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = 1 + rng.below(48 * 1024) as usize;
        let base = rng.next();
        let data: Vec<u8> = (0..len).map(|i| (base >> (i % 8 * 8)) as u8 ^ i as u8).collect();
        let r = async {
            s.write(&data);
            s.drain().await.map_err(|e| format!("drain: {e}"))?;
            let mut got = Vec::with_capacity(len);
            while got.len() < len {
                let want = (len - got.len()) as isize;
                let part = if rng.below(4) == 0 {
                    let s2 = s.clone();
                    match wait_for_ms(async move { s2.read(want).await }, rng.below(2) as u32).await {
                        Ok(p) => p,
                        Err(Error::Timeout) => {
                            counts.tcp_cancelled_reads.set(counts.tcp_cancelled_reads.get() + 1);
                            continue;
                        }
                        Err(e) => return Err(format!("read under wait_for: {e}")),
                    }
                } else {
                    s.read(want).await.map_err(|e| format!("read: {e}"))?
                };
                if part.is_empty() {
                    return Err(format!("end of stream after {} of {len} bytes", got.len()));
                }
                got.extend_from_slice(&part);
            }
            if got != data {
                let at = got.iter().zip(&data).position(|(a, b)| a != b);
                return Err(format!("echo of {len} bytes differs (first difference at {at:?})"));
            }
            counts.tcp_bytes.set(counts.tcp_bytes.get() + len as u64);
            Ok(())
        }
        .await;
        let failed = r.is_err();
        counts.record(TCP_ROUND, r);
        if failed {
            s.abort();
            return Err("a round failed".into());
        }
    }
    if rng.below(8) == 0 {
        s.abort();
        counts.tcp_aborts.set(counts.tcp_aborts.get() + 1);
        Ok(())
    } else {
        s.wait_closed().await.map_err(|e| format!("wait_closed: {e}"))
    }
}

async fn tcp_worker(stack: Stack, peer: (Ipv4Addr, u16), seed: u64, counts: Rc<Counts>) -> Result<()> {
    let rng = Rng::new(seed);
    while !counts.stop.get() {
        let r = tcp_connection(&stack, peer, &rng, &counts).await;
        counts.record(TCP_CONN, r);
    }
    Ok(())
}

struct Sample {
    t: u64,
    rss: u64,
    live: usize,
}

struct Outcome {
    samples: Vec<Sample>,
    warm: Option<usize>,
    sockets_left: usize,
    net: bool,
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("uasyncio-soak: {e}");
            std::process::exit(2);
        }
    };
    let tap = match &args.tap {
        None => None,
        Some(name) => match TapDevice::open(name, 1500) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("uasyncio-soak: cannot open TAP {name}: {e} (root, and inside its namespace?)");
                std::process::exit(1);
            }
        },
    };
    let warm_secs = (args.seconds / 5).min(300);
    println!(
        "soak: {} s, warm-up {} s, sample every {} s, {} churn workers, {} TCP workers{}",
        args.seconds,
        warm_secs,
        args.sample_secs,
        args.churn_workers,
        if tap.is_some() { args.tcp_workers } else { 0 },
        if tap.is_some() { "" } else { " (no --tap: TCP part off)" }
    );

    let baseline_live = diagnostics::allocated_task_cells();
    let rss_start = rss_kib();
    let started = Instant::now();
    let counts = Rc::new(Counts::default());
    let stop_threads = Arc::new(AtomicBool::new(false));
    let flag_a = Arc::new(FlagChannel::new());
    let flag_b = Arc::new(FlagChannel::new());

    let c = counts.clone();
    let a = args.clone();
    let (fa, fb, st) = (flag_a.clone(), flag_b.clone(), stop_threads.clone());
    let out = run(async move {
        let stack = match tap {
            Some(tap) => {
                let mut cfg = StackConfig::with_static([0x02, 0, 0, 0, 0x50, 0x01], a.ip, 24);
                cfg.random_seed = u64::from(std::process::id()) ^ 0x50a4_0000;
                cfg.max_sockets = 4 * a.tcp_workers + 8;
                cfg.tcp_rx_buffer = 16 * 1024;
                cfg.tcp_tx_buffer = 16 * 1024;
                Some(Stack::new(tap, cfg)?)
            }
            None => None,
        };
        let waiter_a = create_task(waiter_plain(fa.clone()));
        let waiter_b = create_task(waiter_wait_for(fb.clone(), c.clone()));
        sleep_ms(0).await?;
        let rounds = Arc::new((Barrier::new(2), AtomicBool::new(false)));
        let setters = vec![
            shared_setter_thread(fa.clone(), st.clone(), rounds.clone(), 0),
            shared_setter_thread(fa.clone(), st.clone(), rounds.clone(), 1),
            setter_thread(fb.clone(), st.clone(), 0xB1),
        ];
        let mut workers = Vec::new();
        for i in 0..a.churn_workers {
            workers.push(create_task(churn_worker(0xC0DE + i as u64, c.clone())));
        }
        if let Some(stack) = &stack {
            for i in 0..a.tcp_workers {
                workers.push(create_task(tcp_worker(
                    stack.clone(),
                    a.peer,
                    0x7C9 + i as u64,
                    c.clone(),
                )));
            }
        }

        let mut samples = Vec::new();
        let mut warm = None;
        let sample = |samples: &mut Vec<Sample>| {
            let s = Sample {
                t: started.elapsed().as_secs(),
                rss: rss_kib(),
                live: diagnostics::allocated_task_cells(),
            };
            let sets = fa.published.load(Ordering::Relaxed) + fb.published.load(Ordering::Relaxed);
            let sockets = stack.as_ref().map_or(0, |s| s.stats().tcp_sockets);
            println!(
                "sample t={:>5}s rss={:>6} KiB live_tasks={:>4} ops={} failed={} flag_sets={} tcp_bytes={} sockets={}",
                s.t,
                s.rss,
                s.live,
                c.total_done(),
                c.total_failed(),
                sets,
                c.tcp_bytes.get(),
                sockets
            );
            samples.push(s);
        };
        sample(&mut samples);
        let end = Duration::from_secs(a.seconds);
        while started.elapsed() < end {
            let left = end.saturating_sub(started.elapsed());
            let step = Duration::from_secs(a.sample_secs).min(left);
            sleep_ms(step.as_millis().max(1) as u32).await?;
            let before_warm = warm.is_none();
            sample(&mut samples);
            if before_warm && started.elapsed().as_secs() >= warm_secs {
                warm = Some(samples.len() - 1);
            }
        }

        // Wind down: workers finish their current operation, setters their current round.
        c.stop.set(true);
        for w in workers {
            w.await?;
        }
        st.store(true, Ordering::Relaxed);
        // The setters block in `wait_seen` until the waiters (on this loop) see their last
        // set, so keep the loop running while they finish.
        while !setters.iter().all(|h| h.is_finished()) {
            sleep_ms(10).await?;
        }
        for h in setters {
            if h.join().is_err() {
                return Err(Error::runtime("a setter thread panicked"));
            }
        }
        for w in [waiter_a, waiter_b] {
            w.cancel()?;
            match w.await {
                Err(Error::Cancelled) => {}
                other => return Err(Error::runtime(format!("flag waiter ended with {other:?}"))),
            }
        }
        let mut sockets_left = 0;
        if let Some(stack) = &stack {
            // Closed and aborted sockets go within the linger time (10 s); allow 3x.
            for _ in 0..300 {
                sockets_left = stack.stats().tcp_sockets;
                if sockets_left == 0 {
                    break;
                }
                sleep_ms(100).await?;
            }
            stack.shutdown();
            sleep_ms(10).await?;
        }
        Ok(Outcome {
            samples,
            warm,
            sockets_left,
            net: stack.is_some(),
        })
    });
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            eprintln!("uasyncio-soak: the loop failed: {e}");
            std::process::exit(1);
        }
    };
    // Frees the finished main task's cell the old loop still holds.
    if let Err(e) = new_event_loop() {
        eprintln!("uasyncio-soak: new_event_loop: {e}");
    }
    let live_end = diagnostics::allocated_task_cells();
    let duration = started.elapsed();
    let rss_end = rss_kib();
    summary(
        &args,
        &out,
        &counts,
        &flag_a,
        &flag_b,
        baseline_live,
        live_end,
        rss_start,
        rss_end,
        duration,
    );
}

#[allow(clippy::too_many_arguments)]
fn summary(
    args: &Args,
    out: &Outcome,
    counts: &Counts,
    flag_a: &FlagChannel,
    flag_b: &FlagChannel,
    baseline_live: usize,
    live_end: usize,
    rss_start: u64,
    rss_end: u64,
    duration: Duration,
) {
    let mut problems = Vec::new();
    println!("==== soak summary ====");
    println!("duration: {:.1} s (asked {} s)", duration.as_secs_f64(), args.seconds);
    println!("operations (done / failed):");
    for (i, k) in KINDS.iter().enumerate() {
        if !out.net && i >= TCP_ROUND {
            println!("  {k:<22} skipped (no TAP)");
            continue;
        }
        println!("  {k:<22} {:>10} / {}", counts.done[i].get(), counts.failed[i].get());
    }
    println!(
        "  tcp: {} bytes echoed and checked, {} reads cancelled by wait_for, {} connections aborted (RST) on purpose",
        counts.tcp_bytes.get(),
        counts.tcp_cancelled_reads.get(),
        counts.tcp_aborts.get()
    );
    let failed = counts.total_failed();
    println!("errors: {failed}");
    if failed > 0 {
        problems.push(format!("{failed} operations failed"));
        for e in counts.first_errors.borrow().iter() {
            println!("  {e}");
        }
    }
    let mut lost_total = 0;
    for (name, ch, how) in [
        ("A", flag_a, "2 threads per round, plain wait"),
        ("B", flag_b, "1 thread, wait under wait_for"),
    ] {
        let published = ch.published.load(Ordering::SeqCst);
        let observed = *ch.observed.lock().unwrap_or_else(|e| e.into_inner());
        let lost = ch.lost.load(Ordering::SeqCst) + published.saturating_sub(observed);
        lost_total += lost;
        let rounds = ch.rounds.load(Ordering::Relaxed);
        println!(
            "flag {name} ({how}): sets {published}, wakes {}, sets seen {observed}{}, lost {lost}",
            ch.wakes.load(Ordering::Relaxed),
            if rounds > 0 {
                format!(", rounds {rounds}")
            } else {
                String::new()
            },
        );
    }
    println!(
        "  flag B waits cancelled by their wait_for: {}",
        counts.flag_b_timeouts.get()
    );
    println!("lost wake-ups: {lost_total}");
    if lost_total > 0 {
        problems.push(format!("{lost_total} lost wake-ups"));
    }

    let max_rss = out.samples.iter().map(|s| s.rss).max().unwrap_or(0);
    let warm = out.warm.and_then(|i| out.samples.get(i));
    let warm_rss = warm.map(|s| s.rss);
    let max_after = out
        .warm
        .map(|i| out.samples[i..].iter().map(|s| s.rss).max().unwrap_or(0));
    println!(
        "rss KiB: start {rss_start}, after warm-up {} (t={} s), end {rss_end}, max {}",
        warm_rss.map_or("-".to_string(), |r| r.to_string()),
        warm.map_or("-".to_string(), |s| s.t.to_string()),
        max_rss.max(rss_end)
    );
    match (warm_rss, max_after) {
        (Some(w), Some(m)) => {
            let bound = w + RSS_SLACK_KIB.max(w * RSS_SLACK_PERCENT / 100);
            let m = m.max(rss_end);
            println!(
                "rss after warm-up: max {m} KiB, bound {bound} KiB (warm-up + max(1 MiB, 10 %)), growth {} KiB",
                m as i64 - w as i64
            );
            if m > bound {
                problems.push(format!("RSS grew to {m} KiB, above the bound {bound} KiB"));
            }
        }
        _ => problems.push("no sample after warm-up (run too short?)".into()),
    }
    let live_max = out.samples.iter().map(|s| s.live).max().unwrap_or(0);
    println!("live tasks: baseline {baseline_live}, max sampled {live_max}, end {live_end}");
    if live_end != baseline_live {
        problems.push(format!("live tasks at end {live_end} != baseline {baseline_live}"));
    }
    if out.net {
        println!("tcp sockets left at end: {}", out.sockets_left);
        if out.sockets_left != 0 {
            problems.push(format!("{} TCP sockets left", out.sockets_left));
        }
    }
    if problems.is_empty() {
        println!("soak: PASS");
    } else {
        for p in &problems {
            println!("soak: FAIL: {p}");
        }
        std::process::exit(1);
    }
}
