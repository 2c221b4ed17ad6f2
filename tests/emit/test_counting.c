/*
 * Counting tests: what the threads emit is exactly what Go's reader sees.
 *
 *  - 16 threads emit known numbers of tasks, nested regions and logs
 *    (every other round on the _lit calls) while the generation advances
 *    every millisecond: per goroutine, in program order, nothing lost or
 *    duplicated, regions nested, every task begun and ended once;
 *  - thread churn: 1100 short-lived threads, the same checks, each thread a
 *    goroutine named after its entry function;
 *  - a thread that sleeps across several advances is stated in every
 *    generation.
 * Every trace is judged by Go 1.23's and the newest Go's strict validators
 * and both `go tool trace` parsers, and read back with both readers.
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

#include "tracecheck.h"

static const char *readers[] = { "go1.23", "new" };

static void start(const char *path, uint64_t period_ns)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = period_ns;
	stress_options(&o, STRESS_BUFFERS); /* the periods are the test's own */
	assert_int_equal(gotrace_start_path(path, &o), 0);
}

/* ------------------------------------------------------------ the workload */

/* Thread `idx` emits `iters` rounds of:
 *   task T = begin("job") ; region "outer" ; region "inner" ; log ; end inner ;
 *   end outer ; task end T
 * The log message names the thread and round: "thr=<idx> k=<k>". */
struct work {
	int idx, iters;
	uint64_t *tasks; /* iters task ids, filled by the thread */
	/* If set: halfway, wait twice on it (main ends the generation in
	 * between), so the events span generations however the threads are
	 * scheduled; the 1 ms advances add more boundaries. */
	pthread_barrier_t *mid;
};

static void emit_rounds(struct work *w)
{
	char msg[64];
	for (int k = 0; k < w->iters; k++) {
		if (w->mid && k == w->iters / 2) {
			pthread_barrier_wait(w->mid);
			pthread_barrier_wait(w->mid);
		}
		snprintf(msg, sizeof msg, "thr=%d k=%d", w->idx, k);
		uint64_t t;
		if (k % 2 == 0) {
			t = gotrace_task_begin(0, "job");
			w->tasks[k] = t;
			gotrace_region_begin(t, "outer");
			gotrace_region_begin(t, "inner");
			gotrace_log(t, "count", msg);
			gotrace_region_end(t, "inner");
			gotrace_region_end(t, "outer");
		} else {
			/* The same round on the _lit calls (event.c, lit_enter):
			 * their fast path and its hand-overs to the general one
			 * under the same advances, churn and load. */
			t = gotrace_task_begin_lit(0, "job");
			w->tasks[k] = t;
			gotrace_region_begin_lit(t, "outer");
			gotrace_region_begin_lit(t, "inner");
			gotrace_log_lit(t, "count", msg);
			gotrace_region_end_lit(t, "inner");
			gotrace_region_end_lit(t, "outer");
		}
		gotrace_task_end(t);
	}
}

static void *worker_entry(void *arg)
{
	emit_rounds(arg);
	return NULL;
}

/* ------------------------------------------------- checking what Go read */

/* Per goroutine, the annotation events must be exactly the rounds of one
 * thread, in order.  Task ids are unique, so the first taskbegin of a
 * goroutine tells which thread it is.  Returns the number of goroutines that
 * carried rounds. */
