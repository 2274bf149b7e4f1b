/*
 * The template's board for QEMU mps2-an385 (Cortex-M3): UART0 for output, the CMSDK timer0
 * interrupt (IRQ 8) as the application interrupt, semihosting to end the run. The vector
 * table, reset handler, linker script and peripheral code come from uasyncio-rs'
 * ports/freertos/mps2-an385/ (startup.c, board.c, mps2-an385.ld); replace them with your
 * board's.
 */
#include "FreeRTOS.h"
#include "task.h"

#include "board.h"
#include "app_board.h"

/* timer0 at 25 MHz: 250,000 cycles = 10 ms. */
#define APP_TIMER_RELOAD    249999UL
/* Numerically >= configMAX_SYSCALL_INTERRUPT_PRIORITY (0xA0): it may call FromISR APIs. */
#define APP_TIMER_PRIORITY  0xC0

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
    board_irq_enable( TIMER0_IRQn, APP_TIMER_PRIORITY );
    board_timer_start( TIMER0, APP_TIMER_RELOAD );
}

void app_board_stop_interrupt( void )
{
    board_timer_stop( TIMER0 );
    board_irq_disable( TIMER0_IRQn );
}

void app_board_exit( int code )
{
    board_exit( code );
}

void TIMER0_Handler( void )
{
    TIMER0->INTSTATUS = 1; /* clear */
    app_interrupt();
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
