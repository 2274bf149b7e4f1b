/*
 * The cellular sample as a Zephyr app: the C half (board glue).
 *
 * The application is Rust (lib.rs, run by the module's loop thread: rust_main). This file
 * drives the modem's UART through Zephyr's UART interrupt API and hands the bytes to the
 * Rust serial port through uasyncio_serial.h:
 *
 *   receive   the UART callback reads the receive FIFO (uart_fifo_read) and passes the bytes
 *             to uasyncio_serial_rx_isr(), which fills the receive ring and wakes the reader.
 *             It never reads more than the ring has room for (cell_serial_rx_room()); when
 *             the ring is full it masks the receive interrupt, so the bytes wait in the UART
 *             (and behind it in QEMU's chardev or the pty) instead of being dropped; the
 *             Rust port unmasks it after each read (cell_modem_rx_resume()).
 *   transmit  the Rust UartTx queues bytes here (cell_modem_tx_write) and enables the TX
 *             interrupt; the callback moves them into the UART with uart_fifo_fill and
 *             disables the TX interrupt when the queue is empty. When a writer found the
 *             queue full, or a flush waits, the callback sets the TX-ready flag
 *             (uasyncio_serial_tx_ready_isr()).
 *
 * The modem UART is the devicetree's chosen `uasyncio,modem-uart` (the overlays in boards/):
 * native_sim: a zephyr,native-tty-uart node opened on the simulator's pty (its path comes
 * from the command line: -modem_tty_port=PATH); qemu_cortex_m3: uart1 (QEMU's second
 * -serial). The console is the board's (native_sim: stdout; qemu_cortex_m3: uart0).
 *
 * Host access (command line, CA file, exit): native_sim is a Linux process and uses the
 * native simulator's host calls; QEMU uses semihosting (CONFIG_SEMIHOST).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <string.h>

#include <zephyr/kernel.h>
#if __has_include(<zephyr/version.h>)
#include <zephyr/version.h> /* Zephyr >= 3.5 */
#else
#include <version.h>
#endif
#include <zephyr/fatal.h>
#include <zephyr/device.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/sys/printk.h>

#include "uasyncio_serial.h"

#if !DT_HAS_CHOSEN(uasyncio_modem_uart)
#error "the devicetree needs a chosen uasyncio,modem-uart (see the overlays in boards/)"
#endif


/* Rust (lib.rs): room left in the receive ring. ISR-safe. */
extern size_t cell_serial_rx_room(void);

static const struct device *const modem = DEVICE_DT_GET(DT_CHOSEN(uasyncio_modem_uart));

/* ---- host access ------------------------------------------------------------------------ */

#if defined(CONFIG_ARCH_POSIX)
/* native_sim: the native simulator's command line (the words after -testargs), its host
 * calls (nsi_host_trampolines.h) and exit. Declared here: the headers' paths differ between
 * Zephyr versions. */
extern void native_get_test_cmd_line_args(int *argc, char ***argv);
extern int nsi_host_open(const char *pathname, int flags);
extern long nsi_host_read(int fd, void *buffer, unsigned long size);
extern int nsi_host_close(int fd);
extern void posix_exit(int exit_code);
#define HOST_O_RDONLY 0 /* Linux O_RDONLY */

const char *cell_board_name(void)
{
	return CONFIG_BOARD " (native, modem on a host pty)";
}

int cell_board_cmdline(char *buf, size_t size)
{
	int argc = 0;
	char **argv = NULL;
	size_t n = 0;

	native_get_test_cmd_line_args(&argc, &argv);
	for (int i = 0; i < argc && argv != NULL; i++) {
		size_t len = strlen(argv[i]);

		if (n + len + 1 > size) {
			break;
		}
		if (n > 0) {
			buf[n++] = ' ';
		}
		memcpy(&buf[n], argv[i], len);
		n += len;
	}
	return (int)n;
}

int cell_board_read_file(const char *path, uint8_t *buf, size_t size)
{
	int fd = nsi_host_open(path, HOST_O_RDONLY);
	size_t n = 0;

	if (fd < 0) {
		return -1;
	}
	while (n < size) {
		long r = nsi_host_read(fd, buf + n, size - n);

		if (r < 0) {
			(void)nsi_host_close(fd);
			return -1;
		}
		if (r == 0) {
			break;
		}
		n += (size_t)r;
	}
	(void)nsi_host_close(fd);
	return (int)n;
}

void cell_board_exit(int code)
{
	posix_exit(code);
}

#elif defined(CONFIG_SEMIHOST)
#include <zephyr/arch/common/semihost.h>

/* ARM semihosting SYS_EXIT and its reason codes (ADP_Stopped_*). */
#define SEMIHOST_SYS_EXIT		0x18
#define ADP_STOPPED_APPLICATION_EXIT	0x20026
#define ADP_STOPPED_RUN_TIME_ERROR	0x20023

const char *cell_board_name(void)
{
	return CONFIG_BOARD " (QEMU, modem on the second serial port)";
}

