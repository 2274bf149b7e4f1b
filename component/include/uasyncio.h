/*
 * uasyncio.h: the C API of uasyncio, for C code in the same firmware as the Rust event loop.
 *
 * The asyncio loop runs as one RTOS thread. C code next to it (legacy threads, interrupt
 * handlers) uses this header to
 *   - start the loop thread with a priority, a stack size and a Rust entry point;
 *   - set a ThreadSafeFlag that a Rust task awaits, from a C thread or a C interrupt handler;
 *   - hand small messages to the loop through a bounded queue that a Rust task awaits.
 *
 * Context rules, marked on every function:
 *   [ISR-safe]   callable from a thread or an interrupt handler. Never blocks, never allocates.
 *                On FreeRTOS/Cortex-M the interrupt must be at or below
 *                configMAX_SYSCALL_INTERRUPT_PRIORITY (numerically >=), like any FromISR API.
 *   [task only]  callable from a thread (RTOS task) only. Called from an interrupt handler it
 *                stops the firmware like a failed configASSERT, with a message naming the call
 *                (through the Rust panic handler).
 *
 * Status codes are negative on error (uasyncio_status_t); no function aborts on bad input
 * except the [task only] context check above.
 *
 * Link: the Rust static library of the application (built with the `uasyncio` crate's `ffi`
 * feature) provides these symbols; cmake/freertos.cmake sets it up for FreeRTOS.
 */
#ifndef UASYNCIO_H
#define UASYNCIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------------------------- */

typedef enum
{
    UASYNCIO_OK = 0,
    UASYNCIO_E_FULL = -1,    /* the queue is full: the message was not queued (dropped) */
    UASYNCIO_E_TOO_BIG = -2, /* the message is longer than the queue's item size */
    UASYNCIO_E_INVAL = -3,   /* NULL pointer or zero size */
    UASYNCIO_E_NOMEM = -4,   /* the RTOS heap is exhausted */
    UASYNCIO_E_STACK = -5,   /* uasyncio_config_t.stack_bytes < UASYNCIO_MIN_STACK_BYTES */
    UASYNCIO_E_STATE = -6,   /* wrong state: the loop thread is already started, or a
                              * loop-thread-only call was made on another thread */
    UASYNCIO_E_PRIORITY = -7 /* the RTOS refused the loop thread's priority (FreeRTOS: or a
                              * stack too large for configSTACK_DEPTH_TYPE) */
} uasyncio_status_t;

/* A message for a status code that names what to change, e.g. for a log line. Never NULL.
 * [ISR-safe] */
const char * uasyncio_status_str( int status );

/* ---- the loop thread -------------------------------------------------------------------- */

/* The loop thread's body: a Rust function with the C ABI that runs the event loop, usually a
 * `#[no_mangle] unsafe extern "C" fn(arg: *mut c_void) -> c_int` whose body calls
 * `uasyncio::ffi::run_entry` with the application's future (component/src/ffi.rs;
 * templates/freertos-app/rust/src/lib.rs is one). Its return value is kept as the loop's exit
 * code. */
typedef int ( *uasyncio_entry_t )( void * arg );

typedef struct
{
    const char * name;       /* thread name (copied; NULL: "uasyncio") */
    uint32_t stack_bytes;    /* stack size in bytes, at least UASYNCIO_MIN_STACK_BYTES (FreeRTOS:
                              * rounded up to StackType_t words) */
    uint32_t priority;       /* the RTOS's own scale (FreeRTOS: 0 .. configMAX_PRIORITIES-1) */
    uasyncio_entry_t entry;  /* required */
    void * arg;              /* passed to entry */
} uasyncio_config_t;

/* The least stack_bytes uasyncio_start accepts: the loop's own frames and one formatted
 * message (1,268 bytes measured on Cortex-M3) with headroom, doubled on 64-bit targets. Your
 * coroutines' frames come on top: measure the loop thread's high-water mark
 * (FreeRTOS: uxTaskGetStackHighWaterMark) and keep a margin. */
#define UASYNCIO_MIN_STACK_BYTES    ( ( uint32_t ) ( ( sizeof( void * ) >= 8U ) ? 4096U : 2048U ) )

/* Starts the loop thread. [task only]; may also be called from main() before the scheduler
 * starts. Returns UASYNCIO_OK, UASYNCIO_E_INVAL (NULL config, no entry), UASYNCIO_E_PRIORITY
 * (FreeRTOS: priority not below configMAX_PRIORITIES; Zephyr: not below
 * CONFIG_NUM_PREEMPT_PRIORITIES; FreeRTOS also for a stack too large for
 * configSTACK_DEPTH_TYPE), UASYNCIO_E_STACK
 * (stack_bytes below UASYNCIO_MIN_STACK_BYTES), UASYNCIO_E_NOMEM, or UASYNCIO_E_STATE if a
 * loop thread was already started. */
