/*
 * The C half of the ISR signal sample: a k_timer, whose expiry function runs in interrupt
 * context, stands for a device interrupt (a UART byte, a GPIO edge, a modem's ring line).
 * It calls isr_signal_on_expiry(), a Rust function that records the event and sets a
 * ThreadSafeFlag; the async task waiting on the flag runs in the uasyncio loop thread.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <zephyr/kernel.h>

/* Rust (lib.rs): interrupt-safe. Returns nonzero when no more expiries are wanted. */
extern int isr_signal_on_expiry(void);

static void expiry(struct k_timer *timer)
{
	if (isr_signal_on_expiry()) {
		k_timer_stop(timer);
	}
}

K_TIMER_DEFINE(signal_timer, expiry, NULL);

/* Called by the Rust task once it waits on the flag. */
void isr_signal_start_timer(uint32_t period_ms)
{
	printk("isr_signal: k_timer started, period %u ms\n", period_ms);
	k_timer_start(&signal_timer, K_MSEC(period_ms), K_MSEC(period_ms));
}

int main(void)
{
	return 0;
}
