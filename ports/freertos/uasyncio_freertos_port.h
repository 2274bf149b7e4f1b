/*
 * uasyncio_freertos_port.h: the C half of rtos-shims' `freertos` port.
 *
 * Most of the FreeRTOS API is macros (xSemaphoreGive, taskENTER_CRITICAL, portYIELD_FROM_ISR)
 * whose expansion depends on the application's FreeRTOSConfig.h and on the port. This file's
 * functions are the real symbols the Rust side calls; uasyncio_freertos_port.c is compiled
 * inside the application's build, against its own freertos_kernel and FreeRTOSConfig.h.
 *
 * Types on this boundary are fixed-width on purpose: BaseType_t and TickType_t are 64-bit on
 * the POSIX port and 32-bit on Cortex-M, so none of them crosses into Rust.
 *
 * Not a user API: C application code uses uasyncio.h. The exceptions are uasyncio_isr_enter()
 * and uasyncio_isr_exit(), which only matter on the POSIX simulator port (see below).
 */
#ifndef UASYNCIO_FREERTOS_PORT_H
#define UASYNCIO_FREERTOS_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `ticks` value meaning "block until given". */
#define UASYNCIO_RTOS_FOREVER    UINT64_MAX

/* Return codes of uasyncio_rtos_task_create(). */
#define UASYNCIO_RTOS_OK         0
#define UASYNCIO_RTOS_NOMEM      ( -1 )
#define UASYNCIO_RTOS_REFUSED    ( -2 )
#define UASYNCIO_RTOS_MISUSE     ( -3 ) /* a task-only call made from an ISR */
#define UASYNCIO_RTOS_NOT_RUNNING ( -4 ) /* a blocking call before vTaskStartScheduler() */

/* Binary semaphore (xSemaphoreCreateBinary). give and take return UASYNCIO_RTOS_MISUSE when
 * called from an ISR; take returns 1 (taken), 0 (timed out) or a negative code.
 * give_from_isr uses the task API when called from a task. */
void * uasyncio_rtos_sem_create( void );
void uasyncio_rtos_sem_delete( void * sem );
int uasyncio_rtos_sem_give( void * sem );
void uasyncio_rtos_sem_give_from_isr( void * sem );
int uasyncio_rtos_sem_take( void * sem, uint64_t ticks );

/* Direct-to-task notification on index UASYNCIO_NOTIFY_INDEX, same conventions. */
int uasyncio_rtos_notify_give( void * task );
void uasyncio_rtos_notify_give_from_isr( void * task );
/* The same for a caller that knows it runs in an interrupt handler (it does not ask again). */
void uasyncio_rtos_notify_give_isr( void * task );
int uasyncio_rtos_notify_take( uint64_t ticks );

/* Time: microseconds since the scheduler's tick count was zero, and a timeout in microseconds
 * converted to the number of ticks to block so that the wake is never before the deadline. */
uint64_t uasyncio_rtos_now_us( void );
uint64_t uasyncio_rtos_timeout_ticks( uint64_t timeout_us );
/* The kernel's tick count, its low 32 bits (task context), and a tick's length in
 * microseconds rounded up: what the loop needs to tell, without reading the clock, that a
 * deadline cannot have come yet (a call and a load, where uasyncio_rtos_now_us enters a
 * critical section and reads SysTick). */
uint32_t uasyncio_rtos_tick_count( void );
uint32_t uasyncio_rtos_tick_us_ceil( void );

/* Context. */
int uasyncio_rtos_in_isr( void );
int uasyncio_rtos_scheduler_running( void );
void * uasyncio_rtos_current_task( void );
/* The calling context's identity in one call: UINTPTR_MAX in an ISR, 1 before the scheduler
 * starts, else the TaskHandle_t (never 0, 1 or UINTPTR_MAX). */
uintptr_t uasyncio_rtos_thread_id( void );

/* Tasks. The new task runs uasyncio_rtos_thread_main(arg) (defined by the Rust side), then
 * deletes itself. */
int uasyncio_rtos_task_create( const char * name, size_t name_len, size_t stack_bytes,
                               uint32_t priority, void * arg );
void uasyncio_rtos_thread_main( void * arg );
size_t uasyncio_rtos_stack_high_water_bytes( void * task );

/* Critical sections for the `critical-section` crate: the value returned by enter goes back
 * to exit. Task context uses taskENTER_CRITICAL (nests), an ISR taskENTER_CRITICAL_FROM_ISR. */
uint32_t uasyncio_rtos_critical_enter( void );
void uasyncio_rtos_critical_exit( uint32_t state );

/* Heap: pvPortMalloc's guaranteed alignment (portBYTE_ALIGNMENT). */
extern const size_t uasyncio_rtos_heap_alignment;

/* Feature `panic-handler` of rtos-shims: the panic handler hands its message to
 * uasyncio_panic_hook (uasyncio.h; weak default: nothing), then calls
 * uasyncio_rtos_panic_stop (configASSERT(0), then interrupts off and a spin; abort() on
 * POSIX). uasyncio_rtos_panic_mask disables interrupts (Armv6-M's first-panic claim). */
void uasyncio_panic_hook( const char * msg, size_t len );
void uasyncio_rtos_panic_mask( void );
void uasyncio_rtos_panic_stop( void ) __attribute__( ( noreturn ) );

/* POSIX simulator only: the tick hook is the one "interrupt" there and nothing in the port
 * tells code that it runs inside it. An application's vApplicationTickHook that calls into
 * uasyncio brackets that code with these two calls. On Cortex-M they do nothing (the IPSR
 * register tells). */
void uasyncio_isr_enter( void );
void uasyncio_isr_exit( void );

#ifdef __cplusplus
}
#endif

#endif /* UASYNCIO_FREERTOS_PORT_H */
