/*
 * locks.c: mutexes, condition variables, rwlocks, barriers, semaphores.
 * May call: preload.h (the public wrappers of include/gotrace.h and
 * src/emit's gt_sync_*).
 *
 * Every lock tries first: an uncontended lock is the real trylock and
 * nothing else (no event, no thread-local access).  Only a call that must
 * wait, on a traced thread with tracing on, becomes a block with a Go
 * reason containing "sync" (so `go tool trace -pprof=sync` shows it).
 * Mutexes and condition variables use the library's own wrappers
 * (gotrace_mutex_lock_, gotrace_cond_*), which inside this library call
 * the real pthread functions (redefine.h).  Unlocks, signals and rwlock
 * unlocks write the unblock of an announced waiter first (the arrow from
 * the releasing thread); while no thread is in an announced wait they
 * are the real call after one load (gt_waiters).  sem_post is
 * async-signal-safe (a signal handler may post), which the ordinary
 * unblock is not (it may register the thread, which allocates; its stack
 * is unwound with libunwind, whose dl_iterate_phdr takes the loader's
 * lock: a handler that interrupted dlopen would deadlock): it uses the
 * restricted one (gt_sync_wake_as: no stack, no lock, no allocation, or
 * no arrow).  A barrier's last arrival draws the arrows to the round's
 * waiters (bars[], below).
 */
#define _GNU_SOURCE
#include "preload.h"

/* The slow paths are out of line so that the fast paths save no
 * registers (a tail call after one trylock or one load). */
__attribute__((noinline)) static int mutex_lock_slow(pthread_mutex_t *m)
{
	if (!pl_tracing())
		return PL_REAL(pthread_mutex_lock)(m);
	int r;
	PL_LIB(r = gotrace_mutex_lock_(m));
	return r;
}

PL_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
	int r = pthread_mutex_trylock(m);
	if (__builtin_expect(r != EBUSY, 1))
		return r;
	return mutex_lock_slow(m);
}

__attribute__((noinline)) static int mutex_unlock_slow(pthread_mutex_t *m)
{
	if (!pl_tracing())
		return PL_REAL(pthread_mutex_unlock)(m);
	int r;
	PL_LIB(r = gotrace_mutex_unlock_(m));
	return r;
}

PL_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m)
{
	if (__builtin_expect(pl_no_waiters(), 1))
		return PL_REAL(pthread_mutex_unlock)(m);
	return mutex_unlock_slow(m);
}

PL_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	if (!pl_tracing())
		return PL_REAL(pthread_cond_wait)(c, m);
	int r;
	PL_LIB(r = gotrace_cond_wait(c, m));
	return r;
}

PL_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t)
{
	if (!pl_tracing())
		return PL_REAL(pthread_cond_timedwait)(c, m, t);
	int r;
	PL_LIB(r = gotrace_cond_timedwait(c, m, t));
	return r;
}

PL_EXPORT int pthread_cond_signal(pthread_cond_t *c)
{
	if (pl_no_waiters() || !pl_tracing())
		return PL_REAL(pthread_cond_signal)(c);
	int r;
	PL_LIB(r = gotrace_cond_signal(c));
	return r;
}

PL_EXPORT int pthread_cond_broadcast(pthread_cond_t *c)
{
	if (pl_no_waiters() || !pl_tracing())
		return PL_REAL(pthread_cond_broadcast)(c);
	int r;
	PL_LIB(r = gotrace_cond_broadcast(c));
	return r;
}

/* A wait on obj: block with reason, the real wait, resume. */
#define PL_WAIT(obj, reason, call)                              \
	({                                                      \
		void *tok_;                                     \
		PL_LIB(tok_ = gt_sync_wait_begin(obj, reason)); \
		int r_ = call;                                  \
		int e_ = errno;                                 \
		PL_LIB(gt_sync_wait_done(tok_));                \
		errno = e_;                                     \
		r_;                                             \
	})

/* A wait nobody will be said to end (no announcement): block, the real
 * wait, resume. */
#define PL_BLOCK(reason, call)                   \
	({                                       \
		PL_LIB(gotrace_block_(reason));  \
		int r_ = call;                   \
		int e_ = errno;                  \
		PL_LIB(gotrace_block_end_());    \
		errno = e_;                      \
		r_;                              \
	})

PL_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
	int r = pthread_rwlock_tryrdlock(l);
	if (__builtin_expect(r != EBUSY, 1))
		return r;
	if (!pl_tracing())
		return PL_REAL(pthread_rwlock_rdlock)(l);
	return PL_WAIT(l, "sync.RWMutex.RLock", PL_REAL(pthread_rwlock_rdlock)(l));
}

