//! What every runtime's workloads share: sizes, clocks, statistics, and the one-line JSON
//! report a child process prints for the harness.
//!
//! This file is compiled into two binaries: `uasyncio-bench` and (through `#[path]`)
//! `uasyncio-bench-embassy-std`, which must be a separate build because embassy's std
//! platform exports the global `__pender` symbol that our raw-executor row defines too.
//! So it depends on nothing but `std` and `libc`.
//!
//! Measurements are taken *inside* the runtime (from the main task's first poll to its last),
//! so building and dropping a runtime is not charged to a workload.

#![allow(dead_code)] // each of the two binaries uses a different subset

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Workload sizes. `full()` is the definition in bench/README.md; `quick()` is the CI smoke pass: every
/// workload runs, tiny, and its numbers mean nothing.
#[derive(Clone, Debug)]
pub struct Params {
    /// Whether this is the `--quick` smoke pass.
    pub quick: bool,
    /// Repetitions of each throughput workload; the median is reported.
    pub reps: usize,
    /// Workload 1 and 7: trivial tasks spawned.
    pub spawn_tasks: usize,
    /// Workload 2: tasks, and yields per task.
    pub yield_tasks: usize,
    pub yields_per_task: usize,
    /// Workload 3: event ping-pong round trips.
    pub pingpong_rounds: usize,
    /// Workload 4: sleeping tasks, each sleeping `0..=timer_max_ms` (fixed seed).
    pub timer_tasks: usize,
    pub timer_max_ms: u32,
    /// Workload 5: wakes from another OS thread, with a pause before each so the loop is idle.
    pub wake_iters: usize,
    pub wake_gap: Duration,
    /// Workload 6: tasks contending for one lock, and acquire/release pairs in total.
    pub lock_tasks: usize,
    pub lock_total: usize,
    /// Workload 8: put/get round trips between two tasks through two queues of capacity 1.
    pub queue_rounds: usize,
    /// Workload 9: items an OS thread sends into the loop through a queue of
    /// [`XQUEUE_CAPACITY`].
    pub xqueue_items: usize,
    /// `--workloads a,b`: run only these (names in [`WORKLOADS`]); `None` runs all.
    pub workloads: Option<Vec<String>>,
}

/// Workload names for `--workloads`, in the order they run.
pub const WORKLOADS: &[&str] = &[
    "spawn", "yield", "pingpong", "timers", "xwake", "lock", "queue", "xqueue", "memory",
];

/// Workload 9's queue capacity, the same for every runtime.
pub const XQUEUE_CAPACITY: usize = 64;

impl Params {
    /// The full sizes (bench/README.md).
    pub fn full() -> Self {
        Self {
            quick: false,
            reps: 5,
            spawn_tasks: 10_000,
            yield_tasks: 100,
            yields_per_task: 10_000,
            pingpong_rounds: 100_000,
            timer_tasks: 10_000,
            timer_max_ms: 1000,
            wake_iters: 10_000,
            wake_gap: Duration::from_micros(50),
            lock_tasks: 10,
            lock_total: 100_000,
            queue_rounds: 100_000,
            xqueue_items: 100_000,
            workloads: None,
        }
    }

    /// A smoke pass: each workload once, tiny.
    pub fn quick() -> Self {
        Self {
            quick: true,
            reps: 1,
            spawn_tasks: 100,
            yield_tasks: 10,
            yields_per_task: 100,
            pingpong_rounds: 1000,
            timer_tasks: 100,
            timer_max_ms: 20,
            wake_iters: 100,
            wake_gap: Duration::from_micros(50),
            lock_tasks: 10,
            lock_total: 1000,
            queue_rounds: 1000,
            xqueue_items: 1000,
            workloads: None,
        }
    }

    /// `--quick` and `--reps N` from the command line, as the parent passes them on.
    pub fn from_args(args: &[String]) -> Self {
        let mut p = if args.iter().any(|a| a == "--quick") {
            Self::quick()
        } else {
            Self::full()
        };
        if let Some(i) = args.iter().position(|a| a == "--reps") {
            if let Some(n) = args.get(i + 1).and_then(|s| s.parse().ok()) {
                p.reps = n;
            }
        }
        if let Some(i) = args.iter().position(|a| a == "--workloads") {
            p.workloads = args.get(i + 1).map(|s| s.split(',').map(str::to_string).collect());
        }
        p
    }

    /// The command-line form of these parameters, for a child process.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.quick {
            v.push("--quick".to_string());
        }
        v.push("--reps".to_string());
        v.push(self.reps.to_string());
        if let Some(w) = &self.workloads {
            v.push("--workloads".to_string());
            v.push(w.join(","));
        }
        v
    }

    /// Whether workload `name` is selected.
    pub fn runs(&self, name: &str) -> bool {
        self.workloads.as_ref().is_none_or(|w| w.iter().any(|n| n == name))
    }

    /// The `i`-th timer task's sleep in milliseconds: splitmix64 with a fixed seed, so every
    /// runtime (CPython included, see `python/bench.py`) sleeps the same spread.
    pub fn timer_delay_ms(&self, i: usize) -> u32 {
        (splitmix64(0x5EED_0000 + i as u64) % (u64::from(self.timer_max_ms) + 1)) as u32
    }
}

/// One step of splitmix64 on `x` (a stateless hash of the index).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The median of `reps` runs of `f`, each returning the duration of its timed section.
pub fn median_of(reps: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut runs: Vec<Duration> = (0..reps.max(1)).map(|_| f()).collect();
    runs.sort();
    runs[runs.len() / 2]
}

