/*
 * The string-literal fast path (issue 14): gotrace_region_begin_lit /
 * _end_lit, GOTRACE_REGION_LIT, gotrace_task_begin_lit, gotrace_log_lit.
 * A call site caches its literal's string id per generation; these tests
 * reuse the same sites across generations (forced flushes), across two
 * sessions and from several threads, and check with Go's reader that every
 * event names the right string -- a stale id would name another string or
 * none (the validators reject an unknown id).  Mixing: a region begun on
 * the fast path ends by name and the other way round.
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
#include <sys/stat.h>
#include <unistd.h>

#include "tracecheck.h"

/* One round of every _lit form; the names differ per call so that a
 * wrong id shows as a wrong name. */
static void round_of_calls(int k)
{
	uint64_t task = gotrace_task_begin_lit(0, "lit-task");
	gotrace_region_begin_lit(task, "lit-a");
	gotrace_log_lit(task, "lit-cat", k % 2 ? "odd" : "even");
	gotrace_region_end_lit(task, "lit-a");
	{
		GOTRACE_REGION_LIT(task, "lit-scoped");
		gotrace_region_begin_lit(task, "lit-inner");
		/* ended by the scoped region's end (innermost first) */
	}
	gotrace_region_begin_lit(0, "mixed-1");
	gotrace_region_end(0, "mixed-1"); /* by name */
	char name[16];
	snprintf(name, sizeof name, "mixed-%d", 2);
	gotrace_region_begin(0, name); /* by a mutable buffer */
	gotrace_region_end_lit(0, "mixed-2");
	gotrace_task_end(task);
}

static void *worker(void *arg)
{
	int n = (int)(intptr_t)arg;
	for (int k = 0; k < n; k++)
		round_of_calls(k);
	return NULL;
}

struct counts {
	int task_lit, reg[6], reg_end[6], cat, other_names;
};

static const char *rnames[6] = { "lit-a", "lit-scoped", "lit-inner", "mixed-1", "mixed-2", "" };

static void count(const char *path, struct counts *c)
{
	memset(c, 0, sizeof *c);
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (!strcmp(l->kind, "regionbegin") || !strcmp(l->kind, "regionend")) {
			int b = l->kind[6] == 'b', k = 0;
			while (k < 5 && strcmp(tl_get(l, "name"), rnames[k]))
				k++;
			if (k == 5)
				c->other_names++;
			else
				b ? c->reg[k]++ : c->reg_end[k]++;
		} else if (!strcmp(l->kind, "taskbegin")) {
			if (!strcmp(tl_get(l, "name"), "lit-task"))
				c->task_lit++;
			else
				c->other_names++;
		} else if (!strcmp(l->kind, "log")) {
			if (!strcmp(tl_get(l, "cat"), "lit-cat"))
				c->cat++;
			else
				c->other_names++;
		}
	}
	tsum_free(&s);
}

static void run_session(const char *tag, int threads, int rounds, int flush_every)
{
	char *path = tmp_trace_path(tag);
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 10ull * 1000 * 1000 * 1000;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	for (int k = 0; k < rounds; k++) {
		round_of_calls(k);
		if (flush_every && k % flush_every == 0)
			assert_int_equal(gotrace_flush(), 0); /* a new generation */
	}
	pthread_t th[4];
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(intptr_t)rounds);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	gotrace_stats st;
	gotrace_get_stats(&st);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	struct counts c;
	count(path, &c);
	int n = rounds * (1 + threads);
	assert_int_equal(c.other_names, 0);
	assert_int_equal(c.task_lit, n);
	assert_int_equal(c.cat, n);
	for (int k = 0; k < 5; k++) {
		assert_int_equal(c.reg[k], n);
		assert_int_equal(c.reg_end[k], n);
	}
	printf("%s: %d rounds, %llu generations\n", tag, n, (unsigned long long)st.generations);
	unlink(path);
	free(path);
}

static void test_sites_across_generations(void **state)
{
	(void)state;
	run_session("lit-gens", 0, 50, 1); /* a generation per round */
}

