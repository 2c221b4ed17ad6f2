/*
 * The event stream itself: for valid traces (libgotrace's, the Go runtime's,
 * Go's own test traces) the C reader delivers the same events as Go 1.23's
 * reader, in the same order, with the same times and the same scheduling
 * context (goroutine, thread, proc) -- compared line by line with
 * `tracecheck -summary` (which prints one line per event, Syncs included).
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readtest.h"
#include "tracecheck.h"

static char *dir;

static int64_t sid(uint64_t v)
{
	return (int64_t)v;
}

struct tup {
	int sync;
	int64_t g, m, p;
};

static int cmp_tup(const void *a, const void *b)
{
	const struct tup *x = a, *y = b;
	if (x->sync != y->sync)
		return x->sync - y->sync;
	if (x->g != y->g)
		return x->g < y->g ? -1 : 1;
	if (x->m != y->m)
		return x->m < y->m ? -1 : 1;
	if (x->p != y->p)
		return x->p < y->p ? -1 : 1;
	return 0;
}

/* Returns the number of events that differ (0: identical streams).  Go
 * 1.23 puts events with equal timestamps in map order (it differs between
 * runs of Go itself): if the streams differ, they must be the same multiset
 * of (Sync or not, goroutine, thread, proc). */
static size_t compare_stream(const char *label, const char *path)
{
	struct tsum s;
	(void)tracecheck_bin("go1.23"); /* current with our tools/tracecheck */
	if (tsum_load(path, "go1.23", &s) != 0) {
		fprintf(stderr, "%s: rejected by Go 1.23\n", label);
		return 1;
	}
	struct buf t;
	assert_int_equal(read_file(path, &t), 0);
	struct gtr_error e;
	struct gtr_reader *r = gtr_open(t.p, t.n, NULL, &e);
	assert_non_null(r);
	size_t i = 0, bad = 0, n = 0, dl = 0;
	char diffs[2048] = "";
	struct gtr_event ev;
	int rc;
	struct tup *ct = calloc(s.n + 1, sizeof *ct), *gt = calloc(s.n + 1, sizeof *gt);
	size_t nct = 0, ngt = 0;
	for (size_t k = 0; k < s.n; k++)
		if (strcmp(s.lines[k].kind, "gsum") && strcmp(s.lines[k].kind, "end"))
			gt[ngt++] = (struct tup){ !strcmp(s.lines[k].kind, "sync"), s.lines[k].g, s.lines[k].m,
						  s.lines[k].p };
	while ((rc = gtr_next_event(r, &ev, NULL)) == GTR_OK) {
		while (i < s.n && (!strcmp(s.lines[i].kind, "gsum") || !strcmp(s.lines[i].kind, "end")))
			i++;
		n++;
		if (nct < s.n)
			ct[nct++] = (struct tup){ ev.type == GTR_EV_SYNC, sid(ev.g), sid(ev.m), sid(ev.p) };
		if (i >= s.n) {
			bad++;
			continue;
		}
		const struct tline *l = &s.lines[i++];
		bool sync = ev.type == GTR_EV_SYNC;
		if ((sync != !strcmp(l->kind, "sync")) || l->t != ev.time_ns || l->g != sid(ev.g) ||
		    l->m != sid(ev.m) || l->p != sid(ev.p)) {
			if (bad++ < 3 && dl < sizeof diffs)
				dl += (size_t)snprintf(diffs + dl, sizeof diffs - dl,
					"%s: event %zu: Go: %s t=%" PRId64 " g=%" PRId64 " m=%" PRId64 " p=%" PRId64
					"; C: %s t=%" PRId64 " g=%" PRId64 " m=%" PRId64 " p=%" PRId64 "\n",
					label, n, l->kind, l->t, l->g, l->m, l->p,
					sync ? "Sync" : gtr_event_name(ev.type) ? gtr_event_name(ev.type) : "CPUSample",
					ev.time_ns, sid(ev.g), sid(ev.m), sid(ev.p));
		}
	}
	assert_int_equal(rc, GTR_END);
	while (i < s.n && (!strcmp(s.lines[i].kind, "gsum") || !strcmp(s.lines[i].kind, "end")))
		i++;
	if (i != s.n) {
		fprintf(stderr, "%s: Go delivered %zu more events\n", label, s.n - i);
		bad++;
	}
	gtr_close(r);
	buf_free(&t);
	tsum_free(&s);
	bool ties = false;
	if (bad && nct == ngt && n == nct) {
		qsort(ct, nct, sizeof *ct, cmp_tup);
		qsort(gt, ngt, sizeof *gt, cmp_tup);
		ties = !memcmp(ct, gt, nct * sizeof *ct);
	}
	free(ct);
	free(gt);
	if (bad && !ties)
		fputs(diffs, stderr);
	printf("%s: %zu events%s\n", label, n,
	       !bad   ? ", same order, times and contexts as Go 1.23"
	       : ties ? ", same events and contexts as Go 1.23; events with equal timestamps in another order "
			"(Go 1.23 itself varies there)"
		      : " DIFFER");
	return ties ? 0 : bad;
}

