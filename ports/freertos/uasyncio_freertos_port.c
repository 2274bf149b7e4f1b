/*
 * uasyncio_freertos_port.c: the C half of rtos-shims' `freertos` port.
 *
 * Compiled inside the application's build against its own FreeRTOS kernel and
 * FreeRTOSConfig.h (cmake/freertos.cmake does that; tests/freertos-posix's build.rs too).
 * Each function is a thin, real-symbol wrapper over a FreeRTOS macro or API whose types
 * differ per port. The decisions that are not one-liners:
 *
 * - Interrupt context. Cortex-M: the IPSR register is non-zero in a handler. POSIX simulator:
 *   the only interrupt is the tick (a SIGALRM handler running on the interrupted task's
 *   thread), and the port has no way to tell; the application's tick hook brackets its
 *   uasyncio calls with uasyncio_isr_enter()/uasyncio_isr_exit(), which count per thread.
 *
 * - Yield from an ISR. Cortex-M: portYIELD_FROM_ISR pends PendSV, so the woken task runs as
 *   soon as the interrupt returns. POSIX: portYIELD_FROM_ISR switches threads synchronously,
 *   which inside xTaskIncrementTick (the tick hook) would suspend the tick handler half way.
 *   It is not needed there: a FromISR give that unblocks a higher-priority task sets the
 *   kernel's xYieldPending, and xTaskIncrementTick then returns "switch required".
 *
 * - Time. The tick count is widened to 64 bits here when TickType_t is 32-bit (wrap detected
 *   in a critical section; blocking waits are cut into chunks of at most 2^30 ticks so the
 *   loop thread looks at the clock at least that often). On Cortex-M with the port's own
 *   SysTick set-up, the SysTick down-counter gives the microseconds inside the current tick.
 *
 * - Timeouts round up, from the current position inside the tick, so a wake is never before
 *   the deadline the Rust side computed with uasyncio_rtos_now_us().
 */
#include "FreeRTOS.h"
#include "task.h"
#include "semphr.h"

#include "uasyncio_freertos_port.h"

#include <stdlib.h> /* abort() on the POSIX simulator */

/* ---- configuration checks: what uasyncio needs from FreeRTOSConfig.h ---------------------- */

#if defined( configNUMBER_OF_CORES ) && ( configNUMBER_OF_CORES != 1 )
    #error "uasyncio's FreeRTOS port needs single-core FreeRTOS (configNUMBER_OF_CORES 1): it reads the running task from the kernel's pxCurrentTCB"
#endif

#if ( configSUPPORT_DYNAMIC_ALLOCATION != 1 )
    #error "uasyncio needs configSUPPORT_DYNAMIC_ALLOCATION 1 (tasks and the Rust heap use pvPortMalloc)"
#endif
#if !defined( INCLUDE_vTaskSuspend ) || ( INCLUDE_vTaskSuspend != 1 )
    #error "uasyncio needs INCLUDE_vTaskSuspend 1 (portMAX_DELAY must mean 'forever')"
#endif
#if !defined( INCLUDE_vTaskDelete ) || ( INCLUDE_vTaskDelete != 1 )
    #error "uasyncio needs INCLUDE_vTaskDelete 1 (a thread started by spawn_thread deletes itself)"
#endif
#if !defined( INCLUDE_xTaskGetSchedulerState ) || ( INCLUDE_xTaskGetSchedulerState != 1 )
    #error "uasyncio needs INCLUDE_xTaskGetSchedulerState 1"
#endif
#if !defined( INCLUDE_xTaskGetCurrentTaskHandle ) || ( INCLUDE_xTaskGetCurrentTaskHandle != 1 )
    #error "uasyncio needs INCLUDE_xTaskGetCurrentTaskHandle 1"
#endif
#if ( configTICK_TYPE_WIDTH_IN_BITS == TICK_TYPE_WIDTH_16_BITS )
    #error "uasyncio needs a 32- or 64-bit TickType_t: set configTICK_TYPE_WIDTH_IN_BITS to TICK_TYPE_WIDTH_32_BITS (or _64_BITS) in FreeRTOSConfig.h"
#endif
#if ( configUSE_TASK_NOTIFICATIONS != 1 )
    #error "uasyncio needs configUSE_TASK_NOTIFICATIONS 1 (the loop thread sleeps on a notification)"
