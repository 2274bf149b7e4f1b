//! The `embassy-std` column of `uasyncio-bench`: the same embassy workloads as the
//! `embassy-raw` column (`../src/embassy.rs`, shared source), on embassy's own std executor
//! (`platform-std`, `executor-thread`), whose pender takes a mutex and signals a condvar on
//! every wake. Run by the harness as `uasyncio-bench-embassy-std [--quick] [--reps N] [--rss]`;
//! prints one JSON line.

#[path = "../../src/embassy.rs"]
mod embassy;
#[path = "../../src/measure.rs"]
mod measure;

/// The executor `embassy.rs` runs its workloads on: embassy's `platform-std` `Executor`.
mod embassy_exec {
    use embassy_executor::{Executor, Spawner};

    /// Runs a fresh std executor on the calling thread until `done()` after a poll. The
    /// executor is leaked (`run_until` needs `&'static mut`; embassy leaks its signaler too).
    pub fn run(init: impl FnOnce(Spawner), done: impl FnMut() -> bool) {
        let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
        executor.run_until(init, done);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let p = measure::Params::from_args(&args);
    let mut m = measure::Metrics::default();
    if args.iter().any(|a| a == "--rss") {
        embassy::run_rss(&p);
        m.put("rss_kib", measure::vm_hwm_kib().map_or(f64::NAN, |k| k as f64));
    } else {
        m = embassy::run_all("embassy-std", &p);
    }
    println!("{}", m.to_json());
}
