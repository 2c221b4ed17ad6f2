/*
 * fork() while tracing.
 *
 * What a child gets (src/emit/session.c, atfork_child): tracing is OFF in the
 * child (gotrace_enabled() == 0, every annotation returns at once,
 * gotrace_task_begin returns 0, gotrace_flush and gotrace_stop return
 * -GOTRACE_ENOTON); it has no flusher, and the trace file descriptor that
 * gotrace_start_path opened is closed in the child; the parent's buffered
 * events are left behind (never written by the child: it cannot tell which
 * ones the parent already wrote).  The child's threads start afresh: the
 * child may start a trace of its own (to another file), which is a complete,
 * independent trace.  The parent's trace is unaffected: not one byte of it
 * comes from a child, whether the child leaves with _exit() or with exit()
 * (atexit handlers, including gotrace's own, run in the child).
 *
 * The parent traces with a worker thread emitting all the time and forks:
 *   1. a child that only emits (while off) and leaves with _exit(0);
 *   2. the same, leaving with exit(0);
 *   3. a child that starts its own trace, emits from two threads, stops it
 *      and leaves with _exit(0);
 *   4. a child that starts its own trace and leaves with exit(0) without
 *      stopping it (gotrace's atexit handler completes the trace);
 *   5. like 3, but forked by the emitting worker thread itself;
 * then a burst of children of kind 3, to catch forks that land while the
 * worker or the flusher are in the middle of something.
 * The parent's trace holds exactly the parent's events and its size is
 * exactly the bytes the parent wrote; each child trace holds exactly the
 * child's events.  All are judged by all four judges and read with both Go
 * readers.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracecheck.h"

static const char *readers[] = { "go1.23", "new" };

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer runs at exit() in a forked child too.  The child has, by
 * design, abandoned the parent's tracing state (buffers, records of threads
 * that do not exist in the child): that is not a leak of the child's own
 * doing, so leak checking is off in children only. */
static int in_child;
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) { return in_child; }
#define MARK_CHILD() (in_child = 1)
#else
#define MARK_CHILD() ((void)0)
#endif

#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer (GCC 12's) cannot run a thread started in a child of a
 * multi-threaded process: by default it kills the child ("starting new
 * threads after multi-threaded fork is not supported"), and with
 * die_after_fork=0 it aborts in the child's first pthread_create ("dup
 * thread with used id": glibc gives that thread the cached stack of a
 * parent thread that TSan still counts).  Whatever the library does, then,
 * a child here may start no thread under TSan: it does not start its own
 * trace (that starts a flusher) nor child_emit's thread.  The parent's side
 * (forks while tracing, its trace unharmed) is checked as everywhere. */
#define CHILD_THREADS 0
#else
#define CHILD_THREADS 1
#endif

/* ------------------------------------------------------------- helpers */

static size_t count_kv(const struct tsum *s, const char *kind, const char *key, const char *val)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct tline *l = &s->lines[i];
		if (strcmp(l->kind, kind) != 0)
			continue;
		if (!key || (tl_get(l, key) && !strcmp(tl_get(l, key), val)))
			n++;
	}
	return n;
}

static size_t count_prefix(const struct tsum *s, const char *key, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++) {
		const char *v = tl_get(&s->lines[i], key);
		n += v && !strncmp(v, prefix, strlen(prefix));
	}
	return n;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&d, &d) != 0)
		;
}

/* ------------------------------------------------------------ children */

#define MAXKIDS 32

/* Shared with the children (MAP_SHARED): how far each got, to tell a hang
 * from a crash. */
struct shared {
	volatile int step[MAXKIDS];
};
static struct shared *sh;

static const char *step_name(int s)
{
	switch (s) {
	case 0: return "not started";
	case 1: return "calls while off";
	case 2: return "gotrace_start_path";
	case 3: return "emitting";
	case 4: return "gotrace_stop";
	case 5: return "exiting";
	default: return "?";
	}
}

enum { LEAVE_EXIT_ = 0, LEAVE_EXIT = 1 };

struct kid {
	int idx;
	int own_trace;  /* start a trace of its own */
	int stop;       /* call gotrace_stop before leaving */
	int use_exit;   /* exit(0) rather than _exit(0) */
	char *path;     /* its own trace */
	pid_t pid;
	int hung, failed;
};
static struct kid kids[MAXKIDS];

#define CHILD_TASKS 3
#define CHILD_REGIONS 2
#define CHILD_LOGS 3
#define CHILD_THREAD_LOGS 4

static void *child_thread(void *arg)
{
	(void)arg;
	char msg[32];
	for (int i = 0; i < CHILD_THREAD_LOGS; i++) {
		snprintf(msg, sizeof msg, "child-thread %d", i);
		gotrace_log(0, "child-thread-log", msg);
	}
	return NULL;
}

