/*
 * test_strtab.c: the per-generation string table (src/core/strtab.c).
 *
 * The minimum global state of a session is set up by hand (options, chunk
 * size, the two tables, the two full queues, the generation) and synthetic
 * threads (struct gt_thread + struct gt_emit) intern names.  The String
 * definitions are checked by decoding the strings batches exactly as the
 * parser would (shared docs §2-§4): after gt_thread_collect (what the
 * advancer does) every strings batch of the generation is on the full queue.
 */
#define _GNU_SOURCE 1
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <malloc.h>
#include <sched.h>
#include <time.h>
#include <cmocka.h>

#include "session/session.h" /* the advance, the event writers and everything below */
#include <urcu/rculfhash.h>

#if defined(__SANITIZE_ADDRESS__)
/* Freed memory is filled (0xa5) so that a stale read through a freed string
 * node (test_reset_while_resizing) follows a wild pointer and crashes instead
 * of silently reading old contents: liburcu is not instrumented, ASan cannot
 * see its reads itself. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "max_free_fill_size=256:free_fill_byte=165";
}
#endif

#include "urcu_tsan.h"

/* ------------------------------------------------------------ state setup */

static void state_init(uint32_t chunk_cap)
{
	gotrace_options_init(&gt_session.opt);
	gt_session.chunk_cap = chunk_cap;
	gt_session.buffered = gt_session.buffered_peak = 0;
	for (int i = 0; i < 2; i++) {
		__cds_wfcq_init(&gt_session.qhead[i], &gt_session.qtail[i]);
		gt_session.msg_next[i] = 0;
		assert_int_equal(gt_strtab_init(&gt_session.strtab[i]), 0);
		assert_non_null(gt_session.strtab[i].ht);
		assert_true(gt_session.strtab[i].next_id == 0);
	}
	__atomic_store_n(&gt_session.gen, 1, __ATOMIC_RELEASE);
}

/* Free whatever is still queued (the flusher's job). */
static void queue_free(int parity)
{
	struct cds_wfcq_node *n;
	while ((n = __cds_wfcq_dequeue_blocking(&gt_session.qhead[parity], &gt_session.qtail[parity])) != NULL) {
		struct gt_chunk *c = caa_container_of(n, struct gt_chunk, qnode);
		__atomic_sub_fetch(&gt_session.buffered, c->len, __ATOMIC_RELAXED);
		gt_chunk_release(c);
	}
}

static void state_destroy(void)
{
	for (int i = 0; i < 2; i++) {
		queue_free(i);
		gt_strtab_destroy(&gt_session.strtab[i]);
		assert_null(gt_session.strtab[i].ht);
	}
	__atomic_store_n(&gt_session.gen, 0, __ATOMIC_RELEASE);
}

static int setup_big(void **state)
{
	(void)state;
	state_init(32768);
	return 0;
}

static int setup_small(void **state)
{
	(void)state;
	state_init(4096); /* limit 2048: strings batches get handed off */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	state_destroy();
	return 0;
}

static struct gt_thread *thr_new(uint64_t tid)
{
	struct gt_thread *t = calloc(1, sizeof *t);
	assert_non_null(t);
	t->tid = tid;
	t->state = GT_TS_RUNNING;
	return t;
}

static void thr_free(struct gt_thread *t)
{
	for (int i = 0; i < 2; i++) {
		gt_chunk_release(t->tb[i].ev);
		gt_chunk_release(t->tb[i].str);
	}
	free(t);
}

/* What gt_emit_begin does once the generation is read. */
static void emit_at(struct gt_emit *e, struct gt_thread *t, uint64_t gen, uint64_t now)
{
	e->t = t;
	e->gen = gen;
	e->tb = &t->tb[gen & 1];
	if (e->tb->gen != gen) {
		e->tb->gen = gen;
		e->tb->str_next = e->tb->str_end = 0;
		e->tb->dropped = 0;
		e->tb->stated = false;
	}
	e->now = now;
}

/* ---------------------------------------------------------------- decoder */

struct def {
	uint64_t id;
	uint32_t len;
	char *text;
};

struct defs {
	struct def *v;
	size_t n, cap;
	size_t chunks;
	uint64_t bytes;  /* sum of chunk lengths */
};

static void defs_add(struct defs *d, uint64_t id, const uint8_t *s, uint32_t len)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 64;
		d->v = realloc(d->v, d->cap * sizeof *d->v);
		assert_non_null(d->v);
	}
	struct def *x = &d->v[d->n++];
	x->id = id;
	x->len = len;
	x->text = malloc(len + 1);
	assert_non_null(x->text);
	memcpy(x->text, s, len);
	x->text[len] = 0;
}

