/*
 * arena.c: allocation without the allocator for application threads (see
 * arena.h for why and for the protocols).
 * May call: idxstack.h, mmap, liburcu (call_rcu); nothing above src/core.
 */
#include "core.h"
#include "arena.h"
#include "idxstack.h"

#include <sys/mman.h>
#include <sys/prctl.h>

/* ------------------------------------------------------ generation arenas */

#define SLAB_SIZE (64u * 1024u)

struct gt_slab {
	struct rcu_head rh;    /* the first slab of a retired list carries it */
	struct gt_slab *next;  /* next slab of used[p] (or of a retired list):
	                        * written before the push, read-only after */
	size_t size;           /* bytes mapped */
	uint32_t slot;         /* its recycling slot, or NO_SLOT (unmapped) */
};
#define SLAB_HDR ((sizeof(struct gt_slab) + 63u) & ~(size_t)63u)

/*
 * Recycled slabs.  Every generation each interning thread needs a fresh
 * slab, and every generation the last one's are retired: mapping them anew
 * cost the writer an mmap and page faults at its first event of each
 * generation, and their munmap a TLB shootdown interrupting every CPU that
 * runs a traced thread (bench_latency: a writer's first call in a
 * generation took tens of microseconds).  So ordinary slabs are kept.
 *
 * Slot i names one SLAB_SIZE slab for good: slab_at[i] is written once, by
 * the thread that maps the slab, before the slab is first handed out, and
 * is read-only after (release/acquire).  The slots of retired slabs whose
 * grace period is over are an index stack over slab_next (idxstack.h):
 * pushed by the call_rcu thread (slabs_retired), popped by threads taking a
 * slab.  At most SLAB_POOL_MAX slabs (16 MiB of address space; resident
 * only as far as they were written) stay mapped for the life of the
 * process; slabs beyond that, and larger ones, are unmapped as before.
 */
#define SLAB_POOL_MAX 256u
#define NO_SLOT UINT32_MAX
static struct gt_slab *slab_at[SLAB_POOL_MAX];
static uint32_t slab_next[SLAB_POOL_MAX];
static uint64_t slab_head;
static uint32_t slab_fresh; /* atomic: slots given a slab so far */

/* A slab of len bytes: a recycled one if len is the ordinary size and one
 * is free, else a new mapping (given a slot while slots remain). */
static struct gt_slab *slab_get(size_t len)
{
	uint32_t slot;
	if (len == SLAB_SIZE && gt_idx_pop(&slab_head, slab_next, &slot))
		return __atomic_load_n(&slab_at[slot], __ATOMIC_ACQUIRE);
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	struct gt_slab *s = m;
	s->size = len;
	s->slot = NO_SLOT;
	if (len == SLAB_SIZE && __atomic_load_n(&slab_fresh, __ATOMIC_RELAXED) < SLAB_POOL_MAX) {
		slot = __atomic_fetch_add(&slab_fresh, 1, __ATOMIC_RELAXED);
		if (slot < SLAB_POOL_MAX) {
			s->slot = slot;
			__atomic_store_n(&slab_at[slot], s, __ATOMIC_RELEASE);
		}
	}
	return s;
}

/* A thread's cursor in one arena for one parity: owner-private. */
struct gt_cursor {
	uint64_t epoch;        /* 0: none yet */
	char *cur, *end;
};
static __thread struct gt_cursor cursors[GT_GARENA_N][2]
	__attribute__((tls_model("initial-exec")));

void *gt_garena_alloc(struct gt_garena *a, unsigned p, size_t size)
{
	size = (size + 15u) & ~(size_t)15u;
	struct gt_cursor *c = &cursors[a->id][p & 1];
	uint64_t ep = __atomic_load_n(&a->epoch[p & 1], __ATOMIC_ACQUIRE);
	if (c->epoch == ep && (size_t)(c->end - c->cur) >= size) {
		void *r = c->cur;
		c->cur += size;
		return r;
	}
	size_t len = SLAB_SIZE;
	if (SLAB_HDR + size > len)
		len = (SLAB_HDR + size + 4095u) & ~(size_t)4095u;
	struct gt_slab *s = slab_get(len);
	if (!s)
		return NULL;
	char *m = (char *)s;
	s->next = __atomic_load_n(&a->used[p & 1], __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&a->used[p & 1], &s->next, s, true, __ATOMIC_RELEASE,
	                                    __ATOMIC_RELAXED))
		;
	/* A slab this large is used by its node alone: the cursor keeps the
	 * ordinary slab it had, if any. */
	if (len == SLAB_SIZE || c->epoch != ep) {
		c->epoch = ep;
		c->cur = m + SLAB_HDR + size;
		c->end = m + len;
	}
	return m + SLAB_HDR;
}

