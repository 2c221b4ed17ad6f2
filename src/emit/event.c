/*
 * event.c: the emit path.  One critical section per call: enter the
 * thread's seqlock, read the generation, write into that generation's
 * buffers (thread-local), leave.  Slow paths (new chunk, status, interning
 * misses) are out of line.
 * May call: sched.c, goroutine.c (statuses), src/stacks (event stacks),
 * src/core.
 */
#include "emit.h"
#include "../core/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void (*gt_test_pause)(int point); /* core.h; set by tests only */

static void tbuf_switch(struct gt_tbuf *tb, uint64_t gen)
{
	/* The advancer collected this parity's chunks of gen-2 (it finishes a
	 * generation before starting the next), so only the counters remain. */
	tb->gen = gen;
	tb->str_next = tb->str_end = 0;
	tb->dropped = 0;
	tb->stated = false;
}

static bool prologue(struct gt_emit *e);

/* The calling thread's record for this session (registering it on its
 * first call); NULL if tracing is off. */
static inline struct gt_thread *emit_self(void)
{
	struct gt_thread *t = gt_tls_self;
	if (unlikely(t == NULL || gt_tls_session != __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED)))
		t = gt_thread_self_slow();
	return t;
}

/* Bind e to thread t inside its critical section of generation gen: the
 * buffer of gen's parity (switched to gen if it still holds gen - 2) and
 * the event time, read inside the section. */
static inline void emit_bind(struct gt_emit *e, struct gt_thread *t, uint64_t gen)
{
	e->t = t;
	e->gen = gen;
	e->tb = &t->tb[gen & 1];
	if (unlikely(e->tb->gen != gen))
		tbuf_switch(e->tb, gen);
	e->now = gt_now();
}

/* gt_emit_begin, inlined into this file's annotation calls (their fast
 * path then makes no call before the event is written). */
static inline __attribute__((always_inline)) bool emit_begin(struct gt_emit *e)
{
	struct gt_thread *t = emit_self();
	if (!t)
		return false;
	gt_seq_enter(&t->seq);
	uint64_t gen = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE);
	/* EXITED, SYSCALL (annotations inside a syscall bracket are not
	 * traced: the P may be gone) and BLOCKED (resumed first) are slow. */
	if (unlikely(gen == 0 || t->state >= GT_TS_EXITED)) {
		if (gen != 0 && t->state == GT_TS_BLOCKED) {
			emit_bind(e, t, gen);
			if (gt_resume_locked(e))
				return true;
		}
		gt_seq_leave(&t->seq);
		return false;
	}
	emit_bind(e, t, gen);
	if (unlikely(t->status_gen != gen || t->owed_n != 0 || __atomic_load_n(&t->name_dirty, __ATOMIC_RELAXED) ||
	             t->drop_note != 0)) {
		if (!prologue(e)) {
			gt_count_drop(e);
			gt_seq_leave(&t->seq);
			return false;
		}
	}
	return true;
}

bool gt_emit_begin(struct gt_emit *e)
{
	return emit_begin(e);
}

/* Enter the critical section without the prologue: for the scheduling
 * calls, which write the thread's statuses themselves.  false if tracing is
 * off or the thread exited (nothing entered). */
bool gt_emit_enter(struct gt_emit *e)
{
	struct gt_thread *t = emit_self();
	if (!t)
		return false;
	gt_seq_enter(&t->seq);
	uint64_t gen = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE);
	if (unlikely(gen == 0 || t->state == GT_TS_EXITED)) {
		gt_seq_leave(&t->seq);
		return false;
	}
	emit_bind(e, t, gen);
	return true;
}

bool gt_emit_renew(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	gt_seq_leave(&t->seq);
	gt_seq_enter(&t->seq);
	uint64_t gen = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE);
	if (gen == 0 || gt_tls_session != __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED))
		return false;
	emit_bind(e, t, gen);
	return true;
}

/* The prologue alone (owed region ends, label, drop note, status) for a
 * critical section entered with gt_emit_enter. */
bool gt_emit_prologue(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	if (t->status_gen != e->gen || t->owed_n != 0 || __atomic_load_n(&t->name_dirty, __ATOMIC_RELAXED) ||
	    t->drop_note != 0)
		return prologue(e);
	return true;
}

/* ----------------------------------------------------------- status events */