#endif

/* The notification index the loop thread sleeps on: the last one, so that index 0 stays free
 * for the application and for stream/message buffers (which use index 0). Set
 * configTASK_NOTIFICATION_ARRAY_ENTRIES to 2 or more; with 1, uasyncio shares index 0 and the
 * loop thread must not use notifications on index 0 for anything else. */
#ifndef UASYNCIO_NOTIFY_INDEX
    #define UASYNCIO_NOTIFY_INDEX    ( configTASK_NOTIFICATION_ARRAY_ENTRIES - 1 )
#endif

/* The lowest index uasyncio may take. An application whose other code uses notification
 * index 0 on the loop task says so with -DUASYNCIO_NOTIFY_INDEX_MIN=1 (freertos-rust's Task
 * notifications do: samples/freertos-rust sets it), and the build stops here if the
 * configuration would make uasyncio share that index. */
#ifndef UASYNCIO_NOTIFY_INDEX_MIN
    #define UASYNCIO_NOTIFY_INDEX_MIN    0
#endif

#if ( UASYNCIO_NOTIFY_INDEX < 0 ) || ( UASYNCIO_NOTIFY_INDEX >= configTASK_NOTIFICATION_ARRAY_ENTRIES )
    #error "UASYNCIO_NOTIFY_INDEX is out of range: it must be below configTASK_NOTIFICATION_ARRAY_ENTRIES (leave UASYNCIO_NOTIFY_INDEX undefined to use the last index)"
#endif
#if ( UASYNCIO_NOTIFY_INDEX < UASYNCIO_NOTIFY_INDEX_MIN )
    #if ( configTASK_NOTIFICATION_ARRAY_ENTRIES <= UASYNCIO_NOTIFY_INDEX_MIN )
        #error "uasyncio needs configTASK_NOTIFICATION_ARRAY_ENTRIES above UASYNCIO_NOTIFY_INDEX_MIN (e.g. 2 next to freertos-rust, which uses index 0)"
    #else
        #error "UASYNCIO_NOTIFY_INDEX is below UASYNCIO_NOTIFY_INDEX_MIN: it would share a notification index that other code on the task uses"
    #endif
#endif

/* ---- port detection ------------------------------------------------------------------------ */

#if defined( __ARM_ARCH_6M__ ) || defined( __ARM_ARCH_7M__ ) || defined( __ARM_ARCH_7EM__ ) || \
    defined( __ARM_ARCH_8M_BASE__ ) || defined( __ARM_ARCH_8M_MAIN__ )
    #define UASYNCIO_CORTEX_M    1
#elif defined( __unix__ ) || defined( __APPLE__ )
    #define UASYNCIO_POSIX       1
#else
    #error "uasyncio: teach uasyncio_freertos_port.c how this port tells interrupt context"
#endif

#if UASYNCIO_CORTEX_M && ( configUSE_TICKLESS_IDLE == 0 ) &&              \
    !( defined( configOVERRIDE_DEFAULT_TICK_CONFIGURATION ) &&            \
       ( configOVERRIDE_DEFAULT_TICK_CONFIGURATION != 0 ) )
    #ifndef configSYSTICK_CLOCK_HZ
        #define UASYNCIO_SYSTICK_HZ    configCPU_CLOCK_HZ
    #else
        #define UASYNCIO_SYSTICK_HZ    configSYSTICK_CLOCK_HZ
    #endif
    /* configCPU_CLOCK_HZ often carries a cast, which #if cannot evaluate: the clock must be a
     * whole number of MHz, checked in C below (the compiler folds it). */
    #if !defined( UASYNCIO_NO_SUBTICK )
        #define UASYNCIO_SUBTICK    1
    #endif
#endif

#ifndef UASYNCIO_SUBTICK
    #define UASYNCIO_SUBTICK    0
#else
    #define UASYNCIO_CYCLES_PER_US                                                    \
    ( ( ( UASYNCIO_SYSTICK_HZ / 1000000UL ) != 0 ) ? ( uint32_t ) ( UASYNCIO_SYSTICK_HZ / 1000000UL ) : 1U )
#endif

