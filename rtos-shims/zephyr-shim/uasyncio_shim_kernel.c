/*
 * uasyncio_shim_kernel.c: the kernel calls of the C shim that the uasyncio-zephyr-sys crate
 * (rtos-shims/zephyr-sys-port) makes from Rust through zephyr-sys in a zephyr-lang-rust app.
 *
 * Compiled unless CONFIG_UASYNCIO_ZEPHYR_SYS=y (cmake/zephyr.cmake): heap allocation, the
 * binary semaphore, the clock, context queries, the Kconfig getters and console output.
 * Both definitions implement the functions of uasyncio_shim.h with the same behaviour; the
 * rest of the shim (uasyncio_shim.c) is shared. See uasyncio_shim.c for the design rules.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */

#include <zephyr/kernel.h>
#include <zephyr/sys/printk.h>

#include "uasyncio_shim.h"

/* ---------------------------------------------------------------------------------------
 * Heap: the dedicated k_heap (CONFIG_UASYNCIO_HEAP_SIZE > 0) or the system heap.
 */

#if CONFIG_UASYNCIO_HEAP_SIZE > 0
extern struct k_heap uasyncio_heap; /* K_HEAP_DEFINE in uasyncio_shim.c */

void *uasyncio_shim_alloc(size_t align, size_t size)
{
	return k_heap_aligned_alloc(&uasyncio_heap, align, size, K_NO_WAIT);
}

void uasyncio_shim_free(void *ptr)
{
	k_heap_free(&uasyncio_heap, ptr);
}
#else
#if !defined(CONFIG_HEAP_MEM_POOL_SIZE) || CONFIG_HEAP_MEM_POOL_SIZE == 0
#error "CONFIG_UASYNCIO_HEAP_SIZE=0 puts Rust allocations on the system heap, but it has no memory: set CONFIG_HEAP_MEM_POOL_SIZE (e.g. 16384) or CONFIG_UASYNCIO_HEAP_SIZE > 0"
#endif
void *uasyncio_shim_alloc(size_t align, size_t size)
{
	/* k_aligned_alloc() wants a power of two that is a multiple of sizeof(void *). */
	if (align < sizeof(void *)) {
		align = sizeof(void *);
	}
	return k_aligned_alloc(align, size);
}

void uasyncio_shim_free(void *ptr)
{
	k_free(ptr);
}
#endif

/* ---------------------------------------------------------------------------------------
 * Binary semaphore: a k_sem with limit 1 (gives before a take coalesce).
 */

void *uasyncio_shim_sem_new(void)
{
	struct k_sem *sem = uasyncio_shim_alloc(__alignof__(struct k_sem), sizeof(struct k_sem));

	if (sem != NULL) {
		k_sem_init(sem, 0, 1);
	}
	return sem;
}

void uasyncio_shim_sem_delete(void *sem)
{
	uasyncio_shim_free(sem);
}

void uasyncio_shim_sem_give(void *sem)
{
	k_sem_give((struct k_sem *)sem);
}

int uasyncio_shim_sem_take(void *sem, int64_t ticks)
{
	k_timeout_t timeout;

	if (ticks < 0) {
		timeout = K_FOREVER;
	} else if (ticks == 0) {
		timeout = K_NO_WAIT;
	} else {
		/* The Rust side clamps to uasyncio_shim_max_timeout_ticks(). */
		timeout = K_TICKS((k_ticks_t)ticks);
	}
	return k_sem_take((struct k_sem *)sem, timeout) == 0;
}

int64_t uasyncio_shim_max_timeout_ticks(void)
{
#ifdef CONFIG_TIMEOUT_64BIT
	return INT64_MAX;
#else
	/* k_ticks_t is uint32_t and (k_ticks_t)-1 means K_FOREVER. */
	return (int64_t)UINT32_MAX - 1;
#endif
}

/* ---------------------------------------------------------------------------------------
 * Time.
 */

uint32_t uasyncio_shim_ticks_per_sec(void)
{
	return CONFIG_SYS_CLOCK_TICKS_PER_SEC;
}

/*
 * The monotonic clock's raw value and its rate. The 64-bit hardware cycle counter gives
 * microsecond resolution where the timer driver has one (native_sim; Cortex-M SysTick with
 * CONFIG_CORTEX_M_SYSTICK_64BIT_CYCLE_COUNTER=y); otherwise the kernel tick count.
 */
uint64_t uasyncio_shim_clock_raw(void)
{
#ifdef CONFIG_TIMER_HAS_64BIT_CYCLE_COUNTER
	return k_cycle_get_64();
#else
	return (uint64_t)k_uptime_ticks();
#endif
}

uint32_t uasyncio_shim_clock_hz(void)
{
#ifdef CONFIG_TIMER_HAS_64BIT_CYCLE_COUNTER
	return (uint32_t)sys_clock_hw_cycles_per_sec();
#else
	return CONFIG_SYS_CLOCK_TICKS_PER_SEC;
#endif
}

/* ---------------------------------------------------------------------------------------
 * Context, Kconfig getters, output.
 */

int uasyncio_shim_in_isr(void)
{
	return k_is_in_isr() ? 1 : 0;
}

uintptr_t uasyncio_shim_current_thread(void)
{
	return (uintptr_t)k_current_get();
}

int uasyncio_shim_num_preempt_priorities(void)
{
	return CONFIG_NUM_PREEMPT_PRIORITIES;
}

void uasyncio_shim_print(const char *buf, size_t len)
{
	printk("%.*s", (int)len, buf);
}

size_t uasyncio_shim_heap_size(void)
{
#if CONFIG_UASYNCIO_HEAP_SIZE > 0
	return CONFIG_UASYNCIO_HEAP_SIZE;
#else
	return 0;
#endif
}

int uasyncio_shim_log_level(void)
{
	return CONFIG_UASYNCIO_LOG_LEVEL;
}
