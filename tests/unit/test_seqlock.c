/*
 * test_seqlock.c: the per-thread seqlock protocol (src/seqlock/).
 *
 * Single-threaded: the counter's parity, nesting (a signal handler entering
 * its own thread's critical section), gt_seq_left's meaning.
 * Multi-threaded: the generation protocol itself.  Writers enter, read the
 * generation G and count into counter[G]; an advancer bumps G, syncs, waits
 * for every writer to have left, and then checks that nobody writes into the
 * old generation any more — once with membarrier (if the kernel offers it)
 * and once with the fence fallback forced.
 *
 * Every shared access uses __atomic builtins (TSan-clean by construction).
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
#include <signal.h>
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "seqlock/seqlock.h"

static uint64_t rd(const gt_seqlock *s) { return __atomic_load_n(&s->seq, __ATOMIC_RELAXED); }

static int fence_needed_initial;

static int group_setup(void **state)
{
	(void)state;
	if (gt_seq_init() != 0)
		return -1;
	fence_needed_initial = __atomic_load_n(&gt_seq_global.fence_needed, __ATOMIC_RELAXED);
	fprintf(stderr, "# seqlock: membarrier %s (fence_needed=%d)\n",
	        fence_needed_initial ? "unavailable, fence fallback" : "available", fence_needed_initial);
	return 0;
}

static void test_init_values(void **state)
{
	(void)state;
	int f = __atomic_load_n(&gt_seq_global.fence_needed, __ATOMIC_RELAXED);
	assert_true(f == 0 || f == 1);
	/* init is idempotent */
	assert_int_equal(gt_seq_init(), 0);
	assert_int_equal(__atomic_load_n(&gt_seq_global.fence_needed, __ATOMIC_RELAXED), f);
	/* sync works on both paths and keeps errno */
	errno = 1234;
	gt_seq_sync();
	assert_int_equal(errno, 1234);
}

static void test_enter_leave_parity(void **state)
{
	(void)state;
	gt_seqlock s = { 0 };
	assert_false(gt_seq_held(&s));
	for (uint64_t round = 0; round < 5; round++) {
		assert_true(rd(&s) == 2 * round);
		assert_true(gt_seq_enter(&s));
		assert_true(rd(&s) == 2 * round + 1);
		assert_true(gt_seq_held(&s));
		assert_true(gt_seq_read(&s) == 2 * round + 1);

		/* nested enter (a handler interrupting this section): refused,
		 * value unchanged, still held */
		assert_false(gt_seq_enter(&s));
		assert_true(rd(&s) == 2 * round + 1);
		assert_false(gt_seq_enter(&s));
		assert_true(rd(&s) == 2 * round + 1);
		assert_true(gt_seq_held(&s));

		gt_seq_leave(&s);
		assert_true(rd(&s) == 2 * round + 2);
		assert_false(gt_seq_held(&s));
	}
	/* works from an arbitrary even start (counters are never reset) */
	gt_seqlock big = { UINT64_MAX - 1 };
	assert_true(gt_seq_enter(&big));
	assert_true(rd(&big) == UINT64_MAX);
	assert_false(gt_seq_enter(&big));
	gt_seq_leave(&big);
	assert_true(rd(&big) == 0);
	assert_false(gt_seq_held(&big));
}

static void test_left_semantics(void **state)
{
	(void)state;
	gt_seqlock s = { 0 };
	/* even snapshot, still even: left */
	uint64_t snap = gt_seq_read(&s);
	assert_true(snap == 0);
	assert_true(gt_seq_left(&s, snap));

	/* odd snapshot (writer inside): not left while still at that value */
	assert_true(gt_seq_enter(&s));
	snap = gt_seq_read(&s);
	assert_true(snap == 1);
	assert_false(gt_seq_left(&s, snap));
	/* a nested attempt does not count as leaving */
	assert_false(gt_seq_enter(&s));
	assert_false(gt_seq_left(&s, snap));
	/* left: even now */
	gt_seq_leave(&s);
	assert_true(gt_seq_left(&s, snap));
	/* moved past the odd snapshot into a new section: left */
	assert_true(gt_seq_enter(&s));
	assert_true(rd(&s) == 3);
	assert_true(gt_seq_left(&s, snap));
	/* but not for a snapshot of the current section */
	assert_false(gt_seq_left(&s, gt_seq_read(&s)));
	/* even snapshot, writer entered after it: it read the new generation
	 * (the snapshot was taken after the sync), so it counts as left */
	gt_seq_leave(&s);
	snap = gt_seq_read(&s);
	assert_true(snap == 4);
	assert_true(gt_seq_enter(&s));
	assert_true(gt_seq_left(&s, snap));
	gt_seq_leave(&s);
}

/* ----------------------------------------------- signal handler nesting */

