//! Pure arithmetic of the Zephyr port: clock units, timeouts, priorities.
//!
//! Kept free of FFI so that `cargo test` checks it on the host. The shim in
//! `rtos-shims/zephyr-shim/uasyncio_shim.c` reports the raw numbers (tick rate, clock
//! rate, priority counts, the largest timeout a `k_timeout_t` holds); these functions turn
//! the port's API units into Zephyr's.
//!
//! Invariants the loop relies on:
//! - [`clock_to_us`] is monotonic in its raw input and never overflows for any `u64` count
//!   (it saturates, after some 584,000 years at 1 GHz).
//! - [`timeout_ticks`] never shortens a timeout: microseconds round **up** to whole ticks, so
//!   the loop never wakes before its deadline because of rounding (it may wake up to one tick
//!   late, which is Zephyr's resolution). A timeout too long for a `k_timeout_t` is clamped
//!   to the largest finite one; the loop wakes, finds no deadline due, and sleeps again.
//! - [`Scale`] gives the same results as [`clock_to_us`] and [`us_to_ticks_ceil`], bit for
//!   bit, for every input, only faster (below).
//! - [`zephyr_priority`] maps the seam's "higher is more urgent" `u8` onto Zephyr's
//!   preemptible range, where lower is more urgent, or refuses it: a thread never runs at an
//!   urgency other than the one asked for.

use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU32, Ordering};

/// Microseconds in a second.
const US_PER_SEC: u64 = 1_000_000;

/// Converts a raw clock count at `hz` counts per second into microseconds (floor).
///
/// Splits the count into whole seconds and a remainder so that no intermediate product
/// overflows: `rem < hz < 2^32`, so `rem * 10^6 < 2^52`. Zephyr's rates are 32-bit
/// (`sys_clock_hw_cycles_per_sec()`, `CONFIG_SYS_CLOCK_TICKS_PER_SEC`), which keeps this to
/// two `u64` divisions and no 128-bit arithmetic (Cortex-M3 has no 64-bit divide either).
///
/// Out of line: a rare fallback where [`Scale`] serves ([`Scale::to_us`]), kept from being
/// copied into every caller of the fast path.
#[inline(never)]
pub(crate) fn clock_to_us(raw: u64, hz: u32) -> u64 {
    let hz = u64::from(hz);
    if hz == 0 {
        return 0;
    }
    if hz == US_PER_SEC {
        return raw;
    }
    let secs = raw / hz;
    let rem = raw % hz;
    secs.saturating_mul(US_PER_SEC).saturating_add(rem * US_PER_SEC / hz)
}

/// Microseconds to kernel ticks, rounded up (a timeout is never shortened). Saturates.
///
/// Out of line, as [`clock_to_us`]: the fallback where [`Scale`] serves.
#[inline(never)]
pub(crate) fn us_to_ticks_ceil(us: u64, ticks_per_sec: u32) -> u64 {
    let tps = u64::from(ticks_per_sec);
    if tps == 0 {
        return 0;
    }
    let secs = us / US_PER_SEC;
    let rem = us % US_PER_SEC;
    // rem < 1e6 and tps < 2^32: rem * tps < 2^52.
    let frac = (rem * tps).div_ceil(US_PER_SEC);
    secs.saturating_mul(tps).saturating_add(frac)
}

/// The ratio of microseconds to counts of a `hz` clock, `10^6 / hz` in lowest terms, when both
/// terms fit 16 bits: a fast path for [`clock_to_us`] and [`us_to_ticks_ceil`].
///
/// Why: the loop reads the clock on every wake that has a timer pending, and converts a
/// timeout on every wait. Done with `u64` divisions, each is a call into compiler-builtins'
/// software division (Cortex-M has a 32-bit `UDIV` only): 176 of the about 1,100
/// instructions of an interrupt-to-task wake in `tests/zephyr/timer_isr` on `mps2/an385`
/// (Zephyr 4.0, counted in QEMU's instruction trace). Every rate Zephyr boards use reduces to
/// small terms (100 Hz and 10 kHz ticks: `10000 / 1` and `100 / 1`; a 25 MHz or 12 MHz cycle
/// counter: `1 / 25`, `1 / 12`; a 32768 Hz RTC: `15625 / 512`), and dividing a `u64` by a
/// 16-bit number takes four hardware 32-bit divisions ([`div_small`]). A rate whose terms do
/// not fit (say `u32::MAX` Hz) has no `Scale`, and the callers use the general functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scale {
    /// Microseconds per `den` counts; at most `0xFFFF`.
    num: NonZeroU32,
    /// Counts per `num` microseconds; at most `0xFFFF`.
    den: NonZeroU32,
}

