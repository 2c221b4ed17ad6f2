/*
 * Bleed test: no CPU sample lands in a generation other than the one its
 * time belongs to (the one it was taken in, or, where two generations'
 * events overlap in time, the one the drain placed it in by time: see
 * "relocation" in src/cpuprof/cpuprof.c).
 *
 * Two busy threads emit a region every ~100 us while the perf source samples
 * each at 1 kHz (thread timers if perf is unavailable) and the generation
 * advances every 1-5 ms (advance period 5 ms plus gotrace_flush() at random
 * 1-4 ms intervals).  The trace is read raw (Go's readers clamp times into an
 * increasing stream, which would hide a misplaced sample): a sample of
 * generation g is misplaced if its timestamp is past both the last event of
 * g and the first event of g+1, or before both the first event of g and the
 * last of g-1 (see raw_misplaced).  Required: 0 misplaced over >= 20,000
 * samples, the same samples in the same generations as Go's reader reports.
 * The run lasts until the busy threads have used enough CPU time for
 * GOTRACE_BLEED_SAMPLES samples (default 21000: about 11 s on an idle
 * 2-CPU machine), at most 45 s of wall time (more with a larger target); a
 * machine too busy to reach 20,000 in that time is reported and the
 * placement is still checked on what was taken.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpuprof_test.h"
#include "tracecheck.h"

static volatile int stop;
static volatile uint64_t sink;

static uint64_t mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double busy_cpu[2];

static void *busy(void *arg)
{
	int idx = (int)(intptr_t)arg;
	uint64_t x = 1;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		gotrace_region_begin(0, "spin");
		uint64_t end = mono() + 100000;
		while (mono() < end)
			for (int i = 0; i < 100; i++)
				x = x * 6364136223846793005ull + 1;
		gotrace_region_end(0, "spin");
	}
	__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	busy_cpu[idx] = ts.tv_sec + ts.tv_nsec / 1e9;
	return NULL;
}

static void *advancer(void *arg)
{
	(void)arg;
	unsigned seed = 12345;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct timespec d = { 0, (long)(1000000 + rand_r(&seed) % 3000000) };
		nanosleep(&d, NULL);
		gotrace_flush();
	}
	return NULL;
}

static void bleed(void **st)
{
	(void)st;
	const char *env = getenv("GOTRACE_BLEED_SAMPLES");
	double target = env && *env ? atof(env) : 21000;
	double cap = target / 21000 * 45;
	char path[512]; /* nothing allocated lives across an assertion */
	{
		char *p = tmp_trace_path("bleed");
		snprintf(path, sizeof path, "%s", p);
		free(p);
	}
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = 1000;
	o.cpu_source = GOTRACE_CPU_PERF;
	o.advance_period_ns = 5000000;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	if (*gotrace_last_error())
		printf("note: %s\n", gotrace_last_error());
	pthread_t th[3];
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
	pthread_create(&th[0], NULL, busy, (void *)(intptr_t)0);
	pthread_create(&th[1], NULL, busy, (void *)(intptr_t)1);
	pthread_create(&th[2], NULL, advancer, NULL);
	clockid_t ck[2];
	pthread_getcpuclockid(th[0], &ck[0]);
	pthread_getcpuclockid(th[1], &ck[1]);
	uint64_t t0 = mono();
	double secs = 0;
	for (;;) {
		struct timespec d = { 0, 50 * 1000 * 1000 }, c0, c1;
		nanosleep(&d, NULL);
		clock_gettime(ck[0], &c0);
		clock_gettime(ck[1], &c1);
		double cpu = c0.tv_sec + c0.tv_nsec / 1e9 + c1.tv_sec + c1.tv_nsec / 1e9;
		secs = (mono() - t0) / 1e9;
		if (cpu * 1000 >= target || secs >= cap)
			break;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(gotrace_stop(), 0);
	gotrace_stats gs;
	gotrace_get_stats(&gs);

	assert_int_equal(judge_trace(path), 0);
	struct raw r;
	int rl = raw_load(path, &r);
	if (rl != 0)
		raw_free(&r);
	assert_int_equal(rl, 0);
	size_t bad = 0, early = 0, late = 0;
	for (size_t i = 0; i < r.ns; i++) {
		int v = raw_misplaced(&r, &r.s[i]);
		if (v) {
			bad++;
			if (v < 0)
				early++;
			else
				late++;
			if (bad <= 5) {
				/* The neighbour generation's bound that the sample
				 * crossed, and the thread (M) whose event set it:
				 * the sample's own M points at the sampled thread's
				 * own critical section, another M at a thread that
				 * stamped late in its generation. */
				uint64_t g = r.s[i].gen;
				const struct raw_gen *nb = &r.gens[v < 0 ? g - 1 : g + 1];
				fprintf(stderr,
				        "misplaced sample gen=%llu t=%llu m=%llu (gen lo=%llu hi=%llu; "
				        "gen %llu %s=%llu by m=%llu)\n",
				        (unsigned long long)g, (unsigned long long)r.s[i].time,
				        (unsigned long long)r.s[i].m, (unsigned long long)r.gens[g].lo,
				        (unsigned long long)r.gens[g].hi,
				        (unsigned long long)(v < 0 ? g - 1 : g + 1), v < 0 ? "hi" : "lo",
				        (unsigned long long)(v < 0 ? nb->hi : nb->lo),
				        (unsigned long long)(v < 0 ? nb->hi_m : nb->lo_m));
			}
		}
	}
	/* Go's reader sees the same samples in the same generations. */
	struct tsum s;
	int loaded = tsum_load(path, "go1.23", &s);
	if (loaded != 0) {
		tsum_free(&s);
		raw_free(&r);
	}
	assert_int_equal(loaded, 0);
	uint64_t *per_gen = calloc(r.maxgen + 2, sizeof *per_gen);
	size_t nread = 0;
	for (size_t i = 0; i < s.n; i++) {
		if (strcmp(s.lines[i].kind, "sample") != 0)
			continue;
		nread++;
		if (s.lines[i].gen >= 1 && (uint64_t)s.lines[i].gen <= r.maxgen)
			per_gen[s.lines[i].gen]++;
	}
	size_t gen_mismatch = 0;
	for (uint64_t g = 1; g <= r.maxgen; g++)
		gen_mismatch += per_gen[g] != r.gens[g].nsamples;
	printf("FIGURE bleed: busy threads' CPU %.2f s (rate x CPU %.0f samples)\n", busy_cpu[0] + busy_cpu[1],
	       1000 * (busy_cpu[0] + busy_cpu[1]));
	printf("FIGURE bleed: %zu samples in %llu generations (%.1f s, stats %llu, lost %llu), "
	       "%zu misplaced (%zu early, %zu late), reader count %zu, generations with other "
	       "counts %zu\n",
	       r.ns, (unsigned long long)r.maxgen, secs, (unsigned long long)gs.cpu_samples,
	       (unsigned long long)gs.cpu_samples_lost, bad, early, late, nread, gen_mismatch);
	fflush(stdout);
	size_t ns = r.ns;
	uint64_t maxgen = r.maxgen;
	free(per_gen); /* nothing allocated lives across an assertion */
	tsum_free(&s);
	raw_free(&r);
	assert_int_equal(bad, 0);
	assert_int_equal(nread, ns);
	assert_int_equal(gen_mismatch, 0);
	assert_int_equal(gs.cpu_samples + gs.cpu_samples_lost, ns);
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
	if (target >= 20000) {
		if (secs < cap)
			assert_true(ns >= 20000);
		else
			printf("WARNING: machine too busy: %zu samples in %.0f s\n", ns, secs);
	}
#endif
	/* The advances really ran (every 1-5 ms when the advancer gets the CPU;
	 * at a load average of 10 on 2 CPUs it got about half of that). */
	assert_true(maxgen > 1000 * secs / 5 * 0.25);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bleed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
