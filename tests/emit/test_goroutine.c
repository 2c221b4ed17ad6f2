/*
 * Explicit goroutines of user-level schedulers (issue 5): create / start /
 * stop / block / unblock / destroy, driven step by step on the main thread
 * and two worker threads (A, B), with generation boundaries forced by
 * gotrace_flush().  Every trace is judged by all of Go's judges; the exact
 * transitions of every goroutine (and of the threads' own goroutines) are
 * checked with both readers, and every generation must state every live
 * explicit goroutine.
 *
 * Script: a sequence of 3-character steps "<who><op><arg>": who is M (main),
 * A or B (workers; a worker that exited is replaced by a new thread at its
 * next step); ops:
 *   c i  create goroutine i        s i  start i          p i  stop (yield) i
 *   k i  block i ("chan receive")  u i  unblock i        d i  destroy i
 *   b -  syscall begin             e -  syscall end      l -  log
 *   B -  gotrace_block("sync")     E -  block end        x -  worker exits
 *   r i  region begin "r<i>"       R i  region end "r<i>"
 *   f n  main flushes n times (generation boundaries)
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "schedcheck.h"

#define NG 8
static gotrace_goroutine_t gs[NG];
static const char *gnames[NG] = { "gor0", "gor1", "gor2", "gor3", "gor4", "gor5", "gor6", "gor7" };
static int unblocked;

static void do_op(char op, char arg)
{
	int i = arg >= '0' && arg <= '9' ? arg - '0' : 0;
	char rn[4] = { 'r', arg, 0, 0 };
	switch (op) {
	case 'c': gs[i] = gotrace_go_create(gnames[i]); break;
	case 's': gotrace_go_start(gs[i]); break;
	case 'p': gotrace_go_stop(gs[i]); break;
	case 'k': gotrace_go_block(gs[i], "chan receive"); break;
	case 'u': unblocked += gotrace_unblock(gs[i]); break;
	case 'd': gotrace_go_destroy(gs[i]); break;
	case 'b': gotrace_syscall_begin(); break;
	case 'e': gotrace_syscall_end(); break;
	case 'l': gotrace_log(0, "t", "step"); break;
	case 'B': gotrace_block("sync"); break;
	case 'E': gotrace_block_end(); break;
	case 'r': gotrace_region_begin(0, rn); break;
	case 'R': gotrace_region_end(0, rn); break;
	}
}

/* A worker runs one step at a time, handed over under mu (untraced). */
struct worker {
	pthread_t th;
	int live;
	char op, arg;
	int pending; /* 1: a step waits; -1: exit */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};
static struct worker wk[2];

static void *worker_loop(struct worker *w)
{
	gotrace_log(0, "t", "hello");
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->pending == 0)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->pending < 0) {
			w->pending = 0;
			pthread_cond_broadcast(&w->cv);
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		do_op(w->op, w->arg);
		w->pending = 0;
		pthread_cond_broadcast(&w->cv);
	}
}
/* Distinct entry functions name the workers' goroutines (no tail call:
 * the entry frame must stay on the stack). */
static void *worker_a(void *arg)
{
	void *r = worker_loop(arg);
	__asm__ volatile("" ::: "memory");
	return r;
}
static void *worker_b(void *arg)
{
	void *r = worker_loop(arg);
	__asm__ volatile("" ::: "memory");
	return r;
}

static void wk_step(int k, char op, char arg)
{
	struct worker *w = &wk[k];
	if (!w->live) {
		assert_int_equal(pthread_create(&w->th, NULL, k ? worker_b : worker_a, w), 0);
		w->live = 1;
	}
	pthread_mutex_lock(&w->mu);
	w->op = op;
	w->arg = arg;
	w->pending = op == 'x' ? -1 : 1;
	pthread_cond_broadcast(&w->cv);
	while (w->pending != 0)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	if (op == 'x') {
		pthread_join(w->th, NULL);
		w->live = 0;
	}
}