static int check_rounds(const struct tsum *s, struct work *works, int nworks)
{
	uint64_t maxid = 0;
	for (int i = 0; i < nworks; i++)
		for (int k = 0; k < works[i].iters; k++)
			maxid = works[i].tasks[k] > maxid ? works[i].tasks[k] : maxid;
	int *task_thr = malloc((maxid + 1) * sizeof *task_thr);
	for (uint64_t i = 0; i <= maxid; i++)
		task_thr[i] = -1;
	for (int i = 0; i < nworks; i++)
		for (int k = 0; k < works[i].iters; k++)
			task_thr[works[i].tasks[k]] = i;
	int64_t maxg = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->lines[i].g > maxg)
			maxg = s->lines[i].g;
	int *thr_of = malloc((size_t)(maxg + 1) * sizeof *thr_of);
	int *pos = calloc((size_t)(maxg + 1), sizeof *pos);
	for (int64_t i = 0; i <= maxg; i++)
		thr_of[i] = -1;
	int *seen_thr = calloc((size_t)nworks, sizeof *seen_thr);
	int ngor = 0;
	static const char *steps[] = { "taskbegin", "regionbegin", "regionbegin", "log",
	                               "regionend", "regionend", "taskend" };
	static const char *names[] = { "job", "outer", "inner", NULL, "inner", "outer", NULL };

	for (size_t i = 0; i < s->n; i++) {
		const struct tline *l = &s->lines[i];
		int is_step = 0;
		for (int k = 0; k < 7; k++)
			is_step |= !strcmp(l->kind, steps[k]);
		if (!is_step)
			continue;
		int64_t g = l->g;
		assert_true(g > 0 && g <= maxg);
		if (thr_of[g] < 0) {
			/* First annotation of this goroutine: must be round 0. */
			assert_string_equal(l->kind, "taskbegin");
			uint64_t id = (uint64_t)tl_int(l, "id");
			if (id > maxid || task_thr[id] < 0)
				continue; /* not one of ours */
			int ti = task_thr[id];
			assert_int_equal(seen_thr[ti], 0); /* one goroutine per thread */
			seen_thr[ti] = 1;
			thr_of[g] = ti;
			ngor++;
		}
		struct work *w = &works[thr_of[g]];
		int st = pos[g] % 7, round = pos[g] / 7;
		if (strcmp(steps[st], l->kind) != 0) {
			fprintf(stderr, "goroutine %lld: expected %s at step %d of round %d, got %s (line %zu)\n",
			        (long long)g, steps[st], st, round, l->kind, i);
			fail();
		}
		assert_true(round < w->iters);
		if (names[st])
			assert_string_equal(tl_get(l, "name"), names[st]);
		if (st == 3) {
			char want[64];
			snprintf(want, sizeof want, "thr=%d k=%d", w->idx, round);
			assert_string_equal(tl_get(l, "msg"), want);
			assert_string_equal(tl_get(l, "cat"), "count");
		}
		const char *key = (st == 0 || st == 6) ? "id" : "task";
		assert_int_equal((uint64_t)tl_int(l, key), w->tasks[round]);
		pos[g]++;
	}
	/* Every thread's goroutine saw all of its rounds, completely. */
	for (int64_t g = 0; g <= maxg; g++)
		if (thr_of[g] >= 0)
			assert_int_equal(pos[g], 7 * works[thr_of[g]].iters);
	for (int i = 0; i < nworks; i++)
		assert_int_equal(seen_thr[i], 1);
	free(task_thr);
	free(thr_of);
	free(pos);
	free(seen_thr);
	return ngor;
}

static size_t count_gens(const struct tsum *s)
{
	const struct tline *end = &s->lines[s->n - 1];
	assert_string_equal(end->kind, "end");
	return (size_t)tl_int(end, "gens");
}

/* Number of goroutines the summarizer names `name`. */
static int count_named(const struct tsum *s, const char *name)
{
	int n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->lines[i].kind, "gsum") && !strcmp(tl_get(&s->lines[i], "name"), name))
			n++;
	return n;
}

/* ------------------------------------------------------------------ tests */

#define NTHREADS 16
#define ITERS 1500

