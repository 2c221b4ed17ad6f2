/*
 * sched.c: scheduling events of C threads (issue 5): syscall brackets,
 * blocking and unblocking (the pthread wrappers built on them are in
 * syncwrap.c).
 * May call: event.c, goroutine.c, src/stacks, src/core.
 *
 * Model (shared docs §7.5): thread = M + its own P + its own G.
 *
 * Syscalls.  gotrace_syscall_begin writes GoSyscallBegin with the P's next
 * sequence number; the thread is then SYSCALL and publishes IN|bg in its
 * syscall word (core.h).  At the start of every generation h the
 * advancer takes the P of each thread still inside a call begun before h,
 * the way the Go runtime does at a generation advance (Strategy 2 of §7.5):
 * a batch of h under the advancer's own M id (the flusher thread: a bare M
 * with no P and no G) holds "ProcStatus p SyscallAbandoned; ProcSteal p 1
 * m=T".  Who owns the P is decided by one CAS on the syscall word (advancer
 * IN -> STOLEN|h, thread IN -> NONE).  gotrace_syscall_end then writes
 * GoSyscallEnd (P still ours; preceded by "ProcStatus p Syscall; GoStatus g
 * T Syscall" if the generation changed meanwhile), or, if the P was taken,
 * "GoStatus g T Syscall; GoSyscallEndBlocked; [ProcStatus p Idle;]
 * ProcStart p; GoStart g": the thread reacquires its own P.  Each
 * generation stays self-contained.
 *
 * Blocking.  gotrace_block writes GoBlock: the thread's G is Waiting, the M
 * keeps its P (Running, no G).  Another thread's gotrace_unblock writes
 * GoUnblock (stating the G "GoStatus g ^0 Waiting" first if it has no
 * status in that generation, claimed by CAS on own.traced[gen % 3] as the
 * runtime does with statusTraced).  The blocked thread resumes at
 * gotrace_block_end or at its next traced call: GoStart g (after unblocking
 * itself if nobody did).
 *
 * Explicit goroutines (goroutine.c).  While one runs on the thread (t->cur,
 * state XG), the calls above act on it instead of the thread's own G, which
 * is parked (Waiting or Runnable) and stated by whoever states the thread
 * (gt_parked_own_status).  Sequence numbers of a G are taken with
 * gt_gseq_next: a status claimed by a thread that does not own the G (the
 * parked own G stated by its thread, a goroutine stated by the advancer)
 * needs no write to seq.
 */
#include "emit.h"
#include "../core/registry.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EV_MAX (2 + 4 * GT_UVARINT_MAX)

static inline uint8_t *ev2(struct gt_emit *e, uint8_t *p, uint8_t type, uint64_t a, uint64_t b)
{
	p = gt_ev_start(e, p, type);
	p = gt_put_uvarint(p, a);
	return gt_put_uvarint(p, b);
}

static inline struct gt_thread *self_current(void)
{
	struct gt_thread *t = gt_tls_self;
	if (t && gt_tls_session == __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED))
		return t;
	return NULL;
}

/* Claim the status of G in generation g (true: the caller must write it). */
bool gt_claim_status(struct gt_gor *G, uint64_t g)
{
	uint64_t old = __atomic_load_n(&G->traced[g % 3], __ATOMIC_RELAXED);
	while (old != g)
		if (__atomic_compare_exchange_n(&G->traced[g % 3], &old, g, false, __ATOMIC_RELAXED,
		                                __ATOMIC_RELAXED))
			return true;
	return false;
}

/* "GoStatus G ^0 st" in e->gen if the caller claims G's status there (it
 * then restarts G's count: the status implies sequence 0). */
uint8_t *gt_go_status_claimed(struct gt_emit *e, uint8_t *p, struct gt_gor *G, uint64_t gid,
                              uint64_t st)
{
	if (!gt_claim_status(G, e->gen))
		return p;
	p = gt_ev_start(e, p, GT_EV_GO_STATUS);
	p = gt_put_uvarint(p, gid);
	p = gt_put_uvarint(p, GT_NO_ID);
	p = gt_put_uvarint(p, st);
	G->seq_gen = e->gen;
	G->seq = 0;
	return p;
}