#define UASYNCIO_TICK_US       ( 1000000ULL / ( uint64_t ) configTICK_RATE_HZ )
#define UASYNCIO_TICK_US_EXACT ( ( 1000000UL % ( uint32_t ) configTICK_RATE_HZ ) == 0 )

#if ( configTICK_TYPE_WIDTH_IN_BITS == TICK_TYPE_WIDTH_32_BITS )
    #define UASYNCIO_WIDE_TICKS     0
    #define UASYNCIO_MAX_CHUNK      ( ( TickType_t ) 0x3FFFFFFFUL )
#else
    #define UASYNCIO_WIDE_TICKS     1
    #define UASYNCIO_MAX_CHUNK      ( portMAX_DELAY - 1 )
#endif

const size_t uasyncio_rtos_heap_alignment = portBYTE_ALIGNMENT;

/* ---- context ------------------------------------------------------------------------------- */

#if UASYNCIO_POSIX
static __thread volatile int s_isr_depth;

void uasyncio_isr_enter( void )
{
    s_isr_depth++;
}

void uasyncio_isr_exit( void )
{
    s_isr_depth--;
}

int uasyncio_rtos_in_isr( void )
{
    return s_isr_depth > 0;
}
#else /* UASYNCIO_CORTEX_M */
void uasyncio_isr_enter( void )
{
}

void uasyncio_isr_exit( void )
{
}

int uasyncio_rtos_in_isr( void )
{
    uint32_t ipsr;

    __asm volatile ( "mrs %0, ipsr" : "=r" ( ipsr ) :: "memory" );
    return ipsr != 0;
}
#endif /* if UASYNCIO_POSIX */

/* Give from ISR: see the file comment for why POSIX does not yield here. */
#if UASYNCIO_POSIX
    #define UASYNCIO_YIELD_FROM_ISR( woken )    ( ( void ) ( woken ) )
#else
    #define UASYNCIO_YIELD_FROM_ISR( woken )    portYIELD_FROM_ISR( woken )
#endif

int uasyncio_rtos_scheduler_running( void )
{
    return xTaskGetSchedulerState() != taskSCHEDULER_NOT_STARTED;
}

void * uasyncio_rtos_current_task( void )
{
    return ( void * ) xTaskGetCurrentTaskHandle();
}

uintptr_t uasyncio_rtos_thread_id( void )
{
    if( uasyncio_rtos_in_isr() )
    {
        return UINTPTR_MAX;
    }

    if( xTaskGetSchedulerState() == taskSCHEDULER_NOT_STARTED )
    {
        return 1U;
    }

    return ( uintptr_t ) xTaskGetCurrentTaskHandle();
}

/* ---- critical sections --------------------------------------------------------------------- */

#define UASYNCIO_CS_TASK    0x80000000UL

uint32_t uasyncio_rtos_critical_enter( void )
{
    if( uasyncio_rtos_in_isr() )
    {
        return ( uint32_t ) taskENTER_CRITICAL_FROM_ISR();
    }

    taskENTER_CRITICAL();
    return UASYNCIO_CS_TASK;
}

void uasyncio_rtos_critical_exit( uint32_t state )
{
    if( state == UASYNCIO_CS_TASK )
    {
        taskEXIT_CRITICAL();
    }
    else
    {
        taskEXIT_CRITICAL_FROM_ISR( ( UBaseType_t ) state );
    }
}

/* ---- time ---------------------------------------------------------------------------------- */

#if !UASYNCIO_WIDE_TICKS
static uint32_t s_tick_high;
static TickType_t s_tick_last;
#endif

#if UASYNCIO_SUBTICK
    #define SYST_RVR      ( *( volatile uint32_t * ) 0xE000E014UL )
    #define SYST_CVR      ( *( volatile uint32_t * ) 0xE000E018UL )
    #define SYST_CSR      ( *( volatile uint32_t * ) 0xE000E010UL )
    #define SCB_ICSR      ( *( volatile uint32_t * ) 0xE000ED04UL )
    #define ICSR_PENDSTSET    ( 1UL << 26 )
#endif

