/*
 * Cortex-M3 start-up for QEMU mps2-an385: the vector table and the reset handler.
 * A copy of ports/freertos/mps2-an385/startup.c with the UART0 receive (IRQ 0) and
 * transmit (IRQ 1) vectors of the modem UART added (board.c defines both handlers).
 *
 * SVC, PendSV and SysTick point straight at the FreeRTOS port's handlers: FreeRTOS V11
 * checks that (configCHECK_HANDLER_INSTALLATION). Every interrupt without a handler lands in
 * Default_Handler, which reports the exception number and stops QEMU with a failure.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main( void );

extern void vPortSVCHandler( void );
extern void xPortPendSVHandler( void );
extern void xPortSysTickHandler( void );

void Reset_Handler( void );
void Default_Handler( void );
void HardFault_Handler( void );

/* Application interrupt handlers: weak aliases of Default_Handler until defined. */
#define WEAK_IRQ( name )    void name( void ) __attribute__( ( weak, alias( "Default_Handler" ) ) )
WEAK_IRQ( UART0RX_Handler );
WEAK_IRQ( UART0TX_Handler );

typedef void ( *Vector )( void );

__attribute__( ( section( ".isr_vector" ), used ) ) const Vector g_vectors[ 16 + 32 ] =
{
    ( Vector ) &_estack,
    Reset_Handler,
    Default_Handler,    /* NMI */
    HardFault_Handler,
    Default_Handler,    /* MemManage */
    Default_Handler,    /* BusFault */
    Default_Handler,    /* UsageFault */
    0, 0, 0, 0,
    vPortSVCHandler,
    Default_Handler,    /* DebugMon */
    0,
    xPortPendSVHandler,
    xPortSysTickHandler,
    /* External interrupts 0..31 */
    [ 16 + 0 ] = UART0RX_Handler,
    [ 16 + 1 ] = UART0TX_Handler,
    [ 16 + 2 ] = Default_Handler,
    [ 16 + 3 ] = Default_Handler,
    [ 16 + 4 ] = Default_Handler,
    [ 16 + 5 ] = Default_Handler,
    [ 16 + 6 ] = Default_Handler,
    [ 16 + 7 ] = Default_Handler,
    [ 16 + 8 ] = Default_Handler,
    [ 16 + 9 ] = Default_Handler,
    [ 16 + 10 ... 16 + 31 ] = Default_Handler,
};

void Reset_Handler( void )
{
    uint32_t * src = &_sidata;
    uint32_t * dst = &_sdata;

    while( dst < &_edata )
    {
        *dst++ = *src++;
    }

    for( dst = &_sbss; dst < &_ebss; )
    {
        *dst++ = 0;
    }

    ( void ) main();
    board_exit( 1 );
}

static void prvReportException( const char * what )
{
    uint32_t ipsr;

    __asm volatile ( "mrs %0, ipsr" : "=r" ( ipsr ) );
    board_puts( "\r\nFATAL: " );
    board_puts( what );
    board_puts( " (exception " );
    board_put_u32( ipsr & 0x1FFU );
    board_puts( ")\r\n" );
    board_exit( 1 );
}

void Default_Handler( void )
{
    prvReportException( "unexpected interrupt" );
}

/* Reports the faulting PC and LR (from the exception frame) and the fault status. */
void prvHardFaultReport( uint32_t * frame )
{
    board_puts( "\r\nFATAL: hard fault at pc 0x" );
    board_put_hex( frame[ 6 ] );
    board_puts( " lr 0x" );
    board_put_hex( frame[ 5 ] );
    board_puts( " cfsr 0x" );
    board_put_hex( *( volatile uint32_t * ) 0xE000ED28UL );
    board_puts( " bfar 0x" );
    board_put_hex( *( volatile uint32_t * ) 0xE000ED38UL );
    board_puts( "\r\n" );
    board_exit( 1 );
}

__attribute__( ( naked ) ) void HardFault_Handler( void )
{
    __asm volatile (
        "tst lr, #4        \n"
        "ite eq            \n"
        "mrseq r0, msp     \n"
        "mrsne r0, psp     \n"
        "b prvHardFaultReport \n"
        );
}
