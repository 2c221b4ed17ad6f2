/*
 * syncwrap.c: the instrumented pthread calls (gotrace_mutex_*,
 * gotrace_cond_*): blocks with a Go block reason, and the unblock arrows
 * from the thread that releases a waiter.
 * May call: sched.c (gotrace_block_, gotrace_block_end_, gotrace_unblock_),
 * src/core.
 *
 * A waiter announces what it waits on (a mutex or condition variable, by
 * address) in its own thread record after its GoBlock is written; a thread
 * that unlocks a wrapped mutex or signals a wrapped condition variable
 * looks for the announced waiters of that object and writes their
 * GoUnblock before the real unlock or signal, so that `go tool trace`
 * draws the arrow from it.  Which waiter the system wakes is not known:
 * signal and unlock pick the waiter that announced itself first (glibc's
 * condition variables and mutexes are close to FIFO for waiters that
 * already sleep); broadcast takes all.  When the guess is wrong the trace
 * stays valid: the waiter that really woke unblocks itself at its resume,
 * and the one picked shows as runnable until it runs.
 *
 * Finding the waiters walks the thread registry (an RCU list) under
 * rcu_read_lock, only while some thread is in a wrapped wait (gt_waiters):
 * a cost proportional to the number of traced threads, paid by releases
 * that have waiters, which themselves make a futex system call.
 */
#include "emit.h"
#include "../core/registry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Threads now inside a wrapped wait with an announcement.  Written by the
 * waiters (atomic add / sub around the wait); read by releasers (relaxed:
 * a stale zero misses an arrow, never misleads one), also by the preload
 * library's unlock and signal wrappers (src/preload/locks.c), whose fast
 * path is this one load. */
uint64_t gt_waiters;

/* Order of the announcements, for "first waiter first".  Atomic counter
 * taken by the waiters. */
static uint64_t gt_wait_ticket_next;

/* The calling thread's record, if it is registered in this session. */
static struct gt_thread *self_now(void)
{
	struct gt_thread *t = gt_tls_self;
	if (t && gt_tls_session == __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED))
		return t;
	return NULL;
}

/* "base" or "base name": the block reason of a named lock.  Go's tools
 * put a wait in the synchronization profile by the word "sync" in its
 * reason, which the prefix keeps. */
static const char *reason_of(char *buf, size_t len, const char *base, const char *name)
{
	if (!name || !*name)
		return base;
	snprintf(buf, len, "%s %s", base, name);
	return buf;
}

/* Block for obj with reason; returns the thread announced as obj's waiter
 * (to pass to wait_done), NULL if nothing was recorded. */