int cell_board_cmdline(char *buf, size_t size)
{
	struct {
		char *buf;
		long len;
	} block = { buf, (long)size };
	const char *p = buf;
	size_t len;

	if (size == 0 || semihost_exec(SEMIHOST_GET_CMDLINE, &block) != 0) {
		return 0;
	}
	len = strnlen(buf, size);
	/* Skip the program name (the first word: QEMU's first arg=). */
	while (*p != '\0' && *p != ' ') {
		p++;
	}
	while (*p == ' ') {
		p++;
	}
	len -= (size_t)(p - buf);
	memmove(buf, p, len);
	return (int)len;
}

int cell_board_read_file(const char *path, uint8_t *buf, size_t size)
{
	long fd = semihost_open(path, SEMIHOST_OPEN_RB);
	long len;

	if (fd < 0) {
		return -1;
	}
	len = semihost_flen(fd);
	/* semihost_read returns the number of bytes read (Zephyr's wrapper). */
	if (len < 0 || (size_t)len > size || semihost_read(fd, buf, len) != len) {
		(void)semihost_close(fd);
		return -1;
	}
	(void)semihost_close(fd);
	return (int)len;
}

void cell_board_exit(int code)
{
	uintptr_t reason = code == 0 ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUN_TIME_ERROR;

	(void)semihost_exec((enum semihost_instr)SEMIHOST_SYS_EXIT, (void *)reason);
}

#else
#error "this sample needs native_sim (CONFIG_ARCH_POSIX) or a QEMU board with CONFIG_SEMIHOST=y"
#endif

/* A fatal error (a Rust panic ends in k_panic()) ends the run with a failure at once, instead
 * of leaving QEMU or the process halted until the script's timeout. */
#if ZEPHYR_VERSION_CODE >= ZEPHYR_VERSION(3, 7, 0)
void k_sys_fatal_error_handler(unsigned int reason, const struct arch_esf *esf)
#else
void k_sys_fatal_error_handler(unsigned int reason, const z_arch_esf_t *esf)
#endif
{
	ARG_UNUSED(esf);
	printk("firmware: FAIL (fatal error %u)\n", reason);
	cell_board_exit(1);
	for (;;) {
		k_cpu_idle();
	}
}

/* ---- the modem UART --------------------------------------------------------------------- */

#define TX_QUEUE_SIZE 1024U

/* Transmit queue: the loop thread produces (under irq_lock), the UART callback consumes.
 * Free-running indices. */
static uint8_t tx_buf[TX_QUEUE_SIZE];
static volatile uint32_t tx_head;	/* bytes queued */
static volatile uint32_t tx_tail;	/* bytes given to uart_fifo_fill */
static volatile bool tx_wanted;		/* a writer or a flush waits: set the TX-ready flag */
static volatile bool rx_paused;		/* the receive interrupt is masked: the ring was full */

/* Statistics, printed at the end. */
static volatile uint32_t rx_irqs, rx_bytes, rx_pauses, tx_irqs;

#ifdef CONFIG_UART_INTERRUPT_DRIVEN

static void modem_uart_cb(const struct device *dev, void *user_data)
{
	ARG_UNUSED(user_data);

	while (uart_irq_update(dev) > 0 && uart_irq_is_pending(dev) > 0) {
		bool progress = false;

		if (uart_irq_rx_ready(dev) > 0) {
			uint8_t bytes[64];
			size_t room = cell_serial_rx_room();
			int n = 0;

			rx_irqs++;
			if (room == 0) {
				/* Leave the bytes in the UART until the reader makes room. */
				uart_irq_rx_disable(dev);
				rx_paused = true;
				rx_pauses++;
			} else {
				n = uart_fifo_read(dev, bytes, (int)MIN(room, sizeof(bytes)));
				if (n > 0) {
					(void)uasyncio_serial_rx_isr(bytes, (size_t)n);
					rx_bytes += (uint32_t)n;
					progress = true;
				}
			}
		}

		if (uart_irq_tx_ready(dev) > 0) {
			uint32_t tail = tx_tail;
			uint32_t queued = tx_head - tail;

			tx_irqs++;
			if (queued == 0) {
				uart_irq_tx_disable(dev);
			} else {
				uint32_t at = tail % TX_QUEUE_SIZE;
				uint32_t chunk = MIN(queued, TX_QUEUE_SIZE - at);
				int sent = uart_fifo_fill(dev, &tx_buf[at], (int)chunk);

				if (sent > 0) {
					tx_tail = tail + (uint32_t)sent;
					progress = true;
				}
			}
			if (tx_wanted && (tx_head - tx_tail) <= TX_QUEUE_SIZE / 2U) {
				tx_wanted = false;
				uasyncio_serial_tx_ready_isr();
			}
		}

		if (!progress) {
			break;
		}
	}
}

int cell_modem_init(void)
{
	if (!device_is_ready(modem)) {
		return -1;
	}
	uart_irq_rx_disable(modem);
	uart_irq_tx_disable(modem);
	uart_irq_callback_user_data_set(modem, modem_uart_cb, NULL);
	uart_irq_rx_enable(modem);
	return 0;
}

