/*
 * gotrace-read pprof, judged by Go's own pprof tool.
 *
 * This program traces itself: one thread runs a task "job" of rounds, each
 * a region "parse" then a region "compute" burning 70% and 30% of the
 * round's CPU time (spinning until the thread CPU clock says so; round
 * lengths vary at random, 2 to 6 ms, so that no sampling period can alias
 * with them), ~2 s of CPU at 1000 Hz (perf source; the library falls back
 * to per-thread timers by itself where perf_event_open is refused).  The
 * burning happens inside an explicit goroutine started from burner_entry,
 * so that --entry has a name to find.  Then, through `go tool pprof` of
 * Go 1.23 (no Go: the suite does not configure; a failing Go command fails
 * the test):
 *  - the whole profile holds as many samples as the trace has CPUSample
 *    events (counted in `gotrace-read dump`), and -top names burn_parse and
 *    burn_compute;
 *  - --region parse / --region compute: parse's share of the two is within
 *    3 points of 70% (and of the share the thread CPU clock measured); each
 *    profile is its own function's at >= 90%;
 *  - --task job (by name and by id) = parse + compute (every region of the
 *    task is one of them); --entry burner_entry covers them too; --thread
 *    and --from/--to give subsets;
 *  - an empty filter (--region nosuch) prints why on stderr, writes
 *    nothing and exits with status 7.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "readtest.h"

static char *dir, trace[512];
static uint64_t task_id;
static long burner_tid;
static double cpu_parse, cpu_compute; /* seconds, thread CPU clock */

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static volatile uint64_t sink;

/* Spin until the thread has used ns more CPU time.  Two functions of the
 * same body, never inlined or merged, so that the profile can tell them
 * apart. */
__attribute__((noinline, noipa)) void burn_parse(uint64_t ns)
{
	uint64_t end = thread_cpu_ns() + ns, x = sink | 1;
	do {
		for (int i = 0; i < 16384; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
	} while (thread_cpu_ns() < end);
	sink = x;
}

__attribute__((noinline, noipa)) void burn_compute(uint64_t ns)
{
	uint64_t end = thread_cpu_ns() + ns, x = sink | 2;
	do {
		for (int i = 0; i < 16384; i++) {
			x ^= x << 11;
			x ^= x >> 9;
			x ^= x << 19;
		}
	} while (thread_cpu_ns() < end);
	sink = x;
}

/* The goroutine's start function: the name --entry selects.  Never called
 * (gotrace_go_create_fn only symbolises it). */
__attribute__((noinline, noipa)) void burner_entry(void)
{
	sink++;
}

static void run_workload(double seconds)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = 1000;
	o.cpu_source = GOTRACE_CPU_PERF;
	if (gotrace_start_path(trace, &o) != 0) {
		fprintf(stderr, "FATAL: gotrace_start_path: %s\n", gotrace_last_error());
		exit(99);
	}
	printf("cpu source note: %s\n", *gotrace_start_notes() ? gotrace_start_notes() : "perf");
	burner_tid = gettid();
	gotrace_goroutine_t g = gotrace_go_create_fn(burner_entry, "burner");
	gotrace_go_start(g);
	task_id = gotrace_task_begin(0, "job");
	uint64_t budget = (uint64_t)(seconds * 1e9), used = 0, rnd = 0x9E3779B97F4A7C15ULL;
	uint64_t tp = 0, tc = 0;
	while (used < budget) {
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		uint64_t round = 2000000 + rnd % 4000000;
		gotrace_region_begin(task_id, "parse");
		uint64_t c0 = thread_cpu_ns();
		burn_parse(round * 7 / 10);
		uint64_t c1 = thread_cpu_ns();
		gotrace_region_end(task_id, "parse");
		gotrace_region_begin(task_id, "compute");
		uint64_t c2 = thread_cpu_ns();
		burn_compute(round * 3 / 10);
		uint64_t c3 = thread_cpu_ns();
		gotrace_region_end(task_id, "compute");
		tp += c1 - c0;
		tc += c3 - c2;
		used += round;
	}
	gotrace_task_end(task_id);
	gotrace_go_destroy(g);
	if (gotrace_stop() != 0) {
		fprintf(stderr, "FATAL: gotrace_stop: %s\n", gotrace_last_error());
		exit(99);
	}
	cpu_parse = tp / 1e9;
	cpu_compute = tc / 1e9;
}

