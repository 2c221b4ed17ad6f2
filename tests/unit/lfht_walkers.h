/*
 * lfht_walkers.h: read-side walkers of a cds_lfht for the table-reset tests
 * (test_strtab.c, test_evstack.c).
 *
 * walker: walks the whole table under rcu_read_lock until told to stop,
 * reading every node (its reverse_hash), as liburcu's resize worker does.
 * staller: stands on a node inside its read-side section while the reset
 * runs (at most STALL_NS), then resumes the walk from that node: a resize
 * worker preempted in mid-walk.  Its node must still be readable when it
 * resumes, and the reset must not have waited for it (a reset that waits
 * for readers would deadlock with a thread that died inside a read-side
 * section; here it would wait out STALL_NS).
 */
#ifndef GT_TEST_LFHT_WALKERS_H
#define GT_TEST_LFHT_WALKERS_H

#include <sched.h>
#include <stdint.h>
#include <time.h>

struct walker {
	struct cds_lfht *ht;
	int go, stop; /* atomic */
	uint64_t passes, visits, sum;
};

static void *walker_main(void *arg)
{
	struct walker *w = arg;
	rcu_read_lock(); /* registers with urcu-bp before the go */
	rcu_read_unlock();
	__atomic_store_n(&w->go, 1, __ATOMIC_RELEASE);
	do {
		struct cds_lfht_iter it;
		struct cds_lfht_node *n;
		rcu_read_lock();
		cds_lfht_for_each(w->ht, &it, n) {
			w->sum += __atomic_load_n(&n->reverse_hash, __ATOMIC_RELAXED);
			w->visits++;
		}
		rcu_read_unlock();
		w->passes++;
	} while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE));
	return NULL;
}

#define STALL_NS 120000000000ull
struct staller {
	struct cds_lfht *ht;
	int go, done, timed_out; /* atomic */
	uint64_t read_after;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *staller_main(void *arg)
{
	struct staller *st = arg;
	struct cds_lfht_iter it;
	rcu_read_lock();
	cds_lfht_first(st->ht, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	__atomic_store_n(&st->go, 1, __ATOMIC_RELEASE);
	uint64_t end = mono_ns() + STALL_NS;
	while (!__atomic_load_n(&st->done, __ATOMIC_ACQUIRE)) {
		if (mono_ns() > end) {
			__atomic_store_n(&st->timed_out, 1, __ATOMIC_RELAXED);
			break;
		}
		sched_yield();
	}
	/* Resume the walk from the node it stood on. */
	for (; n; cds_lfht_next(st->ht, &it), n = cds_lfht_iter_get_node(&it))
		st->read_after += __atomic_load_n(&n->reverse_hash, __ATOMIC_RELAXED) & 1;
	rcu_read_unlock();
	return NULL;
}

#endif
