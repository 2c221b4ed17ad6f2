/* Helpers shared by the scheduling tests (test_syscall.c, test_block.c):
 * the state transitions Go's readers saw for one goroutine or one P. */
#ifndef GT_TEST_SCHEDCHECK_H
#define GT_TEST_SCHEDCHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "procstat.h"
#include "tracecheck.h"

static const char *readers[] __attribute__((unused)) = { "go1.23", "new" };

/* Id of the goroutine the summarizer names `name` (-1 if none / several). */
static inline int64_t goid_named(const struct tsum *s, const char *name)
{
	int64_t id = -1;
	int n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->lines[i].kind, "gsum") && !strcmp(tl_get(&s->lines[i], "name"), name))
			id = tl_int(&s->lines[i], "id"), n++;
	return n == 1 ? id : -1;
}

/* "from>to@gen,..." of the transitions of goroutine (kind "gostate") or
 * proc ("procstate") id, leaving out status re-statements (from == to). */
static inline char *transitions(const struct tsum *s, const char *kind, int64_t id)
{
	size_t cap = 1 << 16, len = 0;
	char *out = calloc(1, cap);
	for (size_t i = 0; i < s->n; i++) {
		const struct tline *l = &s->lines[i];
		if (strcmp(l->kind, kind) || tl_int(l, "id") != id)
			continue;
		const char *from = tl_get(l, "from"), *to = tl_get(l, "to");
		if (!strcmp(from, to))
			continue;
		len += (size_t)snprintf(out + len, cap - len, "%s%s>%s@%lld", len ? "," : "", from, to,
		                        (long long)l->gen);
	}
	return out;
}

/* The line of the k-th (0-based) transition from>to of kind/id, or NULL. */
static inline const struct tline *find_tr(const struct tsum *s, const char *kind, int64_t id,
                                   const char *from, const char *to, int k)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct tline *l = &s->lines[i];
		if (!strcmp(l->kind, kind) && tl_int(l, "id") == id && !strcmp(tl_get(l, "from"), from) &&
		    !strcmp(tl_get(l, "to"), to) && k-- == 0)
			return l;
	}
	return NULL;
}

static inline int64_t gsum_field(const struct tsum *s, int64_t id, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->lines[i].kind, "gsum") && tl_int(&s->lines[i], "id") == id)
			return tl_int(&s->lines[i], key);
	return -1;
}

/* Start tracing into a fresh temporary file (returned, malloc'd) with an
 * advance period, event stack classes and crash flags. */
#define SC_NO_ADVANCE (10ull * 1000 * 1000 * 1000) /* only explicit flushes */
static inline char *sc_start(const char *tag, uint64_t advance_ns, int stacks, int crash_flags)
{
	char *path = tmp_trace_path(tag);
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = advance_ns;
	o.event_stacks = stacks;
	o.crash_flags = crash_flags;
	assert_int_equal(gotrace_start_path(path, &o), 0);
	return path;
}

#define expect_str(got, want)                                                         \
	do {                                                                          \
		if (strcmp((got), (want)) != 0)                                       \
			fprintf(stderr, "%s:%d: got  %s\n    want %s\n", __FILE__, __LINE__, \
			        (got), (want));                                       \
		assert_string_equal((got), (want));                                   \
	} while (0)
/* Is thread tid asleep (state S in /proc)? */
static inline int sleeping(int tid)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/task/%d/stat", tid);
	return proc_stat_state(p) == 'S';
}

#endif