/// Nanoseconds per operation.
pub fn per_op_ns(d: Duration, ops: usize) -> f64 {
    d.as_nanos() as f64 / ops.max(1) as f64
}

/// The `q`-quantile (0.0..=1.0) of `samples` (sorted in place), nearest rank.
pub fn quantile(samples: &mut [u64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let idx = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[idx] as f64
}

/// User plus system CPU time of the whole process (all threads), from `getrusage`.
pub fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` points to writable memory of the right size for one `rusage`, and
    // RUSAGE_SELF is a valid `who`; getrusage only writes into it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: getrusage returned 0, so it initialised the struct (and it was zeroed anyway).
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Peak resident set size of this process in KiB (`VmHWM` in `/proc/self/status`).
pub fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How late a sleeper woke: now minus (`start` + `ms`), in ns, never negative.
pub fn lateness_ns(start: Instant, ms: u32) -> u64 {
    let due = start + Duration::from_millis(u64::from(ms));
    Instant::now().saturating_duration_since(due).as_nanos() as u64
}

/// Workload 5's measuring device: the waking thread stamps the time just before it sets the
/// runtime's flag; the woken task reads the stamp, records the latency and acknowledges.
/// The waking thread pauses `gap` before each wake, so the loop is normally idle (parked)
/// when the wake arrives: this measures the path an interrupt takes.
pub struct WakeProbe {
    base: Instant,
    stamp_ns: AtomicU64,
    acked: AtomicUsize,
}

impl WakeProbe {
    /// A probe with no wake sent yet.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            stamp_ns: AtomicU64::new(0),
            acked: AtomicUsize::new(0),
        }
    }

    /// The waking thread's body: `iters` times, wait for the previous wake's acknowledgement
    /// (sleeping `gap` at least once), stamp, then call `set`.
    pub fn drive(&self, iters: usize, gap: Duration, set: impl Fn()) {
        for i in 0..iters {
            loop {
                std::thread::sleep(gap);
                if self.acked.load(Ordering::Acquire) == i {
                    break;
                }
            }
            let now = self.base.elapsed().as_nanos() as u64;
            self.stamp_ns.store(now, Ordering::Release);
            set();
        }
    }

    /// Called by the woken task: the latency of the wake it just saw, and acknowledges it.
    pub fn woke(&self) -> u64 {
        let now = self.base.elapsed().as_nanos() as u64;
        let lat = now.saturating_sub(self.stamp_ns.load(Ordering::Acquire));
        self.acked.fetch_add(1, Ordering::Release);
        lat
    }
}

/// Workload 9's producer, an OS thread standing for an interrupt handler: waits for `go`
/// (set by the consuming task when its clock starts), then sends `0..items` with `try_send`
/// (true when sent), spinning while the queue is full and yielding the CPU every 64 tries so
/// the loop thread gets one on a loaded machine.
pub fn produce(items: usize, go: &AtomicBool, mut try_send: impl FnMut(usize) -> bool) {
    while !go.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    for i in 0..items {
        let mut tries = 0u32;
        while !try_send(i) {
            tries = tries.wrapping_add(1);
            if tries % 64 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// The metrics one runtime reports, in the order they were measured.
#[derive(Default)]
pub struct Metrics(pub Vec<(&'static str, f64)>);

impl Metrics {
    /// Record one metric.
    pub fn put(&mut self, key: &'static str, value: f64) {
        self.0.push((key, value));
    }

    /// Record the p50 and p99 of `samples` (ns) under `<prefix>_p50_us` / `<prefix>_p99_us`.
    pub fn put_p50_p99_us(&mut self, p50_key: &'static str, p99_key: &'static str, samples: &mut [u64]) {
        self.put(p50_key, quantile(samples, 0.50) / 1000.0);
        self.put(p99_key, quantile(samples, 0.99) / 1000.0);
    }

    /// The report line: one flat JSON object (non-finite values become `null`).
    pub fn to_json(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| {
                if v.is_finite() {
                    format!("\"{k}\": {v}")
                } else {
                    format!("\"{k}\": null")
                }
            })
            .collect();
        format!("{{{}}}", fields.join(", "))
    }
}

/// Progress for a human watching a long run; stderr, so stdout stays one JSON line.
pub fn progress(runtime: &str, what: &str) {
    eprintln!("[{runtime}] {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_python_side() {
        // The same values `python/bench.py` computes (checked by hand once).
        assert_eq!(splitmix64(0), 16_294_208_416_658_607_535);
        let p = Params::full();
        let first: Vec<u32> = (0..8).map(|i| p.timer_delay_ms(i)).collect();
        assert_eq!(first, [583, 810, 260, 912, 495, 695, 997, 760]);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), 51.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn params_round_trip_through_args() {
        let mut p = Params::quick();
        p.reps = 3;
        p.workloads = Some(vec!["yield".into(), "lock".into()]);
        let q = Params::from_args(&p.to_args());
        assert!(q.quick && q.reps == 3 && q.runs("lock") && !q.runs("timers"));
    }

    #[test]
    fn metrics_json_is_flat_and_nulls_non_finite() {
        let mut m = Metrics::default();
        m.put("a", 1.5);
        m.put("b", f64::NAN);
        assert_eq!(m.to_json(), r#"{"a": 1.5, "b": null}"#);
    }
}
