/*
 * QEMU mps2-an385 (Cortex-M3): the few peripherals the uasyncio firmware uses.
 * Addresses from QEMU 7.2's hw/arm/mps2.c: CMSDK UART0 at 0x40004000, CMSDK APB timer0 at
 * 0x40000000 (IRQ 8), timer1 at 0x40001000 (IRQ 9), SYSCLK 25 MHz.
 */
#ifndef MPS2_AN385_BOARD_H
#define MPS2_AN385_BOARD_H

#include <stddef.h>
#include <stdint.h>

#define BOARD_SYSCLK_HZ      25000000UL

typedef struct
{
    volatile uint32_t CTRL;      /* bit 0 enable, bit 3 interrupt enable */
    volatile uint32_t VALUE;     /* counts down at SYSCLK */
    volatile uint32_t RELOAD;
    volatile uint32_t INTSTATUS; /* read: pending; write 1: clear (INTCLEAR) */
} CmsdkTimer;

#define TIMER0               ( ( CmsdkTimer * ) 0x40000000UL )
#define TIMER1               ( ( CmsdkTimer * ) 0x40001000UL )
#define TIMER0_IRQn          8
#define TIMER1_IRQn          9

/* UART0 on QEMU's stdout (-nographic / -serial stdio). */
void board_uart_init( void );
void board_uart_write( const char * s, size_t len );
void board_puts( const char * s );
void board_put_u32( uint32_t v );

/* NVIC. */
void board_irq_enable( int irq, uint8_t priority );
void board_irq_disable( int irq );

/* Timer0: periodic interrupt every `reload + 1` SYSCLK cycles (the handler is
 * TIMER0_Handler, which the application defines). */
void board_timer_start( CmsdkTimer * timer, uint32_t reload );
void board_timer_stop( CmsdkTimer * timer );

/* Semihosting (QEMU -semihosting). board_exit(0) makes QEMU exit 0, anything else exit 1. */
void board_exit( int code ) __attribute__( ( noreturn ) );
/* Copies the semihosting command line (-semihosting-config arg=...) into buf; returns its
 * length, or -1. */
int board_cmdline( char * buf, size_t size );

#endif /* MPS2_AN385_BOARD_H */