static void test_sites_across_sessions_and_threads(void **state)
{
	(void)state;
	/* The same static sites, now in later sessions whose generation
	 * numbers follow the first one's, and from threads. */
	run_session("lit-s2", 3, 200, 37);
	run_session("lit-s3", 2, 100, 0);
}

/* Log messages are reused within a generation (event.c, struct gt_msgc):
 * a message logged again from the same address refers to the string
 * record already written.  The cache must never name a stale text: the
 * same buffer rewritten between calls, texts at the cache's length limit
 * and past it, and the same literal across generations and sessions
 * (a reused id whose record is in another generation is rejected by the
 * validators, and a wrong text shows in the messages read back). */
#define MSG_ROUNDS 300
static void expected_msg(int k, char *out, size_t n)
{
	static const char *const fixed[] = {
		"same",
		"exactly-thirty-nine-bytes-long-message!", /* GT_MSGC_LEN */
		"forty-bytes-long-message-one-past-limit!",
		"",
	};
	switch (k % 5) {
	case 0: snprintf(out, n, "buf-%d", k % 7); break; /* one buffer, new texts */
	case 1: snprintf(out, n, "buf-%d", k % 7 == 3 ? 33 : 3); break; /* a prefix of another */
	default: snprintf(out, n, "%s", fixed[(k / 5) % 4]); break;
	}
}

static void log_session(const char *tag, int flush_every)
{
	char *path = tmp_trace_path(tag);
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 10ull * 1000 * 1000 * 1000;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	char buf[64];
	for (int k = 0; k < MSG_ROUNDS; k++) {
		if (k % 5 < 2) {
			expected_msg(k, buf, sizeof buf);
			gotrace_log(0, "c", buf);
		} else {
			/* the literals themselves: the same addresses every round */
			switch ((k / 5) % 4) {
			case 0: gotrace_log_lit(0, "c", "same"); break;
			case 1: gotrace_log_lit(0, "c", "exactly-thirty-nine-bytes-long-message!"); break;
			case 2: gotrace_log(0, "c", "forty-bytes-long-message-one-past-limit!"); break;
			default: gotrace_log(0, "c", ""); break;
			}
		}
		if (flush_every && k % flush_every == flush_every - 1)
			assert_int_equal(gotrace_flush(), 0);
	}
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	int k = 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (strcmp(l->kind, "log"))
			continue;
		assert_true(k < MSG_ROUNDS);
		expected_msg(k, buf, sizeof buf);
		const char *got = tl_get(l, "msg");
		assert_non_null(got);
		if (strcmp(got, buf))
			fail_msg("%s: log %d reads \"%s\", logged \"%s\"", tag, k, got, buf);
		k++;
	}
	assert_int_equal(k, MSG_ROUNDS);
	tsum_free(&s);
	unlink(path);
	free(path);
}

static void test_log_message_cache(void **state)
{
	(void)state;
	log_session("msg-one-gen", 0);
	log_session("msg-gens", 7); /* a generation every 7 logs */
	log_session("msg-gen-each", 1);
	/* A later session: the same literals' cached ids of the earlier
	 * sessions must not be taken for this one's. */
	log_session("msg-s4", 0);

	/* The reuse itself: 10000 more logs of one literal take about the
	 * bytes of the events alone (a record per message would add its 5
	 * bytes of text, a header byte, a length byte and a 3-byte id). */
	long size[2];
	for (int r = 0; r < 2; r++) {
		char *path = tmp_trace_path("msg-bytes");
		assert_int_equal(gotrace_start_path(path, NULL), 0);
		for (int i = 0; i < 1 + 10000 * r; i++)
			gotrace_log_lit(0, "c", "hello");
		assert_int_equal(gotrace_stop(), 0);
		assert_int_equal(judge_trace(path), 0);
		struct stat sb;
		assert_int_equal(stat(path, &sb), 0);
		size[r] = (long)sb.st_size;
		unlink(path);
		free(path);
	}
	long per = (size[1] - size[0]) / 10000;
	printf("msg-bytes: %ld bytes per repeated log\n", per);
	assert_true(per >= 4 && per <= 7);
}

