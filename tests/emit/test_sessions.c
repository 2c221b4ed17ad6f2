/*
 * Many tracing sessions in one process (issue 10, part 1).
 *
 * Per-thread and per-P state that the advancer or the encoder consults must
 * never be read as current when it was left by an earlier session: a thread
 * stated by the advancer in generation g of session 1 is silent in the same
 * generation number of session 2 and must still be stated there.
 *
 * One process runs SESSIONS sessions in a row (every third one preceded by
 * starts that fail on bad options, some with CPU profiling on).  Generation
 * boundaries come only from gotrace_flush(), so session k has exactly 3 + k
 * generations.  Threads live across all of them, each writing in generations
 * 1..a of a session and silent from a+1 on, where a+1 is the last generation
 * of the session before (the generation number in which the advancer last
 * stated them there -- the stale value that once hid them):
 *   - two silent threads: a log in each of generations 1..a;
 *   - a blocking thread: the same, then gotrace_block() in generation a; it
 *     sits blocked across the stop and calls gotrace_block_end() after the
 *     next start;
 *   - a syscall thread: the same with gotrace_syscall_begin()/_end();
 *   - a scheduler thread: an explicit goroutine created in session k runs in
 *     k and is left blocked across the stop; in session k+1 it is started
 *     and stopped (untraced: it belongs to k) and destroyed, a new one made.
 * Every trace must pass every judge, hold exactly 3 + k generations under
 * both Go readers, and show every role thread's goroutine (an event or a
 * status) in every generation of its session.
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

#include "tracecheck.h"

#define SESSIONS 20
#define NSILENT 2
#define NROLES (NSILENT + 3) /* silent..., blocker, syscaller, scheduler */
enum { R_BLOCK = NSILENT, R_SYSCALL, R_SCHED };

static const char *readers[] = { "go1.23", "new" };

/* Phases handed to the role threads under mu (untraced pthread calls). */
enum { PH_NONE, PH_STARTED, PH_EMIT, PH_STOPPING, PH_EXIT };
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase, phase_no; /* phase_no: bumped at every phase change */
static int acked;           /* role threads done with phase_no */
static int64_t goid[NROLES]; /* each role's goroutine id in this session */

static void wait_phase(int *seen)
{
	pthread_mutex_lock(&mu);
	while (phase_no == *seen)
		pthread_cond_wait(&cv, &mu);
	*seen = phase_no;
	pthread_mutex_unlock(&mu);
}

