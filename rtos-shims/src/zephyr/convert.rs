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
//! - [`zephyr_priority`] maps the seam's "higher is more urgent" `u8` onto Zephyr's
//!   preemptible range, where lower is more urgent, or refuses it: a thread never runs at an
//!   urgency other than the one asked for.

/// Microseconds in a second.
const US_PER_SEC: u64 = 1_000_000;

/// Converts a raw clock count at `hz` counts per second into microseconds (floor).
///
/// Splits the count into whole seconds and a remainder so that no intermediate product
/// overflows: `rem < hz < 2^32`, so `rem * 10^6 < 2^52`. Zephyr's rates are 32-bit
/// (`sys_clock_hw_cycles_per_sec()`, `CONFIG_SYS_CLOCK_TICKS_PER_SEC`), which keeps this to
/// two `u64` divisions and no 128-bit arithmetic (Cortex-M3 has no 64-bit divide either).
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

/// The tick count the shim passes to `k_sem_take`: `-1` waits forever, `0` polls, a positive
/// count waits that many ticks at most. `max_ticks` is the largest finite timeout a
/// `k_timeout_t` holds in this build (`uasyncio_shim_max_timeout_ticks`).
pub(crate) fn timeout_ticks(timeout_us: Option<u64>, ticks_per_sec: u32, max_ticks: i64) -> i64 {
    match timeout_us {
        None => -1,
        Some(0) => 0,
        Some(us) => {
            let ticks = us_to_ticks_ceil(us, ticks_per_sec).max(1);
            let max = u64::try_from(max_ticks.max(1)).unwrap_or(1);
            // ticks <= max <= i64::MAX, so the conversion cannot fail.
            i64::try_from(ticks.min(max)).unwrap_or(i64::MAX)
        }
    }
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
        assert_eq!(timeout_ticks(None, 100, i64::MAX), -1);
        assert_eq!(timeout_ticks(Some(0), 100, i64::MAX), 0);
        // A positive timeout shorter than a tick still waits one tick (never a busy poll).
        assert_eq!(timeout_ticks(Some(1), 100, i64::MAX), 1);
        assert_eq!(timeout_ticks(Some(25_000), 100, i64::MAX), 3);
        assert_eq!(timeout_ticks(Some(1_000), 10_000, i64::MAX), 10);
    }

    #[test]
    fn long_timeouts_clamp_to_the_largest_finite_one() {
        let max32 = i64::from(u32::MAX) - 1;
        assert_eq!(timeout_ticks(Some(u64::MAX), 100, max32), max32);
        assert_eq!(timeout_ticks(Some(u64::MAX), u32::MAX, i64::MAX), i64::MAX);
        assert_eq!(timeout_ticks(Some(u64::MAX), 10_000, i64::MAX), 184_467_440_737_095_517);
        // 2^32 ms at 1 kHz does not fit 32 bits.
        assert_eq!(timeout_ticks(Some(1 << 42), 1_000, max32), max32);
        // A nonsensical max still yields a finite, positive wait.
        assert_eq!(timeout_ticks(Some(10), 100, 0), 1);
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