static void defs_free(struct defs *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].text);
	free(d->v);
	memset(d, 0, sizeof *d);
}

/* Decode one finished strings batch of generation gen, appending its
 * definitions; every malformation fails the test. */
static void decode_strings_batch(const struct gt_chunk *c, uint64_t gen, struct defs *d)
{
	const uint8_t *p = c->data, *end = c->data + c->len;
	uint64_t bgen = 0, m = 0, ts = 0, size = 0;
	int n;
	assert_true(c->len >= 1);
	assert_int_equal(*p++, GT_EV_BATCH);
	assert_true((n = gt_get_uvarint(p, end, &bgen)) > 0);
	p += n;
	assert_true(bgen == gen);
	assert_true(c->gen == gen);
	assert_true((n = gt_get_uvarint(p, end, &m)) > 0);
	p += n;
	assert_true(m == GT_NO_ID);
	assert_true((n = gt_get_uvarint(p, end, &ts)) > 0);
	p += n;
	assert_true((n = gt_get_uvarint(p, end, &size)) > 0);
	assert_int_equal(n, GT_SIZE_FIELD);
	p += n;
	assert_int_equal(p - c->data, c->hdr_len);
	/* size counts exactly the bytes after the size field */
	assert_true(size == (uint64_t)(end - p));
	assert_true(size <= GT_MAX_BATCH);
	assert_true(size >= 1);
	assert_int_equal(*p++, GT_EV_STRINGS);
	while (p < end) {
		uint64_t id = 0, len = 0;
		assert_int_equal(*p++, GT_EV_STRING);
		assert_true((n = gt_get_uvarint(p, end, &id)) > 0);
		p += n;
		assert_true((n = gt_get_uvarint(p, end, &len)) > 0);
		p += n;
		assert_true(id != 0);          /* id 0 is reserved (§4) */
		assert_true(len >= 1);
		assert_true(len <= GT_MAX_STRING);
		assert_true(len <= (uint64_t)(end - p));
		defs_add(d, id, p, (uint32_t)len);
		p += len;
	}
	assert_true(p == end);
	d->chunks++;
	d->bytes += c->len;
}

/* Take every batch queued for gen's parity (after gt_thread_collect), check
 * the buffered accounting, decode the strings batches, free them all. */
static void drain_decode(uint64_t gen, struct defs *d)
{
	struct cds_wfcq_node *nd;
	uint64_t bytes = 0;
	while ((nd = __cds_wfcq_dequeue_blocking(&gt_session.qhead[gen & 1], &gt_session.qtail[gen & 1])) != NULL) {
		struct gt_chunk *c = caa_container_of(nd, struct gt_chunk, qnode);
		/* gt_queue_push flags the chunk before the enqueue */
		assert_int_equal(__atomic_load_n(&c->queued, __ATOMIC_ACQUIRE), 1);
		bytes += c->len;
		/* only strings batches are produced here: no events were written */
		assert_true(c->len > c->hdr_len);
		assert_int_equal(c->data[c->hdr_len], GT_EV_STRINGS);
		decode_strings_batch(c, gen, d);
		gt_chunk_release(c);
	}
	assert_true(__atomic_load_n(&gt_session.buffered, __ATOMIC_RELAXED) == bytes);
	__atomic_sub_fetch(&gt_session.buffered, bytes, __ATOMIC_RELAXED);
}

/* Number of definitions of id, and whether all have text s (len bytes). */
static int defs_count(const struct defs *d, uint64_t id, const char *s, size_t len, int *mismatch)
{
	int k = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].id != id)
			continue;
		k++;
		if (d->v[i].len != len || memcmp(d->v[i].text, s, len) != 0)
			(*mismatch)++;
	}
	return k;
}

