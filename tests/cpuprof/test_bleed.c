/*
 * Bleed test: no CPU sample lands in a generation other than the one its
 * time belongs to (the one it was taken in, or, where two generations'
 * events overlap in time, the one the drain placed it in by time: see
 * "relocation" in src/cpuprof/cpuprof.c).
 *
 * A program of mixed threads, as real ones are: two busy threads emit a
 * region every ~100 us; a silent thread wrote one event and sleeps; a thread
 * sits in gotrace_block() for the whole run, another inside a syscall
 * bracket; a scheduler thread runs an explicit goroutine that burns CPU in
 * short bursts and yields, blocks and is woken.  Silent, blocked and
 * syscalling threads are stated in every generation by the advancer, after
 * the next generation began: their statuses are events of the generation
 * like any other.  Each CPU source samples at 1 kHz (perf falls back to
 * thread timers where it is not permitted) while the generation advances
 * every 1-5 ms (advance period 5 ms plus gotrace_flush() at random 1-4 ms
 * intervals).  The trace is read raw (Go's readers clamp times into an
 * increasing stream, which would hide a misplaced sample): a sample of
 * generation g is misplaced if its timestamp is before the last event of
 * g-1, or past both the last event of g and the first event of g+1 (see
 * raw_misplaced).  Required: 0 misplaced, the same samples in the same
 * generations as Go's reader reports, and, over the three sources, at least
 * 50,000 samples on a machine that gives the busy threads the CPU.  Each
 * source's run lasts until the busy threads used enough CPU time for
 * GOTRACE_BLEED_SAMPLES samples (default 17000: about 9 s on an idle 2-CPU
 * machine), at most 40 s of wall time (more with a larger target).
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <pthread.h>
#include <stdbool.h>
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

/* The other kinds of threads, each registered before the clock starts. */
static pthread_mutex_t role_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t role_cv = PTHREAD_COND_INITIALIZER;
static int roles_ready;

static void role_ready(void)
{
	pthread_mutex_lock(&role_mu);
	roles_ready++;
	pthread_cond_broadcast(&role_cv);
	pthread_mutex_unlock(&role_mu);
}

static void nap_until_stop(void)
{
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct timespec d = { 0, 2 * 1000 * 1000 };
		nanosleep(&d, NULL);
	}
}

static void *silent(void *arg)
{
	(void)arg;
	gotrace_log(0, "bleed", "silent from now on");
	role_ready();
	nap_until_stop();
	return NULL;
}

static void *blocked(void *arg)
{
	(void)arg;
	gotrace_block("sync");
	role_ready();
	nap_until_stop();
	gotrace_block_end();
	return NULL;
}

static void *in_syscall(void *arg)
{
	(void)arg;
	gotrace_syscall_begin();
	role_ready();
	nap_until_stop();
	gotrace_syscall_end();
	return NULL;
}

/* An explicit goroutine burns ~300 us, yields, sleeps; every fourth round
 * it blocks and the thread's own goroutine wakes it. */