/* ------------------------------------------------------------ tools */

/* gotrace-read pprof ARGS TRACE OUT; returns the exit status, its stderr in
 * *err (may be NULL). */
static int pprof(const char *args, const char *out, struct buf *err)
{
	return run(err, "'%s' pprof %s '%s' '%s' 2>&1 >/dev/null", env_need("GOTRACE_READ_TOOL"), args, trace,
		   out);
}

/* `go tool pprof FLAGS FILE` of Go 1.23; its output in *out. */
static void go_pprof(const char *flags, const char *file, struct buf *out)
{
	int rc = run(out, "GOTOOLCHAIN=local GOFLAGS= GOCACHE='%s' '%s/bin/go' tool pprof %s '%s' 2>/dev/null",
		     env_need("GOTRACE_GOCACHE"), env_need("GOTRACE_GO123_ROOT"), flags, file);
	if (rc != 0)
		fail_msg("go tool pprof %s %s: exit status %d", flags, file, rc);
}

/* Samples in a profile: the sum of the samples/count column of
 * `go tool pprof -raw`. */
static long count_samples(const char *file)
{
	struct buf o = { 0 };
	go_pprof("-raw", file, &o);
	long n = 0;
	bool in = false;
	for (char *line = strtok((char *)o.p, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "samples/count", 13)) {
			in = true;
			continue;
		}
		long v;
		if (in && sscanf(line, " %ld", &v) == 1 && strchr(line, ':'))
			n += v;
		else if (in && !strchr(line, ':'))
			in = false;
	}
	buf_free(&o);
	return n;
}

/* Samples whose leaf (flat) is func, from `go tool pprof -top` with the
 * samples/count sample index. */
static long flat_of(const char *file, const char *func)
{
	struct buf o = { 0 };
	go_pprof("-top -sample_index=samples -nodecount=1000", file, &o);
	long n = -1;
	for (char *line = strtok((char *)o.p, "\n"); line; line = strtok(NULL, "\n")) {
		long flat;
		char name[256];
		if (sscanf(line, " %ld %*s %*s %*s %*s %255s", &flat, name) == 2 && !strcmp(name, func))
			n = flat;
	}
	buf_free(&o);
	return n;
}

static long trace_samples(void)
{
	struct buf o = { 0 };
	int rc = run(&o, "'%s' dump '%s' | grep -c '^CPUSample '", env_need("GOTRACE_READ_TOOL"), trace);
	long n = rc == 0 ? strtol((char *)o.p, NULL, 10) : -1;
	buf_free(&o);
	return n;
}