bool gt_write_status(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	if (t->state == GT_TS_XG)
		return gt_xg_write_status(e); /* an explicit goroutine runs */
	uint8_t *p = gt_ev_reserve(e, 5 * (2 + 4 * GT_UVARINT_MAX), true);
	if (!p)
		return false;
	uint64_t stk = gt_entry_stack_id(t);
	if (t->state == GT_TS_NEW) {
		/* A thread appearing in any generation: its own P comes up Idle
		 * (new or recycled ids alike), it starts it, creates its
		 * goroutine with the entry stack (which names the goroutine in
		 * `go tool trace`) and starts running it. */
		p = gt_ev_start(e, p, GT_EV_PROC_STATUS);
		p = gt_put_uvarint(p, t->p);
		p = gt_put_uvarint(p, GT_P_IDLE);
		p = gt_ev_start(e, p, GT_EV_PROC_START);
		p = gt_put_uvarint(p, t->p);
		p = gt_put_uvarint(p, 1);
		/* Its goroutine created by another thread (gotrace_thread_adopt),
		 * or by itself. */
		uint8_t *q = t->adopt ? gt_xg_adopt_events(e, p) : NULL;
		if (q) {
			p = q;
		} else {
			p = gt_ev_start(e, p, GT_EV_GO_CREATE);
			p = gt_put_uvarint(p, t->goid);
			p = gt_put_uvarint(p, stk);
			p = gt_put_uvarint(p, 0);
			p = gt_ev_start(e, p, GT_EV_GO_START);
			p = gt_put_uvarint(p, t->goid);
			p = gt_put_uvarint(p, 1);
			t->own.seq = 1;
		}
		t->pseq = 1;
		__atomic_store_n(&t->state, GT_TS_RUNNING, __ATOMIC_RELAXED);
	} else {
		t->pseq = 0;
		t->own.seq = 0;
		p = gt_ev_start(e, p, GT_EV_PROC_STATUS);
		p = gt_put_uvarint(p, t->p);
		p = gt_put_uvarint(p, GT_P_RUNNING);
		p = gt_ev_start(e, p, GT_EV_GO_STATUS_STACK);
		p = gt_put_uvarint(p, t->goid);
		p = gt_put_uvarint(p, t->tid);
		p = gt_put_uvarint(p, GT_G_RUNNING);
		p = gt_put_uvarint(p, stk);
	}
	gt_ev_commit(e, p);
	t->pseq_gen = t->own.seq_gen = e->gen;
	gt_own_traced(t, e->gen);
	if (t->adopt)
		gt_xg_adopt_drop(t); /* adopted: the handle's reference goes */
	__atomic_store_n(&t->status_gen, e->gen, __ATOMIC_RELAXED);
	e->tb->stated = true;
	return true;
}

static const char *region_name(const struct gt_region *r);

/* RegionEnd at p, room reserved (no stack). */
static inline void put_region_end(struct gt_emit *e, uint8_t *p, uint64_t task, uint64_t id)
{
	p = gt_ev_start(e, p, GT_EV_REGION_END);
	p = gt_put_uvarint(p, task);
	p = gt_put_uvarint(p, id);
	*p++ = 0;
	gt_ev_commit(e, p);
}

/* RegionEnd of r.  While the generation is the one of its begin (the usual
 * case: regions are shorter than a generation), the name's id is the one
 * the begin got, and the end needs no lookup; otherwise the name is
 * interned again in this generation. */
static inline bool write_region_end(struct gt_emit *e, const struct gt_region *r)
{
	uint64_t id = r->id;
	if (r->id_gen != e->gen) {
		id = gt_intern(e, region_name(r), r->len, true);
		if (id == 0 && r->len != 0)
			return false;
	}
	uint8_t *p = gt_ev_reserve(e, 1 + 4 * GT_UVARINT_MAX, true);
	if (!p)
		return false;
	put_region_end(e, p, r->task, id);
	return true;
}

static const char *region_name(const struct gt_region *r)
{
	return r->lit ? r->lit : r->blk ? r->blk : r->text;
}

static inline void region_release(struct gt_region *r)
{
	if (unlikely(r->blk != NULL)) {
		gt_block_put(r->blk);
		r->blk = NULL;
	}
}

static bool write_log(struct gt_emit *e, uint64_t task, const char *cat, size_t clen,
                      const char *msg, size_t mlen, bool must)
{
	uint64_t cid = gt_intern(e, cat, clen, must);
	if (cid == 0 && clen != 0)
		return false;
	uint64_t mid = gt_string_fresh(e, msg, mlen, must);
	if (mid == 0 && mlen != 0)
		return false;
	uint8_t *p = gt_ev_reserve(e, 1 + 5 * GT_UVARINT_MAX, must);
	if (!p)
		return false;
	p = gt_ev_start(e, p, GT_EV_LOG);
	p = gt_put_uvarint(p, task);
	p = gt_put_uvarint(p, cid);
	p = gt_put_uvarint(p, mid);
	*p++ = 0;
	gt_ev_commit(e, p);
	return true;
}

/* Things owed to the trace before this thread's next event: its status in
 * this generation, ends of regions whose end could not be written, its
 * label, a note about dropped events. */