static void test_counting_16_threads(void **state)
{
	(void)state;
	char *path = tmp_trace_path("count16");
	start(path, 1000000); /* advance every 1 ms */
	pthread_t th[NTHREADS];
	struct work w[NTHREADS];
	pthread_barrier_t mid;
	pthread_barrier_init(&mid, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		w[i].idx = i;
		w[i].iters = ITERS;
		w[i].tasks = calloc(ITERS, sizeof(uint64_t));
		w[i].mid = &mid;
		assert_int_equal(pthread_create(&th[i], NULL, worker_entry, &w[i]), 0);
	}
	pthread_barrier_wait(&mid);
	assert_int_equal(gotrace_flush(), 0);
	pthread_barrier_wait(&mid);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&mid);
	assert_int_equal(gotrace_stop(), 0);
	gotrace_stats st;
	gotrace_get_stats(&st);
	assert_int_equal(st.events_dropped, 0);

	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		assert_int_equal(check_rounds(&s, w, NTHREADS), NTHREADS);
		assert_int_equal(tsum_count(&s, "taskbegin"), NTHREADS * ITERS);
		assert_int_equal(tsum_count(&s, "taskend"), NTHREADS * ITERS);
		assert_int_equal(tsum_count(&s, "regionbegin"), 2 * NTHREADS * ITERS);
		assert_int_equal(tsum_count(&s, "regionend"), 2 * NTHREADS * ITERS);
		assert_int_equal(tsum_count(&s, "log"), NTHREADS * ITERS);
		/* Every task id begun exactly once and ended exactly once. */
		uint64_t maxid = 0;
		for (int i = 0; i < NTHREADS; i++)
			for (int k = 0; k < ITERS; k++)
				maxid = w[i].tasks[k] > maxid ? w[i].tasks[k] : maxid;
		unsigned char *b = calloc(maxid + 1, 1), *e = calloc(maxid + 1, 1);
		for (size_t i = 0; i < s.n; i++) {
			const struct tline *l = &s.lines[i];
			if (!strcmp(l->kind, "taskbegin"))
				b[tl_int(l, "id")]++;
			if (!strcmp(l->kind, "taskend"))
				e[tl_int(l, "id")]++;
		}
		for (int i = 0; i < NTHREADS; i++)
			for (int k = 0; k < ITERS; k++) {
				assert_int_equal(b[w[i].tasks[k]], 1);
				assert_int_equal(e[w[i].tasks[k]], 1);
			}
		free(b);
		free(e);
		assert_true(count_gens(&s) >= 2);
		assert_int_equal(count_named(&s, "worker_entry"), NTHREADS);
		tsum_free(&s);
	}
	for (int i = 0; i < NTHREADS; i++)
		free(w[i].tasks);
	unlink(path);
	free(path);
}

#define CHURN_THREADS 1100
#define CHURN_WAVE 8
#define CHURN_ITERS 3

static void *churn_entry(void *arg)
{
	emit_rounds(arg);
	return NULL;
}

static void test_thread_churn(void **state)
{
	(void)state;
	char *path = tmp_trace_path("churn");
	start(path, 1000000);
	struct work *w = calloc(CHURN_THREADS, sizeof *w);
	for (int base = 0; base < CHURN_THREADS; base += CHURN_WAVE) {
		pthread_t th[CHURN_WAVE];
		int n = 0;
		for (int i = base; i < base + CHURN_WAVE && i < CHURN_THREADS; i++, n++) {
			w[i].idx = i;
			w[i].iters = CHURN_ITERS;
			w[i].tasks = calloc(CHURN_ITERS, sizeof(uint64_t));
			assert_int_equal(pthread_create(&th[n], NULL, churn_entry, &w[i]), 0);
		}
		for (int i = 0; i < n; i++)
			pthread_join(th[i], NULL);
	}
	assert_int_equal(gotrace_stop(), 0);
	gotrace_stats st;
	gotrace_get_stats(&st);
	assert_int_equal(st.events_dropped, 0);
	assert_int_equal(st.threads_seen, CHURN_THREADS);

	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		assert_int_equal(check_rounds(&s, w, CHURN_THREADS), CHURN_THREADS);
		assert_int_equal(tsum_count(&s, "log"), CHURN_THREADS * CHURN_ITERS);
		assert_int_equal(count_named(&s, "churn_entry"), CHURN_THREADS);
		assert_true(count_gens(&s) >= 2);
		tsum_free(&s);
	}
	for (int i = 0; i < CHURN_THREADS; i++)
		free(w[i].tasks);
	free(w);
	unlink(path);
	free(path);
}

