/*
 * The goroutine word rule (src/core/core.h, struct gt_gor): whoever acts on
 * a goroutine from a critical section older than the goroutine's last
 * event renews the section first.
 *
 * Generations overlap in time: a thread can still be inside its section of
 * generation g while the advancer has bumped to g+1 and others write there.
 * Each case below holds one thread at a test point (GT_TEST_POINT) inside
 * its section of g, bumps the generation with gotrace_flush on another
 * thread (which then waits for the held thread), lets a third thread act
 * on the goroutine in g+1, and releases the held one.  Without the rule the
 * held thread writes its event into g, before an event of g+1 that it
 * follows, and Go's validators reject the trace:
 *   - unblock_older_than_block: GoUnblock in g of a G blocked in g+1;
 *   - unblock_older_than_status: GoUnblock in g of a parked G that its
 *     thread stated Waiting in g+1 ("inconsistent status");
 *   - resume_older_than_unblock: GoStart in g after a GoUnblock in g+1;
 *   - start_older_than_stop: GoStart in g of a goroutine stopped in g+1.
 * Each case also checks the generation the held thread's event landed in,
 * through the reader's summary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gotrace.h"
#include "core/core.h"
#include "tracecheck.h"

/* ------------------------------------------------------------- actors */

/* A thread that runs the calls it is given, one at a time, so that a test
 * can make one goroutine act from a chosen thread at a chosen moment. */
struct actor {
	pthread_t th;
	sem_t cmd, done;
	void (*fn)(void *);
	void *arg;
	int quit;
};

static void *actor_main(void *p)
{
	struct actor *a = p;
	for (;;) {
		sem_wait(&a->cmd);
		if (a->quit)
			return NULL;
		a->fn(a->arg);
		sem_post(&a->done);
	}
}

static void actor_init(struct actor *a)
{
	memset(a, 0, sizeof *a);
	sem_init(&a->cmd, 0, 0);
	sem_init(&a->done, 0, 0);
	assert_int_equal(pthread_create(&a->th, NULL, actor_main, a), 0);
}

static void actor_post(struct actor *a, void (*fn)(void *), void *arg)
{
	a->fn = fn;
	a->arg = arg;
	sem_post(&a->cmd);
}

static void actor_wait(struct actor *a) { sem_wait(&a->done); }

static void actor_do(struct actor *a, void (*fn)(void *), void *arg)
{
	actor_post(a, fn, arg);
	actor_wait(a);
}

static void actor_fini(struct actor *a)
{
	a->quit = 1;
	sem_post(&a->cmd);
	pthread_join(a->th, NULL);
	sem_destroy(&a->cmd);
	sem_destroy(&a->done);
}

/* ------------------------------------------------------- the test point */

static __thread int hold_at;  /* the point this thread stops at once */
static sem_t arrived, resume; /* the held thread -> main, main -> it */

static void pause_hook(int point)
{
	if (hold_at != point)
		return;
	hold_at = 0;
	sem_post(&arrived);
	sem_wait(&resume);
}

static uint64_t gen_now(void) { return __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE); }

/* Bump the generation on actor f while a thread is held in its section:
 * returns once the bump is visible (the advance itself waits for the held
 * thread; actor_wait(f) after the release). */
static uint64_t bump_while_held(struct actor *f, uint64_t held_gen);

static void do_flush(void *arg)
{
	(void)arg;
	assert_int_equal(gotrace_flush(), 0);
}

static uint64_t bump_while_held(struct actor *f, uint64_t held_gen)
{
	actor_post(f, do_flush, NULL);
	struct timespec ts = { 0, 100000 };
	for (int i = 0; i < 100000 && gen_now() == held_gen; i++)
		nanosleep(&ts, NULL);
	assert_int_equal(gen_now(), held_gen + 1);
	return held_gen + 1;
}

/* ------------------------------------------------------------ the calls */

static gotrace_goroutine_t handle; /* the goroutine the case is about */
static int unblock_result;

