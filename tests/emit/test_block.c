/*
 * Blocking and waking (issue 5): gotrace_block / gotrace_unblock /
 * gotrace_block_end, and the instrumented pthread mutex and condition
 * variable, across generation boundaries forced with gotrace_flush().
 * Exact goroutine transitions with both readers; the waker is the thread
 * that wrote GoUnblock (m of the Waiting>Runnable transition).
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "schedcheck.h"

struct script {
	const char *ops;    /* thread: B block, E block_end, w: sync with main */
	const char *mops;   /* main, one char per 'w': u unblock, f flush, - nothing,
	                     * F flush twice */
	gotrace_goroutine_t h;
	pthread_barrier_t b1, b2;
	int unblocked;
};

static void *blk_thread(void *arg)
{
	struct script *sc = arg;
	sc->h = gotrace_self();
	gotrace_log(0, "t", "hello");
	for (const char *o = sc->ops; *o; o++) {
		switch (*o) {
		case 'B': gotrace_block("chan receive"); break;
		case 'E': gotrace_block_end(); break;
		case 'w':
			pthread_barrier_wait(&sc->b1);
			pthread_barrier_wait(&sc->b2);
			break;
		}
	}
	return NULL;
}

static char *run(const char *tag, const char *ops, const char *mops, int want_unblocked)
{
	char *path = sc_start(tag, SC_NO_ADVANCE, GOTRACE_STACK_ALL, 0);
	gotrace_log(0, "main", "start");
	struct script sc = { .ops = ops, .mops = mops };
	pthread_barrier_init(&sc.b1, NULL, 2);
	pthread_barrier_init(&sc.b2, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, blk_thread, &sc), 0);
	for (const char *p = mops; *p; p++) {
		pthread_barrier_wait(&sc.b1);
		if (*p == 'u')
			sc.unblocked += gotrace_unblock(sc.h);
		if (*p == 'f' || *p == 'F')
			assert_int_equal(gotrace_flush(), 0);
		if (*p == 'F')
			assert_int_equal(gotrace_flush(), 0);
		pthread_barrier_wait(&sc.b2);
	}
	pthread_join(th, NULL);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(sc.unblocked, want_unblocked);
	assert_int_equal(judge_trace(path), 0);
	return path;
}

static void check(const char *path, const char *want_g, int woken_by_main)
{
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int64_t g = goid_named(&s, "blk_thread");
		assert_true(g > 0);
		char *tg = transitions(&s, "gostate", g);
		expect_str(tg, want_g);
		const struct tline *run = find_tr(&s, "gostate", g, "Runnable", "Running", 0);
		const struct tline *wake = find_tr(&s, "gostate", g, "Waiting", "Runnable", 0);
		const struct tline *blk = find_tr(&s, "gostate", g, "Running", "Waiting", 0);
		assert_non_null(wake);
		assert_non_null(blk);
		assert_string_equal(tl_get(blk, "reason"), "chan receive");
		assert_true(tl_get(blk, "stack")[0] != 0); /* has a stack */
		if (woken_by_main)
			assert_true(wake->m != run->m);
		else
			assert_true(wake->m == run->m);
		assert_true(gsum_field(&s, g, "block_ns") > 0);
		free(tg);
		tsum_free(&s);
	}
	unlink(path);
}

#define G_START "NotExist>Runnable@1,Runnable>Running@1"

static void test_unblock_same_generation(void **state)
{
	(void)state;
	char *path = run("blk-same", "BwE", "u", 1);
	check(path, G_START ",Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@1,Running>NotExist@1", 1);
	free(path);
}

static void test_unblock_next_generation(void **state)
{
	(void)state;
	char *path = run("blk-next", "BwwE", "fu", 1);
	check(path, G_START ",Running>Waiting@1,Waiting>Runnable@2,Runnable>Running@2,Running>NotExist@2", 1);
	free(path);
}

static void test_resume_after_boundary(void **state)
{
	(void)state;
	char *path = run("blk-resume", "BwwE", "uf", 1);
	check(path, G_START ",Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@2,Running>NotExist@2", 1);
	free(path);
}

static void test_self_wake_after_silent_generations(void **state)
{
	(void)state;
	char *path = run("blk-self", "BwE", "F", 0);
	check(path, G_START ",Running>Waiting@1,Waiting>Runnable@3,Runnable>Running@3,Running>NotExist@3", 0);
	free(path);
}

static void test_implicit_resume_and_exit_blocked(void **state)
{
	(void)state;
	/* Blocked, woken, then exits without block_end. */
	char *path = run("blk-exit", "Bww", "fu", 1);
	check(path, G_START ",Running>Waiting@1,Waiting>Runnable@2,Runnable>Running@2,Running>NotExist@2", 1);
	free(path);
}

/* ---------------------------------------------------- mutex and condvar */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready;
static int held;       /* atomic: the holder has the lock */
static int waiter_tid; /* atomic: the waiter is about to lock (its tid) */

/* sleeping(tid) (schedcheck.h): the waiter's only sleep after it
 * announced itself is the wait for the mutex. */

static void *mutex_holder(void *arg)
{
	(void)arg;
	gotrace_mutex_lock(&mu);
	__atomic_store_n(&held, 1, __ATOMIC_RELEASE);
	/* Keep the lock until the waiter sleeps on it (a timed sleep alone
	 * let a slow thread start find the lock free under TSan). */
	int tid;
	while ((tid = __atomic_load_n(&waiter_tid, __ATOMIC_ACQUIRE)) == 0)
		usleep(1000);
	do
		usleep(20000);
	while (!sleeping(tid));
	ready = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *mutex_waiter(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&held, __ATOMIC_ACQUIRE))
		usleep(1000);
	__atomic_store_n(&waiter_tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
	gotrace_mutex_lock(&mu); /* contended */
	while (!ready)
		gotrace_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	gotrace_mutex_lock(&mu); /* uncontended: records nothing */
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void test_mutex_contended_only(void **state)
{
	(void)state;
	char *path = sc_start("blk-mutex", 1000000, GOTRACE_STACK_BLOCK, 0);
	pthread_t a, b;
	pthread_create(&a, NULL, mutex_holder, NULL);
	pthread_create(&b, NULL, mutex_waiter, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int64_t g = goid_named(&s, "mutex_waiter");
		assert_true(g > 0);
		int blocks = 0;
		for (size_t i = 0; i < s.n; i++) {
			const struct tline *l = &s.lines[i];
			if (strcmp(l->kind, "gostate") || tl_int(l, "id") != g ||
			    strcmp(tl_get(l, "to"), "Waiting") || !strcmp(tl_get(l, "from"), "Waiting"))
				continue;
			blocks++;
			assert_string_equal(tl_get(l, "reason"), "sync.Mutex.Lock");
			assert_true(tl_get(l, "stack")[0] != 0);
		}
		assert_int_equal(blocks, 1); /* the contended lock only */
		assert_true(gsum_field(&s, g, "block_ns") > 1000000);
		int64_t h = goid_named(&s, "mutex_holder");
		assert_true(h < 0 || gsum_field(&s, h, "block_ns") == 0); /* never waited */
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unblock_same_generation),
		cmocka_unit_test(test_unblock_next_generation),
		cmocka_unit_test(test_resume_after_boundary),
		cmocka_unit_test(test_self_wake_after_silent_generations),
		cmocka_unit_test(test_implicit_resume_and_exit_blocked),
		cmocka_unit_test(test_mutex_contended_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
