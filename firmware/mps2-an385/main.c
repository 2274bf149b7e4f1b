/*
 * uasyncio firmware for QEMU mps2-an385 (Cortex-M3): C main, FreeRTOS V11.2.0, and a Rust
 * static library built through the uasyncio FreeRTOS component (cmake/freertos.cmake).
 *
 * What to run comes from the semihosting command line
 * (qemu ... -semihosting-config enable=on,target=native,arg=fw,arg=<mode>[,arg=<param>]):
 *
 *   raw-sem | raw-notify   plain FreeRTOS: timer0 IRQ -> give -> task, instruction counts
 *   app                    the C API end to end: uasyncio_start() of the loop thread, a legacy
 *                          C task on its own period feeding a uasyncio queue, timer0 setting a
 *                          ThreadSafeFlag from C 10,000 times
 *   <anything else>        handed to the Rust side (fw_rust_main, rust/src/lib.rs)
 *
 * The verdict is QEMU's exit code (semihosting SYS_EXIT): 0 pass, 1 fail.
 */
#include <stdint.h>
#include <string.h>

#include "FreeRTOS.h"
#include "task.h"
#include "semphr.h"

#include "board.h"
#include "uasyncio.h"

/* The Rust side (rust/src/lib.rs). */
extern int fw_rust_main( const char * cmd, size_t len );
extern int fw_app_entry( void * arg );
UASYNCIO_FLAG_DECLARE( FW_TIMER_FLAG );

/* ---- timer0 interrupt (IRQ 8) ------------------------------------------------------------- */

enum
{
    FW_ISR_NONE = 0,
    FW_ISR_RAW_SEM = 1,
    FW_ISR_RAW_NOTIFY = 2,
    FW_ISR_HOOK = 3,
    FW_ISR_FLAG = 4,   /* the C API: uasyncio_flag_set_from_isr( &FW_TIMER_FLAG ) */
    FW_ISR_QUEUE = 5,  /* the C API: uasyncio_queue_send( fw_isr_queue, ... ) */
    FW_ISR_MISUSE = 6, /* a [task only] C API call from the ISR: must stop the firmware */
};

volatile uint32_t fw_isr_mode;
volatile uint32_t fw_timer0_irqs;
void ( * volatile fw_isr_hook )( void );
uasyncio_queue_t * volatile fw_isr_queue;
volatile uint32_t fw_isr_queue_ok;
volatile uint32_t fw_isr_queue_full;

static SemaphoreHandle_t s_raw_sem;
static TaskHandle_t s_raw_task;

void TIMER0_Handler( void )
{
    BaseType_t woken = pdFALSE;

    TIMER0->INTSTATUS = 1; /* INTCLEAR */
    fw_timer0_irqs++;

    switch( fw_isr_mode )
    {
        case FW_ISR_RAW_SEM:
            ( void ) xSemaphoreGiveFromISR( s_raw_sem, &woken );
            break;

        case FW_ISR_RAW_NOTIFY:
            vTaskNotifyGiveFromISR( s_raw_task, &woken );
            break;

        case FW_ISR_HOOK:
            fw_isr_hook();
            break;

        case FW_ISR_FLAG:
            uasyncio_flag_set_from_isr( &FW_TIMER_FLAG );
            break;

        case FW_ISR_QUEUE:
        {
            uint32_t n = fw_timer0_irqs;

            if( uasyncio_queue_send( fw_isr_queue, &n, sizeof( n ) ) == UASYNCIO_OK )
            {
                fw_isr_queue_ok++;
            }
            else
            {
                fw_isr_queue_full++;
            }

            break;
        }

        case FW_ISR_MISUSE:
            ( void ) uasyncio_queue_create( 1, 1 );
            break;

        default:
            break;
    }

    portYIELD_FROM_ISR( woken );
}

/* ---- instruction counts under -icount --------------------------------------------------- */

/* Timer0 counts SYSCLK (25 MHz, 40 ns) down from its reload value; under -icount shift=S one
 * instruction takes 2^S ns of virtual time, so (reload - value) * 40 / 2^S instructions
 * passed since the counter hit zero and raised the IRQ. A period that is not a multiple of
 * the 1 ms SysTick keeps the two interrupts from lining up the same way every time. */
