/*
 * test_site_ids.c: the string ids of the _lit call sites (src/emit/event.c,
 * site_define).  A site's first call in a generation defines its literal
 * under a fresh (even) id of the thread's block and caches it in the
 * site's word, as long as that id takes one varint byte; otherwise (the
 * generation's fresh ids are shared with its log messages) it interns the
 * literal (odd ids, which count names alone).  The test reaches the second
 * case by moving the generation's message counter (gt_session.msg_next).
 * Both traces must satisfy the validators and name every region right.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gotrace.h"
#include "core/core.h"
#include "tracecheck.h"

#define ID_BITS 24 /* event.c, SITE_ID_BITS */

/* One region on site s, and what the site's word holds after it. */
static uint64_t region_on(gotrace_site *s, uint64_t *gen)
{
	gotrace_region_end_site_(0, s, gotrace_region_begin_site_(0, s));
	uint64_t w = __atomic_load_n(&s->cache_, __ATOMIC_RELAXED);
	*gen = w >> ID_BITS;
	return w & ((1u << ID_BITS) - 1);
}

static int regions_named(const char *path, const char *name)
{
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	int n = 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (!strcmp(l->kind, "regionbegin") || !strcmp(l->kind, "regionend")) {
			assert_string_equal(tl_get(l, "name"), name);
			n++;
		}
	}
	tsum_free(&s);
	return n;
}

static void test_fresh_then_interned(void **state)
{
	(void)state;
	static gotrace_site site = { "site-ids", 8, 0 };
	char *path = tmp_trace_path("site-ids");
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 10ull * 1000 * 1000 * 1000; /* boundaries: ours */
	assert_int_equal(gotrace_start_path(path, &o), 0);

	/* A fresh definition: an even id, cached for this generation. */
	uint64_t g0 = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE), g;
	uint64_t id = region_on(&site, &g);
	assert_int_equal(g, g0);
	assert_true(id != 0 && id % 2 == 0);
	assert_int_equal(region_on(&site, &g), id); /* the cached id */

	/* The next generation's fresh ids past one varint byte, as after 64
	 * log messages: the site interns its literal.  (The counter of a
	 * generation's parity is reset when the generation two before is
	 * written out, before this one began: moving it now holds for this
	 * generation alone.) */
	assert_int_equal(gotrace_flush(), 0);
	uint64_t g1 = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE);
	assert_true(g1 > g0);
	__atomic_fetch_add(&gt_session.msg_next[g1 & 1], 64, __ATOMIC_RELAXED);
	id = region_on(&site, &g);
	assert_int_equal(g, g1);
	assert_true(id % 2 == 1 && id < 128); /* interned, one byte */
	assert_int_equal(region_on(&site, &g), id);
	gotrace_log(0, "cat", "a message under a fresh id of two bytes");

	/* And fresh again in the generation after. */
	assert_int_equal(gotrace_flush(), 0);
	id = region_on(&site, &g);
	assert_true(g > g1);
	assert_true(id != 0 && id % 2 == 0);

	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	assert_int_equal(regions_named(path, "site-ids"), 2 * 5);
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_then_interned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