static bool prologue(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	if (t->status_gen != e->gen && !gt_write_status(e))
		return false;
	while (t->owed_n > 0) {
		struct gt_region *r = &t->owed[0];
		if (!write_region_end(e, r))
			return false;
		region_release(r);
		memmove(&t->owed[0], &t->owed[1], (t->owed_n - 1) * sizeof t->owed[0]);
		t->owed_n--;
	}
	if (t->drop_note != 0) {
		char msg[96];
		int n = snprintf(msg, sizeof msg, "dropped %llu events: trace output could not keep up",
		                 (unsigned long long)t->drop_note);
		if (write_log(e, 0, "gotrace", 7, msg, (size_t)n, true))
			t->drop_note = 0;
	}
	if (__atomic_load_n(&t->name_dirty, __ATOMIC_RELAXED) && t->state == GT_TS_RUNNING) {
		/* (the label is the own G's) */
		gt_thread_take_name(t);
		size_t len = strnlen(t->name, sizeof t->name);
		uint64_t id = len ? gt_intern(e, t->name, len, false) : 0;
		uint8_t *p = id ? gt_ev_reserve(e, 1 + 2 * GT_UVARINT_MAX, false) : NULL;
		if (p) {
			p = gt_ev_start(e, p, GT_EV_GO_LABEL);
			p = gt_put_uvarint(p, id);
			gt_ev_commit(e, p);
		}
		if (p || len == 0) {
			/* Cleared, then re-armed if a namer asked meanwhile (the
			 * order of these two against its two stores: thread.c). */
			__atomic_store_n(&t->name_dirty, 0, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&t->name_req_new, __ATOMIC_SEQ_CST))
				__atomic_store_n(&t->name_dirty, 1, __ATOMIC_RELAXED);
		}
	}
	return true;
}

/* ------------------------------------------------------ interning of names */

/* Id of C string s in this generation via the thread's cache; sets *len.
 * Returns 0 for "" and UINT64_MAX when it could not be defined. */
static uint64_t name_id(struct gt_emit *e, const char *s, size_t *len, bool must)
{
	if (!s || !*s) {
		*len = 0;
		return 0;
	}
	struct gt_scache *c = &e->t->scache[((uintptr_t)s >> 3) & (GT_SCACHE_N - 1)];
	if (c->ptr == s && c->gen == e->gen && memcmp(c->text, s, c->len) == 0 && s[c->len] == 0) {
		*len = c->len;
		return c->id;
	}
	*len = gt_wire_strlen(s);
	uint64_t id = gt_intern(e, s, *len, must);
	if (id == 0)
		return UINT64_MAX;
	if (*len < sizeof c->text) {
		c->ptr = s;
		c->gen = e->gen;
		c->id = (uint32_t)id;
		c->len = (uint16_t)*len;
		memcpy(c->text, s, *len);
		if (id > UINT32_MAX)
			c->ptr = NULL;
	}
	return id;
}

/* ----------------------------------------------------------- the public API */

/* Task ids are unique in the process, not consecutive: each thread takes
 * a block of GT_TASK_BLOCK of them from the shared counter at a time, so
 * that a task begin touches only the thread's own record (an atomic add on
 * a shared line per task cost 2 threads tens of nanoseconds each). */
#define GT_TASK_BLOCK 256u
static inline uint64_t task_id(struct gt_thread *t)
{
	if (unlikely(t->task_id == t->task_lim)) {
		uint64_t end = __atomic_add_fetch(&gt_session.task_next, GT_TASK_BLOCK, __ATOMIC_RELAXED);
		t->task_id = end - GT_TASK_BLOCK;
		t->task_lim = end;
	}
	return ++t->task_id;
}

/* TaskBegin of a new task named by string id nid (UINT64_MAX: none could
 * be had); leaves the critical section.  Returns the task's id. */
static inline uint64_t task_begin(struct gt_emit *e, uint64_t parent, uint64_t nid,
                                  const struct gt_evpcs *stack)
{
	uint64_t id = task_id(e->t);
	uint64_t stk = gt_evstack_id(e, stack);
	uint8_t *p = nid != UINT64_MAX ? gt_ev_reserve(e, 1 + 5 * GT_UVARINT_MAX, false) : NULL;
	if (likely(p != NULL)) {
		p = gt_ev_start(e, p, GT_EV_TASK_BEGIN);
		p = gt_put_uvarint(p, id);
		p = gt_put_uvarint(p, parent);
		p = gt_put_uvarint(p, nid);
		p = gt_put_uvarint(p, stk);
		gt_ev_commit(e, p);
	} else {
		gt_count_drop(e);
	}
	gt_emit_end(e);
	return id;
}

uint64_t gotrace_task_begin_(uint64_t parent, const char *name)
{
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_GOROUTINE);
	struct gt_emit e;
	if (!emit_begin(&e))
		return 0;
	size_t len;
	return task_begin(&e, parent, name_id(&e, name, &len, false), &stack);
}

void gotrace_task_end_(uint64_t task)
{
	if (task == 0 || task > __atomic_load_n(&gt_session.task_next, __ATOMIC_RELAXED))
		return;
	struct gt_emit e;
	if (!emit_begin(&e))
		return;
	uint8_t *p = gt_ev_reserve(&e, 1 + 3 * GT_UVARINT_MAX, false);
	if (p) {
		p = gt_ev_start(&e, p, GT_EV_TASK_END);
		p = gt_put_uvarint(p, task);
		*p++ = 0;
		gt_ev_commit(&e, p);
	} else {
		gt_count_drop(&e);
	}
	gt_emit_end(&e);
}

/* ------------------------------------------- regions past the depth limit */