impl Scale {
    /// The scale of a `hz` clock; `None` for 0 Hz or when a term would not fit 16 bits.
    pub(crate) fn new(hz: u32) -> Option<Scale> {
        if hz == 0 {
            return None;
        }
        let g = gcd(US_PER_SEC as u32, hz);
        // g divides both, so neither quotient is zero.
        let (num, den) = (NonZeroU32::new(US_PER_SEC as u32 / g)?, NonZeroU32::new(hz / g)?);
        (num.get() <= 0xFFFF && den.get() <= 0xFFFF).then_some(Scale { num, den })
    }

    /// The scale as one nonzero word, for a cache ([`Scale::cached`]).
    fn pack(self) -> u32 {
        (self.num.get() << 16) | self.den.get()
    }

    /// The scale a word from [`Scale::pack`] holds, if it is the one of a `hz` clock: the
    /// check `num * hz == den * 10^6` is what makes a cached word safe to use whatever clock
    /// rate it was stored for.
    #[inline]
    fn unpack(word: u32, hz: u32) -> Option<Scale> {
        let (num, den) = (NonZeroU32::new(word >> 16)?, NonZeroU32::new(word & 0xFFFF)?);
        let fits = u64::from(num.get()) * u64::from(hz) == u64::from(den.get()) * US_PER_SEC;
        fits.then_some(Scale { num, den })
    }

    /// The scale of a `hz` clock, from `cache` when it holds it, else worked out (a few
    /// divisions, Euclid's algorithm) and stored there. Any thread or interrupt may call it:
    /// the word is self-checking ([`Scale::unpack`]), so a store racing a load, or a cache
    /// shared by two rates, costs at most a recomputation, never a wrong scale.
    #[inline]
    pub(crate) fn cached(cache: &AtomicU32, hz: u32) -> Option<Scale> {
        if let Some(s) = Scale::unpack(cache.load(Ordering::Relaxed), hz) {
            return Some(s);
        }
        Scale::store_new(cache, hz)
    }

    /// The slow half of [`Scale::cached`], out of line: once per clock in practice.
    #[inline(never)]
    fn store_new(cache: &AtomicU32, hz: u32) -> Option<Scale> {
        let s = Scale::new(hz)?;
        cache.store(s.pack(), Ordering::Relaxed);
        Some(s)
    }

    /// [`clock_to_us`] of `raw` counts: `floor(raw * num / den)`, saturating.
    #[inline]
    pub(crate) fn to_us(self, raw: u64) -> u64 {
        let (num, den) = (self.num.get(), self.den);
        if den.get() == 1 {
            return raw.saturating_mul(u64::from(num));
        }
        let (q, r) = div_small(raw, den);
        // r < den < 2^16 and num < 2^16: r * num < 2^32.
        q.saturating_mul(u64::from(num))
            .saturating_add(u64::from(r * num / den))
    }

    /// [`us_to_ticks_ceil`] of `us` microseconds: `ceil(us * den / num)`, saturating.
    #[inline]
    pub(crate) fn us_to_counts_ceil(self, us: u64) -> u64 {
        let (num, den) = (self.num, self.den.get());
        let (q, r) = if num.get() == 1 { (us, 0) } else { div_small(us, num) };
        // r < num < 2^16 and den < 2^16: r * den + num - 1 < 2^32.
        q.saturating_mul(u64::from(den))
            .saturating_add(u64::from((r * den + num.get() - 1) / num))
    }
}

/// Greatest common divisor (Euclid), `b != 0`.
fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `(n / d, n % d)` for `d <= 0xFFFF`, by long division in base 2^16: each step divides a
/// 32-bit number (the remainder so far, below `d`, and the next 16-bit digit), which Cortex-M
/// does in one `UDIV`, where `n / u64::from(d)` would call a software 64-bit division.
///
/// One out-of-line copy for both conversions (flash before a few instructions: a call).
#[inline(never)]
fn div_small(n: u64, d: NonZeroU32) -> (u64, u32) {
    debug_assert!(d.get() <= 0xFFFF);
    let (mut q, mut r, mut left) = (0u64, 0u32, 4);
    while left > 0 {
        left -= 1;
        // The next 16-bit digit, most significant first; r < d <= 0xFFFF, so this fits 32 bits.
        let cur = (r << 16) | ((n >> (16 * left)) as u32 & 0xFFFF);
        let digit = cur / d;
        r = cur - digit * d.get();
        q = (q << 16) | u64::from(digit);
    }
    (q, r)
}

