/*
 * idxstack.h: a lock-free stack of slot indices over a static array, the
 * shape of both of the emitter's pools (written chunks, chunk.c; name
 * blocks, arena.c).  It takes no lock and never allocates (fork- and
 * signal-safe).
 * May call: nothing (atomics on the caller's arrays).
 *
 * head is (tag << 32 | slot + 1), 0 for empty; every successful push or pop
 * increments the tag, so a pop's CAS fails if the head changed in between,
 * even to the same slot (no ABA short of 2^32 operations on one stack during
 * one CAS attempt).  next[slot] (the next slot + 1 of the stack the slot is
 * on) is written by the pusher before its release CAS and read by poppers
 * after their acquire load of the head; a stale read (the slot was popped
 * and pushed again meanwhile) is harmless: next lives in static memory and
 * the CAS then fails.  Whatever the slot stands for moves with it: the
 * pusher's writes before the push are visible to the popper after its pop.
 */
#ifndef GT_IDXSTACK_H
#define GT_IDXSTACK_H

#include <stdbool.h>
#include <stdint.h>

static inline bool gt_idx_pop(uint64_t *head, uint32_t *next, uint32_t *slot)
{
	uint64_t h = __atomic_load_n(head, __ATOMIC_ACQUIRE);
	for (;;) {
		uint32_t i = (uint32_t)h;
		if (i == 0)
			return false;
		uint32_t n = __atomic_load_n(&next[i - 1], __ATOMIC_RELAXED);
		uint64_t nh = (((h >> 32) + 1) << 32) | n;
		if (__atomic_compare_exchange_n(head, &h, nh, true, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
			*slot = i - 1;
			return true;
		}
	}
}

static inline void gt_idx_push(uint64_t *head, uint32_t *next, uint32_t slot)
{
	uint64_t h = __atomic_load_n(head, __ATOMIC_RELAXED), nh;
	do {
		__atomic_store_n(&next[slot], (uint32_t)h, __ATOMIC_RELAXED);
		nh = (((h >> 32) + 1) << 32) | (slot + 1);
	} while (!__atomic_compare_exchange_n(head, &h, nh, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

#endif