#define FW_BENCH_RELOAD     19997U
#define FW_BENCH_SAMPLES    201U
#define FW_BENCH_WARMUP     5U

void fw_sort_u32( uint32_t * v, size_t n )
{
    size_t i, j;

    for( i = 1; i < n; i++ )
    {
        uint32_t x = v[ i ];

        for( j = i; ( j > 0 ) && ( v[ j - 1 ] > x ); j-- )
        {
            v[ j ] = v[ j - 1 ];
        }

        v[ j ] = x;
    }
}

/* Prints "<what>: timer ticks min/median/max ..., instructions min/median (shift S)". */
void fw_report_latency( const char * what, uint32_t * ticks, size_t n, uint32_t shift )
{
    uint32_t min, med, max;

    fw_sort_u32( ticks, n );
    min = ticks[ 0 ];
    med = ticks[ n / 2 ];
    max = ticks[ n - 1 ];
    board_puts( "report: " );
    board_puts( what );
    board_puts( ": IRQ -> task resumed, n=" );
    board_put_u32( ( uint32_t ) n );
    board_puts( " instructions min " );
    board_put_u32( ( min * 40U ) >> shift );
    board_puts( " median " );
    board_put_u32( ( med * 40U ) >> shift );
    board_puts( " max " );
    board_put_u32( ( max * 40U ) >> shift );
    board_puts( " (timer ticks " );
    board_put_u32( min );
    board_puts( "/" );
    board_put_u32( med );
    board_puts( "/" );
    board_put_u32( max );
    board_puts( ", icount shift " );
    board_put_u32( shift );
    board_puts( ")\r\n" );
}

static int prvRawBench( uint32_t mode, uint32_t shift )
{
    static uint32_t ticks[ FW_BENCH_SAMPLES ];
    uint32_t i;

    s_raw_sem = xSemaphoreCreateBinary();
    s_raw_task = xTaskGetCurrentTaskHandle();
    configASSERT( s_raw_sem != NULL );

    fw_isr_mode = mode;
    board_irq_enable( TIMER0_IRQn, 0xC0 );
    board_timer_start( TIMER0, FW_BENCH_RELOAD );

    for( i = 0; i < FW_BENCH_SAMPLES + FW_BENCH_WARMUP; i++ )
    {
        uint32_t value;

        if( mode == FW_ISR_RAW_SEM )
        {
            ( void ) xSemaphoreTake( s_raw_sem, portMAX_DELAY );
        }
        else
        {
            ( void ) ulTaskNotifyTake( pdTRUE, portMAX_DELAY );
        }

        value = TIMER0->VALUE;

        if( i >= FW_BENCH_WARMUP )
        {
            ticks[ i - FW_BENCH_WARMUP ] = FW_BENCH_RELOAD - value;
        }
    }

    board_timer_stop( TIMER0 );
    board_irq_disable( TIMER0_IRQn );
    fw_isr_mode = FW_ISR_NONE;
    fw_report_latency( mode == FW_ISR_RAW_SEM ? "raw FreeRTOS binary semaphore" : "raw FreeRTOS task notification",
                       ticks, FW_BENCH_SAMPLES, shift );
    return 0;
}

/* ---- the application: a legacy C task next to the uasyncio loop thread ------------------- */

/* The legacy task wakes every FW_LEGACY_PERIOD ticks with xTaskDelayUntil, does a little
 * work, and hands its cycle number to the loop through a uasyncio queue. It runs at a higher
 * priority than the loop thread, as a firmware's hard-real-time C code would; a missed
 * deadline (xTaskDelayUntil returning pdFALSE) or lateness is counted. Meanwhile timer0
 * interrupts set FW_TIMER_FLAG every 250 us and a Rust task counts them. */
#define FW_LEGACY_PERIOD      2U
#define FW_LEGACY_CYCLES      1250U
#define FW_LEGACY_PRIORITY    4U
#define FW_LOOP_PRIORITY      2U
#define FW_LOOP_STACK         ( 16U * 1024U )

volatile uint32_t fw_legacy_missed;
volatile uint32_t fw_legacy_max_late;
volatile uint32_t fw_legacy_sent;
volatile uint32_t fw_legacy_full;
volatile uint32_t fw_legacy_done;