static char *path(const char *name)
{
	static char p[8][600];
	static int i;
	i = (i + 1) % 8;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

/* ------------------------------------------------------------ tests */

static void whole(void **st)
{
	(void)st;
	assert_int_equal(pprof("", path("all.pb.gz"), NULL), 0);
	long n = count_samples(path("all.pb.gz")), t = trace_samples();
	printf("FIGURE whole trace: %ld samples in the profile, %ld CPUSample events\n", n, t);
	assert_true(t > 1000);
	assert_int_equal(n, t);
	struct buf o = { 0 };
	go_pprof("-top", path("all.pb.gz"), &o);
	bool p = strstr((char *)o.p, "burn_parse") != NULL, c = strstr((char *)o.p, "burn_compute") != NULL;
	buf_free(&o);
	assert_true(p);
	assert_true(c);
}

static void regions(void **st)
{
	(void)st;
	assert_int_equal(pprof("--region parse", path("parse.pb.gz"), NULL), 0);
	assert_int_equal(pprof("--region=compute", path("compute.pb.gz"), NULL), 0);
	long np = count_samples(path("parse.pb.gz")), nc = count_samples(path("compute.pb.gz"));
	long fp = flat_of(path("parse.pb.gz"), "burn_parse"), fc = flat_of(path("compute.pb.gz"), "burn_compute");
	double share = (double)np / (double)(np + nc), truth = cpu_parse / (cpu_parse + cpu_compute);
	printf("FIGURE regions: parse %ld samples (burn_parse leaf %ld), compute %ld (burn_compute leaf %ld); "
	       "parse share %.4f, thread CPU clock %.4f (%.3f s / %.3f s), target 0.70\n",
	       np, fp, nc, fc, share, truth, cpu_parse, cpu_compute);
	assert_true(np > 0 && nc > 0);
	if (share < 0.67 || share > 0.73 || share - truth > 0.03 || truth - share > 0.03)
		fail_msg("parse share %.4f: not within 3 points of 0.70 and of %.4f", share, truth);
	/* Each region's profile is its own burn function's (the clock reads
	 * inside it show as its callees, not as leaves of it). */
	struct buf o = { 0 };
	go_pprof("-top -sample_index=samples", path("parse.pb.gz"), &o);
	bool other = strstr((char *)o.p, "burn_compute") != NULL;
	buf_free(&o);
	assert_false(other);
	assert_true(fp > 0 && fc > 0);

	/* The task holds exactly the two regions' samples, by name and by id;
	 * the entry function holds them too (and what ran around them). */
	char args[64];
	assert_int_equal(pprof("--task job", path("task.pb.gz"), NULL), 0);
	snprintf(args, sizeof args, "--task %llu", (unsigned long long)task_id);
	assert_int_equal(pprof(args, path("taskid.pb.gz"), NULL), 0);
	long nt = count_samples(path("task.pb.gz")), ni = count_samples(path("taskid.pb.gz"));
	assert_int_equal(pprof("--entry burner_entry", path("entry.pb.gz"), NULL), 0);
	long ne = count_samples(path("entry.pb.gz")), all = trace_samples();
	printf("FIGURE task job %ld (by id %ld), entry burner_entry %ld, all %ld\n", nt, ni, ne, all);
	assert_int_equal(nt, np + nc);
	assert_int_equal(ni, np + nc);
	assert_true(ne >= np + nc && ne <= all);
	/* Combined filters: the region and the task together. */
	assert_int_equal(pprof("--task job --region parse", path("both.pb.gz"), NULL), 0);
	assert_int_equal(count_samples(path("both.pb.gz")), np);
}

/* The CPU samples of complete generations whose time since the trace's
 * first event is in [from, to] ns, counted with the reader (the truth the
 * time filters must give exactly, however the burner was scheduled). */
static long samples_between(int64_t from, int64_t to)
{
	struct buf t;
	assert_int_equal(read_file(trace, &t), 0);
	struct gtr_error e;
	struct gtr_reader *r = gtr_open(t.p, t.n, NULL, &e);
	assert_non_null(r);
	struct gtr_event ev;
	int64_t t0 = INT64_MAX;
	long n = 0, pend = 0;
	while (gtr_next_event(r, &ev, NULL) == GTR_OK) {
		if (ev.type == GTR_EV_SYNC) {
			n += pend;
			pend = 0;
			continue;
		}
		if (t0 == INT64_MAX)
			t0 = ev.time_ns;
		int64_t rel = ev.time_ns - t0;
		if (ev.type == GTR_EV_CPUSAMPLE && rel >= from && rel <= to)
			pend++;
	}
	gtr_close(r);
	buf_free(&t);
	return n;
}

static void threads_and_time(void **st)
{
	(void)st;
	char args[64];
	long all = trace_samples();
	snprintf(args, sizeof args, "--thread %ld", burner_tid);
	assert_int_equal(pprof(args, path("thread.pb.gz"), NULL), 0);
	long nth = count_samples(path("thread.pb.gz"));
	assert_int_equal(pprof("--from 0 --to 500ms", path("early.pb.gz"), NULL), 0);
	assert_int_equal(pprof("--from 0.5", path("late.pb.gz"), NULL), 0);
	long ne = count_samples(path("early.pb.gz")), nl = count_samples(path("late.pb.gz"));
	printf("FIGURE thread %ld: %ld of %ld; first 0.5 s %ld, after %ld\n", burner_tid, nth, all, ne, nl);
	assert_true(nth > 0.9 * all && nth <= all);
	/* Exactly the samples in each window (a sample exactly at 0.5 s is in
	 * both); how many fall in the first 0.5 s depends on how much CPU the
	 * burner got then, which on a loaded machine can be little. */
	long want_e = samples_between(0, 500000000), want_l = samples_between(500000000, INT64_MAX);
	printf("FIGURE windows by the reader: first 0.5 s %ld, after %ld\n", want_e, want_l);
	assert_int_equal(ne, want_e);
	assert_int_equal(nl, want_l);
	assert_true(ne > 0 && nl > 0 && ne < all);
	assert_true(ne + nl >= all && ne + nl <= all + 1);
}

/* One generation of a hand-made trace: thread 1 runs goroutine 1 and takes
 * one CPU sample at pc 0x1000, which this generation's tables call
 * `work` in `file`, line `line`. */
static void sym_gen(struct buf *t, uint64_t gen, const char *file, uint64_t line)
{
	const uint64_t none = UINT64_MAX, base = gen * 1000;
	struct buf p = { 0 };
	ev(&p, 13, 1, 0, 1, END);    /* ProcStatus p=0 Running */
	ev(&p, 25, 1, 1, 1, 2, END); /* GoStatus g=1 m=1 Running */
	batch(t, gen, 1, base, &p);
	buf_free(&p);
	ev(&p, 8, (uint64_t)1000000000, END); /* Frequency */
	batch(t, gen, none, base, &p);
	buf_free(&p);
	ev(&p, 6, END);
	ev(&p, 7, base + 3, 1, 0, 1, 1, END); /* CPUSample m=1 p=0 g=1 stack=1 */
	batch(t, gen, none, base, &p);
	buf_free(&p);
	ev(&p, 2, END);
	ev(&p, 3, 1, 1, 0x1000, 1, 2, line, END); /* stack 1: one frame */
	batch(t, gen, none, base, &p);
	buf_free(&p);
	ev(&p, 4, END);
	str(&p, 1, "work");
	str(&p, 2, file);
	batch(t, gen, none, base, &p);
	buf_free(&p);
}

/* A frame whose line was not resolved yet in an early generation (the
 * emitter then names the module as its file) is the same location and
 * function as in the later generation that has its line: one location,
 * symbolised as the latest generation says. */
static void latest_symbolisation(void **st)
{
	(void)st;
	struct buf t = { 0 };
	buf_put(&t, "go 1.23 trace\0\0\0", 16);
	sym_gen(&t, 1, "/usr/lib/libwork.so", 1);
	sym_gen(&t, 2, "/src/work.c", 42);
	sym_gen(&t, 3, "/src/work.c", 42);
	struct gtr_prof_filter f;
	gtr_prof_filter_init(&f);
	struct gtr_profile pr;
	int rc = gtr_profile_compute(t.p, t.n, &f, &pr);
	if (rc != GTR_END)
		fprintf(stderr, "profile: %s\n", pr.error.msg);
	assert_int_equal(rc, GTR_END);
	assert_int_equal(pr.total_samples, 3);
	assert_int_equal(pr.matched_samples, 3);
	assert_int_equal(pr.nsamples, 1);
	assert_int_equal(pr.samples[0].count, 3);
	assert_int_equal(pr.samples[0].n, 1);
	assert_int_equal(pr.nlocs, 1);
	const struct gtr_prof_loc *l = &pr.locs[pr.stack_locs[pr.samples[0].first]];
	assert_int_equal(l->pc, 0x1000);
	assert_int_equal(l->line, 42);
	assert_string_equal(pr.strings[pr.funcs[l->func].name], "work");
	assert_string_equal(pr.strings[pr.funcs[l->func].file], "/src/work.c");
	gtr_profile_free(&pr);
	buf_free(&t);
}

static void empty(void **st)
{
	(void)st;
	struct buf e = { 0 };
	int rc = pprof("--region nosuch", path("none.pb.gz"), &e);
	printf("empty filter: exit %d: %s", rc, e.p ? (char *)e.p : "");
	bool said = e.p && strstr((char *)e.p, "matched") && strstr((char *)e.p, "--region nosuch");
	buf_free(&e);
	assert_int_equal(rc, 7);
	assert_true(said);
	struct stat sb;
	assert_int_not_equal(stat(path("none.pb.gz"), &sb), 0);
	/* A bad option is a usage error. */
	assert_int_equal(pprof("--bogus 1", path("none.pb.gz"), NULL), 2);
}

int main(void)
{
	dir = tmp_dir("pprof");
	snprintf(trace, sizeof trace, "%s/burn.trace", dir);
	run_workload(2.0);
	printf("trace %s: CPU time parse %.3f s, compute %.3f s\n", trace, cpu_parse, cpu_compute);
	fflush(stdout);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(whole),
		cmocka_unit_test(regions),
		cmocka_unit_test(threads_and_time),
		cmocka_unit_test(empty),
		cmocka_unit_test(latest_symbolisation),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (rc == 0)
		run(NULL, "rm -rf '%s'", dir);
	return rc;
}