/*
 * The _lit calls' fast path (event.c, lit_enter) handles the common call
 * alone and hands every other case to the general path, which must then
 * write what it always wrote.  Each case below is one of those hand-overs;
 * the counts are exact, per name, and the trace must satisfy the
 * validators (a stale id, an end without its begin or a lost end would
 * fail them).
 */
struct fb_expect {
	const char *name;
	int begins, ends;
};
static const struct fb_expect fb_regions[] = {
	{ "fb-first", 3, 3 },    /* a site's first call in a generation */
	{ "fb-span", 2, 2 },     /* a region open across a generation boundary */
	{ "fb-outer", 1, 1 },    /* ended while not innermost ... */
	{ "fb-inner", 1, 1 },    /* ... which ends this one first */
	{ "fb-task", 1, 1 },     /* an end of another task: not that region */
	{ "fb-none", 0, 0 },     /* an end with nothing open */
	{ "fb-deep", 64, 64 },   /* 70 nested: 6 past the limit, untraced */
	{ "fb-sys", 1, 1 },      /* once outside a syscall bracket, once in */
	{ "fb-named", 2, 2 },    /* after another thread named this one */
	{ "fb-many", 30000, 30000 }, /* batches filling up mid-generation */
	{ "fb-handle", 1, 1 },   /* a handle whose region is not innermost */
	{ "fb-handin", 1, 1 },
};
#define FB_N (sizeof fb_regions / sizeof fb_regions[0])

static void *fb_namer(void *arg)
{
	assert_int_equal(gotrace_thread_name_of(*(pthread_t *)arg, "fb-label"), 0);
	return NULL;
}

