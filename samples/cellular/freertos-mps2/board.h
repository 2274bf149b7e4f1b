/*
 * Board glue of the cellular sample on QEMU mps2-an385 (Cortex-M3): the modem on CMSDK
 * UART0, the console on UART1, a free-running timer1 as an instruction clock, semihosting.
 *
 * Wiring under QEMU: the first -serial is UART0 (the modem simulator, e.g.
 * `-serial unix:PATH`), the second UART1 (the console, e.g. `-serial stdio`).
 * Interrupts (QEMU's mps2.c): UART0 RX = IRQ 0, UART0 TX = IRQ 1.
 */
#ifndef CELL_BOARD_H
#define CELL_BOARD_H

#include <stddef.h>
#include <stdint.h>

#define BOARD_SYSCLK_HZ          25000000UL

#define UART0_RX_IRQn            0
#define UART0_TX_IRQn            1

/* NVIC priority of the UART0 interrupts: they call FromISR-class functions
 * (uasyncio_serial_rx_isr, uasyncio_serial_tx_ready_isr), so numerically above
 * configMAX_SYSCALL_INTERRUPT_PRIORITY (0xA0). */
#define BOARD_UART_IRQ_PRIORITY  0xC0

/* Size of the modem's software transmit queue (bytes; a power of two). */
#define BOARD_MODEM_TX_SIZE      1024U

/* ---- console (UART1, polled) ---- */
void board_console_init( void );
void board_console_write( const char * s, size_t len );
void board_puts( const char * s );
void board_put_u32( uint32_t v );
void board_put_hex( uint32_t v );

/* ---- the modem's UART (UART0, interrupt driven) ---- */
/* Enables RX and TX with their interrupts. The RX interrupt hands every byte to
 * uasyncio_serial_rx_isr (uasyncio_serial.h); the TX interrupt drains the software queue
 * and calls uasyncio_serial_tx_ready_isr once it has room again. */
void board_modem_uart_init( void );
/* Queues up to `len` bytes for transmission without blocking; returns how many it took
 * (0 when the queue is full). Task context only. */
size_t board_modem_tx_write( const uint8_t * bytes, size_t len );
/* 1 when the queue is empty and the last byte has left the UART; 0 otherwise, and then the
 * TX interrupt sets the TX-ready flag when it has sent more. Task context only. */
int board_modem_tx_idle( void );

/* ---- measurement (timer1 as a free-running SYSCLK counter, counts down) ---- */
void board_clock_start( void );
uint32_t board_clock( void );

/* RX interrupt statistics for the instructions-per-byte figure. board_rx_measure turns
 * them on (1) or off (0); they cost a few loads and stores per interrupt when on. */
typedef struct
{
    volatile uint32_t on;
    volatile uint32_t irqs;         /* RX interrupts taken */
    volatile uint32_t bytes;        /* bytes handed to uasyncio_serial_rx_isr */
    volatile uint32_t isr_ticks;    /* sum of clock ticks spent inside the RX handler */
    volatile uint32_t first_stamp;  /* clock at entry of the first IRQ not yet read */
    volatile uint32_t first_valid;  /* first_stamp is set; the reader clears it */
} BoardRxStats;

extern BoardRxStats board_rx_stats;

/* ---- semihosting ---- */
void board_exit( int code ) __attribute__( ( noreturn ) );
int board_cmdline( char * buf, size_t size );
/* Reads the host file `path` (binary) into buf; returns its length, or -1 if it cannot be
 * opened, is larger than `size`, or a read fails. */
int board_read_file( const char * path, uint8_t * buf, size_t size );

/* ---- NVIC ---- */
void board_irq_enable( int irq, uint8_t priority );
void board_irq_disable( int irq );

#endif /* CELL_BOARD_H */
