/*
 * uasyncio_serial.h: feed a C UART driver's interrupts into uasyncio's serial port.
 *
 * The Rust crate uasyncio-cellular (feature `ffi`) owns one receive ring of
 * UASYNCIO_SERIAL_RX_SIZE bytes and one transmit-ready flag; Rust code reads the ring through
 * `uasyncio_cellular::serial::SerialPort::new(&ffi::SERIAL_RX, ..)`.
 *
 * Context: every function here is [ISR-safe]: callable from an interrupt handler or any
 * thread, never blocks, never allocates (atomics only). On FreeRTOS/Cortex-M the interrupt
 * must be at or below configMAX_SYSCALL_INTERRUPT_PRIORITY (numerically >=), like any
 * FromISR API. Call uasyncio_serial_rx_isr from one context at a time (the ring has one
 * producer; a second producer that collides gets 0 and its bytes count as overruns).
 */
#ifndef UASYNCIO_SERIAL_H
#define UASYNCIO_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the receive ring in bytes (must match serial::ffi::SERIAL_RX_SIZE). */
#define UASYNCIO_SERIAL_RX_SIZE 2048u

/*
 * [ISR-safe] Hand `len` received bytes to the loop: copies as many as fit into the receive
 * ring, wakes the Rust reader, and returns how many were taken. Bytes that do not fit are
 * dropped and counted (uasyncio_serial_rx_overruns); the Rust reader then gets an overrun
 * error once. `bytes` may be NULL only with len 0 (then nothing happens).
 */
size_t uasyncio_serial_rx_isr(const uint8_t *bytes, size_t len);

/* [ISR-safe] Bytes dropped because the receive ring was full, since boot (wraps at 2^32). */
uint32_t uasyncio_serial_rx_overruns(void);

/*
 * [ISR-safe] Tell the loop the transmitter has room again (call it from the TX-empty
 * interrupt). A Rust writer waiting for room retries its write.
 */
void uasyncio_serial_tx_ready_isr(void);

#ifdef __cplusplus
}
#endif

#endif /* UASYNCIO_SERIAL_H */
