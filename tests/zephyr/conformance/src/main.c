/* The cases run in the loop thread (rust_main, lib.rs); main() has nothing to do.
 * SPDX-License-Identifier: MIT OR Apache-2.0 */
#include <zephyr/kernel.h>

/* The uasyncio heap's size, so that cases too big for this board can be skipped. */
size_t conformance_heap_size(void)
{
	return CONFIG_UASYNCIO_HEAP_SIZE;
}

int main(void)
{
	return 0;
}
