#include <zephyr/kernel.h>
#include <uasyncio.h>

UASYNCIO_FLAG_DECLARE(BUTTON);

/* Stands in for a button's interrupt handler: a k_timer expiry function runs in an ISR. */
static void button_isr(struct k_timer *timer)
{
	uasyncio_flag_set(&BUTTON);
}

K_TIMER_DEFINE(button_timer, button_isr, NULL);

int main(void)
{
	k_timer_start(&button_timer, K_MSEC(700), K_MSEC(700));
	return 0;
}