static void ack(void)
{
	pthread_mutex_lock(&mu);
	acked++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void set_phase(int ph)
{
	pthread_mutex_lock(&mu);
	phase = ph;
	phase_no++;
	acked = 0;
	pthread_cond_broadcast(&cv);
	while (ph != PH_EXIT && acked < NROLES)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void *role_main(void *arg)
{
	int role = (int)(intptr_t)arg;
	int seen = 0;
	bool blocked = false, in_sys = false;
	gotrace_goroutine_t xg = { NULL, 0 };
	char name[16];
	snprintf(name, sizeof name, "role%d", role);
	gotrace_thread_name(name);
	for (;;) {
		wait_phase(&seen);
		int ph = __atomic_load_n(&phase, __ATOMIC_RELAXED);
		if (ph == PH_EXIT)
			break;
		if (ph == PH_STARTED) {
			if (blocked)
				gotrace_block_end();
			if (in_sys)
				gotrace_syscall_end();
			blocked = in_sys = false;
			if (role == R_SCHED && xg.id_ != 0) {
				/* The previous session's goroutine: untraced now. */
				gotrace_go_start(xg);
				gotrace_go_stop(xg);
				gotrace_go_destroy(xg);
				xg = (gotrace_goroutine_t){ NULL, 0 };
			}
			gotrace_log(0, "sessions", name);
			goid[role] = (int64_t)gotrace_self().id_;
			if (role == R_SCHED) {
				xg = gotrace_go_create("sessions_xg");
				gotrace_go_start(xg);
				gotrace_log(0, "sessions", "xg");
				gotrace_go_stop(xg);
			}
		} else if (ph == PH_EMIT) {
			gotrace_log(0, "sessions", name);
		} else if (ph == PH_STOPPING) {
			if (role == R_BLOCK) {
				gotrace_block("sync");
				blocked = true;
			} else if (role == R_SYSCALL) {
				gotrace_syscall_begin();
				in_sys = true;
			} else if (role == R_SCHED && xg.id_ != 0) {
				gotrace_go_start(xg);
				gotrace_go_block(xg, "chan receive");
			}
		}
		ack();
	}
	if (blocked)
		gotrace_block_end();
	if (in_sys)
		gotrace_syscall_end();
	if (xg.id_ != 0)
		gotrace_go_destroy(xg);
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec d = { 0, ms * 1000000L };
	nanosleep(&d, NULL);
}

/* Every goroutine id in ids[] appears in every generation of s from the
 * first one it appears in; returns the number of (goroutine, generation)
 * holes and prints the first few. */
static int holes(const struct tsum *s, const int64_t *ids, int n, int session, const char *rd,
                 int64_t *ngens_out)
{
	int64_t ngens = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->lines[i].gen > ngens && strcmp(s->lines[i].kind, "gsum") &&
		    strcmp(s->lines[i].kind, "end"))
			ngens = s->lines[i].gen;
	*ngens_out = ngens;
	int bad = 0;
	for (int k = 0; k < n; k++) {
		char *seen = calloc((size_t)ngens + 2, 1);
		for (size_t i = 0; i < s->n; i++) {
			const struct tline *l = &s->lines[i];
			if (l->gen < 1 || l->gen > ngens)
				continue;
			if (l->g == ids[k] || (!strcmp(l->kind, "gostate") && tl_int(l, "id") == ids[k]))
				seen[l->gen] = 1;
		}
		int64_t first = 1;
		while (first <= ngens && !seen[first])
			first++;
		if (first > ngens) {
			fprintf(stderr, "session %d (%s): goroutine %lld never appears\n", session, rd,
			        (long long)ids[k]);
			bad++;
		}
		for (int64_t g = first; g <= ngens; g++)
			if (!seen[g] && bad++ < 5)
				fprintf(stderr, "session %d (%s): goroutine %lld missing in generation %lld of %lld\n",
				        session, rd, (long long)ids[k], (long long)g, (long long)ngens);
		free(seen);
	}
	return bad;
}

static void test_sessions(void **state)
{
	(void)state;
	pthread_t th[NROLES];
	for (int i = 0; i < NROLES; i++)
		assert_int_equal(pthread_create(&th[i], NULL, role_main, (void *)(intptr_t)i), 0);
	int total_bad = 0;
	for (int k = 1; k <= SESSIONS; k++) {
		gotrace_options o;
		if (k % 3 == 0) {
			/* Failed starts in between: they must leave nothing behind. */
			gotrace_options_init(&o);
			o.buffer_size = 100;
			char *bp = tmp_trace_path("sessions-bad");
			assert_int_equal(gotrace_start_path(bp, &o), -GOTRACE_EINVAL);
			unlink(bp);
			free(bp);
			gotrace_options_init(&o);
			o.cpu_hz = -5;
			bp = tmp_trace_path("sessions-bad");
			assert_true(gotrace_start_path(bp, &o) < 0);
			unlink(bp);
			free(bp);
			assert_int_equal(gotrace_enabled(), 0);
		}
		gotrace_options_init(&o);
		/* Generation boundaries come only from the flushes below. */
		o.advance_period_ns = 60ull * 1000000000u;
		o.buffer_size = 4096;
		stress_options(&o, STRESS_BUFFERS); /* boundaries: the flushes only */
		if (k % 4 == 1) {
			o.cpu_hz = 200;
			o.cpu_source = k % 8 == 1 ? GOTRACE_CPU_SETITIMER : GOTRACE_CPU_PERF;
		}
		char path[512];
		{
			char *p = tmp_trace_path("sessions");
			snprintf(path, sizeof path, "%s", p);
			free(p);
		}
		/* Session k has N = 3 + k generations; the role threads write in
		 * generations 1..a and are silent (running, blocked, in a
		 * syscall, their goroutine blocked) from a+1 on, where a+1 is
		 * the last generation of session k-1: the generation number in
		 * which the advancer last stated them there. */
		int N = 3 + k, a = k == 1 ? 1 : (3 + k - 1) - 1;
		assert_int_equal(gotrace_start_path(path, &o), 0);
		for (int j = 1; j <= N; j++) {
			if (j == 1)
				set_phase(PH_STARTED);
			else if (j <= a)
				set_phase(PH_EMIT);
			if (j == a)
				set_phase(PH_STOPPING);
			if (j < N) {
				sleep_ms(1);
				assert_int_equal(gotrace_flush(), 0);
			}
		}
		assert_int_equal(gotrace_stop(), 0);

		if (judge_trace(path) != 0) {
			fprintf(stderr, "session %d: trace %s rejected\n", k, path);
			total_bad++;
			continue; /* kept for inspection */
		}
		int64_t ids[NROLES];
		for (int i = 0; i < NROLES; i++)
			ids[i] = goid[i];
		int bad = 0;
		for (int r = 0; r < 2; r++) {
			struct tsum s;
			assert_int_equal(tsum_load(path, readers[r], &s), 0);
			int64_t ngens;
			bad += holes(&s, ids, NROLES, k, readers[r], &ngens);
			/* Each flush ends a generation, stop the last one. */
			if (ngens != N) {
				fprintf(stderr, "session %d (%s): %lld generations, want %d\n", k, readers[r],
				        (long long)ngens, N);
				bad++;
			}
			tsum_free(&s);
		}
		if (bad == 0)
			unlink(path);
		total_bad += bad;
	}
	set_phase(PH_EXIT);
	for (int i = 0; i < NROLES; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(total_bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sessions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
