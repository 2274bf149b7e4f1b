/*
 * The template's board for the FreeRTOS POSIX simulator port (a Linux process; tasks are
 * pthreads, the tick is SIGALRM).
 *
 * The only interrupt context on this port is the tick hook: it stands in for a hardware
 * interrupt here, calling app_interrupt() every 10 ticks. It brackets the call with
 * uasyncio_isr_enter()/uasyncio_isr_exit() (uasyncio.h): nothing else tells uasyncio that
 * the code runs in an interrupt on this port (on Cortex-M the IPSR register does).
 */
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "FreeRTOS.h"
#include "task.h"

#include "uasyncio.h"
#include "app_board.h"

static volatile int s_interrupt_on;
static unsigned s_ticks;

void app_board_init( void )
{
}

void app_board_write( const char * s, size_t len )
{
    while( len > 0 )
    {
        ssize_t n = write( 1, s, len ); /* no stdio lock: the tick signal can preempt a task */

        if( n <= 0 )
        {
            return;
        }

        s += n;
        len -= ( size_t ) n;
    }
}

void app_board_start_interrupt( void )
{
    s_interrupt_on = 1;
}

void app_board_stop_interrupt( void )
{
    s_interrupt_on = 0;
}

void app_board_exit( int code )
{
    _exit( code == 0 ? 0 : 1 );
}

void vApplicationTickHook( void )
{
    if( s_interrupt_on && ( ++s_ticks % 10U ) == 0U )
    {
        uasyncio_isr_enter();
        app_interrupt();
        uasyncio_isr_exit();
    }
}

void vApplicationIdleHook( void )
{
    usleep( 1000 ); /* the idle task would otherwise spin a host core */
}

void vApplicationMallocFailedHook( void )
{
    /* pvPortMalloc found no block this large. Not fatal by itself: the caller decides (the C
     * API returns UASYNCIO_E_NOMEM; a Rust allocation panics after this line). */
    static const char msg[] = "\nthe FreeRTOS heap is exhausted (pvPortMalloc failed): enlarge configTOTAL_HEAP_SIZE in FreeRTOSConfig.h\n";

    app_board_write( msg, sizeof( msg ) - 1U );
}

void vAssertCalled( const char * file, unsigned long line )
{
    static const char msg[] = "FATAL: configASSERT failed at ";
    char digits[ 24 ];
    size_t n = sizeof( digits );

    /* write(2) and a hand-made number only: this may run in the tick (signal) handler. */
    app_board_write( msg, sizeof( msg ) - 1U );
    app_board_write( file, strlen( file ) );
    digits[ --n ] = '\n';
    do
    {
        digits[ --n ] = ( char ) ( '0' + ( line % 10U ) );
        line /= 10U;
    } while( ( line != 0U ) && ( n > 1U ) );
    digits[ --n ] = ':';
    app_board_write( &digits[ n ], sizeof( digits ) - n );
    _exit( 1 );
}
