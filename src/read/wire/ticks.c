/*
 * wire/ticks.c: trace timestamps (ticks) to Go's nanoseconds.  No calls.
 */
#include "wire/ticks.h"

int64_t gtr_ticks_to_ns(uint64_t t, double ns_per_tick)
{
	double x = (double)t * ns_per_tick;
	if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0))
		return INT64_MIN;
	return (int64_t)x;
}
