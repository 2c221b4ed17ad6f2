/*
 * test_chunk.c: the pool of written chunks (src/core/chunk.c): reuse, the
 * size it serves, its memory bound (max_buffered / 4, and queued data plus
 * pool within max_buffered), draining, and many threads putting and taking
 * at once (each chunk owned by one thread at a time; under ASan a pooled
 * chunk is poisoned, under TSan the hand-offs are checked).
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
#include <cmocka.h>

#include "core/core.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#define CAP 4096u
static const size_t CSIZE = sizeof(struct gt_chunk) + CAP;

static int setup(void **state)
{
	(void)state;
	gotrace_options_init(&gt_session.opt);
	gt_session.opt.max_buffered = 4u << 20; /* pool bound: 1 MiB, ~250 chunks */
	gt_session.chunk_cap = CAP;
	gt_session.buffered = 0;
	gt_chunk_pool_drain();
	assert_int_equal(gt_chunk_pool_bytes(), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	gt_chunk_pool_drain();
	assert_int_equal(gt_chunk_pool_bytes(), 0);
	gt_session.buffered = 0;
	return 0;
}

static void assert_fresh(const struct gt_chunk *c, uint32_t cap, uint32_t reserve)
{
	assert_non_null(c);
	assert_int_equal(c->cap, cap);
	assert_int_equal(c->limit, cap > reserve ? cap - reserve : cap);
	assert_int_equal(c->len, 0);
	assert_int_equal(c->hdr_len, 0);
	assert_int_equal(c->queued, 0);
	assert_true(c->gen == 0 && c->last_ts == 0);
	assert_null(c->qnode.next);
}

/* A written chunk comes back, reinitialised, for the next taker. */
static void test_reuse(void **state)
{
	(void)state;
	struct gt_chunk *c = gt_chunk_new(CAP, GT_RESERVE);
	assert_fresh(c, CAP, GT_RESERVE);
	gt_chunk_open(c, 7, 3, 100);
	memset(c->data + c->len, 0x5a, 64);
	c->len += 64;
	__atomic_store_n(&c->queued, 1, __ATOMIC_RELAXED);
	gt_chunk_free(c);
	assert_int_equal(gt_chunk_pool_bytes(), CSIZE);
#if defined(__SANITIZE_ADDRESS__)
	assert_true(__asan_address_is_poisoned(c->data));
	assert_true(__asan_address_is_poisoned(&c->cap));
#endif
	struct gt_chunk *d = gt_chunk_new(CAP, 0);
	assert_ptr_equal(d, c);
	assert_fresh(d, CAP, 0);
	assert_int_equal(gt_chunk_pool_bytes(), 0);
	d->data[CAP - 1] = 1; /* all of it usable again */
	/* Other sizes bypass the pool both ways. */
	struct gt_chunk *s = gt_chunk_new(256, 0);
	assert_fresh(s, 256, 0);
	gt_chunk_free(s);
	assert_int_equal(gt_chunk_pool_bytes(), 0);
	gt_chunk_free(d);
	assert_int_equal(gt_chunk_pool_bytes(), CSIZE);
	struct gt_chunk *e = gt_chunk_new(256, 0); /* does not take d */
	assert_int_equal(gt_chunk_pool_bytes(), CSIZE);
	gt_chunk_release(e);
	gt_chunk_free(NULL);
}

/* Chunks pooled under one batch size are not handed out for another (a
 * later session): they are freed when met. */
static void test_size_change(void **state)
{
	(void)state;
	struct gt_chunk *c[4];
	for (int i = 0; i < 4; i++)
		c[i] = gt_chunk_new(CAP, 0);
	for (int i = 0; i < 4; i++)
		gt_chunk_free(c[i]);
	assert_int_equal(gt_chunk_pool_bytes(), 4 * CSIZE);
	gt_session.chunk_cap = 2 * CAP;
	struct gt_chunk *d = gt_chunk_new(2 * CAP, 0);
	assert_fresh(d, 2 * CAP, 0);
	assert_int_equal(gt_chunk_pool_bytes(), 0); /* the old ones were freed */
	d->data[2 * CAP - 1] = 1;
	gt_chunk_free(d);
	assert_int_equal(gt_chunk_pool_bytes(), sizeof(struct gt_chunk) + 2 * CAP);
	gt_session.chunk_cap = CAP;
}