PL_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
	int r = pthread_rwlock_trywrlock(l);
	if (__builtin_expect(r != EBUSY, 1))
		return r;
	if (!pl_tracing())
		return PL_REAL(pthread_rwlock_wrlock)(l);
	return PL_WAIT(l, "sync.RWMutex.Lock", PL_REAL(pthread_rwlock_wrlock)(l));
}

PL_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *l)
{
	if (!pl_no_waiters() && pl_tracing())
		PL_LIB(gt_sync_wake(l, false));
	return PL_REAL(pthread_rwlock_unlock)(l);
}

/* The barriers the program initialised, with their count, so that a
 * wait knows whether it is the round's last arrival (which releases the
 * others, and draws their unblocks) or will wait.  Slots are claimed by
 * pthread_barrier_init (CAS of key from NULL; count, then key with
 * release), cleared by pthread_barrier_destroy; arrived is taken by every
 * wait (atomic add), traced or not, so that rounds stay counted.  A full
 * table, or a barrier initialised before the preload was loaded: waits
 * block without an arrow (their waiters wake themselves).  The rounds
 * this counts can differ from the real barrier's only in who is last
 * among threads arriving at the same moment: then the one counted last
 * may wait unrecorded, briefly, and a real waiter wakes itself. */
#define PL_BARRIERS 64
static struct pl_barrier {
	pthread_barrier_t *key;
	unsigned count;
	uint64_t arrived;
} bars[PL_BARRIERS];

static struct pl_barrier *bar_find(pthread_barrier_t *b)
{
	for (int i = 0; i < PL_BARRIERS; i++)
		if (__atomic_load_n(&bars[i].key, __ATOMIC_ACQUIRE) == b)
			return &bars[i];
	return NULL;
}

PL_EXPORT int pthread_barrier_init(pthread_barrier_t *b, const pthread_barrierattr_t *a, unsigned count)
{
	int r = PL_REAL(pthread_barrier_init)(b, a, count);
	if (r != 0)
		return r;
	struct pl_barrier *e = bar_find(b);
	for (int i = 0; i < PL_BARRIERS && !e; i++) {
		pthread_barrier_t *none = NULL;
		if (__atomic_compare_exchange_n(&bars[i].key, &none, (pthread_barrier_t *)1, false,
		                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			e = &bars[i];
	}
	if (e) {
		e->count = count;
		__atomic_store_n(&e->arrived, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&e->key, b, __ATOMIC_RELEASE);
	}
	return r;
}

PL_EXPORT int pthread_barrier_destroy(pthread_barrier_t *b)
{
	int r = PL_REAL(pthread_barrier_destroy)(b);
	struct pl_barrier *e = r == 0 ? bar_find(b) : NULL;
	if (e)
		__atomic_store_n(&e->key, NULL, __ATOMIC_RELEASE);
	return r;
}

PL_EXPORT int pthread_barrier_wait(pthread_barrier_t *b)
{
	struct pl_barrier *e = bar_find(b);
	bool last = e && e->count != 0 &&
	            __atomic_add_fetch(&e->arrived, 1, __ATOMIC_ACQ_REL) % e->count == 0;
	if (!pl_tracing())
		return PL_REAL(pthread_barrier_wait)(b);
	if (last) {
		/* Releases the round: the arrows to its waiters. */
		if (!pl_no_waiters())
			PL_LIB((void)gt_sync_wake(b, true));
		return PL_REAL(pthread_barrier_wait)(b);
	}
	if (!e)
		return PL_BLOCK("sync.WaitGroup.Wait pthread_barrier", PL_REAL(pthread_barrier_wait)(b));
	return PL_WAIT(b, "sync.WaitGroup.Wait pthread_barrier", PL_REAL(pthread_barrier_wait)(b));
}

PL_EXPORT int sem_wait(sem_t *s)
{
	int e = errno;
	if (sem_trywait(s) == 0)
		return 0;
	errno = e;
	if (!pl_tracing())
		return PL_REAL(sem_wait)(s);
	return PL_WAIT(s, "sync.Semacquire sem_wait", PL_REAL(sem_wait)(s));
}

PL_EXPORT int sem_timedwait(sem_t *s, const struct timespec *t)
{
	int e = errno;
	if (sem_trywait(s) == 0)
		return 0;
	errno = e;
	if (!pl_tracing())
		return PL_REAL(sem_timedwait)(s, t);
	return PL_WAIT(s, "sync.Semacquire sem_timedwait", PL_REAL(sem_timedwait)(s, t));
}

/* sem_post may be called from a signal handler: the unblock is the
 * async-signal-safe one (gt_sync_wake_as), which writes nothing where it
 * would need a lock or memory; PL_LIB keeps errno and marks the thread
 * busy (a handler interrupting a library call of this thread posts
 * untraced). */
PL_EXPORT int sem_post(sem_t *s)
{
	if (!pl_no_waiters() && pl_tracing())
		PL_LIB((void)gt_sync_wake_as(s));
	return PL_REAL(sem_post)(s);
}