/* Key of an untraced region (struct gt_thread.ovf_key): FNV-1a of the name
 * as cut to the format's limit, mixed with the task. */
static uint64_t region_key(uint64_t task, const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ (task * 0x9e3779b97f4a7c15ull);
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

/* A begin that is not traced: past the depth limit, or its name could not
 * be kept. */
static void overflow_push(struct gt_thread *t, uint64_t task, const char *name, size_t len)
{
	uint32_t n = t->depth_overflow++;
	if (n < GT_REGION_DEPTH) {
		t->ovf_key[n] = region_key(task, name, len);
		t->ovf_at[n] = (uint8_t)t->depth;
	}
}

/* An end while untraced regions are open: true if it ends one of them (it
 * and those opened inside it are then gone; nothing is written).  Past the
 * known ones the innermost counts as ended: they cannot be told apart. */
static bool overflow_end(struct gt_thread *t, uint64_t task, const char *name, size_t len)
{
	uint32_t n = t->depth_overflow;
	if (n > GT_REGION_DEPTH) {
		t->depth_overflow--;
		return true;
	}
	uint64_t k = region_key(task, name, len);
	for (uint32_t j = n; j-- > 0;) {
		if (t->ovf_key[j] == k) {
			t->depth_overflow = j;
			return true;
		}
	}
	return false;
}

/* Traced region i ends: so do the untraced regions opened inside it. */
static void overflow_unwind(struct gt_thread *t, int i)
{
	while (t->depth_overflow > 0 && (t->depth_overflow > GT_REGION_DEPTH ||
	                                 (int)t->ovf_at[t->depth_overflow - 1] > i))
		t->depth_overflow--;
}

/* A region record's fields but its name's copy and emitted flag; lit: the
 * literal, NULL if none; nid: the name's id in generation gen (UINT64_MAX:
 * none). */
static inline void region_set(struct gt_region *r, uint64_t task, const char *lit, size_t len, uint64_t nid,
                              uint64_t gen)
{
	r->task = task;
	r->len = (uint16_t)len;
	r->blk = NULL;
	r->lit = lit;
	r->id = (uint32_t)nid;
	r->id_gen = nid <= UINT32_MAX ? gen : 0;
}

/* RegionBegin at p, room reserved. */
static inline void put_region_begin(struct gt_emit *e, uint8_t *p, uint64_t task, uint64_t nid, uint64_t stk)
{
	p = gt_ev_start(e, p, GT_EV_REGION_BEGIN);
	p = gt_put_uvarint(p, task);
	p = gt_put_uvarint(p, nid);
	p = gt_put_uvarint(p, stk);
	gt_ev_commit(e, p);
}

/* Push and write a region begin, name (len bytes) having string id nid
 * (UINT64_MAX: could not be interned); lit (a constant at each call, so
 * that the copy folds away): name is a call site's literal.
 * Returns the region's index + 1 on the thread's stack, 0 if not pushed.
 * Inside the critical section; leaves it. */
static inline __attribute__((always_inline)) uint32_t region_push(struct gt_emit *e, uint64_t task, const char *name, size_t len,
                                   uint64_t nid, const bool lit, const struct gt_evpcs *stack)
{
	struct gt_thread *t = e->t;
	uint64_t stk = gt_evstack_id(e, stack);
	uint8_t *p = nid != UINT64_MAX ? gt_ev_reserve(e, 1 + 4 * GT_UVARINT_MAX, false) : NULL;
	uint32_t at = t->depth;
	struct gt_region *r = &t->regions[t->depth++];
	region_set(r, task, lit ? name : NULL, len, nid, e->gen);
	if (lit) {
		/* Nothing to copy. */
	} else if (len < sizeof r->text) {
		memcpy(r->text, name, len);
		r->text[len] = 0;
	} else {
		/* Not malloc: a fork may land here (arena.h). */
		r->blk = len < GT_BLOCK_SIZE - 16 ? gt_block_get() : NULL;
		if (r->blk) {
			memcpy(r->blk, name, len);
			r->blk[len] = 0;
		} else {
			t->depth--; /* cannot remember it: do not trace it */
			overflow_push(t, task, name, len);
			gt_count_drop(e);
			gt_emit_end(e);
			return 0;
		}
	}
	if (likely(p != NULL)) {
		put_region_begin(e, p, task, nid, stk);
		r->emitted = 1;
	} else {
		r->emitted = 0;
		gt_count_drop(e);
	}
	gt_emit_end(e);
	return at + 1;
}

void gotrace_region_begin_(uint64_t task, const char *name)
{
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_REGION);
	struct gt_emit e;
	if (!emit_begin(&e))
		return;
	struct gt_thread *t = e.t;
	if (!name)
		name = "";
	if (t->depth >= GT_REGION_DEPTH) {
		overflow_push(t, task, name, gt_wire_strlen(name));
		gt_emit_end(&e);
		return;
	}
	size_t len;
	uint64_t nid = name_id(&e, name, &len, false);
	region_push(&e, task, name, len, nid, false, &stack);
}