/* The pool holds at most max_buffered / 4, and only while the data queued
 * plus the pool stay within max_buffered. */
static void test_bound(void **state)
{
	(void)state;
	enum { N = 400 };
	static struct gt_chunk *c[N];
	for (int i = 0; i < N; i++)
		c[i] = gt_chunk_new(CAP, 0);
	for (int i = 0; i < N; i++)
		gt_chunk_free(c[i]);
	size_t limit = gt_session.opt.max_buffered / 4;
	size_t pooled = gt_chunk_pool_bytes();
	printf("# %d written chunks of %zu bytes: %zu bytes pooled (bound %zu)\n", N, CSIZE, pooled, limit);
	assert_true(pooled <= limit);
	assert_true(pooled > limit - CSIZE);
	gt_chunk_pool_drain();
	assert_int_equal(gt_chunk_pool_bytes(), 0);

	/* Queued data counts: with 3.5 MiB queued, only 0.5 MiB may be pooled. */
	gt_session.buffered = gt_session.opt.max_buffered - (512u << 10);
	for (int i = 0; i < N; i++)
		c[i] = gt_chunk_new(CAP, 0);
	for (int i = 0; i < N; i++)
		gt_chunk_free(c[i]);
	pooled = gt_chunk_pool_bytes();
	assert_true(pooled <= (512u << 10));
	assert_true(pooled > (512u << 10) - CSIZE);
	gt_session.buffered = gt_session.opt.max_buffered;
	struct gt_chunk *x = gt_chunk_new(CAP, 0), *y = gt_chunk_new(CAP, 0);
	assert_int_equal(gt_chunk_pool_bytes(), pooled - 2 * CSIZE);
	gt_chunk_free(x); /* taken from the pool, but no room to go back */
	gt_chunk_free(y);
	assert_int_equal(gt_chunk_pool_bytes(), pooled - 2 * CSIZE);
	gt_session.buffered = 0;
}

/* Threads take, own, write and put chunks at once.  A chunk is owned by
 * one thread between its take and its put: the owner fills the whole
 * payload with its tag and finds it intact when it puts the chunk back (a
 * chunk handed to two threads at once: a wrong byte, a TSan race report;
 * a chunk written while pooled: an ASan report). */
#define THR 4
#if defined(__SANITIZE_THREAD__)
#define ITERS 20000
#else
#define ITERS 100000
#endif

struct worker {
	int id;
	uint64_t reused, errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct gt_chunk *held[8] = { 0 };
	unsigned seed = (unsigned)w->id * 7919u + 1;
	for (int i = 0; i < ITERS; i++) {
		int k = (int)(rand_r(&seed) % 8);
		if (held[k]) {
			struct gt_chunk *c = held[k];
			for (uint32_t j = 0; j < c->cap; j += 512)
				if (c->data[j] != (uint8_t)w->id)
					w->errors++;
			gt_chunk_free(c);
			held[k] = NULL;
		} else {
			struct gt_chunk *c = gt_chunk_new(CAP, GT_RESERVE);
			if (!c) {
				w->errors++;
				continue;
			}
			if (c->len != 0 || c->queued != 0 || c->cap != CAP)
				w->errors++;
			if (c->data[0] >= 1 && c->data[0] <= THR)
				w->reused++;
			memset(c->data, w->id, c->cap);
			held[k] = c;
		}
	}
	for (int k = 0; k < 8; k++)
		gt_chunk_free(held[k]);
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	pthread_t th[THR];
	struct worker w[THR];
	for (int i = 0; i < THR; i++) {
		w[i] = (struct worker){ .id = i + 1 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	uint64_t reused = 0;
	for (int i = 0; i < THR; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].errors, 0);
		reused += w[i].reused;
	}
	printf("# %d threads x %d operations: %llu takes found a used chunk\n", THR, ITERS,
	       (unsigned long long)reused);
	assert_true(reused > 0);
	assert_true(gt_chunk_pool_bytes() <= gt_session.opt.max_buffered / 4);
	gt_chunk_pool_drain();
	assert_int_equal(gt_chunk_pool_bytes(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