/// The tick count the shim passes to `k_sem_take`: `-1` waits forever, `0` polls, a positive
/// count waits that many ticks at most. `max_ticks` is the largest finite timeout a
/// `k_timeout_t` holds in this build (`uasyncio_shim_max_timeout_ticks`). The rate's
/// [`Scale`] comes from `cache` ([`Scale::cached`]); a rate without one takes
/// [`us_to_ticks_ceil`].
pub(crate) fn timeout_ticks(timeout_us: Option<u64>, ticks_per_sec: u32, max_ticks: i64, cache: &AtomicU32) -> i64 {
    match timeout_us {
        None => -1,
        Some(0) => 0,
        Some(us) => {
            let ticks = match Scale::cached(cache, ticks_per_sec) {
                Some(s) => s.us_to_counts_ceil(us),
                None => us_to_ticks_ceil(us, ticks_per_sec),
            };
            clamp_ticks(ticks, max_ticks)
        }
    }
}

/// [`clock_to_us`] through the rate's [`Scale`] from `cache` ([`Scale::cached`]), where it has one.
#[inline]
pub(crate) fn clock_to_us_cached(raw: u64, hz: u32, cache: &AtomicU32) -> u64 {
    match Scale::cached(cache, hz) {
        Some(s) => s.to_us(raw),
        None => clock_to_us(raw, hz),
    }
}

/// The tail of [`timeout_ticks`] for a positive timeout already in `ticks` (rounded up): at
/// least one tick (never a busy poll), at most `max_ticks`.
fn clamp_ticks(ticks: u64, max_ticks: i64) -> i64 {
    let max = u64::try_from(max_ticks.max(1)).unwrap_or(1);
    // ticks <= max <= i64::MAX, so the conversion cannot fail.
    i64::try_from(ticks.clamp(1, max)).unwrap_or(i64::MAX)
}

