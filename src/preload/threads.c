/*
 * threads.c: thread creation, naming, joining and exit.
 * May call: preload.h.
 *
 * A thread created by a traced thread starts in a trampoline that marks
 * it traced, names its goroutine's entry function after the program's
 * start_routine (gotrace_thread_entry: `go tool trace` groups goroutines
 * by it) and registers it at once, so that its later traced calls never
 * allocate (a signal handler's write() included).  pthread_join is a block
 * "sync pthread_join" that the joined thread unblocks when it ends (see
 * joins[] below).
 *
 * Who writes the new goroutine's GoCreate: the creator, with its stack.
 * pthread_create makes an explicit goroutine for the thread before the
 * real call (gotrace_go_create_fn with the start_routine: GoCreate on the
 * creator's goroutine, which `go tool trace` draws as the creator's arrow
 * to the new goroutine), and the new thread adopts it as its own goroutine
 * at its start (gotrace_thread_adopt: GoStart, no GoCreate of its own).
 * Until then it is Runnable, stated by the advancer in every generation it
 * spans; if the real call fails it runs to its end on the creator
 * (gotrace_go_destroy), as a created goroutine must.
 */
#define _GNU_SOURCE
#include "preload.h"

#include <stdlib.h>

/* What the trampoline needs: allocated by pthread_create (the creator
 * waits for nothing, so it cannot live on its stack), freed by the child. */
struct pl_start {
	void *(*fn)(void *);
	void *arg;
	gotrace_goroutine_t g; /* created by the creator; {NULL, 0}: none */
	bool prof_blocked;     /* the creator's view of SIGPROF (signals.c) */
};

/* Announced joins: joiner goroutine waiting for thread `target`.
 * A joiner claims a free slot (CAS of `target` from 0), fills `g`, then
 * publishes `armed` (release) after its GoBlock; it clears the slot after
 * the join returns.  An ending thread scans the slots for its own id
 * (acquire) and unblocks the joiner: the joiner cannot leave pthread_join
 * before the ending thread is gone, so the handle stays valid during the
 * unblock.  Full table: the join is still a block, woken by itself. */
#define PL_JOINS 64
static struct pl_join {
	pthread_t target;
	gotrace_goroutine_t g;
	int armed;
} joins[PL_JOINS];

/* The ending thread: unblock the goroutines that join it. */
static void wake_joiners(void)
{
	if (!pl_tracing())
		return;
	pthread_t self = pthread_self();
	for (int i = 0; i < PL_JOINS; i++) {
		if (!__atomic_load_n(&joins[i].armed, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&joins[i].target, __ATOMIC_RELAXED) != self)
			continue;
		gotrace_goroutine_t g = joins[i].g;
		PL_LIB(gotrace_unblock_(g));
	}
}

/* The end of a traced thread, however it ends (return, pthread_exit,
 * cancellation: a cleanup handler of pl_trampoline).  What runs after it
 * on this thread -- the key destructors, among them liburcu's and the
 * library's own (the thread's exit events) -- is not the program's:
 * untraced (liburcu's unregistration takes a mutex that our unlock
 * wrapper would re-enter). */
static void pl_thread_end(void *unused)
{
	(void)unused;
	wake_joiners();
	pl_state = PL_OFF;
}

static void *pl_trampoline(void *p)
{
	struct pl_start s = *(struct pl_start *)p;
	free(p);
	pl_prof_blocked = s.prof_blocked; /* the mask is inherited: its view too */
	pl_state = PL_TRACED;
	/* Adopting (or, without a goroutine from the creator, registering)
	 * now: the thread's later traced calls never allocate (a signal
	 * handler's write() included). */
	PL_LIB(gotrace_thread_entry(s.fn);
	       if (s.g.id_) (void)gotrace_thread_adopt(s.g);
	       else if (GOTRACE_ON_()) (void)gotrace_self());
	void *r;
	pthread_cleanup_push(pl_thread_end, NULL);
	r = s.fn(s.arg);
	pthread_cleanup_pop(1);
	return r;
}

PL_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *at, void *(*fn)(void *), void *arg)
{
	/* Threads the library or an untraced thread creates stay untraced. */
	if (pl_state != PL_TRACED)
		return PL_REAL(pthread_create)(th, at, fn, arg);
	int e = errno;
	struct pl_start *s = malloc(sizeof *s);
	errno = e;
	if (!s)
		return PL_REAL(pthread_create)(th, at, fn, arg);
	s->fn = fn;
	s->arg = arg;
	s->g = (gotrace_goroutine_t){ NULL, 0 };
	s->prof_blocked = pl_prof_blocked;
	PL_LIB(s->g = gotrace_go_create_fn(fn, NULL));
	int r = PL_REAL(pthread_create)(th, at, pl_trampoline, s);
	if (r != 0) {
		PL_LIB(gotrace_go_destroy(s->g));
		free(s);
	}
	errno = e;
	return r;
}

/* For the main thread (others end in pl_thread_end, run by the cleanup
 * handler, after which this is a no-op). */
PL_EXPORT void pthread_exit(void *ret)
{
	pl_thread_end(NULL);
	PL_REAL(pthread_exit)(ret);
	__builtin_unreachable();
}

PL_EXPORT int pthread_setname_np(pthread_t th, const char *name)
{
	int r = PL_REAL(pthread_setname_np)(th, name);
	/* The named thread writes the label itself (gotrace_thread_name_of). */
	if (r == 0 && pl_state == PL_TRACED)
		PL_LIB((void)gotrace_thread_name_of(th, name));
	return r;
}

PL_EXPORT int pthread_join(pthread_t th, void **ret)
{
	if (!pl_tracing())
		return PL_REAL(pthread_join)(th, ret);
	struct pl_join *slot = NULL;
	for (int i = 0; i < PL_JOINS && !slot; i++) {
		pthread_t zero = 0;
		if (__atomic_compare_exchange_n(&joins[i].target, &zero, th, false,
		                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			slot = &joins[i];
	}
	PL_LIB(gotrace_block_("sync pthread_join"); if (slot) slot->g = gotrace_self());
	if (slot)
		__atomic_store_n(&slot->armed, 1, __ATOMIC_RELEASE);
	int r = PL_REAL(pthread_join)(th, ret);
	if (slot) {
		__atomic_store_n(&slot->armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&slot->target, (pthread_t)0, __ATOMIC_RELEASE);
	}
	PL_LIB(gotrace_block_end_());
	return r;
}