static gt_seqlock sig_lock;
static volatile sig_atomic_t sig_entered = -1;
static uint64_t sig_seen_before, sig_seen_after;

static void on_sigusr1(int sig)
{
	(void)sig;
	sig_seen_before = rd(&sig_lock);
	bool took = gt_seq_enter(&sig_lock);
	sig_entered = took;
	/* the handler's "emit" */
	if (took)
		gt_seq_leave(&sig_lock);
	sig_seen_after = rd(&sig_lock);
}

static void test_signal_nesting(void **state)
{
	(void)state;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);

	__atomic_store_n(&sig_lock.seq, 10, __ATOMIC_RELAXED);
	/* inside the thread's own critical section: the handler must not take
	 * (nor release) it */
	assert_true(gt_seq_enter(&sig_lock));
	sig_entered = -1;
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(sig_entered, 0);
	assert_true(sig_seen_before == 11);
	assert_true(sig_seen_after == 11);
	assert_true(rd(&sig_lock) == 11);
	assert_true(gt_seq_held(&sig_lock));
	gt_seq_leave(&sig_lock);
	assert_true(rd(&sig_lock) == 12);

	/* outside: the handler has its own complete section */
	sig_entered = -1;
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(sig_entered, 1);
	assert_true(sig_seen_before == 12);
	assert_true(sig_seen_after == 14);
	assert_true(rd(&sig_lock) == 14);

	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* ------------------------------------------------- the generation protocol */

#define NWRITERS 4
#define NADVANCE 200
#define NGEN (NADVANCE + 8)

struct writer {
	gt_seqlock seq;
	uint64_t sections;   /* atomic: completed critical sections */
	uint64_t last_gen;   /* writer-private */
	uint64_t backwards;  /* writer saw G go down (writer-private, read after join) */
	int idx;
	char pad[64];
} __attribute__((aligned(64)));

static struct proto {
	uint64_t G;                 /* atomic: the generation */
	uint64_t counter[NGEN];     /* atomic: events counted per generation */
	uint64_t closed[NGEN];      /* atomic: advancer finished this generation */
	uint64_t late;              /* atomic: writes seen in a closed generation */
	uint64_t late_gen;          /* atomic: the generation of one such write */
	int stop;                   /* atomic */
	struct writer w[NWRITERS];
} P;

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	unsigned spin = (unsigned)w->idx * 7 + 1;
	while (!__atomic_load_n(&P.stop, __ATOMIC_RELAXED)) {
		if (!gt_seq_enter(&w->seq)) {
			/* never nested here: a bug */
			__atomic_add_fetch(&P.late, 1000000, __ATOMIC_RELAXED);
			break;
		}
		uint64_t g = __atomic_load_n(&P.G, __ATOMIC_ACQUIRE);
		if (g < w->last_gen)
			w->backwards++;
		w->last_gen = g;
		if (g < NGEN) {
			__atomic_add_fetch(&P.counter[g], 1, __ATOMIC_RELAXED);
			/* small work inside the section */
			spin = spin * 1103515245u + 12345u;
			for (unsigned i = 0, n = (spin >> 16) & 63; i < n; i++)
				__atomic_signal_fence(__ATOMIC_SEQ_CST);
			/* still inside: the advancer must not have finished g */
			if (__atomic_load_n(&P.closed[g], __ATOMIC_RELAXED)) {
				__atomic_add_fetch(&P.late, 1, __ATOMIC_RELAXED);
				__atomic_store_n(&P.late_gen, g, __ATOMIC_RELAXED);
			}
			__atomic_add_fetch(&P.counter[g], 1, __ATOMIC_RELAXED);
		}
		gt_seq_leave(&w->seq);
		__atomic_add_fetch(&w->sections, 1, __ATOMIC_RELAXED);
		if ((spin >> 20 & 15) == 0)
			sched_yield();
	}
	return NULL;
}

struct adv_result {
	int advances;
	int unstable;            /* counter[g] changed after the wait */
	uint64_t unstable_gen;
	int odd_counter;         /* counter[g] odd: a section of g unfinished */
	uint64_t total;          /* sum of the closed generations' counters */
};

static void sleep_ns(long ns)
{
	struct timespec d = { 0, ns };
	nanosleep(&d, NULL);
}