static void prvLegacyTask( void * arg )
{
    uasyncio_queue_t * queue = ( uasyncio_queue_t * ) arg;
    TickType_t wake = xTaskGetTickCount();
    uint32_t cycle;

    for( cycle = 1; cycle <= FW_LEGACY_CYCLES; cycle++ )
    {
        volatile uint32_t work;
        uint32_t late;

        if( xTaskDelayUntil( &wake, FW_LEGACY_PERIOD ) == pdFALSE )
        {
            fw_legacy_missed++;
        }

        late = ( uint32_t ) ( xTaskGetTickCount() - wake );

        if( late > fw_legacy_max_late )
        {
            fw_legacy_max_late = late;
        }

        for( work = 0; work < 50U; work++ )
        {
        }

        if( uasyncio_queue_send( queue, &cycle, sizeof( cycle ) ) == UASYNCIO_OK )
        {
            fw_legacy_sent++;
        }
        else
        {
            fw_legacy_full++;
        }
    }

    /* An empty message tells the loop that the legacy task is done. */
    while( uasyncio_queue_send( queue, NULL, 0 ) != UASYNCIO_OK )
    {
        vTaskDelay( 1 );
    }

    fw_legacy_done = 1;
    vTaskDelete( NULL );
}

static int prvApp( void )
{
    uasyncio_queue_t * queue = uasyncio_queue_create( 8, sizeof( uint32_t ) );
    uasyncio_config_t config = {
        .name = "uasyncio",
        .stack_bytes = FW_LOOP_STACK,
        .priority = FW_LOOP_PRIORITY,
        .entry = fw_app_entry,
        .arg = queue,
    };
    size_t heap_before = xPortGetFreeHeapSize();
    int exit_code = 0;
    int state;
    int rc;

    if( queue == NULL )
    {
        board_puts( "app: uasyncio_queue_create failed\r\n" );
        return 1;
    }

    /* Bad input first: a second start, a NULL entry. */
    config.entry = NULL;
    rc = uasyncio_start( &config );
    config.entry = fw_app_entry;

    if( ( rc != UASYNCIO_E_INVAL ) || ( uasyncio_start( NULL ) != UASYNCIO_E_INVAL ) )
    {
        board_puts( "app: uasyncio_start accepted bad input\r\n" );
        return 1;
    }

    /* A priority the kernel refuses gets its own code, whose text names the setting. */
    config.priority = configMAX_PRIORITIES;
    rc = uasyncio_start( &config );
    config.priority = FW_LOOP_PRIORITY;

    if( rc != UASYNCIO_E_PRIORITY )
    {
        board_puts( "app: uasyncio_start accepted a priority of configMAX_PRIORITIES\r\n" );
        return 1;
    }

    board_puts( "app: " );
    board_puts( uasyncio_status_str( rc ) );
    board_puts( "\r\n" );

    /* The supervisor (this task) steps back below both. */
    vTaskPrioritySet( NULL, 1 );

    if( uasyncio_start( &config ) != UASYNCIO_OK )
    {
        board_puts( "app: uasyncio_start failed\r\n" );
        return 1;
    }

    if( uasyncio_start( &config ) != UASYNCIO_E_STATE )
    {
        board_puts( "app: a second uasyncio_start was accepted\r\n" );
        return 1;
    }

    if( xTaskCreate( prvLegacyTask, "legacy", 512, queue, FW_LEGACY_PRIORITY, NULL ) != pdPASS )
    {
        board_puts( "app: cannot create the legacy task\r\n" );
        return 1;
    }

    while( ( state = uasyncio_loop_state( &exit_code ) ) != 2 )
    {
        vTaskDelay( 10 );
    }

    board_puts( "report: legacy C task: " );
    board_put_u32( FW_LEGACY_CYCLES );
    board_puts( " cycles of " );
    board_put_u32( FW_LEGACY_PERIOD );
    board_puts( " ms, missed deadlines " );
    board_put_u32( fw_legacy_missed );
    board_puts( ", max lateness " );
    board_put_u32( fw_legacy_max_late );
    board_puts( " ticks, messages sent " );
    board_put_u32( fw_legacy_sent );
    board_puts( ", refused (queue full) " );
    board_put_u32( fw_legacy_full );
    board_puts( "\r\nreport: loop thread: stack " );
    board_put_u32( FW_LOOP_STACK );
    board_puts( " bytes, high-water mark " );
    board_put_u32( ( uint32_t ) uasyncio_loop_stack_unused() );
    board_puts( " bytes never used; heap used by the app (queue, loop, tasks) " );
    board_put_u32( ( uint32_t ) ( heap_before - xPortGetFreeHeapSize() ) );
    board_puts( " bytes; loop exit code " );
    board_put_u32( ( uint32_t ) exit_code );
    board_puts( "\r\n" );

    if( uasyncio_loop_error() != NULL )
    {
        board_puts( "report: loop error: " );
        board_puts( uasyncio_loop_error() );
        board_puts( "\r\n" );
    }

    if( ( exit_code != 0 ) || ( fw_legacy_missed != 0 ) || ( fw_legacy_max_late != 0 ) || !fw_legacy_done )
    {
        return 1;
    }

    return 0;
}

