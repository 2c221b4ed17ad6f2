/*
 * goroutine.c: explicit goroutines for user-level schedulers (issue 5):
 * create / start / stop / block / unblock / destroy of a goroutine that is
 * not a thread, so that coroutines, fibers and event-loop tasks get Go's
 * goroutine analysis.
 * May call: event.c, sched.c, src/stacks, src/core.
 *
 * Model (shared docs §5.3, §7.5).  A thread T is an M holding its own P and
 * running its own G0.  gotrace_go_start(X) on T takes the running G off the
 * M, as Go's scheduler does: G0 blocks (GoBlock "scheduler": the thread's
 * own goroutine waits while the thread runs explicit goroutines), or an
 * explicit goroutine running there stops (GoStop); then GoStart X (after
 * "GoStatus X ^0 Runnable/Waiting" if X has no status in this generation,
 * GoUnblock X if it was blocked and nobody woke it, GoCreate X if its
 * creation could not be written).  T's state is then XG with t->cur = X.
 * gotrace_go_stop / _block write GoStop / GoBlock and leave the M with its P
 * and no G (state BLOCKED, cur NULL: G0 parked), exactly Go's M running the
 * scheduler between goroutines, so a scheduler loop costs one event per
 * start and one per stop.  G0 resumes (GoUnblock G0; GoStart G0, sched.c)
 * at T's next traced call made outside explicit goroutines.  Destroying a
 * goroutine that is not running runs it to its end on the calling thread
 * (GoStart X; GoDestroy X), between a GoStop and a GoStart of the G that
 * was running there, as a Go goroutine must run to exit.
 *
 * Syscall brackets and gotrace_block inside X act on X (sched.c uses
 * gt_cur_g).  Regions are per goroutine in Go: while X runs, T's region
 * stack holds G0's regions below xg_base and X's above; X's open regions
 * leave with X (rsave) and come back on whichever thread runs it next.
 *
 * Statuses.  Every generation states every live goroutine:
 *   - T states what it runs at its first event of a generation (prologue:
 *     gt_xg_write_status: P Running, X Running, G0 parked), or the advancer
 *     states T if T wrote nothing (gt_silent_status_cur, from a snapshot of
 *     T's state and cur taken before the generation bump);
 *   - a goroutine off every thread (Runnable, Waiting) is stated by the
 *     first thread that touches it in the generation (starter, waker,
 *     destroyer: claim on g.traced[gen % 3], as the runtime's statusTraced),
 *     or else by the advancer's sweep (gt_xg_advance) from the snapshot
 *     (gt_xg_snapshot) taken before the bump: any change of the goroutine in
 *     g is made by a thread that claimed its status in g first, so an
 *     unclaimed goroutine kept its snapshot state through all of g.
 *
 * Concurrency, per field of struct gt_xg (and its struct gt_gor g):
 *   g.word   the ownership word of sched.c: RUNNING while a thread owns the
 *            goroutine (runs it, or is starting or destroying it); WAITING /
 *            RUNNABLE off threads, stored with release by the owner after
 *            its events are in its buffer, with their generation (the word
 *            rule of core.h: a taker in an older section renews it); taken
 *            by CAS (take()); a waker
 *            CASes WAITING -> UNBLOCKING and stores RUNNABLE (release) after
 *            its GoUnblock, and a taker seeing UNBLOCKING waits for it.
 *   g.seq_gen, g.seq, rsave, rsave_n   the owner's (per word, above).
 *   g.traced claimed by CAS (gt_claim_status) by whoever writes the status;
 *            the running thread and the advancer store it (nobody else
 *            states a running goroutine / a generation every thread left).
 *   bound    tid of the thread whose cur the goroutine is (0: none): set by
 *            the starter, cleared by the owner before its release store of
 *            word, so a taker that acquires WAITING from gotrace_block (which
 *            keeps the goroutine on its thread) sees it and backs off.
 *   born, dead, stk_id, stk_gen   written by the owner inside its critical
 *            section of that generation; read by the advancer after every
 *            thread left the generation (seqlock acquire), atomics.
 *   node     the list of live records: linked by the creator under xg_lock
 *            inside its critical section (so the advance of that generation,
 *            and the final one of the session, see it), with the publishing
 *            stores of registry.h; walked and unlinked by the advancer only
 *            (unlink under xg_lock), so it needs no grace period.
 *   refs     2: the handle (dropped by gotrace_go_destroy) and the list
 *            (dropped by the advancer when it reaps a dead goroutine, or at
 *            the session's final advance); whoever drops the last frees.
 *   snap_*   advancer-private.
 * The hot path (start / stop) touches the thread's own record and buffer,
 * the goroutine's record (one CAS, a few stores) and nothing shared else.
 */
#include "emit.h"
#include "../core/registry.h"
#include "../core/arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_MAX (2 + 4 * GT_UVARINT_MAX)

