/*
 * chunk.c: batch buffers, their hand-off to the flusher, and the pool of
 * written chunks.
 * May call: idxstack.h, src/arch (cache eviction), mmap/malloc, liburcu's
 * wait-free queue; nothing above src/core.
 */
#include "core.h"
#include "idxstack.h"
#include "registry.h"

#include <stdlib.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ------------------------------------------------------------------ pool */
/*
 * Written chunks of the session's batch size (gt_session.chunk_cap) are kept for
 * reuse instead of going back to malloc: freeing a burst of written chunks
 * let glibc trim its heap, so that every page of trace data was a freshly
 * faulted page (BENCHMARKS.md).
 *
 * Who: the flusher puts the chunks it has written (gt_chunk_free, from
 * gt_out_drain; also gotrace_stop's last drains); any thread that needs a
 * chunk of that size takes one (gt_chunk_new: writers on the emit path, the
 * advancer) before falling back to malloc.  Not reachable from a signal
 * handler: the SIGPROF handler writes only its own sample buffer and
 * the crash flush builds its batches in static memory and frees nothing.
 * Even so the pool takes no lock and never allocates: it is two lock-free
 * stacks of slot indices over static arrays.
 *
 *   pool_full   slots holding a pooled chunk (pool_chunk[slot])
 *   pool_free   slots not holding one (after their first use; slots
 *               [pool_fresh, POOL_SLOTS) were never used)
 *
 * Both are index stacks over pool_next (idxstack.h: tagged heads, no
 * ABA).  Ownership of a chunk moves with
 * its slot: the putter writes pool_chunk[slot] before the push (release),
 * the taker reads it after its pop (acquire), then gives the slot back
 * through pool_free (the same protocol), so the next putter's write of
 * pool_chunk[slot] comes after the taker's read.  Chunk memory itself is
 * never touched by the pool (under ASan it is poisoned while pooled).
 *
 * Memory bound.  pool_bytes (atomic; reserved by the putter before the
 * push, released by the taker after the pop) counts the pooled chunks'
 * allocations.  A chunk is pooled only while
 *     pool_bytes <= max_buffered / 4   (a bound on a burst of written
 *                                       chunks: the flusher is woken at
 *                                       wake_bytes, core.h, but an output
 *                                       that stalls lets more queue up)
 *     buffered + pool_bytes <= max_buffered
 * otherwise it is freed.  So queued data plus pool is within max_buffered
 * whenever a chunk enters the pool, and writers take from the pool before
 * they malloc: data queued later reuses pooled memory, and the sum can pass
 * max_buffered only by chunks malloced while the pool is empty, which the
 * writers' own check (buffered <= max_buffered, event.c) bounds.  Worst
 * case: max_buffered + max_buffered / 4, plus each thread's open chunks as
 * before.  gt_session.buffered (data queued, not written; the drop decision) keeps
 * its meaning: the pool is not data.  gt_chunk_pool_drain (gotrace_stop)
 * gives the pool back to malloc.
 */
#define POOL_SLOTS 4096u
static struct gt_chunk *pool_chunk[POOL_SLOTS];
static uint32_t pool_next[POOL_SLOTS];
static uint64_t pool_full, pool_free;
static uint32_t pool_fresh;  /* atomic: slots handed out at least once */
static uint64_t pool_bytes;  /* atomic: bytes of the chunks pooled */

static bool slot_pop(uint64_t *head, uint32_t *slot) { return gt_idx_pop(head, pool_next, slot); }
static void slot_push(uint64_t *head, uint32_t slot) { gt_idx_push(head, pool_next, slot); }

static size_t chunk_size(const struct gt_chunk *c) { return sizeof *c + c->cap; }

static size_t map_size(uint32_t cap) { return (sizeof(struct gt_chunk) + cap + 4095u) & ~(size_t)4095u; }

/* Give c's memory back: munmap for a mapped chunk, free otherwise. */
void gt_chunk_release(struct gt_chunk *c)
{
	if (!c)
		return;
	if (c->mapped)
		munmap(c, c->mapped);
	else
		free(c);
}

/* The next pooled chunk, out of the pool (unpoisoned, its bytes no longer
 * counted), or NULL if the pool is empty. */
static struct gt_chunk *pool_pop(void)
{
	uint32_t slot;
	if (!slot_pop(&pool_full, &slot))
		return NULL;
	struct gt_chunk *c = pool_chunk[slot];
	slot_push(&pool_free, slot);
	/* The header is poisoned too: cap is read after unpoisoning. */
	POOL_UNPOISON(c, sizeof *c);
	size_t size = chunk_size(c);
	__atomic_sub_fetch(&pool_bytes, size, __ATOMIC_RELAXED);
	POOL_UNPOISON(c, size);
	return c;
}

/* A pooled chunk of cap bytes, or NULL. */
static struct gt_chunk *pool_take(uint32_t cap)
{
	struct gt_chunk *c;
	while ((c = pool_pop()) != NULL) {
		if (c->cap == cap)
			return c;
		/* Pooled with another size: cannot happen within a session
		 * (pool_put takes only gt_session.chunk_cap, stop drains the pool). */
		gt_chunk_release(c);
	}
	return NULL;
}