static void test_fast_path_hand_overs(void **state)
{
	(void)state;
	char *path = tmp_trace_path("lit-handover");
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 10ull * 1000 * 1000 * 1000; /* boundaries: ours */
	assert_int_equal(gotrace_start_path(path, &o), 0);
	gotrace_log_lit(0, "fb-cat", "first");
	for (int i = 0; i < 3; i++) {
		gotrace_region_begin_lit(0, "fb-first");
		gotrace_region_end_lit(0, "fb-first");
	}
	gotrace_region_begin_lit(0, "fb-span");
	assert_int_equal(gotrace_flush(), 0);
	/* A first call in the new generation (its status), so that the end
	 * below is the fast path's case but for its region's id, stale now. */
	gotrace_log_lit(0, "fb-cat", "new generation");
	gotrace_region_end_lit(0, "fb-span");
	gotrace_region_begin_lit(0, "fb-span");
	gotrace_region_end_lit(0, "fb-span");

	gotrace_region_begin_lit(0, "fb-outer");
	gotrace_region_begin_lit(0, "fb-inner");
	gotrace_region_end_lit(0, "fb-outer");
	gotrace_region_end_lit(0, "fb-inner"); /* ended already: nothing */

	uint64_t task = gotrace_task_begin_lit(0, "fb-t");
	assert_true(task != 0);
	gotrace_region_begin_lit(task, "fb-task");
	gotrace_region_end_lit(0, "fb-task"); /* task 0: not open, nothing */
	gotrace_region_end_lit(task, "fb-task");
	gotrace_task_end(task);

	gotrace_region_end_lit(0, "fb-none");

	for (int i = 0; i < 70; i++)
		gotrace_region_begin_lit(0, "fb-deep");
	for (int i = 0; i < 70; i++)
		gotrace_region_end_lit(0, "fb-deep");

	/* the same sites (their ids cached) outside and inside the bracket */
	for (int in = 0; in < 2; in++) {
		if (in)
			gotrace_syscall_begin();
		gotrace_region_begin_lit(0, "fb-sys");
		gotrace_log_lit(0, "fb-cat", "syscall?");
		gotrace_region_end_lit(0, "fb-sys");
		if (in)
			gotrace_syscall_end();
	}

	for (int i = 0; i < 2; i++) { /* one site: its id cached in the second round */
		if (i) {
			pthread_t self = pthread_self(), namer;
			assert_int_equal(pthread_create(&namer, NULL, fb_namer, &self), 0);
			assert_int_equal(pthread_join(namer, NULL), 0);
		}
		gotrace_region_begin_lit(0, "fb-named"); /* i = 1: the label first */
		gotrace_region_end_lit(0, "fb-named");
	}

	for (int i = 0; i < 30000; i++) {
		gotrace_region_begin_lit(0, "fb-many");
		gotrace_log_lit(0, "fb-cat", i % 2 ? "odd" : "even");
		gotrace_region_end_lit(0, "fb-many");
	}
	/* messages the fast path does not define: longer than 127 bytes,
	 * empty, NULL */
	char longmsg[200];
	memset(longmsg, 'x', sizeof longmsg - 1);
	longmsg[sizeof longmsg - 1] = 0;
	gotrace_log_lit(0, "fb-cat", longmsg);
	gotrace_log_lit(0, "fb-cat", "");
	gotrace_log_lit(0, "fb-cat", NULL);

	gotrace_region_t h = gotrace_region_open_lit(0, "fb-handle");
	gotrace_region_begin_lit(0, "fb-handin");
	gotrace_region_close(&h); /* its hint is not the innermost */
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);

	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	size_t named = 0;
	while (strcmp(fb_regions[named].name, "fb-named"))
		named++;
	int begins[FB_N] = { 0 }, ends[FB_N] = { 0 }, labels = 0, logs = 0, longs = 0, empties = 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (!strcmp(l->kind, "label")) {
			if (!strcmp(tl_get(l, "label"), "fb-label")) {
				labels++;
				/* written by the call that followed the naming,
				 * before that call's event */
				assert_int_equal(begins[named], 1);
			}
			continue;
		}
		if (!strcmp(l->kind, "log")) {
			assert_string_equal(tl_get(l, "cat"), "fb-cat");
			const char *m = tl_get(l, "msg");
			logs++;
			longs += !strcmp(m, longmsg);
			empties += m[0] == 0;
			continue;
		}
		if (strcmp(l->kind, "regionbegin") && strcmp(l->kind, "regionend"))
			continue;
		size_t k = 0;
		while (k < FB_N && strcmp(tl_get(l, "name"), fb_regions[k].name))
			k++;
		if (k == FB_N)
			fail_msg("a region named \"%s\"", tl_get(l, "name"));
		l->kind[6] == 'b' ? begins[k]++ : ends[k]++;
	}
	tsum_free(&s);
	for (size_t k = 0; k < FB_N; k++) {
		if (begins[k] != fb_regions[k].begins || ends[k] != fb_regions[k].ends)
			fail_msg("%s: %d begins, %d ends; expected %d, %d", fb_regions[k].name, begins[k], ends[k],
			         fb_regions[k].begins, fb_regions[k].ends);
	}
	assert_int_equal(labels, 1);
	assert_int_equal(logs, 2 + 1 + 30000 + 3); /* none from inside the bracket */
	assert_int_equal(longs, 1);
	assert_int_equal(empties, 2);
	unlink(path);
	free(path);
}

static void test_tracing_off(void **state)
{
	(void)state;
	/* Nothing happens and nothing breaks with tracing off. */
	round_of_calls(0);
	assert_int_equal(gotrace_task_begin_lit(0, "off"), 0);
	gotrace_region_t r = gotrace_region_open_lit(0, "off");
	gotrace_region_close(&r);
	assert_null(r.name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tracing_off),
		cmocka_unit_test(test_sites_across_generations),
		cmocka_unit_test(test_sites_across_sessions_and_threads),
		cmocka_unit_test(test_log_message_cache),
		cmocka_unit_test(test_fast_path_hand_overs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
