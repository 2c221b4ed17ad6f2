/*
 * test_evstack.c: the per-generation event-stack table (src/stacks/evstack.c):
 * interning, what the advancer writes and empties (gt_evstack_write), what
 * the crash flush sees (gt_evstack_crash_walk, gt_evstack_crash_frame), and
 * the reset racing a read-side walker (the discipline of liburcu's lfht
 * resize worker, which may still walk the table when the advancer empties
 * it).
 *
 * Stacks are given as PCs (gt_evstack_intern): gt_evstack_capture's
 * walk leaves out the frames of the module holding the
 * library, which in this test program is the whole program.
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
#include <sched.h>
#include <time.h>
#include <malloc.h>
#include <cmocka.h>

#include "session/session.h" /* the advance, the event writers and everything below */
#include <urcu/rculfhash.h>

#if defined(__SANITIZE_ADDRESS__)
/* Freed memory is filled, so that a walk through a freed node in liburcu
 * (not instrumented) follows a wild pointer (see test_strtab.c). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "max_free_fill_size=256:free_fill_byte=165";
}
#endif

#include "urcu_tsan.h"

/* ------------------------------------------------------------ state setup */

static int setup(void **state)
{
	(void)state;
	gotrace_options_init(&gt_session.opt);
	gt_session.opt.event_stacks = GOTRACE_STACK_ALL;
	gt_session.chunk_cap = 32768;
	gt_session.buffered = gt_session.buffered_peak = 0;
	for (int i = 0; i < 2; i++) {
		__cds_wfcq_init(&gt_session.qhead[i], &gt_session.qtail[i]);
		gt_session.msg_next[i] = 0;
		assert_int_equal(gt_strtab_init(&gt_session.strtab[i]), 0);
	}
	__atomic_store_n(&gt_session.gen, 1, __ATOMIC_RELEASE);
	return 0;
}

static void queue_free(int parity)
{
	struct cds_wfcq_node *n;
	while ((n = __cds_wfcq_dequeue_blocking(&gt_session.qhead[parity], &gt_session.qtail[parity])) != NULL) {
		struct gt_chunk *c = caa_container_of(n, struct gt_chunk, qnode);
		__atomic_sub_fetch(&gt_session.buffered, c->len, __ATOMIC_RELAXED);
		gt_chunk_release(c);
	}
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
		gt_evstack_write((uint64_t)i + 100, 1); /* empty both tables */
		gt_thread_collect(&gt_advancer, (uint64_t)i + 100);
		queue_free(i);
		gt_strtab_destroy(&gt_session.strtab[i]);
	}
	__atomic_store_n(&gt_session.gen, 0, __ATOMIC_RELEASE);
	return 0;
}

static struct gt_emit emit_at(struct gt_thread *t, uint64_t gen)
{
	struct gt_emit e = { .t = t, .gen = gen, .tb = &t->tb[gen & 1], .now = 7 };
	if (e.tb->gen != gen) {
		e.tb->gen = gen;
		e.tb->str_next = e.tb->str_end = 0;
	}
	return e;
}

