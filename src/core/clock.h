/*
 * clock.h: the trace clock.  Ticks are cycle-counter/64 where the counter is
 * invariant, CLOCK_MONOTONIC ns/64 otherwise: 64 keeps timestamp deltas
 * small (1-byte uvarints for events ~1 us apart), as the Go runtime does.
 * May call: src/arch (the cycle counter), clock_gettime.
 */
#ifndef GT_CLOCK_H
#define GT_CLOCK_H

#include <stdint.h>
#include <time.h>
#include "../arch/arch.h"

#define GT_TICK_SHIFT 6

/* Written once by gt_clock_init (under the start lock, before tracing is
 * on); read-only afterwards by every thread and signal handler: use_cycles
 * on every event, so a line of its own (GT_LINE). */
struct gt_clock {
	int use_cycles;    /* 1: cycle counter, 0: CLOCK_MONOTONIC */
	uint64_t freq;     /* ticks per second, the Frequency event */
	double cycles_hz;  /* calibrated counter rate (use_cycles only) */
} __attribute__((aligned(GT_LINE)));
extern struct gt_clock gt_clock;

/* Choose and calibrate the clock (mode: GOTRACE_CLOCK_*).  Returns 0 or a
 * negative gotrace_err. Calibration of the counter runs once per process. */
int gt_clock_init(int mode);

static inline uint64_t gt_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Current time in ticks.  AS-safe. */
static inline uint64_t gt_now(void)
{
	if (__builtin_expect(gt_clock.use_cycles, 1))
		return gt_arch_cycles() >> GT_TICK_SHIFT;
	return gt_mono_ns() >> GT_TICK_SHIFT;
}

#endif
