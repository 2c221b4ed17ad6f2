/*
 * Bad input: every misuse that include/gotrace.h documents, checked against
 * what Go's readers see.
 *
 *  - calls while tracing is off (before the first start, after a stop, and
 *    the out-of-line entry points reached through a stale read of
 *    gotrace_on_) return at once and leave nothing behind;
 *  - NULL and "" names, categories and messages: the events are there, with
 *    empty strings;
 *  - strings longer than 1024 bytes are cut to exactly their first 1024
 *    bytes (log messages, categories, task and region names);
 *  - ending a region that is not open writes nothing; ending an outer region
 *    first ends the regions opened inside it; nesting deeper than 64 levels
 *    is not traced;
 *  - task_end(0) and task_end of an id never returned write nothing; a task
 *    ended twice;
 *  - start twice (EBUSY, the first trace unharmed), stop twice and flush while
 *    off (ENOTON), invalid options (EINVAL), an unwritable path (ESYS with an
 *    error text);
 *  - a second session in the same process with the same threads.
 *
 * Every trace is judged by all four judges (judge_trace) and read back with
 * both Go 1.23's and the newest Go's reader; counts are exact.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tracecheck.h"

static const char *readers[] = { "go1.23", "new" };

/* ---------------------------------------------------------------- helpers */

/* Test-side allocations are kept here and freed by the teardown, so that a
 * failing assertion (which leaves the test by longjmp) leaks nothing and
 * LeakSanitizer reports only the library's own leaks. */
static void **pool;
static size_t npool, cappool;

static void *track(void *p)
{
	if (npool == cappool) {
		cappool = cappool ? 2 * cappool : 64;
		pool = realloc(pool, cappool * sizeof *pool);
	}
	pool[npool++] = p;
	return p;
}

static char *paths[64];
static size_t npaths;

/* A trace path, unlinked and freed by the teardown. */
static char *trace_path(const char *tag)
{
	char *p = track(tmp_trace_path(tag));
	if (npaths < sizeof paths / sizeof paths[0])
		paths[npaths++] = p;
	return p;
}

/* The summaries of the trace being checked (one at a time). */
static struct tsum S[2];

static void start_trace(const char *path)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 20 * 1000 * 1000; /* a few generations per test */
	int rc = gotrace_start_path(path, &o);
	if (rc)
		fprintf(stderr, "gotrace_start_path(%s): %d %s\n", path, rc, gotrace_last_error());
	assert_int_equal(rc, 0);
}

static void stop_trace(void)
{
	int rc = gotrace_stop();
	if (rc)
		fprintf(stderr, "gotrace_stop: %d %s\n", rc, gotrace_last_error());
	assert_int_equal(rc, 0);
	gotrace_stats st;
	gotrace_get_stats(&st);
	assert_int_equal(st.events_dropped, 0);
}

static void free_both(void)
{
	for (int r = 0; r < 2; r++)
		tsum_free(&S[r]);
}

/* Judge the trace with every judge, then read it with both readers. */
static struct tsum *load_both(const char *path)
{
	free_both();
	assert_int_equal(judge_trace(path), 0);
	for (int r = 0; r < 2; r++)
		assert_int_equal(tsum_load(path, readers[r], &S[r]), 0);
	return S;
}

static const char *get(const struct tline *l, const char *key)
{
	const char *v = tl_get(l, key);
	return v ? v : "(absent)";
}

/* Lines of `kind` whose `key` is `val` (key NULL: every line of kind). */
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

/* Lines whose `key` starts with `prefix`, of any kind. */
static size_t count_prefix(const struct tsum *s, const char *key, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++) {
		const char *v = tl_get(&s->lines[i], key);
		n += v && !strncmp(v, prefix, strlen(prefix));
	}
	return n;
}

/* The i-th (0-based) line of kind; fails if there are fewer. */
static const struct tline *nth(const struct tsum *s, const char *kind, size_t i)
{
	for (size_t k = 0; k < s->n; k++)
		if (!strcmp(s->lines[k].kind, kind) && i-- == 0)
			return &s->lines[k];
	fail_msg("fewer %s lines than expected", kind);
	return NULL;
}

/* The goroutine of the first `kind` line named `name`. */
static int64_t g_of(const struct tsum *s, const char *kind, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->lines[i].kind, kind) && tl_get(&s->lines[i], "name") &&
		    !strcmp(tl_get(&s->lines[i], "name"), name))
			return s->lines[i].g;
	fail_msg("no %s named %s", kind, name);
	return -1;
}

/* The names of goroutine g's `kind` lines, in reader order, joined by ','. */
static char *names_of(const struct tsum *s, const char *kind, int64_t g)
{
	size_t cap = 16, len = 0;
	char *out = calloc(1, cap);
	size_t slot = npool;
	track(out);
	for (size_t i = 0; i < s->n; i++) {
		const struct tline *l = &s->lines[i];
		if (strcmp(l->kind, kind) != 0 || l->g != g)
			continue;
		const char *n = get(l, "name");
		size_t need = len + strlen(n) + 2;
		if (need > cap) {
			cap = 2 * need;
			out = pool[slot] = realloc(out, cap);
		}
		len += (size_t)sprintf(out + len, "%s%s", len ? "," : "", n);
	}
	return out;
}

/* A helper thread that runs functions on request, so that tests can use the
 * same OS thread across calls and sessions. */
struct helper {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*fn)(void *);
	void *arg;
	int busy, quit, running;
	const char *name; /* gotrace_thread_name, set at thread start */
};
static struct helper H; /* static: survives a failed test, for the teardown */

