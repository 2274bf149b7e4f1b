/*
 * test_exit.h: end a Zephyr test image with an exit status the host sees.
 *
 * native_sim: the image is a Linux process; posix_exit() ends it with that status.
 * QEMU with CONFIG_SEMIHOST=y (and `-semihosting`): semihosting SYS_EXIT, which makes QEMU
 * exit 0 for success and 1 otherwise; scripts/zephyr-test.sh builds with -DCONFIG_SEMIHOST=y.
 * Anywhere else (twister on QEMU, hardware): print the verdict, then stop with k_panic() on
 * failure or idle forever on success; the console line "uasyncio test exit: N" is the
 * verdict (testcase.yaml matches it).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UASYNCIO_TEST_EXIT_H_
#define UASYNCIO_TEST_EXIT_H_

/* Ends the test image: status 0 is success. Does not return. */
void uasyncio_test_exit(int status);

#endif
