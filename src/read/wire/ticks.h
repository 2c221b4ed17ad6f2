/*
 * wire/ticks.h: trace timestamps (ticks) to Go's nanoseconds.  No calls.
 */
#ifndef GTREAD_WIRE_TICKS_H
#define GTREAD_WIRE_TICKS_H

#include <stdint.h>

/* Go: Time(float64(t) * nsPerTick), with amd64's conversion of values out
 * of int64 range (INT64_MIN) instead of C's undefined behaviour. */
int64_t gtr_ticks_to_ns(uint64_t t, double ns_per_tick);

#endif
