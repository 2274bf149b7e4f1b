/*
 * The template's board for QEMU microbit (nRF51822, Cortex-M0 / Armv6-M, 16 KiB RAM): UART
 * for output, the FreeRTOS tick interrupt (SysTick) as the application interrupt, semihosting
 * to end the run. The vector table, reset handler, linker script and UART code come from
 * uasyncio-rs' ports/freertos/microbit/; replace them with your board's.
 *
 * The tick hook runs inside the SysTick handler, a real interrupt (IPSR != 0): every 10th
 * tick it calls app_interrupt(), which sets the flag with the FromISR path.
 */
#include "FreeRTOS.h"
#include "task.h"

#include "board.h"
#include "app_board.h"

static volatile int s_interrupt_on;
static unsigned s_ticks;

void app_board_init( void )
{
    board_uart_init();
}

void app_board_write( const char * s, size_t len )
{
    board_uart_write( s, len );
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
    board_exit( code );
}

void vApplicationTickHook( void )
{
    if( s_interrupt_on && ( ++s_ticks % 10U ) == 0U )
    {
        app_interrupt();
    }
}

void vApplicationMallocFailedHook( void )
{
    /* pvPortMalloc found no block this large. Not fatal by itself: the caller decides (the C
     * API returns UASYNCIO_E_NOMEM; a Rust allocation panics after this line). */
    board_puts( "\r\nthe FreeRTOS heap is exhausted (pvPortMalloc failed): enlarge configTOTAL_HEAP_SIZE in FreeRTOSConfig.h\r\n" );
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