struct gt_xg {
	struct gt_gor g;           /* handles point here (rec_) */
	struct cds_list_head node; /* xg_list */
	uint64_t session;          /* immutable */
	int refs;
	uint64_t bound;
	uint64_t born, dead;
	uint64_t stk_id, stk_gen;
	struct gt_region *rsave;
	uint32_t rsave_n;
	uint64_t snap_gen, snap_word, snap_born, snap_dead;
	char name[64];
	/* Entry function given at creation (gotrace_go_create_fn), 0: none.
	 * Immutable; symbolised by the advancer into the creation stack's
	 * frame, which otherwise names the goroutine by name. */
	uintptr_t entry_fn;
};

static struct cds_list_head xg_list = CDS_LIST_HEAD_INIT(xg_list);
static pthread_mutex_t xg_lock = PTHREAD_MUTEX_INITIALIZER;

static inline struct gt_xg *xg_of(struct gt_gor *G)
{
	return caa_container_of(G, struct gt_xg, g);
}

static inline uint64_t gid_of(struct gt_gor *G)
{
	return __atomic_load_n(&G->id, __ATOMIC_RELAXED);
}

/* The record behind a handle, if it is an explicit goroutine of this
 * session. */
static struct gt_xg *xg_get(gotrace_goroutine_t h)
{
	struct gt_gor *G = h.rec_;
	if (!G || h.id_ == 0 || !G->xg)
		return NULL;
	struct gt_xg *X = xg_of(G);
	if (X->session != __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED) || gid_of(G) != h.id_)
		return NULL;
	return X;
}

/* The pc of the frame naming X: never a user pc, unique per goroutine. */
static inline uint64_t xg_pc(struct gt_xg *X)
{
	return (1ull << 63) | gid_of(&X->g);
}

/*
 * Allocation on application threads (a record, saved regions) happens under
 * the registry lock, which the fork handlers hold across a fork
 * (session.c): a fork never lands inside one of these malloc or free calls,
 * whose allocator lock the child would otherwise inherit held.  Callers
 * never hold the registry lock already.
 */
static void *xg_malloc(size_t n, bool zero)
{
	pthread_mutex_lock(&gt_session.reg_lock);
	void *p = zero ? calloc(1, n) : malloc(n);
	pthread_mutex_unlock(&gt_session.reg_lock);
	return p;
}

static void xg_mfree(void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&gt_session.reg_lock);
	free(p);
	pthread_mutex_unlock(&gt_session.reg_lock);
}

static void xg_free(struct gt_xg *X)
{
	for (uint32_t i = 0; i < X->rsave_n; i++)
		gt_block_put(X->rsave[i].blk);
	xg_mfree(X->rsave);
	xg_mfree(X);
}

static void xg_unref(struct gt_xg *X)
{
	if (__atomic_sub_fetch(&X->refs, 1, __ATOMIC_ACQ_REL) == 0)
		xg_free(X);
}

static uint8_t *ev2(struct gt_emit *e, uint8_t *p, uint8_t type, uint64_t a, uint64_t b)
{
	p = gt_ev_start(e, p, type);
	p = gt_put_uvarint(p, a);
	return gt_put_uvarint(p, b);
}

/* ------------------------------------------------------------ ownership */

enum { TAKE_NO = 0, TAKE_OK = 1, TAKE_RENEW = 2 };

/* Take X off every thread's hands (state RUNNING in word) from a critical
 * section of generation gen: TAKE_OK if the caller now owns it (*waiting:
 * it was blocked and nobody woke it), TAKE_NO if it is on a thread (or
 * blocked inside one) or dead, TAKE_RENEW if its last event is in a newer
 * generation than gen (word rule, core.h): the caller renews its section
 * and tries again. */
static int take(struct gt_xg *X, bool *waiting, uint64_t gen)
{
	struct gt_gor *G = &X->g;
	for (;;) {
		uint64_t w = __atomic_load_n(&G->word, __ATOMIC_ACQUIRE);
		if (GT_GW_KIND(w) == GT_GW_UNBLOCKING) {
			gt_arch_relax(); /* a waker is writing its GoUnblock */
			continue;
		}
		if (w == GT_GW_RUNNING || __atomic_load_n(&X->bound, __ATOMIC_RELAXED) != 0 ||
		    __atomic_load_n(&X->dead, __ATOMIC_RELAXED) != 0)
			return TAKE_NO;
		if (GT_GW_GEN(w) > gen)
			return TAKE_RENEW;
		if (__atomic_compare_exchange_n(&G->word, &w, GT_GW_RUNNING, false, __ATOMIC_ACQ_REL,
		                                __ATOMIC_ACQUIRE)) {
			*waiting = GT_GW_KIND(w) == GT_GW_WAITING;
			return TAKE_OK;
		}
	}
}

/* Give X back (off the thread) in generation gen: word kind with release,
 * after its events. */