int uasyncio_start( const uasyncio_config_t * config );

/* The loop thread: 0 not started, 1 running, 2 returned (then *exit_code, if not NULL, gets
 * the entry's return value). [ISR-safe] */
int uasyncio_loop_state( int * exit_code );

/* For the Zephyr module's boot-time loop thread (CONFIG_UASYNCIO_LOOP_THREAD=y) only: its
 * shim records that thread here, so that uasyncio_start() refuses a second loop with
 * UASYNCIO_E_STATE. Not for applications. */
void uasyncio_boot_loop_began( uintptr_t thread );
void uasyncio_boot_loop_returned( void );

/* Once the loop thread returned with an error (uasyncio_loop_state() is 2, exit code not 0):
 * the error's text, e.g. "RuntimeError: ThreadSafeFlag already has a waiting task", when the
 * Rust entry ran its coroutine through uasyncio::ffi::run_entry (the exit code alone is -1
 * for most errors). NUL-terminated and valid until the program ends; NULL while the loop
 * runs, after a return of 0, or when the entry did not use run_entry. [ISR-safe] */
const char * uasyncio_loop_error( void );

/* The loop thread's identity (on FreeRTOS its TaskHandle_t, e.g. for
 * uxTaskGetStackHighWaterMark) while uasyncio_loop_state() is 1; NULL before it runs and
 * once its entry returned (the thread deletes itself then, so a kept handle would dangle:
 * use uasyncio_loop_stack_unused() after the end). [ISR-safe] */
void * uasyncio_loop_thread( void );

/* Once the loop thread returned (uasyncio_loop_state() is 2): the least free stack it ever
 * had, in bytes, taken as it returned (FreeRTOS uxTaskGetStackHighWaterMark). 0 before
 * that, and on Zephyr (see CONFIG_UASYNCIO_RAM_REPORT); on the FreeRTOS POSIX simulator
 * tasks run on pthread stacks and the figure means little. [ISR-safe] */
size_t uasyncio_loop_stack_unused( void );

/* ---- introspection ----------------------------------------------------------------------- */

/* Writes a dump of the loop into buf (NUL-terminated, cut to len - 1 bytes): a line with the
 * count of unfinished tasks and, when the Rust crate has its feature `stats`, the loop's
 * statistics (polls, wake-ups by source, time asleep, the longest poll and its task when
 * measured), then one line per unfinished task: id, name, state (running / ready / waiting)
 * and what it waits on. Returns the whole dump's length (>= len: it was cut; len 0 only
 * measures), UASYNCIO_E_STATE when not called on the loop's thread, UASYNCIO_E_INVAL for a
 * NULL buf with len > 0. [loop thread only] */
int uasyncio_dump_tasks( char * buf, size_t len );

/* The same dump, logged line by line through the Rust `log` facade at info level: for a debugger stopped where the loop's thread runs (gdb:
 * `set language c`, then `print ((int (*)(void)) uasyncio_log_tasks)()`; keep it linked with
 * -Wl,--undefined=uasyncio_log_tasks, nothing in C calls it). Returns UASYNCIO_OK or
 * UASYNCIO_E_STATE off the loop's thread: a shell command or a watchdog on another thread
 * sets a flag that a task awaits, and the task dumps. The firmware's Rust side installs the
 * logger (`log::set_logger`; `log::set_logger_racy` on Armv6-M); without one this
 * returns UASYNCIO_OK and prints nothing: from C, use uasyncio_dump_tasks into a buffer.
 * [loop thread only] */
int uasyncio_log_tasks( void );

/* ---- ThreadSafeFlag ------------------------------------------------------------------------ */

/* A Rust `uasyncio::ThreadSafeFlag`, opaque to C. A flag defined in Rust as
 *     #[no_mangle] pub static BUTTON: uasyncio::ThreadSafeFlag = uasyncio::ThreadSafeFlag::new();
 * (Rust edition 2024 spells the attribute `#[unsafe(no_mangle)]`) is declared in C with
 * UASYNCIO_FLAG_DECLARE(BUTTON) and used as &BUTTON. */
typedef struct uasyncio_flag uasyncio_flag_t;
#define UASYNCIO_FLAG_DECLARE( name )    extern uasyncio_flag_t name

/* Sets the flag and wakes the Rust task waiting on it. Sets before the wait collapse into one;
 * the flag clears when the wait returns. NULL is ignored. [ISR-safe] */