static void child_emit(void)
{
	for (int i = 0; i < CHILD_TASKS; i++) {
		uint64_t t = gotrace_task_begin(0, "child-task");
		if (i < CHILD_REGIONS) {
			gotrace_region_begin(t, "child-region");
			gotrace_region_end(t, "child-region");
		}
		if (i < CHILD_LOGS)
			gotrace_log(t, "child-log", "child says hello");
		gotrace_task_end(t);
	}
	pthread_t th;
	if (CHILD_THREADS && pthread_create(&th, NULL, child_thread, NULL) == 0)
		pthread_join(th, NULL);
}

/* Runs in the child; returns its exit status (0: all as documented). */
static int child_body(struct kid *k)
{
	sh->step[k->idx] = 1;
	if (gotrace_enabled())
		return 10;
	if (gotrace_task_begin(0, "child-off-task") != 0)
		return 11;
	/* The out-of-line entry points, as reached by a caller that read
	 * gotrace_on_ just before the fork. */
	if (gotrace_task_begin_(0, "child-off-task") != 0)
		return 12;
	gotrace_region_begin_(0, "child-off-region");
	gotrace_region_end_(0, "child-off-region");
	gotrace_log_(0, "child-off-log", "should go nowhere");
	gotrace_task_end_(1);
	child_emit(); /* tracing off: nothing anywhere */
	if (gotrace_flush() != -GOTRACE_ENOTON)
		return 13;
	if (gotrace_stop() != -GOTRACE_ENOTON)
		return 14;
	if (gotrace_thread_dropped() != 0)
		return 15;
	if (!k->own_trace)
		return 0;
	sh->step[k->idx] = 2;
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 2 * 1000 * 1000;
	if (gotrace_start_path(k->path, &o) != 0)
		return 20;
	if (!gotrace_enabled())
		return 21;
	sh->step[k->idx] = 3;
	child_emit();
	if (k->stop) {
		sh->step[k->idx] = 4;
		int rc = gotrace_stop();
		if (rc != 0)
			return 22;
		gotrace_stats st;
		gotrace_get_stats(&st);
		if (st.events_dropped != 0)
			return 23;
		if (st.threads_seen != 2)
			return 24;
	}
	return 0;
}

static void child_main(struct kid *k)
{
	MARK_CHILD();
	int rc = child_body(k);
	sh->step[k->idx] = 5;
	if (k->use_exit)
		exit(rc);
	_exit(rc);
}

static void do_fork(struct kid *k)
{
	fflush(NULL); /* no stdio buffer duplicated into the child */
	pid_t pid = fork();
	if (pid == 0)
		child_main(k);
	k->pid = pid;
}

/* Wait for children [from, to) until deadline_ms (mono_ms); a child still
 * running then is killed.  Prints what went wrong with each; returns the
 * number of children that hung or did not exit with status 0. */
static int reap(int from, int to, uint64_t deadline_ms)
{
	int bad = 0;
	for (int i = from; i < to; i++) {
		struct kid *k = &kids[i];
		if (k->pid <= 0) {
			fprintf(stderr, "child %d: fork failed\n", i);
			bad++;
			continue;
		}
		int st = 0;
		pid_t r;
		while ((r = waitpid(k->pid, &st, WNOHANG)) == 0 && mono_ms() < deadline_ms)
			sleep_ms(2);
		int step = sh->step[i];
		if (r == 0) {
			fprintf(stderr, "child %d (own_trace=%d stop=%d exit=%d): HUNG at step %d (%s); killed\n",
			        i, k->own_trace, k->stop, k->use_exit, step, step_name(step));
			kill(k->pid, SIGKILL);
			waitpid(k->pid, &st, 0);
			k->pid = -1;
			k->hung = 1;
			bad++;
			continue;
		}
		k->pid = -1;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "child %d (own_trace=%d stop=%d exit=%d): exit %d signal %d at step %d (%s)\n",
			        i, k->own_trace, k->stop, k->use_exit, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
			        WIFSIGNALED(st) ? WTERMSIG(st) : 0, step, step_name(step));
			k->failed = 1;
			bad++;
		}
	}
	return bad;
}

