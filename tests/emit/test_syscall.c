/*
 * Syscall brackets (issue 5), each scenario produced by the library with
 * threads driven through barriers and gotrace_flush() forcing generation
 * boundaries at the right moments, mirroring Go's
 * internal/trace/testdata/generators/go122-syscall-steal-proc-*:
 *
 *   short            begin/end inside one generation (no steal)
 *   gen-boundary     begin; boundary; end: the advancer (a bare M: the
 *                    flusher thread, no P, no G) steals the P at the start
 *                    of the next generation (ProcStatus SyscallAbandoned +
 *                    ProcSteal), the thread ends with GoSyscallEndBlocked
 *                    and reacquires its P in the same generation
 *                    (…-gen-boundary-bare-m)
 *   sitting          begin; 3 boundaries; end: stolen at the first, the G
 *                    sits in Syscall on its thread through later
 *                    generations, the P is Idle, reacquired (ProcStatus
 *                    Idle; ProcStart p 1) in a later generation
 *                    (…-sitting-in-syscall, …-reacquire-new-proc-bare-m)
 *   ambiguous        begin; end; begin; boundary; end: the steal's P seq
 *                    pairs with the second begin (…-ambiguous)
 *   nested           nested brackets and annotations inside are not traced
 *   exit             a thread exits inside a bracket after a steal
 * The self-steal and the stealer-holding-a-P variants (…-self, -simple,
 * non-bare-m) are not producible: our steals happen only at generation
 * boundaries, by the bare advancer M.  Every trace is judged by all Go
 * judges and the exact transitions are checked with both readers.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <pthread.h>
#include <unistd.h>

#include "schedcheck.h"

struct script {
	const char *ops; /* b: begin, e: end, w: boundary (main flushes), l: log */
	int flushes;     /* flushes per 'w' */
	pthread_barrier_t b1, b2;
};

static void *sys_thread(void *arg)
{
	struct script *sc = arg;
	gotrace_log(0, "t", "hello");
	for (const char *o = sc->ops; *o; o++) {
		switch (*o) {
		case 'b': gotrace_syscall_begin(); break;
		case 'e': gotrace_syscall_end(); break;
		case 'l': gotrace_log(0, "t", "inside"); break;
		case 'w':
			pthread_barrier_wait(&sc->b1);
			pthread_barrier_wait(&sc->b2);
			break;
		}
	}
	return NULL;
}

/* Runs the script; returns the trace path. */
static char *run(const char *tag, const char *ops, int flushes)
{
	char *path = tmp_trace_path(tag);
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 10ull * 1000 * 1000 * 1000; /* only our flushes */
	assert_int_equal(gotrace_start_path(path, &o), 0);
	gotrace_log(0, "main", "start");
	struct script sc = { .ops = ops, .flushes = flushes };
	pthread_barrier_init(&sc.b1, NULL, 2);
	pthread_barrier_init(&sc.b2, NULL, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, sys_thread, &sc), 0);
	for (const char *p = ops; *p; p++) {
		if (*p != 'w')
			continue;
		pthread_barrier_wait(&sc.b1);
		for (int i = 0; i < flushes; i++)
			assert_int_equal(gotrace_flush(), 0);
		pthread_barrier_wait(&sc.b2);
	}
	pthread_join(th, NULL);
	assert_int_equal(gotrace_stop(), 0);
	pthread_barrier_destroy(&sc.b1);
	pthread_barrier_destroy(&sc.b2);
	assert_int_equal(judge_trace(path), 0);
	return path;
}

/* Checks the thread's goroutine and P transitions against want_g/want_p
 * with both readers; the steal (P Running>Idle while the G is in Syscall)
 * must come from another M than the thread's, with no P and no G. */