/* A thread that emits once, sleeps across ~10 advances, emits again. */
static void *sleeper_entry(void *arg)
{
	(void)arg;
	/* Blocked (asleep) across at least six advances: counted, not timed
	 * (a loaded machine may give the flusher fewer than 5 ms advances). */
	gotrace_stats st;
	gotrace_get_stats(&st);
	uint64_t g0 = st.generations;
	gotrace_log(0, "sleeper", "before");
	for (int i = 0; i < 6000; i++) {
		struct timespec d = { 0, 5 * 1000 * 1000 };
		nanosleep(&d, NULL);
		gotrace_get_stats(&st);
		if (st.generations >= g0 + 6)
			break;
	}
	gotrace_log(0, "sleeper", "after");
	return NULL;
}

static void test_blocked_thread_stated_every_generation(void **state)
{
	(void)state;
	char *path = tmp_trace_path("sleeper");
	start(path, 5000000); /* 5 ms */
	gotrace_log(0, "main", "start");
	pthread_t th;
	pthread_create(&th, NULL, sleeper_entry, NULL);
	pthread_join(th, NULL);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int64_t g = -1, gen_before = -1, gen_after = -1;
		for (size_t i = 0; i < s.n; i++) {
			const struct tline *l = &s.lines[i];
			if (!strcmp(l->kind, "log") && !strcmp(tl_get(l, "cat"), "sleeper")) {
				if (!strcmp(tl_get(l, "msg"), "before"))
					g = l->g, gen_before = l->gen;
				else
					gen_after = l->gen;
			}
		}
		assert_true(g > 0);
		assert_true(gen_after - gen_before >= 5); /* slept across advances */
		/* Between the two logs, every generation states the goroutine. */
		for (int64_t gen = gen_before + 1; gen < gen_after; gen++) {
			int found = 0;
			for (size_t i = 0; i < s.n && !found; i++) {
				const struct tline *l = &s.lines[i];
				found = l->gen == gen && !strcmp(l->kind, "gostate") && tl_int(l, "id") == g;
			}
			if (!found)
				fprintf(stderr, "%s: goroutine %lld has no status in generation %lld\n", readers[r],
				        (long long)g, (long long)gen);
			assert_true(found);
		}
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

/* The flusher writes a generation's full batches while it is still open,
 * once a few of them are queued (gt_session.wake_bytes, 256 KiB), not at a
 * quarter of max_buffered: the written chunks then come back to the
 * writers while still in their caches (BENCHMARKS.md).  2.2 MB of region
 * events with a 1 h period and the default 64 MiB max_buffered: bytes
 * reach the file with no generation written (with the old quarter rule,
 * nothing would until the hour or 16 MiB), and the trace is still exact. */
static void test_written_before_generation_ends(void **state)
{
	(void)state;
	char *path = tmp_trace_path("early");
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 3600ull * 1000 * 1000 * 1000;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	enum { PAIRS = 220000 };
	for (int i = 0; i < PAIRS; i++) {
		gotrace_region_begin(0, "early");
		gotrace_region_end(0, "early");
	}
	gotrace_stats st;
	for (int i = 0; i < 2000; i++) { /* waits for an outcome, up to 20 s */
		gotrace_get_stats(&st);
		if (st.bytes_written >= (256u << 10))
			break;
		usleep(10 * 1000);
	}
	assert_int_equal(st.generations, 0);
	assert_true(st.bytes_written >= (256u << 10));
	assert_true(st.buffered_peak < (16u << 20));
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	assert_int_equal(tsum_count(&s, "regionbegin"), PAIRS);
	assert_int_equal(tsum_count(&s, "regionend"), PAIRS);
	tsum_free(&s);
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counting_16_threads),
		cmocka_unit_test(test_thread_churn),
		cmocka_unit_test(test_blocked_thread_stated_every_generation),
		cmocka_unit_test(test_written_before_generation_ends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