static void check_child_trace(const struct kid *k)
{
	if (judge_trace(k->path) != 0)
		fail_msg("the trace of child %d (%s) is rejected", k->idx, k->path);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(k->path, readers[r], &s), 0);
		assert_int_equal(tsum_count(&s, "taskbegin"), CHILD_TASKS);
		assert_int_equal(count_kv(&s, "taskbegin", "name", "child-task"), CHILD_TASKS);
		assert_int_equal(tsum_count(&s, "taskend"), CHILD_TASKS);
		assert_int_equal(tsum_count(&s, "regionbegin"), CHILD_REGIONS);
		assert_int_equal(tsum_count(&s, "regionend"), CHILD_REGIONS);
		assert_int_equal(tsum_count(&s, "log"), CHILD_LOGS + CHILD_THREAD_LOGS);
		assert_int_equal(count_kv(&s, "log", "cat", "child-log"), CHILD_LOGS);
		assert_int_equal(count_kv(&s, "log", "cat", "child-thread-log"), CHILD_THREAD_LOGS);
		/* Nothing of the parent, nothing from while it was off. */
		assert_int_equal(count_prefix(&s, "name", "p"), 0);
		assert_int_equal(count_prefix(&s, "cat", "p"), 0);
		assert_int_equal(count_prefix(&s, "name", "child-off"), 0);
		assert_int_equal(count_prefix(&s, "cat", "child-off"), 0);
		/* Two goroutines carry the child's events. */
		int64_t g1 = -1, g2 = -1;
		for (size_t i = 0; i < s.n; i++) {
			const struct tline *l = &s.lines[i];
			if (!strcmp(l->kind, "taskbegin"))
				g1 = l->g;
			if (!strcmp(l->kind, "log") && !strcmp(tl_get(l, "cat"), "child-thread-log"))
				g2 = l->g;
		}
		assert_true(g1 > 0 && g2 > 0 && g1 != g2);
		tsum_free(&s);
	}
}

/* ------------------------------------------------------ the parent side */

struct worker {
	pthread_t th;
	volatile int stop;
	volatile int fork_req;  /* set by main: fork this kid from the worker */
	struct kid *fork_kid;
	volatile int fork_done;
	uint64_t rounds;        /* written by the worker, read after join */
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[32], msg[48];
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		uint64_t k = w->rounds;
		/* Rotating names: interning misses in every generation. */
		snprintf(name, sizeof name, "pregion-%d", (int)(k % 97));
		snprintf(msg, sizeof msg, "worker round %llu", (unsigned long long)k);
		uint64_t t = gotrace_task_begin(0, "ptask");
		gotrace_region_begin(t, name);
		gotrace_log(t, "plog", msg);
		gotrace_region_end(t, name);
		gotrace_task_end(t);
		w->rounds++;
		if (__atomic_load_n(&w->fork_req, __ATOMIC_ACQUIRE)) {
			w->fork_req = 0;
			do_fork(w->fork_kid);
			__atomic_store_n(&w->fork_done, 1, __ATOMIC_RELEASE);
		}
		/* Throttled (~10k rounds/s): the trace stays small enough for the
		 * judges to read in a moment. */
		struct timespec d = { 0, 50000 };
		nanosleep(&d, NULL);
	}
	return NULL;
}

static int main_logs, main_tasks;

static void main_emit(const char *what)
{
	uint64_t t = gotrace_task_begin(0, "pmain-task");
	gotrace_log(t, "pmain", what);
	gotrace_task_end(t);
	main_tasks++;
	main_logs++;
}

static struct worker W;

static void new_kid(int idx, int own, int stop, int use_exit)
{
	struct kid *k = &kids[idx];
	k->idx = idx;
	k->own_trace = own && CHILD_THREADS;
	k->stop = stop;
	k->use_exit = use_exit;
	char tag[32];
	snprintf(tag, sizeof tag, "fork-child%d", idx);
	free(k->path);
	k->path = tmp_trace_path(tag);
	unlink(k->path);
	k->pid = -1;
	k->hung = k->failed = 0;
	sh->step[idx] = 0;
}

#define NBURST 4

