/* SPDX-License-Identifier: MIT OR Apache-2.0 */
#include <zephyr/kernel.h>
#include <zephyr/sys/printk.h>

#include "test_exit.h"

#if defined(CONFIG_ARCH_POSIX)
extern void posix_exit(int exit_code);
#elif defined(CONFIG_SEMIHOST)
#include <zephyr/arch/common/semihost.h>
/* ARM semihosting SYS_EXIT and its reason codes (ADP_Stopped_*). */
#define SEMIHOST_SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023
#endif

/* The shim's RAM report (prints with CONFIG_UASYNCIO_RAM_REPORT=y, else does nothing). */
extern void uasyncio_ram_report(void);

void uasyncio_test_exit(int status)
{
	uasyncio_ram_report();
	printk("uasyncio test exit: %d\n", status);
#if defined(CONFIG_ARCH_POSIX)
	posix_exit(status);
#elif defined(CONFIG_SEMIHOST)
	uintptr_t reason = status == 0 ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUN_TIME_ERROR;

	(void)semihost_exec((enum semihost_instr)SEMIHOST_SYS_EXIT, (void *)reason);
#endif
	if (status != 0) {
		k_panic();
	}
	for (;;) {
		k_sleep(K_FOREVER);
	}
}
