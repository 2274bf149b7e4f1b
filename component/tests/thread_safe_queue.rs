//! Stress: 1,000,000 items through one `ThreadSafeQueue` from several OS threads (ISR-like
//! producers: they never block, they spin-retry on a full queue) into tasks on the loop; none
//! lost, none duplicated, none reordered per producer.
//!
//! The size scales with `STRESS_SCALE` (a divisor, as `tests/stress.rs`). Run in release for
//! speed: `cargo test --release -p uasyncio --test thread_safe_queue`. Nothing is timed: a
//! watchdog only fails the test if it has not finished after 20 minutes (a debug or release
//! run took 3 to 10 s on this project's loaded 2-core machine: the guard is 100x that).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uasyncio::{create_task, run, ThreadSafeQueue, TrySendError};

fn scaled(n: u64) -> u64 {
    let div: u64 = std::env::var("STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    (n / div.max(1)).max(1)
}

const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 3;

/// Fails the process (not just a thread) if the test hangs: a lost wake-up would otherwise
/// hang CI instead of failing it.
fn watchdog(done: Arc<AtomicBool>, limit: Duration) {
    std::thread::spawn(move || {
        let start = Instant::now();
        while !done.load(Ordering::Acquire) {
            if start.elapsed() > limit {
                eprintln!("thread_safe_queue stress: no progress to the end after {limit:?}: hung");
                std::process::exit(101);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// An item: producer number in the top byte, its sequence number below.
fn item(producer: u64, seq: u64) -> u64 {
    producer << 56 | seq
}

#[test]
fn a_million_items_from_threads_none_lost_or_reordered() {
    let total = scaled(1_000_000);
    let per = total / PRODUCERS;
    let done = Arc::new(AtomicBool::new(false));
    watchdog(done.clone(), Duration::from_secs(20 * 60));

    // A small queue, so producers hit "full" often and the slots wrap many times.
    let q: &'static ThreadSafeQueue<u64> = Box::leak(Box::new(ThreadSafeQueue::new(64).unwrap()));
    let full_retries = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let full_retries = full_retries.clone();
            std::thread::spawn(move || {
                let mut retries = 0u64;
                for seq in 0..per {
                    let mut it = item(p, seq);
                    loop {
                        match q.try_send(it) {
                            Ok(()) => break,
                            Err(TrySendError::Full(back)) => {
                                it = back;
                                retries += 1;
                                // An ISR would drop or count; a thread spins, and on a loaded
                                // 2-core machine lets the loop thread run.
                                if retries.is_multiple_of(64) {
                                    std::thread::yield_now();
                                } else {
                                    std::hint::spin_loop();
                                }
                            }
                            Err(TrySendError::Closed(_)) => panic!("closed while sending"),
                        }
                    }
                }
                full_retries.fetch_add(retries, Ordering::Relaxed);
            })
        })
        .collect();
    let closer = std::thread::spawn(move || {
        for p in producers {
            p.join().expect("producer panicked");
        }
        q.close();
    });

    // The consumers are several tasks. The queue has one receiver at a time, so they take
    // turns on it through a `Lock` (FIFO hand-off: round robin), and check the order of each
    // producer's items across all of them.
    let next: Rc<RefCell<[u64; PRODUCERS as usize]>> = Rc::new(RefCell::new([0; PRODUCERS as usize]));
    let received = run({
        let next = next.clone();
        async move {
            let lock = Rc::new(uasyncio::Lock::new());
            let mut tasks = Vec::new();
            for _ in 0..CONSUMERS {
                let (lock, next) = (lock.clone(), next.clone());
                tasks.push(create_task(async move {
                    let mut mine = 0u64;
                    loop {
                        let guard = lock.acquire().await?;
                        let got = q.recv().await?;
                        drop(guard);
                        let Some(it) = got else { return Ok(mine) };
                        let (p, seq) = ((it >> 56) as usize, it & ((1 << 56) - 1));
                        let mut next = next.borrow_mut();
                        assert!(p < PRODUCERS as usize, "invented item {it:#x}");
                        assert_eq!(seq, next[p], "producer {p}: item lost, duplicated or reordered");
                        next[p] += 1;
                        mine += 1;
                    }
                }));
            }
            let mut received = Vec::new();
            for t in tasks {
                received.push(t.await?);
            }
            Ok(received)
        }
    })
    .unwrap();
    closer.join().expect("closer panicked");
    done.store(true, Ordering::Release);

    assert_eq!(received.iter().sum::<u64>(), per * PRODUCERS, "items lost");
    assert!(
        next.borrow().iter().all(|&n| n == per),
        "a producer's items are missing"
    );
    assert!(
        received.iter().all(|&n| n > 0),
        "a consumer task received nothing: {received:?}"
    );
    assert!(q.is_empty() && q.is_closed());
    eprintln!(
        "{} items, {} producers, {} consumer tasks {:?}, {} full retries",
        per * PRODUCERS,
        PRODUCERS,
        CONSUMERS,
        received,
        full_retries.load(Ordering::Relaxed)
    );
}