static char *run(const char *tag, const char *script, int want_unblocked)
{
	char *path = sc_start(tag, SC_NO_ADVANCE, GOTRACE_STACK_ALL, 0);
	gotrace_log(0, "main", "start");
	unblocked = 0;
	for (int k = 0; k < 2; k++) {
		pthread_mutex_init(&wk[k].mu, NULL);
		pthread_cond_init(&wk[k].cv, NULL);
	}
	size_t n = strlen(script);
	assert_true(n % 3 == 0);
	for (size_t i = 0; i < n; i += 3) {
		char who = script[i], op = script[i + 1], arg = script[i + 2];
		if (op == 'f') {
			for (int j = 0; j < arg - '0'; j++)
				assert_int_equal(gotrace_flush(), 0);
		} else if (who == 'M') {
			do_op(op, arg);
		} else {
			wk_step(who == 'B', op, arg);
		}
	}
	for (int k = 0; k < 2; k++)
		if (wk[k].live)
			wk_step(k, 'x', '-');
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(unblocked, want_unblocked);
	assert_int_equal(judge_trace(path), 0);
	return path;
}

/* "1,2,3": the generations holding an event (status or transition) of
 * goroutine id. */
static char *gens_of(const struct tsum *s, int64_t id)
{
	char *out = calloc(1, 4096);
	size_t len = 0;
	int64_t last = -1;
	for (size_t i = 0; i < s->n; i++) {
		const struct tline *l = &s->lines[i];
		if (strcmp(l->kind, "gostate") || tl_int(l, "id") != id || l->gen == last)
			continue;
		last = l->gen;
		len += (size_t)snprintf(out + len, 4096 - len, "%s%lld", len ? "," : "", (long long)last);
	}
	return out;
}

/* How many log lines carry message msg; each must be goroutine g's. */
static int logs_of(const struct tsum *s, const char *msg, int64_t g)
{
	int logs = 0;
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->lines[i].kind, "log") && !strcmp(tl_get(&s->lines[i], "msg"), msg)) {
			assert_int_equal(s->lines[i].g, g);
			logs++;
		}
	return logs;
}

struct want {
	const char *name; /* goroutine (gsum name) */
	const char *tr;   /* transitions() */
	const char *gens; /* gens_of(), or NULL */
};

static void check(const char *path, const struct want *w, int nw)
{
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		for (int i = 0; i < nw; i++) {
			int64_t g = goid_named(&s, w[i].name);
			if (g <= 0)
				fprintf(stderr, "no goroutine %s (%s)\n", w[i].name, readers[r]);
			assert_true(g > 0);
			char *tg = transitions(&s, "gostate", g);
			if (strcmp(tg, w[i].tr) != 0)
				fprintf(stderr, "%s (%s):\n", w[i].name, readers[r]);
			expect_str(tg, w[i].tr);
			free(tg);
			if (w[i].gens) {
				char *gg = gens_of(&s, g);
				expect_str(gg, w[i].gens);
				free(gg);
			}
		}
		tsum_free(&s);
	}
}

#define G_NEW "NotExist>Runnable@1,Runnable>Running@1"
#define G_NEW_AT(g) "NotExist>Runnable@" #g ",Runnable>Running@" #g

/* Everything on the main thread, one generation. */
static void test_lifecycle_one_thread(void **state)
{
	(void)state;
	char *path = run("gor-life", "Mc0Ms0Mp0Ms0Mk0Ml-Mu0Ms0Md0", 1);
	struct want w[] = {
		{ "gor0",
		  "NotExist>Runnable@1,Runnable>Running@1,Running>Runnable@1,Runnable>Running@1,"
		  "Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@1,Running>NotExist@1",
		  "1" },
		/* main: parked at a start from its own code, resumed at its
		 * next call outside goroutines (the log), parked again. */
		{ "main", G_NEW ",Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@1,"
		          "Running>Waiting@1", NULL },
	};
	check(path, w, 2);
	unlink(path);
	free(path);
}