/* Stack i: 4 frames, PCs inside this program's text (symbolisable). */
#define NFR 4
static void stack_of(uint64_t i, uint64_t pcs[NFR])
{
	uint64_t base = (uint64_t)(uintptr_t)&setup;
	pcs[0] = base + (i % 64);
	pcs[1] = (uint64_t)(uintptr_t)&teardown + (i / 64) % 64;
	pcs[2] = (uint64_t)(uintptr_t)&queue_free + (i / 4096) % 64;
	pcs[3] = (uint64_t)(uintptr_t)&stack_of + (i / 262144) % 16;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------ crash-walk record */

struct seen {
	size_t n, cap;
	uint64_t *id;
	uint64_t (*pcs)[NFR];
	int bad;
};

static bool seen_cb(void *arg, uint64_t id, const uint64_t *pcs, int n)
{
	struct seen *s = arg;
	if (n != NFR) {
		s->bad++;
		return true;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->id = realloc(s->id, s->cap * sizeof *s->id);
		s->pcs = realloc(s->pcs, s->cap * sizeof *s->pcs);
		assert_non_null(s->id);
		assert_non_null(s->pcs);
	}
	s->id[s->n] = id;
	memcpy(s->pcs[s->n], pcs, sizeof s->pcs[0]);
	s->n++;
	return true;
}

static void seen_free(struct seen *s)
{
	free(s->id);
	free(s->pcs);
	memset(s, 0, sizeof *s);
}

/* ----------------------------------------------- decoding what was written */

struct written {
	size_t nstk, nstr;
	uint64_t stk_id[8192];
	uint64_t stk_pc[8192][NFR];
	uint64_t stk_str[8192][2 * NFR];
	uint64_t str_id[8192];
};

static uint64_t get(const uint8_t **p, const uint8_t *end)
{
	uint64_t v = 0;
	int n = gt_get_uvarint(*p, end, &v);
	assert_true(n > 0);
	*p += n;
	return v;
}

/* Collect the advancer's strings, decode every batch queued for gen. */
static void drain_written(uint64_t gen, struct written *w)
{
	gt_thread_collect(&gt_advancer, gen);
	struct cds_wfcq_node *nd;
	while ((nd = __cds_wfcq_dequeue_blocking(&gt_session.qhead[gen & 1], &gt_session.qtail[gen & 1])) != NULL) {
		struct gt_chunk *c = caa_container_of(nd, struct gt_chunk, qnode);
		const uint8_t *p = c->data, *end = c->data + c->len;
		assert_int_equal(*p++, GT_EV_BATCH);
		assert_true(get(&p, end) == gen);
		assert_true(get(&p, end) == GT_NO_ID);
		(void)get(&p, end);
		assert_true(get(&p, end) == (uint64_t)(end - p));
		uint8_t kind = *p++;
		if (kind == GT_EV_STACKS) {
			while (p < end) {
				assert_int_equal(*p++, GT_EV_STACK);
				assert_true(w->nstk < 8192);
				size_t k = w->nstk++;
				w->stk_id[k] = get(&p, end);
				assert_true(get(&p, end) == NFR);
				for (int f = 0; f < NFR; f++) {
					w->stk_pc[k][f] = get(&p, end);
					w->stk_str[k][2 * f] = get(&p, end);
					w->stk_str[k][2 * f + 1] = get(&p, end);
					assert_true(get(&p, end) >= 1); /* line */
				}
			}
		} else {
			assert_int_equal(kind, GT_EV_STRINGS);
			while (p < end) {
				assert_int_equal(*p++, GT_EV_STRING);
				assert_true(w->nstr < 8192);
				w->str_id[w->nstr++] = get(&p, end);
				uint64_t len = get(&p, end);
				assert_true(len >= 1 && len <= (uint64_t)(end - p));
				p += len;
			}
		}
		assert_true(p == end);
		__atomic_sub_fetch(&gt_session.buffered, c->len, __ATOMIC_RELAXED);
		gt_chunk_release(c);
	}
}

static unsigned long table_count(uint64_t gen)
{
	unsigned long cnt;
	long before, after;
	rcu_read_lock();
	cds_lfht_count_nodes(gt_evstack_ht(gen), &before, &cnt, &after);
	rcu_read_unlock();
	return cnt;
}

/* ------------------------------------------------------------------ tests */

#define NSTK 3000

static void test_intern_write_empty(void **state)
{
	(void)state;
	static uint64_t ids[NSTK], sorted[NSTK];
	struct gt_thread *t = calloc(1, sizeof *t);
	assert_non_null(t);
	uint64_t g = 5;
	struct gt_emit e = emit_at(t, g);
	for (int i = 0; i < NSTK; i++) {
		uint64_t pcs[NFR];
		stack_of((uint64_t)i, pcs);
		ids[i] = gt_evstack_intern(&e, pcs, NFR);
		assert_true(ids[i] & 1); /* odd: interned stack ids */
	}
	for (int i = 0; i < NSTK; i++) { /* hits */
		uint64_t pcs[NFR];
		stack_of((uint64_t)i, pcs);
		assert_true(gt_evstack_intern(&e, pcs, NFR) == ids[i]);
	}
	memcpy(sorted, ids, sizeof ids);
	qsort(sorted, NSTK, sizeof sorted[0], cmp_u64);
	for (int i = 1; i < NSTK; i++)
		assert_true(sorted[i] != sorted[i - 1]);
	/* The other parity's table is another table. */
	struct gt_emit e2 = emit_at(t, g + 1);
	uint64_t pcs0[NFR];
	stack_of(0, pcs0);
	assert_true(gt_evstack_intern(&e2, pcs0, NFR) != 0);
	assert_true(table_count(g + 1) == 1);
	assert_true(table_count(g) == NSTK);

	/* What the crash flush sees: every stack once, with its PCs. */
	struct seen s = { 0 };
	gt_evstack_crash_walk(g, seen_cb, &s);
	assert_int_equal(s.bad, 0);
	assert_int_equal(s.n, NSTK);
	for (size_t k = 0; k < s.n; k++) {
		uint64_t *hit = bsearch(&s.id[k], sorted, NSTK, sizeof sorted[0], cmp_u64);
		assert_non_null(hit);
		int i = -1;
		for (int j = 0; j < NSTK; j++)
			if (ids[j] == s.id[k])
				i = j;
		uint64_t pcs[NFR];
		stack_of((uint64_t)i, pcs);
		assert_memory_equal(pcs, s.pcs[k], sizeof pcs);
	}
	seen_free(&s);

	/* The advancer writes each stack once, symbolised, and empties the
	 * table. */
	static struct written w;
	memset(&w, 0, sizeof w);
	gt_evstack_write(g, 9);
	drain_written(g, &w);
	assert_int_equal(w.nstk, NSTK);
	qsort(w.str_id, w.nstr, sizeof w.str_id[0], cmp_u64);
	for (size_t k = 0; k < w.nstk; k++) {
		assert_non_null(bsearch(&w.stk_id[k], sorted, NSTK, sizeof sorted[0], cmp_u64));
		for (int f = 0; f < 2 * NFR; f++)
			assert_non_null(bsearch(&w.stk_str[k][f], w.str_id, w.nstr, sizeof w.str_id[0], cmp_u64));
	}
	qsort(w.stk_id, w.nstk, sizeof w.stk_id[0], cmp_u64);
	for (size_t k = 1; k < w.nstk; k++)
		assert_true(w.stk_id[k] != w.stk_id[k - 1]); /* once each */
	assert_true(table_count(g) == 0);
	s = (struct seen){ 0 };
	gt_evstack_crash_walk(g, seen_cb, &s);
	assert_int_equal(s.n, 0);
	seen_free(&s);
	/* A second write of the same generation writes nothing. */
	memset(&w, 0, sizeof w);
	gt_evstack_write(g, 9);
	drain_written(g, &w);
	assert_int_equal(w.nstk, 0);

	/* Frames the crash flush can describe: a PC the advancer symbolised
	 * (the cache), one it did not (module+offset), and one outside every
	 * module (the bare address); never an empty string. */
	char buf[96];
	struct gt_frame fr;
	assert_true(gt_evstack_crash_frame(pcs0[0], &fr, buf, sizeof buf));
	assert_true(fr.pc == pcs0[0] && fr.line >= 1 && fr.func[0] && fr.file[0]);
	uint64_t fresh = (uint64_t)(uintptr_t)&cmp_u64 + 2;
	assert_false(gt_evstack_crash_frame(fresh, &fr, buf, sizeof buf));
	assert_true(fr.func == buf && strchr(buf, '+') && strstr(buf, "+0x"));
	assert_true(fr.file[0] && fr.line == 1);
	printf("# uncached pc: %s in %s\n", fr.func, fr.file);
	assert_false(gt_evstack_crash_frame(0x10, &fr, buf, sizeof buf));
	assert_string_equal(fr.func, "0x10");
	assert_string_equal(fr.file, "?");
	gt_evstack_write(g + 1, 9);
	gt_thread_collect(&gt_advancer, g + 1);
	queue_free((int)((g + 1) & 1));
	free(t);
}

/* Threads racing for the same stacks: one id per stack, and the crash walk
 * and the advancer see each stack once (the losers' nodes are skipped). */
#define RACE_THR 4
#define RACE_STK 2000
struct racer {
	struct gt_thread *t;
	uint64_t gen;
	pthread_barrier_t *bar;
	uint64_t ids[RACE_STK];
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct gt_emit e = emit_at(r->t, r->gen);
	pthread_barrier_wait(r->bar);
	for (int i = 0; i < RACE_STK; i++) {
		uint64_t pcs[NFR];
		stack_of((uint64_t)i * 7 + 1, pcs);
		r->ids[i] = gt_evstack_intern(&e, pcs, NFR);
	}
	return NULL;
}

static void test_concurrent_intern(void **state)
{
	(void)state;
	for (uint64_t g = 11; g < 17; g++) {
		static struct racer r[RACE_THR];
		pthread_t th[RACE_THR];
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, RACE_THR);
		for (int k = 0; k < RACE_THR; k++) {
			r[k].t = calloc(1, sizeof *r[k].t);
			assert_non_null(r[k].t);
			r[k].gen = g;
			r[k].bar = &bar;
			assert_int_equal(pthread_create(&th[k], NULL, racer_main, &r[k]), 0);
		}
		for (int k = 0; k < RACE_THR; k++)
			pthread_join(th[k], NULL);
		pthread_barrier_destroy(&bar);
		for (int i = 0; i < RACE_STK; i++)
			for (int k = 1; k < RACE_THR; k++)
				assert_true(r[k].ids[i] == r[0].ids[i] && r[0].ids[i] != 0);
		struct seen s = { 0 };
		gt_evstack_crash_walk(g, seen_cb, &s);
		assert_int_equal(s.n, RACE_STK);
		seen_free(&s);
		static struct written w;
		memset(&w, 0, sizeof w);
		gt_evstack_write(g, 9);
		drain_written(g, &w);
		assert_int_equal(w.nstk, RACE_STK);
		for (int k = 0; k < RACE_THR; k++)
			free(r[k].t);
	}
}