static void do_self(void *arg)
{
	(void)arg;
	handle = gotrace_self();
	gotrace_log(0, "case", "registered");
}
static void do_block(void *arg) { gotrace_block((const char *)arg); }
static void do_block_end(void *arg) { (void)arg; gotrace_block_end(); }
static void do_log(void *arg) { gotrace_log(0, "case", (const char *)arg); }
static void do_unblock(void *arg)
{
	(void)arg;
	unblock_result = gotrace_unblock(handle);
}
static void do_unblock_held(void *arg)
{
	(void)arg;
	hold_at = GT_TP_UNBLOCK;
	unblock_result = gotrace_unblock(handle);
}
static void do_block_end_held(void *arg)
{
	(void)arg;
	hold_at = GT_TP_RESUME;
	gotrace_block_end();
}
static gotrace_goroutine_t xg;
static void do_go_start(void *arg) { (void)arg; gotrace_go_start(xg); }
static void do_go_stop(void *arg) { (void)arg; gotrace_go_stop(xg); }
static void do_go_start_held(void *arg)
{
	(void)arg;
	hold_at = GT_TP_TAKE;
	gotrace_go_start(xg);
}
static void do_go_destroy(void *arg) { (void)arg; gotrace_go_destroy(xg); }

/* ---------------------------------------------------------------- cases */

struct session {
	char *path;
	uint64_t first; /* our first generation: the reader's generation 1 */
	struct actor a, b, f; /* a, b: actors; f: the flusher's caller */
};

static void session_start(struct session *s, const char *tag)
{
	s->path = tmp_trace_path(tag);
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 3600ull * 1000000000ull; /* advances: ours only */
	assert_int_equal(gotrace_start_path(s->path, &o), 0);
	s->first = gen_now();
	sem_init(&arrived, 0, 0);
	sem_init(&resume, 0, 0);
	__atomic_store_n(&gt_test_pause, pause_hook, __ATOMIC_RELAXED);
	actor_init(&s->a);
	actor_init(&s->b);
	actor_init(&s->f);
}

/* Stop, judge with Go's validators, and return the summary (go1.23). */
static void session_end(struct session *s, struct tsum *sum)
{
	actor_fini(&s->a);
	actor_fini(&s->b);
	actor_fini(&s->f);
	__atomic_store_n(&gt_test_pause, NULL, __ATOMIC_RELAXED);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(s->path), 0);
	assert_int_equal(tsum_load(s->path, "go1.23", sum), 0);
	sem_destroy(&arrived);
	sem_destroy(&resume);
}

/* The generation of goroutine gid's transition from -> to (the reader's
 * state transitions: GoBlock Running->Waiting, GoUnblock Waiting->Runnable,
 * GoStart Runnable->Running); *n: how many there are, the last one's
 * generation returned (-1: none). */
static int64_t gen_of(const struct tsum *sum, int64_t gid, const char *from, const char *to,
                      int *n)
{
	int64_t gen = -1;
	*n = 0;
	for (size_t i = 0; i < sum->n; i++) {
		const struct tline *l = &sum->lines[i];
		if (strcmp(l->kind, "gostate") != 0 || tl_int(l, "id") != gid ||
		    strcmp(tl_get(l, "from"), from) != 0 || strcmp(tl_get(l, "to"), to) != 0)
			continue;
		gen = l->gen;
		(*n)++;
	}
	return gen;
}

/* The generation of goroutine gid's only transition from -> to. */
static int64_t gen_of1(const struct tsum *sum, int64_t gid, const char *from, const char *to)
{
	int n;
	int64_t gen = gen_of(sum, gid, from, to, &n);
	if (n != 1)
		fail_msg("goroutine %lld: %d transitions %s -> %s, expected 1", (long long)gid, n, from,
		         to);
	return gen;
}

/* Stop and judge; the reader's generation of goroutine gid's only
 * GoUnblock (Waiting -> Runnable). */
static int64_t end_unblock_gen(struct session *s, int64_t gid)
{
	struct tsum sum;
	session_end(s, &sum);
	int64_t gen = gen_of1(&sum, gid, "Waiting", "Runnable");
	tsum_free(&sum);
	free(s->path);
	return gen;
}