static void *helper_main(void *p)
{
	struct helper *h = p;
	if (h->name)
		gotrace_thread_name(h->name);
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->busy && !h->quit)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->quit)
			break;
		pthread_mutex_unlock(&h->mu);
		h->fn(h->arg);
		pthread_mutex_lock(&h->mu);
		h->busy = 0;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void helper_start(struct helper *h, const char *name)
{
	memset(h, 0, sizeof *h);
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->name = name;
	assert_int_equal(pthread_create(&h->th, NULL, helper_main, h), 0);
	h->running = 1;
}

static void helper_run(struct helper *h, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&h->mu);
	h->fn = fn;
	h->arg = arg;
	h->busy = 1;
	pthread_cond_broadcast(&h->cv);
	while (h->busy)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

static void helper_stop(struct helper *h)
{
	pthread_mutex_lock(&h->mu);
	h->quit = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	h->running = 0;
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
}

/* --------------------------------------------------- calls while tracing off */

/* Every annotation, through the inline wrappers and directly through the
 * out-of-line functions (what a caller that read gotrace_on_ just before a
 * stop ends up in).  Nothing may be written, task_begin returns 0. */
static void calls_while_off(void *arg)
{
	(void)arg;
	assert_int_equal(gotrace_enabled(), 0);
	assert_int_equal(gotrace_task_begin(0, "off-task"), 0);
	assert_int_equal(gotrace_task_begin_(0, "off-task"), 0);
	gotrace_task_end(1);
	gotrace_task_end_(1);
	gotrace_region_begin(0, "off-region");
	gotrace_region_begin_(0, "off-region");
	gotrace_region_end(0, "off-region");
	gotrace_region_begin_(0, "off-region-left-open");
	gotrace_log(0, "off-cat", "off-msg");
	gotrace_log_(0, "off-cat", "off-msg");
	gotrace_log_(0, NULL, NULL);
	assert_int_equal(gotrace_thread_dropped(), 0);
	assert_int_equal(gotrace_enabled(), 0);
}

static void *calls_while_off_thread(void *arg)
{
	calls_while_off(arg);
	return NULL;
}

static void calls_while_off_everywhere(void)
{
	calls_while_off(NULL);
	pthread_t th; /* a thread that never registered */
	assert_int_equal(pthread_create(&th, NULL, calls_while_off_thread, NULL), 0);
	pthread_join(th, NULL);
	assert_int_equal(gotrace_flush(), -GOTRACE_ENOTON);
	assert_int_equal(gotrace_stop(), -GOTRACE_ENOTON);
}

static void log_on(void *msg)
{
	gotrace_log(0, "on", msg);
	/* Ends of regions begun while tracing was off: not open, nothing. */
	gotrace_region_end(0, "off-region-left-open");
	gotrace_region_end(0, "off-region");
}

/* Must run first: nothing has been started in this process yet. */
static void test_calls_while_off(void **state)
{
	(void)state;
	gotrace_stats st;
	memset(&st, 0xff, sizeof st);
	gotrace_get_stats(&st);
	assert_int_equal(st.generations, 0);
	assert_int_equal(st.bytes_written, 0);
	assert_int_equal(st.events_dropped, 0);
	assert_int_equal(st.threads_seen, 0);
	assert_string_equal(gotrace_last_error(), "");
	calls_while_off_everywhere();

	/* A session, then the same calls after its stop, then another session:
	 * only the "on" logs are in the traces. */
	struct helper *h = &H;
	helper_start(h, NULL);
	helper_run(h, calls_while_off, NULL);
	char *p1 = trace_path("off1"), *p2 = trace_path("off2");
	start_trace(p1);
	log_on("main 1");
	helper_run(h, log_on, "helper 1");
	stop_trace();
	calls_while_off_everywhere();
	helper_run(h, calls_while_off, NULL);
	start_trace(p2);
	log_on("main 2");
	helper_run(h, log_on, "helper 2");
	stop_trace();
	calls_while_off_everywhere();
	helper_stop(h);

	const char *paths[2] = { p1, p2 };
	for (int k = 0; k < 2; k++) {
		struct tsum *s = load_both(paths[k]);
		for (int r = 0; r < 2; r++) {
			assert_int_equal(tsum_count(&s[r], "log"), 2);
			assert_int_equal(count_kv(&s[r], "log", "cat", "on"), 2);
			assert_int_equal(tsum_count(&s[r], "taskbegin"), 0);
			assert_int_equal(tsum_count(&s[r], "taskend"), 0);
			assert_int_equal(tsum_count(&s[r], "regionbegin"), 0);
			assert_int_equal(tsum_count(&s[r], "regionend"), 0);
			char want[32];
			snprintf(want, sizeof want, "main %d", k + 1);
			assert_int_equal(count_kv(&s[r], "log", "msg", want), 1);
			snprintf(want, sizeof want, "helper %d", k + 1);
			assert_int_equal(count_kv(&s[r], "log", "msg", want), 1);
			assert_int_equal(count_prefix(&s[r], "name", "off-"), 0);
			assert_int_equal(count_prefix(&s[r], "msg", "off-"), 0);
		}
		free_both();
		unlink(paths[k]);
	}
}

/* ------------------------------------------------------- NULL and "" strings */