static void assert_defined_once(const struct defs *d, uint64_t id, const char *s, size_t len)
{
	int mismatch = 0;
	int k = defs_count(d, id, s, len, &mismatch);
	if (k != 1 || mismatch)
		fail_msg("id %llu: %d definitions, %d with other text than \"%.*s\"",
		         (unsigned long long)id, k, mismatch, (int)(len > 60 ? 60 : len), s);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ tests */

static void test_intern_ids(void **state)
{
	(void)state;
	struct gt_thread *t = thr_new(101);
	struct gt_emit e;
	emit_at(&e, t, 1, 1000);

	uint64_t a = gt_intern(&e, "alpha", 5, false);
	uint64_t b = gt_intern(&e, "beta", 4, false);
	uint64_t c = gt_intern(&e, "gamma", 5, false);
	/* interned names: odd ids from 1 in a fresh table */
	assert_true(a == 1);
	assert_true(b == 3);
	assert_true(c == 5);
	/* same text, same id: same pointer, another pointer, must or not */
	assert_true(gt_intern(&e, "alpha", 5, false) == a);
	char copy[8];
	memcpy(copy, "alpha", 6);
	assert_true(gt_intern(&e, copy, 5, true) == a);
	assert_true(gt_intern(&e, "beta", 4, true) == b);
	/* lengths, not NUL bytes, delimit the text */
	uint64_t alph = gt_intern(&e, "alpha", 4, false);
	assert_true(alph == 7);
	uint64_t n1 = gt_intern(&e, "a\0b", 3, false);
	uint64_t n2 = gt_intern(&e, "a\0c", 3, false);
	assert_true(n1 == 9);
	assert_true(n2 == 11);
	assert_true(gt_intern(&e, "a\0b", 3, false) == n1);
	/* empty text: id 0, nothing defined, no id consumed */
	assert_true(gt_intern(&e, "", 0, false) == 0);
	assert_true(gt_intern(&e, "zzz", 0, true) == 0);
	assert_true(gt_session.strtab[1].next_id == 6);
	/* the other parity's table is untouched */
	assert_true(gt_session.strtab[0].next_id == 0);

	/* the definitions: exactly one per id, in t's strings batch of gen 1 */
	assert_non_null(t->tb[1].str);
	assert_null(t->tb[1].ev);
	assert_null(t->tb[0].str);
	gt_thread_collect(t, 1);
	assert_null(t->tb[1].str);
	struct defs d = { 0 };
	drain_decode(1, &d);
	assert_int_equal(d.chunks, 1);
	assert_int_equal(d.n, 6);
	assert_defined_once(&d, a, "alpha", 5);
	assert_defined_once(&d, b, "beta", 4);
	assert_defined_once(&d, c, "gamma", 5);
	assert_defined_once(&d, alph, "alph", 4);
	assert_defined_once(&d, n1, "a\0b", 3);
	assert_defined_once(&d, n2, "a\0c", 3);
	defs_free(&d);
	thr_free(t);
}

static void test_intern_long_and_binary(void **state)
{
	(void)state;
	struct gt_thread *t = thr_new(7);
	struct gt_emit e;
	emit_at(&e, t, 1, 5);
	char *big = malloc(GT_MAX_STRING);
	assert_non_null(big);
	for (size_t i = 0; i < GT_MAX_STRING; i++)
		big[i] = (char)(i * 31 + 1);
	uint64_t id1 = gt_intern(&e, big, GT_MAX_STRING, false);
	big[GT_MAX_STRING - 1] ^= 0x40; /* differs only in the last byte */
	uint64_t id2 = gt_intern(&e, big, GT_MAX_STRING, false);
	assert_true(id1 == 1);
	assert_true(id2 == 3);
	assert_true(gt_intern(&e, big, GT_MAX_STRING, false) == id2);
	uint8_t all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	uint64_t id3 = gt_intern(&e, (const char *)all, 256, false);
	assert_true(id3 == 5);
	gt_thread_collect(t, 1);
	struct defs d = { 0 };
	drain_decode(1, &d);
	assert_int_equal(d.n, 3);
	assert_defined_once(&d, id2, big, GT_MAX_STRING);
	big[GT_MAX_STRING - 1] ^= 0x40;
	assert_defined_once(&d, id1, big, GT_MAX_STRING);
	assert_defined_once(&d, id3, (const char *)all, 256);
	defs_free(&d);
	free(big);
	thr_free(t);
}

static void test_string_fresh(void **state)
{
	(void)state;
	struct gt_thread *t1 = thr_new(1), *t2 = thr_new(2);
	struct gt_emit e1, e2;
	emit_at(&e1, t1, 1, 10);
	emit_at(&e2, t2, 1, 10);
	enum { N = 100 };
	uint64_t ids[2 * N];
	char text[2 * N][32];
	for (int i = 0; i < N; i++) {
		/* the same text twice in a row: never merged */
		snprintf(text[2 * i], sizeof text[0], "msg %d", i / 2);
		snprintf(text[2 * i + 1], sizeof text[0], "msg %d", i / 2);
		ids[2 * i] = gt_string_fresh(&e1, text[2 * i], strlen(text[2 * i]), false);
		ids[2 * i + 1] = gt_string_fresh(&e2, text[2 * i + 1], strlen(text[2 * i + 1]), false);
	}
	/* interned names keep their small odd ids alongside */
	uint64_t nm = gt_intern(&e1, "name", 4, false);
	assert_true(nm == 1);
	assert_true(gt_intern(&e2, "name", 4, false) == 1);
	/* empty message: 0, no definition */
	assert_true(gt_string_fresh(&e1, "", 0, false) == 0);
	assert_true(gt_string_fresh(&e2, "x", 0, true) == 0);

	uint64_t sorted[2 * N];
	for (int i = 0; i < 2 * N; i++) {
		assert_true(ids[i] != 0);
		assert_true(ids[i] % 2 == 0);
		sorted[i] = ids[i];
	}
	qsort(sorted, 2 * N, sizeof sorted[0], cmp_u64);
	for (int i = 1; i < 2 * N; i++)
		if (sorted[i] == sorted[i - 1])
			fail_msg("fresh id %llu handed out twice", (unsigned long long)sorted[i]);
	/* per thread, ids are increasing (blocks from the shared counter) */
	for (int i = 2; i < 2 * N; i++)
		assert_true(ids[i] > ids[i - 2]);

	gt_thread_collect(t1, 1);
	gt_thread_collect(t2, 1);
	struct defs d = { 0 };
	drain_decode(1, &d);
	assert_int_equal(d.chunks, 2);
	assert_int_equal(d.n, 2 * N + 1); /* + "name", defined once (by t1) */
	for (int i = 0; i < 2 * N; i++)
		assert_defined_once(&d, ids[i], text[i], strlen(text[i]));
	defs_free(&d);
	thr_free(t1);
	thr_free(t2);
}

static void test_parity_and_reset(void **state)
{
	(void)state;
	struct gt_thread *t = thr_new(3);
	struct gt_emit e;
	/* gen 1 (parity 1) and gen 2 (parity 0) have separate tables */
	emit_at(&e, t, 1, 100);
	assert_true(gt_intern(&e, "a", 1, false) == 1);
	assert_true(gt_intern(&e, "b", 1, false) == 3);
	assert_true(gt_intern(&e, "c", 1, false) == 5);
	__atomic_store_n(&gt_session.gen, 2, __ATOMIC_RELEASE);
	emit_at(&e, t, 2, 200);
	assert_true(gt_intern(&e, "q", 1, false) == 1);
	assert_true(gt_intern(&e, "b", 1, false) == 3);
	assert_true(gt_session.strtab[0].next_id == 2);
	assert_true(gt_session.strtab[1].next_id == 3);

	/* the advancer finishing gen 1: collect, write out, empty the table */
	gt_thread_collect(t, 1);
	struct defs d1 = { 0 };
	drain_decode(1, &d1);
	assert_int_equal(d1.n, 3);
	assert_defined_once(&d1, 1, "a", 1);
	assert_defined_once(&d1, 3, "b", 1);
	assert_defined_once(&d1, 5, "c", 1);
	defs_free(&d1);
	gt_strtab_reset(&gt_session.strtab[1]);
	assert_true(gt_session.strtab[1].next_id == 0);
	/* the other table is intact */
	assert_true(gt_session.strtab[0].next_id == 2);
	assert_true(gt_intern(&e, "b", 1, false) == 3);

	/* gen 3 reuses parity 1: empty table, counter restarted, old texts
	 * get new definitions */
	__atomic_store_n(&gt_session.gen, 3, __ATOMIC_RELEASE);
	emit_at(&e, t, 3, 300);
	assert_true(gt_intern(&e, "c", 1, false) == 1);
	assert_true(gt_intern(&e, "a", 1, false) == 3);
	assert_true(gt_intern(&e, "c", 1, false) == 1);
	gt_thread_collect(t, 3);
	struct defs d3 = { 0 };
	drain_decode(3, &d3);
	assert_int_equal(d3.n, 2);
	assert_defined_once(&d3, 1, "c", 1);
	assert_defined_once(&d3, 3, "a", 1);
	defs_free(&d3);

	gt_thread_collect(t, 2);
	struct defs d2 = { 0 };
	drain_decode(2, &d2);
	assert_int_equal(d2.n, 2);
	assert_defined_once(&d2, 1, "q", 1);
	assert_defined_once(&d2, 3, "b", 1);
	defs_free(&d2);

	/* reset of a table with many entries (lfht grew) empties it */
	for (int i = 0; i < 3000; i++) {
		char s[16];
		int n = snprintf(s, sizeof s, "n%d", i);
		assert_true(gt_intern(&e, s, (size_t)n, false) == 2u * (uint64_t)i + 5);
	}
	gt_thread_collect(t, 3);
	struct defs d4 = { 0 };
	drain_decode(3, &d4);
	assert_int_equal(d4.n, 3000);
	defs_free(&d4);
	gt_strtab_reset(&gt_session.strtab[1]);
	unsigned long cnt_before, cnt_after;
	long split;
	rcu_read_lock();
	cds_lfht_count_nodes(gt_session.strtab[1].ht, &split, &cnt_before, &split);
	rcu_read_unlock();
	assert_int_equal(cnt_before, 0);
	__atomic_store_n(&gt_session.gen, 5, __ATOMIC_RELEASE);
	emit_at(&e, t, 5, 500);
	assert_true(gt_intern(&e, "n5", 2, false) == 1);
	rcu_read_lock();
	cds_lfht_count_nodes(gt_session.strtab[1].ht, &split, &cnt_after, &split);
	rcu_read_unlock();
	assert_int_equal(cnt_after, 1);
	thr_free(t);
}

/* Many names in one thread with small batches: definitions are spread over
 * several handed-off batches, still exactly one per id. */
static void test_many_names_handoff(void **state)
{
	(void)state;
	struct gt_thread *t = thr_new(11);
	struct gt_emit e;
	emit_at(&e, t, 1, 42);
	enum { N = 600 };
	static char names[N][80];
	static uint64_t ids[N];
	for (int i = 0; i < N; i++) {
		int len = 1 + (i * 37) % 70;
		for (int j = 0; j < len; j++)
			names[i][j] = (char)('a' + (i * 7 + j * 3) % 26);
		snprintf(names[i] + len, sizeof names[i] - (size_t)len, "#%d", i);
		ids[i] = gt_intern(&e, names[i], strlen(names[i]), false);
		assert_true(ids[i] == 2u * (uint64_t)i + 1);
	}
	/* again: no new ids, no new definitions */
	uint64_t before = __atomic_load_n(&gt_session.strtab[1].next_id, __ATOMIC_RELAXED);
	for (int i = N - 1; i >= 0; i--)
		assert_true(gt_intern(&e, names[i], strlen(names[i]), false) == ids[i]);
	assert_true(__atomic_load_n(&gt_session.strtab[1].next_id, __ATOMIC_RELAXED) == before);
	gt_thread_collect(t, 1);
	struct defs d = { 0 };
	drain_decode(1, &d);
	assert_true(d.chunks > 5);
	assert_int_equal(d.n, N);
	for (int i = 0; i < N; i++)
		assert_defined_once(&d, ids[i], names[i], strlen(names[i]));
	defs_free(&d);
	thr_free(t);
}

/* Memory bound reached: intern returns 0 and leaves nothing behind that a
 * later lookup could return undefined; must-emit names use the reserve. */
static void test_memory_bound(void **state)
{
	(void)state;
	gt_session.opt.max_buffered = 1; /* no hand-off is ever allowed */
	struct gt_thread *t = thr_new(12);
	struct gt_emit e;
	emit_at(&e, t, 1, 42);
	enum { N = 400 };
	static char names[N][48];
	static uint64_t ids[N];
	int first_fail = -1;
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "a-fairly-long-name-number-%06d", i);
		ids[i] = gt_intern(&e, names[i], strlen(names[i]), false);
		if (ids[i] == 0 && first_fail < 0)
			first_fail = i;
		if (first_fail >= 0)
			assert_true(ids[i] == 0); /* stays full */
	}
	assert_true(first_fail > 0);
	/* nothing was queued */
	assert_true(__atomic_load_n(&gt_session.buffered, __ATOMIC_RELAXED) == 0);
	/* a failed name was not published: it fails again, not an id */
	assert_true(gt_intern(&e, names[first_fail], strlen(names[first_fail]), false) == 0);
	static const char msg[] = "a message at least as long as the names";
	assert_true(sizeof msg - 1 >= strlen(names[0]));
	assert_true(gt_string_fresh(&e, msg, sizeof msg - 1, false) == 0);
	/* names already defined are still found */
	assert_true(gt_intern(&e, names[0], strlen(names[0]), false) == ids[0]);
	/* must: the reserve takes it */
	uint64_t m1 = gt_intern(&e, names[first_fail], strlen(names[first_fail]), true);
	assert_true(m1 != 0 && (m1 & 1));
	uint64_t m2 = gt_string_fresh(&e, msg, sizeof msg - 1, true);
	assert_true(m2 != 0 && !(m2 & 1));
	assert_true(gt_intern(&e, names[first_fail], strlen(names[first_fail]), false) == m1);

	gt_thread_collect(t, 1);
	struct defs d = { 0 };
	drain_decode(1, &d);
	assert_int_equal(d.chunks, 1);
	for (int i = 0; i < first_fail; i++)
		assert_defined_once(&d, ids[i], names[i], strlen(names[i]));
	assert_defined_once(&d, m1, names[first_fail], strlen(names[first_fail]));
	assert_defined_once(&d, m2, msg, sizeof msg - 1);
	assert_int_equal(d.n, (size_t)first_fail + 2);
	defs_free(&d);
	thr_free(t);
}