void uasyncio_flag_set( const uasyncio_flag_t * flag );

/* The same call under the name interrupt code expects: both take the FromISR path (the
 * FromISR give, then portYIELD_FROM_ISR if the loop thread outranks the interrupted one)
 * when the port sees an interrupt, and the task path otherwise. Cortex-M (FreeRTOS, Zephyr)
 * sees every handler; the FreeRTOS POSIX simulator sees its tick hook only between
 * uasyncio_isr_enter() and uasyncio_isr_exit() (below): the name alone does not choose the
 * path. [ISR-safe] */
void uasyncio_flag_set_from_isr( const uasyncio_flag_t * flag );

/* 1 if the flag is set, 0 if not (a snapshot). [ISR-safe] */
int uasyncio_flag_is_set( const uasyncio_flag_t * flag );

/* A new flag on the heap, for C code that creates its own; it lives until reset. Rust reaches
 * it with `uasyncio::ffi::flag_from_c`. NULL when out of memory. [task only]
 * (Flags are const everywhere in this API: setting one changes only its atomic state.) */
const uasyncio_flag_t * uasyncio_flag_create( void );

/* ---- message queue: C → loop -------------------------------------------------------------- */

/* A bounded FIFO of small messages, each up to item_size bytes, that one Rust task awaits
 * (`uasyncio::ffi::MessageQueue::recv` / `recv_into`). Lock-free: a sender claims a slot with
 * one compare-and-swap and copies the message into it, with no lock and no critical section
 * (an interrupt that preempts a sender mid-copy just takes the next slot). The copy runs in
 * the sender's context, maybe an interrupt handler: keep item_size small (tens to a few
 * hundred bytes). */
typedef struct uasyncio_queue uasyncio_queue_t;

/* Creates a queue of `capacity` messages of at most `item_size` bytes each; it lives until
 * reset. NULL if capacity or item_size is 0 or out of memory. [task only] */
uasyncio_queue_t * uasyncio_queue_create( size_t capacity, size_t item_size );

/* Queues a copy of msg[0..len) (len may be 0) and wakes the receiving task. Never blocks.
 * Returns UASYNCIO_OK, UASYNCIO_E_FULL (not queued; counted in uasyncio_queue_dropped),
 * UASYNCIO_E_TOO_BIG (len > item_size) or UASYNCIO_E_INVAL (NULL queue, or NULL msg with
 * len > 0). The queue outlives the loop: a send after the loop returned still queues (OK)
 * for a receiver that will not come, as does a flag's set; check uasyncio_loop_state() if
 * the sender must know. [ISR-safe] */
int uasyncio_queue_send( const uasyncio_queue_t * queue, const void * msg, size_t len );

/* Messages waiting in the queue (a snapshot). [ISR-safe] */
size_t uasyncio_queue_count( const uasyncio_queue_t * queue );

/* Sends refused with UASYNCIO_E_FULL so far. [ISR-safe] */
uint32_t uasyncio_queue_dropped( const uasyncio_queue_t * queue );

/* ---- panics (FreeRTOS, feature `panic-handler`) ------------------------------------------ */

/* With uasyncio's (rtos-shims') feature `panic-handler`, a Rust panic calls this with the
 * message ("panic: <file>:<line>:<col>:\n<text>", NUL-terminated, at most 255 bytes; len
 * without the NUL), then stops like a failed configASSERT. Define it to print or log the
 * message; the port's weak default does nothing. Runs in whatever context panicked. */
void uasyncio_panic_hook( const char * msg, size_t len );

/* ---- interrupt context on the FreeRTOS POSIX simulator ------------------------------------ */

/* FreeRTOS POSIX simulator port only. The tick hook (vApplicationTickHook) is the one
 * interrupt context there, and nothing in that port tells code that it runs inside it: a tick
 * hook that calls into uasyncio (uasyncio_flag_set_from_isr, uasyncio_queue_send) brackets
 * those calls with uasyncio_isr_enter() and uasyncio_isr_exit(), else uasyncio takes the
 * task path (which may block) inside the interrupt. On Cortex-M they do nothing: the IPSR
 * register tells. Defined by ports/freertos/uasyncio_freertos_port.c (not on Zephyr).
 *     void vApplicationTickHook( void )
 *     {
 *         uasyncio_isr_enter();
 *         uasyncio_flag_set_from_isr( &MY_FLAG );
 *         uasyncio_isr_exit();
 *     }
 * [ISR-safe] */
void uasyncio_isr_enter( void );
void uasyncio_isr_exit( void );

#ifdef __cplusplus
}
#endif

#endif /* UASYNCIO_H */