/*
 * The written part of a chunk about to be pooled leaves every cache.
 * write(2) read it on the flusher's core, which keeps a copy of each line;
 * the writer that takes the chunk next stores to those lines, and each
 * first store must then have the flusher's copy invalidated.  While that
 * core is busy (an advance, the write-out of a generation) those stores
 * wait, and the writer's calls with them: evicting the chunk here halved
 * the share of calls over 150 ns that a writer makes during an advance
 * (BENCHMARKS.md, "Writers during an advance").  The writer's stores then
 * miss to memory instead, which its store buffer hides as it hides them
 * away from an advance.  Called by pool_put, whose callers are the
 * flusher and gotrace_stop after joining it (one thread at a time);
 * evict_how: gt_arch_evict_probe()'s answer, -1 until the first call.
 */
static int evict_how = -1;

static void evict_written(const struct gt_chunk *c)
{
	int how = __atomic_load_n(&evict_how, __ATOMIC_RELAXED);
	if (how < 0) {
		how = gt_arch_evict_probe();
		__atomic_store_n(&evict_how, how, __ATOMIC_RELAXED);
	}
	gt_arch_evict(c, sizeof *c + c->len, how);
}

/* Pool c if the bound allows it; false: the caller frees it. */
static bool pool_put(struct gt_chunk *c)
{
	if (c->cap != gt_session.chunk_cap)
		return false;
	size_t size = chunk_size(c);
	uint64_t max = gt_session.opt.max_buffered;
	uint64_t b = __atomic_add_fetch(&pool_bytes, size, __ATOMIC_RELAXED);
	uint32_t slot;
	if (b > max / 4 || b + __atomic_load_n(&gt_session.buffered, __ATOMIC_RELAXED) > max)
		goto undo;
	if (!slot_pop(&pool_free, &slot)) {
		uint32_t f = __atomic_load_n(&pool_fresh, __ATOMIC_RELAXED);
		do
			if (f >= POOL_SLOTS)
				goto undo;
		while (!__atomic_compare_exchange_n(&pool_fresh, &f, f + 1, true, __ATOMIC_RELAXED,
		                                    __ATOMIC_RELAXED));
		slot = f;
	}
	evict_written(c);
	POOL_POISON(c, size);
	pool_chunk[slot] = c;
	slot_push(&pool_full, slot);
	return true;
undo:
	__atomic_sub_fetch(&pool_bytes, size, __ATOMIC_RELAXED);
	return false;
}

void gt_chunk_free(struct gt_chunk *c)
{
	if (c && !pool_put(c))
		gt_chunk_release(c);
}

void gt_chunk_pool_drain(void)
{
	struct gt_chunk *c;
	while ((c = pool_pop()) != NULL)
		gt_chunk_release(c);
}

size_t gt_chunk_pool_bytes(void)
{
	return (size_t)__atomic_load_n(&pool_bytes, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- chunks */

struct gt_chunk *gt_chunk_new(uint32_t cap, uint32_t reserve)
{
	struct gt_chunk *c = NULL;
	uint32_t mapped = 0;
	if (cap == gt_session.chunk_cap) {
		c = pool_take(cap);
		mapped = c ? c->mapped : 0;
		if (!c) {
			void *m = mmap(NULL, map_size(cap), PROT_READ | PROT_WRITE,
			               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED)
				return NULL;
			c = m;
			mapped = (uint32_t)map_size(cap);
		}
	} else {
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
	}
	c->mapped = mapped;
	cds_wfcq_node_init(&c->qnode);
	c->cap = cap;
	c->limit = cap > reserve ? cap - reserve : cap;
	c->len = c->hdr_len = 0;
	c->queued = 0;
	c->gen = 0;
	c->last_ts = 0;
	return c;
}

/* Header: EventBatch gen m time size.  The size field is padded to
 * GT_SIZE_FIELD bytes and filled in by gt_chunk_finish. */
void gt_chunk_open(struct gt_chunk *c, uint64_t gen, uint64_t m, uint64_t ts)
{
	uint8_t *p = c->data;
	*p++ = GT_EV_BATCH;
	p = gt_put_uvarint(p, gen);
	p = gt_put_uvarint(p, m);
	p = gt_put_uvarint(p, ts);
	p += GT_SIZE_FIELD;
	c->hdr_len = c->len = (uint32_t)(p - c->data);
	c->gen = gen;
	c->last_ts = ts;
}

void gt_chunk_finish(struct gt_chunk *c)
{
	gt_put_uvarint_padded(c->data + c->hdr_len - GT_SIZE_FIELD, gt_chunk_payload(c), GT_SIZE_FIELD);
}

uint64_t gt_queue_push(struct gt_chunk *c)
{
	gt_chunk_finish(c);
	uint64_t b = __atomic_add_fetch(&gt_session.buffered, c->len, __ATOMIC_RELAXED);
	uint64_t peak = __atomic_load_n(&gt_session.buffered_peak, __ATOMIC_RELAXED);
	while (b > peak && !__atomic_compare_exchange_n(&gt_session.buffered_peak, &peak, b, false,
	                                                __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	/* Read everything we need from c before publishing it: once queued is
	 * set, the flusher may write and free c. */
	unsigned q = (unsigned)(c->gen & 1);
	__atomic_store_n(&c->queued, 1, __ATOMIC_RELEASE);
	cds_wfcq_enqueue(&gt_session.qhead[q], &gt_session.qtail[q], &c->qnode);
	return b;
}
