/*
 * The API gaps a real program hit (issue 11, part 3), each judged by what
 * Go's reader saw:
 *  - gotrace_logf formats the message (and truncates it at the format's
 *    1024-byte limit);
 *  - gotrace_thread_entry / _entry_name: threads started through one
 *    trampoline are grouped by the function (or name) they declare, in Go's
 *    goroutine summary; a thread that declares nothing keeps the
 *    trampoline;
 *  - gotrace_go_create_fn: an explicit goroutine is grouped under its
 *    entry function, one created by name under the name;
 *  - GOTRACE_REGION ends its region when the block is left by any path,
 *    innermost first; gotrace_region_close ends a handle's region once.
 */
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

#include "tracecheck.h"

/* ------------------------------------------------------------- threads */

struct job {
	void (*fn)(const char *);
	const char *who;
	int how; /* 0: nothing declared, 1: entry function, 2: entry name */
};

/* noinline: distinct functions the summary can name. */
__attribute__((noinline)) static void work_alpha(const char *who)
{
	gotrace_logf(0, "who", "%s", who);
}

__attribute__((noinline)) static void work_beta(const char *who)
{
	gotrace_logf(0, "who", "%s", who);
}

/* The trampoline every thread starts in, as a pool library's would. */
__attribute__((noinline)) static void *pool_trampoline(void *arg)
{
	struct job *j = arg;
	if (j->how == 1)
		gotrace_thread_entry(j->fn);
	else if (j->how == 2)
		gotrace_thread_entry_name("pool.named_worker");
	j->fn(j->who);
	return NULL;
}

/* ----------------------------------------------------------- regions */

static int scoped(int early)
{
	GOTRACE_REGION(0, "outer");
	{
		GOTRACE_REGION(0, "inner");
		if (early)
			return 1; /* both end here, inner first */
	}
	gotrace_log(0, "scoped", "after inner");
	return 0;
}

/* ---------------------------------------------------------------- test */

static const char *gsum_name(const struct tsum *s, int64_t gid)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->lines[i].kind, "gsum") && tl_int(&s->lines[i], "id") == gid)
			return tl_get(&s->lines[i], "name");
	return NULL;
}

static void api_extras(void **state)
{
	(void)state;
	char *path = tmp_trace_path("api-extras");
	assert_int_equal(gotrace_start_path(path, NULL), 0);

	gotrace_logf(0, "fmt", "n=%d s=%s x=%#x", 42, "str", 255);
	char big[1500];
	memset(big, 'y', sizeof big - 1);
	big[sizeof big - 1] = 0;
	gotrace_logf(0, "fmt", "%s-tail", big);

	struct job jobs[] = {
		{ work_alpha, "alpha", 1 }, { work_beta, "beta", 1 },
		{ work_alpha, "named", 2 }, { work_beta, "plain", 0 },
	};
	for (size_t i = 0; i < 4; i++) {
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, pool_trampoline, &jobs[i]), 0);
		pthread_join(th, NULL);
	}

	/* Explicit goroutines: by entry function and by name. */
	gotrace_goroutine_t xf = gotrace_go_create_fn(work_beta, "fallback");
	gotrace_goroutine_t xn = gotrace_go_create("coro.by_name");
	gotrace_go_start(xf);
	gotrace_logf(0, "who", "%s", "xg_fn");
	gotrace_go_stop(xf);
	gotrace_go_start(xn);
	gotrace_logf(0, "who", "%s", "xg_name");
	gotrace_go_stop(xn);
	gotrace_go_destroy(xf);
	gotrace_go_destroy(xn);

	assert_int_equal(scoped(1), 1);
	assert_int_equal(scoped(0), 0);
	gotrace_region_t r = gotrace_region_open(0, "handle");
	gotrace_region_close(&r);
	gotrace_region_close(&r); /* closed already: nothing */

	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);

	int fmt_logs = 0;
	const char *names[6] = { 0 };
	const char *who[6] = { "alpha", "beta", "named", "plain", "xg_fn", "xg_name" };
	int outer_b = 0, outer_e = 0, inner_b = 0, inner_e = 0, handle_b = 0, handle_e = 0;
	int inner_first = 1, open_inner = 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (!strcmp(l->kind, "log") && !strcmp(tl_get(l, "cat"), "fmt")) {
			const char *m = tl_get(l, "msg");
			if (fmt_logs == 0)
				assert_string_equal(m, "n=42 s=str x=0xff");
			else
				assert_int_equal(strlen(m), 1024); /* truncated at the limit */
			fmt_logs++;
		}
		if (!strcmp(l->kind, "log") && !strcmp(tl_get(l, "cat"), "who"))
			for (int k = 0; k < 6; k++)
				if (!strcmp(tl_get(l, "msg"), who[k]))
					names[k] = gsum_name(&s, l->g);
		if (!strcmp(l->kind, "regionbegin") || !strcmp(l->kind, "regionend")) {
			int b = l->kind[6] == 'b';
			const char *n = tl_get(l, "name");
			if (!strcmp(n, "outer")) {
				b ? outer_b++ : outer_e++;
				if (!b && open_inner)
					inner_first = 0;
			} else if (!strcmp(n, "inner")) {
				b ? inner_b++ : inner_e++;
				open_inner += b ? 1 : -1;
			} else if (!strcmp(n, "handle")) {
				b ? handle_b++ : handle_e++;
			}
		}
	}
	assert_int_equal(fmt_logs, 2);
	for (int k = 0; k < 6; k++)
		printf("thread %s: goroutine named %s\n", who[k], names[k] ? names[k] : "(none)");
	assert_non_null(names[0]);
	assert_non_null(strstr(names[0], "work_alpha"));
	assert_non_null(names[1]);
	assert_non_null(strstr(names[1], "work_beta"));
	assert_non_null(names[2]);
	assert_string_equal(names[2], "pool.named_worker");
	assert_non_null(names[3]);
	assert_non_null(strstr(names[3], "pool_trampoline"));
	assert_non_null(names[4]);
	assert_string_equal(names[4], "work_beta");
	assert_non_null(names[5]);
	assert_string_equal(names[5], "coro.by_name");
	assert_int_equal(outer_b, 2);
	assert_int_equal(outer_e, 2);
	assert_int_equal(inner_b, 2);
	assert_int_equal(inner_e, 2);
	assert_true(inner_first);
	assert_int_equal(handle_b, 1);
	assert_int_equal(handle_e, 1);
	tsum_free(&s);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(api_extras),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