static void unblock_older_than_block(void **state)
{
	(void)state;
	struct session s;
	session_start(&s, "gword-block");
	actor_do(&s.b, do_self, NULL);
	uint64_t g = gen_now();
	actor_post(&s.a, do_unblock_held, NULL); /* held in g, before it looks */
	sem_wait(&arrived);
	int64_t g1 = (int64_t)(bump_while_held(&s.f, g) - s.first + 1); /* the reader's */
	actor_do(&s.b, do_block, "gword"); /* GoBlock in g+1 */
	sem_post(&resume);
	actor_wait(&s.a);
	actor_wait(&s.f);
	assert_int_equal(unblock_result, 1);
	actor_do(&s.b, do_block_end, NULL);
	int64_t gid = (int64_t)handle.id_;
	struct tsum sum;
	session_end(&s, &sum);
	assert_int_equal(gen_of1(&sum, gid, "Running", "Waiting"), g1);
	assert_int_equal(gen_of1(&sum, gid, "Waiting", "Runnable"), g1);
	tsum_free(&sum);
	free(s.path);
}

static void unblock_older_than_status(void **state)
{
	(void)state;
	struct session s;
	session_start(&s, "gword-status");
	actor_do(&s.b, do_self, NULL); /* b's own G: parked once b runs xg */
	xg = gotrace_go_create("worker");
	actor_do(&s.b, do_go_start, NULL);
	uint64_t g = gen_now();
	actor_post(&s.a, do_unblock_held, NULL);
	sem_wait(&arrived);
	int64_t g1 = (int64_t)(bump_while_held(&s.f, g) - s.first + 1); /* the reader's */
	/* b's first event in g+1 states its parked own G Waiting there. */
	actor_do(&s.b, do_log, "stated");
	sem_post(&resume);
	actor_wait(&s.a);
	actor_wait(&s.f);
	assert_int_equal(unblock_result, 1);
	actor_do(&s.b, do_go_stop, NULL);
	actor_do(&s.b, do_log, "own G back");
	actor_do(&s.b, do_go_destroy, NULL);
	assert_int_equal(end_unblock_gen(&s, (int64_t)handle.id_), g1);
}

static void resume_older_than_unblock(void **state)
{
	(void)state;
	struct session s;
	session_start(&s, "gword-resume");
	actor_do(&s.b, do_self, NULL);
	actor_do(&s.b, do_block, "gword");
	uint64_t g = gen_now();
	actor_post(&s.b, do_block_end_held, NULL); /* held in g, resuming */
	sem_wait(&arrived);
	int64_t g1 = (int64_t)(bump_while_held(&s.f, g) - s.first + 1); /* the reader's */
	actor_do(&s.a, do_unblock, NULL); /* GoUnblock in g+1 */
	assert_int_equal(unblock_result, 1);
	sem_post(&resume);
	actor_wait(&s.b);
	actor_wait(&s.f);
	actor_do(&s.b, do_log, "running");
	assert_int_equal(end_unblock_gen(&s, (int64_t)handle.id_), g1);
}

static void start_older_than_stop(void **state)
{
	(void)state;
	struct session s;
	session_start(&s, "gword-take");
	xg = gotrace_go_create("worker");
	actor_do(&s.b, do_go_start, NULL); /* xg runs on b */
	actor_do(&s.a, do_log, "a registered");
	uint64_t g = gen_now();
	actor_post(&s.a, do_go_start_held, NULL); /* held in g, before take */
	sem_wait(&arrived);
	int64_t g1 = (int64_t)(bump_while_held(&s.f, g) - s.first + 1); /* the reader's */
	actor_do(&s.b, do_go_stop, NULL); /* GoStop in g+1 */
	sem_post(&resume);
	actor_wait(&s.a);
	actor_wait(&s.f);
	actor_do(&s.a, do_go_destroy, NULL);
	int64_t gid = (int64_t)xg.id_;
	struct tsum sum;
	session_end(&s, &sum);
	/* Started twice (b, then a): the second start is in g+1 or later. */
	int starts;
	int64_t last = gen_of(&sum, gid, "Runnable", "Running", &starts);
	assert_int_equal(starts, 2);
	assert_true(last >= g1);
	tsum_free(&sum);
	free(s.path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unblock_older_than_block),
		cmocka_unit_test(unblock_older_than_status),
		cmocka_unit_test(resume_older_than_unblock),
		cmocka_unit_test(start_older_than_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