static void test_null_and_empty_strings(void **state)
{
	(void)state;
	char *path = trace_path("nullstr");
	start_trace(path);
	uint64_t t1 = gotrace_task_begin(0, NULL);
	uint64_t t2 = gotrace_task_begin(t1, "");
	assert_true(t1 != 0 && t2 != 0 && t1 != t2);
	gotrace_region_begin(t1, NULL);
	gotrace_region_begin(t2, "");
	gotrace_region_end(t2, NULL); /* NULL is "": ends the "" region of t2 */
	gotrace_region_end(t1, "");   /* ends the NULL-named region of t1 */
	gotrace_log(t1, NULL, NULL);
	gotrace_log(t2, "", "");
	gotrace_log(0, NULL, "null-cat");
	gotrace_log(0, "null-msg", NULL);
	gotrace_thread_name(NULL);
	gotrace_task_end(t2);
	gotrace_task_end(t1);
	stop_trace();

	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		struct tsum *x = &s[r];
		assert_int_equal(tsum_count(x, "taskbegin"), 2);
		assert_int_equal(count_kv(x, "taskbegin", "name", ""), 2);
		assert_int_equal(tl_int(nth(x, "taskbegin", 0), "id"), t1);
		assert_int_equal(tl_int(nth(x, "taskbegin", 1), "id"), t2);
		assert_int_equal(tl_int(nth(x, "taskbegin", 1), "parent"), t1);
		assert_int_equal(tsum_count(x, "regionbegin"), 2);
		assert_int_equal(count_kv(x, "regionbegin", "name", ""), 2);
		assert_int_equal(tsum_count(x, "regionend"), 2);
		assert_int_equal(count_kv(x, "regionend", "name", ""), 2);
		assert_int_equal(tl_int(nth(x, "regionend", 0), "task"), t2);
		assert_int_equal(tl_int(nth(x, "regionend", 1), "task"), t1);
		assert_int_equal(tsum_count(x, "log"), 4);
		const struct tline *l;
		l = nth(x, "log", 0);
		assert_string_equal(get(l, "cat"), "");
		assert_string_equal(get(l, "msg"), "");
		assert_int_equal(tl_int(l, "task"), t1);
		l = nth(x, "log", 1);
		assert_string_equal(get(l, "cat"), "");
		assert_string_equal(get(l, "msg"), "");
		assert_int_equal(tl_int(l, "task"), t2);
		l = nth(x, "log", 2);
		assert_string_equal(get(l, "cat"), "");
		assert_string_equal(get(l, "msg"), "null-cat");
		l = nth(x, "log", 3);
		assert_string_equal(get(l, "cat"), "null-msg");
		assert_string_equal(get(l, "msg"), "");
		assert_int_equal(tsum_count(x, "taskend"), 2);
		assert_int_equal(tsum_count(x, "label"), 0);
	}
	free_both();
	unlink(path);
}

/* ------------------------------------------------------------ long strings */

/* len bytes of varied text (letters, digits, spaces, punctuation), NUL
 * terminated; seed makes strings differ from their first byte. */
static char *text(size_t len, int seed)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789%@;=-_/.:+!";
	char *s = track(malloc(len + 1));
	for (size_t i = 0; i < len; i++)
		s[i] = alpha[(i * 7 + (size_t)seed * 13 + i / 37) % (sizeof alpha - 1)];
	s[len] = 0;
	return s;
}

static void assert_prefix_1024(const char *got, const char *full)
{
	assert_non_null(got);
	if (strlen(got) != 1024)
		fail_msg("string of %zu bytes in the trace, expected 1024", strlen(got));
	assert_memory_equal(got, full, 1024);
}

static void test_long_strings_truncated(void **state)
{
	(void)state;
	char *a = text(2000, 1);
	char *b = text(2000, 1); /* same first 1024 bytes as a, then different */
	for (size_t i = 1024; i < 2000; i++)
		b[i] = a[i] == 'x' ? 'y' : 'x';
	char *c = text(1024, 2);  /* exactly the limit: kept whole */
	char *d = text(1025, 3);  /* one byte over */
	char *m = text(5000, 4);  /* long message */
	char *cat = text(1500, 5);
	char *reg = text(1100, 6); /* region name > 40 (heap copy) */
	/* around the emit path's one-pass copy of short messages (< 128) */
	char *m126 = text(126, 7), *m127 = text(127, 8), *m128 = text(128, 9);

	char *path = trace_path("longstr");
	start_trace(path);
	gotrace_log(0, "long-msg", m);
	gotrace_log(0, "exact-1024", c);
	gotrace_log(0, "len-1025", d);
	gotrace_log(0, cat, "long-cat");
	gotrace_log_lit(0, "len-126", m126);
	gotrace_log_lit(0, "len-127", m127);
	gotrace_log_lit(0, "len-128", m128);
	gotrace_log_lit(0, "empty", "");
	gotrace_log(0, "after", "short");
	uint64_t t = gotrace_task_begin(0, a);
	gotrace_region_begin(t, reg);
	gotrace_region_begin(t, a);
	/* b's first 1024 bytes are a's: after truncation it is the same name,
	 * so this ends the region begun as a. */
	gotrace_region_end(t, b);
	gotrace_region_begin(t, c);
	gotrace_region_end(t, c);
	gotrace_region_end(t, reg);
	gotrace_task_end(t);
	stop_trace();

	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		struct tsum *x = &s[r];
		assert_int_equal(tsum_count(x, "log"), 9);
		const struct tline *l = nth(x, "log", 0);
		assert_string_equal(get(l, "cat"), "long-msg");
		assert_prefix_1024(tl_get(l, "msg"), m);
		l = nth(x, "log", 1);
		assert_string_equal(get(l, "cat"), "exact-1024");
		assert_string_equal(get(l, "msg"), c);
		l = nth(x, "log", 2);
		assert_string_equal(get(l, "cat"), "len-1025");
		assert_prefix_1024(tl_get(l, "msg"), d);
		l = nth(x, "log", 3);
		assert_prefix_1024(tl_get(l, "cat"), cat);
		assert_string_equal(get(l, "msg"), "long-cat");
		const char *cats[] = { "len-126", "len-127", "len-128", "empty", "after" };
		const char *msgs[] = { m126, m127, m128, "", "short" };
		for (int k = 0; k < 5; k++) {
			l = nth(x, "log", 4 + k);
			assert_string_equal(get(l, "cat"), cats[k]);
			assert_string_equal(get(l, "msg"), msgs[k]);
		}

		assert_int_equal(tsum_count(x, "taskbegin"), 1);
		assert_prefix_1024(tl_get(nth(x, "taskbegin", 0), "name"), a);
		assert_int_equal(tsum_count(x, "taskend"), 1);

		assert_int_equal(tsum_count(x, "regionbegin"), 3);
		assert_int_equal(tsum_count(x, "regionend"), 3);
		assert_prefix_1024(tl_get(nth(x, "regionbegin", 0), "name"), reg);
		assert_prefix_1024(tl_get(nth(x, "regionbegin", 1), "name"), a);
		assert_string_equal(get(nth(x, "regionbegin", 2), "name"), c);
		assert_prefix_1024(tl_get(nth(x, "regionend", 0), "name"), a);
		assert_string_equal(get(nth(x, "regionend", 1), "name"), c);
		assert_prefix_1024(tl_get(nth(x, "regionend", 2), "name"), reg);
	}
	free_both();
	unlink(path);
}