static void test_fork_while_tracing(void **state)
{
	(void)state;
	char *path = tmp_trace_path("fork-parent");
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 5 * 1000 * 1000;
	assert_int_equal(gotrace_start_path(path, &o), 0);

	main_emit("before the worker");
	memset(&W, 0, sizeof W);
	assert_int_equal(pthread_create(&W.th, NULL, worker_main, &W), 0);
	sleep_ms(20);

	new_kid(1, 0, 0, 0); /* emits while off, _exit */
	new_kid(2, 0, 0, 1); /* emits while off, exit */
	new_kid(3, 1, 1, 0); /* own trace, stop, _exit */
	new_kid(4, 1, 0, 1); /* own trace, no stop, exit: atexit completes it */
	new_kid(5, 1, 1, 0); /* own trace, forked by the worker */
	for (int i = 1; i <= 4; i++) {
		main_emit("before a fork");
		do_fork(&kids[i]);
		main_emit("after a fork");
		sleep_ms(3);
	}
	W.fork_kid = &kids[5];
	__atomic_store_n(&W.fork_req, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&W.fork_done, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	main_emit("worker forked");
	int bad = reap(1, 6, mono_ms() + 4000);
	int nkids = 6;

	/* A burst: forks at random points of the worker's and flusher's work
	 * (skipped if the simple cases already failed: it would only repeat
	 * them). */
	if (!bad) {
		for (int i = 0; i < NBURST; i++) {
			new_kid(6 + i, 1, 1, i & 1);
			do_fork(&kids[6 + i]);
			main_emit("burst fork");
			sleep_ms(1 + i % 3);
		}
		nkids += NBURST;
		bad += reap(6, 6 + NBURST, mono_ms() + 4000);
	}

	main_emit("all children gone");
	assert_int_equal(gotrace_enabled(), 1);
	__atomic_store_n(&W.stop, 1, __ATOMIC_RELEASE);
	pthread_join(W.th, NULL);
	main_emit("worker joined");
	assert_int_equal(gotrace_stop(), 0);
	gotrace_stats st;
	gotrace_get_stats(&st);
	assert_int_equal(st.events_dropped, 0);
	assert_true(W.rounds > 100);

	/* Not one byte from a child: the file is exactly what the parent wrote
	 * (children share the file description, hence its offset: any write
	 * of theirs would have moved the parent's bytes). */
	struct stat fst;
	assert_int_equal(stat(path, &fst), 0);
	assert_int_equal((uint64_t)fst.st_size, st.bytes_written);

	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		assert_int_equal(tsum_count(&s, "taskbegin"), W.rounds + (uint64_t)main_tasks);
		assert_int_equal(tsum_count(&s, "taskend"), W.rounds + (uint64_t)main_tasks);
		assert_int_equal(count_kv(&s, "taskbegin", "name", "ptask"), W.rounds);
		assert_int_equal(tsum_count(&s, "regionbegin"), W.rounds);
		assert_int_equal(tsum_count(&s, "regionend"), W.rounds);
		assert_int_equal(tsum_count(&s, "log"), W.rounds + (uint64_t)main_logs);
		assert_int_equal(count_kv(&s, "log", "cat", "plog"), W.rounds);
		assert_int_equal(count_kv(&s, "log", "cat", "pmain"), main_logs);
		assert_int_equal(count_prefix(&s, "name", "child"), 0);
		assert_int_equal(count_prefix(&s, "cat", "child"), 0);
		assert_int_equal(count_prefix(&s, "msg", "child"), 0);
		tsum_free(&s);
	}

	unlink(path);
	free(path);

	/* The children: all ended normally, their traces are complete. */
	if (bad)
		fail_msg("%d of %d children hung or failed (see above); the parent's trace is fine", bad,
		         nkids - 1);
	for (int i = 1; i < nkids; i++) {
		struct kid *k = &kids[i];
		if (k->own_trace)
			check_child_trace(k);
		else
			assert_int_equal(access(k->path, F_OK), -1);
		unlink(k->path);
	}
}

/* A child forked while tracing is off (after a session) starts its own
 * trace too; the parent can start a new one in the meantime. */
static void test_fork_after_stop(void **state)
{
	(void)state;
	char *path = tmp_trace_path("fork-parent2");
	assert_int_equal(gotrace_start_path(path, NULL), 0);
	main_logs = main_tasks = 0;
	main_emit("session two");
	assert_int_equal(gotrace_stop(), 0);
	new_kid(0, 1, 1, 0);
	do_fork(&kids[0]);
	int bad = reap(0, 1, mono_ms() + 4000);
	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		assert_int_equal(tsum_count(&s, "log"), 1);
		assert_int_equal(count_prefix(&s, "cat", "child"), 0);
		tsum_free(&s);
	}
	unlink(path);
	free(path);
	if (bad)
		fail_msg("the child hung or failed (see above)");
	if (kids[0].own_trace)
		check_child_trace(&kids[0]);
	unlink(kids[0].path);
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < MAXKIDS; i++) {
		if (kids[i].pid > 0) { /* left behind by a failed assertion */
			kill(kids[i].pid, SIGKILL);
			waitpid(kids[i].pid, NULL, 0);
			kids[i].pid = 0;
		}
		if (kids[i].path)
			unlink(kids[i].path);
		free(kids[i].path);
		kids[i].path = NULL;
	}
	if (W.th && !W.stop) {
		__atomic_store_n(&W.stop, 1, __ATOMIC_RELEASE);
		pthread_join(W.th, NULL);
	}
	if (gotrace_enabled())
		gotrace_stop();
	return 0;
}

int main(void)
{
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fork_while_tracing, teardown),
		cmocka_unit_test_teardown(test_fork_after_stop, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