/* Created on main, runs on A, then on B, woken from main, destroyed on B. */
static void test_moves_between_threads(void **state)
{
	(void)state;
	char *path = run("gor-move", "Mc0As0Al-Ap0Bs0Bk0Mu0Bs0Bd0", 1);
	struct want w[] = {
		{ "gor0",
		  "NotExist>Runnable@1,Runnable>Running@1,Running>Runnable@1,Runnable>Running@1,"
		  "Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@1,Running>NotExist@1",
		  "1" },
	};
	check(path, w, 1);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int64_t g = goid_named(&s, "gor0");
		int64_t a = goid_named(&s, "worker_a"), b = goid_named(&s, "worker_b");
		const struct tline *r1 = find_tr(&s, "gostate", g, "Runnable", "Running", 0);
		const struct tline *r2 = find_tr(&s, "gostate", g, "Runnable", "Running", 1);
		const struct tline *wake = find_tr(&s, "gostate", g, "Waiting", "Runnable", 0);
		assert_non_null(r1);
		assert_non_null(r2);
		assert_true(r1->m != r2->m); /* ran on two threads */
		assert_true(wake->m != r2->m);  /* woken by main */
		/* The log inside the goroutine is the goroutine's. */
		assert_int_equal(logs_of(&s, "step", g), 1);
		/* The workers' own goroutines: parked while running it. */
		char *ta = transitions(&s, "gostate", a), *tb = transitions(&s, "gostate", b);
		expect_str(ta, G_NEW ",Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@1,"
		               "Running>NotExist@1");
		expect_str(tb, G_NEW ",Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@1,"
		               "Running>NotExist@1");
		free(ta);
		free(tb);
		assert_true(gsum_field(&s, g, "exec_ns") > 0);
		assert_true(gsum_field(&s, g, "block_ns") > 0);
		assert_true(gsum_field(&s, g, "sched_ns") > 0);
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

/* Runnable and then blocked across boundaries nobody touches it in: every
 * generation states it (the advancer's sweep). */
static void test_across_generations(void **state)
{
	(void)state;
	char *path = run("gor-gens", "Mc0Mc1Mf2As0Ak0Mf2Bu0Mf1Bs0Bd0Md1", 1);
	struct want w[] = {
		{ "gor0",
		  "NotExist>Runnable@1,Runnable>Running@3,Running>Waiting@3,Waiting>Runnable@5,"
		  "Runnable>Running@6,Running>NotExist@6",
		  "1,2,3,4,5,6" },
		/* never started: run to its end by main at its destroy */
		{ "gor1", "NotExist>Runnable@1,Runnable>Running@6,Running>NotExist@6", "1,2,3,4,5,6" },
	};
	check(path, w, 2);
	unlink(path);
	free(path);
}

/* A syscall inside a goroutine, across a boundary (its P is stolen), then
 * a short one. */
static void test_syscall_in_goroutine(void **state)
{
	(void)state;
	char *path = run("gor-sys", "Mc0As0Ab-Mf1Ae-Al-Ab-Ae-Ap0Mf1Md0", 0);
	struct want w[] = {
		{ "gor0",
		  "NotExist>Runnable@1,Runnable>Running@1,Running>Syscall@1,Syscall>Runnable@2,"
		  "Runnable>Running@2,Running>Syscall@2,Syscall>Running@2,Running>Runnable@2,"
		  "Runnable>Running@3,Running>NotExist@3",
		  "1,2,3" },
	};
	check(path, w, 1);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int64_t g = goid_named(&s, "gor0");
		assert_true(gsum_field(&s, g, "syscall_ns") > 0);
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

/* Destroy while Runnable (from a thread running its own goroutine and from
 * one running another explicit goroutine), while Waiting (from another
 * thread), and while running (on its thread). */
static void test_destroy_states(void **state)
{
	(void)state;
	char *path = run("gor-destroy", "Mc0Mc1Mc2Mc3As0Ap0Ml-Md0As1Ak1Bd1As2Ad2Bs3Mf1Bd3Ml-", 0);
	struct want w[] = {
		{ "gor0", G_NEW ",Running>Runnable@1,Runnable>Running@1,Running>NotExist@1", "1" },
		{ "gor1", G_NEW ",Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@1,"
		          "Running>NotExist@1", "1" },
		{ "gor2", G_NEW ",Running>NotExist@1", "1" },
		{ "gor3", G_NEW ",Running>NotExist@2", "1,2" },
		/* main: stopped and restarted around gor0's end */
		{ "main", G_NEW ",Running>Runnable@1,Runnable>Running@1", NULL },
		/* B: its own goroutine stopped and restarted around gor1's end,
		 * then parked while gor3 runs, resumed to exit */
		{ "worker_b", G_NEW ",Running>Runnable@1,Runnable>Running@1,Running>Waiting@1,"
		              "Waiting>Runnable@2,Runnable>Running@2,Running>NotExist@2", NULL },
	};
	check(path, w, 6);
	unlink(path);
	free(path);
}

/* Created inside a syscall bracket of the thread's own goroutine: the
 * creation is written at its first start. */
static void test_create_in_syscall(void **state)
{
	(void)state;
	char *path = run("gor-pending", "Ab-Ac0Ae-Mf1Bs0Bp0Bd0", 0);
	struct want w[] = {
		{ "gor0", "NotExist>Runnable@2,Runnable>Running@2,Running>Runnable@2,"
		          "Runnable>Running@2,Running>NotExist@2", "2" },
	};
	check(path, w, 1);
	unlink(path);
	free(path);
}

/* Regions are per goroutine: one left open in a goroutine moves with it to
 * another thread; the threads' own regions are untouched. */
static void test_regions_move(void **state)
{
	(void)state;
	char *path = run("gor-regions", "Ar1Mc0As0Ar2Ap0Br3Bs0BR2Bp0BR3AR1Ms0Md0", 0);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int64_t g = goid_named(&s, "gor0");
		int64_t a = goid_named(&s, "worker_a"), b = goid_named(&s, "worker_b");
		int begins = 0, ends = 0;
		for (size_t i = 0; i < s.n; i++) {
			const struct tline *l = &s.lines[i];
			const char *nm = tl_get(l, "name");
			if (!strcmp(l->kind, "regionbegin"))
				begins++;
			else if (!strcmp(l->kind, "regionend"))
				ends++;
			else
				continue;
			int64_t want = !strcmp(nm, "r1") ? a : !strcmp(nm, "r2") ? g : b;
			assert_int_equal(l->g, want);
			if (!strcmp(l->kind, "regionbegin") && !strcmp(nm, "r2"))
				assert_true(tl_get(l, "stack")[0] != 0); /* GOTRACE_STACK_REGION */
		}
		assert_int_equal(begins, 3);
		assert_int_equal(ends, 3);
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

/* gotrace_block inside a goroutine blocks the goroutine on its thread; a
 * start from elsewhere meanwhile writes nothing; the thread exits while a
 * goroutine runs on it (stopped), which then runs elsewhere. */
static void test_block_inside_and_exit(void **state)
{
	(void)state;
	char *path = run("gor-blkexit", "Mc0As0AB-Bs0Mu0AE-Ax-Bs0Bd0", 1);
	struct want w[] = {
		{ "gor0",
		  G_NEW ",Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@1,Running>Runnable@1,"
		  "Runnable>Running@1,Running>NotExist@1", "1" },
		{ "worker_a", G_NEW ",Running>Waiting@1,Waiting>Runnable@1,Runnable>Running@1,"
		              "Running>NotExist@1", NULL },
	};
	check(path, w, 2);
	unlink(path);
	free(path);
}

/* Starting a goroutine while another runs on the thread stops that one;
 * goroutine ids never collide with threads' goroutine ids. */
static void test_switch_and_ids(void **state)
{
	(void)state;
	char *path = run("gor-switch", "Mc0Mc1As0As1Ap1Bs0Bd0Ad1", 0);
	struct want w[] = {
		{ "gor0", G_NEW ",Running>Runnable@1,Runnable>Running@1,Running>NotExist@1", "1" },
		{ "gor1", G_NEW ",Running>Runnable@1,Runnable>Running@1,Running>NotExist@1", "1" },
	};
	check(path, w, 2);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int creates = 0;
		for (size_t i = 0; i < s.n; i++)
			if (!strcmp(s.lines[i].kind, "gostate") &&
			    !strcmp(tl_get(&s.lines[i], "from"), "NotExist"))
				creates++;
		assert_int_equal(creates, 5); /* gor0, gor1, main, worker_a, worker_b */
		assert_int_equal(tsum_count(&s, "gsum"), 5); /* + main */
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

/* Off: handles are {NULL, 0}; every call is a no-op; a handle of an ended
 * session is not traced in the next one. */
static void test_off_and_sessions(void **state)
{
	(void)state;
	gotrace_goroutine_t off = gotrace_go_create("off");
	assert_null(off.rec_);
	gotrace_go_start(off);
	gotrace_go_stop(off);
	gotrace_go_destroy(off);

	char *p1 = tmp_trace_path("gor-s1");
	assert_int_equal(gotrace_start_path(p1, NULL), 0);
	gotrace_goroutine_t a = gotrace_go_create("old");
	gotrace_go_start(a);
	gotrace_go_stop(a);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(p1), 0);

	char *p2 = tmp_trace_path("gor-s2");
	assert_int_equal(gotrace_start_path(p2, NULL), 0);
	gotrace_go_start(a); /* stale: nothing */
	assert_int_equal(gotrace_unblock(a), 0);
	gotrace_log(0, "main", "s2");
	gotrace_go_destroy(a);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(p2), 0);
	struct tsum s;
	assert_int_equal(tsum_load(p2, "new", &s), 0);
	assert_int_equal(goid_named(&s, "old"), -1);
	tsum_free(&s);
	unlink(p1);
	unlink(p2);
	free(p1);
	free(p2);
}

/* The crash flush (the program's own fatal path) ends the generation with
 * the goroutines' creation stacks and statuses: running on a thread, parked
 * and created in that very generation.  Last: tracing stays off after. */
static void test_crash_flush(void **state)
{
	(void)state;
	char *path = sc_start("gor-crash", SC_NO_ADVANCE, GOTRACE_STACK_DEFAULT,
	                      GOTRACE_CRASH_NO_SIGNALS | GOTRACE_CRASH_NO_ATEXIT);
	gotrace_goroutine_t a = gotrace_go_create("crash_a");
	gotrace_goroutine_t b = gotrace_go_create("crash_b");
	assert_int_equal(gotrace_flush(), 0);
	gotrace_goroutine_t c = gotrace_go_create("crash_c"); /* created in the last generation */
	gotrace_go_start(a);
	gotrace_log(0, "crash", "in a");
	assert_int_equal(gotrace_crash_flush(), 0);
	gotrace_stop();
	assert_int_equal(judge_trace(path), 0);
	struct tsum s;
	assert_int_equal(tsum_load(path, "new", &s), 0);
	assert_true(goid_named(&s, "crash_a") > 0);
	assert_true(goid_named(&s, "crash_b") > 0);
	assert_true(goid_named(&s, "crash_c") > 0);
	tsum_free(&s);
	gotrace_go_destroy(a);
	gotrace_go_destroy(b);
	gotrace_go_destroy(c);
	unlink(path);
	free(path);
}

/* gotrace_thread_adopt: a thread's goroutine created by its creator. */
static gotrace_goroutine_t adopt_h;
static int adopt_rc;
static void *th_a(void *arg)
{
	(void)arg;
	adopt_rc = gotrace_thread_adopt(adopt_h); /* and no traced call after */
	return NULL;
}
static void *th_b(void *arg)
{
	(void)arg;
	adopt_rc = gotrace_thread_adopt(adopt_h);
	gotrace_log(0, "t", "in b");
	gotrace_goroutine_t me = gotrace_self();
	return (void *)(uintptr_t)me.id_;
}
static void dummy_c(void) {}
static void *th_c(void *arg)
{
	(void)arg;
	gotrace_log(0, "t", "in c"); /* traced: too late to adopt */
	adopt_rc = gotrace_thread_adopt(adopt_h);
	return NULL;
}

static void adopt_one(void *(*fn)(void *), gotrace_goroutine_t h, int flushes, int want_rc,
                      void **ret)
{
	adopt_h = h;
	adopt_rc = 99;
	for (int i = 0; i < flushes; i++)
		assert_int_equal(gotrace_flush(), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fn, NULL), 0);
	assert_int_equal(pthread_join(t, ret), 0);
	assert_int_equal(adopt_rc, want_rc);
}

/* A: created and adopted in generation 1, makes no other traced call.
 * B: created in 1, Runnable (stated by the sweep) through two boundaries,
 * adopted in 3; its log is its own; gotrace_self() is the adopted one.
 * C: the thread was traced already: refused, the goroutine is run to its
 * end, the thread keeps its own.  Each creation is main's, with main's
 * stack (test_adopt the leaf). */
static void test_adopt(void **state)
{
	(void)state;
	char *path = sc_start("gor-adopt", SC_NO_ADVANCE, GOTRACE_STACK_ALL, 0);
	gotrace_log(0, "main", "start");
	void *bid = NULL;
	adopt_one(th_a, gotrace_go_create_fn(th_a, NULL), 0, 0, NULL);
	gotrace_goroutine_t hb = gotrace_go_create_fn(th_b, NULL);
	adopt_one(th_b, hb, 2, 0, &bid);
	assert_int_equal((uint64_t)(uintptr_t)bid, hb.id_);
	adopt_one(th_c, gotrace_go_create_fn(dummy_c, NULL), 0, -GOTRACE_EINVAL, NULL);
	/* Stale handle (an ended session's): consumed, refused. */
	gotrace_goroutine_t old = gotrace_go_create("old");
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(gotrace_thread_adopt(old), -GOTRACE_EINVAL);
	assert_int_equal(judge_trace(path), 0);
	struct want w[] = {
		{ "th_a", "NotExist>Runnable@1,Runnable>Running@1,Running>NotExist@1", "1" },
		{ "th_b", "NotExist>Runnable@1,Runnable>Running@3,Running>NotExist@3", "1,2,3" },
		{ "dummy_c", "NotExist>Runnable@3,Runnable>Running@3,Running>NotExist@3", "3" },
		/* stopped while dummy_c runs to its end on C */
		{ "th_c", G_NEW_AT(3) ",Running>Runnable@3,Runnable>Running@3,Running>NotExist@3", "3" },
	};
	check(path, w, 4);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int64_t mn = goid_named(&s, "main");
		assert_true(mn > 0);
		const char *adopted[] = { "th_a", "th_b", "dummy_c" };
		for (int i = 0; i < 3; i++) {
			int64_t g = goid_named(&s, adopted[i]);
			const struct tline *c = find_tr(&s, "gostate", g, "NotExist", "Runnable", 0);
			assert_non_null(c);
			assert_int_equal(c->g, mn);                        /* created by main */
			expect_str(tl_get(c, "evstack"), "test_adopt"); /* with its stack */
		}
		/* One goroutine per thread: A's and B's are the adopted ones. */
		assert_int_equal(tsum_count(&s, "gsum"), 6); /* main, A, B, C, dummy_c, old */
		int64_t b = goid_named(&s, "th_b");
		assert_int_equal(b, (int64_t)hb.id_);
		assert_int_equal(logs_of(&s, "in b", b), 1);
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

static int adopt_done;
/* Adoptions racing generation advances (1 ms period, and main flushing):
 * 4 spawners each create 50 threads that adopt the goroutine their
 * spawner made, log once and exit, joined or detached.  Every goroutine
 * appears once, created by its spawner; the trace passes every judge. */
static void *adopt_child(void *arg)
{
	gotrace_goroutine_t *g = arg;
	int r = gotrace_thread_adopt(*g);
	free(g);
	if (r == 0)
		gotrace_log(0, "t", "child");
	__atomic_add_fetch(&adopt_done, 1, __ATOMIC_RELEASE);
	return (void *)(intptr_t)r;
}
static void *adopt_spawner(void *arg)
{
	(void)arg;
	gotrace_log(0, "t", "spawner");
	for (int i = 0; i < 50; i++) {
		gotrace_goroutine_t *g = malloc(sizeof *g);
		*g = gotrace_go_create_fn(adopt_child, NULL);
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, adopt_child, g), 0);
		if (i % 2) {
			void *r;
			pthread_join(t, &r);
			assert_int_equal((intptr_t)r, 0);
		} else {
			pthread_detach(t);
		}
	}
	return NULL;
}
static void test_adopt_stress(void **state)
{
	(void)state;
	char *path = sc_start("gor-adopt-stress", 1000 * 1000, GOTRACE_STACK_GOROUTINE, 0);
	gotrace_log(0, "main", "start");
	pthread_t sp[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&sp[i], NULL, adopt_spawner, NULL), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(gotrace_flush(), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(sp[i], NULL);
	/* The detached children: until every one logged (bounded: 60 s). */
	for (int w = 0; w < 6000 && __atomic_load_n(&adopt_done, __ATOMIC_ACQUIRE) < 200; w++)
		usleep(10000);
	assert_int_equal(__atomic_load_n(&adopt_done, __ATOMIC_ACQUIRE), 200);
	assert_int_equal(gotrace_stop(), 0);
	struct tsum s;
	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int children = 0, by_spawner = 0, logs = 0;
		for (size_t i = 0; i < s.n; i++) {
			const struct tline *l = &s.lines[i];
			if (!strcmp(l->kind, "gsum") && !strcmp(tl_get(l, "name"), "adopt_child"))
				children++;
			if (!strcmp(l->kind, "gostate") && !strcmp(tl_get(l, "from"), "NotExist") &&
			    !strcmp(tl_get(l, "stack"), "adopt_child") && l->g > 0 &&
			    !strcmp(tl_get(l, "evstack"), "adopt_spawner"))
				by_spawner++;
			if (!strcmp(l->kind, "log") && !strcmp(tl_get(l, "msg"), "child"))
				logs++;
		}
		assert_int_equal(children, 200);
		assert_int_equal(by_spawner, 200);
		assert_int_equal(logs, 200);
		assert_int_equal(tsum_count(&s, "gsum"), 1 + 4 + 200);
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_one_thread),
		cmocka_unit_test(test_moves_between_threads),
		cmocka_unit_test(test_across_generations),
		cmocka_unit_test(test_syscall_in_goroutine),
		cmocka_unit_test(test_destroy_states),
		cmocka_unit_test(test_create_in_syscall),
		cmocka_unit_test(test_regions_move),
		cmocka_unit_test(test_block_inside_and_exit),
		cmocka_unit_test(test_switch_and_ids),
		cmocka_unit_test(test_off_and_sessions),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_adopt_stress),
		cmocka_unit_test(test_crash_flush),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