/* ------------------------------------------------ string-literal call sites
 *
 * A site (gotrace_site, built by the _lit macros of gotrace.h: one static
 * descriptor per call site) names a string literal, immutable for the
 * program's lifetime.  Its cache word holds the literal's string id in one
 * generation: gen << 24 | id.  Generation numbers are never reused in a
 * process, across sessions included (gt_session.gen), so a word whose
 * generation is the caller's is that generation's id, whoever wrote it; one
 * word, so the pair cannot tear.  Written (relaxed) by any thread that
 * defined the literal in its generation (site_define; ids of 2^24 and more
 * are not cached); read (relaxed) by every thread using the site.  An id
 * read from the word was defined in that generation, in the strings batch
 * of a thread inside that generation, before the word was stored, and
 * every batch of a generation is written out only after every thread left
 * it: no ordering is needed beyond that.
 */
#define SITE_ID_BITS 24
#define SITE_ID_MASK ((1u << SITE_ID_BITS) - 1)

/*
 * The literal's id in e's generation, for a site's first call there (or a
 * call racing it).  Defined as log messages are, under a fresh id of the
 * thread's block (gt_string_fresh): the site's word is what shares it, so
 * the generation's table is not needed.  Interning it costs the first call
 * of every generation a lookup and an insert in a table the advancer has
 * just emptied, and an arena node (BENCHMARKS.md, "A site's first call in
 * a generation").  But fresh ids are shared with every log message of the
 * generation, and every event naming the site carries its id: only an id
 * that takes one varint byte (< 128) is taken fresh, any other literal is
 * interned, whose odd ids count names alone and stay small (bytes per
 * region event: 5).  Two threads racing define it twice, under two ids
 * that are both valid; a fresh id that came out larger than expected (the
 * block taken meanwhile) is an unused definition, harmless.  0: could not
 * be defined.
 */
#define SITE_FRESH_MAX 128u
static __attribute__((noinline)) uint64_t site_define(struct gt_emit *e, const char *name, uint32_t len)
{
	struct gt_tbuf *tb = e->tb;
	uint64_t next = tb->str_next != tb->str_end ? tb->str_next
	                                            : __atomic_load_n(&gt_session.msg_next[e->gen & 1], __ATOMIC_RELAXED);
	if (2 * (next + 1) < SITE_FRESH_MAX) {
		uint64_t id = gt_string_fresh(e, name, len, false);
		if (id == 0 || id < SITE_FRESH_MAX)
			return id;
	}
	return gt_intern(e, name, len, false);
}

static inline uint64_t site_id(struct gt_emit *e, gotrace_site *s)
{
	uint64_t w = __atomic_load_n(&s->cache_, __ATOMIC_RELAXED);
	if (likely((w >> SITE_ID_BITS) == e->gen))
		return w & SITE_ID_MASK;
	uint32_t len = s->len_ < GT_MAX_STRING ? s->len_ : GT_MAX_STRING;
	if (len == 0)
		return 0;
	uint64_t id = site_define(e, s->name_, len);
	if (id == 0)
		return UINT64_MAX;
	if (id <= SITE_ID_MASK)
		__atomic_store_n(&s->cache_, (e->gen << SITE_ID_BITS) | id, __ATOMIC_RELAXED);
	return id;
}

static inline uint32_t site_len(const gotrace_site *s)
{
	return s->len_ < GT_MAX_STRING ? s->len_ : GT_MAX_STRING;
}

static inline __attribute__((always_inline)) uint32_t region_begin_site(uint64_t task, gotrace_site *s,
                                                                        const struct gt_evpcs *stack)
{
	struct gt_emit e;
	if (!emit_begin(&e))
		return 0;
	struct gt_thread *t = e.t;
	if (unlikely(t->depth >= GT_REGION_DEPTH)) {
		overflow_push(t, task, s->name_, site_len(s));
		gt_emit_end(&e);
		return 0;
	}
	return region_push(&e, task, s->name_, site_len(s), site_id(&e, s), true, stack);
}

/* With a stack: out of line, so that the common call (region stacks off)
 * carries neither the capture buffer in its frame nor its checks. */
static __attribute__((noinline)) uint32_t region_begin_site_stack(uint64_t task, gotrace_site *s)
{
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_REGION);
	return region_begin_site(task, s, &stack);
}

/* The general path of a _lit region begin: every case (lit_enter, below). */
static __attribute__((noinline)) uint32_t region_begin_site_general(uint64_t task, gotrace_site *s)
{
	if (unlikely(gt_evstack_wanted(GOTRACE_STACK_REGION)))
		return region_begin_site_stack(task, s);
	return region_begin_site(task, s, NULL);
}

