/*
 * Time: durations shown by Go's tools match CLOCK_MONOTONIC within 1%, for
 * the cycle counter (calibrated Frequency) and for CLOCK_MONOTONIC ticks,
 * within one generation and across several generation boundaries.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tracecheck.h"

static uint64_t mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
	struct timespec d = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&d, &d) != 0)
		;
}

static void check_clock(int clock, uint64_t period_ns)
{
	char *path = tmp_trace_path("clock");
	gotrace_options o;
	gotrace_options_init(&o);
	o.clock = clock;
	o.advance_period_ns = period_ns;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	gotrace_region_begin(0, "warm"); /* register the thread first */
	gotrace_region_end(0, "warm");
	uint64_t t0 = mono();
	gotrace_region_begin(0, "sleep");
	uint64_t t1 = mono();
	sleep_ms(300);
	uint64_t t2 = mono();
	gotrace_region_end(0, "sleep");
	uint64_t t3 = mono();
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	/* The true duration lies in [t2-t1, t3-t0]. */
	double lo = (double)(t2 - t1), hi = (double)(t3 - t0);
	static const char *rd[] = { "go1.23", "new" };
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, rd[r], &s), 0);
		int64_t b = -1, e = -1, gb = -1, ge = -1;
		for (size_t i = 0; i < s.n; i++) {
			const struct tline *l = &s.lines[i];
			if (!strcmp(l->kind, "regionbegin") && !strcmp(tl_get(l, "name"), "sleep"))
				b = l->t, gb = l->gen;
			if (!strcmp(l->kind, "regionend") && !strcmp(tl_get(l, "name"), "sleep"))
				e = l->t, ge = l->gen;
		}
		assert_true(b >= 0 && e > b);
		double d = (double)(e - b);
		printf("clock=%d period=%llums reader=%s: trace %.3f ms, monotonic [%.3f, %.3f] ms, "
		       "generations spanned %lld\n",
		       clock, (unsigned long long)(period_ns / 1000000), rd[r], d / 1e6, lo / 1e6, hi / 1e6,
		       (long long)(ge - gb));
		assert_true(d >= lo * 0.99 && d <= hi * 1.01);
		if (period_ns < 100000000)
			assert_true(ge - gb >= 3);
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

static void test_auto_clock_one_generation(void **s) { (void)s; check_clock(GOTRACE_CLOCK_AUTO, 10000000000ull); }
static void test_auto_clock_across_generations(void **s) { (void)s; check_clock(GOTRACE_CLOCK_AUTO, 20000000); }
static void test_monotonic_clock(void **s) { (void)s; check_clock(GOTRACE_CLOCK_MONOTONIC, 20000000); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auto_clock_one_generation),
		cmocka_unit_test(test_auto_clock_across_generations),
		cmocka_unit_test(test_monotonic_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