static void check(const char *path, const char *want_g, const char *want_p, int steals)
{
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		int64_t g = goid_named(&s, "sys_thread");
		assert_true(g > 0);
		const struct tline *run = find_tr(&s, "gostate", g, "Runnable", "Running", 0);
		assert_non_null(run);
		int64_t p = run->p, m = run->m;
		char *tg = transitions(&s, "gostate", g), *tp = transitions(&s, "procstate", p);
		expect_str(tg, want_g);
		expect_str(tp, want_p);
		for (int k = 0; k < steals; k++) {
			const struct tline *st = find_tr(&s, "procstate", p, "Running", "Idle", k);
			assert_non_null(st);
			assert_true(st->m != m && st->m >= 0);
			assert_int_equal(st->g, -1);
			assert_int_equal(st->p, -1);
		}
		assert_true(gsum_field(&s, g, "syscall_ns") > 0);
		free(tg);
		free(tp);
		tsum_free(&s);
	}
	unlink(path);
}

#define G_START "NotExist>Runnable@1,Runnable>Running@1"
#define P_START "Undetermined>Idle@1,Idle>Running@1"

static void test_short(void **state)
{
	(void)state;
	char *path = run("sys-short", "bebe", 0);
	check(path, G_START ",Running>Syscall@1,Syscall>Running@1,Running>Syscall@1,Syscall>Running@1"
	            ",Running>NotExist@1",
	      P_START ",Running>Idle@1", 0);
	free(path);
}

static void test_gen_boundary_bare_m(void **state)
{
	(void)state;
	char *path = run("sys-boundary", "bwe", 1);
	check(path, G_START ",Running>Syscall@1,Syscall>Runnable@2,Runnable>Running@2,Running>NotExist@2",
	      P_START ",Running>Idle@2,Idle>Running@2,Running>Idle@2", 1);
	free(path);
}

static void test_sitting_in_syscall(void **state)
{
	(void)state;
	char *path = run("sys-sitting", "bwe", 3);
	check(path, G_START ",Running>Syscall@1,Syscall>Runnable@4,Runnable>Running@4,Running>NotExist@4",
	      P_START ",Running>Idle@2,Idle>Running@4,Running>Idle@4", 1);
	free(path);
}

static void test_ambiguous(void **state)
{
	(void)state;
	char *path = run("sys-ambiguous", "bebwe", 1);
	check(path, G_START ",Running>Syscall@1,Syscall>Running@1,Running>Syscall@1,Syscall>Runnable@2"
	            ",Runnable>Running@2,Running>NotExist@2",
	      P_START ",Running>Idle@2,Idle>Running@2,Running>Idle@2", 1);
	free(path);
}

static void test_two_boundaries_two_steals(void **state)
{
	(void)state;
	char *path = run("sys-twice", "bwebwe", 1);
	check(path, G_START ",Running>Syscall@1,Syscall>Runnable@2,Runnable>Running@2,Running>Syscall@2"
	            ",Syscall>Runnable@3,Runnable>Running@3,Running>NotExist@3",
	      P_START ",Running>Idle@2,Idle>Running@2,Running>Idle@3,Idle>Running@3,Running>Idle@3", 2);
	free(path);
}

static void test_nested_and_annotations_inside(void **state)
{
	(void)state;
	char *path = run("sys-nested", "bblelwe", 1);
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[r], &s), 0);
		for (size_t i = 0; i < s.n; i++)
			if (!strcmp(s.lines[i].kind, "log"))
				assert_string_not_equal(tl_get(&s.lines[i], "msg"), "inside");
		tsum_free(&s);
	}
	check(path, G_START ",Running>Syscall@1,Syscall>Runnable@2,Runnable>Running@2,Running>NotExist@2",
	      P_START ",Running>Idle@2,Idle>Running@2,Running>Idle@2", 1);
	free(path);
}

static void test_exit_inside_after_steal(void **state)
{
	(void)state;
	char *path = run("sys-exit", "bw", 2);
	check(path, G_START ",Running>Syscall@1,Syscall>Runnable@3,Runnable>Running@3,Running>NotExist@3",
	      P_START ",Running>Idle@2,Idle>Running@3,Running>Idle@3", 1);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short),
		cmocka_unit_test(test_gen_boundary_bare_m),
		cmocka_unit_test(test_sitting_in_syscall),
		cmocka_unit_test(test_ambiguous),
		cmocka_unit_test(test_two_boundaries_two_steals),
		cmocka_unit_test(test_nested_and_annotations_inside),
		cmocka_unit_test(test_exit_inside_after_steal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
