/*
 * A FreeRTOS application with uasyncio: C main(), a legacy C task, an interrupt that sets a
 * ThreadSafeFlag, and the Rust event loop (rust/src/lib.rs) in its own FreeRTOS task.
 *
 *   main()            starts the uasyncio loop task and the legacy task, then the scheduler
 *   legacy task       plain FreeRTOS code: every 20 ms sends a message into a uasyncio queue,
 *                     APP_MESSAGES times, then an empty message ("done"); then waits for the
 *                     loop to return and ends the program with its exit code
 *   app_interrupt()   the board's periodic interrupt: uasyncio_flag_set_from_isr(&APP_IRQ_FLAG)
 *   Rust (lib.rs)     async tasks: one awaits the flag, one receives the messages, one ticks
 */
#include <stdint.h>
#include <string.h>

#include "FreeRTOS.h"
#include "task.h"

#include "uasyncio.h"
#include "app_board.h"

#define APP_MESSAGES          10
#ifndef APP_LOOP_STACK_BYTES
    #define APP_LOOP_STACK_BYTES  8192   /* measured need on Cortex-M3: see the README */
#endif
#define APP_LOOP_PRIORITY     2
#define APP_LEGACY_PRIORITY   3      /* the legacy task outranks the loop */

/* Defined in Rust (rust/src/lib.rs). */
UASYNCIO_FLAG_DECLARE( APP_IRQ_FLAG );
extern int app_loop_entry( void * arg );

static volatile uint32_t s_irqs;

void app_interrupt( void )
{
    s_irqs++;
    uasyncio_flag_set_from_isr( &APP_IRQ_FLAG );
}

/* For the Rust side: the calling task's stack bytes never used so far (its high-water mark). */
size_t app_stack_unused_bytes( void )
{
    return ( size_t ) uxTaskGetStackHighWaterMark( NULL ) * sizeof( StackType_t );
}

static void prvPuts( const char * s )
{
    app_board_write( s, strlen( s ) );
}

/* Called by uasyncio's panic handler (its feature `panic-handler`) with the panic message,
 * before it stops the firmware like a failed configASSERT. Unused otherwise. */
void uasyncio_panic_hook( const char * msg, size_t len )
{
    app_board_write( msg, len );
    prvPuts( "\n" );
}

static void prvPutInt( const char * label, long v )
{
    char buf[ 24 ];
    int i = ( int ) sizeof( buf );
    int neg = v < 0;
    unsigned long u = neg ? ( unsigned long ) -v : ( unsigned long ) v;

    buf[ --i ] = '\0';

    do
    {
        buf[ --i ] = ( char ) ( '0' + ( u % 10U ) );
        u /= 10U;
    } while( u != 0U && i > 1 );

    if( neg )
    {
        buf[ --i ] = '-';
    }

    prvPuts( label );
    prvPuts( &buf[ i ] );
    prvPuts( "\n" );
}

static void prvLegacyTask( void * arg )
{
    uasyncio_queue_t * queue = ( uasyncio_queue_t * ) arg;
    TickType_t wake = xTaskGetTickCount();
    int exit_code = 0;
    uint32_t i;

    for( i = 1; i <= APP_MESSAGES; i++ )
    {
        vTaskDelayUntil( &wake, pdMS_TO_TICKS( 20 ) );

        if( uasyncio_queue_send( queue, &i, sizeof( i ) ) != UASYNCIO_OK )
        {
            prvPuts( "legacy task: queue full\n" );
        }
    }

    ( void ) uasyncio_queue_send( queue, NULL, 0 ); /* "done" */

    while( uasyncio_loop_state( &exit_code ) != 2 )
    {
        vTaskDelay( pdMS_TO_TICKS( 10 ) );
    }

    app_board_stop_interrupt();
    prvPutInt( "legacy task: interrupts raised: ", ( long ) s_irqs );
    prvPutInt( "legacy task: the loop returned ", exit_code );

    if( uasyncio_loop_error() != NULL )
    {
        /* What the -1 stands for: the error's text, kept by uasyncio::ffi::run_entry. */
        prvPuts( "legacy task: the loop's error: " );
        prvPuts( uasyncio_loop_error() );
        prvPuts( "\n" );
    }

    prvPuts( exit_code == 0 ? "app: PASS\n" : "app: FAIL\n" );
    app_board_exit( exit_code );
}

int main( void )
{
    uasyncio_queue_t * queue;
    uasyncio_config_t loop = { 0 };
    int rc;

    app_board_init();
    prvPuts( "app: FreeRTOS " tskKERNEL_VERSION_NUMBER " + uasyncio\n" );

    queue = uasyncio_queue_create( 4, sizeof( uint32_t ) );

    if( queue == NULL )
    {
        prvPuts( "app: uasyncio_queue_create failed\n" );
        app_board_exit( 1 );
    }

    loop.name = "uasyncio";
    loop.stack_bytes = APP_LOOP_STACK_BYTES;
    loop.priority = APP_LOOP_PRIORITY;
    loop.entry = app_loop_entry;
    loop.arg = queue;
    rc = uasyncio_start( &loop );

    if( rc != UASYNCIO_OK )
    {
        prvPuts( "app: uasyncio_start failed: " );
        prvPuts( uasyncio_status_str( rc ) );
        prvPuts( "\n" );
        app_board_exit( 1 );
    }

    if( xTaskCreate( prvLegacyTask, "legacy", configMINIMAL_STACK_SIZE * 4, queue,
                     APP_LEGACY_PRIORITY, NULL ) != pdPASS )
    {
        prvPuts( "app: cannot create the legacy task\n" );
        app_board_exit( 1 );
    }

    app_board_start_interrupt();
    vTaskStartScheduler();
    prvPuts( "app: the scheduler returned\n" );
    app_board_exit( 1 );
}