/* ------------------------------------------------------------------ regions */

static void open_on_helper(void *arg)
{
	gotrace_region_begin(0, arg);
}

static void close_on_helper(void *arg)
{
	gotrace_region_end(0, arg);
}

static void test_region_end_never_begun(void **state)
{
	(void)state;
	struct helper *h = &H;
	helper_start(h, NULL);
	char *path = trace_path("never");
	start_trace(path);
	gotrace_region_end(0, "never-begun");  /* nothing open at all */
	gotrace_region_end(0, NULL);
	gotrace_region_begin(0, "open");
	gotrace_region_end(0, "other-name");   /* not open */
	gotrace_region_end(12345, "open");     /* same name, other task */
	helper_run(h, open_on_helper, "helper-open");
	gotrace_region_end(0, "helper-open");  /* open on another thread only */
	gotrace_region_end(0, "open");         /* ends "open" */
	gotrace_region_end(0, "open");         /* no longer open */
	helper_run(h, close_on_helper, "open");        /* never open there */
	helper_run(h, close_on_helper, "helper-open"); /* ends it */
	helper_run(h, close_on_helper, "helper-open"); /* no longer open */
	stop_trace();
	helper_stop(h);

	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		struct tsum *x = &s[r];
		assert_int_equal(tsum_count(x, "regionbegin"), 2);
		assert_int_equal(tsum_count(x, "regionend"), 2);
		int64_t gm = g_of(x, "regionbegin", "open");
		int64_t gh = g_of(x, "regionbegin", "helper-open");
		assert_true(gm != gh);
		char *e = names_of(x, "regionend", gm);
		assert_string_equal(e, "open");
		e = names_of(x, "regionend", gh);
		assert_string_equal(e, "helper-open");
	}
	free_both();
	unlink(path);
}

static void test_region_end_outer_unwinds(void **state)
{
	(void)state;
	char *path = trace_path("unwind");
	start_trace(path);
	gotrace_region_begin(0, "A");
	gotrace_region_begin(0, "B");
	gotrace_region_begin(0, "C");
	gotrace_region_end(0, "A"); /* ends C, B, then A */
	gotrace_region_end(0, "C"); /* already ended: nothing */
	gotrace_region_end(0, "B"); /* already ended: nothing */
	gotrace_region_begin(0, "D");
	gotrace_region_begin(0, "E");
	gotrace_region_begin(0, "F");
	gotrace_region_end(0, "E"); /* ends F, then E */
	gotrace_region_end(0, "F"); /* nothing */
	gotrace_region_begin(0, "G");
	gotrace_region_end(0, "G");
	gotrace_region_end(0, "D");
	stop_trace();

	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		int64_t g = g_of(&s[r], "regionbegin", "A");
		char *b = names_of(&s[r], "regionbegin", g), *e = names_of(&s[r], "regionend", g);
		assert_string_equal(b, "A,B,C,D,E,F,G");
		assert_string_equal(e, "C,B,A,F,E,G,D");
		assert_int_equal(tsum_count(&s[r], "regionend"), 7);
	}
	free_both();
	unlink(path);
}

#define DEEP 70

/* "n00".."n69", and the expected lists for the first 64 levels. */
static void deep_names(const char *pfx, char names[DEEP][8], char *begins, char *ends)
{
	begins[0] = ends[0] = 0;
	for (int i = 0; i < DEEP; i++)
		snprintf(names[i], 8, "%s%02d", pfx, i);
	for (int i = 0; i < 64; i++) {
		strcat(begins, i ? "," : "");
		strcat(begins, names[i]);
		strcat(ends, i ? "," : "");
		strcat(ends, names[63 - i]);
	}
}