static void slabs_retired(struct rcu_head *rh)
{
	struct gt_slab *s = caa_container_of(rh, struct gt_slab, rh);
	/* This runs on liburcu's call_rcu thread, which blocks every signal:
	 * while it does, the CPU it uses raises ITIMER_PROF signals that the
	 * kernel hands to another thread -- the library's CPU on a program
	 * thread's stack.  Marked as the library's, it takes SIGPROF itself
	 * while the profiler runs (the library_thread hook, core.h). */
	static __thread int named __attribute__((tls_model("initial-exec")));
	if (!named) {
		named = 1;
		prctl(PR_SET_NAME, "gotrace-rcu"); /* as the library's in ps/top */
	}
	gt_library_thread_hook();
	while (s) {
		/* Acquire: pairs with the retiring exchange (the order
		 * ThreadSanitizer can see; call_rcu's own is invisible to it). */
		struct gt_slab *next = __atomic_load_n(&s->next, __ATOMIC_ACQUIRE);
		if (s->slot != NO_SLOT)
			gt_idx_push(&slab_head, slab_next, s->slot);
		else
			munmap(s, s->size);
		s = next;
	}
}

void gt_garena_retire(struct gt_garena *a, unsigned p)
{
	struct gt_slab *list = __atomic_exchange_n(&a->used[p & 1], NULL, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&a->epoch[p & 1], 1, __ATOMIC_RELEASE);
	if (list) {
		/* Re-publish the links with release for slabs_retired.  Each
		 * link is read before its release store, never after: a
		 * recycled slab's link is written again by the thread that
		 * takes it, ordered after this only through that store. */
		for (struct gt_slab *s = list, *n; s; s = n) {
			n = s->next;
			__atomic_store_n(&s->next, n, __ATOMIC_RELEASE);
		}
		call_rcu(&list->rh, slabs_retired);
	}
}

size_t gt_garena_slabs(const struct gt_garena *a, unsigned p)
{
	size_t n = 0;
	for (struct gt_slab *s = __atomic_load_n(&a->used[p & 1], __ATOMIC_ACQUIRE); s; s = s->next)
		n++;
	return n;
}

/* ------------------------------------------------------------ block pool */
/*
 * Slot i (0 <= i < GT_BLOCK_MAX) names one block for good: block_at[i] is
 * written once, by the thread that maps the block's slab, before the slot
 * is first pushed (release) and read-only after.  A block starts with its
 * slot number, so gt_block_put needs no search.  The free slots are an
 * index stack over block_next (idxstack.h).
 */
#define BLOCK_HDR 16u
#define BLOCKS_PER_SLAB 62u  /* 62 * 1056 = 65472 bytes: one 64 KiB map */
static char *block_at[GT_BLOCK_MAX];
static uint32_t block_next[GT_BLOCK_MAX];
static uint64_t block_head;
static uint32_t block_fresh;   /* atomic: slots given a block so far */
static uint32_t block_nfree;   /* atomic: blocks on the stack (tests) */

static bool block_pop(uint32_t *slot)
{
	if (!gt_idx_pop(&block_head, block_next, slot))
		return false;
	__atomic_sub_fetch(&block_nfree, 1, __ATOMIC_RELAXED);
	return true;
}

static void block_push(uint32_t slot)
{
	__atomic_add_fetch(&block_nfree, 1, __ATOMIC_RELAXED);
	gt_idx_push(&block_head, block_next, slot);
}

void *gt_block_get(void)
{
	uint32_t slot;
	if (!block_pop(&slot)) {
		uint32_t first = __atomic_fetch_add(&block_fresh, BLOCKS_PER_SLAB, __ATOMIC_RELAXED);
		if (first + BLOCKS_PER_SLAB > GT_BLOCK_MAX)
			return NULL; /* the slots are used up (the counter stays past) */
		char *m = mmap(NULL, BLOCKS_PER_SLAB * GT_BLOCK_SIZE, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL; /* those slots stay empty */
		for (uint32_t k = 0; k < BLOCKS_PER_SLAB; k++) {
			char *b = m + (size_t)k * GT_BLOCK_SIZE;
			uint32_t s = first + k;
			memcpy(b, &s, sizeof s);
			__atomic_store_n(&block_at[s], b, __ATOMIC_RELEASE);
			if (k != 0)
				block_push(s);
		}
		slot = first;
	}
	return __atomic_load_n(&block_at[slot], __ATOMIC_ACQUIRE) + BLOCK_HDR;
}

void gt_block_put(void *p)
{
	if (!p)
		return;
	uint32_t slot;
	memcpy(&slot, (char *)p - BLOCK_HDR, sizeof slot);
	block_push(slot);
}

size_t gt_block_free_count(void)
{
	return __atomic_load_n(&block_nfree, __ATOMIC_RELAXED);
}
