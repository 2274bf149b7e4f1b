/*
 * Cortex-M3 start-up for QEMU mps2-an385: the vector table and the reset handler.
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
WEAK_IRQ( UART0_Handler );
WEAK_IRQ( TIMER0_Handler );
WEAK_IRQ( TIMER1_Handler );

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
    [ 16 + 0 ] = UART0_Handler,
    [ 16 + 1 ] = Default_Handler,
    [ 16 + 2 ] = Default_Handler,
    [ 16 + 3 ] = Default_Handler,
    [ 16 + 4 ] = Default_Handler,
    [ 16 + 5 ] = Default_Handler,
    [ 16 + 6 ] = Default_Handler,
    [ 16 + 7 ] = Default_Handler,
    [ 16 + TIMER0_IRQn ] = TIMER0_Handler,
    [ 16 + TIMER1_IRQn ] = TIMER1_Handler,
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

void HardFault_Handler( void )
{
    prvReportException( "hard fault" );
}
