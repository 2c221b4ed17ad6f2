/*
 * cpubuf.c: the two generation-indexed CPU sample buffers.
 * May call: mmap, cpuprof.h (the buffers); called from the handler.
 *
 * Ownership and publication (see struct cp_buf in cpuprof.h):
 *  - Writers: SIGPROF handlers on any thread, for the generation g they read
 *    while excluded from g's drain (the thread's seqlock, or the in-flight
 *    counter of g's parity).  Each reserves a disjoint byte range with a CAS
 *    on head and writes only there.  Lock-free (a CAS loop that retries only
 *    when another writer advanced head), never blocks, never passes cap: a
 *    sample that does not fit is dropped and counted.
 *  - Reader: the flusher, draining g after the advancer proved that no
 *    writer of g can still run; it then resets head for generation g+2.
 *    Earlier readers (the drain of g-1 looking for records of g to move
 *    back, the crash drain) read a record only once it is sealed (see
 *    struct cp_rec).
 *  - Memory: an anonymous MAP_NORESERVE mapping, so a large capacity costs
 *    only the pages samples actually touch.  First-touch page faults happen
 *    in the handler: a kernel fault, not an allocation (no user lock).  The
 *    drain gives pages beyond CP_KEEP back to the kernel.
 */
#include "cpuprof.h"

#include <sys/mman.h>

struct cp_buf cp_bufs[2];

#define CP_KEEP (1u << 20) /* bytes kept resident after a drain */

/* Start lock held, no handler installed yet (or the old buffers already
 * large enough).  Buffers are never unmapped: a late reader of a previous
 * session cannot exist, but keeping them is also cheaper. */
int cp_buf_alloc(uint64_t cap)
{
	cap = (cap + 4095) & ~(uint64_t)4095;
	for (int i = 0; i < 2; i++) {
		struct cp_buf *b = &cp_bufs[i];
		uint8_t *old = __atomic_load_n(&b->mem, __ATOMIC_RELAXED);
		if (old && b->cap == cap)
			continue;
		__atomic_store_n(&b->mem, NULL, __ATOMIC_RELEASE);
		if (old) /* no drain can be using it: its generations are drained */
			munmap(old, b->cap);
		void *m = mmap(NULL, cap, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			return -1;
		b->cap = cap;
		/* The flusher (already running) reads mem: publish it. */
		__atomic_store_n(&b->mem, (uint8_t *)m, __ATOMIC_RELEASE);
	}
	for (int i = 0; i < 2; i++) {
		__atomic_store_n(&cp_bufs[i].head, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&cp_bufs[i].lost, 0, __ATOMIC_RELAXED);
		/* A new fill: records of the last session never look sealed
		 * (fill starts at 1: zeroed memory never does either). */
		__atomic_add_fetch(&cp_bufs[i].fill, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

/* AS-safe.  Space for size bytes (multiple of 8) or NULL. */
struct cp_rec *cp_buf_reserve(struct cp_buf *b, uint32_t size)
{
	uint64_t h = __atomic_load_n(&b->head, __ATOMIC_RELAXED);
	do {
		if (h + size > b->cap)
			return NULL;
	} while (!__atomic_compare_exchange_n(&b->head, &h, h + size, true, __ATOMIC_RELAXED,
	                                      __ATOMIC_RELAXED));
	return (struct cp_rec *)(void *)(b->mem + h);
}

/* AS-safe. */
void cp_buf_note_lost(struct cp_buf *b, uint64_t ts, uint64_t m)
{
	__atomic_store_n(&b->lost_ts, ts, __ATOMIC_RELAXED);
	__atomic_store_n(&b->lost_m, m, __ATOMIC_RELAXED);
	__atomic_add_fetch(&b->lost, 1, __ATOMIC_RELAXED);
}

/* Flusher, after the drain: the parity is reused by generation g+2, whose
 * writers read gt_session.gen (acquire) after the advancer's release store of it.
 * A new fill number: the records of the next fill are sealed with it, so
 * the bytes of this fill left in place never pass for sealed ones. */
void cp_buf_reset(struct cp_buf *b)
{
	uint64_t used = __atomic_load_n(&b->head, __ATOMIC_RELAXED);
	if (used > CP_KEEP)
		madvise(b->mem + CP_KEEP, used - CP_KEEP, MADV_DONTNEED);
	__atomic_add_fetch(&b->fill, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&b->head, 0, __ATOMIC_RELEASE);
}
