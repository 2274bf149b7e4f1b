/*
 * Cortex-M0 start-up for QEMU microbit (nRF51822): the vector table and the reset handler.
 *
 * SVC, PendSV and SysTick point straight at the FreeRTOS ARM_CM0 port's handlers. Every
 * other exception lands in Default_Handler, which reports its number and stops QEMU with a
 * failure.
 */
#include <stdint.h>

#include "board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main( void );

/* The V11 ARM_CM0 port names its handlers after CMSIS. */
extern void SVC_Handler( void );
extern void PendSV_Handler( void );
extern void SysTick_Handler( void );

void Reset_Handler( void );
void Default_Handler( void );
void HardFault_Handler( void );

typedef void ( *Vector )( void );

__attribute__( ( section( ".isr_vector" ), used ) ) const Vector g_vectors[ 16 + 32 ] =
{
    ( Vector ) &_estack,
    Reset_Handler,
    Default_Handler,    /* NMI */
    HardFault_Handler,
    0, 0, 0, 0, 0, 0, 0,
    SVC_Handler,
    0, 0,
    PendSV_Handler,
    SysTick_Handler,
    [ 16 ... 16 + 31 ] = Default_Handler,
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
    board_put_u32( ipsr & 0x3FU );
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