static void *advancer_main(void *arg)
{
	struct adv_result *r = arg;
	for (int i = 0; i < NADVANCE; i++) {
		uint64_t g = __atomic_load_n(&P.G, __ATOMIC_RELAXED);
		/* let the writers run a little in g: at least one section (on
		 * a loaded 2-CPU box they may not get the CPU in 100 us), but
		 * no more than 1 s */
		sleep_ns(100 * 1000);
		for (int w = 0; w < 10000 && __atomic_load_n(&P.counter[g], __ATOMIC_RELAXED) == 0; w++)
			sleep_ns(100 * 1000);
		__atomic_store_n(&P.G, g + 1, __ATOMIC_RELEASE);
		gt_seq_sync();
		uint64_t snap[NWRITERS];
		for (int k = 0; k < NWRITERS; k++)
			snap[k] = gt_seq_read(&P.w[k].seq);
		for (int k = 0; k < NWRITERS; k++)
			while (!gt_seq_left(&P.w[k].seq, snap[k]))
				sched_yield();
		__atomic_store_n(&P.closed[g], 1, __ATOMIC_RELAXED);
		uint64_t before = __atomic_load_n(&P.counter[g], __ATOMIC_RELAXED);
		sleep_ns(1000 * 1000);
		uint64_t after = __atomic_load_n(&P.counter[g], __ATOMIC_RELAXED);
		if (before != after) {
			r->unstable++;
			r->unstable_gen = g;
		}
		/* each section adds 2: an odd count means a section of g was
		 * still running when the wait said everyone had left */
		if (before & 1)
			r->odd_counter++;
		r->total += after;
		r->advances++;
	}
	return NULL;
}

static void run_protocol(int force_fence)
{
	int saved = __atomic_load_n(&gt_seq_global.fence_needed, __ATOMIC_RELAXED);
	if (force_fence)
		__atomic_store_n(&gt_seq_global.fence_needed, 1, __ATOMIC_RELAXED);

	memset(&P, 0, sizeof P);
	__atomic_store_n(&P.G, 1, __ATOMIC_RELAXED);
	pthread_t th[NWRITERS], adv;
	for (int k = 0; k < NWRITERS; k++) {
		P.w[k].idx = k;
		/* start from different even values */
		P.w[k].seq.seq = 2u * (uint64_t)k * 1000u;
		assert_int_equal(pthread_create(&th[k], NULL, writer_main, &P.w[k]), 0);
	}
	/* every writer running before the first advance */
	for (int k = 0; k < NWRITERS; k++)
		while (__atomic_load_n(&P.w[k].sections, __ATOMIC_RELAXED) == 0)
			sched_yield();
	struct adv_result r;
	memset(&r, 0, sizeof r);
	assert_int_equal(pthread_create(&adv, NULL, advancer_main, &r), 0);
	assert_int_equal(pthread_join(adv, NULL), 0);
	__atomic_store_n(&P.stop, 1, __ATOMIC_RELAXED);
	uint64_t sections = 0;
	for (int k = 0; k < NWRITERS; k++) {
		assert_int_equal(pthread_join(th[k], NULL), 0);
		sections += __atomic_load_n(&P.w[k].sections, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&gt_seq_global.fence_needed, saved, __ATOMIC_RELAXED);

	uint64_t all = 0;
	for (int g = 0; g < NGEN; g++)
		all += P.counter[g];
	fprintf(stderr, "# protocol (%s): %d advances, %llu sections, %llu in closed gens, "
	        "late=%llu unstable=%d odd=%d\n",
	        force_fence ? "fence forced" : (saved ? "fence (no membarrier)" : "membarrier"),
	        r.advances, (unsigned long long)sections, (unsigned long long)r.total,
	        (unsigned long long)P.late, r.unstable, r.odd_counter);

	assert_int_equal(r.advances, NADVANCE);
	assert_true(__atomic_load_n(&P.G, __ATOMIC_RELAXED) == 1 + NADVANCE);
	/* nobody wrote into a generation after the advancer's wait */
	assert_int_equal(P.late, 0);
	assert_int_equal(r.unstable, 0);
	assert_int_equal(r.odd_counter, 0);
	for (int k = 0; k < NWRITERS; k++) {
		assert_int_equal(P.w[k].backwards, 0);
		assert_false(gt_seq_held(&P.w[k].seq));
		assert_true(P.w[k].seq.seq == 2u * (uint64_t)k * 1000u + 2 * P.w[k].sections);
	}
	/* every section counted twice into some generation */
	assert_true(all == 2 * sections);
	/* the writers really did run across the generations */
	assert_true(r.total > 0);
	int used = 0;
	for (int g = 1; g <= NADVANCE; g++)
		used += P.counter[g] != 0;
	assert_true(used > NADVANCE / 2);
}

static void test_protocol_default(void **state)
{
	(void)state;
	run_protocol(0);
}

static void test_protocol_fence_fallback(void **state)
{
	(void)state;
	run_protocol(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_values),
		cmocka_unit_test(test_enter_leave_parity),
		cmocka_unit_test(test_left_semantics),
		cmocka_unit_test(test_signal_nesting),
		cmocka_unit_test(test_protocol_default),
		cmocka_unit_test(test_protocol_fence_fallback),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
