/*
 * The cellular sample as FreeRTOS firmware on QEMU mps2-an385 (Cortex-M3).
 *
 * C main and hooks; the application is Rust (rust/src). The modem is on UART0 (board.c:
 * its receive interrupt feeds uasyncio_serial_rx_isr, the C path of uasyncio_serial.h),
 * the console on UART1. What to run comes from the semihosting command line
 * (-semihosting-config enable=on,target=native,arg=fw,arg=<program>,arg=<key=value>...):
 *
 *   at          AT sync and modem bring-up through the simulator, then hang up
 *   session     the shared application (samples/cellular/src): TCP echo to echo.test:7000,
 *               then TLS echo to :7443 (ca=<path of the DER certificate>)
 *   throughput  one call: TCP echo, a bulk transfer (bulk=<bytes>), TLS echo, hang up
 *   bench-rx    instructions from the UART RX interrupt to the application's read()
 *               (run under -icount)
 *
 * The verdict is QEMU's exit code (semihosting SYS_EXIT): 0 pass, 1 fail.
 */
#include <stdint.h>
#include <string.h>

#include "FreeRTOS.h"
#include "task.h"

#include "board.h"

/* The Rust side (rust/src/lib.rs). */
extern int cell_rust_main( const char * cmd, size_t len );

/* The application runs in this task (uasyncio::run: the loop is this FreeRTOS task). The
 * session with TLS used about 77 KiB of it (futures are built on the stack before they move
 * into their task cell; P-256 arithmetic): 128 KiB, its high-water mark is printed at the
 * end. 64 KiB overflowed silently into the heap (a corrupted task cell). */
#define CELL_MAIN_STACK_WORDS    ( 32U * 1024U )
#define CELL_MAIN_PRIORITY       3U

static char s_cmdline[ 512 ];
static TaskHandle_t s_main_task;

uint32_t cell_main_stack_unused_bytes( void )
{
    return ( uint32_t ) ( uxTaskGetStackHighWaterMark( s_main_task ) * sizeof( StackType_t ) );
}

size_t cell_heap_free( void )
{
    return xPortGetFreeHeapSize();
}

size_t cell_heap_min_free( void )
{
    return xPortGetMinimumEverFreeHeapSize();
}

static void prvMainTask( void * arg )
{
    const char * cmd = s_cmdline;
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

    board_clock_start();
    board_modem_uart_init();
    code = cell_rust_main( cmd, strlen( cmd ) );
    board_puts( code == 0 ? "firmware: PASS\r\n" : "firmware: FAIL\r\n" );
    board_exit( code );
}

int main( void )
{
    int n;

    board_console_init();
    n = board_cmdline( s_cmdline, sizeof( s_cmdline ) - 1U );
    s_cmdline[ ( n > 0 ) ? n : 0 ] = '\0';
    board_puts( "cellular mps2-an385: " );
    board_puts( s_cmdline );
    board_puts( "\r\n" );

    if( xTaskCreate( prvMainTask, "main", CELL_MAIN_STACK_WORDS, NULL, CELL_MAIN_PRIORITY, &s_main_task ) != pdPASS )
    {
        board_puts( "cannot create the main task\r\n" );
        board_exit( 1 );
    }

    vTaskStartScheduler();
    board_puts( "the scheduler returned\r\n" );
    board_exit( 1 );
}

/* ---- FreeRTOS hooks ----------------------------------------------------------------------- */

void vApplicationMallocFailedHook( void )
{
    /* Not fatal here: Rust's allocation error handler reports and stops. */
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