/* Reads the 64-bit tick count and the microseconds elapsed inside the current tick. */
static uint64_t prvReadTicks( uint32_t * sub_us )
{
    UBaseType_t saved = 0;
    const int isr = uasyncio_rtos_in_isr();
    TickType_t ticks;
    uint64_t wide;

    *sub_us = 0;

    if( isr )
    {
        saved = taskENTER_CRITICAL_FROM_ISR();
        ticks = xTaskGetTickCountFromISR();
    }
    else
    {
        taskENTER_CRITICAL();
        ticks = xTaskGetTickCount();
    }

    #if UASYNCIO_SUBTICK
        if( ( ( UASYNCIO_SYSTICK_HZ % 1000000UL ) == 0 ) && ( SYST_CSR & 1UL ) &&
            uasyncio_rtos_scheduler_running() )
        {
            /* SysTick cannot run its handler here (masked, or lower priority than us), so a
             * counter that wrapped shows as PENDSTSET: that tick is not counted yet. */
            const uint32_t reload = SYST_RVR;
            uint32_t current = SYST_CVR;

            if( SCB_ICSR & ICSR_PENDSTSET )
            {
                current = SYST_CVR; /* after the wrap */
                ticks++;
            }

            if( current <= reload )
            {
                uint32_t us = ( reload - current ) / UASYNCIO_CYCLES_PER_US;

                if( us >= ( uint32_t ) UASYNCIO_TICK_US )
                {
                    us = ( uint32_t ) UASYNCIO_TICK_US - 1U;
                }

                *sub_us = us;
            }
        }
    #endif /* if UASYNCIO_SUBTICK */

    #if UASYNCIO_WIDE_TICKS
        wide = ( uint64_t ) ticks;
    #else
        /* ticks may be one ahead of the kernel's count (pending SysTick): compare with what
         * we saw last, not with the kernel. */
        if( ticks < s_tick_last )
        {
            s_tick_high++;
        }

        s_tick_last = ticks;
        wide = ( ( uint64_t ) s_tick_high << 32 ) | ( uint64_t ) ticks;
    #endif

    if( isr )
    {
        taskEXIT_CRITICAL_FROM_ISR( saved );
    }
    else
    {
        taskEXIT_CRITICAL();
    }

    return wide;
}

static uint64_t prvTicksToUs( uint64_t ticks )
{
    if( UASYNCIO_TICK_US_EXACT )
    {
        return ticks * UASYNCIO_TICK_US;
    }

    return ( ticks * 1000000ULL ) / ( uint64_t ) configTICK_RATE_HZ;
}

uint64_t uasyncio_rtos_now_us( void )
{
    uint32_t sub_us;
    const uint64_t ticks = prvReadTicks( &sub_us );

    return prvTicksToUs( ticks ) + sub_us;
}

uint32_t uasyncio_rtos_tick_count( void )
{
    /* xTickCount is read without a critical section where TickType_t is the CPU's word
     * (portTICK_TYPE_IS_ATOMIC); its low 32 bits wrap, and the caller compares them with
     * wrapping arithmetic. */
    return ( uint32_t ) xTaskGetTickCount();
}

uint32_t uasyncio_rtos_tick_us_ceil( void )
{
    return ( uint32_t ) ( ( 1000000ULL + ( uint64_t ) configTICK_RATE_HZ - 1U ) / ( uint64_t ) configTICK_RATE_HZ );
}

uint64_t uasyncio_rtos_timeout_ticks( uint64_t timeout_us )
{
    uint32_t sub_us;
    uint64_t span;

    if( timeout_us == 0 )
    {
        return 0;
    }

    ( void ) prvReadTicks( &sub_us );

    /* The wake happens on a tick boundary: the first one at or after now + timeout. */
    if( timeout_us > UINT64_MAX - UASYNCIO_TICK_US - sub_us )
    {
        return UASYNCIO_RTOS_FOREVER - 1;
    }

    span = timeout_us + sub_us;

    if( UASYNCIO_TICK_US_EXACT )
    {
        /* Spans under an hour or so (all but the longest sleeps) divide in 32 bits: one UDIV
         * on Armv7-M, where the 64-bit division is a call into libgcc of about 40
         * instructions. */
        if( span <= ( uint64_t ) ( UINT32_MAX - ( uint32_t ) UASYNCIO_TICK_US ) )
        {
            return ( ( uint32_t ) span + ( uint32_t ) UASYNCIO_TICK_US - 1U ) / ( uint32_t ) UASYNCIO_TICK_US;
        }

        return ( span + UASYNCIO_TICK_US - 1 ) / UASYNCIO_TICK_US;
    }

    return ( span * ( uint64_t ) configTICK_RATE_HZ + 999999ULL ) / 1000000ULL;
}

