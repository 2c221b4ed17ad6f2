/*
 * Randomized scheduling test (issue 5): 8 threads run random sequences of
 * syscall brackets, blocks (woken by other threads or by themselves),
 * contended instrumented mutex locks, cross-thread unblocks and logs while
 * the generation advances every millisecond.  Every trace is judged by all
 * Go judges; with both readers, per goroutine, the number of syscalls,
 * explicit blocks, wake-ups by other threads and logs is exactly what the
 * threads did.
 *
 * Explicit goroutines (user-level scheduler): the threads also create,
 * run (start, then logs, syscalls, gotrace_block inside, then stop or
 * block), unblock and destroy goroutines of a shared pool of slots; each
 * goroutine's starts, logs, syscalls, blocks and wake-ups are exactly what
 * was done to it, and every generation from its creation to its end states
 * it.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "schedcheck.h"

#define NT 8
#define OPS 3000

struct rs {
	int idx;
	unsigned seed;
	gotrace_goroutine_t h;
	uint64_t tid;
	int syscalls, blocks, logs;
	int woken; /* atomic: successful gotrace_unblock calls targeting us */
};

static struct rs rs[NT];

/* Explicit goroutines: slots of a pool, each under its own (untraced)
 * mutex; xr: what was done to each goroutine ever created (written by the
 * thread owning its slot's running flag or mutex; read after the joins). */
#define NX 16
#define MAXG 20000
struct xrec {
	uint64_t id;
	int starts, logs, syscalls, blocks, destroyed;
};
static struct xrec xr[MAXG];
static int nxr;
static struct xslot {
	pthread_mutex_t mu;
	int used, running, rec;
	gotrace_goroutine_t h;
} xs[NX];
static pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t go;

static void spin_us(int us)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < us * 1000L);
}

static void x_create_or_destroy(struct rs *r)
{
	struct xslot *x = &xs[rand_r(&r->seed) % NX];
	pthread_mutex_lock(&x->mu);
	if (x->used && !x->running) {
		gotrace_go_destroy(x->h);
		xr[x->rec].destroyed = 1;
		x->used = 0;
	} else if (!x->used) {
		int rec = __atomic_fetch_add(&nxr, 1, __ATOMIC_RELAXED);
		if (rec < MAXG) {
			x->h = gotrace_go_create("rnd_goroutine");
			x->rec = rec;
			xr[rec].id = x->h.id_;
			x->used = 1;
		}
	}
	pthread_mutex_unlock(&x->mu);
}

static void x_run(struct rs *r)
{
	struct xslot *x = &xs[rand_r(&r->seed) % NX];
	pthread_mutex_lock(&x->mu);
	if (!x->used || x->running) {
		pthread_mutex_unlock(&x->mu);
		return;
	}
	x->running = 1;
	struct xrec *q = &xr[x->rec];
	gotrace_goroutine_t h = x->h;
	pthread_mutex_unlock(&x->mu);
	gotrace_go_start(h);
	q->starts++;
	for (int n = rand_r(&r->seed) % 4; n > 0; n--) {
		switch (rand_r(&r->seed) % 4) {
		case 0:
			gotrace_log(0, "rnd", "in");
			q->logs++;
			break;
		case 1:
			gotrace_syscall_begin();
			if (rand_r(&r->seed) % 8 == 0)
				usleep(1500); /* across an advance */
			else
				spin_us(5);
			gotrace_syscall_end();
			q->syscalls++;
			break;
		case 2:
			gotrace_region_begin(0, "in goroutine");
			spin_us(rand_r(&r->seed) % 8 == 0 ? 1200 : 10);
			gotrace_region_end(0, "in goroutine");
			break;
		default:
			gotrace_block("sync");
			q->blocks++;
			spin_us(20);
			gotrace_block_end();
			break;
		}
	}
	if (rand_r(&r->seed) % 2) {
		gotrace_go_stop(h);
	} else {
		gotrace_go_block(h, "chan send");
		q->blocks++;
	}
	pthread_mutex_lock(&x->mu);
	x->running = 0;
	pthread_mutex_unlock(&x->mu);
}