static void release(struct gt_xg *X, unsigned kind, uint64_t gen)
{
	__atomic_store_n(&X->bound, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&X->g.word, GT_GW(kind, gen), __ATOMIC_RELEASE);
}

/* -------------------------------------------------------------- regions */

/* X leaves thread t: its regions (above xg_base) go with it. */
static void regions_out(struct gt_thread *t, struct gt_xg *X)
{
	uint32_t base = t->xg_base, d = t->depth;
	if (d > base) {
		uint32_t n = d - base;
		struct gt_region *r = xg_malloc(n * sizeof *r, false);
		if (r) {
			memcpy(r, &t->regions[base], n * sizeof *r);
			X->rsave = r;
			X->rsave_n = n;
		} else {
			for (uint32_t i = base; i < d; i++)
				gt_block_put(t->regions[i].blk); /* their ends are not written */
		}
		t->depth = base;
	}
	t->xg_base = t->depth;
}

/* X comes onto thread t: above the regions the thread holds. */
static void regions_in(struct gt_thread *t, struct gt_xg *X)
{
	t->xg_base = t->depth;
	for (uint32_t i = 0; i < X->rsave_n; i++) {
		if (t->depth < GT_REGION_DEPTH)
			t->regions[t->depth++] = X->rsave[i];
		else
			gt_block_put(X->rsave[i].blk);
	}
	xg_mfree(X->rsave);
	X->rsave = NULL;
	X->rsave_n = 0;
}

/* X ends on thread t: its regions end unwritten (Go drops them too). */
static void regions_drop(struct gt_thread *t)
{
	while (t->depth > t->xg_base)
		gt_block_put(t->regions[--t->depth].blk);
	t->xg_base = t->depth;
}

/* ------------------------------------------------------------- statuses */

bool gt_xg_write_status(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	struct gt_gor *G = t->cur;
	uint8_t *p = gt_ev_reserve(e, 3 * EV_MAX, true);
	if (!p)
		return false;
	p = ev2(e, p, GT_EV_PROC_STATUS, t->p, GT_P_RUNNING);
	t->pseq_gen = e->gen;
	t->pseq = 0;
	p = gt_ev_start(e, p, GT_EV_GO_STATUS);
	p = gt_put_uvarint(p, gid_of(G));
	p = gt_put_uvarint(p, t->tid);
	p = gt_put_uvarint(p, GT_G_RUNNING);
	G->seq_gen = e->gen;
	G->seq = 0;
	__atomic_store_n(&G->traced[e->gen % 3], e->gen, __ATOMIC_RELAXED);
	p = gt_parked_own_status(e, p);
	gt_ev_commit(e, p);
	__atomic_store_n(&t->status_gen, e->gen, __ATOMIC_RELAXED);
	e->tb->stated = true;
	return true;
}

/* Statuses of a thread in state BLOCKED with no cur (M with its P, no G;
 * G0 parked), if not yet in e->gen. */
static uint8_t *blocked_status(struct gt_emit *e, uint8_t *p)
{
	struct gt_thread *t = e->t;
	if (t->status_gen != e->gen) {
		p = ev2(e, p, GT_EV_PROC_STATUS, t->p, GT_P_RUNNING);
		t->pseq_gen = e->gen;
		t->pseq = 0;
		__atomic_store_n(&t->status_gen, e->gen, __ATOMIC_RELAXED);
		e->tb->stated = true;
	}
	return gt_parked_own_status(e, p);
}

/* Status of X (owned by the caller, off every thread) in e->gen if nobody
 * wrote it yet, then GoUnblock if it was blocked: it is Runnable after. */
static uint8_t *offthread_status(struct gt_emit *e, uint8_t *p, struct gt_xg *X, bool waiting)
{
	struct gt_gor *G = &X->g;
	p = gt_go_status_claimed(e, p, G, gid_of(G), waiting ? GT_G_WAITING : GT_G_RUNNABLE);
	if (waiting) {
		p = gt_ev_start(e, p, GT_EV_GO_UNBLOCK);
		p = gt_put_uvarint(p, gid_of(G));
		p = gt_put_uvarint(p, gt_gseq_next(G, e->gen));
		*p++ = 0;
	}
	return p;
}

/* GoCreate of X (Runnable after), by the calling thread in e->gen. */
static uint8_t *write_create(struct gt_emit *e, uint8_t *p, struct gt_xg *X, uint64_t stk)
{
	uint64_t sid = gt_stack_id_new(e->gen);
	__atomic_store_n(&X->stk_id, sid, __ATOMIC_RELAXED);
	__atomic_store_n(&X->stk_gen, e->gen, __ATOMIC_RELEASE);
	p = gt_ev_start(e, p, GT_EV_GO_CREATE);
	p = gt_put_uvarint(p, gid_of(&X->g));
	p = gt_put_uvarint(p, sid);
	p = gt_put_uvarint(p, stk);
	X->g.seq_gen = e->gen;
	X->g.seq = 0;
	__atomic_store_n(&X->g.traced[e->gen % 3], e->gen, __ATOMIC_RELAXED);
	__atomic_store_n(&X->born, e->gen, __ATOMIC_RELAXED);
	return p;
}

