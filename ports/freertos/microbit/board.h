/*
 * QEMU microbit (BBC micro:bit, nRF51822: Cortex-M0, Armv6-M): the few things the uasyncio
 * template needs. Addresses from QEMU 7.2's hw/arm/nrf51_soc.c and hw/char/nrf51_uart.c:
 * flash 256 KiB at 0x00000000, RAM 16 KiB at 0x20000000, UART at 0x40002000, 16 MHz clock.
 */
#ifndef MICROBIT_BOARD_H
#define MICROBIT_BOARD_H

#include <stddef.h>
#include <stdint.h>

#define BOARD_SYSCLK_HZ    16000000UL

/* UART on QEMU's stdout (-nographic / -serial stdio). */
void board_uart_init( void );
void board_uart_write( const char * s, size_t len );
void board_puts( const char * s );
void board_put_u32( uint32_t v );

/* Semihosting (QEMU -semihosting). board_exit(0) makes QEMU exit 0, anything else exit 1. */
void board_exit( int code ) __attribute__( ( noreturn ) );

#endif /* MICROBIT_BOARD_H */