/* ------------------------------------------------------------ concurrency */

#define NTHR 4
#define NNAMES 200
#define NMSG 40
#define ROUNDS 40

static char cnames[NNAMES][160];
static size_t cnames_len[NNAMES];

static unsigned start_count; /* atomic: spin start of a round */

struct worker {
	struct gt_thread *t;
	uint64_t gen;
	unsigned seed;
	pthread_barrier_t *bar;
	uint64_t ids[NNAMES];
	uint64_t msg_ids[NMSG];
	char msg[NMSG][32];
	int zero;  /* interning failures (none expected) */
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int order[NNAMES];
	for (int i = 0; i < NNAMES; i++)
		order[i] = i;
	for (int i = NNAMES - 1; i > 0; i--) {
		int j = (int)(rand_r(&w->seed) % (unsigned)(i + 1));
		int x = order[i];
		order[i] = order[j];
		order[j] = x;
	}
	struct gt_emit e;
	emit_at(&e, w->t, w->gen, 1000 + w->gen);
	pthread_barrier_wait(w->bar);
	/* tighter start than the barrier's wake-ups */
	__atomic_add_fetch(&start_count, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&start_count, __ATOMIC_ACQUIRE) % NTHR != 0)
		;
	int m = 0;
	for (int k = 0; k < NNAMES; k++) {
		int i = order[k];
		w->ids[i] = gt_intern(&e, cnames[i], cnames_len[i], false);
		if (w->ids[i] == 0)
			w->zero++;
		if (k % (NNAMES / NMSG) == 0 && m < NMSG) {
			snprintf(w->msg[m], sizeof w->msg[m], "t%llu m%d",
			         (unsigned long long)w->t->tid, m);
			w->msg_ids[m] = gt_string_fresh(&e, w->msg[m], strlen(w->msg[m]), false);
			if (w->msg_ids[m] == 0)
				w->zero++;
			m++;
		}
		/* a second lookup of an earlier name: a hit */
		int back = order[k / 2];
		if (gt_intern(&e, cnames[back], cnames_len[back], false) != w->ids[back])
			w->zero += 1000;
	}
	return NULL;
}