/* The advancer empties a table right after a generation that interned many
 * stacks, while a read-side walker (the lfht resize worker's discipline:
 * rcu_read_lock, then walk) runs on it, reading every node it stands on
 * from instrumented code.  Nodes must not be freed while it can reach them
 * (heap-use-after-free under ASan, a wild read of the fill otherwise). */
#if defined(__SANITIZE_THREAD__)
#define WALK_ROUNDS 1
#else
#define WALK_ROUNDS 3
#endif
#define WALK_STK 60000

#include "lfht_walkers.h"

static void test_reset_with_walker(void **state)
{
	(void)state;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	mallopt(M_PERTURB, 165); /* freed memory filled, as MALLOC_PERTURB_ */
#endif
	struct gt_thread *t = calloc(1, sizeof *t);
	assert_non_null(t);
	for (int r = 0; r < WALK_ROUNDS; r++) {
		uint64_t g = 21 + 2 * (uint64_t)r;
		struct gt_emit e = emit_at(t, g);
		for (int i = 0; i < WALK_STK; i++) {
			uint64_t pcs[NFR];
			stack_of((uint64_t)i, pcs);
			assert_true(gt_evstack_intern(&e, pcs, NFR) != 0);
		}
		struct walker w = { .ht = gt_evstack_ht(g) };
		struct staller st = { .ht = gt_evstack_ht(g) };
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
		gt_evstack_write(g, 9);
		__atomic_store_n(&st.done, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(pthread_join(sth, NULL), 0);
		assert_int_equal(__atomic_load_n(&st.timed_out, __ATOMIC_RELAXED), 0);
		if (r == 0)
			printf("# %d stacks written while the walker passed %llu times (%llu nodes)\n",
			       WALK_STK, (unsigned long long)w.passes, (unsigned long long)w.visits);
		gt_thread_collect(&gt_advancer, g);
		queue_free((int)(g & 1));
		assert_true(table_count(g) == 0);
	}
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	mallopt(M_PERTURB, 0);
#endif
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_intern_write_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_intern, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_with_walker, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