/* ---- start-up ----------------------------------------------------------------------------- */

static char s_cmdline[ 160 ];

static uint32_t prvParam( const char * cmd, const char * key, uint32_t fallback )
{
    const char * p = strstr( cmd, key );
    uint32_t v = 0;

    if( p == NULL )
    {
        return fallback;
    }

    for( p += strlen( key ); ( *p >= '0' ) && ( *p <= '9' ); p++ )
    {
        v = v * 10U + ( uint32_t ) ( *p - '0' );
    }

    return v;
}

static void prvMainTask( void * arg )
{
    const char * cmd = s_cmdline;
    uint32_t shift = prvParam( cmd, "shift=", 7 );
    int code;

    ( void ) arg;

    /* Skip the program name ("fw"). */
    if( strncmp( cmd, "fw", 2 ) == 0 )
    {
        cmd += 2;
    }

    while( *cmd == ' ' )
    {
        cmd++;
    }

    if( strncmp( cmd, "raw-sem", 7 ) == 0 )
    {
        code = prvRawBench( FW_ISR_RAW_SEM, shift );
    }
    else if( strncmp( cmd, "raw-notify", 10 ) == 0 )
    {
        code = prvRawBench( FW_ISR_RAW_NOTIFY, shift );
    }
    else if( strncmp( cmd, "app", 3 ) == 0 )
    {
        code = prvApp();
    }
    else
    {
        code = fw_rust_main( cmd, strlen( cmd ) );
    }

    board_puts( code == 0 ? "firmware: PASS\r\n" : "firmware: FAIL\r\n" );
    board_exit( code );
}

int main( void )
{
    int n;

    board_uart_init();
    n = board_cmdline( s_cmdline, sizeof( s_cmdline ) - 1U );
    s_cmdline[ ( n > 0 ) ? n : 0 ] = '\0';
    board_puts( "uasyncio mps2-an385: " );
    board_puts( s_cmdline );
    board_puts( "\r\n" );

    if( xTaskCreate( prvMainTask, "main", 8192, NULL, 3, NULL ) != pdPASS )
    {
        board_puts( "cannot create the main task\r\n" );
        board_exit( 1 );
    }

    vTaskStartScheduler();
    board_puts( "the scheduler returned\r\n" );
    board_exit( 1 );
}

/* ---- FreeRTOS hooks ----------------------------------------------------------------------- */

static volatile uint32_t s_malloc_failures;

uint32_t fw_malloc_failures( void )
{
    return s_malloc_failures;
}

void vApplicationMallocFailedHook( void )
{
    /* Not fatal: the caller (Rust's allocation error path, or a C API) decides. */
    s_malloc_failures++;
}

void vApplicationStackOverflowHook( TaskHandle_t task, char * name )
{
    ( void ) task;
    board_puts( "\r\nFATAL: stack overflow in task " );
    board_puts( name );
    board_puts( "\r\n" );
    board_exit( 1 );
}

void vAssertCalled( const char * file, unsigned long line )
{
    board_puts( "\r\nFATAL: configASSERT failed at " );
    board_puts( file );
    board_puts( ":" );
    board_put_u32( ( uint32_t ) line );
    board_puts( "\r\n" );
    board_exit( 1 );
}
