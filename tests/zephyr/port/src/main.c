/*
 * C side of the port test: a k_timer whose expiry handler (interrupt context) calls into
 * Rust. The checks themselves run in Rust, in the loop thread (rust_main, lib.rs).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <zephyr/kernel.h>

/* Rust: called from the k_timer expiry handler, i.e. in interrupt context. Returns
 * nonzero to stop the timer. */
extern int port_test_on_timer(void);

static void expiry(struct k_timer *timer)
{
	if (port_test_on_timer()) {
		k_timer_stop(timer);
	}
}

K_TIMER_DEFINE(port_test_timer, expiry, NULL);

void port_test_timer_start(uint32_t period_us)
{
	k_timer_start(&port_test_timer, K_USEC(period_us), K_USEC(period_us));
}

void port_test_timer_stop(void)
{
	k_timer_stop(&port_test_timer);
}

uint32_t port_test_cycles(void)
{
	return k_cycle_get_32();
}

uint32_t port_test_cycles_per_sec(void)
{
	return sys_clock_hw_cycles_per_sec();
}

int main(void)
{
	printk("port test: %s, %u ticks/s, loop thread runs the checks\n", CONFIG_BOARD,
	       CONFIG_SYS_CLOCK_TICKS_PER_SEC);
	return 0;
}
