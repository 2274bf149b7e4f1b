/*
 * A firmware's existing C code, next to the uasyncio loop, using only uasyncio.h:
 *
 *   - main() creates a message queue and starts the loop thread with uasyncio_start()
 *     (CONFIG_UASYNCIO_LOOP_THREAD=n, so the module does not start one itself). Its priority
 *     counts as in the seam, higher is more urgent, as on FreeRTOS: the Zephyr port runs the
 *     thread at K_PRIO_PREEMPT(CONFIG_NUM_PREEMPT_PRIORITIES - 1 - priority);
 *   - a legacy C thread (a "sensor" polled every 50 ms) sends each sample to the loop with
 *     uasyncio_queue_send() and, every fifth sample, sets the ALARM ThreadSafeFlag that a Rust
 *     task awaits;
 *   - main() then waits for the loop's entry to return and prints its exit code.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <zephyr/kernel.h>

#include <uasyncio.h>

#define SAMPLES 20
#define LOOP_PRIORITY 5   /* uasyncio.h scale: K_PRIO_PREEMPT(9) with 15 preempt priorities */
#define SENSOR_PRIORITY 4 /* Zephyr scale: the legacy thread outranks the loop */

/* Defined in Rust (lib.rs) as a #[no_mangle] static ThreadSafeFlag. */
UASYNCIO_FLAG_DECLARE(ALARM);

/* The loop thread's entry, in Rust (lib.rs). */
extern int app_loop(void *arg);

static uasyncio_queue_t *sensor_queue;
static K_SEM_DEFINE(queue_ready, 0, 1);
static unsigned int sent, alarms;

static void sensor_thread(void *p1, void *p2, void *p3)
{
	ARG_UNUSED(p1);
	ARG_UNUSED(p2);
	ARG_UNUSED(p3);

	k_sem_take(&queue_ready, K_FOREVER);
	for (uint32_t n = 1; n <= SAMPLES; n++) {
		k_msleep(50);
		uint32_t sample[2] = {n, n * 1000};

		if (uasyncio_queue_send(sensor_queue, sample, sizeof(sample)) == UASYNCIO_OK) {
			sent++;
		}
		if (n % 5 == 0) {
			alarms++;
			uasyncio_flag_set(&ALARM);
		}
	}
}

K_THREAD_DEFINE(sensor, 2048, sensor_thread, NULL, NULL, NULL, SENSOR_PRIORITY, 0, 0);

int main(void)
{
	sensor_queue = uasyncio_queue_create(8, 2 * sizeof(uint32_t));
	if (sensor_queue == NULL) {
		printk("legacy_thread: out of memory\n");
		return 0;
	}
	uasyncio_config_t config = {
		.name = "uasyncio",
		.stack_bytes = 4096, /* from the uasyncio heap; measured: 2,144 B used on Cortex-M3 (Zephyr 4.0.0) */
		.priority = LOOP_PRIORITY,
		.entry = app_loop,
		.arg = sensor_queue,
	};
	int rc = uasyncio_start(&config);

	if (rc != UASYNCIO_OK) {
		printk("legacy_thread: uasyncio_start failed: %d\n", rc);
		return 0;
	}
	printk("legacy_thread: loop thread started\n");
	k_sem_give(&queue_ready);

	int code;

	while (uasyncio_loop_state(&code) != 2) {
		k_msleep(10);
	}
	printk("legacy_thread: loop returned %d, C thread sent %u samples, %u dropped, %u alarms\n",
	       code, sent, uasyncio_queue_dropped(sensor_queue), alarms);
	return 0;
}
