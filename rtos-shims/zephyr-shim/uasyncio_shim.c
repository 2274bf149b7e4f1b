/*
 * uasyncio_shim.c: Zephyr kernel services as real symbols for the Rust side.
 *
 * Many Zephyr kernel calls are static inline functions or syscall wrappers generated into
 * the build's headers (k_sem_give, k_sem_take, k_uptime_ticks, k_current_get, irq_lock,
 * k_cycle_get_64), so Rust cannot call them directly. This file is compiled inside the
 * Zephyr build, with the application's Kconfig, and exports each one as a plain function
 * with a fixed C ABI. rtos-shims/src/zephyr/ffi.rs declares the same functions; the
 * files change together.
 *
 * Two files: this one is always compiled; uasyncio_shim_kernel.c (heap calls, semaphore,
 * clock, context queries, Kconfig getters, output) is left out with
 * CONFIG_UASYNCIO_ZEPHYR_SYS=y (zephyr-lang-rust apps), where the uasyncio-zephyr-sys crate
 * (rtos-shims/zephyr-sys-port) implements the same functions in Rust through zephyr-sys.
 * What stays here is what zephyr-sys does not expose: irq_lock()/irq_unlock() (macros over
 * the arch's always-inline arch_irq_lock(), outside zephyr-sys's allowlist of k_, sys_ and gpio_ names),
 * the heap object (K_HEAP_DEFINE), thread creation (its stack size and alignment are the
 * function-like macros K_KERNEL_STACK_LEN and Z_KERNEL_STACK_OBJ_ALIGN), k_panic() (an arch
 * macro), SYS_INIT, K_THREAD_DEFINE and the RAM report.
 *
 * Design rules:
 * - No policy here: conversions (µs to ticks, priority mapping) live in Rust as pure
 *   functions with host tests (rtos-shims/src/zephyr/convert.rs). The shim reports the raw
 *   numbers (tick rate, clock rate, priority counts) that those functions need.
 * - Kernel objects are allocated here, never inside Rust values: a struct k_sem has an
 *   embedded wait queue that must not move, and its size depends on Kconfig.
 * - Everything an interrupt handler may reach (sem_give, alloc/free, in_isr, clock) is
 *   ISR-safe in Zephyr.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */

#include <zephyr/kernel.h>
#include <zephyr/sys/printk.h>
#include <zephyr/sys/slist.h>
#include <zephyr/init.h>
#include <string.h>

#include "uasyncio_shim.h"

/* ---------------------------------------------------------------------------------------
 * Heap: a dedicated k_heap (CONFIG_UASYNCIO_HEAP_SIZE > 0) or the system heap; the functions
 * that allocate from it are in uasyncio_shim_kernel.c (or the uasyncio-zephyr-sys crate).
 */

#if CONFIG_UASYNCIO_HEAP_SIZE > 0
/* Not static: the allocation functions (uasyncio_shim_kernel.c, or the uasyncio-zephyr-sys
 * crate with CONFIG_UASYNCIO_ZEPHYR_SYS=y) use it by name. The macro places it where the
 * kernel initialises it at boot. */
K_HEAP_DEFINE(uasyncio_heap, CONFIG_UASYNCIO_HEAP_SIZE);
#endif

/* ---------------------------------------------------------------------------------------
 * Interrupt lock (the Rust critical-section implementation). Kept in C in every
 * configuration: irq_lock() is a macro over the arch's always-inline arch_irq_lock(), which
 * zephyr-sys does not expose, and the k_spin_lock() it does expose does not nest (a second
 * take of one lock fails CONFIG_SPIN_VALIDATE), as critical sections must.
 */

unsigned int uasyncio_shim_irq_lock(void)
{
	return irq_lock();
}

void uasyncio_shim_irq_unlock(unsigned int key)
{
	irq_unlock(key);
}

