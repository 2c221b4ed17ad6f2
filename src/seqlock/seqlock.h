/*
 * Per-thread seqlocks guarding generation advance.
 * May call: membarrier(2); nothing else of the library.
 *
 * Each traced thread owns one gt_seqlock.  Who writes: only the owning
 * thread, and signal handlers running on that thread (which nest: a handler
 * runs to completion before the thread resumes, so no atomic RMW is needed).
 * Who reads: the advancer (flusher thread, crash handler).
 *
 * Protocol (design card): the counter is odd while the thread is inside an
 * emit.  The writer makes it odd, *then* reads the global generation; it uses
 * that generation's buffers only while the counter stays odd.  The advancer
 * stores the new generation, issues gt_seq_sync(), then waits until every
 * counter has been seen even (or has moved on): after that no thread can
 * still be writing into the old generation.
 *
 * Why the writer needs no fence: gt_seq_sync() uses
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which executes a full memory
 * barrier on every CPU running one of our threads.  A writer whose generation
 * load happened before that barrier has its odd counter store visible after
 * it; a writer whose load happens after it sees the new generation.  Where
 * membarrier is unavailable, gt_seq_global.fence_needed is set and writers
 * issue a full fence instead (one predictable branch on the fast path).
 */
#ifndef GT_SEQLOCK_H
#define GT_SEQLOCK_H

#include <stdint.h>
#include <stdbool.h>
#include "../arch/arch.h"

typedef struct gt_seqlock {
	uint64_t seq; /* accessed with __atomic builtins only */
} gt_seqlock;

/* fence_needed: set once by gt_seq_init, read by every gt_seq_enter; a
 * line of its own (GT_LINE). */
struct gt_seq_global {
	int fence_needed;
} __attribute__((aligned(GT_LINE)));
extern struct gt_seq_global gt_seq_global;

/* A full memory barrier.  ThreadSanitizer does not model fences; under it a
 * sequentially consistent read-modify-write on a dummy word stands in. */
#if defined(__SANITIZE_THREAD__)
extern uint64_t gt_seq_fence_word;
#define gt_full_fence() ((void)__atomic_fetch_add(&gt_seq_fence_word, 0, __ATOMIC_SEQ_CST))
#else
#define gt_full_fence() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

/* Once per process, before any thread can enter a seqlock.  Returns 0. */
int gt_seq_init(void);

/* Enter: counter becomes odd.  Returns true if it was even before (we took
 * it), false if it was already odd (we interrupted our own critical section,
 * e.g. from a signal handler: the caller then must not release it). */
static inline bool gt_seq_enter(gt_seqlock *s)
{
	uint64_t v = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	if (v & 1)
		return false;
	__atomic_store_n(&s->seq, v + 1, __ATOMIC_RELAXED);
	/* Keep the generation load after the store (compiler only; the CPU
	 * side is covered by gt_seq_sync's membarrier). */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__builtin_expect(__atomic_load_n(&gt_seq_global.fence_needed, __ATOMIC_RELAXED), 0))
		gt_full_fence();
	return true;
}

/* Leave: counter becomes even.  Release: everything written inside is
 * visible to an advancer that observes the even value with acquire. */
static inline void gt_seq_leave(gt_seqlock *s)
{
	uint64_t v = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seq, v + 1, __ATOMIC_RELEASE);
}

static inline bool gt_seq_held(const gt_seqlock *s)
{
	return __atomic_load_n(&s->seq, __ATOMIC_RELAXED) & 1;
}

/* Advancer side: make the new generation visible to all writers (called
 * after storing it, before reading any counter). */
void gt_seq_sync(void);

/* Advancer side: has the owner been outside a critical section since
 * `snap` was read?  (Even now, or moved past the odd value seen.) */
static inline bool gt_seq_left(const gt_seqlock *s, uint64_t snap)
{
	uint64_t v = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
	return !(v & 1) || v != snap;
}

static inline uint64_t gt_seq_read(const gt_seqlock *s)
{
	return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
}

#endif