/* The thread's status in e->gen for its P only (its G is stated apart),
 * with the P in pstatus. */
static uint8_t *p_status(struct gt_emit *e, uint8_t *p, uint64_t pstatus)
{
	struct gt_thread *t = e->t;
	p = ev2(e, p, GT_EV_PROC_STATUS, t->p, pstatus);
	t->pseq_gen = e->gen;
	t->pseq = 0;
	__atomic_store_n(&t->status_gen, e->gen, __ATOMIC_RELAXED);
	e->tb->stated = true;
	return p;
}

/* GoStatusStack of the thread's current G (own, or the explicit cur) on
 * this thread.  Only this thread states a G it runs. */
static uint8_t *own_g_status(struct gt_emit *e, uint8_t *p, uint64_t gstatus)
{
	struct gt_thread *t = e->t;
	struct gt_gor *G = gt_cur_g(t);
	p = gt_ev_start(e, p, GT_EV_GO_STATUS_STACK);
	p = gt_put_uvarint(p, __atomic_load_n(&G->id, __ATOMIC_RELAXED));
	p = gt_put_uvarint(p, t->tid);
	p = gt_put_uvarint(p, gstatus);
	p = gt_put_uvarint(p, gt_g_stack(t, G));
	G->seq_gen = e->gen;
	G->seq = 0;
	__atomic_store_n(&G->traced[e->gen % 3], e->gen, __ATOMIC_RELAXED);
	if (t->cur)
		p = gt_parked_own_status(e, p);
	return p;
}

