/*
 * The instrumented pthread calls (issue 11, part 3): named locks and
 * condition variables give their name in the block reason, and
 * gotrace_cond_signal / gotrace_cond_broadcast / gotrace_mutex_unlock
 * write the waiters' unblock from the releasing thread (the arrow in `go
 * tool trace`).  Exact transitions with both Go readers: the m of a
 * waiter's Waiting>Runnable transition is the releaser's.  A ping-pong of
 * producers and consumers across generation flips checks the races.
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

static void wait_asleep(int *tidp)
{
	int tid;
	while ((tid = __atomic_load_n(tidp, __ATOMIC_ACQUIRE)) == 0)
		usleep(1000);
	do
		usleep(5000);
	while (!sleeping(tid));
}

static char *start(const char *tag, uint64_t period)
{
	char *path = tmp_trace_path(tag);
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = period;
	o.event_stacks |= GOTRACE_STACK_BLOCK;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	return path;
}

/* The m that wrote g's k-th Waiting>Runnable, and the reason of its k-th
 * block. */
static int64_t waker_m(const struct tsum *s, int64_t g, int k)
{
	const struct tline *l = find_tr(s, "gostate", g, "Waiting", "Runnable", k);
	assert_non_null(l);
	return l->m;
}

static int64_t own_m(const struct tsum *s, int64_t g)
{
	const struct tline *l = find_tr(s, "gostate", g, "Runnable", "Running", 0);
	assert_non_null(l);
	return l->m;
}

static int count_tr(const struct tsum *s, int64_t g, const char *from, const char *to)
{
	int n = 0;
	while (find_tr(s, "gostate", g, from, to, n))
		n++;
	return n;
}

/* ------------------------------------------------- signal, named cond */

#define NW 3
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go_flag;
static int wtid[NW];

static void *cv_waiter(void *arg)
{
	int i = (int)(intptr_t)arg;
	gotrace_mutex_lock(&mu);
	__atomic_store_n(&wtid[i], (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
	while (!go_flag)
		gotrace_cond_wait_named(&cv, &mu, "jobs");
	gotrace_mutex_unlock(&mu);
	return NULL;
}

static void *cv_signaller(void *arg)
{
	int nw = (int)(intptr_t)arg;
	gotrace_log(0, "s", "up"); /* traced before it wakes anyone */
	for (int i = 0; i < nw; i++)
		wait_asleep(&wtid[i]);
	gotrace_mutex_lock(&mu);
	go_flag = 1;
	if (nw == 1)
		gotrace_cond_signal(&cv);
	else
		gotrace_cond_broadcast(&cv);
	gotrace_mutex_unlock(&mu);
	return NULL;
}

static void run_cond(const char *tag, int nw)
{
	go_flag = 0;
	memset(wtid, 0, sizeof wtid);
	char *path = start(tag, 10ull * 1000 * 1000 * 1000);
	pthread_t w[NW], s;
	for (int i = 0; i < nw; i++)
		pthread_create(&w[i], NULL, cv_waiter, (void *)(intptr_t)i);
	pthread_create(&s, NULL, cv_signaller, (void *)(intptr_t)nw);
	for (int i = 0; i < nw; i++)
		pthread_join(w[i], NULL);
	pthread_join(s, NULL);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		struct tsum st;
		assert_int_equal(tsum_load(path, readers[r], &st), 0);
		int64_t sg = goid_named(&st, "cv_signaller");
		assert_true(sg > 0);
		int64_t sm = own_m(&st, sg);
		int n = 0;
		for (size_t i = 0; i < st.n; i++) {
			const struct tline *l = &st.lines[i];
			if (strcmp(l->kind, "gsum") || strcmp(tl_get(l, "name"), "cv_waiter"))
				continue;
			int64_t g = tl_int(l, "id");
			n++;
			/* One cond wait each, named, woken by the signaller
			 * (and maybe a contended lock of mu first: the k-th
			 * block is ended by the k-th wake-up). */
			int waits = 0, k = 0;
			const struct tline *b;
			for (; (b = find_tr(&st, "gostate", g, "Running", "Waiting", k)); k++) {
				if (strcmp(tl_get(b, "reason"), "sync.Cond.Wait jobs") != 0) {
					assert_string_equal(tl_get(b, "reason"), "sync.Mutex.Lock");
					continue;
				}
				waits++;
				assert_true(tl_get(b, "stack")[0] != 0); /* block stacks */
				assert_true(waker_m(&st, g, k) == sm);
			}
			assert_int_equal(waits, 1);
			assert_int_equal(count_tr(&st, g, "Waiting", "Runnable"), k);
			assert_true(own_m(&st, g) != sm);
		}
		assert_int_equal(n, nw);
		/* The signaller itself never blocked. */
		assert_int_equal(count_tr(&st, sg, "Running", "Waiting"), 0);
		tsum_free(&st);
	}
	unlink(path);
	free(path);
}

static void test_cond_signal_arrow(void **state)
{
	(void)state;
	run_cond("sw-signal", 1);
}

static void test_cond_broadcast_arrows(void **state)
{
	(void)state;
	run_cond("sw-bcast", NW);
}

/* ------------------------------------------------ named mutex, unlock */

static pthread_mutex_t tab = PTHREAD_MUTEX_INITIALIZER;
static int held, ltid;

static void *lk_holder(void *arg)
{
	(void)arg;
	gotrace_mutex_lock(&tab);
	__atomic_store_n(&held, 1, __ATOMIC_RELEASE);
	wait_asleep(&ltid);
	gotrace_mutex_unlock(&tab);
	return NULL;
}

static void *lk_waiter(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&held, __ATOMIC_ACQUIRE))
		usleep(1000);
	__atomic_store_n(&ltid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
	gotrace_mutex_lock_named(&tab, "table"); /* contended */
	gotrace_mutex_unlock(&tab);              /* nobody waits: no arrow */
	gotrace_mutex_lock_named(&tab, "table"); /* uncontended: nothing */
	gotrace_mutex_unlock(&tab);
	return NULL;
}

