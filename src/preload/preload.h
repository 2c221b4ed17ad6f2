/*
 * preload.h: what the files of libgotrace-preload.so share (src/preload):
 * the table of real functions, the per-thread state that decides whether
 * an interposed call is traced, and the helpers around every call into the
 * library.
 * May call: the public API (include/gotrace.h), src/emit's gt_sync_*.
 */
#ifndef GT_PRELOAD_H
#define GT_PRELOAD_H

#include <gotrace.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PL_EXPORT __attribute__((visibility("default")))
#define PL_HIDDEN __attribute__((visibility("hidden")))

/* Interposed functions that glibc's headers hide or deprecate: old
 * programs still call them (signals.c, interpose.def).  sigset's
 * deprecation would fire at every use of the table in the preload's
 * sources. */
extern __sighandler_t bsd_signal(int sig, __sighandler_t h);
extern __sighandler_t sysv_signal(int sig, __sighandler_t h);
extern int __open_2(const char *p, int fl);
extern int __open64_2(const char *p, int fl);
extern int __openat_2(int dfd, const char *p, int fl);
extern int __openat64_2(int dfd, const char *p, int fl);
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* In a wrapper of open/openat (variadic, fl its last named parameter):
 * the mode argument, present only when fl creates a file. */
#define PL_OPEN_MODE(fl)                                       \
	({                                                     \
		mode_t m_ = 0;                                 \
		if ((fl) & (O_CREAT | __O_TMPFILE)) {          \
			va_list ap_;                           \
			va_start(ap_, fl);                     \
			m_ = (mode_t)va_arg(ap_, unsigned int); \
			va_end(ap_);                           \
		}                                              \
		m_;                                            \
	})

/* The real functions, resolved with dlsym(RTLD_NEXT) (dlvsym for the
 * versioned ones) by pl_resolve: once in the constructor, or at the first
 * interposed call if another library's constructor calls one before ours.
 * Written by pl_resolve (idempotent: every writer stores the same values),
 * read by every wrapper (relaxed: a NULL seen means "resolve now"). */
struct pl_real {
#define PL_SYSCALL(ret, name, params, args) __typeof__(name) *name;
#define PL_FUNC(ret, name, params, args, version) __typeof__(name) *name;
#include "interpose.def"
#undef PL_SYSCALL
#undef PL_FUNC
};
PL_HIDDEN extern struct pl_real pl_real;
PL_HIDDEN void pl_resolve(void);
#define PL_REAL(name) \
	(__builtin_expect(pl_real.name != NULL, 1) ? pl_real.name : (pl_resolve(), pl_real.name))

/* The calling thread's state for the wrappers (init.c):
 *   PL_OFF     not a thread of the program that we trace: the library's own
 *              threads (flusher, line resolver, liburcu's workers), threads
 *              that existed before our constructor, and the thread running
 *              the exit handlers after ours: every wrapper calls the real
 *              function and nothing else;
 *   PL_TRACED  the main thread and threads created through our
 *              pthread_create by a traced thread;
 *   PL_BUSY    a traced thread inside one of our calls into the library:
 *              the library's own use of interposed functions (liburcu and
 *              libdw call pthread_mutex_lock, read, ...), and a signal
 *              handler that interrupts us, go straight to the real call.
 * Thread-local, written and read by its own thread only (and its signal
 * handlers, which only read it). */
enum { PL_OFF = 0, PL_TRACED = 1, PL_BUSY = 2 };
PL_HIDDEN extern __thread int pl_state __attribute__((tls_model("initial-exec")));

/* Whether a wrapper on this thread should trace now. */
static inline bool pl_tracing(void)
{
	return GOTRACE_ON_() && pl_state == PL_TRACED;
}

/* Bracket a call into the library: the thread is PL_BUSY inside, and
 * errno is the program's again after it. */
#define PL_LIB(stmt)                          \
	do {                                  \
		int pl_errno_ = errno;        \
		pl_state = PL_BUSY;           \
		stmt;                         \
		pl_state = PL_TRACED;         \
		errno = pl_errno_;            \
	} while (0)

/* The trace file descriptor the preload opened (init.c), -1 if none.
 * Written by the constructor before tracing starts, and by a dup2 or dup3
 * onto it once it moved the trace (pl_dup_onto, after gt_out_fd_move);
 * read by the close and dup wrappers.  Atomic loads and stores. */
PL_HIDDEN extern int pl_trace_fd;

/* The process that started tracing (init.c): a vfork child shares our
 * memory and must not flush or stop the parent's trace; a fork child has
 * tracing off anyway.  Written once by the constructor. */
PL_HIDDEN extern pid_t pl_pid;
/* The session installed its fatal-signal handlers (GOTRACE_CRASH without
 * nosignals): signals.c keeps a SIG_DFL the program sets for them from
 * losing the crash flush.  Written once by the constructor. */
PL_HIDDEN extern bool pl_crash_signals;
/* The constructor, before the start: the fatal signals' actions; after a
 * successful start: pl_fatal in place of SIG_DFL for the signals that
 * terminate (signals.c). */
PL_HIDDEN void pl_signals_before(void);
PL_HIDDEN void pl_signals_start(void);
/* SIGPROF in the masks (signals.c): the program's view per thread, and
 * the start's unblocking on the starting thread (sampler running). */
PL_HIDDEN extern __thread bool pl_prof_blocked __attribute__((tls_model("initial-exec")));
PL_HIDDEN void pl_prof_unblock_start(void);

/* From src/emit/syncwrap.c (linked in): announced waits on any object. */
PL_HIDDEN void *gt_sync_wait_begin(const void *obj, const char *reason);
PL_HIDDEN void gt_sync_wait_done(void *token);
PL_HIDDEN int gt_sync_wake(const void *obj, bool all);
PL_HIDDEN int gt_sync_wake_as(const void *obj);
PL_HIDDEN extern uint64_t gt_waiters;
/* Nobody is in an announced wait: a release has no unblock to write (a
 * stale zero misses an arrow, never misleads one). */
static inline bool pl_no_waiters(void)
{
	return __atomic_load_n(&gt_waiters, __ATOMIC_RELAXED) == 0;
}

#endif