/* ---- waiting ------------------------------------------------------------------------------- */

/* Blocks in chunks of at most UASYNCIO_MAX_CHUNK ticks; ticks == UASYNCIO_RTOS_FOREVER blocks
 * until given. `sem` NULL: wait on the calling task's notification instead. */
static int prvTakeChunked( SemaphoreHandle_t sem, uint64_t ticks )
{
    for( ; ; )
    {
        const TickType_t chunk = ( ticks > ( uint64_t ) UASYNCIO_MAX_CHUNK ) ? UASYNCIO_MAX_CHUNK
                                                                            : ( TickType_t ) ticks;
        int got;

        if( sem != NULL )
        {
            got = xSemaphoreTake( sem, chunk ) == pdTRUE;
        }
        else
        {
            got = ulTaskNotifyTakeIndexed( UASYNCIO_NOTIFY_INDEX, pdTRUE, chunk ) != 0;
        }

        if( got )
        {
            return 1;
        }

        if( ticks <= ( uint64_t ) UASYNCIO_MAX_CHUNK )
        {
            return 0;
        }

        if( ticks != UASYNCIO_RTOS_FOREVER )
        {
            ticks -= chunk;
        }

        ( void ) uasyncio_rtos_now_us(); /* keeps the 64-bit tick extension current */
    }
}

void * uasyncio_rtos_sem_create( void )
{
    return ( void * ) xSemaphoreCreateBinary();
}

void uasyncio_rtos_sem_delete( void * sem )
{
    vSemaphoreDelete( ( SemaphoreHandle_t ) sem );
}

int uasyncio_rtos_sem_give( void * sem )
{
    if( uasyncio_rtos_in_isr() )
    {
        return UASYNCIO_RTOS_MISUSE;
    }

    ( void ) xSemaphoreGive( ( SemaphoreHandle_t ) sem ); /* pdFAIL: already given */
    return UASYNCIO_RTOS_OK;
}

void uasyncio_rtos_sem_give_from_isr( void * sem )
{
    BaseType_t woken = pdFALSE;

    if( !uasyncio_rtos_in_isr() )
    {
        ( void ) xSemaphoreGive( ( SemaphoreHandle_t ) sem );
        return;
    }

    ( void ) xSemaphoreGiveFromISR( ( SemaphoreHandle_t ) sem, &woken );
    UASYNCIO_YIELD_FROM_ISR( woken );
}

int uasyncio_rtos_sem_take( void * sem, uint64_t ticks )
{
    if( uasyncio_rtos_in_isr() )
    {
        return UASYNCIO_RTOS_MISUSE;
    }

    if( !uasyncio_rtos_scheduler_running() )
    {
        return UASYNCIO_RTOS_NOT_RUNNING;
    }

    return prvTakeChunked( ( SemaphoreHandle_t ) sem, ticks );
}

int uasyncio_rtos_notify_give( void * task )
{
    if( uasyncio_rtos_in_isr() )
    {
        return UASYNCIO_RTOS_MISUSE;
    }

    ( void ) xTaskNotifyGiveIndexed( ( TaskHandle_t ) task, UASYNCIO_NOTIFY_INDEX );
    return UASYNCIO_RTOS_OK;
}

void uasyncio_rtos_notify_give_from_isr( void * task )
{
    BaseType_t woken = pdFALSE;

    if( !uasyncio_rtos_in_isr() )
    {
        ( void ) xTaskNotifyGiveIndexed( ( TaskHandle_t ) task, UASYNCIO_NOTIFY_INDEX );
        return;
    }

    vTaskNotifyGiveIndexedFromISR( ( TaskHandle_t ) task, UASYNCIO_NOTIFY_INDEX, &woken );
    UASYNCIO_YIELD_FROM_ISR( woken );
}

void uasyncio_rtos_notify_give_isr( void * task )
{
    BaseType_t woken = pdFALSE;

    vTaskNotifyGiveIndexedFromISR( ( TaskHandle_t ) task, UASYNCIO_NOTIFY_INDEX, &woken );
    UASYNCIO_YIELD_FROM_ISR( woken );
}