/* Enter the calling thread's critical section ready to switch goroutines:
 * its statuses are in the generation and the state is RUNNING, XG or
 * BLOCKED without cur (whose statuses the caller writes with
 * blocked_status).  false (section left) in a syscall bracket, when tracing
 * is off or the thread's events are being dropped. */
static bool enter_switch(struct gt_emit *e)
{
	if (!gt_emit_enter(e))
		return false;
	struct gt_thread *t = e->t;
	bool ok;
	switch (t->state) {
	case GT_TS_NEW:
	case GT_TS_RUNNING:
	case GT_TS_XG:
		ok = gt_emit_prologue(e);
		break;
	case GT_TS_BLOCKED:
		/* Something blocked inside gotrace_block on this thread resumes
		 * first; a parked G0 stays parked. */
		ok = t->cur ? gt_resume_locked(e) : true;
		break;
	default:
		ok = false; /* SYSCALL: not traced inside a syscall bracket */
		break;
	}
	if (!ok) {
		if (t->state != GT_TS_SYSCALL)
			gt_count_drop(e);
		gt_emit_end(e);
	}
	return ok;
}

/* The state after the events written with switch_out. */
struct prev {
	int kind;          /* 0 none (M idle), 1 own G0 blocked, 2 cur stopped,
	                    * 3 own G0 stopped (restarted later), 4 cur stopped
	                    * (restarted later) */
	struct gt_xg *Y;
};

/* Take the running G off the M (GoBlock G0 "scheduler" / GoStop cur); with
 * keep, the G comes back right after (GoStop, see switch_back). */
static uint8_t *switch_out(struct gt_emit *e, uint8_t *p, uint64_t rid, bool keep,
                           struct prev *pv)
{
	struct gt_thread *t = e->t;
	pv->Y = NULL;
	if (t->state == GT_TS_RUNNING) {
		if (keep) {
			p = ev2(e, p, GT_EV_GO_STOP, 0, 0);
			pv->kind = 3;
		} else {
			p = ev2(e, p, GT_EV_GO_BLOCK, rid, 0);
			pv->kind = 1;
		}
	} else if (t->state == GT_TS_XG) {
		pv->Y = xg_of(t->cur);
		p = ev2(e, p, GT_EV_GO_STOP, 0, 0);
		pv->kind = keep ? 4 : 2;
	} else {
		p = blocked_status(e, p);
		pv->kind = 0;
	}
	return p;
}

/* After commit in generation gen: the side effects of switch_out (kinds
 * 1, 2). */
static void switch_out_done(struct gt_thread *t, struct prev *pv, uint64_t gen)
{
	if (pv->kind == 1) {
		t->xg_base = t->depth;
		__atomic_store_n(&t->own.word, GT_GW(GT_GW_WAITING, gen), __ATOMIC_RELEASE);
	} else if (pv->kind == 2) {
		regions_out(t, pv->Y);
		__atomic_store_n(&t->cur, NULL, __ATOMIC_RELAXED);
		release(pv->Y, GT_GW_RUNNABLE, gen);
	} else if (pv->kind == 0) {
		t->xg_base = t->depth;
	}
}

/* ------------------------------------------------------------------ API */

gotrace_goroutine_t gotrace_go_create(const char *name)
{
	return gotrace_go_create_fn_(NULL, name);
}

gotrace_goroutine_t gotrace_go_create_fn_(const void *fn, const char *name)
{
	gotrace_goroutine_t h = { NULL, 0 };
	if (!gotrace_enabled())
		return h;
	struct gt_xg *X = xg_malloc(sizeof *X, true);
	if (!X)
		return h;
	snprintf(X->name, sizeof X->name, "%s", name && *name ? name : "goroutine");
	X->entry_fn = (uintptr_t)fn;
	X->g.xg = 1;
	X->g.word = GT_GW_RUNNABLE;
	X->refs = 2;
	/* Ids from the threads' goroutine counter: they never collide. */
	pthread_mutex_lock(&gt_session.reg_lock);
	uint64_t id = ++gt_session.next_goid;
	pthread_mutex_unlock(&gt_session.reg_lock);
	X->g.id = id;

	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_GOROUTINE);
	struct gt_emit e;
	if (!gt_emit_enter(&e)) {
		xg_mfree(X);
		return h;
	}
	struct gt_thread *t = e.t;
	X->session = t->session;
	/* The creator: a thread with its P (and its G, if it runs one).  In a
	 * syscall bracket, or if the event is dropped, the creation is written
	 * by the goroutine's first start (pending: born == 0). */
	bool ok = t->state != GT_TS_SYSCALL;
	if (ok && t->state == GT_TS_BLOCKED)
		ok = gt_resume_locked(&e);
	else if (ok)
		ok = gt_emit_prologue(&e);
	if (ok) {
		uint64_t stk = gt_evstack_id(&e, &stack);
		uint8_t *p = gt_ev_reserve(&e, EV_MAX, false);
		if (p) {
			p = write_create(&e, p, X, stk);
			gt_ev_commit(&e, p);
		} else {
			gt_count_drop(&e);
		}
	}
	pthread_mutex_lock(&xg_lock);
	gt_reg_add_tail(&X->node, &xg_list);
	pthread_mutex_unlock(&xg_lock);
	gt_emit_end(&e);
	h.rec_ = &X->g;
	h.id_ = id;
	return h;
}

