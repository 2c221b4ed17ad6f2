/*
 * Torture: sampling at 1 kHz (each source in turn) while threads register
 * and exit, intern new strings, dlopen/dlclose a small library (and burn CPU
 * inside it, so samples land in code that is unloaded before its generation
 * is drained), malloc/free heavily and emit events nonstop, with the
 * generation advancing every 2 ms.  No deadlock (a watchdog aborts after
 * 10x the planned time), no crash, every trace valid.
 * GOTRACE_TORTURE_SECS: seconds per source (default 2; >= 60 for the long
 * run).
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <gotrace.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tracecheck.h"

static volatile int stop;
static volatile uint64_t sink;
static double secs;
static uint64_t dl_cycles, threads_made, allocs;

static void *short_lived(void *arg)
{
	uintptr_t k = (uintptr_t)arg;
	char name[64];
	snprintf(name, sizeof name, "churn-%lu", (unsigned long)k);
	gotrace_thread_name(name);
	gotrace_region_begin(0, name); /* a new string per thread */
	uint64_t x = k;
	for (int i = 0; i < 20000; i++)
		x = x * 6364136223846793005ull + 1;
	__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
	gotrace_region_end(0, name);
	return NULL;
}

static void *churner(void *arg)
{
	(void)arg;
	uintptr_t k = 0;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		pthread_t th[4];
		for (int i = 0; i < 4; i++)
			pthread_create(&th[i], NULL, short_lived, (void *)++k);
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		__atomic_add_fetch(&threads_made, 4, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *dl_looper(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		void *h = dlopen(DLTEST_LIB, RTLD_NOW | RTLD_LOCAL);
		assert_non_null(h);
		uint64_t (*burn)(uint64_t) = (uint64_t (*)(uint64_t))dlsym(h, "dltest_burn");
		assert_non_null(burn);
		__atomic_store_n(&sink, burn(200000), __ATOMIC_RELAXED);
		gotrace_log(0, "dl", "cycle");
		dlclose(h);
		__atomic_add_fetch(&dl_cycles, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *allocator(void *arg)
{
	(void)arg;
	void *keep[64] = { 0 };
	unsigned seed = 7;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		for (int i = 0; i < 1000; i++) {
			int j = rand_r(&seed) % 64;
			free(keep[j]);
			keep[j] = malloc(16 + (size_t)(rand_r(&seed) % 4096));
		}
		__atomic_add_fetch(&allocs, 1000, __ATOMIC_RELAXED);
		if (__atomic_load_n(&allocs, __ATOMIC_RELAXED) % 16000 == 0)
			gotrace_log(0, "alloc", "round");
	}
	for (int j = 0; j < 64; j++)
		free(keep[j]);
	return NULL;
}

static void *emitter(void *arg)
{
	(void)arg;
	char msg[64];
	uint64_t k = 0;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		uint64_t t = gotrace_task_begin(0, "torture");
		gotrace_region_begin(t, "emit");
		snprintf(msg, sizeof msg, "msg %llu", (unsigned long long)k++);
		gotrace_log(t, "emit", msg);
		if (k % 64 == 0) {
			snprintf(msg, sizeof msg, "fresh-name-%llu", (unsigned long long)k);
			gotrace_region_begin(t, msg); /* interns a new string */
			gotrace_region_end(t, msg);
		}
		gotrace_region_end(t, "emit");
		gotrace_task_end(t);
		/* ~20 us of work between rounds: nonstop, but a trace the
		 * judges read in seconds (unthrottled it is ~45 MB/s). */
		uint64_t x = k;
		for (int i = 0; i < 20000; i++)
			x = x * 6364136223846793005ull + 1;
		__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Sleep s seconds whatever the signals (SIGPROF interrupts nanosleep). */
static void sleep_for(double s)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += (time_t)s;
	t.tv_nsec += (long)((s - (time_t)s) * 1e9);
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) != 0)
		;
}

static void *watchdog(void *arg)
{
	(void)arg;
	sleep_for(secs * 10 + 30);
	fprintf(stderr, "torture: watchdog: no progress after %.0f s: deadlock\n", secs * 10 + 30);
	abort();
	return NULL;
}

static void run(int source, const char *tag)
{
	char *path = tmp_trace_path(tag);
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = 1000;
	o.cpu_source = source;
	o.advance_period_ns = 2000000;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	void *(*fns[])(void *) = { churner, dl_looper, allocator, emitter };
	enum { N = sizeof fns / sizeof fns[0] };
	pthread_t th[N];
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < N; i++)
		pthread_create(&th[i], NULL, fns[i], NULL);
	sleep_for(secs);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(gotrace_stop(), 0);
	gotrace_stats gs;
	gotrace_get_stats(&gs);
	printf("FIGURE torture %s %.0f s: %llu generations, %llu samples (%llu lost), %llu threads, "
	       "%llu dlopen/dlclose, %llu mallocs, %llu events dropped\n",
	       tag, secs, (unsigned long long)gs.generations, (unsigned long long)gs.cpu_samples,
	       (unsigned long long)gs.cpu_samples_lost, (unsigned long long)threads_made,
	       (unsigned long long)dl_cycles, (unsigned long long)allocs,
	       (unsigned long long)gs.events_dropped);
	fflush(stdout);
	assert_true(gs.cpu_samples > 0);
	assert_int_equal(judge_trace(path), 0);
	free(path);
}

static void torture(void **st)
{
	(void)st;
	const char *env = getenv("GOTRACE_TORTURE_SECS");
	secs = env && *env ? atof(env) : 2;
	pthread_t wd;
	pthread_create(&wd, NULL, watchdog, NULL);
	pthread_detach(wd);
	run(GOTRACE_CPU_PERF, "torture-perf");
	run(GOTRACE_CPU_THREAD_TIMER, "torture-timer");
	run(GOTRACE_CPU_SETITIMER, "torture-setitimer");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(torture),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
