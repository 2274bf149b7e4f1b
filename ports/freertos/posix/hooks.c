/*
 * Application hooks for the FreeRTOS POSIX port (host tests).
 *
 * - The tick hook is the only interrupt context on this port. It runs inside the SIGALRM
 *   handler on the interrupted task's thread, between uasyncio_isr_enter() and
 *   uasyncio_isr_exit() so that the Rust side's in_isr() is true there and FromISR APIs are
 *   chosen. A test installs the body with posix_set_tick_hook().
 * - The idle hook sleeps, otherwise the idle task spins a whole host core.
 * - configASSERT() lands in vAssertCalled(): file:line on stderr, then abort().
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "FreeRTOS.h"
#include "task.h"

#include "uasyncio_freertos_port.h"

static void ( *volatile s_tick_hook )( void );
static volatile unsigned long s_malloc_failures;

void posix_set_tick_hook( void ( *hook )( void ) )
{
    s_tick_hook = hook;
}

unsigned long posix_malloc_failures( void )
{
    return s_malloc_failures;
}

void vApplicationTickHook( void )
{
    void ( *hook )( void ) = s_tick_hook;

    if( hook != NULL )
    {
        uasyncio_isr_enter();
        hook();
        uasyncio_isr_exit();
    }
}

void vApplicationIdleHook( void )
{
    usleep( 1000 );
}

void vApplicationMallocFailedHook( void )
{
    /* Not fatal: Rust's allocation error path (or try_reserve) decides. */
    s_malloc_failures++;
}

void vAssertCalled( const char * pcFile, unsigned long ulLine )
{
    fprintf( stderr, "FreeRTOS configASSERT failed at %s:%lu\n", pcFile, ulLine );
    fflush( stderr );
    abort();
}
