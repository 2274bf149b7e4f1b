/* QEMU mps2-an385 peripherals: UART0, NVIC, CMSDK timers, semihosting. See board.h. */
#include "board.h"

typedef struct
{
    volatile uint32_t DATA;
    volatile uint32_t STATE;   /* bit 0: TX buffer full */
    volatile uint32_t CTRL;    /* bit 0: TX enable */
    volatile uint32_t INTSTATUS;
    volatile uint32_t BAUDDIV;
} CmsdkUart;

#define UART0             ( ( CmsdkUart * ) 0x40004000UL )
#define NVIC_ISER0        ( *( volatile uint32_t * ) 0xE000E100UL )
#define NVIC_ICER0        ( *( volatile uint32_t * ) 0xE000E180UL )
#define NVIC_ICPR0        ( *( volatile uint32_t * ) 0xE000E280UL )
#define NVIC_IPR( n )     ( *( volatile uint8_t * ) ( 0xE000E400UL + ( n ) ) )

void board_uart_init( void )
{
    UART0->BAUDDIV = 16;
    UART0->CTRL = 1;
}

void board_uart_write( const char * s, size_t len )
{
    size_t i;

    for( i = 0; i < len; i++ )
    {
        while( UART0->STATE & 1U )
        {
        }

        UART0->DATA = ( uint8_t ) s[ i ];
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
    } while( v != 0U );

    board_puts( &buf[ i ] );
}

void board_irq_enable( int irq, uint8_t priority )
{
    NVIC_IPR( irq ) = priority;
    NVIC_ICPR0 = 1UL << irq;
    NVIC_ISER0 = 1UL << irq;
}

void board_irq_disable( int irq )
{
    NVIC_ICER0 = 1UL << irq;
}

void board_timer_start( CmsdkTimer * timer, uint32_t reload )
{
    timer->CTRL = 0;
    timer->INTSTATUS = 1;
    timer->RELOAD = reload;
    timer->VALUE = reload;
    timer->CTRL = 1U | 8U;
}

void board_timer_stop( CmsdkTimer * timer )
{
    timer->CTRL = 0;
    timer->INTSTATUS = 1;
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
#define SYS_GET_CMDLINE                 0x15
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

int board_cmdline( char * buf, size_t size )
{
    struct
    {
        char * buf;
        int len;
    } block = { buf, ( int ) size };

    if( prvSemihost( SYS_GET_CMDLINE, &block ) != 0 )
    {
        return -1;
    }

    return block.len;
}
