/*
 * C side of the timer test: a periodic k_timer whose expiry function (interrupt context)
 * calls the Rust handler, and the hardware cycle counter for latency figures.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <zephyr/kernel.h>

extern int timer_isr_on_expiry(void);

static void expiry(struct k_timer *timer)
{
	if (timer_isr_on_expiry()) {
		k_timer_stop(timer);
	}
}

K_TIMER_DEFINE(test_timer, expiry, NULL);

void timer_isr_start(uint32_t period_us)
{
	k_timer_start(&test_timer, K_USEC(period_us), K_USEC(period_us));
}

void timer_isr_stop(void)
{
	k_timer_stop(&test_timer);
}

uint32_t timer_isr_cycles(void)
{
	return k_cycle_get_32();
}

uint32_t timer_isr_cycles_per_sec(void)
{
	return sys_clock_hw_cycles_per_sec();
}

int main(void)
{
	return 0;
}
