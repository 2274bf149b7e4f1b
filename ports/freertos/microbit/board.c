/* QEMU microbit (nRF51822) peripherals: UART (polled transmit) and semihosting. See board.h. */
#include "board.h"

#define UART_BASE              0x40002000UL
#define UART_REG( off )        ( *( volatile uint32_t * ) ( UART_BASE + ( off ) ) )
#define UART_TASKS_STARTTX     UART_REG( 0x008 )
#define UART_EVENTS_TXDRDY     UART_REG( 0x11C )
#define UART_ENABLE            UART_REG( 0x500 )
#define UART_TXD               UART_REG( 0x51C )

void board_uart_init( void )
{
    UART_ENABLE = 4;        /* enabled */
    UART_TASKS_STARTTX = 1;
}

void board_uart_write( const char * s, size_t len )
{
    size_t i;

    for( i = 0; i < len; i++ )
    {
        UART_EVENTS_TXDRDY = 0;
        UART_TXD = ( uint8_t ) s[ i ];

        while( UART_EVENTS_TXDRDY == 0 )
        {
        }
    }
}

void board_puts( const char * s )
{
    const char * e = s;

    while( *e != '\0' )
    {
        e++;
    }

    board_uart_write( s, ( size_t ) ( e - s ) );
}

void board_put_u32( uint32_t v )
{
    char buf[ 11 ];
    int i = 10;

    buf[ i ] = '\0';

    do
    {
        buf[ --i ] = ( char ) ( '0' + ( v % 10U ) );
        v /= 10U;
    } while( v != 0U && i > 0 );

    board_puts( &buf[ i ] );
}

/* ARM semihosting: operation in r0, parameter in r1, result in r0. */
static int prvSemihost( int op, void * arg )
{
    register int r0 __asm__( "r0" ) = op;
    register void * r1 __asm__( "r1" ) = arg;

    __asm volatile ( "bkpt 0xAB" : "+r" ( r0 ) : "r" ( r1 ) : "memory" );
    return r0;
}

#define SYS_EXIT                        0x18
#define ADP_Stopped_ApplicationExit     0x20026
#define ADP_Stopped_RunTimeErrorUnknown 0x20023

void board_exit( int code )
{
    __asm volatile ( "cpsid i" );

    for( ; ; )
    {
        ( void ) prvSemihost( SYS_EXIT, ( void * ) ( code == 0 ? ADP_Stopped_ApplicationExit
                                                               : ADP_Stopped_RunTimeErrorUnknown ) );
    }
}