int uasyncio_rtos_notify_take( uint64_t ticks )
{
    if( uasyncio_rtos_in_isr() )
    {
        return UASYNCIO_RTOS_MISUSE;
    }

    if( !uasyncio_rtos_scheduler_running() )
    {
        return UASYNCIO_RTOS_NOT_RUNNING;
    }

    return prvTakeChunked( NULL, ticks );
}

/* ---- panic (rtos-shims feature `panic-handler`) --------------------------------------------- */

/* The application overrides this to print or log a Rust panic's message (NUL-terminated,
 * `len` bytes without the NUL). The default does nothing. */
__attribute__( ( weak ) ) void uasyncio_panic_hook( const char * msg, size_t len )
{
    ( void ) msg;
    ( void ) len;
}

#if UASYNCIO_POSIX
/* The POSIX simulator builds the Rust part for a hosted Linux target, whose precompiled core
 * and alloc carry unwind tables naming Rust's personality routine. Panics abort
 * (panic = "abort"), so it is never called, and LTO usually drops every reference; but not
 * for every crate version (seen with the crates resolved on 2026-12-05: "undefined reference
 * to `rust_eh_personality'"). This weak, never-called definition satisfies the linker
 * whatever the application's crates are; one of the application's own wins over it. Bare-metal
 * Rust targets have no such reference. */
__attribute__( ( weak ) ) void rust_eh_personality( void )
{
}
#endif

void uasyncio_rtos_panic_mask( void )
{
    taskDISABLE_INTERRUPTS();
}

/* After a panic: stop as a failed configASSERT would. */
void uasyncio_rtos_panic_stop( void )
{
    #if ( configASSERT_DEFINED == 1 )
        configASSERT( 0 );
    #endif
    taskDISABLE_INTERRUPTS();
    #if UASYNCIO_POSIX
        abort();
    #else
        for( ; ; )
        {
        }
    #endif
}

/* ---- tasks --------------------------------------------------------------------------------- */

static void prvThreadEntry( void * arg )
{
    /* The Rust body returns here (a C frame) before the task deletes itself: on the POSIX
     * port vTaskDelete(NULL) ends the pthread with pthread_exit, whose forced unwind must not
     * cross Rust frames. */
    uasyncio_rtos_thread_main( arg );
    vTaskDelete( NULL );

    for( ; ; )
    {
    }
}

int uasyncio_rtos_task_create( const char * name, size_t name_len, size_t stack_bytes,
                               uint32_t priority, void * arg )
{
    char task_name[ configMAX_TASK_NAME_LEN ];
    size_t words = ( stack_bytes + sizeof( StackType_t ) - 1U ) / sizeof( StackType_t );
    size_t i;

    if( uasyncio_rtos_in_isr() || ( priority >= ( uint32_t ) configMAX_PRIORITIES ) )
    {
        return UASYNCIO_RTOS_REFUSED;
    }

    if( words < ( size_t ) configMINIMAL_STACK_SIZE )
    {
        words = ( size_t ) configMINIMAL_STACK_SIZE;
    }

    if( ( configSTACK_DEPTH_TYPE ) words != words )
    {
        return UASYNCIO_RTOS_REFUSED; /* does not fit configSTACK_DEPTH_TYPE */
    }

    for( i = 0; ( i < name_len ) && ( i + 1U < sizeof( task_name ) ) && ( name[ i ] != '\0' ); i++ )
    {
        task_name[ i ] = name[ i ];
    }

    task_name[ i ] = '\0';

    if( xTaskCreate( prvThreadEntry, task_name, ( configSTACK_DEPTH_TYPE ) words, arg,
                     ( UBaseType_t ) priority, NULL ) != pdPASS )
    {
        return UASYNCIO_RTOS_NOMEM;
    }

    return UASYNCIO_RTOS_OK;
}

size_t uasyncio_rtos_stack_high_water_bytes( void * task )
{
    #if ( INCLUDE_uxTaskGetStackHighWaterMark == 1 )
        return ( size_t ) uxTaskGetStackHighWaterMark( ( TaskHandle_t ) task ) * sizeof( StackType_t );
    #else
        ( void ) task;
        return 0;
    #endif
}