static void test_region_depth_limit(void **state)
{
	(void)state;
	char names[DEEP][8], begins[64 * 8], ends[64 * 8];
	deep_names("d", names, begins, ends);
	char *path = trace_path("deep");
	start_trace(path);
	for (int i = 0; i < DEEP; i++)
		gotrace_region_begin(0, names[i]);
	for (int i = DEEP - 1; i >= 0; i--)
		gotrace_region_end(0, names[i]);
	/* Back at depth 0: regions are traced again. */
	gotrace_region_begin(0, "after");
	gotrace_region_end(0, "after");
	stop_trace();

	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		assert_int_equal(tsum_count(&s[r], "regionbegin"), 65);
		assert_int_equal(tsum_count(&s[r], "regionend"), 65);
		int64_t g = g_of(&s[r], "regionbegin", "d00");
		char *b = names_of(&s[r], "regionbegin", g), *e = names_of(&s[r], "regionend", g);
		char wb[64 * 8 + 8], we[64 * 8 + 8];
		snprintf(wb, sizeof wb, "%s,after", begins);
		snprintf(we, sizeof we, "%s,after", ends);
		assert_string_equal(b, wb);
		assert_string_equal(e, we);
	}
	free_both();
	unlink(path);
}

/* Past the depth limit, ending the OUTERMOST region: by the documented rule
 * ("ending one that is open but not innermost first ends the regions opened
 * inside it") all 64 traced regions end, innermost first, and the thread is
 * back at depth 0. */
static void test_region_depth_limit_unwind_outer(void **state)
{
	(void)state;
	char names[DEEP][8], begins[64 * 8], ends[64 * 8];
	deep_names("u", names, begins, ends);
	char *path = trace_path("deepunwind");
	start_trace(path);
	for (int i = 0; i < 66; i++)
		gotrace_region_begin(0, names[i]);
	gotrace_region_end(0, names[0]);  /* ends everything */
	gotrace_region_end(0, names[65]); /* no longer open: nothing */
	gotrace_region_end(0, names[64]); /* no longer open: nothing */
	gotrace_region_begin(0, "after");
	gotrace_region_end(0, "after");
	stop_trace();

	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		int64_t g = g_of(&s[r], "regionbegin", "u00");
		char *b = names_of(&s[r], "regionbegin", g), *e = names_of(&s[r], "regionend", g);
		char wb[64 * 8 + 8], we[64 * 8 + 8];
		snprintf(wb, sizeof wb, "%s,after", begins);
		snprintf(we, sizeof we, "%s,after", ends);
		if (strcmp(e, we) != 0)
			fprintf(stderr, "%s: region ends after ending the outermost of 66 regions:\n"
			                "  got  [%s]\n  want [%s]\n", readers[r], e, we);
		assert_string_equal(b, wb);
		assert_string_equal(e, we);
	}
	free_both();
	unlink(path);
}

/* -------------------------------------------------------------------- tasks */

static void test_task_end_bad_ids(void **state)
{
	(void)state;
	char *path = trace_path("taskbad");
	start_trace(path);
	uint64_t t = gotrace_task_begin(0, "real");
	assert_true(t != 0);
	gotrace_task_end(0);
	gotrace_task_end(t + 1000000); /* never returned */
	gotrace_task_end(UINT64_MAX);  /* never returned */
	gotrace_task_end(t);
	stop_trace();

	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		assert_int_equal(tsum_count(&s[r], "taskbegin"), 1);
		assert_int_equal(tsum_count(&s[r], "taskend"), 1);
		assert_int_equal(tl_int(nth(&s[r], "taskend", 0), "id"), t);
		assert_string_equal(get(nth(&s[r], "taskend", 0), "name"), "real");
	}
	free_both();
	unlink(path);
}

/* Ending a task twice: not an error.  Like Go's runtime/trace (Task.End is
 * not idempotent there either) each call writes a TaskEnd; the readers and
 * validators accept the second one (a task end without a live begin). */
static void test_task_end_twice(void **state)
{
	(void)state;
	char *path = trace_path("tasktwice");
	start_trace(path);
	uint64_t t = gotrace_task_begin(0, "twice");
	uint64_t u = gotrace_task_begin(t, "child");
	gotrace_task_end(t);
	gotrace_task_end(t);
	gotrace_log(u, "after", "child still usable");
	gotrace_task_end(u);
	stop_trace();

	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		assert_int_equal(tsum_count(&s[r], "taskbegin"), 2);
		assert_int_equal(count_kv(&s[r], "taskend", "id", "0") , 0);
		size_t ends_t = 0, ends_u = 0;
		for (size_t i = 0; i < s[r].n; i++) {
			if (strcmp(s[r].lines[i].kind, "taskend") != 0)
				continue;
			uint64_t id = (uint64_t)tl_int(&s[r].lines[i], "id");
			ends_t += id == t;
			ends_u += id == u;
		}
		assert_int_equal(ends_t, 2);
		assert_int_equal(ends_u, 1);
		assert_int_equal(tsum_count(&s[r], "taskend"), 3);
		assert_int_equal(count_kv(&s[r], "log", "cat", "after"), 1);
	}
	free_both();
	unlink(path);
}

/* ------------------------------------------------------- start, stop, flush */

static void test_start_twice(void **state)
{
	(void)state;
	char *path = trace_path("twice");
	char *other = trace_path("twice-other");
	unlink(other);
	start_trace(path);
	gotrace_log(0, "first", "before the second start");
	assert_int_equal(gotrace_flush(), 0); /* something is in the file */
	gotrace_options o;
	gotrace_options_init(&o);
	/* Same path: must not truncate the trace being written. */
	assert_int_equal(gotrace_start_path(path, &o), -GOTRACE_EBUSY);
	assert_int_equal(gotrace_start_path(path, NULL), -GOTRACE_EBUSY);
	assert_int_equal(gotrace_start_path(other, NULL), -GOTRACE_EBUSY);
	int fd = open(other, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(gotrace_start_fd(fd, NULL), -GOTRACE_EBUSY);
	assert_int_equal(gotrace_enabled(), 1);
	gotrace_log(0, "first", "after the second start");
	uint64_t t = gotrace_task_begin(0, "still-on");
	assert_true(t != 0);
	gotrace_task_end(t);
	stop_trace();
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0); /* nothing went to the second fd */
	close(fd);

	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		assert_int_equal(tsum_count(&s[r], "log"), 2);
		assert_int_equal(count_kv(&s[r], "log", "msg", "before the second start"), 1);
		assert_int_equal(count_kv(&s[r], "log", "msg", "after the second start"), 1);
		assert_int_equal(tsum_count(&s[r], "taskbegin"), 1);
		assert_int_equal(tsum_count(&s[r], "taskend"), 1);
	}
	free_both();
	unlink(path);
	unlink(other);
}

