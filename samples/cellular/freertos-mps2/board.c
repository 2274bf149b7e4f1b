/*
 * Board glue of the cellular sample (see board.h): the CMSDK UART0 driver for the modem
 * (receive and transmit interrupts), the UART1 console, timer1 as a clock, semihosting.
 *
 * CMSDK APB UART registers (QEMU hw/char/cmsdk-apb-uart.c, ARM DDI0479C):
 *   DATA 0x00, STATE 0x04 (bit 0 TX full, bit 1 RX full), CTRL 0x08 (bit 0 TX enable,
 *   1 RX enable, 2 TX interrupt enable, 3 RX interrupt enable), INTSTATUS/INTCLEAR 0x0C
 *   (bit 0 TX, bit 1 RX; write 1 to clear), BAUDDIV 0x10 (>= 16, or QEMU refuses to send).
 * Both interrupt lines are levels that follow INTSTATUS: a handler must clear its bit.
 * The receive side holds one byte; QEMU back-pressures the host side instead of
 * overrunning it, so the UART itself never loses a byte here. The receive ring still
 * overruns when the loop reads slower than the line delivers (a download the application
 * stopped reading, a hang-up's guard times): uasyncio_serial_rx_overruns() counts it.
 */
#include "board.h"

#include "FreeRTOS.h"
#include "task.h"

#include "uasyncio_serial.h"

typedef struct
{
    volatile uint32_t DATA;
    volatile uint32_t STATE;
    volatile uint32_t CTRL;
    volatile uint32_t INTSTATUS;
    volatile uint32_t BAUDDIV;
} CmsdkUart;

typedef struct
{
    volatile uint32_t CTRL;
    volatile uint32_t VALUE;
    volatile uint32_t RELOAD;
    volatile uint32_t INTSTATUS;
} CmsdkTimer;

#define UART0               ( ( CmsdkUart * ) 0x40004000UL )
#define UART1               ( ( CmsdkUart * ) 0x40005000UL )
#define TIMER1              ( ( CmsdkTimer * ) 0x40001000UL )

#define UART_STATE_TXFULL   ( 1UL << 0 )
#define UART_STATE_RXFULL   ( 1UL << 1 )
#define UART_CTRL_TXEN      ( 1UL << 0 )
#define UART_CTRL_RXEN      ( 1UL << 1 )
#define UART_CTRL_TXINTEN   ( 1UL << 2 )
#define UART_CTRL_RXINTEN   ( 1UL << 3 )
#define UART_INT_TX         ( 1UL << 0 )
#define UART_INT_RX         ( 1UL << 1 )

#define NVIC_ISER0          ( *( volatile uint32_t * ) 0xE000E100UL )
#define NVIC_ICER0          ( *( volatile uint32_t * ) 0xE000E180UL )
#define NVIC_ICPR0          ( *( volatile uint32_t * ) 0xE000E280UL )
#define NVIC_IPR( n )       ( *( volatile uint8_t * ) ( 0xE000E400UL + ( n ) ) )

/* ---- console: UART1, polled ------------------------------------------------------------- */

void board_console_init( void )
{
    UART1->BAUDDIV = 16;
    UART1->CTRL = UART_CTRL_TXEN;
}

void board_console_write( const char * s, size_t len )
{
    size_t i;

    for( i = 0; i < len; i++ )
    {
        while( UART1->STATE & UART_STATE_TXFULL )
        {
        }

        UART1->DATA = ( uint8_t ) s[ i ];
    }
}