void gotrace_go_start_(gotrace_goroutine_t h)
{
	struct gt_xg *X = xg_get(h);
	if (!X)
		return;
	struct gt_emit e;
	int renewals = 0;
again:
	if (!enter_switch(&e))
		return;
	struct gt_thread *t = e.t;
	if (t->cur == &X->g && t->state == GT_TS_XG)
		goto out; /* already running here */
	uint64_t rid = 0;
	if (t->state == GT_TS_RUNNING) {
		rid = gt_intern(&e, "scheduler", 9, false);
		if (rid == 0) {
			gt_count_drop(&e);
			goto out;
		}
	}
	uint8_t *p = gt_ev_reserve(&e, 8 * EV_MAX, false);
	if (!p) {
		gt_count_drop(&e);
		goto out;
	}
	bool waiting;
	GT_TEST_POINT(GT_TP_TAKE);
	int took = take(X, &waiting, e.gen);
	if (took == TAKE_RENEW && renewals++ < 8) {
		/* Stopped or blocked in a newer generation than this section:
		 * start it there (one renewal suffices unless generations
		 * pass meanwhile). */
		gt_emit_end(&e);
		goto again;
	}
	if (took != TAKE_OK) {
		if (took == TAKE_RENEW)
			gt_count_drop(&e);
		goto out;
	}
	struct prev pv;
	p = switch_out(&e, p, rid, false, &pv);
	if (__atomic_load_n(&X->born, __ATOMIC_RELAXED) == 0)
		p = write_create(&e, p, X, 0); /* its creator could not write it */
	else
		p = offthread_status(&e, p, X, waiting);
	p = ev2(&e, p, GT_EV_GO_START, gid_of(&X->g), gt_gseq_next(&X->g, e.gen));
	gt_ev_commit(&e, p);
	switch_out_done(t, &pv, e.gen);
	regions_in(t, X);
	__atomic_store_n(&X->bound, t->tid, __ATOMIC_RELAXED);
	__atomic_store_n(&t->cur, &X->g, __ATOMIC_RELAXED);
	__atomic_store_n(&t->state, GT_TS_XG, __ATOMIC_RELAXED);
out:
	gt_emit_end(&e);
}

/* X, running on the calling thread, leaves it: GoStop or GoBlock. */
static bool leave(struct gt_emit *e, struct gt_xg *X, uint8_t type, uint64_t rid, uint64_t stk,
                  unsigned kind, bool must)
{
	struct gt_thread *t = e->t;
	uint8_t *p = gt_ev_reserve(e, EV_MAX, must);
	if (!p)
		return false;
	p = ev2(e, p, type, rid, stk);
	gt_ev_commit(e, p);
	regions_out(t, X);
	__atomic_store_n(&t->cur, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&t->state, GT_TS_BLOCKED, __ATOMIC_RELAXED); /* G0 stays parked */
	release(X, kind, e->gen);
	return true;
}

void gotrace_go_stop_(gotrace_goroutine_t h)
{
	struct gt_xg *X = xg_get(h);
	if (!X)
		return;
	struct gt_emit e;
	if (!gt_emit_begin(&e))
		return;
	if (e.t->state == GT_TS_XG && e.t->cur == &X->g &&
	    !leave(&e, X, GT_EV_GO_STOP, 0, 0, GT_GW_RUNNABLE, false))
		gt_count_drop(&e);
	gt_emit_end(&e);
}

void gotrace_go_block_(gotrace_goroutine_t h, const char *reason)
{
	struct gt_xg *X = xg_get(h);
	if (!X)
		return;
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_BLOCK);
	struct gt_emit e;
	if (!gt_emit_begin(&e))
		return;
	if (e.t->state == GT_TS_XG && e.t->cur == &X->g) {
		size_t len = gt_wire_strlen(reason);
		uint64_t rid = gt_intern(&e, reason, len, false);
		uint64_t stk = gt_evstack_id(&e, &stack);
		if ((rid == 0 && len != 0) ||
		    !leave(&e, X, GT_EV_GO_BLOCK, rid, stk, GT_GW_WAITING, false))
			gt_count_drop(&e);
	}
	gt_emit_end(&e);
}

