/*
 * advance.c: generation advance (flusher context).
 * May call: the generation sources (sources.h), src/emit, src/stacks,
 * src/core.
 *
 *   1. snapshot each thread's state and status generation (before the bump:
 *      a thread that writes nothing in g afterwards keeps exactly this state
 *      to the end of g);
 *   2. read the clock (end), then bump the generation (gt_seq_sync makes
 *      the store visible to writers);
 *   3. wait until every thread's seqlock shows it left g;
 *   3b. every generation source (sources.h: the CPU sampler) quiesces and
 *      queues its data of g, before the threads' buffers;
 *   4. collect each thread's open chunks of g, state the threads that wrote
 *      nothing in g (a batch under their own M id: they provably cannot
 *      write into g any more), write owed exits;
 *   5. the stack table (its lines waited for a bounded time, symbolize.c),
 *      then the string table and the frequency of g;
 *      every event the advancer writes into g is stamped end (below);
 *   6. empty g's string table; reap exited threads.
 * The caller then writes out the whole queue of g before any byte of g+1.
 */
#include "session.h"
#include "../core/registry.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void wait_left(struct gt_thread *t)
{
	uint64_t snap = gt_seq_read(&t->seq);
	for (int spins = 0; !gt_seq_left(&t->seq, snap); spins++) {
		/* A thread that crashed inside an emit never leaves; the crash
		 * handler stands still, so its committed bytes are final. */
		if (gt_crashing() && (uint64_t)__atomic_load_n(&gt_session.crash_tid, __ATOMIC_RELAXED) == t->tid)
			return;
		if (spins < 100) {
			gt_arch_relax();
		} else if (spins < 200) {
			sched_yield();
		} else {
			struct timespec d = { 0, 50000 };
			nanosleep(&d, NULL);
		}
	}
}

/* A small batch under thread t's M id, pushed to g's queue. */
static struct gt_chunk *mbatch(struct gt_thread *t, uint64_t g, uint64_t ts)
{
	struct gt_chunk *c = gt_chunk_new(256, 0);
	if (c)
		gt_chunk_open(c, g, t->tid, ts);
	return c;
}

static uint8_t *ev(struct gt_chunk *c, uint8_t *p, uint8_t type)
{
	(void)c;
	*p++ = type;
	*p++ = 0; /* dt: same instant as the batch base */
	return p;
}

/* Returns true if t has a status in g once this returns.  A silent thread
 * is stated per its state at the end of g (snapshot): its P (and a running
 * or syscalling G) in a batch under its own M id, a waiting G or one whose
 * P was taken in an m=^0 batch (gt_silent_status, shared with crash.c). */
static bool state_thread(struct gt_thread *t, uint64_t g, uint64_t now)
{
	int state = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
	bool stated = gt_stated_in(t, g);
	int snap = t->snap_state;
	bool need_status = !stated && (snap == GT_TS_RUNNING || snap == GT_TS_SYSCALL ||
	                               snap == GT_TS_BLOCKED || snap == GT_TS_XG);
	bool need_exit = state == GT_TS_EXITED && t->exit_gen == g && !t->exit_written;
	if (!need_status && !need_exit)
		return stated;
	struct gt_chunk *c = mbatch(t, g, need_exit ? t->exit_ts : now);
	if (!c)
		return stated;
	uint8_t *p = c->data + c->len;
	if (need_status) {
		uint8_t anon[GT_SILENT_MAX], *a = anon;
		gt_silent_status_cur(t, g, snap, t->snap_sys, t->snap_gword, t->snap_cur,
		                     t->snap_cword, &p, &a);
		if (a != anon) {
			struct gt_chunk *ac = gt_chunk_new(256, 0);
			if (ac) {
				gt_chunk_open(ac, g, GT_NO_ID, now);
				memcpy(ac->data + ac->len, anon, (size_t)(a - anon));
				ac->len += (uint32_t)(a - anon);
				gt_queue_push(ac);
			}
		}
	} else if (need_exit && !stated) {
		p = ev(c, p, GT_EV_PROC_STATUS);
		p = gt_put_uvarint(p, t->p);
		p = gt_put_uvarint(p, GT_P_RUNNING);
		p = ev(c, p, GT_EV_GO_STATUS_STACK);
		p = gt_put_uvarint(p, t->goid);
		p = gt_put_uvarint(p, t->tid);
		p = gt_put_uvarint(p, GT_G_RUNNING);
		p = gt_put_uvarint(p, gt_entry_stack_id(t));
		t->adv_status_gen = g;
	}
	if (need_exit) {
		p = ev(c, p, GT_EV_GO_DESTROY);
		p = ev(c, p, GT_EV_PROC_STOP);
		t->exit_written = true;
	}
	c->len = (uint32_t)(p - c->data);
	if (c->len > c->hdr_len)
		gt_queue_push(c);
	else
		gt_chunk_release(c);
	return true;
}

