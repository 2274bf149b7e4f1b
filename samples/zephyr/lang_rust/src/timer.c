/*
 * The C half: a k_timer whose expiry function (interrupt context) sets the ThreadSafeFlag
 * that the Rust task awaits, through the C API of uasyncio.h.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <zephyr/kernel.h>
#include <uasyncio.h>

UASYNCIO_FLAG_DECLARE(TICK);

static void expiry(struct k_timer *timer)
{
	ARG_UNUSED(timer);
	uasyncio_flag_set(&TICK);
}

K_TIMER_DEFINE(tick_timer, expiry, NULL);

/* Called by the Rust task once it is about to wait. */
void lang_rust_start_timer(uint32_t period_ms)
{
	k_timer_start(&tick_timer, K_MSEC(period_ms), K_MSEC(period_ms));
}

void lang_rust_stop_timer(void)
{
	k_timer_stop(&tick_timer);
}