/* ------------------------------------------------ the _lit calls' fast path
 *
 * The common _lit call is written as a leaf: it calls nothing, so the
 * emit context stays in registers and the call builds no frame for it
 * (with the general path's slow branches in the same function, every call
 * kept the context in a 0x48-byte frame, the slow calls taking its
 * address: BENCHMARKS.md, "The _lit calls as leaves").  Its
 * case: the thread registered in this session, its status already in this
 * generation, nothing owed (region ends, label, drop note), no stack for
 * the event's class, the cycle counter as clock, room in the open event
 * batch, and the call's own conditions (the site's id cached for this
 * generation; a region end: its region innermost and begun in this
 * generation).  Every other case leaves the critical section, having
 * written nothing, and goes by a tail call to the general path (emit_begin
 * and the event's writer), which enters again and handles it.  Each
 * condition tested here is one on which the general path would leave its
 * own fast branch, so both write the same bytes for the same call
 * (tests/emit/test_literal_sites.c, test_fast_path_hand_overs).
 *
 * lit_enter: enter the calling thread's critical section and bind e if the
 * call is the common case for event class cls (GOTRACE_STACK_*, 0: never
 * has a stack) and an event of at most need bytes; false, outside the
 * section, otherwise.
 */
static inline __attribute__((always_inline)) bool lit_enter(struct gt_emit *e, int cls, uint32_t need)
{
	struct gt_thread *t = gt_tls_self;
	if (unlikely(t == NULL || gt_tls_session != __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED)))
		return false;
	/* The session's options and clock were written before it was turned
	 * on, and this thread registered in it after seeing it on (acquire,
	 * thread.c): no gotrace_on_ load is needed to read them. */
	if (unlikely((gt_session.opt.event_stacks & cls) != 0 || !gt_clock.use_cycles))
		return false;
	if (unlikely(!gt_seq_enter(&t->seq)))
		return false;
	uint64_t gen = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE);
	struct gt_tbuf *tb = &t->tb[gen & 1];
	struct gt_chunk *c = tb->ev;
	/* emit_begin's conditions for its fast branch, then gt_ev_reserve's */
	if (unlikely(gen == 0 || t->state >= GT_TS_EXITED || tb->gen != gen || t->status_gen != gen ||
	             t->owed_n != 0 || __atomic_load_n(&t->name_dirty, __ATOMIC_RELAXED) || t->drop_note != 0 ||
	             c == NULL || c->len + need > c->limit)) {
		gt_seq_leave(&t->seq);
		return false;
	}
	e->t = t;
	e->tb = tb;
	e->gen = gen;
	e->now = gt_arch_cycles() >> GT_TICK_SHIFT; /* gt_now, use_cycles */
	return true;
}

/* The site's id in e's generation, or UINT64_MAX if not cached. */
static inline uint64_t lit_site_id(const struct gt_emit *e, gotrace_site *s)
{
	uint64_t w = __atomic_load_n(&s->cache_, __ATOMIC_RELAXED);
	return (w >> SITE_ID_BITS) == e->gen ? w & SITE_ID_MASK : UINT64_MAX;
}

uint32_t gotrace_region_begin_site_(uint64_t task, gotrace_site *s)
{
	struct gt_emit e;
	if (unlikely(!lit_enter(&e, GOTRACE_STACK_REGION, 1 + 4 * GT_UVARINT_MAX)))
		return region_begin_site_general(task, s);
	struct gt_thread *t = e.t;
	uint32_t at = t->depth;
	uint64_t nid = lit_site_id(&e, s);
	if (unlikely(at >= GT_REGION_DEPTH || nid == UINT64_MAX)) {
		gt_emit_end(&e);
		return region_begin_site_general(task, s);
	}
	/* region_push's record and event, for a literal with an id */
	struct gt_region *r = &t->regions[at];
	t->depth = at + 1;
	region_set(r, task, s->name_, site_len(s), nid, e.gen);
	r->emitted = 1;
	put_region_begin(&e, e.tb->ev->data + e.tb->ev->len, task, nid, 0);
	gt_emit_end(&e);
	return at + 1;
}

static bool region_is(const struct gt_region *r, uint64_t task, const char *name, size_t len)
{
	return r->task == task && r->len == len &&
	       (r->lit == name || memcmp(region_name(r), name, len) == 0);
}

/* End the region (task, name) open on this thread, and those opened inside
 * it; hint: its index + 1 if the caller knows it (a handle), else 0.
 * Inside the critical section; leaves it. */
static inline __attribute__((always_inline)) void region_end(struct gt_emit *e, uint64_t task,
                                                             const char *name, size_t len,
                                                             uint32_t hint)
{
	struct gt_thread *t = e->t;
	/* The end of an untraced begin writes nothing.  Those are looked at
	 * first: they are the innermost, and a recursion deeper than the
	 * limit has the same name at both levels. */
	if (t->depth_overflow > 0 && overflow_end(t, task, name, len)) {
		gt_emit_end(e);
		return;
	}
	int i;
	if (hint != 0 && hint <= t->depth && t->regions[hint - 1].lit == name &&
	    t->regions[hint - 1].task == task) {
		i = (int)hint - 1; /* a handle's own region: no search */
	} else {
		i = (int)t->depth - 1;
		while (i >= 0 && !region_is(&t->regions[i], task, name, len))
			i--;
	}
	/* Not open on this thread: nothing to end.  Otherwise end it and every
	 * region opened inside it, innermost first (untraced ones included). */
	if (unlikely(t->depth_overflow > 0) && i >= 0)
		overflow_unwind(t, i);
	while (i >= 0 && (int)t->depth > i) {
		struct gt_region *r = &t->regions[--t->depth];
		if (r->emitted && !write_region_end(e, r)) {
			/* Keep the trace consistent: end it before anything else
			 * this thread writes later. */
			t->owed[t->owed_n++] = *r;
			r->blk = NULL;
			gt_count_drop(e);
			continue;
		}
		region_release(r);
	}
	gt_emit_end(e);
}

