/*
 * test_arena.c: generation arenas (src/core/arena.c): nodes of a retired
 * generation come back as memory for a later one after the grace period
 * (the slab is recycled, not unmapped and mapped again: the writer's first
 * event of a generation no longer pays an mmap and its page faults), a slab
 * larger than the ordinary size is not recycled, and many threads taking
 * and retiring slabs at once (under TSan the hand-offs are checked).
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
#include "core/arena.h"

#include "urcu_tsan.h"

/* Epochs never seen by the library's own arenas (their cursors are indexed
 * by id, shared with this test's arena of the same id). */
static struct gt_garena arena = { .id = GT_GARENA_STR, .epoch = { 1u << 30, 1u << 30 } };

/* Wait for the call_rcu callbacks queued so far (the retired slabs). */
static void grace(void)
{
	rcu_barrier_bp();
}

static void test_retired_slab_is_reused(void **state)
{
	(void)state;
	char *a = gt_garena_alloc(&arena, 0, 40);
	assert_non_null(a);
	memset(a, 0x5a, 40);
	char *b = gt_garena_alloc(&arena, 0, 40); /* same slab, next node */
	assert_ptr_equal(b, a + 48);
	assert_int_equal(gt_garena_slabs(&arena, 0), 1);
	gt_garena_retire(&arena, 0);
	assert_int_equal(gt_garena_slabs(&arena, 0), 0);
	grace();
	/* The next generation of this parity starts on the recycled slab (the
	 * last one pushed is popped first). */
	char *c = gt_garena_alloc(&arena, 0, 40);
	assert_ptr_equal(c, a);
	/* the same memory, not a new mapping at the same address (which
	 * would be zero-filled) */
	for (int i = 0; i < 40; i++)
		assert_int_equal((unsigned char)c[i], 0x5a);
	gt_garena_retire(&arena, 0);
	grace();
}

static void test_large_slab_not_recycled(void **state)
{
	(void)state;
	char *small = gt_garena_alloc(&arena, 1, 16);
	char *big = gt_garena_alloc(&arena, 1, 100000); /* its own mapping */
	assert_non_null(small);
	assert_non_null(big);
	memset(small, 0x33, 16);
	memset(big, 1, 100000);
	assert_int_equal(gt_garena_slabs(&arena, 1), 2);
	gt_garena_retire(&arena, 1);
	grace();
	/* Only the ordinary slab came back: a second ordinary allocation
	 * reuses it, a large one maps again (not the old address range
	 * handed out as ordinary). */
	char *again = gt_garena_alloc(&arena, 1, 16);
	assert_ptr_equal(again, small);
	assert_int_equal((unsigned char)again[15], 0x33);
	char *big2 = gt_garena_alloc(&arena, 1, 100000);
	assert_non_null(big2);
	assert_int_equal(big2[0], 0); /* a new (zero-filled) mapping */
	memset(big2, 2, 100000);
	gt_garena_retire(&arena, 1);
	grace();
}

/* Threads allocate in parity p while the main thread retires p between
 * rounds (as the advancer does after every thread left the generation). */
#define NT 4
#define ROUNDS 200
static pthread_barrier_t bar;
static void *worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	for (int r = 0; r < ROUNDS; r++) {
		pthread_barrier_wait(&bar);
		unsigned p = (unsigned)(r & 1);
		for (int k = 0; k < 300; k++) { /* > one slab per round */
			uint64_t *n = gt_garena_alloc(&arena, p, 256);
			assert_non_null(n);
			for (int w = 0; w < 32; w++)
				n[w] = id << 32 | (uint64_t)r << 8 | (uint64_t)w;
			for (int w = 0; w < 32; w++)
				if (n[w] != (id << 32 | (uint64_t)r << 8 | (uint64_t)w))
					fail_msg("node overwritten by another thread");
		}
		pthread_barrier_wait(&bar);
	}
	return NULL;
}

static void test_concurrent_rounds(void **state)
{
	(void)state;
	pthread_t th[NT];
	pthread_barrier_init(&bar, NULL, NT + 1);
	for (uintptr_t i = 0; i < NT; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)(i + 1)), 0);
	for (int r = 0; r < ROUNDS; r++) {
		pthread_barrier_wait(&bar); /* round r starts */
		pthread_barrier_wait(&bar); /* every thread left it */
		gt_garena_retire(&arena, (unsigned)(r & 1));
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	grace();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retired_slab_is_reused),
		cmocka_unit_test(test_large_slab_not_recycled),
		cmocka_unit_test(test_concurrent_rounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