static void test_stop_twice_flush_off(void **state)
{
	(void)state;
	char *path = trace_path("stoptwice");
	start_trace(path);
	gotrace_log(0, "x", "y");
	assert_int_equal(gotrace_flush(), 0);
	stop_trace();
	assert_int_equal(gotrace_stop(), -GOTRACE_ENOTON);
	assert_int_equal(gotrace_stop(), -GOTRACE_ENOTON);
	assert_int_equal(gotrace_flush(), -GOTRACE_ENOTON);
	assert_int_equal(gotrace_enabled(), 0);
	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++)
		assert_int_equal(tsum_count(&s[r], "log"), 1);
	free_both();
	unlink(path);
}

/* Each bad option set, through both start functions: EINVAL, tracing stays
 * off, the path is not created. */
static void expect_einval(const gotrace_options *o, const char *what)
{
	char *path = trace_path("einval");
	unlink(path);
	int rc = gotrace_start_path(path, o);
	if (rc != -GOTRACE_EINVAL)
		fail_msg("%s: gotrace_start_path returned %d, expected %d", what, rc, -GOTRACE_EINVAL);
	assert_int_equal(gotrace_enabled(), 0);
	assert_int_equal(access(path, F_OK), -1);
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	rc = gotrace_start_fd(fd, o);
	if (rc != -GOTRACE_EINVAL)
		fail_msg("%s: gotrace_start_fd returned %d, expected %d", what, rc, -GOTRACE_EINVAL);
	assert_int_equal(gotrace_enabled(), 0);
	assert_int_equal(gotrace_stop(), -GOTRACE_ENOTON);
	close(fd);
}

#define BAD(field_stmt, what)                \
	do {                                 \
		gotrace_options o;           \
		gotrace_options_init(&o);    \
		field_stmt;                  \
		expect_einval(&o, what);     \
	} while (0)

static void test_invalid_options(void **state)
{
	(void)state;
	BAD(o.buffer_size = 100, "buffer_size 100");
	BAD(o.buffer_size = 4095, "buffer_size 4095");
	BAD(o.buffer_size = 65537, "buffer_size 65537");
	BAD(o.advance_period_ns = 10, "advance period 10 ns");
	BAD(o.advance_period_ns = 99999, "advance period 99999 ns");
	BAD(o.max_buffered = (1u << 20) - 1, "max_buffered 1 MiB - 1");
	BAD(o.clock = 3, "clock 3");
	BAD(o.clock = -1, "clock -1");
	BAD(o.reserved_int[0] = 1, "reserved_int[0]");
	BAD(o.reserved_int[sizeof o.reserved_int / sizeof o.reserved_int[0] - 1] = -1, "last reserved_int");
	BAD(o.reserved_u64[0] = 1, "reserved_u64[0]");
	BAD(o.reserved_u64[sizeof o.reserved_u64 / sizeof o.reserved_u64[0] - 1] = 1ull << 63, "last reserved_u64");
	BAD(o.struct_size = 0, "struct_size 0");
	BAD(o.struct_size = sizeof o + 8, "struct_size too large");

	/* Bad targets. */
	assert_int_equal(gotrace_start_path(NULL, NULL), -GOTRACE_EINVAL);
	assert_int_equal(gotrace_start_path("", NULL), -GOTRACE_EINVAL);
	assert_int_equal(gotrace_start_fd(-1, NULL), -GOTRACE_EINVAL);
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	close(fd); /* now a closed descriptor */
	assert_int_equal(gotrace_start_fd(fd, NULL), -GOTRACE_EINVAL);
	assert_int_equal(gotrace_enabled(), 0);

	/* The boundaries themselves are accepted, and nothing of the failed
	 * starts leaked into this session. */
	gotrace_options o;
	gotrace_options_init(&o);
	o.buffer_size = 4096;
	o.advance_period_ns = 100000;
	o.max_buffered = 1u << 20;
	char *path = trace_path("minopts");
	assert_int_equal(gotrace_start_path(path, &o), 0);
	for (int i = 0; i < 200; i++)
		gotrace_log(0, "minopts", "x");
	stop_trace();
	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++)
		assert_int_equal(count_kv(&s[r], "log", "cat", "minopts"), 200);
	free_both();
	unlink(path);
}

/* "gotrace_last_error() describes the last failure in words" (gotrace.h,
 * Errors): also for option errors. */
static void test_invalid_options_have_error_text(void **state)
{
	(void)state;
	gotrace_options o;
	gotrace_options_init(&o);
	o.buffer_size = 100;
	char *path = trace_path("einvaltext");
	assert_int_equal(gotrace_start_path(path, &o), -GOTRACE_EINVAL);
	const char *e = gotrace_last_error();
	assert_non_null(e);
	if (!*e)
		fail_msg("gotrace_start_path returned -GOTRACE_EINVAL (buffer_size 100) but "
		         "gotrace_last_error() is empty");
	gotrace_options_init(&o);
	o.reserved_u64[3] = 1;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_int_equal(gotrace_start_fd(fd, &o), -GOTRACE_EINVAL);
	close(fd);
	e = gotrace_last_error();
	if (!*e)
		fail_msg("gotrace_start_fd returned -GOTRACE_EINVAL (reserved field) but "
		         "gotrace_last_error() is empty");
}