/* The TX interrupt fires while the UART has room: the callback sends the queue. */
static inline void uart_irq_tx_enable_if_any(const struct device *dev)
{
	uart_irq_tx_enable(dev);
}

#else /* !CONFIG_UART_INTERRUPT_DRIVEN */

/*
 * Fallback for a modem UART whose driver has no interrupt API: Zephyr 3.4's native tty
 * driver (the interrupt API came in Zephyr 3.7, where the driver itself emulates it with a
 * polling thread). This thread does the same as the interrupt callback above, with
 * uart_poll_in/uart_poll_out: while bytes move it loops, else it sleeps 1 ms, which bounds
 * the added latency per direction at about 1 ms (plus the scheduling of this thread, which
 * runs above the loop thread).
 */
#define POLL_THREAD_STACK 2048
#define POLL_THREAD_PRIO K_PRIO_PREEMPT(1)
static K_THREAD_STACK_DEFINE(poll_stack, POLL_THREAD_STACK);
static struct k_thread poll_thread;

static void modem_poll_thread(void *p1, void *p2, void *p3)
{
	ARG_UNUSED(p1);
	ARG_UNUSED(p2);
	ARG_UNUSED(p3);

	for (;;) {
		bool progress = false;
		uint8_t bytes[64];
		size_t room = MIN(cell_serial_rx_room(), sizeof(bytes));
		size_t n = 0;

		while (n < room && uart_poll_in(modem, &bytes[n]) == 0) {
			n++;
		}
		if (n > 0) {
			rx_irqs++;
			(void)uasyncio_serial_rx_isr(bytes, n);
			rx_bytes += (uint32_t)n;
			progress = true;
		} else if (room == 0) {
			rx_pauses++;
		}

		while (tx_head != tx_tail) {
			uint32_t tail = tx_tail;

			uart_poll_out(modem, tx_buf[tail % TX_QUEUE_SIZE]);
			tx_tail = tail + 1U;
			progress = true;
		}
		if (tx_wanted) {
			tx_wanted = false;
			tx_irqs++;
			uasyncio_serial_tx_ready_isr();
		}

		if (!progress) {
			k_sleep(K_MSEC(1));
		}
	}
}

int cell_modem_init(void)
{
	if (!device_is_ready(modem)) {
		return -1;
	}
	k_thread_create(&poll_thread, poll_stack, K_THREAD_STACK_SIZEOF(poll_stack),
			modem_poll_thread, NULL, NULL, NULL, POLL_THREAD_PRIO, 0, K_NO_WAIT);
	k_thread_name_set(&poll_thread, "modem_poll");
	return 0;
}

/* The polling thread has no interrupt to mask or unmask. */
static inline void uart_irq_tx_enable_if_any(const struct device *dev)
{
	ARG_UNUSED(dev);
}

#endif /* CONFIG_UART_INTERRUPT_DRIVEN */

size_t cell_modem_tx_write(const uint8_t *bytes, size_t len)
{
	unsigned int key = irq_lock();
	uint32_t head = tx_head;
	size_t n = TX_QUEUE_SIZE - (size_t)(head - tx_tail);

	if (n > len) {
		n = len;
	}
	for (size_t i = 0; i < n; i++) {
		tx_buf[(head + i) % TX_QUEUE_SIZE] = bytes[i];
	}
	tx_head = head + (uint32_t)n;
	if (n == 0) {
		tx_wanted = true;
	}
	irq_unlock(key);
	uart_irq_tx_enable_if_any(modem);
	return n;
}

int cell_modem_tx_idle(void)
{
	unsigned int key = irq_lock();
	/* uart_irq_tx_complete: 1 once the shift register is empty; drivers without it
	 * (-ENOSYS) count as complete once the queue is handed over. (Polled: uart_poll_out
	 * returns once the byte is in the UART.) */
#ifdef CONFIG_UART_INTERRUPT_DRIVEN
	bool idle = tx_head == tx_tail && uart_irq_tx_complete(modem) != 0;
#else
	bool idle = tx_head == tx_tail;
#endif

	if (!idle) {
		tx_wanted = true;
	}
	irq_unlock(key);
	if (!idle) {
		uart_irq_tx_enable_if_any(modem);
	}
	return idle ? 1 : 0;
}

void cell_modem_rx_resume(void)
{
#ifdef CONFIG_UART_INTERRUPT_DRIVEN
	if (rx_paused && cell_serial_rx_room() > 0) {
		rx_paused = false;
		uart_irq_rx_enable(modem);
	}
#endif
}

void cell_modem_print_stats(void)
{
	printk("report: modem UART (%s): %u RX interrupts, %u bytes received, %u RX pauses (ring full), "
	       "%u TX interrupts, %u bytes sent\n",
	       IS_ENABLED(CONFIG_UART_INTERRUPT_DRIVEN) ? "interrupt API"
						    : "polled by a thread: no interrupt API",
	       rx_irqs, rx_bytes, rx_pauses, tx_irqs, tx_tail);
}

int main(void)
{
	/* The loop thread (rust_main) does everything. */
	return 0;
}