static uint64_t lost_races; /* ids wasted by threads losing an insertion */

static void concurrent_round(uint64_t gen, unsigned seed)
{
	struct worker w[NTHR];
	pthread_t th[NTHR];
	pthread_barrier_t bar;
	assert_int_equal(pthread_barrier_init(&bar, NULL, NTHR), 0);
	__atomic_store_n(&gt_session.gen, gen, __ATOMIC_RELEASE);
	for (int k = 0; k < NTHR; k++) {
		memset(&w[k], 0, sizeof w[k]);
		w[k].t = thr_new(100 + (uint64_t)k);
		w[k].gen = gen;
		/* even rounds: every thread its own random order; odd rounds:
		 * one random order for all (they race for the same names) */
		w[k].seed = gen & 1 ? seed * 31u : seed * 31u + (unsigned)k;
		w[k].bar = &bar;
		assert_int_equal(pthread_create(&th[k], NULL, worker_main, &w[k]), 0);
	}
	for (int k = 0; k < NTHR; k++)
		assert_int_equal(pthread_join(th[k], NULL), 0);
	pthread_barrier_destroy(&bar);

	/* the advancer: every thread left gen; collect their batches */
	for (int k = 0; k < NTHR; k++)
		gt_thread_collect(w[k].t, gen);
	struct defs d = { 0 };
	drain_decode(gen, &d);

	for (int k = 0; k < NTHR; k++)
		assert_int_equal(w[k].zero, 0);
	/* every thread got the same id for the same name; ids odd, distinct
	 * across names */
	uint64_t sorted[NNAMES];
	for (int i = 0; i < NNAMES; i++) {
		uint64_t id = w[0].ids[i];
		assert_true(id != 0 && (id & 1));
		for (int k = 1; k < NTHR; k++)
			if (w[k].ids[i] != id)
				fail_msg("gen %llu name %d: thread 0 got id %llu, thread %d got %llu",
				         (unsigned long long)gen, i, (unsigned long long)id, k,
				         (unsigned long long)w[k].ids[i]);
		sorted[i] = id;
	}
	qsort(sorted, NNAMES, sizeof sorted[0], cmp_u64);
	for (int i = 1; i < NNAMES; i++)
		assert_true(sorted[i] != sorted[i - 1]);
	/* ids stay small: at most one wasted id per lost race */
	uint64_t next = __atomic_load_n(&gt_session.strtab[gen & 1].next_id, __ATOMIC_RELAXED);
	assert_true(next >= NNAMES);
	assert_true(next <= (uint64_t)NNAMES * NTHR);
	assert_true(sorted[NNAMES - 1] <= 2 * next - 1);
	lost_races += next - NNAMES;

	/* no id is defined with two different texts, across all batches */
	for (size_t i = 0; i < d.n; i++)
		for (size_t j = i + 1; j < d.n; j++)
			if (d.v[i].id == d.v[j].id &&
			    (d.v[i].len != d.v[j].len || memcmp(d.v[i].text, d.v[j].text, d.v[i].len) != 0))
				fail_msg("id %llu defined as \"%s\" and \"%s\"", (unsigned long long)d.v[i].id,
				         d.v[i].text, d.v[j].text);
	/* every id in use is defined, with its text */
	for (int i = 0; i < NNAMES; i++) {
		int mismatch = 0;
		int k = defs_count(&d, w[0].ids[i], cnames[i], cnames_len[i], &mismatch);
		if (k < 1 || mismatch)
			fail_msg("name %d id %llu: %d definitions, %d wrong", i,
			         (unsigned long long)w[0].ids[i], k, mismatch);
	}
	/* messages: distinct even ids, each defined exactly once */
	uint64_t msorted[NTHR * NMSG];
	int nm = 0;
	for (int k = 0; k < NTHR; k++)
		for (int m = 0; m < NMSG; m++) {
			uint64_t id = w[k].msg_ids[m];
			assert_true(id != 0 && !(id & 1));
			assert_defined_once(&d, id, w[k].msg[m], strlen(w[k].msg[m]));
			msorted[nm++] = id;
		}
	qsort(msorted, (size_t)nm, sizeof msorted[0], cmp_u64);
	for (int i = 1; i < nm; i++)
		assert_true(msorted[i] != msorted[i - 1]);
	/* every definition is either a used name, a lost race's unused odd id
	 * (with that name's text), or a message */
	for (size_t i = 0; i < d.n; i++) {
		if (d.v[i].id & 1) {
			bool known = false;
			for (int n = 0; n < NNAMES && !known; n++)
				known = d.v[i].len == cnames_len[n] &&
				        memcmp(d.v[i].text, cnames[n], cnames_len[n]) == 0;
			if (!known)
				fail_msg("id %llu defines unknown text \"%s\"", (unsigned long long)d.v[i].id,
				         d.v[i].text);
		} else {
			assert_non_null(bsearch(&d.v[i].id, msorted, (size_t)nm, sizeof msorted[0], cmp_u64));
		}
	}
	defs_free(&d);
	for (int k = 0; k < NTHR; k++)
		thr_free(w[k].t);

	/* end of the generation for the table */
	gt_strtab_reset(&gt_session.strtab[gen & 1]);
	__atomic_store_n(&gt_session.msg_next[gen & 1], 0, __ATOMIC_RELAXED);
}

