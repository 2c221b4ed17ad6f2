/*
 * arena.h: memory for application threads' steady-state paths that never
 * calls the allocator (issue 10: fork safety).
 * May call: nothing above src/core (declarations and inlines).
 *
 * Why.  A fork may land at any instant of any thread.  An allocator that
 * does not lock itself around fork (GCC 12's AddressSanitizer) leaves a
 * child whose parent had a thread inside malloc or free hung at its next
 * allocation; no allocator lock taken on our behalf by an application
 * thread is safe.  mmap and munmap are system calls (no userspace lock): the
 * memory here comes from them alone, and is handed out without any lock.
 *
 * Two kinds:
 *   generation arenas (gt_garena): per-thread bump allocation of nodes that
 *     live exactly one generation (interned strings, event stacks);
 *   the block pool (gt_block_get/put): fixed-size blocks that live across
 *     generations and move between threads (long region names).
 */
#ifndef GT_ARENA_H
#define GT_ARENA_H

#include <stddef.h>
#include <stdint.h>

/*
 * A generation arena, one per kind of node.  Each thread bumps through its
 * own slab per generation parity (thread-local cursor, no shared write per
 * node); a slab is taken from mmap when the cursor runs out and pushed on
 * used[parity] (lock-free push, release).
 *
 *   used[p]   slabs holding nodes of the current generation of parity p.
 *             Pushed by threads inside a critical section of a generation
 *             of parity p (and by the advancer while it writes that
 *             generation's tables); taken whole (exchange, acquire) by
 *             gt_garena_retire, which runs only after every thread left
 *             that generation, so push and take never overlap.
 *   epoch[p]  bumped by gt_garena_retire (same moment); a thread's cursor is
 *             valid only while its recorded epoch equals epoch[p] (read
 *             inside the critical section: the bump happened before the
 *             generation the thread entered was published).  Epochs never
 *             repeat within a process, sessions and forks included.
 *
 * Retired slabs are recycled (ordinary ones, up to a bound: arena.c) or
 * unmapped after an RCU grace period (call_rcu): a read-side walker of the
 * generation's table (our unit tests' walkers; no walker of liburcu's own
 * since the tables no longer auto-resize) may still stand on a node.  The
 * callback only pushes on a lock-free stack or calls munmap: the call_rcu
 * thread never holds an allocator lock on our behalf at a fork.
 */
struct gt_slab;
struct gt_garena {
	unsigned id;              /* index of this arena's thread-local cursors */
	struct gt_slab *used[2];
	uint64_t epoch[2];
};
#define GT_GARENA_STR 0
#define GT_GARENA_STACK 1
#define GT_GARENA_N 2
#define GT_GARENA_INIT(i) { .id = (i), .epoch = { 1, 1 } }

/* size bytes (16-aligned) for a node of a generation of parity p; NULL if
 * no memory.  The caller is in a critical section of that generation (or is
 * the advancer writing it).  AS-unsafe (mmap). */
void *gt_garena_alloc(struct gt_garena *a, unsigned p, size_t size);
/* Every node of parity p handed out so far is dead: called by the advancer
 * after every thread left the generation (and after the table holding the
 * nodes was emptied).  Never waits. */
void gt_garena_retire(struct gt_garena *a, unsigned p);
/* Slabs of arena a in use or awaiting their grace period (tests). */
size_t gt_garena_slabs(const struct gt_garena *a, unsigned p);

/* Blocks of GT_BLOCK_SIZE bytes, from mmap'd slabs that are never unmapped;
 * a lock-free stack of free blocks over static slot arrays (no ABA: tagged
 * head).  At most GT_BLOCK_MAX blocks exist; gt_block_get returns NULL past
 * that or if mmap fails.  Any thread, AS-unsafe (may mmap). */
#define GT_BLOCK_SIZE 1056u
#define GT_BLOCK_MAX 16384u
void *gt_block_get(void);
void gt_block_put(void *b);
size_t gt_block_free_count(void); /* blocks on the free stack (tests) */

#endif
