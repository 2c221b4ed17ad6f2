/*
 * Symbolization never holds up a generation's end (issue 10, part 4;
 * src/stacks/symbolize.c, symlines.c).
 *
 * The line resolver is made to stand still for 5 s before each batch (the
 * test hook gt_symlines_stall_ns), standing for a library whose DWARF takes
 * that long to load.  With CPU sampling on, the main thread sorts with
 * qsort (samples in libc, whose lines go to the resolver, and in this
 * file, whose small DWARF is read by the flusher itself), then calls
 * gotrace_flush; every 4096th comparison writes a region with an event
 * stack through qsort.  Checks:
 *  - gotrace_flush returns 0 within 1 s (the advance waits GT_SYM_WAIT_NS
 *    for lines, not for the resolver); the library before this change read
 *    every frame's DWARF inside the advance;
 *  - in the flushed generation (not under TSan, whose signal delivery
 *    moves samples), the samples' stacks carry their function
 *    names (cmp_int <- ... <- burn_sort), this file's frames their file and
 *    line, and libc's frames their module's path as the file (their line
 *    was not known yet: written without it, not waited for);
 *  - once the stall ends, tracing goes on and stops normally, and the trace
 *    passes both validators.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stacks/stacks.h"
#include "stacks/symlines.h"
#include "tracecheck.h"
#include "../cpuprof/cpuprof_test.h"

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Every 4096th comparison opens and closes a region: with event stacks on,
 * its stack runs through qsort's frames in libc, so the resolver is asked
 * for libc's lines whatever the sampler's stacks hold (under TSan signals
 * arrive at the runtime's safe points, and samples may miss qsort).  A
 * function of its own: the API's inline fast path (gotrace.h) would give
 * cmp_int's samples there the header's lines. */
__attribute__((noinline)) static void mark(void)
{
	gotrace_region_begin(0, "cmp");
	gotrace_region_end(0, "cmp");
}

__attribute__((noinline)) static int cmp_int(const void *a, const void *b)
{
	static unsigned n;
	if ((++n & 4095) == 0)
		mark();
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Sorts until this thread used secs of CPU (not wall time: a loaded
 * machine must not shorten the run). */
__attribute__((noinline)) static void burn_sort(double secs)
{
	static int arr[50000];
	unsigned x = 12345;
	double t0 = thread_cpu();
	while (thread_cpu() - t0 < secs) {
		for (int i = 0; i < 50000; i++)
			arr[i] = (int)(x = x * 1103515245u + 12345u);
		qsort(arr, 50000, sizeof arr[0], cmp_int);
	}
}

static void flush_does_not_wait_for_lines(void **st)
{
	(void)st;
	char *path = tmp_trace_path("symlines");
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = 1000;
	o.cpu_source = GOTRACE_CPU_SETITIMER;
	o.advance_period_ns = 60ull * 1000000000ull; /* only our flush ends gen 1 */
	o.event_stacks = GOTRACE_STACK_ALL;
	__atomic_store_n(&gt_symlines_stall_ns, 5ull * 1000000000ull, __ATOMIC_RELAXED);
	assert_int_equal(gotrace_start_path(path, &o), 0);
	burn_sort(0.3);
	double t0 = mono();
	int rc = gotrace_flush();
	double took = mono() - t0;
	printf("FIGURE symlines: gotrace_flush took %.1f ms with the line resolver stalled 5 s\n",
	       took * 1e3);
	__atomic_store_n(&gt_symlines_stall_ns, 0, __ATOMIC_RELAXED);
	burn_sort(0.05);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(rc, 0);
	assert_true(took < 1.0);
	assert_int_equal(judge_trace(path), 0);

	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	static struct frame fr[FR_MAX];
	long gen1 = 0, with_cmp = 0, cmp_ok = 0, libc_frames = 0, libc_unresolved = 0, burn_ok = 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (strcmp(l->kind, "sample") != 0 || l->gen != 1)
			continue;
		gen1++;
		int nf = frames(tl_get(l, "stack"), fr, FR_MAX);
		int k = 0;
		while (k < nf && strcmp(fr[k].func, "cmp_int") != 0)
			k++;
		if (k == nf)
			continue;
		with_cmp++;
		cmp_ok += ends_with(fr[k].file, "test_symlines.c") && fr[k].line > 1;
		for (int j = k + 1; j < nf; j++) {
			if (!strcmp(fr[j].func, "burn_sort")) {
				burn_ok += ends_with(fr[j].file, "test_symlines.c") && fr[j].line > 1;
				break;
			}
			if (strstr(fr[j].file, "libc") || strstr(fr[j].func, "libc")) {
				libc_frames++;
				libc_unresolved += !ends_with(fr[j].file, ".c") && fr[j].line == 1;
			}
		}
	}
	tsum_free(&s);
	printf("FIGURE symlines: generation 1: %ld samples, %ld in cmp_int (%ld with its line), "
	       "%ld reached burn_sort with its line; %ld libc frames, %ld without a line yet\n",
	       gen1, with_cmp, cmp_ok, burn_ok, libc_frames, libc_unresolved);
#if defined(__SANITIZE_THREAD__)
	/* TSan delivers SIGPROF at its own safe points: the samples' stacks
	 * need not run through qsort (test_cpuhot.c, ACCURACY).  The bound on
	 * the flush above is what holds there. */
	(void)cmp_ok;
	(void)burn_ok;
	(void)libc_unresolved;
	free(path);
	return;
#endif
	assert_true(with_cmp > 0);
	assert_int_equal(cmp_ok, with_cmp);
	assert_true(burn_ok > 0);
	assert_true(libc_frames > 0);
	assert_int_equal(libc_unresolved, libc_frames);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flush_does_not_wait_for_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