static void test_unwritable_path(void **state)
{
	(void)state;
	const char *bad[] = {
		"/nonexistent-gotrace-dir/sub/x.trace", /* ENOENT */
		"/",                                  /* a directory: EISDIR */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = gotrace_start_path(bad[i], NULL);
		if (rc >= 0)
			gotrace_stop();
		assert_int_equal(rc, -GOTRACE_ESYS);
		assert_int_equal(gotrace_enabled(), 0);
		const char *e = gotrace_last_error();
		assert_non_null(e);
		assert_true(*e != 0);
		if (!strstr(e, bad[i]))
			fail_msg("last error \"%s\" does not name the path %s", e, bad[i]);
		assert_int_equal(gotrace_stop(), -GOTRACE_ENOTON);
	}
	/* Tracing still works afterwards, and the error text is cleared. */
	char *path = trace_path("afterbad");
	start_trace(path);
	assert_string_equal(gotrace_last_error(), "");
	gotrace_log(0, "after", "bad path");
	stop_trace();
	assert_string_equal(gotrace_last_error(), "");
	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++)
		assert_int_equal(count_kv(&s[r], "log", "cat", "after"), 1);
	free_both();
	unlink(path);
}

/* ---------------------------------------------------------- second session */

static const char long_region[] =
	"a region left open across gotrace_stop, with a name longer than forty bytes";

struct sess_work {
	int tasks, logs, regions;
	const char *tag;
	int leave_open; /* begin long_region and never end it */
};

static void sess_emit(void *arg)
{
	struct sess_work *w = arg;
	char msg[64];
	for (int i = 0; i < w->tasks; i++) {
		uint64_t t = gotrace_task_begin(0, w->tag);
		assert_true(t != 0);
		gotrace_task_end(t);
	}
	for (int i = 0; i < w->regions; i++) {
		gotrace_region_begin(0, w->tag);
		gotrace_region_end(0, w->tag);
	}
	for (int i = 0; i < w->logs; i++) {
		snprintf(msg, sizeof msg, "%s %d", w->tag, i);
		gotrace_log(0, w->tag, msg);
	}
	if (w->leave_open)
		gotrace_region_begin(0, long_region);
}

static void check_session(const char *path, const struct sess_work *wm, const struct sess_work *wh)
{
	struct tsum *s = load_both(path);
	for (int r = 0; r < 2; r++) {
		struct tsum *x = &s[r];
		const struct sess_work *w[2] = { wm, wh };
		int64_t g[2];
		for (int k = 0; k < 2; k++) {
			assert_int_equal(count_kv(x, "taskbegin", "name", w[k]->tag), w[k]->tasks);
			assert_int_equal(count_kv(x, "regionbegin", "name", w[k]->tag), w[k]->regions);
			assert_int_equal(count_kv(x, "regionend", "name", w[k]->tag), w[k]->regions);
			assert_int_equal(count_kv(x, "log", "cat", w[k]->tag), w[k]->logs);
			g[k] = g_of(x, "taskbegin", w[k]->tag);
		}
		assert_true(g[0] != g[1]);
		assert_int_equal(tsum_count(x, "taskbegin"), wm->tasks + wh->tasks);
		assert_int_equal(tsum_count(x, "taskend"), wm->tasks + wh->tasks);
		assert_int_equal(tsum_count(x, "log"), wm->logs + wh->logs);
		assert_int_equal(tsum_count(x, "regionbegin"),
		                 wm->regions + wh->regions + wm->leave_open + wh->leave_open);
		assert_int_equal(tsum_count(x, "regionend"), wm->regions + wh->regions);
		/* The names given before the start label both goroutines, once. */
		assert_int_equal(count_kv(x, "label", "label", "sess-helper"), 1);
		assert_int_equal(count_kv(x, "label", "label", "sess-main"), 1);
		for (size_t i = 0; i < x->n; i++) {
			const struct tline *l = &x->lines[i];
			if (!strcmp(l->kind, "label"))
				assert_int_equal(l->g, g[!strcmp(get(l, "label"), "sess-helper")]);
		}
	}
	free_both();
}

static void test_second_session_same_threads(void **state)
{
	(void)state;
	gotrace_thread_name("sess-main"); /* before the start: kept */
	struct helper *h = &H;
	helper_start(h, "sess-helper");
	char *p1 = trace_path("sess1"), *p2 = trace_path("sess2");

	struct sess_work m1 = { 3, 5, 2, "s1-main", 1 }, h1 = { 2, 4, 3, "s1-helper", 1 };
	start_trace(p1);
	sess_emit(&m1);
	helper_run(h, sess_emit, &h1);
	stop_trace();
	gotrace_stats st;
	gotrace_get_stats(&st);
	assert_int_equal(st.threads_seen, 2);

	/* The same two threads, a new session: their state (regions still
	 * open at the stop included) does not carry over. */
	struct sess_work m2 = { 1, 2, 1, "s2-main", 0 }, h2 = { 4, 6, 0, "s2-helper", 0 };
	start_trace(p2);
	gotrace_region_end(0, long_region); /* open in session 1 only: nothing */
	sess_emit(&m2);
	helper_run(h, sess_emit, &h2);
	helper_run(h, close_on_helper, (void *)long_region); /* nothing */
	stop_trace();
	gotrace_get_stats(&st);
	assert_int_equal(st.threads_seen, 2);
	helper_stop(h);

	check_session(p1, &m1, &h1);
	check_session(p2, &m2, &h2);
	for (int k = 0; k < 2; k++) {
		struct tsum *s = load_both(k ? p2 : p1);
		for (int r = 0; r < 2; r++) {
			assert_int_equal(count_prefix(&s[r], "name", k ? "s1-" : "s2-"), 0);
			assert_int_equal(count_prefix(&s[r], "cat", k ? "s1-" : "s2-"), 0);
			assert_int_equal(count_kv(&s[r], "regionbegin", "name", long_region), k ? 0 : 2);
			assert_int_equal(count_kv(&s[r], "regionend", "name", long_region), 0);
		}
		free_both();
	}
	gotrace_thread_name(NULL);
	unlink(p1);
	unlink(p2);
}

