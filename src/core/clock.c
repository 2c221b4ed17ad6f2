/*
 * clock.c: the trace clock (clock.h): calibration of the invariant cycle
 * counter against CLOCK_MONOTONIC, once per process.
 * May call: src/arch, clock_gettime, /proc/cpuinfo.
 */
#include "clock.h"
#include "gotrace.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

struct gt_clock gt_clock = { 0, 1000000000u >> GT_TICK_SHIFT, 0 };

int gt_arch_cycles_invariant(void)
{
#if GT_HAVE_CYCLE_COUNTER && (defined(__x86_64__) || defined(__i386__))
	FILE *f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return 0;
	char line[4096];
	int ok = 0;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		ok = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
		break;
	}
	fclose(f);
	return ok;
#elif GT_HAVE_CYCLE_COUNTER
	return 1; /* arm64 generic timer: architecturally invariant */
#else
	return 0;
#endif
}

/* One (counter, monotonic) pair with the counter read between two clock
 * reads; the narrowest of a few tries bounds the pairing error. */
static void pair(uint64_t *cyc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;
	*cyc = *ns = 0; /* always set below; says so to -O3's flow analysis */
	for (int i = 0; i < 16; i++) {
		uint64_t a = gt_mono_ns(), c = gt_arch_cycles(), b = gt_mono_ns();
		if (b - a < best) {
			best = b - a;
			*cyc = c;
			*ns = a + (b - a) / 2;
		}
	}
}

static double calibrate_cycles(void)
{
	static double hz; /* calibrated once per process (start lock held) */
	if (hz > 0)
		return hz;
	uint64_t c0, n0, c1, n1;
	pair(&c0, &n0);
	struct timespec d = { 0, 20 * 1000 * 1000 }; /* 20 ms: error ~ 1e-5 */
	while (nanosleep(&d, &d) != 0)
		;
	pair(&c1, &n1);
	hz = (double)(c1 - c0) * 1e9 / (double)(n1 - n0);
	return hz;
}

int gt_clock_init(int mode)
{
	int inv = gt_arch_cycles_invariant();
	if (mode == GOTRACE_CLOCK_TSC && !inv)
		return -GOTRACE_EINVAL;
	if (mode == GOTRACE_CLOCK_MONOTONIC || !inv) {
		gt_clock.use_cycles = 0;
		gt_clock.freq = 1000000000u >> GT_TICK_SHIFT; /* exactly 15625000 */
		gt_clock.cycles_hz = 0;
		return 0;
	}
	gt_clock.cycles_hz = calibrate_cycles();
	gt_clock.freq = (uint64_t)(gt_clock.cycles_hz / (double)(1u << GT_TICK_SHIFT) + 0.5);
	gt_clock.use_cycles = 1;
	return 0;
}
