/*
 * app_board.h: the little the template's main.c needs from a board. Three implementations:
 * board-posix.c (FreeRTOS POSIX simulator on a Linux host), board-mps2-an385.c (QEMU's
 * Cortex-M3 board) and board-microbit.c (QEMU's micro:bit, Cortex-M0). Replace them with your
 * board's code.
 */
#ifndef APP_BOARD_H
#define APP_BOARD_H

#include <stddef.h>

/* Once, from main() before the scheduler starts. */
void app_board_init( void );

/* Writes bytes to the console; callable from any task (not from an interrupt). */
void app_board_write( const char * s, size_t len );

/* Starts a periodic interrupt (about every 10 ms) whose handler calls app_interrupt(). */
void app_board_start_interrupt( void );
void app_board_stop_interrupt( void );

/* Ends the program: 0 success, anything else failure (the process or QEMU exit code). */
void app_board_exit( int code ) __attribute__( ( noreturn ) );

/* Defined by main.c: runs in interrupt context. */
void app_interrupt( void );

#endif /* APP_BOARD_H */