static void test_named_mutex_unlock_arrow(void **state)
{
	(void)state;
	char *path = start("sw-mutex", 1000000);
	pthread_t a, b;
	pthread_create(&a, NULL, lk_holder, NULL);
	pthread_create(&b, NULL, lk_waiter, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		struct tsum st;
		assert_int_equal(tsum_load(path, readers[r], &st), 0);
		int64_t g = goid_named(&st, "lk_waiter"), h = goid_named(&st, "lk_holder");
		assert_true(g > 0 && h > 0);
		assert_int_equal(count_tr(&st, g, "Running", "Waiting"), 1);
		const struct tline *b = find_tr(&st, "gostate", g, "Running", "Waiting", 0);
		assert_string_equal(tl_get(b, "reason"), "sync.Mutex.Lock table");
		assert_int_equal(count_tr(&st, g, "Waiting", "Runnable"), 1);
		assert_true(waker_m(&st, g, 0) == own_m(&st, h));
		assert_int_equal(count_tr(&st, h, "Running", "Waiting"), 0);
		tsum_free(&st);
	}
	unlink(path);
	free(path);
}

/* --------------------------------------- ping-pong across generations */

#define PP_THREADS 3
/* Items: fewer under ThreadSanitizer, which runs this ten times slower
 * (the generations flip as often: the races are exercised as much). */
#if defined(__SANITIZE_THREAD__)
#define PP_ITEMS 1000
#else
#define PP_ITEMS 4000
#endif
static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_nonempty = PTHREAD_COND_INITIALIZER, q_nonfull = PTHREAD_COND_INITIALIZER;
static int q_len, q_taken, q_made;

static void *pp_producer(void *arg)
{
	(void)arg;
	for (;;) {
		gotrace_mutex_lock_named(&qm, "queue");
		while (q_len >= 2 && q_made < PP_ITEMS)
			gotrace_cond_wait_named(&q_nonfull, &qm, "full");
		if (q_made >= PP_ITEMS) {
			gotrace_cond_broadcast(&q_nonempty);
			gotrace_mutex_unlock(&qm);
			return NULL;
		}
		q_len++;
		q_made++;
		gotrace_cond_signal(&q_nonempty);
		gotrace_mutex_unlock(&qm);
	}
}

static void *pp_consumer(void *arg)
{
	(void)arg;
	for (;;) {
		gotrace_mutex_lock_named(&qm, "queue");
		while (q_len == 0 && q_taken + q_len < PP_ITEMS)
			gotrace_cond_wait_named(&q_nonempty, &qm, "empty");
		if (q_len == 0) {
			gotrace_cond_broadcast(&q_nonempty);
			gotrace_mutex_unlock(&qm);
			return NULL;
		}
		q_len--;
		q_taken++;
		gotrace_cond_signal(&q_nonfull);
		gotrace_mutex_unlock(&qm);
	}
}

static void test_pingpong_across_generations(void **state)
{
	(void)state;
	char *path = start("sw-pp", 200000); /* 0.2 ms generations */
	pthread_t p[PP_THREADS], c[PP_THREADS];
	for (int i = 0; i < PP_THREADS; i++) {
		pthread_create(&p[i], NULL, pp_producer, NULL);
		pthread_create(&c[i], NULL, pp_consumer, NULL);
	}
	for (int i = 0; i < PP_THREADS; i++) {
		pthread_join(p[i], NULL);
		pthread_join(c[i], NULL);
	}
	assert_int_equal(q_taken, PP_ITEMS);
	gotrace_stats st;
	gotrace_get_stats(&st);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	/* Every recorded wake-up of a waiter is either its own (m = its own
	 * thread) or a releaser's; some must be a releaser's. */
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	int by_other = 0, total = 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (strcmp(l->kind, "gsum") || (strcmp(tl_get(l, "name"), "pp_consumer") &&
		                                strcmp(tl_get(l, "name"), "pp_producer")))
			continue;
		int64_t g = tl_int(l, "id"), m = own_m(&s, g);
		for (int k = 0; find_tr(&s, "gostate", g, "Waiting", "Runnable", k); k++) {
			total++;
			by_other += waker_m(&s, g, k) != m;
		}
	}
	print_message("pingpong: %d wake-ups, %d by a releaser, %llu generations\n", total, by_other,
	              (unsigned long long)st.generations);
	assert_true(total > 0);
	assert_true(by_other > 0);
	tsum_free(&s);
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cond_signal_arrow),
		cmocka_unit_test(test_cond_broadcast_arrows),
		cmocka_unit_test(test_named_mutex_unlock_arrow),
		cmocka_unit_test(test_pingpong_across_generations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