static void test_concurrent_intern(void **state)
{
	(void)state;
	for (int i = 0; i < NNAMES; i++) {
		size_t len = (size_t)(4 + (i * 53) % 140);
		for (size_t j = 0; j < len; j++)
			cnames[i][j] = (char)('A' + (i + (int)j * 5) % 58);
		int n = snprintf(cnames[i] + len, sizeof cnames[i] - len, ".%d", i);
		cnames_len[i] = len + (size_t)n;
	}
	lost_races = 0;
	for (int r = 0; r < ROUNDS; r++)
		concurrent_round(1 + (uint64_t)r, 0x1234u + (unsigned)r);
	fprintf(stderr, "# %d rounds: %llu insertions lost to another thread\n", ROUNDS,
	        (unsigned long long)lost_races);
}

/* gt_strtab_reset runs right after a generation in which many names were
 * interned, i.e. while the lfht's resize worker (a liburcu thread) may still
 * be growing the table: it walks the chains, regular nodes included, under
 * its own rcu_read_lock.  Nodes freed by the reset must not be reachable by
 * that walk.  A use-after-free there crashes the worker thread (the whole
 * test program dies with SIGSEGV in liburcu-cds), but only when the worker
 * happens to be walking (measured with the old reset, which freed at once:
 * 5-10 of 12 runs of this program crashed in a plain build, about half under
 * ASan, where the instrumented inserts are slower than the native worker).
 *
 * So each round also runs a walker of our own: a thread that iterates the
 * table under rcu_read_lock, the worker's discipline, for as long as the
 * reset runs, and reads every node it stands on from instrumented code (the
 * lfht node's reverse_hash).  A node freed while a read-side walker can
 * still reach it is then a heap-use-after-free report under ASan on the
 * first round (6 of 6 runs against the old reset), and a wild read of the
 * 0xa5 fill otherwise.  The resize worker keeps its chance to race, too. */
