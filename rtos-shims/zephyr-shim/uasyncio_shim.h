/*
 * uasyncio_shim.h: the functions that uasyncio_shim.c exports to the Rust side
 * (declared again, with the same types, in rtos-shims/src/zephyr/ffi.rs), and the two Rust
 * functions the shim calls.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UASYNCIO_SHIM_H_
#define UASYNCIO_SHIM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Heap (ISR-safe; never blocks). */
void *uasyncio_shim_alloc(size_t align, size_t size);
void uasyncio_shim_free(void *ptr);

/* Binary semaphore (k_sem, limit 1). ticks < 0: forever; 0: poll. Returns 1 if taken. */
void *uasyncio_shim_sem_new(void);
void uasyncio_shim_sem_delete(void *sem);
void uasyncio_shim_sem_give(void *sem);
int uasyncio_shim_sem_take(void *sem, int64_t ticks);
int64_t uasyncio_shim_max_timeout_ticks(void);

/* Time. */
uint32_t uasyncio_shim_ticks_per_sec(void);
uint64_t uasyncio_shim_clock_raw(void);
uint32_t uasyncio_shim_clock_hz(void);

/* Context. */
int uasyncio_shim_in_isr(void);
uintptr_t uasyncio_shim_current_thread(void);
unsigned int uasyncio_shim_irq_lock(void);
void uasyncio_shim_irq_unlock(unsigned int key);

/* Threads. priority is in Zephyr's scale; stack_size 0 means the Kconfig default. */
int uasyncio_shim_num_preempt_priorities(void);
int uasyncio_shim_thread_spawn(const char *name, size_t name_len, size_t stack_size, int priority,
			       void (*entry)(void *arg), void *arg);

/* Output and fatal errors. */
void uasyncio_shim_print(const char *buf, size_t len);
int uasyncio_shim_log_level(void);
/* CONFIG_UASYNCIO_HEAP_SIZE (0: the system heap). */
size_t uasyncio_shim_heap_size(void);
void uasyncio_shim_panic(void);

/* Implemented in Rust (rtos-shims, zephyr port): installs the printk logger. */
void uasyncio_zephyr_port_init(void);

/* Implemented by the application's Rust crate when CONFIG_UASYNCIO_LOOP_THREAD=y: the body of
 * the loop thread. */
void rust_main(void);

/* With CONFIG_UASYNCIO_RAM_REPORT=y: prints the calling thread's stack high-water mark and
 * the uasyncio heap's peak ("uasyncio ram: ..."); without it, does nothing. */
void uasyncio_ram_report(void);

#ifdef __cplusplus
}
#endif

#endif /* UASYNCIO_SHIM_H_ */