bool gt_xg_settle(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	return leave(e, xg_of(t->cur), GT_EV_GO_STOP, 0, 0, GT_GW_RUNNABLE, true);
}

/* Destroy X inside the calling thread's critical section: TAKE_OK done,
 * TAKE_NO if X runs on another thread (then it is left alone), TAKE_RENEW
 * if X's last event is in a newer generation than the section (nothing
 * written: renew and call again). */
static int destroy_locked(struct gt_emit *e, struct gt_xg *X)
{
	struct gt_thread *t = e->t;
	uint64_t g = e->gen;
	if (t->state == GT_TS_XG && t->cur == &X->g) {
		uint8_t *p = gt_ev_reserve(e, EV_MAX, true);
		if (p) {
			p = gt_ev_start(e, p, GT_EV_GO_DESTROY);
			gt_ev_commit(e, p);
		}
		regions_drop(t);
		__atomic_store_n(&t->cur, NULL, __ATOMIC_RELAXED);
		__atomic_store_n(&t->state, GT_TS_BLOCKED, __ATOMIC_RELAXED);
		__atomic_store_n(&X->bound, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&X->dead, g, __ATOMIC_RELAXED);
		return TAKE_OK;
	}
	uint8_t *p = gt_ev_reserve(e, 8 * EV_MAX, true);
	bool waiting;
	int took = take(X, &waiting, g);
	if (took != TAKE_OK)
		return took;
	if (p && __atomic_load_n(&X->born, __ATOMIC_RELAXED) != 0) {
		/* Not running: it runs to its end here, between a stop and a
		 * restart of what runs on this thread. */
		struct prev pv;
		p = switch_out(e, p, 0, true, &pv);
		p = offthread_status(e, p, X, waiting);
		p = ev2(e, p, GT_EV_GO_START, gid_of(&X->g), gt_gseq_next(&X->g, g));
		p = gt_ev_start(e, p, GT_EV_GO_DESTROY);
		if (pv.kind == 3)
			p = ev2(e, p, GT_EV_GO_START, t->goid, gt_gseq_next(&t->own, g));
		else if (pv.kind == 4)
			p = ev2(e, p, GT_EV_GO_START, gid_of(&pv.Y->g), gt_gseq_next(&pv.Y->g, g));
		gt_ev_commit(e, p);
		if (pv.kind == 0)
			t->xg_base = t->depth;
	} else if (!p) {
		gt_count_drop(e);
	}
	__atomic_store_n(&X->dead, g, __ATOMIC_RELAXED);
	return TAKE_OK;
}

void gotrace_go_destroy(gotrace_goroutine_t h)
{
	struct gt_gor *G = h.rec_;
	if (!G || h.id_ == 0 || !G->xg)
		return;
	struct gt_xg *X = xg_of(G);
	struct gt_emit e;
	bool done = false;
	if (xg_get(h) && gt_emit_enter(&e)) {
		struct gt_thread *t = e.t;
		if (t->state == GT_TS_SYSCALL && t->cur == &X->g)
			gt_finish_syscall(&e); /* its syscall ends with it */
		for (int renewals = 0;; renewals++) {
			bool ok;
			switch (t->state) {
			case GT_TS_NEW:
			case GT_TS_RUNNING:
			case GT_TS_XG: ok = gt_emit_prologue(&e); break;
			case GT_TS_BLOCKED: ok = t->cur ? gt_resume_locked(&e) : true; break;
			default: ok = false; break; /* a syscall of the thread's own */
			}
			if (ok) {
				int r = destroy_locked(&e, X);
				/* X stopped or blocked in a newer generation than
				 * this section: destroy it there. */
				if (r == TAKE_RENEW && renewals < 8 && gt_emit_renew(&e))
					continue;
				done = r == TAKE_OK;
			} else if (t->cur == &X->g && t->state == GT_TS_XG) {
				/* Out of memory: it disappears from this thread. */
				regions_drop(t);
				__atomic_store_n(&t->cur, NULL, __ATOMIC_RELAXED);
				__atomic_store_n(&t->state, GT_TS_BLOCKED, __ATOMIC_RELAXED);
				__atomic_store_n(&X->bound, 0, __ATOMIC_RELAXED);
				__atomic_store_n(&X->dead, e.gen, __ATOMIC_RELAXED);
				done = true;
			}
			break;
		}
		gt_emit_end(&e);
	}
	if (!done && __atomic_load_n(&X->dead, __ATOMIC_RELAXED) == 0 &&
	    __atomic_load_n(&X->bound, __ATOMIC_RELAXED) == 0 &&
	    __atomic_load_n(&X->g.word, __ATOMIC_ACQUIRE) != GT_GW_RUNNING) {
		/* Tracing off, or a record of an ended session: the list lets
		 * go of it at the session's end (or its next advance). */
		uint64_t g = __atomic_load_n(&gt_session.gen, __ATOMIC_RELAXED);
		__atomic_store_n(&X->dead, g ? g : 1, __ATOMIC_RELAXED);
	}
	xg_unref(X);
}

