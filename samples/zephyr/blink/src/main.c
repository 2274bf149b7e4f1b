/*
 * The C half of the blink sample: the "board support" that a firmware already has.
 * The Rust tasks call board_led_set(); here an LED is a printk line (on hardware it would
 * be gpio_pin_set_dt() on the board's led0/led1 aliases). The loop thread itself is started
 * by the uasyncio module (CONFIG_UASYNCIO_LOOP_THREAD) and runs rust_main() in lib.rs.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <zephyr/kernel.h>

void board_led_set(int led, int on)
{
	printk("%6u ms  LED%d %s\n", k_uptime_get_32(), led, on ? "on" : "off");
}

void board_blink_done(uint32_t elapsed_ms, unsigned int led1, unsigned int led2)
{
	printk("blink: done after %u ms, LED1 blinked %u times, LED2 %u times\n", elapsed_ms, led1,
	       led2);
}

int main(void)
{
	printk("blink: main() returns; the uasyncio loop thread blinks the LEDs\n");
	return 0;
}
