/* One of the 20 small shared libraries of bench_firstflush (built 20 times
 * with FFLIB = 0..19): a hot function with a callee, so that samples land
 * in every library and each gets its own module, symbols and DWARF. */
#include <stdint.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

__attribute__((noinline)) static uint64_t CAT(ff_inner_, FFLIB)(uint64_t x, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

uint64_t CAT(ff_burn_, FFLIB)(uint64_t n)
{
	return CAT(ff_inner_, FFLIB)(n | 1, n);
}