/* ---------------------------------------------------------------------------------------
 * Threads started from Rust (rtos_shims::spawn_thread) or through the C API.
 *
 * The k_thread and its stack come from the uasyncio heap. A thread cannot free the stack
 * it runs on, so a thread that returns puts its record on a list of finished threads; the
 * next spawn joins them (they are dead or about to be) and frees their memory.
 */

/* K_KERNEL_STACK_LEN is public since Zephyr 3.5; 3.4 has only the internal name. */
#ifdef K_KERNEL_STACK_LEN
#define UASYNCIO_KERNEL_STACK_LEN(size) K_KERNEL_STACK_LEN(size)
#else
#define UASYNCIO_KERNEL_STACK_LEN(size) Z_KERNEL_STACK_LEN(size)
#endif

struct uasyncio_thread {
	struct k_thread thread;
	sys_snode_t node;
	void (*entry)(void *arg);
	void *arg;
	void *stack;
};

static sys_slist_t finished_threads = SYS_SLIST_STATIC_INIT(&finished_threads);

static void reap_finished_threads(void)
{
	for (;;) {
		unsigned int key = irq_lock();
		sys_snode_t *node = sys_slist_get(&finished_threads);

		irq_unlock(key);
		if (node == NULL) {
			return;
		}
		struct uasyncio_thread *t = CONTAINER_OF(node, struct uasyncio_thread, node);

		(void)k_thread_join(&t->thread, K_FOREVER);
		uasyncio_shim_free(t->stack);
		uasyncio_shim_free(t);
	}
}

static void thread_trampoline(void *p1, void *p2, void *p3)
{
	struct uasyncio_thread *t = p1;

	ARG_UNUSED(p2);
	ARG_UNUSED(p3);
	/* The loop thread of uasyncio_start() prints its RAM report from Rust (component/src/ffi.rs),
	 * before it reports itself returned; other threads stay quiet. */
	t->entry(t->arg);

	unsigned int key = irq_lock();

	sys_slist_append(&finished_threads, &t->node);
	irq_unlock(key);
	/* Returning ends the thread (z_thread_entry calls k_thread_abort). */
}

