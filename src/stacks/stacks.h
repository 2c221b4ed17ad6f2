/*
 * stacks.h: stack tables (stacktab.c), symbolization (symbolize.c, with
 * the line resolver symlines.c) and the stacks on events (evstack.c) --
 * the part of the substrate that turns PCs into a generation's Stack and
 * String events.
 * May call: src/core.  Called by the event writers, the CPU sampler and
 * the session layer.
 */
#ifndef GT_STACKS_H
#define GT_STACKS_H

#include "../core/core.h"

/* Entry stacks (flusher context). */
struct gt_frame {
	uint64_t pc;
	const char *func;   /* never NULL or empty */
	const char *file;   /* never NULL or empty */
	uint64_t line;
};
GT_HIDDEN void gt_entry_frame(struct gt_thread *t, struct gt_frame *fr);
/* Symbolise pc (flusher only; cached).  Unknown parts become the module
 * name and offset, never empty.  A line not known yet is asked of the line
 * resolver (symlines.c); until gt_sym_settle takes its answer the frame
 * has the module's path as file and line 1. */
GT_HIDDEN void gt_sym_lookup(uint64_t pc, struct gt_frame *fr);
/* Wait at most wait_ns for the lines asked so far, and take the answers
 * into the cache.  The advance calls it once, between looking up every PC
 * of g's stack tables (gt_stacktab_prefetch, gt_evstack_prefetch) and
 * writing them. */
GT_HIDDEN void gt_sym_settle(uint64_t wait_ns);
/* How long an advance waits for source lines: a generation's end is never
 * held up longer by DWARF loading (issue 10).  The final generation (stop)
 * waits longer, so that a finished trace has its lines when they can be
 * had. */
#define GT_SYM_WAIT_NS 10000000ull
#define GT_SYM_FINAL_WAIT_NS 200000000ull
/* Cached symbol only, no allocation (crash path).  false if not cached. */
GT_HIDDEN bool gt_sym_peek(uint64_t pc, struct gt_frame *fr);


/* Stack table of a generation (flusher context).  Entry stacks of threads
 * use even ids (2 * goid); interned stacks odd ids.  gt_stack_intern takes
 * PCs leaf first (already adjusted: a return address minus one), at most
 * GT_MAX_FRAMES, and returns the id in generation gen (0 if none). */
GT_HIDDEN uint64_t gt_stack_intern(uint64_t gen, const uint64_t *pcs, int n);
GT_HIDDEN void gt_stacktab_write(uint64_t gen, uint64_t now);
/* Look up (gt_sym_lookup) every PC that gt_stacktab_write(gen) will write,
 * entry frames included, so that their lines are asked early. */
GT_HIDDEN void gt_stacktab_prefetch(uint64_t gen);
/* A fresh odd stack id of generation gen (any thread inside gen, or the
 * flusher; the counter is atomic and reset by gt_stacktab_write). */
GT_HIDDEN uint64_t gt_stack_id_new(uint64_t gen);
/* Stacks on events (evstack.c), in two steps.  gt_evstack_capture walks
 * the caller's stack (leaf first, return addresses minus one, the frames
 * inside libgotrace left out) if class cls (GOTRACE_STACK_*) is enabled,
 * else sets n = 0.  It is called BEFORE the caller enters its critical
 * section: the DWARF unwinder may take the loader lock (dl_iterate_phdr)
 * and libunwind's own locks on a cache miss, and a thread must never wait
 * for a lock while the advancer waits for it to leave its generation.
 * gt_evstack_id then interns the PCs in e->gen (inside the critical
 * section; 0 if none).  Threads, AS-unsafe.  gt_evstack_write: advancer,
 * after all left gen. */
#define GT_EVSTACK_MAX 64
struct gt_evpcs {
	int n;
	uint64_t pcs[GT_EVSTACK_MAX];
};
GT_HIDDEN void gt_evstack_walk(struct gt_evpcs *s);
/* Whether events of class cls get stacks now.  The options are written
 * before tracing is turned on (release): read them only once it is seen
 * on. */
static inline bool gt_evstack_wanted(int cls)
{
	return __atomic_load_n(&gotrace_on_, __ATOMIC_ACQUIRE) && (gt_session.opt.event_stacks & cls);
}
static inline void gt_evstack_capture(struct gt_evpcs *s, int cls)
{
	s->n = 0;
	if (gt_evstack_wanted(cls))
		gt_evstack_walk(s);
}
GT_HIDDEN uint64_t gt_evstack_intern(struct gt_emit *e, const uint64_t *pcs, int n);
/* s may be NULL (no stack: the hot annotation paths, stacks.h users in
 * event.c, pass a constant NULL when the class is off). */
static inline uint64_t gt_evstack_id(struct gt_emit *e, const struct gt_evpcs *s)
{
	return s != NULL && s->n > 0 ? gt_evstack_intern(e, s->pcs, s->n) : 0;
}
GT_HIDDEN void gt_evstack_write(uint64_t gen, uint64_t now);
/* The same as gt_stacktab_prefetch for gen's event stacks (advancer, after
 * all left gen, before gt_evstack_write). */
GT_HIDDEN void gt_evstack_prefetch(uint64_t gen);
/* Crash flush (AS-safe, flusher parked, threads out of gen): fn(arg, id,
 * pcs, n) for every event stack whose id may be used in gen, until fn
 * returns false.  gt_evstack_crash_frame describes pc from data prepared in
 * advance (the flusher's symbol cache, else "module+0xoff" or the bare
 * address formatted into buf); true if the strings are the cache's (stable
 * pointers), false if func points into buf. */
/* The interning behind gt_evstack_id, for PCs already walked (leaf
 * first), and generation gen's table (unit tests). */
GT_HIDDEN struct cds_lfht *gt_evstack_ht(uint64_t gen);
typedef bool (*gt_evstack_fn)(void *arg, uint64_t id, const uint64_t *pcs, int n);
GT_HIDDEN void gt_evstack_crash_walk(uint64_t gen, gt_evstack_fn fn, void *arg);
GT_HIDDEN bool gt_evstack_crash_frame(uint64_t pc, struct gt_frame *fr, char *buf, size_t len);
static inline uint64_t gt_entry_stack_id(const struct gt_thread *t) { return t->goid * 2; }

/* The hash of a stack's PCs (the stack tables' and the crash drain's key).
 * Pure: AS-safe. */
static inline uint64_t gt_hash_pcs(const uint64_t *pcs, int n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
	for (int i = 0; i < n; i++) {
		h ^= pcs[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return h;
}

#endif