/* ------------------------------------------------------------ adoption */

/*
 * A thread adopting X (gotrace_thread_adopt): X, created by another thread
 * (GoCreate with that thread's stack), becomes the new thread's own
 * goroutine -- the thread registers with goid = X's id and its first
 * status starts X where a thread normally creates its own goroutine.  Until
 * then X is an explicit goroutine off every thread (Runnable, stated by the
 * sweep each generation); the adoption takes it (word RUNNING, never
 * released) and marks it dead in that generation, so the advancer stops
 * stating it and reaps the record at that generation's advance, when the
 * thread's own statuses have taken over.
 */
int gotrace_thread_adopt(gotrace_goroutine_t h)
{
	struct gt_xg *X = xg_get(h);
	if (!X) {
		gotrace_go_destroy(h); /* stale, or tracing off: forgotten */
		return -GOTRACE_EINVAL;
	}
	if ((gt_tls_self && gt_tls_session == X->session) ||
	    __atomic_load_n(&X->g.word, __ATOMIC_ACQUIRE) == GT_GW_RUNNING ||
	    __atomic_load_n(&X->bound, __ATOMIC_RELAXED) != 0 || __atomic_load_n(&X->dead, __ATOMIC_RELAXED) != 0) {
		gotrace_go_destroy(h); /* run to its end here, if not running */
		return -GOTRACE_EINVAL;
	}
	struct gt_thread *t = gt_thread_register_as(gid_of(&X->g), X->session, X);
	if (!t) {
		gotrace_go_destroy(h);
		return -GOTRACE_ENOMEM;
	}
	/* The handle's reference is now the thread's (t->adopt).  Start X at
	 * once: a thread that makes no traced call still shows as running
	 * from its start.  If the status cannot be written now (no buffer
	 * memory), the thread's next traced call writes it. */
	struct gt_emit e;
	if (gt_emit_enter(&e)) {
		if (e.t->state == GT_TS_NEW && !gt_write_status(&e))
			gt_count_drop(&e);
		gt_emit_end(&e);
	}
	return 0;
}

uint8_t *gt_xg_adopt_events(struct gt_emit *e, uint8_t *p)
{
	struct gt_thread *t = e->t;
	struct gt_xg *X = t->adopt;
	bool waiting = false;
	/* Refused only if the program started or destroyed X meanwhile (the
	 * API forbids it): the caller then creates the goroutine as usual. */
	if (take(X, &waiting, e->gen) != TAKE_OK)
		return NULL;
	if (__atomic_load_n(&X->born, __ATOMIC_RELAXED) == 0)
		p = write_create(e, p, X, 0); /* its creator could not write it */
	else
		p = offthread_status(e, p, X, waiting);
	p = ev2(e, p, GT_EV_GO_START, t->goid, gt_gseq_next(&X->g, e->gen));
	t->own.seq = X->g.seq;
	__atomic_store_n(&X->dead, e->gen, __ATOMIC_RELAXED);
	return p;
}

void gt_xg_adopt_drop(struct gt_thread *t)
{
	struct gt_xg *X = t->adopt;
	if (!X)
		return;
	t->adopt = NULL;
	if (__atomic_load_n(&X->dead, __ATOMIC_RELAXED) == 0) {
		/* Never adopted (the thread ended or its session did first):
		 * Runnable until the list lets go of it, as a goroutine that
		 * never ran. */
		uint64_t g = __atomic_load_n(&gt_session.gen, __ATOMIC_RELAXED);
		__atomic_store_n(&X->dead, g ? g : 1, __ATOMIC_RELAXED);
	}
	xg_unref(X);
}

/* ------------------------------------------------------------- advancer */

void gt_xg_snapshot(uint64_t g)
{
	for (struct cds_list_head *n = gt_reg_next(&xg_list); n != &xg_list; n = gt_reg_next(n)) {
		struct gt_xg *X = caa_container_of(n, struct gt_xg, node);
		X->snap_word = __atomic_load_n(&X->g.word, __ATOMIC_ACQUIRE);
		X->snap_born = __atomic_load_n(&X->born, __ATOMIC_RELAXED);
		X->snap_dead = __atomic_load_n(&X->dead, __ATOMIC_RELAXED);
		X->snap_gen = g;
	}
}

void gt_xg_crash_walk(uint64_t g, bool (*cb)(void *arg, uint64_t id, uint64_t pc, const char *name),
                      void *arg)
{
	uint64_t sess = __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED);
	for (struct cds_list_head *n = gt_reg_next(&xg_list); n != &xg_list; n = gt_reg_next(n)) {
		struct gt_xg *X = caa_container_of(n, struct gt_xg, node);
		if (X->session != sess || __atomic_load_n(&X->stk_gen, __ATOMIC_ACQUIRE) != g)
			continue;
		/* The entry function's name if the flusher has it cached (the
		 * crash path symbolises nothing), else the goroutine's name. */
		struct gt_frame fr;
		const char *nm = X->entry_fn && gt_sym_peek(X->entry_fn, &fr) ? fr.func : X->name;
		if (!cb(arg, __atomic_load_n(&X->stk_id, __ATOMIC_RELAXED), xg_pc(X), nm))
			return;
	}
}