int uasyncio_shim_thread_spawn(const char *name, size_t name_len, size_t stack_size, int priority,
			       void (*entry)(void *arg), void *arg)
{
	reap_finished_threads();

	if (stack_size == 0) {
		stack_size = CONFIG_UASYNCIO_LOOP_THREAD_STACK_SIZE;
	}
	struct uasyncio_thread *t = uasyncio_shim_alloc(__alignof__(struct uasyncio_thread),
							sizeof(struct uasyncio_thread));
	if (t == NULL) {
		return -ENOMEM;
	}
	size_t stack_len = UASYNCIO_KERNEL_STACK_LEN(stack_size);

	t->stack = uasyncio_shim_alloc(Z_KERNEL_STACK_OBJ_ALIGN, stack_len);
	if (t->stack == NULL) {
		uasyncio_shim_free(t);
		return -ENOMEM;
	}
	t->entry = entry;
	t->arg = arg;

	k_tid_t tid = k_thread_create(&t->thread, (k_thread_stack_t *)t->stack, stack_size,
				      thread_trampoline, t, NULL, NULL, priority, 0, K_FOREVER);
#ifdef CONFIG_THREAD_NAME
	if (name != NULL) {
		char buf[CONFIG_THREAD_MAX_NAME_LEN];
		size_t n = MIN(name_len, sizeof(buf) - 1);

		memcpy(buf, name, n);
		buf[n] = '\0';
		(void)k_thread_name_set(tid, buf);
	}
#else
	ARG_UNUSED(name);
	ARG_UNUSED(name_len);
#endif
	k_thread_start(tid);
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Fatal errors (k_panic() is an arch macro: no Rust binding).
 */

FUNC_NORETURN void uasyncio_shim_panic(void)
{
	k_panic();
	CODE_UNREACHABLE;
}

/*
 * Arm EHABI: rustc emits unwind-table entries (.ARM.exidx) for a few of its own shim
 * functions even with panic = "abort", and those entries name the personality routine
 * __aeabi_unwind_cpp_pr0. Nothing unwinds in this image, so the routine is never called;
 * this weak stand-in only satisfies the linker (Zephyr links libgcc, where the real one
 * lives, before the Rust library). With C++ exceptions enabled, libgcc's routine is the
 * one to use, and this definition is left out.
 */
#if defined(CONFIG_ARM) && !defined(CONFIG_CPP_EXCEPTIONS)
__weak void __aeabi_unwind_cpp_pr0(void)
{
}
#endif

/* ---------------------------------------------------------------------------------------
 * RAM report (CONFIG_UASYNCIO_RAM_REPORT): the calling thread's stack high-water mark
 * (Zephyr fills stacks with a pattern at creation, CONFIG_INIT_STACKS, and counts what is
 * still untouched) and the uasyncio heap's peak (sys_heap runtime statistics). Printed when
 * the loop thread's body returns and by the tests before they exit; it is what the Kconfig
 * defaults of the stack and heap sizes were chosen from.
 */
void uasyncio_ram_report(void)
{
#ifdef CONFIG_UASYNCIO_RAM_REPORT
	k_tid_t self = k_current_get();
	size_t unused = 0;
	size_t stack_size = self->stack_info.size;
	size_t heap_peak = 0;
	size_t heap_size = 0;

	if (k_thread_stack_space_get(self, &unused) != 0) {
		unused = stack_size;
	}
#if CONFIG_UASYNCIO_HEAP_SIZE > 0
	struct sys_memory_stats stats;

	if (sys_heap_runtime_stats_get(&uasyncio_heap.heap, &stats) == 0) {
		heap_peak = stats.max_allocated_bytes;
	}
	heap_size = CONFIG_UASYNCIO_HEAP_SIZE;
#endif
	printk("uasyncio ram: thread %s stack used %u of %u B, heap peak %u of %u B\n",
	       k_thread_name_get(self) ? k_thread_name_get(self) : "?", (unsigned int)(stack_size - unused),
	       (unsigned int)stack_size, (unsigned int)heap_peak, (unsigned int)heap_size);
#endif
}

/* ---------------------------------------------------------------------------------------
 * Boot: install the Rust logger, then (optionally) start the loop thread.
 */

#ifdef CONFIG_UASYNCIO_LOOP_THREAD
/* The C API's record of the loop thread (component/src/ffi.rs), when the firmware links the
 * C API (cargo feature `ffi`). Weak: without it they are NULL and not called. */
extern void uasyncio_boot_loop_began(uintptr_t thread) __attribute__((weak));
extern void uasyncio_boot_loop_returned(void) __attribute__((weak));
extern const k_tid_t uasyncio_loop;
#endif

static int uasyncio_shim_init(void)
{
	uasyncio_zephyr_port_init();
#ifdef CONFIG_UASYNCIO_LOOP_THREAD
	/* Before main() runs (SYS_INIT): a uasyncio_start() there is refused with
	 * UASYNCIO_E_STATE, and uasyncio_loop_state() says the loop runs. */
	if (uasyncio_boot_loop_began != NULL) {
		uasyncio_boot_loop_began((uintptr_t)uasyncio_loop);
	}
#endif
	return 0;
}

SYS_INIT(uasyncio_shim_init, APPLICATION, 0);

#ifdef CONFIG_UASYNCIO_LOOP_THREAD
static void loop_thread_entry(void *p1, void *p2, void *p3)
{
	ARG_UNUSED(p1);
	ARG_UNUSED(p2);
	ARG_UNUSED(p3);
	rust_main();
	uasyncio_ram_report();
	if (uasyncio_boot_loop_returned != NULL) {
		uasyncio_boot_loop_returned();
	}
}

K_THREAD_DEFINE(uasyncio_loop, CONFIG_UASYNCIO_LOOP_THREAD_STACK_SIZE, loop_thread_entry, NULL,
		NULL, NULL, CONFIG_UASYNCIO_LOOP_THREAD_PRIORITY, 0, 0);
#endif