/* Go 1.23's reader rejects a generation without any timed event ("frontier
 * is empty"): when no thread is stated in g, state an idle P that no thread
 * uses (ProcStatus needs no M, P or G). */
static void write_filler(uint64_t g, uint64_t now)
{
	pthread_mutex_lock(&gt_session.reg_lock);
	if (gt_session.filler_p == GT_NO_ID)
		gt_session.filler_p = gt_p_alloc();
	uint64_t p = gt_session.filler_p;
	pthread_mutex_unlock(&gt_session.reg_lock);
	struct gt_chunk *c = gt_chunk_new(64, 0);
	if (!c)
		return;
	gt_chunk_open(c, g, GT_NO_ID, now);
	uint8_t *q = ev(c, c->data + c->len, GT_EV_PROC_STATUS);
	q = gt_put_uvarint(q, p);
	q = gt_put_uvarint(q, GT_P_IDLE);
	c->len = (uint32_t)(q - c->data);
	gt_queue_push(c);
}

void gt_thread_collect(struct gt_thread *t, uint64_t g)
{
	struct gt_tbuf *tb = &t->tb[g & 1];
	struct gt_chunk **slots[2] = { &tb->ev, &tb->str };
	for (int i = 0; i < 2; i++) {
		struct gt_chunk *c = *slots[i];
		if (c && c->len != 0 && c->gen == g) {
			*slots[i] = NULL;
			gt_queue_push(c);
		}
	}
}

static void write_frequency(uint64_t g, uint64_t now)
{
	struct gt_chunk *c = gt_chunk_new(64, 0);
	if (!c)
		return;
	gt_chunk_open(c, g, GT_NO_ID, now);
	c->data[c->len++] = GT_EV_FREQUENCY;
	c->len = (uint32_t)(gt_put_uvarint(c->data + c->len, gt_clock.freq) - c->data);
	gt_queue_push(c);
}

void gt_threads_reap(uint64_t g)
{
	struct gt_thread *t, *tmp, *dead = NULL;
	pthread_mutex_lock(&gt_session.reg_lock);
	cds_list_for_each_entry_safe(t, tmp, &gt_session.threads, node) {
		if (!t->zombie || t->exit_gen > g)
			continue;
		gt_reg_del(&t->node);
		t->linked = false;
		gt_p_free(t->p, g);
		t->dead_next = dead; /* not t->node: walkers may stand on t */
		dead = t;
	}
	pthread_mutex_unlock(&gt_session.reg_lock);
	if (!dead)
		return;
	synchronize_rcu(); /* crash-path walkers read under rcu_read_lock */
	for (t = dead; t; t = tmp) {
		tmp = t->dead_next;
		gt_thread_free(t);
	}
}