void gotrace_region_end_(uint64_t task, const char *name)
{
	struct gt_emit e;
	if (!emit_begin(&e))
		return;
	if (!name)
		name = "";
	region_end(&e, task, name, gt_wire_strlen(name), 0);
}

/* The general path of a _lit region end (lit_enter, above). */
static __attribute__((noinline)) void region_end_site_general(uint64_t task, gotrace_site *s, uint32_t hint)
{
	struct gt_emit e;
	if (!emit_begin(&e))
		return;
	region_end(&e, task, s->name_, site_len(s), hint);
}

/* The fast path's case: the innermost region is the one to end (region_end
 * would find it first: by the hint, or as the innermost match), traced, no
 * untraced region open, its begin in this generation (its id still
 * valid). */
void gotrace_region_end_site_(uint64_t task, gotrace_site *s, uint32_t hint)
{
	struct gt_emit e;
	if (unlikely(!lit_enter(&e, 0, 1 + 4 * GT_UVARINT_MAX)))
		return region_end_site_general(task, s, hint);
	struct gt_thread *t = e.t;
	uint32_t d = t->depth;
	if (unlikely(d == 0 || (hint != 0 && hint != d) || t->depth_overflow != 0))
		goto general;
	const struct gt_region *r = &t->regions[d - 1];
	if (unlikely(r->lit != s->name_ || r->task != task || r->len != site_len(s) || !r->emitted ||
	             r->blk != NULL || r->id_gen != e.gen))
		goto general;
	/* write_region_end with the begin's id, and region_end's pop */
	put_region_end(&e, e.tb->ev->data + e.tb->ev->len, task, r->id);
	t->depth = d - 1;
	gt_emit_end(&e);
	return;
general:
	gt_emit_end(&e);
	region_end_site_general(task, s, hint);
}

void gotrace_logf(uint64_t task, const char *cat, const char *fmt, ...)
{
	if (!gotrace_enabled())
		return;
	char msg[GT_MAX_STRING + 1]; /* the format's limit, and its NUL */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
	va_end(ap);
	gotrace_log_(task, cat, msg);
}

/* Log messages are defined under fresh ids (not interned:
 * gt_string_fresh).  The common message, shorter than 128 bytes (a 1-byte
 * length), is measured while it is copied into the open strings batch: no
 * strnlen, no memcpy, no call. */
#define MSG_SHORT 127u
/* msg_fresh's cases that make no call: the message cache's hit, and the
 * definition of a short message in the open strings batch.  Sets *idp and
 * returns true if one of them applied (having written nothing otherwise):
 * the _lit fast path takes these alone. */
static inline __attribute__((always_inline)) bool msg_inline(struct gt_emit *e, const char *msg, uint64_t *idp)
{
	struct gt_tbuf *tb = e->tb;
	struct gt_chunk *c = tb->str;
	/* The message cache (struct gt_msgc): the same text at the same
	 * address as a message of this generation reuses its record. */
	struct gt_msgc *m = &e->t->msgc[((uintptr_t)msg * 0x9e3779b97f4a7c15u) >> (64 - 3)];
	_Static_assert(GT_MSGC_N == 8, "the slot is the hash's top 3 bits");
	if (m->ptr == msg && m->gen == e->gen) {
		uint32_t n = 0;
		while (n < m->len && msg[n] == m->text[n])
			n++;
		if (n == m->len && msg[n] == 0) {
			*idp = m->id;
			return true;
		}
	}
	/* (the conditions of gt_str_reserve's fast path, and an id left in
	 * the thread's block) */
	if (likely(msg != NULL && c != NULL && c->len != 0 && c->gen == e->gen &&
	           c->len + 1 + GT_UVARINT_MAX + 1 + MSG_SHORT <= c->limit && tb->str_next != tb->str_end)) {
		uint64_t id = 2 * (tb->str_next + 1);
		uint8_t *p = c->data + c->len;
		*p++ = GT_EV_STRING;
		p = gt_put_uvarint(p, id);
		uint8_t *lenp = p++;
		uint32_t n = 0;
		while (n < MSG_SHORT && msg[n] != 0) {
			p[n] = (uint8_t)msg[n];
			n++;
		}
		if (n < MSG_SHORT || msg[n] == 0) {
			*idp = 0;
			if (n == 0)
				return true; /* nothing committed */
			*lenp = (uint8_t)n;
			c->len = (uint32_t)(p + n - c->data);
			tb->str_next++;
			if (n <= GT_MSGC_LEN) {
				m->gen = e->gen;
				m->ptr = msg;
				m->id = id;
				m->len = (uint8_t)n;
				/* a fixed size (no call): the batch's room
				 * checked above covers MSG_SHORT bytes at p */
				memcpy(m->text, p, GT_MSGC_LEN);
			}
			*idp = id;
			return true;
		}
		/* longer: the bytes past c->len are not committed */
	}
	return false;
}