#if defined(__SANITIZE_THREAD__)
#define RESIZE_ROUNDS 2
#elif defined(__SANITIZE_ADDRESS__)
#define RESIZE_ROUNDS 3
#else
#define RESIZE_ROUNDS 6
#endif
#define RESIZE_NAMES 300000

#include "lfht_walkers.h"

static void test_reset_while_resizing(void **state)
{
	(void)state;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	mallopt(M_PERTURB, 165); /* freed memory filled, as MALLOC_PERTURB_ */
#endif
	fprintf(stderr, "# %d rounds of %d names then gt_strtab_reset; a SIGSEGV in "
	        "liburcu-cds or a use-after-free here is the reset freeing nodes a "
	        "read-side walker (the lfht resize worker, our walker) still reaches\n",
	        RESIZE_ROUNDS, RESIZE_NAMES);
	struct gt_thread *t = thr_new(21);
	for (int r = 0; r < RESIZE_ROUNDS; r++) {
		uint64_t gen = 1 + 2 * (uint64_t)r;
		__atomic_store_n(&gt_session.gen, gen, __ATOMIC_RELEASE);
		struct gt_emit e;
		emit_at(&e, t, gen, 7);
		for (int i = 0; i < RESIZE_NAMES; i++) {
			char s[32];
			int n = snprintf(s, sizeof s, "r%d-name-%d", r, i);
			uint64_t id = gt_intern(&e, s, (size_t)n, true);
			if (id != 2u * (uint64_t)i + 1)
				fail_msg("round %d name %d: id %llu, want %llu", r, i,
				         (unsigned long long)id, 2ull * (unsigned long long)i + 1);
		}
		/* the advancer: collect, write out, empty the table at once,
		 * with a read-side walker on it */
		gt_thread_collect(t, gen);
		queue_free(1);
		struct walker w = { .ht = gt_session.strtab[1].ht };
		struct staller st = { .ht = gt_session.strtab[1].ht };
		pthread_t th, sth;
		/* One at a time: a thread's first rcu_read_lock registers it
		 * with urcu-bp, which waits for a grace period in progress,
		 * which waits for the staller: never start one behind it. */
		assert_int_equal(pthread_create(&th, NULL, walker_main, &w), 0);
		while (!__atomic_load_n(&w.go, __ATOMIC_ACQUIRE))
			sched_yield();
		assert_int_equal(pthread_create(&sth, NULL, staller_main, &st), 0);
		while (!__atomic_load_n(&st.go, __ATOMIC_ACQUIRE))
			sched_yield();
		gt_strtab_reset(&gt_session.strtab[1]);
		__atomic_store_n(&st.done, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(pthread_join(sth, NULL), 0);
		assert_int_equal(__atomic_load_n(&st.timed_out, __ATOMIC_RELAXED), 0);
		if (r == 0)
			fprintf(stderr, "# round 0: the walker passed %llu times, %llu nodes\n",
			        (unsigned long long)w.passes, (unsigned long long)w.visits);
		assert_true(gt_session.strtab[1].next_id == 0);
		unsigned long cnt;
		long before, after;
		rcu_read_lock();
		cds_lfht_count_nodes(gt_session.strtab[1].ht, &before, &cnt, &after);
		rcu_read_unlock();
		assert_int_equal(cnt, 0);
	}
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	mallopt(M_PERTURB, 0);
#endif
	thr_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_intern_ids, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_intern_long_and_binary, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_string_fresh, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_parity_and_reset, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_many_names_handoff, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_memory_bound, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_intern, setup_small, teardown),
		/* last: a failure kills the program (see the test) */
		cmocka_unit_test_setup_teardown(test_reset_while_resizing, setup_big, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