/* gotrace_thread_name_of: a creator names two threads -- one already
 * registered (the helper, named by it at its start, renamed here), one
 * that has not made its first traced call yet (the name waits for its
 * registration).  Each label is written by the named thread, on its own
 * goroutine, once; the thread's own later gotrace_thread_name wins over a
 * name given before it; off, nothing is kept. */
static pthread_barrier_t late_bar;
static void *late_main(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&late_bar); /* named by main meanwhile */
	gotrace_region_begin(0, "late-region");
	gotrace_region_end(0, "late-region");
	return NULL;
}
static void emit_tagged(void *arg)
{
	gotrace_region_begin(0, (const char *)arg);
	gotrace_region_end(0, (const char *)arg);
}

static void test_name_of(void **state)
{
	(void)state;
	pthread_barrier_init(&late_bar, NULL, 2);
	pthread_t off;
	assert_int_equal(pthread_create(&off, NULL, late_main, NULL), 0);
	assert_int_equal(gotrace_thread_name_of(off, "never"), -GOTRACE_ENOTON); /* off: not kept */
	pthread_barrier_wait(&late_bar);
	pthread_join(off, NULL);

	struct helper *h = &H;
	helper_start(h, "h-first");
	char *p = trace_path("nameof");
	start_trace(p);
	helper_run(h, emit_tagged, "h-before");
	assert_int_equal(gotrace_thread_name_of(h->th, "h-second"), 0);
	helper_run(h, emit_tagged, "h-after");
	pthread_t late;
	assert_int_equal(pthread_create(&late, NULL, late_main, NULL), 0);
	assert_int_equal(gotrace_thread_name_of(late, "late-name"), 0);
	pthread_barrier_wait(&late_bar);
	pthread_join(late, NULL);
	assert_int_equal(gotrace_thread_name_of(pthread_self(), "main-name"), 0);
	emit_tagged("main-region");
	stop_trace();
	helper_stop(h);
	pthread_barrier_destroy(&late_bar);

	struct tsum *x = load_both(p);
	for (int r = 0; r < 2; r++) {
		int64_t gh = g_of(&x[r], "regionbegin", "h-after"), gl = g_of(&x[r], "regionbegin", "late-region"),
		        gm = g_of(&x[r], "regionbegin", "main-region");
		assert_true(gh > 0 && gl > 0 && gm > 0);
		assert_int_equal(g_of(&x[r], "regionbegin", "h-before"), gh);
		const char *want[] = { "h-first", "h-second", "late-name", "main-name" };
		int64_t wg[] = { gh, gh, gl, gm };
		for (int k = 0; k < 4; k++) {
			assert_int_equal(count_kv(&x[r], "label", "label", want[k]), 1);
			for (size_t i = 0; i < x[r].n; i++) {
				const struct tline *l = &x[r].lines[i];
				if (!strcmp(l->kind, "label") && !strcmp(get(l, "label"), want[k]))
					assert_int_equal(l->g, wg[k]);
			}
		}
		assert_int_equal(count_kv(&x[r], "label", "label", "never"), 0);
		assert_int_equal(tsum_count(&x[r], "label"), 4);
	}
	free_both();
	gotrace_thread_name(NULL);
	unlink(p);
}

/* Leave tracing off whatever a failed test did. */
static int teardown(void **state)
{
	(void)state;
	if (H.running)
		helper_stop(&H);
	if (gotrace_enabled())
		gotrace_stop();
	free_both();
	for (size_t i = 0; i < npaths; i++)
		unlink(paths[i]);
	npaths = 0;
	for (size_t i = 0; i < npool; i++)
		free(pool[i]);
	npool = 0;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: relies on nothing having been started yet */
		cmocka_unit_test_teardown(test_calls_while_off, teardown),
		cmocka_unit_test_teardown(test_null_and_empty_strings, teardown),
		cmocka_unit_test_teardown(test_long_strings_truncated, teardown),
		cmocka_unit_test_teardown(test_region_end_never_begun, teardown),
		cmocka_unit_test_teardown(test_region_end_outer_unwinds, teardown),
		cmocka_unit_test_teardown(test_region_depth_limit, teardown),
		cmocka_unit_test_teardown(test_region_depth_limit_unwind_outer, teardown),
		cmocka_unit_test_teardown(test_task_end_bad_ids, teardown),
		cmocka_unit_test_teardown(test_task_end_twice, teardown),
		cmocka_unit_test_teardown(test_start_twice, teardown),
		cmocka_unit_test_teardown(test_stop_twice_flush_off, teardown),
		cmocka_unit_test_teardown(test_invalid_options, teardown),
		cmocka_unit_test_teardown(test_invalid_options_have_error_text, teardown),
		cmocka_unit_test_teardown(test_unwritable_path, teardown),
		cmocka_unit_test_teardown(test_second_session_same_threads, teardown),
		cmocka_unit_test_teardown(test_name_of, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