/* A log message's id: msg_inline's cases, else a definition by
 * gt_string_fresh.  Sets *ok false if it could not be written; returns 0
 * for an empty message. */
static inline __attribute__((always_inline)) uint64_t msg_fresh(struct gt_emit *e, const char *msg, bool *ok)
{
	uint64_t id;
	*ok = true;
	if (likely(msg_inline(e, msg, &id)))
		return id;
	size_t mlen = gt_wire_strlen(msg);
	uint64_t mid = gt_string_fresh(e, msg, mlen, false);
	*ok = mid != 0 || mlen == 0;
	return mid;
}

/* Log at p, room reserved. */
static inline void put_log(struct gt_emit *e, uint8_t *p, uint64_t task, uint64_t cid, uint64_t mid, uint64_t stk)
{
	p = gt_ev_start(e, p, GT_EV_LOG);
	p = gt_put_uvarint(p, task);
	p = gt_put_uvarint(p, cid);
	p = gt_put_uvarint(p, mid);
	p = gt_put_uvarint(p, stk);
	gt_ev_commit(e, p);
}

/* Log msg under the category of string id cid (UINT64_MAX: none could be
 * had); leaves the critical section. */
static inline __attribute__((always_inline)) void log_write(struct gt_emit *e, uint64_t task, uint64_t cid, const char *msg,
                             const struct gt_evpcs *stack)
{
	bool ok = false;
	if (cid != UINT64_MAX) {
		bool mok;
		uint64_t mid = msg_fresh(e, msg, &mok);
		uint64_t stk = gt_evstack_id(e, stack);
		uint8_t *p = mok ? gt_ev_reserve(e, 1 + 5 * GT_UVARINT_MAX, false) : NULL;
		if (likely(p != NULL)) {
			put_log(e, p, task, cid, mid, stk);
			ok = true;
		}
	}
	if (!ok)
		gt_count_drop(e);
	gt_emit_end(e);
}

void gotrace_log_(uint64_t task, const char *cat, const char *msg)
{
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_LOG);
	struct gt_emit e;
	if (!gt_emit_begin(&e))
		return;
	size_t clen;
	log_write(&e, task, name_id(&e, cat, &clen, false), msg, &stack);
}

/* The _lit calls (sites: above).  A task begin with its stack is out of
 * line, as region begin's: the common call carries no capture buffer. */
static __attribute__((noinline)) uint64_t task_begin_site_stack(uint64_t parent, gotrace_site *s)
{
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_GOROUTINE);
	struct gt_emit e;
	if (!emit_begin(&e))
		return 0;
	return task_begin(&e, parent, site_id(&e, s), &stack);
}

uint64_t gotrace_task_begin_site_(uint64_t parent, gotrace_site *s)
{
	if (unlikely(gt_evstack_wanted(GOTRACE_STACK_GOROUTINE)))
		return task_begin_site_stack(parent, s);
	struct gt_emit e;
	if (!emit_begin(&e))
		return 0;
	return task_begin(&e, parent, site_id(&e, s), NULL);
}

static __attribute__((noinline)) void log_site_stack(uint64_t task, gotrace_site *cat, const char *msg)
{
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_LOG);
	struct gt_emit e;
	if (!emit_begin(&e))
		return;
	log_write(&e, task, site_id(&e, cat), msg, &stack);
}

/* The general path of a _lit log (lit_enter). */
static __attribute__((noinline)) void log_site_general(uint64_t task, gotrace_site *cat, const char *msg)
{
	if (unlikely(gt_evstack_wanted(GOTRACE_STACK_LOG))) { /* as region begin */
		log_site_stack(task, cat, msg);
		return;
	}
	struct gt_emit e;
	if (!emit_begin(&e))
		return;
	log_write(&e, task, site_id(&e, cat), msg, NULL);
}

/* The fast path's case (lit_enter): the category's id cached, the message
 * one of msg_inline's. */
void gotrace_log_site_(uint64_t task, gotrace_site *cat, const char *msg)
{
	struct gt_emit e;
	if (unlikely(!lit_enter(&e, GOTRACE_STACK_LOG, 1 + 5 * GT_UVARINT_MAX)))
		return log_site_general(task, cat, msg);
	uint64_t cid = lit_site_id(&e, cat), mid;
	if (unlikely(cid == UINT64_MAX || !msg_inline(&e, msg, &mid))) {
		gt_emit_end(&e);
		return log_site_general(task, cat, msg);
	}
	put_log(&e, e.tb->ev->data + e.tb->ev->len, task, cid, mid, 0); /* log_write's event */
	gt_emit_end(&e);
}