static struct gt_thread *wait_begin(const void *obj, const char *reason)
{
	gotrace_block_(reason);
	struct gt_thread *t = self_now();
	if (!t || t->state != GT_TS_BLOCKED)
		return NULL; /* not recorded (tracing off, dropped) */
	struct gt_gor *G = gt_cur_g(t);
	uint64_t tk = __atomic_add_fetch(&gt_wait_ticket_next, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&t->wait_ticket, tk, __ATOMIC_RELAXED);
	__atomic_store_n(&t->wait_g, G, __ATOMIC_RELAXED);
	__atomic_store_n(&t->wait_gid, __atomic_load_n(&G->id, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	__atomic_store_n(&t->wait_obj, (void *)(uintptr_t)obj, __ATOMIC_RELEASE);
	__atomic_add_fetch(&gt_waiters, 1, __ATOMIC_RELAXED);
	return t;
}

static void wait_done(struct gt_thread *t)
{
	if (t) {
		__atomic_store_n(&t->wait_obj, NULL, __ATOMIC_RELEASE);
		__atomic_sub_fetch(&gt_waiters, 1, __ATOMIC_RELAXED);
	}
	gotrace_block_end_();
}

struct waiter {
	uint64_t ticket;
	gotrace_goroutine_t g;
};

#define WAKE_MAX 256

/* Thread t's announcement, if it waits on obj (inside rcu_read_lock). */
static bool waiter_of(struct gt_thread *t, const void *obj, struct waiter *x)
{
	if (__atomic_load_n(&t->wait_obj, __ATOMIC_ACQUIRE) != obj)
		return false;
	/* Acquire loads (not a fence: ThreadSanitizer does not model
	 * fences) keep the re-check below after them. */
	x->ticket = __atomic_load_n(&t->wait_ticket, __ATOMIC_ACQUIRE);
	x->g.rec_ = __atomic_load_n(&t->wait_g, __ATOMIC_ACQUIRE);
	x->g.id_ = __atomic_load_n(&t->wait_gid, __ATOMIC_ACQUIRE);
	/* The same announcement still (a waiter that left and waits again
	 * meanwhile changed the ticket).  A mix-up here could only misplace
	 * an arrow: the unblock checks that the G is blocked. */
	return __atomic_load_n(&t->wait_obj, __ATOMIC_RELAXED) == obj &&
	       __atomic_load_n(&t->wait_ticket, __ATOMIC_RELAXED) == x->ticket;
}

/* Write GoUnblock for the first announced waiter of obj (all: every one,
 * up to WAKE_MAX; the rest wake themselves).  Returns how many. */
static int wake_waiters(const void *obj, bool all)
{
	if (__atomic_load_n(&gt_waiters, __ATOMIC_RELAXED) == 0)
		return 0;
	struct waiter w[WAKE_MAX];
	int n = 0, done = 0;
	struct gt_thread *t;
	/* Register first: registration takes the registry lock, which must
	 * not be taken inside a read-side section. */
	if (!self_now() && !gt_thread_self_slow())
		return 0;
	/* The records stay allocated while we hold the read-side section
	 * (the advancer frees exited threads after synchronize_rcu), and so
	 * do explicit goroutines' (freed only after a generation that saw
	 * them destroyed, by the advancer, which does not wait for us). */
	rcu_read_lock();
	gt_reg_for_each(t, &gt_session.threads) {
		struct waiter x;
		if (!waiter_of(t, obj, &x))
			continue;
		int i = n < WAKE_MAX ? n++ : -1;
		if (i < 0) {
			/* Full: keep the WAKE_MAX oldest (replace the newest). */
			int newest = 0;
			for (int k = 1; k < n; k++)
				if (w[k].ticket > w[newest].ticket)
					newest = k;
			if (w[newest].ticket < x.ticket)
				continue;
			i = newest;
		}
		w[i] = x;
	}
	/* Oldest first (insertion sort: n is the number of waiters on one
	 * object, small). */
	for (int i = 1; i < n; i++) {
		struct waiter x = w[i];
		int j = i;
		for (; j > 0 && w[j - 1].ticket > x.ticket; j--)
			w[j] = w[j - 1];
		w[j] = x;
	}
	for (int i = 0; i < n && (all || done == 0); i++)
		done += gotrace_unblock_(w[i].g);
	rcu_read_unlock();
	return done;
}

/* The same announcements for other waitable objects, for the preload
 * library (src/preload), which links these objects and wraps the pthread
 * calls that have no public wrapper (rwlocks, semaphores, pthread_join).
 * gt_sync_wait_begin: block with reason, announce obj; returns the token
 * for gt_sync_wait_done (NULL: nothing recorded).  gt_sync_wake: write
 * GoUnblock for obj's first announced waiter (all: every one).  Same
 * rules as the wrappers below: call wake before the real release. */
void *gt_sync_wait_begin(const void *obj, const char *reason)
{
	return wait_begin(obj, reason);
}

void gt_sync_wait_done(void *token)
{
	wait_done(token);
}

int gt_sync_wake(const void *obj, bool all)
{
	if (!gotrace_enabled())
		return 0;
	return wake_waiters(obj, all);
}

/* gt_sync_wake(obj, false) for sem_post, which a signal handler may call:
 * the first announced waiter, found without a copy of the waiters (a
 * handler may run on a small stack) and unblocked with gt_unblock_as.  No
 * registration (only a registered thread writes), no lock: the registry
 * walk is an RCU read-side section of a thread urcu-bp registered at its
 * registration (sections nest, and entering one allocates nothing then).
 */
int gt_sync_wake_as(const void *obj)
{
	struct gt_thread *self = self_now(), *t;
	if (!self || !__atomic_load_n(&gotrace_on_, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&gt_waiters, __ATOMIC_RELAXED) == 0)
		return 0;
	struct waiter best = { UINT64_MAX, { NULL, 0 } };
	int done = 0;
	rcu_read_lock();
	gt_reg_for_each(t, &gt_session.threads) {
		struct waiter x;
		if (waiter_of(t, obj, &x) && x.ticket < best.ticket)
			best = x;
	}
	if (best.g.rec_)
		done = gt_unblock_as(self, best.g);
	rcu_read_unlock();
	return done;
}

/* The slow path of gotrace_mutex_lock (the inline trylock failed). */
int gotrace_mutex_lock_(pthread_mutex_t *m)
{
	return gotrace_mutex_lock_named_(m, NULL);
}

int gotrace_mutex_lock_named_(pthread_mutex_t *m, const char *name)
{
	int r = pthread_mutex_trylock(m); /* the error, or a lock freed since */
	if (r != EBUSY || !gotrace_enabled())
		return r == EBUSY ? pthread_mutex_lock(m) : r;
	char buf[128];
	struct gt_thread *t = wait_begin(m, reason_of(buf, sizeof buf, "sync.Mutex.Lock", name));
	r = pthread_mutex_lock(m);
	wait_done(t);
	return r;
}

int gotrace_mutex_unlock_(pthread_mutex_t *m)
{
	wake_waiters(m, false);
	return pthread_mutex_unlock(m);
}

int gotrace_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	return gotrace_cond_wait_named(c, m, NULL);
}

int gotrace_cond_wait_named(pthread_cond_t *c, pthread_mutex_t *m, const char *name)
{
	if (!gotrace_enabled())
		return pthread_cond_wait(c, m);
	char buf[128];
	struct gt_thread *t = wait_begin(c, reason_of(buf, sizeof buf, "sync.Cond.Wait", name));
	int r = pthread_cond_wait(c, m);
	wait_done(t);
	return r;
}

int gotrace_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abstime)
{
	return gotrace_cond_timedwait_named(c, m, abstime, NULL);
}

int gotrace_cond_timedwait_named(pthread_cond_t *c, pthread_mutex_t *m,
                                 const struct timespec *abstime, const char *name)
{
	if (!gotrace_enabled())
		return pthread_cond_timedwait(c, m, abstime);
	char buf[128];
	struct gt_thread *t = wait_begin(c, reason_of(buf, sizeof buf, "sync.Cond.Wait", name));
	int r = pthread_cond_timedwait(c, m, abstime);
	wait_done(t);
	return r;
}

int gotrace_cond_signal(pthread_cond_t *c)
{
	if (gotrace_enabled())
		wake_waiters(c, false);
	return pthread_cond_signal(c);
}

int gotrace_cond_broadcast(pthread_cond_t *c)
{
	if (gotrace_enabled())
		wake_waiters(c, true);
	return pthread_cond_broadcast(c);
}