static void x_unblock(struct rs *r)
{
	struct xslot *x = &xs[rand_r(&r->seed) % NX];
	pthread_mutex_lock(&x->mu);
	if (x->used)
		gotrace_unblock(x->h);
	pthread_mutex_unlock(&x->mu);
}

static void *rnd_thread(void *arg)
{
	struct rs *r = arg;
	r->h = gotrace_self();
	pthread_barrier_wait(&go);
	for (int k = 0; k < OPS; k++) {
		int op = rand_r(&r->seed) % 9;
		switch (op) {
		case 0:
			gotrace_syscall_begin();
			if (rand_r(&r->seed) % 8 == 0)
				usleep(1500); /* across an advance */
			else
				spin_us(5);
			gotrace_syscall_end();
			r->syscalls++;
			break;
		case 1:
			gotrace_block("chan receive");
			r->blocks++;
			spin_us(rand_r(&r->seed) % 8 == 0 ? 1200 : 20);
			gotrace_block_end();
			break;
		case 2:
			gotrace_mutex_lock(&shared);
			spin_us(10);
			pthread_mutex_unlock(&shared);
			break;
		case 3: {
			int j = rand_r(&r->seed) % NT;
			if (j != r->idx && gotrace_unblock(rs[j].h))
				__atomic_add_fetch(&rs[j].woken, 1, __ATOMIC_RELAXED);
			break;
		}
		case 6: x_create_or_destroy(r); break;
		case 7: x_run(r); break;
		case 8: x_unblock(r); break;
		default:
			gotrace_log(0, "rnd", "x");
			r->logs++;
			break;
		}
	}
	/* Handles are valid while their thread lives: nobody exits before
	 * every thread is done unblocking the others. */
	pthread_barrier_wait(&go);
	return NULL;
}