void board_puts( const char * s )
{
    const char * e = s;

    while( *e != '\0' )
    {
        e++;
    }

    board_console_write( s, ( size_t ) ( e - s ) );
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

void board_put_hex( uint32_t v )
{
    char buf[ 9 ];
    int i;

    for( i = 7; i >= 0; i-- )
    {
        buf[ i ] = "0123456789abcdef"[ v & 0xFU ];
        v >>= 4;
    }

    buf[ 8 ] = '\0';
    board_puts( buf );
}

/* ---- clock: timer1 free running at SYSCLK ----------------------------------------------- */

void board_clock_start( void )
{
    TIMER1->CTRL = 0;
    TIMER1->RELOAD = 0xFFFFFFFFUL;
    TIMER1->VALUE = 0xFFFFFFFFUL;
    TIMER1->CTRL = 1U; /* enabled, no interrupt */
}

uint32_t board_clock( void )
{
    return TIMER1->VALUE;
}

/* ---- the modem's UART: UART0 ------------------------------------------------------------ */

BoardRxStats board_rx_stats;

/* Transmit queue: the loop task produces (board_modem_tx_write, inside a critical section
 * that masks the UART interrupts), the TX interrupt consumes. Free-running indices. */
static uint8_t s_tx_buf[ BOARD_MODEM_TX_SIZE ];
static volatile uint32_t s_tx_head;     /* bytes queued */
static volatile uint32_t s_tx_tail;     /* bytes written to DATA */
static volatile uint32_t s_tx_busy;     /* a byte is in flight: the TX interrupt will come */
static volatile uint32_t s_tx_wanted;   /* a writer found the queue full: wake it */

void board_modem_uart_init( void )
{
    UART0->CTRL = 0;
    UART0->INTSTATUS = UART_INT_TX | UART_INT_RX;
    UART0->BAUDDIV = 16;
    UART0->CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN | UART_CTRL_TXINTEN | UART_CTRL_RXINTEN;
    board_irq_enable( UART0_RX_IRQn, BOARD_UART_IRQ_PRIORITY );
    board_irq_enable( UART0_TX_IRQn, BOARD_UART_IRQ_PRIORITY );
}

size_t board_modem_tx_write( const uint8_t * bytes, size_t len )
{
    size_t n, i;
    uint32_t head;

    /* Masks interrupts at or below configMAX_SYSCALL_INTERRUPT_PRIORITY: both UART IRQs. */
    taskENTER_CRITICAL();
    head = s_tx_head;
    n = BOARD_MODEM_TX_SIZE - ( size_t ) ( head - s_tx_tail );

    if( n > len )
    {
        n = len;
    }

    for( i = 0; i < n; i++ )
    {
        s_tx_buf[ ( head + i ) % BOARD_MODEM_TX_SIZE ] = bytes[ i ];
    }

    s_tx_head = head + ( uint32_t ) n;

    if( n == 0U )
    {
        s_tx_wanted = 1;
    }
    else if( !s_tx_busy && !( UART0->STATE & UART_STATE_TXFULL ) )
    {
        /* Idle transmitter: send the first byte; its TX interrupt sends the rest. */
        s_tx_busy = 1;
        UART0->DATA = s_tx_buf[ s_tx_tail % BOARD_MODEM_TX_SIZE ];
        s_tx_tail++;
    }

    taskEXIT_CRITICAL();
    return n;
}

int board_modem_tx_idle( void )
{
    int idle;

    taskENTER_CRITICAL();
    idle = ( s_tx_head == s_tx_tail ) && !s_tx_busy && !( UART0->STATE & UART_STATE_TXFULL );

    if( !idle )
    {
        /* A flush will wait for the TX-ready flag: have the TX interrupt set it. */
        s_tx_wanted = 1;
    }

    taskEXIT_CRITICAL();
    return idle;
}

/* IRQ 1: the transmit buffer emptied. */
void UART0TX_Handler( void )
{
    UART0->INTSTATUS = UART_INT_TX;

    /* Refill while the UART takes bytes (one on real hardware; QEMU sends at once). */
    while( ( s_tx_tail != s_tx_head ) && !( UART0->STATE & UART_STATE_TXFULL ) )
    {
        UART0->DATA = s_tx_buf[ s_tx_tail % BOARD_MODEM_TX_SIZE ];
        s_tx_tail++;
    }

    if( s_tx_tail == s_tx_head )
    {
        s_tx_busy = ( UART0->STATE & UART_STATE_TXFULL ) ? 1U : 0U;
    }

    if( s_tx_wanted && ( ( s_tx_head - s_tx_tail ) <= ( BOARD_MODEM_TX_SIZE / 2U ) ) )
    {
        s_tx_wanted = 0;
        uasyncio_serial_tx_ready_isr();
    }
}

/* IRQ 0: a byte arrived. */
void UART0RX_Handler( void )
{
    uint8_t bytes[ 8 ];
    size_t n = 0;
    uint32_t t0 = 0;
    int measure = ( int ) board_rx_stats.on;

    if( measure )
    {
        t0 = TIMER1->VALUE;
    }

    /* Clear first: a byte that arrives after the last DATA read raises the line again. */
    UART0->INTSTATUS = UART_INT_RX;

    while( ( n < sizeof( bytes ) ) && ( UART0->STATE & UART_STATE_RXFULL ) )
    {
        bytes[ n++ ] = ( uint8_t ) UART0->DATA;
    }

    if( measure )
    {
        if( !board_rx_stats.first_valid )
        {
            board_rx_stats.first_stamp = t0;
            board_rx_stats.first_valid = 1;
        }
    }

    ( void ) uasyncio_serial_rx_isr( bytes, n );

    if( measure )
    {
        board_rx_stats.irqs++;
        board_rx_stats.bytes += ( uint32_t ) n;
        board_rx_stats.isr_ticks += t0 - TIMER1->VALUE;
    }
}

/* ---- NVIC ------------------------------------------------------------------------------- */

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

/* ---- semihosting ------------------------------------------------------------------------ */

static int prvSemihost( int op, void * arg )
{
    register int r0 __asm__( "r0" ) = op;
    register void * r1 __asm__( "r1" ) = arg;

    __asm volatile ( "bkpt 0xAB" : "+r" ( r0 ) : "r" ( r1 ) : "memory" );
    return r0;
}

#define SYS_OPEN                        0x01
#define SYS_CLOSE                       0x02
#define SYS_READ                        0x06
#define SYS_FLEN                        0x0C
#define SYS_GET_CMDLINE                 0x15
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

int board_read_file( const char * path, uint8_t * buf, size_t size )
{
    uint32_t open_args[ 3 ];
    uint32_t args[ 3 ];
    size_t path_len = 0;
    int handle, len, rc;

    while( path[ path_len ] != '\0' )
    {
        path_len++;
    }

    open_args[ 0 ] = ( uint32_t ) path;
    open_args[ 1 ] = 1; /* "rb" */
    open_args[ 2 ] = ( uint32_t ) path_len;
    handle = prvSemihost( SYS_OPEN, open_args );

    if( handle < 0 )
    {
        return -1;
    }

    args[ 0 ] = ( uint32_t ) handle;
    len = prvSemihost( SYS_FLEN, args );

    if( ( len < 0 ) || ( ( size_t ) len > size ) )
    {
        ( void ) prvSemihost( SYS_CLOSE, args );
        return -1;
    }

    args[ 1 ] = ( uint32_t ) buf;
    args[ 2 ] = ( uint32_t ) len;
    rc = prvSemihost( SYS_READ, args ); /* returns the bytes NOT read */
    args[ 1 ] = 0;
    args[ 2 ] = 0;
    ( void ) prvSemihost( SYS_CLOSE, args );
    return ( rc == 0 ) ? len : -1;
}
