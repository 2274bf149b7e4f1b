//! The Cortex-M benchmarks' method, one file for both sides: ours (`firmware/mps2-an385`,
//! on FreeRTOS) and embassy's (`bench/cortex-m/embassy-mps2`, bare metal) include it with
//! `#[path]`, so "measured the same way" is one piece of code, not two copies kept alike.
//!
//! Clock: a CMSDK timer counting SYSCLK (25 MHz, 40 ns per tick) down; under QEMU
//! `-icount shift=S` one instruction takes 2^S ns of virtual time, so `ticks * 40 >> S`
//! instructions passed. A row is the median of [`BATCHES`] short batches after
//! [`BATCH_WARMUP`] discarded ones, each minus the cost of the two clock reads around it
//! ([`clock_overhead`]): short batches mostly see no tick interrupt, so the median is
//! tick-free and the same on every run.

/// Batches measured per row.
pub const BATCHES: usize = 201;
/// Batches run first and discarded (caches of the allocator and the executor warm up).
pub const BATCH_WARMUP: usize = 5;

/// Median timer ticks of an empty batch (two reads of `clock`), subtracted from every batch.
pub fn clock_overhead(clock: impl Fn() -> u32) -> u32 {
    let mut t = [0u32; 21];
    for v in t.iter_mut() {
        let t0 = clock();
        let t1 = clock();
        *v = t0.wrapping_sub(t1);
    }
    t.sort_unstable();
    t[t.len() / 2]
}

/// Timer ticks of batch `i` (`t0`, `t1`: the down-counter before and after), if it is past
/// the warm-up: the slot of `ticks` it goes to and its value.
pub fn batch(i: usize, t0: u32, t1: u32, overhead: u32) -> Option<(usize, u32)> {
    (i >= BATCH_WARMUP).then(|| (i - BATCH_WARMUP, t0.wrapping_sub(t1).saturating_sub(overhead)))
}

/// A row's figures: `Display` gives the text after `report: <what>: ` that
/// `scripts/freertos-bench.sh` and `scripts/cortexm-bench.sh` read (`median N`).
pub struct PerOp {
    n: usize,
    per_batch: u32,
    shift: u32,
    min: u32,
    med: u32,
    max: u32,
}

impl PerOp {
    /// Sorts `ticks` (one entry per batch of `per_batch` operations, clocked at icount
    /// `shift`) and takes min, median and max.
    pub fn new(ticks: &mut [u32], per_batch: u32, shift: u32) -> PerOp {
        ticks.sort_unstable();
        let n = ticks.len();
        PerOp {
            n,
            per_batch,
            shift,
            min: ticks.first().copied().unwrap_or(0),
            med: ticks.get(n / 2).copied().unwrap_or(0),
            max: ticks.last().copied().unwrap_or(0),
        }
    }

    /// Instructions per operation in tenths, rounded.
    fn tenths(&self, ticks: u32) -> u64 {
        let den = (u64::from(self.per_batch) << self.shift).max(1);
        (u64::from(ticks) * 400 + den / 2) / den
    }

    fn int(&self, ticks: u32) -> u64 {
        (self.tenths(ticks) + 5) / 10
    }
}

impl core::fmt::Display for PerOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.tenths(self.med);
        write!(
            f,
            "n={} batches of {}, instructions per op min {} median {} max {} (exact {}.{}; batch timer ticks {}/{}/{}, icount shift {})",
            self.n,
            self.per_batch,
            self.int(self.min),
            self.int(self.med),
            self.int(self.max),
            m / 10,
            m % 10,
            self.min,
            self.med,
            self.max,
            self.shift
        )
    }
}