/// The Zephyr priority for a thread started with `priority`. The seam counts priorities as
/// FreeRTOS does, higher is more urgent, so that portable code (and the C API's
/// `uasyncio_config_t.priority`) means the same on both kernels; Zephyr counts the other way.
/// `priority` maps onto the preemptible range as `num_preempt - 1 - priority`: `0` is the
/// least urgent preemptible priority (just above the idle thread), `num_preempt - 1` is
/// Zephyr's `0`. `None` for a priority beyond that range: the caller refuses it rather than
/// run the thread at another urgency than asked. Cooperative (negative) Zephyr priorities
/// are not reachable here; `CONFIG_UASYNCIO_LOOP_THREAD_PRIORITY` may use one.
pub(crate) fn zephyr_priority(priority: u8, num_preempt: i32) -> Option<i32> {
    let p = i32::from(priority);
    (p < num_preempt).then(|| num_preempt - 1 - p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_at_one_mhz_is_identity() {
        assert_eq!(clock_to_us(0, 1_000_000), 0);
        assert_eq!(clock_to_us(123_456_789, 1_000_000), 123_456_789);
        assert_eq!(clock_to_us(u64::MAX, 1_000_000), u64::MAX);
    }

    #[test]
    fn clock_converts_ticks_and_cycles() {
        // 100 Hz tick (Zephyr's default on many boards): one tick is 10 ms.
        assert_eq!(clock_to_us(1, 100), 10_000);
        assert_eq!(clock_to_us(250, 100), 2_500_000);
        // 10 kHz tick.
        assert_eq!(clock_to_us(3, 10_000), 300);
        // 12 MHz SysTick (qemu_cortex_m3): 12 cycles per microsecond, floor.
        assert_eq!(clock_to_us(11, 12_000_000), 0);
        assert_eq!(clock_to_us(12, 12_000_000), 1);
        assert_eq!(clock_to_us(12_000_000 * 3 + 25, 12_000_000), 3_000_002);
        // 32768 Hz RTC.
        assert_eq!(clock_to_us(32_768, 32_768), 1_000_000);
        assert_eq!(clock_to_us(1, 32_768), 30);
    }

    #[test]
    fn clock_does_not_overflow_and_is_monotonic() {
        for hz in [
            1u32,
            100,
            32_768,
            1_000_000,
            12_000_000,
            64_000_000,
            1_000_000_000,
            u32::MAX,
        ] {
            let h = u64::from(hz);
            let mut raws = [
                0,
                1,
                h - 1,
                h,
                h + 1,
                u64::from(u32::MAX),
                1 << 40,
                u64::MAX / 2,
                u64::MAX - 1,
                u64::MAX,
            ];
            raws.sort_unstable();
            let mut prev = 0;
            for raw in raws {
                let us = clock_to_us(raw, hz);
                assert!(us >= prev, "not monotonic at hz={hz} raw={raw}");
                prev = us;
            }
        }
        // The fastest rate a 32-bit Kconfig value can hold stays exact.
        assert_eq!(clock_to_us(u64::from(u32::MAX) * 3 + 5, u32::MAX), 3_000_000);
        assert_eq!(clock_to_us(0, 0), 0);
    }

    /// Rates a Zephyr build may report: tick rates, cycle counters, RTCs, odd ones.
    const RATES: [u32; 16] = [
        1,
        3,
        100,
        128,
        1_000,
        10_000,
        32_768,
        32_000,
        1_000_000,
        12_000_000,
        16_777_216,
        25_000_000,
        64_000_000,
        168_000_000,
        1_000_000_000,
        u32::MAX,
    ];

    /// Values around every power of two and of ten, and pseudo-random ones (xorshift).
    fn samples() -> impl Iterator<Item = u64> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let random = core::iter::repeat_with(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every magnitude, not only huge numbers.
            x >> (x % 64)
        });
        let pow2 = (0..64).flat_map(|k| {
            let p = 1u64 << k;
            [p - 1, p, p + 1]
        });
        let pow10 = (0..20).flat_map(|k| {
            let p = 10u64.pow(k);
            [p - 1, p, p + 1]
        });
        pow2.chain(pow10)
            .chain([u64::MAX - 1, u64::MAX])
            .chain(random.take(20_000))
    }

    fn scale(num: u32, den: u32) -> Scale {
        let nz = |v| NonZeroU32::new(v).unwrap();
        Scale {
            num: nz(num),
            den: nz(den),
        }
    }

    #[test]
    fn scale_exists_for_the_rates_boards_use() {
        assert_eq!(Scale::new(100), Some(scale(10_000, 1)));
        assert_eq!(Scale::new(25_000_000), Some(scale(1, 25)));
        assert_eq!(Scale::new(32_768), Some(scale(15_625, 512)));
        assert_eq!(Scale::new(1_000_000), Some(scale(1, 1)));
        // Terms too large for 16 bits, and 0 Hz: the general functions handle these.
        assert_eq!(Scale::new(16_777_216), None);
        assert_eq!(Scale::new(u32::MAX), None);
        assert_eq!(Scale::new(0), None);
    }

    #[test]
    fn scale_gives_the_general_results_bit_for_bit() {
        for hz in RATES {
            let Some(s) = Scale::new(hz) else { continue };
            for v in samples() {
                assert_eq!(s.to_us(v), clock_to_us(v, hz), "to_us({v}) at {hz} Hz");
                assert_eq!(
                    s.us_to_counts_ceil(v),
                    us_to_ticks_ceil(v, hz),
                    "us_to_counts_ceil({v}) at {hz} Hz"
                );
            }
        }
    }

    #[test]
    fn the_cached_conversions_give_the_general_results_at_every_rate() {
        for hz in RATES {
            let (clock, ticks) = (AtomicU32::new(0), AtomicU32::new(0));
            for v in samples() {
                assert_eq!(
                    clock_to_us_cached(v, hz, &clock),
                    clock_to_us(v, hz),
                    "clock {v} at {hz} Hz"
                );
                let want = if v == 0 {
                    0
                } else {
                    clamp_ticks(us_to_ticks_ceil(v, hz), i64::MAX)
                };
                assert_eq!(
                    timeout_ticks(Some(v), hz, i64::MAX, &ticks),
                    want,
                    "timeout {v} at {hz} Hz"
                );
            }
        }
    }

    #[test]
    fn small_division_is_exact() {
        for d in [1u32, 2, 3, 7, 10, 25, 512, 10_000, 15_625, 0xFFFF] {
            for n in samples() {
                assert_eq!(
                    div_small(n, NonZeroU32::new(d).unwrap()),
                    (n / u64::from(d), (n % u64::from(d)) as u32),
                    "{n} / {d}"
                );
            }
        }
    }

    #[test]
    fn a_cached_scale_is_checked_against_the_rate_asked_for() {
        let cache = AtomicU32::new(0);
        assert_eq!(Scale::cached(&cache, 100), Scale::new(100));
        let word = cache.load(Ordering::Relaxed);
        assert_ne!(word, 0);
        // The same rate reads the stored word back; another rate does not take it.
        assert_eq!(Scale::unpack(word, 100), Scale::new(100));
        assert_eq!(Scale::unpack(word, 1_000), None);
        assert_eq!(Scale::cached(&cache, 25_000_000), Scale::new(25_000_000));
        assert_eq!(
            Scale::unpack(cache.load(Ordering::Relaxed), 25_000_000),
            Scale::new(25_000_000)
        );
        // A rate with no scale leaves the cache as it was and gives None.
        assert_eq!(Scale::cached(&cache, u32::MAX), None);
        assert_eq!(
            Scale::unpack(cache.load(Ordering::Relaxed), 25_000_000),
            Scale::new(25_000_000)
        );
        // An empty word is no scale, even for a rate whose check would pass with num = 0.
        assert_eq!(Scale::unpack(0, 100), None);
    }

    #[test]
    fn ticks_round_up() {
        assert_eq!(us_to_ticks_ceil(0, 100), 0);
        assert_eq!(us_to_ticks_ceil(1, 100), 1);
        assert_eq!(us_to_ticks_ceil(10_000, 100), 1);
        assert_eq!(us_to_ticks_ceil(10_001, 100), 2);
        assert_eq!(us_to_ticks_ceil(1_000_000, 100), 100);
        assert_eq!(us_to_ticks_ceil(1_500, 1_000), 2);
        assert_eq!(us_to_ticks_ceil(1_000, 10_000), 10);
        assert_eq!(us_to_ticks_ceil(7, 32_768), 1);
        assert_eq!(us_to_ticks_ceil(u64::MAX, 1_000_000), u64::MAX);
        assert_eq!(us_to_ticks_ceil(u64::MAX, u32::MAX), u64::MAX);
        assert_eq!(us_to_ticks_ceil(5, 0), 0);
    }

    #[test]
    fn timeouts_map_to_forever_poll_or_ticks() {
        assert_eq!(timeout_ticks(None, 100, i64::MAX, &AtomicU32::new(0)), -1);
        assert_eq!(timeout_ticks(Some(0), 100, i64::MAX, &AtomicU32::new(0)), 0);
        // A positive timeout shorter than a tick still waits one tick (never a busy poll).
        assert_eq!(timeout_ticks(Some(1), 100, i64::MAX, &AtomicU32::new(0)), 1);
        assert_eq!(timeout_ticks(Some(25_000), 100, i64::MAX, &AtomicU32::new(0)), 3);
        assert_eq!(timeout_ticks(Some(1_000), 10_000, i64::MAX, &AtomicU32::new(0)), 10);
    }

    #[test]
    fn long_timeouts_clamp_to_the_largest_finite_one() {
        let max32 = i64::from(u32::MAX) - 1;
        assert_eq!(timeout_ticks(Some(u64::MAX), 100, max32, &AtomicU32::new(0)), max32);
        assert_eq!(
            timeout_ticks(Some(u64::MAX), u32::MAX, i64::MAX, &AtomicU32::new(0)),
            i64::MAX
        );
        assert_eq!(
            timeout_ticks(Some(u64::MAX), 10_000, i64::MAX, &AtomicU32::new(0)),
            184_467_440_737_095_517
        );
        // 2^32 ms at 1 kHz does not fit 32 bits.
        assert_eq!(timeout_ticks(Some(1 << 42), 1_000, max32, &AtomicU32::new(0)), max32);
        // A nonsensical max still yields a finite, positive wait.
        assert_eq!(timeout_ticks(Some(10), 100, 0, &AtomicU32::new(0)), 1);
    }

    #[test]
    fn priorities_count_up_and_land_in_the_preemptible_range() {
        // Zephyr's default CONFIG_NUM_PREEMPT_PRIORITIES is 15: priorities 0..=14.
        assert_eq!(zephyr_priority(0, 15), Some(14));
        assert_eq!(zephyr_priority(2, 15), Some(12));
        assert_eq!(zephyr_priority(14, 15), Some(0));
        assert_eq!(zephyr_priority(15, 15), None);
        assert_eq!(zephyr_priority(u8::MAX, 15), None);
        // Higher port priority is more urgent, i.e. a lower Zephyr number.
        for p in 0..14u8 {
            assert!(zephyr_priority(p + 1, 15) < zephyr_priority(p, 15));
        }
        assert_eq!(zephyr_priority(0, 1), Some(0));
        assert_eq!(zephyr_priority(0, 0), None);
    }
}