/* Room for need bytes in *cp, a batch of g (m = ^0; first byte kind). */
static uint8_t *batch_room(struct gt_chunk **cp, uint64_t g, uint64_t now, uint8_t kind,
                           uint32_t need)
{
	struct gt_chunk *c = *cp;
	if (c && c->len + need > c->cap) {
		gt_queue_push(c);
		c = *cp = NULL;
	}
	if (!c) {
		c = *cp = gt_chunk_new(16384, 0);
		if (!c)
			return NULL;
		gt_chunk_open(c, g, GT_NO_ID, now);
		if (kind)
			c->data[c->len++] = kind;
	}
	return c->data + c->len;
}

void gt_xg_advance(uint64_t g, uint64_t now, bool final)
{
	uint64_t sess = __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED);
	struct gt_emit se = { .t = &gt_advancer, .gen = g, .tb = &gt_advancer.tb[g & 1], .now = now };
	if (se.tb->gen != g) {
		se.tb->gen = g;
		se.tb->str_next = se.tb->str_end = 0;
	}
	struct gt_chunk *ac = NULL, *sc = NULL;
	uint64_t file = 0;
	struct cds_list_head *n = gt_reg_next(&xg_list), *next;
	for (; n != &xg_list; n = next) {
		next = gt_reg_next(n);
		struct gt_xg *X = caa_container_of(n, struct gt_xg, node);
		uint64_t dead = __atomic_load_n(&X->dead, __ATOMIC_RELAXED);
		if (X->session == sess) {
			/* The stack its GoCreate in g names: one frame, the
			 * goroutine's entry function or name (how `go tool
			 * trace` groups it). */
			if (__atomic_load_n(&X->stk_gen, __ATOMIC_ACQUIRE) == g) {
				uint64_t fid, fileid, line = 0;
				if (X->entry_fn) {
					struct gt_frame fr;
					gt_sym_lookup(X->entry_fn, &fr); /* a function's own address */
					fid = gt_intern(&se, fr.func, strlen(fr.func), true);
					fileid = gt_intern(&se, fr.file, strlen(fr.file), true);
					line = fr.line;
				} else {
					fid = gt_intern(&se, X->name, strlen(X->name), true);
					if (!file)
						file = gt_intern(&se, "[goroutine]", 11, true);
					fileid = file;
				}
				uint8_t *p = batch_room(&sc, g, now, GT_EV_STACKS, 1 + 7 * GT_UVARINT_MAX);
				if (p) {
					*p++ = GT_EV_STACK;
					p = gt_put_uvarint(p, __atomic_load_n(&X->stk_id, __ATOMIC_RELAXED));
					p = gt_put_uvarint(p, 1);
					p = gt_put_uvarint(p, xg_pc(X));
					p = gt_put_uvarint(p, fid);
					p = gt_put_uvarint(p, fileid);
					p = gt_put_uvarint(p, line);
					sc->len = (uint32_t)(p - sc->data);
				}
			}
			/* Off every thread through all of g and stated by nobody:
			 * its snapshot state. */
			if (X->snap_gen == g && X->snap_born != 0 && X->snap_born <= g &&
			    X->snap_dead == 0 && X->snap_word != GT_GW_RUNNING &&
			    __atomic_load_n(&X->g.traced[g % 3], __ATOMIC_RELAXED) != g) {
				uint8_t *p = batch_room(&ac, g, now, 0, EV_MAX);
				if (p) {
					*p++ = GT_EV_GO_STATUS;
					*p++ = 0;
					p = gt_put_uvarint(p, gid_of(&X->g));
					p = gt_put_uvarint(p, GT_NO_ID);
					p = gt_put_uvarint(p, GT_GW_KIND(X->snap_word) == GT_GW_RUNNABLE ? GT_G_RUNNABLE
					                                                   : GT_G_WAITING);
					ac->len = (uint32_t)(p - ac->data);
					__atomic_store_n(&X->g.traced[g % 3], g, __ATOMIC_RELAXED);
				}
			}
		}
		if (final || X->session != sess || (dead != 0 && dead <= g)) {
			pthread_mutex_lock(&xg_lock);
			gt_reg_del(&X->node);
			pthread_mutex_unlock(&xg_lock);
			__atomic_store_n(&X->g.id, 0, __ATOMIC_RELEASE); /* handles go stale */
			xg_unref(X);
		}
	}
	if (ac)
		gt_queue_push(ac);
	if (sc)
		gt_queue_push(sc);
}
