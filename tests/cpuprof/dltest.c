/* A small library that the torture test loads and unloads in a loop while
 * sampling: samples land in it, and some are unwound after it is gone. */
#include <stdint.h>

__attribute__((noinline)) static uint64_t dl_inner(uint64_t n, uint64_t x)
{
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 7;
		x ^= x >> 9;
	}
	return x;
}

uint64_t dltest_burn(uint64_t n)
{
	return dl_inner(n, n | 1);
}