static void test_events_lib_and_runtime(void **state)
{
	(void)state;
	char *p;
	if (asprintf(&p, "%s/t.trace", dir) < 0)
		abort();
	make_lib_trace(p, 4, 20, 3);
	size_t bad = compare_stream("libgotrace trace", p);
	make_go_trace(p);
	bad += compare_stream("Go 1.23 runtime trace", p);
	unlink(p);
	free(p);
	assert_int_equal(bad, 0);
}

static void test_events_go_testdata(void **state)
{
	(void)state;
	glob_t gl;
	char *pat;
	if (asprintf(&pat, "%s/src/internal/trace/testdata/tests/*.test", env_need("GOTRACE_GO123_ROOT")) < 0)
		abort();
	assert_int_equal(glob(pat, 0, NULL, &gl), 0);
	free(pat);
	size_t bad = 0, ntraces = 0;
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		struct buf expect = { 0 };
		run(&expect, "awk '/^-- expect --$/{f=1;next} /^-- /{f=0} f' '%s'", gl.gl_pathv[i]);
		char *bin;
		if (asprintf(&bin, "%s/go.bin", dir) < 0)
			abort();
		assert_int_equal(run(NULL, "awk '/^-- trace --$/{f=1;next} /^-- /{f=0} f' '%s' | '%s' text2bytes > '%s'",
				     gl.gl_pathv[i], env_need("GOTRACE_GOTRACERAW"), bin),
				 0);
		const char *name = strrchr(gl.gl_pathv[i], '/') + 1;
		if (!strncmp((char *)expect.p, "SUCCESS", 7)) {
			bad += compare_stream(name, bin);
			ntraces++;
		} else {
			/* A trace Go rejects: the C reader rejects it the same way. */
			struct buf t;
			read_file(bin, &t);
			struct digest c, g;
			digest_c(t.p, t.n, &c);
			char *files[1] = { bin };
			digest_go("go1.23", files, 1, &g);
			char why[128];
			enum agree a = digest_agree(&c, &g, true, why, sizeof why);
			printf("%s: rejected by both (%s)%s\n", name, c.msg, a == AGREE_EXACT ? "" : " DIFFER");
			if (a != AGREE_EXACT) {
				digest_print("C     ", &c);
				digest_print("go1.23", &g);
				bad++;
			}
			buf_free(&t);
		}
		unlink(bin);
		free(bin);
		buf_free(&expect);
	}
	globfree(&gl);
	printf("Go's test traces: %zu valid ones read exactly as Go 1.23 reads them\n", ntraces);
	assert_int_equal(bad, 0);
}

static int setup(void **state)
{
	(void)state;
	dir = tmp_dir("events");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rmdir(dir);
	free(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_lib_and_runtime),
		cmocka_unit_test(test_events_go_testdata),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
