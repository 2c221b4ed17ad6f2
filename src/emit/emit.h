/*
 * emit.h: the event writers' internal interface (src/emit): the critical
 * section of an emit, thread statuses, scheduling events (sched.c),
 * explicit goroutines (goroutine.c), the thread registry (thread.c).
 * May call: src/stacks, src/core (and seqlock, arch below them).  Called
 * by the session layer (src/session); the CPU sampler never calls it.
 */
#ifndef GT_EMIT_H
#define GT_EMIT_H

#include "../core/core.h"
#include "../stacks/stacks.h"

GT_HIDDEN bool gt_emit_begin(struct gt_emit *e);
GT_HIDDEN bool gt_emit_enter(struct gt_emit *e);
GT_HIDDEN bool gt_emit_prologue(struct gt_emit *e);
/* Leave the critical section and enter it again in the current generation
 * (the word rule of core.h): e is bound to it.  Only between events (the
 * caller holds no reservation).  false if tracing stopped meanwhile: the
 * section is held, unbound, and the caller leaves it with nothing
 * written. */
GT_HIDDEN bool gt_emit_renew(struct gt_emit *e);

/* Write this thread's status (or creation) into gen e->gen.  false if it
 * could not be written (the caller then drops its event). */
GT_HIDDEN bool gt_write_status(struct gt_emit *e);

/* Scheduling events (sched.c). */
/* Mark g's status of the thread's own goroutine as written in gen. */
static inline void gt_own_traced(struct gt_thread *t, uint64_t gen)
{
	__atomic_store_n(&t->own.traced[gen % 3], gen, __ATOMIC_RELAXED);
}
/* Resume a BLOCKED thread inside its critical section (state RUNNING
 * after); false if its events could not be written. */
GT_HIDDEN bool gt_resume_locked(struct gt_emit *e);
/* End the thread's syscall bracket inside its critical section (state
 * SYSCALL -> RUNNING, or XG if it was an explicit goroutine's). */
GT_HIDDEN bool gt_finish_syscall(struct gt_emit *e);
/* Bring a thread in SYSCALL, BLOCKED or XG back to RUNNING (thread exit). */
GT_HIDDEN bool gt_sched_settle(struct gt_emit *e);
/* Statuses of thread t, silent in generation g, whose state at the end of
 * g was (state, sys, gword; cur and its word read now: the crash path):
 * `own` gets the events for a batch under t's M id, `anon` those for an
 * m=^0 batch (each returned advanced past what was written, at most
 * GT_SILENT_MAX bytes each).  Writes no memory but
 * the two buffers and t's status bookkeeping: AS-safe (crash path). */
#define GT_SILENT_MAX 128
GT_HIDDEN void gt_silent_status(struct gt_thread *t, uint64_t g, int state, uint64_t sys,
                                uint64_t gword, uint8_t **own, uint8_t **anon);
/* As gt_silent_status with the thread's explicit goroutine cur (NULL: none)
 * and cur's word, both from the same snapshot as state (advance.c). */
GT_HIDDEN void gt_silent_status_cur(struct gt_thread *t, uint64_t g, int state, uint64_t sys,
                                    uint64_t gword, struct gt_gor *cur, uint64_t cword,
                                    uint8_t **own, uint8_t **anon);
/* The goroutine the thread runs (or blocks, or syscalls in): cur or own. */
static inline struct gt_gor *gt_cur_g(struct gt_thread *t)
{
	return t->cur ? t->cur : &t->own;
}
/* Stack id for a status of G: the entry stack of a thread's own G, none for
 * an explicit one. */
static inline uint64_t gt_g_stack(struct gt_thread *t, struct gt_gor *G)
{
	return G == &t->own ? t->goid * 2 /* gt_entry_stack_id */ : 0;
}
/* The own G's status in e->gen while it is parked (cur set), if nobody
 * wrote it yet in e->gen (claim on own.traced).  At most GT_UVARINT_MAX*4+2
 * bytes at p. */
GT_HIDDEN uint8_t *gt_parked_own_status(struct gt_emit *e, uint8_t *p);
/* Claim the status of G in generation g (true: the caller must write it). */
GT_HIDDEN bool gt_claim_status(struct gt_gor *G, uint64_t g);
GT_HIDDEN uint8_t *gt_go_status_claimed(struct gt_emit *e, uint8_t *p, struct gt_gor *G,
                                        uint64_t gid, uint64_t st);

/* Explicit goroutines (goroutine.c). */
/* Statuses of a thread in state XG in e->gen (from gt_write_status). */
GT_HIDDEN bool gt_xg_write_status(struct gt_emit *e);
/* Thread exit in state XG: stop cur (GoStop), resume the own G. */
GT_HIDDEN bool gt_xg_settle(struct gt_emit *e);
/* The first status of a thread adopting an explicit goroutine (t->adopt,
 * state NEW): its status or creation, then GoStart, with t->goid its id.
 * At most 2 * (2 + 4 * GT_UVARINT_MAX) bytes at p.  NULL (nothing
 * written) if the goroutine could not be taken. */
GT_HIDDEN uint8_t *gt_xg_adopt_events(struct gt_emit *e, uint8_t *p);
/* Drop t->adopt (owner, or the thread's reaper): its handle reference,
 * and the goroutine itself if it was never adopted. */
GT_HIDDEN void gt_xg_adopt_drop(struct gt_thread *t);
/* Advancer: snapshot of every explicit goroutine before the bump of g;
 * after every thread left g and the threads were stated: statuses of the
 * goroutines nobody stated in g, their stacks, reaping; final: detach all. */
GT_HIDDEN void gt_xg_snapshot(uint64_t g);
GT_HIDDEN void gt_xg_advance(uint64_t g, uint64_t now, bool final);
/* Crash path (flusher excluded): cb for each goroutine whose GoCreate in g
 * names a stack the advancer has not written: its id, one frame pc and
 * name.  AS-safe; stops when cb returns false. */
GT_HIDDEN void gt_xg_crash_walk(uint64_t g,
                                bool (*cb)(void *arg, uint64_t id, uint64_t pc, const char *name),
                                void *arg);

/* At the start of generation h (advancer): take the P of every thread
 * sitting in a syscall begun before h (ProcStatus Abandoned + ProcSteal in
 * a batch of h under the advancer's own M id). */
GT_HIDDEN void gt_steal_syscall_ps(uint64_t h, uint64_t now);


GT_HIDDEN void gt_threads_release_all(void);
GT_HIDDEN void gt_thread_free(struct gt_thread *t);
GT_HIDDEN uint64_t gt_p_alloc(void);
GT_HIDDEN void gt_p_free(uint64_t p, uint64_t gen);


GT_HIDDEN void gt_entry_capture(struct gt_thread *t);

/* Announced waits on any object (syncwrap.c), for src/preload's wrappers
 * of rwlocks, semaphores and pthread_join. */
GT_HIDDEN void *gt_sync_wait_begin(const void *obj, const char *reason);
GT_HIDDEN void gt_sync_wait_done(void *token);
GT_HIDDEN int gt_sync_wake(const void *obj, bool all);
/* gt_sync_wake(obj, false), async-signal-safe (sem_post; see syncwrap.c):
 * writes nothing where that would need a lock or an allocation. */
GT_HIDDEN int gt_sync_wake_as(const void *obj);
/* The unblock of gt_sync_wake_as, by the registered thread t (sched.c). */
GT_HIDDEN int gt_unblock_as(struct gt_thread *t, gotrace_goroutine_t h);
/* Threads inside an announced wait (syncwrap.c; 0: no unblock to write). */
GT_HIDDEN extern uint64_t gt_waiters;

#endif