uint8_t *gt_parked_own_status(struct gt_emit *e, uint8_t *p)
{
	struct gt_thread *t = e->t;
	if (!gt_claim_status(&t->own, e->gen))
		return p;
	/* The own G waits while explicit goroutines use the thread; a waker
	 * may have made it Runnable (it then owns nothing any more).  A waker
	 * in an earlier generation (generations overlap in time) wrote its
	 * GoUnblock there, so the G is Runnable as e->gen starts; one in
	 * e->gen or later writes its GoUnblock after this status.  A WAITING
	 * word gets e->gen (core.h): a waker still in an older generation then
	 * fails its CAS and renews, instead of unblocking the G before this
	 * status. */
	uint64_t w = __atomic_load_n(&t->own.word, __ATOMIC_ACQUIRE);
	while (GT_GW_KIND(w) == GT_GW_WAITING && GT_GW_GEN(w) < e->gen &&
	       !__atomic_compare_exchange_n(&t->own.word, &w, GT_GW(GT_GW_WAITING, e->gen), false,
	                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
	bool runnable = (GT_GW_KIND(w) == GT_GW_RUNNABLE || GT_GW_KIND(w) == GT_GW_UNBLOCKING) &&
	                GT_GW_GEN(w) < e->gen;
	p = gt_ev_start(e, p, GT_EV_GO_STATUS_STACK);
	p = gt_put_uvarint(p, t->goid);
	p = gt_put_uvarint(p, GT_NO_ID);
	p = gt_put_uvarint(p, runnable ? GT_G_RUNNABLE : GT_G_WAITING);
	return gt_put_uvarint(p, gt_entry_stack_id(t));
}

/* ---------------------------------------------------------------- syscalls */

void gotrace_syscall_begin_(void)
{
	struct gt_thread *t = self_current();
	if (t && t->state == GT_TS_SYSCALL) {
		t->sys_depth++; /* nested: only the outermost bracket is traced */
		return;
	}
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_SYSCALL);
	struct gt_emit e;
	if (!gt_emit_begin(&e))
		return;
	t = e.t;
	uint64_t stk = gt_evstack_id(&e, &stack);
	uint8_t *p = gt_ev_reserve(&e, EV_MAX, false);
	if (!p) {
		gt_count_drop(&e);
		gt_emit_end(&e);
		return;
	}
	p = ev2(&e, p, GT_EV_GO_SYSCALL_BEGIN, ++t->pseq, stk);
	gt_ev_commit(&e, p);
	t->sys_word = (e.gen << 2) | GT_SYS_IN;
	__atomic_store_n(&t->sys, t->sys_word, __ATOMIC_RELEASE);
	__atomic_store_n(&t->state, GT_TS_SYSCALL, __ATOMIC_RELAXED);
	t->sys_depth = 1;
	gt_emit_end(&e);
}

/* End the thread's syscall in e->gen (state SYSCALL -> RUNNING). */
bool gt_finish_syscall(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	uint64_t g = e->gen, w = t->sys_word;
	bool mine = __atomic_compare_exchange_n(&t->sys, &w, GT_SYS_NONE, false, __ATOMIC_ACQ_REL,
	                                        __ATOMIC_ACQUIRE);
	int back = t->cur ? GT_TS_XG : GT_TS_RUNNING;
	uint8_t *p = gt_ev_reserve(e, 7 * EV_MAX, true);
	if (!p) {
		/* Out of memory: the trace will miss the end of this call. */
		__atomic_store_n(&t->sys, GT_SYS_NONE, __ATOMIC_RELAXED);
		__atomic_store_n(&t->state, back, __ATOMIC_RELAXED);
		gt_count_drop(e);
		return false;
	}
	if (mine) {
		if (GT_SYS_GEN(w) != g) {
			/* Began in an earlier generation and nobody took the P:
			 * both are still in Syscall (Strategy 1 of §7.5). */
			p = p_status(e, p, GT_P_SYSCALL);
			p = own_g_status(e, p, GT_G_SYSCALL);
		}
		p = gt_ev_start(e, p, GT_EV_GO_SYSCALL_END);
	} else {
		/* The advancer took the P at the start of generation h <= g:
		 * the G is still in Syscall on this thread; wait for the steal
		 * (GoSyscallEndBlocked), reacquire the P, run the G again. */
		uint64_t h = GT_SYS_GEN(w);
		p = own_g_status(e, p, GT_G_SYSCALL);
		p = gt_ev_start(e, p, GT_EV_GO_SYSCALL_END_BLOCKED);
		if (h != g) {
			p = p_status(e, p, GT_P_IDLE);
		} else {
			t->pseq_gen = g;
			t->pseq = 1; /* the steal's */
			__atomic_store_n(&t->status_gen, g, __ATOMIC_RELAXED);
			e->tb->stated = true;
		}
		p = ev2(e, p, GT_EV_PROC_START, t->p, ++t->pseq);
		struct gt_gor *G = gt_cur_g(t);
		p = ev2(e, p, GT_EV_GO_START, __atomic_load_n(&G->id, __ATOMIC_RELAXED),
		        gt_gseq_next(G, g));
		__atomic_store_n(&t->sys, GT_SYS_NONE, __ATOMIC_RELAXED);
	}
	gt_ev_commit(e, p);
	__atomic_store_n(&t->state, back, __ATOMIC_RELAXED);
	return true;
}

void gotrace_syscall_end_(void)
{
	struct gt_thread *t = self_current();
	if (!t || t->state != GT_TS_SYSCALL || --t->sys_depth > 0)
		return;
	struct gt_emit e;
	if (!gt_emit_enter(&e))
		return; /* tracing stopped: the record is reset at the next start */
	gt_finish_syscall(&e);
	gt_emit_end(&e);
}

/* At the start of generation h: steal the P of every thread sitting in a
 * syscall begun before h.  The batch goes under the flusher's thread id. */
void gt_steal_syscall_ps(uint64_t h, uint64_t now)
{
	uint64_t m = (uint64_t)syscall(SYS_gettid);
	struct gt_chunk *c = NULL;
	struct gt_thread *t;
	rcu_read_lock();
	gt_reg_for_each(t, &gt_session.threads) {
		if (!gt_thread_current(t))
			continue;
		uint64_t w = __atomic_load_n(&t->sys, __ATOMIC_ACQUIRE);
		if (GT_SYS_KIND(w) != GT_SYS_IN || GT_SYS_GEN(w) >= h)
			continue;
		if (c && c->len + 2 * EV_MAX > c->cap) {
			gt_queue_push(c);
			c = NULL;
		}
		if (!c) {
			c = gt_chunk_new(4096, 0);
			if (!c)
				break; /* the thread keeps its P (Strategy 1) */
			gt_chunk_open(c, h, m, now);
		}
		if (!__atomic_compare_exchange_n(&t->sys, &w, (h << 2) | GT_SYS_STOLEN, false,
		                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue; /* it returned first */
		uint8_t *p = c->data + c->len;
		*p++ = GT_EV_PROC_STATUS;
		*p++ = 0;
		p = gt_put_uvarint(p, t->p);
		p = gt_put_uvarint(p, GT_P_ABANDONED);
		*p++ = GT_EV_PROC_STEAL;
		*p++ = 0;
		p = gt_put_uvarint(p, t->p);
		p = gt_put_uvarint(p, 1);
		p = gt_put_uvarint(p, t->tid);
		c->len = (uint32_t)(p - c->data);
	}
	rcu_read_unlock();
	if (c)
		gt_queue_push(c);
}

/* ------------------------------------------------------- silent statuses */

static uint8_t *raw_ev(uint8_t *p, uint8_t type)
{
	*p++ = type;
	*p++ = 0; /* dt: the batch's base time */
	return p;
}

static uint8_t *raw_gstatus(uint8_t *p, struct gt_thread *t, struct gt_gor *G, uint64_t m,
                            uint64_t st)
{
	p = raw_ev(p, GT_EV_GO_STATUS_STACK);
	p = gt_put_uvarint(p, __atomic_load_n(&G->id, __ATOMIC_RELAXED));
	p = gt_put_uvarint(p, m);
	p = gt_put_uvarint(p, st);
	return gt_put_uvarint(p, gt_g_stack(t, G));
}

void gt_silent_status(struct gt_thread *t, uint64_t g, int state, uint64_t sys, uint64_t gword,
                      uint8_t **own, uint8_t **anon)
{
	struct gt_gor *cur = state == GT_TS_RUNNING ? NULL : __atomic_load_n(&t->cur, __ATOMIC_ACQUIRE);
	uint64_t cword = cur ? __atomic_load_n(&cur->word, __ATOMIC_ACQUIRE) : 0;
	gt_silent_status_cur(t, g, state, sys, gword, cur, cword, own, anon);
}

void gt_silent_status_cur(struct gt_thread *t, uint64_t g, int state, uint64_t sys,
                          uint64_t gword, struct gt_gor *cur, uint64_t cword, uint8_t **own,
                          uint8_t **anon)
{
	uint8_t *o = *own, *a = *anon;
	if (state == GT_TS_RUNNING)
		cur = NULL;
	/* G: the goroutine the thread's state is about (own, or cur). */
	struct gt_gor *G = cur ? cur : &t->own;
	uint64_t w = cur ? cword : gword;
	bool g_done = __atomic_load_n(&G->traced[g % 3], __ATOMIC_RELAXED) == g;
	uint64_t pst = GT_P_RUNNING, gst = GT_G_RUNNING;
	bool in_own = true;
	switch (state) {
	case GT_TS_RUNNING:
	case GT_TS_XG:
		break;
	case GT_TS_SYSCALL:
		gst = GT_G_SYSCALL;
		if (GT_SYS_KIND(sys) == GT_SYS_STOLEN) {
			/* P taken: stated Abandoned by the steal in its
			 * generation, Idle in later ones; the G sits in a
			 * syscall on thread T (m=^0 batch, §7.2). */
			if (GT_SYS_GEN(sys) != g) {
				a = raw_ev(a, GT_EV_PROC_STATUS);
				a = gt_put_uvarint(a, t->p);
				a = gt_put_uvarint(a, GT_P_IDLE);
			}
			in_own = false;
		} else {
			pst = GT_P_SYSCALL;
		}
		break;
	case GT_TS_BLOCKED:
		/* The M holds its P, Running, with no G; the G waits (or was
		 * woken and waits to run), stated like any waiting G. */
		gst = GT_GW_KIND(w) == GT_GW_RUNNABLE ? GT_G_RUNNABLE : GT_G_WAITING;
		in_own = false;
		break;
	default:
		return;
	}
	if (in_own || state == GT_TS_BLOCKED) {
		o = raw_ev(o, GT_EV_PROC_STATUS);
		o = gt_put_uvarint(o, t->p);
		o = gt_put_uvarint(o, pst);
	}
	if (!g_done) {
		if (in_own)
			o = raw_gstatus(o, t, G, t->tid, gst);
		else
			a = raw_gstatus(a, t, G, gst == GT_G_SYSCALL ? t->tid : GT_NO_ID, gst);
		__atomic_store_n(&G->traced[g % 3], g, __ATOMIC_RELAXED);
	}
	if (cur && __atomic_load_n(&t->own.traced[g % 3], __ATOMIC_RELAXED) != g) {
		/* The own G, parked while explicit goroutines use the thread. */
		a = raw_gstatus(a, t, &t->own, GT_NO_ID,
		                GT_GW_KIND(gword) == GT_GW_RUNNABLE ? GT_G_RUNNABLE : GT_G_WAITING);
		gt_own_traced(t, g);
	}
	t->adv_status_gen = g;
	*own = o;
	*anon = a;
}

/* ---------------------------------------------------------------- blocking */

gotrace_goroutine_t gotrace_self(void)
{
	gotrace_goroutine_t h = { NULL, 0 };
	struct gt_thread *t = self_current();
	if (!t)
		t = gt_thread_self_slow(); /* registers; writes nothing */
	if (t) {
		h.rec_ = &t->own;
		h.id_ = t->goid;
	}
	return h;
}

void gotrace_block_(const char *reason)
{
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	gt_evstack_capture(&stack, GOTRACE_STACK_BLOCK);
	struct gt_emit e;
	if (!gt_emit_begin(&e))
		return;
	struct gt_thread *t = e.t;
	size_t len = gt_wire_strlen(reason);
	uint64_t rid = gt_intern(&e, reason, len, false);
	uint64_t stk = gt_evstack_id(&e, &stack);
	uint8_t *p = (rid != 0 || len == 0) ? gt_ev_reserve(&e, EV_MAX, false) : NULL;
	if (!p) {
		gt_count_drop(&e);
		gt_emit_end(&e);
		return;
	}
	p = ev2(&e, p, GT_EV_GO_BLOCK, rid, stk);
	gt_ev_commit(&e, p);
	/* Inside an explicit goroutine (XG) it is the one that blocks; it
	 * stays this thread's cur and resumes here. */
	__atomic_store_n(&t->state, GT_TS_BLOCKED, __ATOMIC_RELAXED);
	__atomic_store_n(&gt_cur_g(t)->word, GT_GW(GT_GW_WAITING, e.gen), __ATOMIC_RELEASE);
	gt_emit_end(&e);
}

bool gt_resume_locked(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	struct gt_gor *G = gt_cur_g(t); /* own, or an explicit goroutine */
	/* Take the G back first (word rule, core.h): a word from a newer
	 * generation (a waker there) renews the section, so that the GoStart
	 * follows the GoUnblock in time order. */
	GT_TEST_POINT(GT_TP_RESUME);
	uint64_t w;
	for (;;) {
		w = __atomic_load_n(&G->word, __ATOMIC_ACQUIRE);
		if (GT_GW_KIND(w) == GT_GW_UNBLOCKING) {
			gt_arch_relax(); /* a waker is writing its GoUnblock */
			continue;
		}
		if (GT_GW_GEN(w) > e->gen) {
			if (!gt_emit_renew(e))
				return false;
			continue;
		}
		if (__atomic_compare_exchange_n(&G->word, &w, GT_GW_RUNNING, false, __ATOMIC_ACQ_REL,
		                                __ATOMIC_ACQUIRE))
			break;
	}
	uint64_t gid = __atomic_load_n(&G->id, __ATOMIC_RELAXED);
	uint64_t g = e->gen;
	uint8_t *p = gt_ev_reserve(e, 5 * EV_MAX, true);
	if (!p) {
		/* Stays blocked; retried at the next call.  Nobody acted on
		 * the G meanwhile (RUNNING keeps wakers off it). */
		__atomic_store_n(&G->word, w, __ATOMIC_RELEASE);
		return false;
	}
	if (t->status_gen != g)
		p = p_status(e, p, GT_P_RUNNING); /* the M kept its P */
	if (t->cur)
		p = gt_parked_own_status(e, p);
	if (GT_GW_KIND(w) == GT_GW_WAITING) {
		/* Nobody woke it (or the waker could not be told): it wakes
		 * itself, on its own M, with its own stack as the waker's if
		 * gotrace_block_end_ took one.  Go 1.23's go tool trace closes
		 * a -pprof=sync interval only at a transition out of Waiting
		 * that has a stack: without it, the wait of a wrapped mutex or
		 * condition variable is not in that profile at all. */
		uint64_t stk = t->wake_stack ? gt_evstack_id(e, t->wake_stack) : 0;
		p = gt_go_status_claimed(e, p, G, gid, GT_G_WAITING);
		p = gt_ev_start(e, p, GT_EV_GO_UNBLOCK);
		p = gt_put_uvarint(p, gid);
		p = gt_put_uvarint(p, gt_gseq_next(G, g));
		p = gt_put_uvarint(p, stk);
	} else {
		/* A waker won (in g or before). */
		p = gt_go_status_claimed(e, p, G, gid, GT_G_RUNNABLE);
	}
	p = ev2(e, p, GT_EV_GO_START, gid, gt_gseq_next(G, g));
	gt_ev_commit(e, p);
	__atomic_store_n(&t->state, t->cur ? GT_TS_XG : GT_TS_RUNNING, __ATOMIC_RELAXED);
	return gt_emit_prologue(e);
}

void gotrace_block_end_(void)
{
	struct gt_thread *t = self_current();
	if (!t || t->state != GT_TS_BLOCKED)
		return;
	/* The stack only for a self-wake: if a waker already took the G
	 * (gotrace_unblock, the named locks' unlock), its GoUnblock is
	 * written and this resume writes none.  Tested on the thread's own
	 * G only, whose record lives as long as the thread (an explicit
	 * goroutine's is read inside the critical section only); a waker
	 * coming after this test only makes the capture useless. */
	struct gt_evpcs stack; /* before the critical section: stacks.h */
	stack.n = 0;
	if (t->cur || GT_GW_KIND(__atomic_load_n(&t->own.word, __ATOMIC_ACQUIRE)) == GT_GW_WAITING)
		gt_evstack_capture(&stack, GOTRACE_STACK_BLOCK);
	t->wake_stack = &stack;
	struct gt_emit e;
	if (gt_emit_begin(&e)) /* resumes (the BLOCKED slow path) */
		gt_emit_end(&e);
	t->wake_stack = NULL;
}

/* The waker's events for G, whose word it set to UNBLOCKING in e->gen
 * (room for 2 * EV_MAX at p): G's status if nobody wrote it in e->gen,
 * GoUnblock with stack stk, then the word RUNNABLE (release, after the
 * events). */
static void write_unblock(struct gt_emit *e, uint8_t *p, struct gt_gor *G, uint64_t gid, uint64_t stk)
{
	p = gt_go_status_claimed(e, p, G, gid, GT_G_WAITING);
	p = gt_ev_start(e, p, GT_EV_GO_UNBLOCK);
	p = gt_put_uvarint(p, gid);
	p = gt_put_uvarint(p, gt_gseq_next(G, e->gen));
	p = gt_put_uvarint(p, stk);
	gt_ev_commit(e, p);
	__atomic_store_n(&G->word, GT_GW(GT_GW_RUNNABLE, e->gen), __ATOMIC_RELEASE);
}

/* The waker's stack is captured before the critical section (stacks.h),
 * even when the G turns out not to be blocked: its word may be read only
 * inside one.  The retry in a newer generation reuses it. */
static int unblock(gotrace_goroutine_t h, const struct gt_evpcs *stack)
{
	struct gt_gor *G = h.rec_;
	struct gt_emit e;
	if (!gt_emit_begin(&e))
		return 0;
	int done = 0;
	GT_TEST_POINT(GT_TP_UNBLOCK);
	uint64_t w = __atomic_load_n(&G->word, __ATOMIC_ACQUIRE);
	if (G == &e.t->own || G == e.t->cur || __atomic_load_n(&G->id, __ATOMIC_ACQUIRE) != h.id_ ||
	    GT_GW_KIND(w) != GT_GW_WAITING)
		goto out; /* not (or no longer) blocked: nothing to record */
	/* Room first: once UNBLOCKING|gen is seen, a thread stating the G in
	 * a later generation states it Runnable, so the GoUnblock must be
	 * written (the word can never go back to WAITING). */
	uint64_t stk = gt_evstack_id(&e, stack);
	uint8_t *p = gt_ev_reserve(&e, 2 * EV_MAX, true);
	if (!p) {
		gt_count_drop(&e); /* the G will wake itself */
		goto out;
	}
	for (;;) {
		if (GT_GW_KIND(w) != GT_GW_WAITING)
			goto out; /* another waker, or the owner, came first */
		if (GT_GW_GEN(w) > e.gen)
			break; /* blocked (or stated Waiting) in a newer generation */
		if (__atomic_compare_exchange_n(&G->word, &w, GT_GW(GT_GW_UNBLOCKING, e.gen), false,
		                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			goto won;
	}
	/* Word rule (core.h): this section is older than the G's last
	 * event.  Enter the current generation and try again there. */
	gt_emit_end(&e);
	return unblock(h, stack);
won:
	write_unblock(&e, p, G, h.id_, stk);
	done = 1;
out:
	gt_emit_end(&e);
	return done;
}

/* gotrace_unblock for a releaser that may be a signal handler (sem_post,
 * see gt_sync_wake_as): AS-safe because it does only what needs no lock
 * and no allocation -- on a thread registered in this session, running
 * its own goroutine, outside its critical section (a handler that
 * interrupted one leaves), whose statuses and owed events are already in
 * the current generation (the prologue could intern, allocate, unwind),
 * with room in its open batch (no new chunk); no stack.  Else nothing is
 * written and the waiter wakes itself. */
int gt_unblock_as(struct gt_thread *t, gotrace_goroutine_t h)
{
	struct gt_gor *G = h.rec_;
	if (!G || h.id_ == 0 || gt_seq_held(&t->seq))
		return 0;
	gt_seq_enter(&t->seq);
	int done = 0;
	uint64_t gen = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE);
	if (gen == 0 || t->state != GT_TS_RUNNING || t->status_gen != gen || t->owed_n != 0 ||
	    __atomic_load_n(&t->name_dirty, __ATOMIC_RELAXED) || t->drop_note != 0 ||
	    t->tb[gen & 1].gen != gen)
		goto out;
	struct gt_emit e = { .t = t, .gen = gen, .tb = &t->tb[gen & 1], .now = gt_now() };
	struct gt_chunk *c = e.tb->ev;
	if (!c || c->len == 0 || c->gen != gen || c->len + 2 * EV_MAX > c->limit)
		goto out; /* (len 0: not opened, no batch header yet) */
	uint8_t *p = c->data + c->len;
	uint64_t w = __atomic_load_n(&G->word, __ATOMIC_ACQUIRE);
	if (G == &t->own || __atomic_load_n(&G->id, __ATOMIC_ACQUIRE) != h.id_ ||
	    GT_GW_KIND(w) != GT_GW_WAITING || GT_GW_GEN(w) > gen ||
	    !__atomic_compare_exchange_n(&G->word, &w, GT_GW(GT_GW_UNBLOCKING, gen), false,
	                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		goto out; /* not blocked, woken already, or of a newer generation */
	write_unblock(&e, p, G, h.id_, 0);
	done = 1;
out:
	gt_seq_leave(&t->seq);
	return done;
}

int gotrace_unblock_(gotrace_goroutine_t h)
{
	if (!h.rec_ || h.id_ == 0)
		return 0;
	struct gt_evpcs stack;
	gt_evstack_capture(&stack, GOTRACE_STACK_BLOCK);
	return unblock(h, &stack);
}

bool gt_sched_settle(struct gt_emit *e)
{
	struct gt_thread *t = e->t;
	/* At most: syscall of an explicit goroutine -> XG -> BLOCKED (own
	 * parked) -> RUNNING. */
	for (int i = 0; i < 4; i++) {
		bool ok = true;
		switch (t->state) {
		case GT_TS_SYSCALL: ok = gt_finish_syscall(e); break;
		case GT_TS_BLOCKED: ok = gt_resume_locked(e); break;
		case GT_TS_XG: ok = gt_xg_settle(e); break;
		default: return true;
		}
		if (!ok)
			return false;
	}
	return t->state == GT_TS_RUNNING;
}
