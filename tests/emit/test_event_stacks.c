/*
 * Stacks on events per class (issue 5 item 4): with GOTRACE_STACK_REGION,
 * _LOG and _GOROUTINE, region begins, logs, goroutine creations
 * (gotrace_go_create: the creator's stack) and task begins carry the
 * caller's stack (DWARF unwind, symbolised by the flusher); classes
 * not asked for carry none.  Read from Go's own raw text dump (gotraceraw
 * bytes2text) of a one-generation trace: the event's stack id, the frames
 * of that stack, their function names.  Every trace is judged by all
 * judges too.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tracecheck.h"

static gotrace_goroutine_t made;

static __attribute__((noinline)) void stack_site(void)
{
	uint64_t t = gotrace_task_begin(0, "tsk");
	gotrace_region_begin(t, "reg");
	gotrace_log(t, "cat", "msg");
	/* the literal fast path takes its stacks out of line */
	gotrace_region_begin_lit(t, "reglit");
	gotrace_log_lit(t, "catlit", "msg");
	gotrace_region_end_lit(t, "reglit");
	made = gotrace_go_create("child");
	gotrace_region_end(t, "reg");
	gotrace_task_end(t);
	__asm__ volatile("" ::: "memory");
}

/* The raw dump, one generation: strings, stacks (func names of frames),
 * and the stack id of the first event of each kind we look for. */
#define MAXID 4096
struct raw {
	char *str[MAXID];
	char funcs[MAXID][256]; /* stack id -> " f1 f2 ... " */
	long ev_stack[6];       /* UserTaskBegin, UserRegionBegin, UserLog, GoCreate(child), the _lit UserRegionBegin and UserLog */
};

static void raw_load(const char *path, uint64_t child, struct raw *r)
{
	memset(r, 0, sizeof *r);
	for (int i = 0; i < 6; i++)
		r->ev_stack[i] = -1;
	const char *dir = getenv("GOTRACE_TRACECHECK_DIR");
	assert_non_null(dir);
	char *cmd;
	assert_true(asprintf(&cmd, "'%s/gotraceraw-go1.23' bytes2text < '%s'", dir, path) > 0);
	FILE *f = popen(cmd, "r");
	free(cmd);
	assert_non_null(f);
	static char line[1 << 16];
	long sid = -1, stk = -1;
	int nf = 0;
	static long frame_func[MAXID][64];
	static int nframes[MAXID];
	memset(nframes, 0, sizeof nframes);
	while (fgets(line, sizeof line, f)) {
		long a, b;
		unsigned long long u;
		char *p;
		if (sscanf(line, "String id=%ld", &a) == 1) {
			sid = a;
			stk = -1;
		} else if ((p = strstr(line, "data=\"")) && sid > 0 && sid < MAXID) {
			p += 6;
			char *q = strrchr(p, '"');
			if (q)
				*q = 0;
			r->str[sid] = strdup(p);
			sid = -1;
		} else if (sscanf(line, "Stack id=%ld nframes=%ld", &a, &b) == 2) {
			stk = a < MAXID ? a : -1;
			nf = 0;
		} else if ((p = strstr(line, "\tpc=")) && stk >= 0 &&
		           sscanf(p, "\tpc=%llu func=%ld", &u, &a) == 2 && nf < 64) {
			frame_func[stk][nf++] = a;
			nframes[stk] = nf;
		} else if (sscanf(line, "UserTaskBegin dt=%*d task=%*d parent_task=%*d name_string=%*d stack=%ld", &a) == 1) {
			if (r->ev_stack[0] < 0)
				r->ev_stack[0] = a;
		} else if (sscanf(line, "UserRegionBegin dt=%*d task=%*d name_string=%*d stack=%ld", &a) == 1) {
			if (r->ev_stack[1] < 0)
				r->ev_stack[1] = a;
			else if (r->ev_stack[4] < 0)
				r->ev_stack[4] = a; /* _lit */
		} else if (sscanf(line, "UserLog dt=%*d task=%*d key_string=%*d value_string=%*d stack=%ld", &a) == 1) {
			/* only stack_site logs in this program */
			if (r->ev_stack[2] < 0)
				r->ev_stack[2] = a;
			else if (r->ev_stack[5] < 0)
				r->ev_stack[5] = a; /* _lit */
		} else if (sscanf(line, "GoCreate dt=%*d new_g=%llu new_stack=%*d stack=%ld", &u, &a) == 2) {
			if (u == child)
				r->ev_stack[3] = a;
		}
	}
	pclose(f);
	for (int s = 0; s < MAXID; s++) {
		size_t len = 0;
		for (int k = 0; k < nframes[s]; k++) {
			long fi = frame_func[s][k];
			const char *fn = fi > 0 && fi < MAXID && r->str[fi] ? r->str[fi] : "?";
			len += (size_t)snprintf(r->funcs[s] + len, sizeof r->funcs[s] - len, " %s", fn);
			if (len >= sizeof r->funcs[s])
				break;
		}
	}
}

static void raw_free(struct raw *r)
{
	for (int i = 0; i < MAXID; i++)
		free(r->str[i]);
}

static char *trace_with(int classes, uint64_t *child)
{
	char *path = tmp_trace_path("evstk");
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 10ull * 1000 * 1000 * 1000;
	o.event_stacks = classes;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	stack_site();
	*child = made.id_;
	gotrace_go_start(made);
	gotrace_go_destroy(made);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	return path;
}

static void expect_site(const struct raw *r, int i, int want)
{
	long s = r->ev_stack[i];
	assert_true(s >= 0); /* the event is there */
	if (!want) {
		assert_int_equal(s, 0);
		return;
	}
	assert_true(s > 0 && s < MAXID);
	if (!strstr(r->funcs[s], " stack_site"))
		fprintf(stderr, "event %d: stack %ld:%s\n", i, s, r->funcs[s]);
	assert_non_null(strstr(r->funcs[s], " stack_site"));
	assert_non_null(strstr(r->funcs[s], " test_")); /* and its caller */
}

static void test_classes(void **state)
{
	(void)state;
	static const struct {
		int classes, task, region, log, create;
	} cases[] = {
		{ GOTRACE_STACK_REGION | GOTRACE_STACK_LOG | GOTRACE_STACK_GOROUTINE, 1, 1, 1, 1 },
		{ GOTRACE_STACK_REGION, 0, 1, 0, 0 },
		{ GOTRACE_STACK_LOG, 0, 0, 1, 0 },
		{ GOTRACE_STACK_GOROUTINE, 1, 0, 0, 1 },
		{ GOTRACE_STACK_BLOCK | GOTRACE_STACK_SYSCALL, 0, 0, 0, 0 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		uint64_t child;
		char *path = trace_with(cases[k].classes, &child);
		struct raw *r = calloc(1, sizeof *r);
		raw_load(path, child, r);
		expect_site(r, 0, cases[k].task);
		expect_site(r, 1, cases[k].region);
		expect_site(r, 2, cases[k].log);
		expect_site(r, 3, cases[k].create);
		expect_site(r, 4, cases[k].region);
		expect_site(r, 5, cases[k].log);
		raw_free(r);
		free(r);
		unlink(path);
		free(path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