static void *scheduler(void *arg)
{
	(void)arg;
	gotrace_goroutine_t xg = gotrace_go_create("bleed_xg");
	role_ready();
	uint64_t x = 7;
	for (unsigned round = 0; !__atomic_load_n(&stop, __ATOMIC_RELAXED); round++) {
		gotrace_go_start(xg);
		uint64_t end = mono() + 300000;
		while (mono() < end)
			for (int i = 0; i < 100; i++)
				x = x * 6364136223846793005ull + 3;
		if (round % 4 == 3) {
			gotrace_go_block(xg, "chan receive");
			gotrace_unblock(xg);
		} else {
			gotrace_go_stop(xg);
		}
		struct timespec d = { 0, 700 * 1000 };
		nanosleep(&d, NULL);
	}
	gotrace_go_destroy(xg);
	__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
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

static size_t total_samples;
static bool any_capped;

/* Default samples per source: the sanitizer builds (where the total is not
 * asserted: bleed_total) check placement on a third of them, to keep the
 * suite within its time budget. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define BLEED_DEFAULT 6000
#else
#define BLEED_DEFAULT 17000
#endif

/* Generation boundaries a run must cross (the run goes on until it has). */
#define BLEED_MIN_GENS 300

static void bleed(int source)
{
	const char *env = getenv("GOTRACE_BLEED_SAMPLES");
	double target = env && *env ? atof(env) : BLEED_DEFAULT;
	double cap = target / 17000 * 40;
	char path[512]; /* nothing allocated lives across an assertion */
	{
		char *p = tmp_trace_path("bleed");
		snprintf(path, sizeof path, "%s", p);
		free(p);
	}
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = 1000;
	o.cpu_source = source;
	o.advance_period_ns = 5000000;
	stress_options(&o, STRESS_BUFFERS | STRESS_ADVANCE);
	assert_int_equal(gotrace_start_path(path, &o), 0);
	if (*gotrace_start_notes())
		printf("note: %s\n", gotrace_start_notes());
	enum { NTH = 7 };
	pthread_t th[NTH];
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
	roles_ready = 0;
	void *(*roles[4])(void *) = { silent, blocked, in_syscall, scheduler };
	for (int i = 0; i < 4; i++)
		pthread_create(&th[3 + i], NULL, roles[i], NULL);
	pthread_mutex_lock(&role_mu);
	while (roles_ready < 4)
		pthread_cond_wait(&role_cv, &role_mu);
	pthread_mutex_unlock(&role_mu);
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
		gotrace_stats gst;
		gotrace_get_stats(&gst);
		if ((cpu * 1000 >= target && gst.generations >= BLEED_MIN_GENS) || secs >= cap)
			break;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < NTH; i++)
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
		uint64_t g = (uint64_t)s.lines[i].gen + r.mingen - 1; /* raw number */
		if (s.lines[i].gen >= 1 && g <= r.maxgen)
			per_gen[g]++;
	}
	size_t gen_mismatch = 0;
	for (uint64_t g = r.mingen; g <= r.maxgen; g++)
		gen_mismatch += per_gen[g] != r.gens[g].nsamples;
	printf("FIGURE bleed: busy threads' CPU %.2f s (rate x CPU %.0f samples)\n", busy_cpu[0] + busy_cpu[1],
	       1000 * (busy_cpu[0] + busy_cpu[1]));
	printf("FIGURE bleed (source %d): %zu samples in %llu generations (%.1f s, stats %llu, lost %llu), "
	       "%zu misplaced (%zu early, %zu late), reader count %zu, generations with other "
	       "counts %zu\n",
	       source, r.ns, (unsigned long long)(r.maxgen - r.mingen + 1), secs, (unsigned long long)gs.cpu_samples,
	       (unsigned long long)gs.cpu_samples_lost, bad, early, late, nread, gen_mismatch);
	fflush(stdout);
	size_t ns = r.ns;
	uint64_t maxgen = r.maxgen - r.mingen + 1;
	free(per_gen); /* nothing allocated lives across an assertion */
	tsum_free(&s);
	raw_free(&r);
	assert_int_equal(bad, 0);
	assert_int_equal(nread, ns);
	assert_int_equal(gen_mismatch, 0);
	assert_int_equal(gs.cpu_samples + gs.cpu_samples_lost, ns);
	total_samples += ns;
	if (secs >= cap) {
		any_capped = true;
		printf("WARNING: machine too busy: %zu samples in %.0f s\n", ns, secs);
	}
	/* The advances really ran: the samples had BLEED_MIN_GENS generation
	 * boundaries to fall on the wrong side of (counted, not derived from
	 * the wall time: how often a loaded machine lets the advancer run is
	 * not what this test is about). */
	assert_true(maxgen >= BLEED_MIN_GENS);
}

static void bleed_perf(void **st) { (void)st; bleed(GOTRACE_CPU_PERF); }
static void bleed_thread_timer(void **st) { (void)st; bleed(GOTRACE_CPU_THREAD_TIMER); }
static void bleed_setitimer(void **st) { (void)st; bleed(GOTRACE_CPU_SETITIMER); }

/* The three runs together checked enough samples to mean something (the
 * sanitizers' builds run slower than the CPU clock that sets the target,
 * and a machine that starved the busy threads is reported, not failed). */
static void bleed_total(void **st)
{
	(void)st;
	const char *env = getenv("GOTRACE_BLEED_SAMPLES");
	double target = env && *env ? atof(env) : BLEED_DEFAULT;
	printf("FIGURE bleed: %zu samples over the three sources, 0 misplaced\n", total_samples);
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
	if (!any_capped && target >= 17000)
		assert_true(total_samples >= 50000);
#else
	(void)target;
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bleed_perf),
		cmocka_unit_test(bleed_thread_timer),
		cmocka_unit_test(bleed_setitimer),
		cmocka_unit_test(bleed_total),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