static void test_random_8_threads(void **state)
{
	(void)state;
	char *path = tmp_trace_path("rndsched");
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 1000000;
	stress_options(&o, STRESS_BUFFERS);
	o.event_stacks = GOTRACE_STACK_BLOCK | GOTRACE_STACK_SYSCALL | GOTRACE_STACK_GOROUTINE;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	pthread_barrier_init(&go, NULL, NT);
	for (int i = 0; i < NX; i++)
		pthread_mutex_init(&xs[i].mu, NULL);
	pthread_t th[NT];
	for (int i = 0; i < NT; i++) {
		rs[i] = (struct rs){ .idx = i, .seed = 1234u + (unsigned)i * 77u };
		pthread_create(&th[i], NULL, rnd_thread, &rs[i]);
	}
	/* Explicit generation ends while the threads run, besides the 1 ms
	 * advances (which a loaded CI box may delay): at least 6 boundaries. */
	for (int i = 0; i < 6; i++) {
		usleep(1000);
		assert_int_equal(gotrace_flush(), 0);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NX; i++) {
		if (xs[i].used) {
			gotrace_go_destroy(xs[i].h); /* not running: run to its end */
			xr[xs[i].rec].destroyed = 1;
			xs[i].used = 0;
		}
	}
	assert_int_equal(gotrace_stop(), 0);
	assert_true(nxr < MAXG);
	gotrace_stats st;
	gotrace_get_stats(&st);
	assert_int_equal(st.events_dropped, 0);
	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		assert_true(tl_int(&s.lines[s.n - 1], "gens") > 5);
		/* Goroutines in creation order are rs[0..NT-1] only if created in
		 * order: map them by their log/transition counts instead, via
		 * the goroutine's M (unique per thread). */
		int seen = 0;
		for (size_t i = 0; i < s.n; i++) {
			const struct tline *l = &s.lines[i];
			if (strcmp(l->kind, "gsum") || strcmp(tl_get(l, "name"), "rnd_thread"))
				continue;
			int64_t g = tl_int(l, "id");
			int sys = 0, blk = 0, wakes_other = 0, logs = 0;
			int64_t m = find_tr(&s, "gostate", g, "Runnable", "Running", 0)->m;
			for (size_t k = 0; k < s.n; k++) {
				const struct tline *e = &s.lines[k];
				if (!strcmp(e->kind, "log") && e->g == g)
					logs++;
				if (strcmp(e->kind, "gostate") || tl_int(e, "id") != g)
					continue;
				const char *from = tl_get(e, "from"), *to = tl_get(e, "to");
				if (!strcmp(from, "Running") && !strcmp(to, "Syscall"))
					sys++;
				if (!strcmp(from, "Running") && !strcmp(to, "Waiting") &&
				    !strcmp(tl_get(e, "reason"), "chan receive"))
					blk++;
				if (!strcmp(from, "Waiting") && !strcmp(to, "Runnable") && e->m != m)
					wakes_other++;
			}
			int who = -1;
			for (int t = 0; t < NT; t++)
				if (rs[t].h.id_ == (uint64_t)g)
					who = t;
			assert_true(who >= 0);
			assert_int_equal(sys, rs[who].syscalls);
			assert_int_equal(blk, rs[who].blocks);
			assert_int_equal(logs, rs[who].logs);
			assert_int_equal(wakes_other, rs[who].woken);
			seen++;
		}
		assert_int_equal(seen, NT);
		/* Explicit goroutines: per goroutine, in one pass. */
		int ng = nxr, checked = 0;
		for (int i = 0; i < ng; i++) {
			struct xrec *q = &xr[i];
			int starts = 0, ends = 0, logs = 0, sys = 0, blk = 0, wakes = 0, creates = 0;
			int64_t first = -1, last = -1, holes = 0;
			/* a start not made by gotrace_go_start: the resumption after a
			 * syscall whose P was taken or after a gotrace_block */
			int resumed = 0;
			const char *prev = "", *reason = "";
			for (size_t k = 0; k < s.n; k++) {
				const struct tline *e = &s.lines[k];
				if (!strcmp(e->kind, "log") && e->g == (int64_t)q->id)
					logs++;
				if (strcmp(e->kind, "gostate") || tl_int(e, "id") != (int64_t)q->id)
					continue;
				if (first < 0)
					first = e->gen;
				if (last >= 0 && e->gen > last + 1)
					holes++;
				last = e->gen;
				const char *from = tl_get(e, "from"), *to = tl_get(e, "to");
				if (!strcmp(from, to))
					continue; /* a status */
				if (!strcmp(from, "Runnable") && !strcmp(to, "Running") &&
				    (!strcmp(prev, "Syscall") || (!strcmp(prev, "Waiting") && !strcmp(reason, "sync"))))
					resumed++;
				prev = from;
				if (!strcmp(to, "Waiting"))
					reason = tl_get(e, "reason");
				if (!strcmp(from, "NotExist"))
					creates++;
				else if (!strcmp(from, "Runnable") && !strcmp(to, "Running"))
					starts++;
				else if (!strcmp(to, "NotExist"))
					ends++;
				else if (!strcmp(from, "Running") && !strcmp(to, "Syscall"))
					sys++;
				else if (!strcmp(from, "Running") && !strcmp(to, "Waiting"))
					blk++;
				else if (!strcmp(from, "Waiting") && !strcmp(to, "Runnable"))
					wakes++;
			}
			assert_int_equal(creates, 1);
			assert_int_equal(ends, 1);
			assert_int_equal(q->destroyed, 1);
			/* destroyed while not running: run to its end (one more
			 * start), after its wake-up if it was blocked */
			assert_int_equal(starts - resumed, q->starts + 1);
			assert_int_equal(logs, q->logs);
			assert_int_equal(sys, q->syscalls);
			assert_int_equal(blk, q->blocks);
			assert_int_equal(wakes, q->blocks);
			assert_int_equal(holes, 0); /* stated in every generation */
			checked++;
		}
		assert_true(checked > 50);
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_8_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