void gt_advance(bool final)
{
	uint64_t g = __atomic_load_n(&gt_session.gen, __ATOMIC_RELAXED);
	if (g == 0)
		return;
	struct gt_thread *t;

	rcu_read_lock();
	gt_reg_for_each(t, &gt_session.threads) {
		if (!gt_thread_current(t))
			continue;
		t->snap_state = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
		t->snap_sys = __atomic_load_n(&t->sys, __ATOMIC_ACQUIRE);
		t->snap_gword = __atomic_load_n(&t->own.word, __ATOMIC_ACQUIRE);
		t->snap_status_gen = __atomic_load_n(&t->status_gen, __ATOMIC_RELAXED);
		/* cur stays allocated while it can be any thread's cur: its
		 * record is freed only by gt_xg_advance, after its death. */
		t->snap_cur = t->snap_state == GT_TS_RUNNING ? NULL
		                                             : __atomic_load_n(&t->cur, __ATOMIC_ACQUIRE);
		t->snap_cword = t->snap_cur ? __atomic_load_n(&t->snap_cur->word, __ATOMIC_ACQUIRE) : 0;
	}
	rcu_read_unlock();
	gt_xg_snapshot(g);

	/*
	 * end: the time of every event the advancer writes into g (statuses of
	 * silent threads and goroutines, owed exits, the filler, the tables'
	 * batches), read before the bump.  Invariant: no timestamp the
	 * advancer puts into g is later than a timestamp anyone puts into g+1.
	 * Why it holds: the clock is read before the store of g+1 can be seen
	 * (the signal fence keeps the compiler from moving the read past the
	 * store, and the counter read retires before the store commits);
	 * whoever writes into g+1 read g+1 first and the clock after it (the
	 * SIGPROF handler behind an lfence: stamp_after_loads).  Stamping these
	 * events when the advancer got to them, after the seqlock wait, put
	 * them after samples that g+1 had already taken.  The CPU drain takes
	 * end as a lower bound of g's last event (gt_cpuprof_flush), so that a
	 * sample of g stamped after end moves into g+1 instead of staying
	 * before a status of g.
	 */
	uint64_t end = gt_now();
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (final)
		gt_session.gen_last = g; /* the next session starts after it (gt_session.gen) */
	__atomic_store_n(&gt_session.gen, final ? 0 : g + 1, __ATOMIC_RELEASE);
	gt_seq_sync();

	bool any = false;
	rcu_read_lock();
	gt_reg_for_each(t, &gt_session.threads)
		if (gt_thread_current(t))
			wait_left(t);
	rcu_read_unlock();
	/* Nobody writes into g any more.  The CPU samples of g first (design
	 * card: before g's trace buffers; they add stacks), then every
	 * thread's buffers, the stack table (it adds strings), the strings:
	 * all of g is queued before any byte of g+1. */
	gt_for_each_source(s)
		if (s->quiesce)
			s->quiesce(g);
	gt_for_each_source(s)
		if (s->drain)
			s->drain(g, end);
	rcu_read_lock();
	gt_reg_for_each(t, &gt_session.threads) {
		if (!gt_thread_current(t))
			continue;
		gt_thread_collect(t, g);
		any |= state_thread(t, g, end);
	}
	if (!any)
		write_filler(g, end);
	rcu_read_unlock();
	/* Explicit goroutines nobody stated in g (after the threads: a thread
	 * states the one it runs), their creation stacks (adds strings). */
	gt_xg_advance(g, end, final);
	/* Symbols: every PC of g's stack tables is looked up (names now),
	 * then the advance waits a bounded time for the lines that DWARF
	 * loading on the resolver thread may still owe (symbolize.c). */
	gt_stacktab_prefetch(g);
	gt_evstack_prefetch(g);
	gt_sym_settle(final ? GT_SYM_FINAL_WAIT_NS : GT_SYM_WAIT_NS);
	gt_stacktab_write(g, end);
	gt_evstack_write(g, end);
	gt_thread_collect(&gt_advancer, g);
	write_frequency(g, end);

	gt_strtab_reset(&gt_session.strtab[g & 1]);
	__atomic_store_n(&gt_session.msg_next[g & 1], 0, __ATOMIC_RELAXED);
	gt_threads_reap(g);
	/* Generation g+1 starts: Ps of threads still inside a syscall are
	 * taken, as the runtime does at every advance (sched.c). */
	if (!final)
		gt_steal_syscall_ps(g + 1, gt_now());
}
