/*
 * exec.c: the exec family.  A successful exec replaces the process image
 * without running exit handlers, keeps ITIMER_PROF armed and keeps pending
 * signals: the trace would lose its last generation, and a SIGPROF of the
 * sampler (setitimer's, or one a perf event or thread timer raises during
 * the exec itself), whose default action is to terminate, would kill the
 * new program before anything there handles it (a program that is not
 * traced, or not yet: its constructor has not run).  So before the real
 * call: stop the sampler's source for this thread (gt_cpuprof_exec_begin)
 * and write everything out (gotrace_flush: the file then ends with
 * complete generations; its descriptor is close-on-exec).  If the exec
 * fails the source is re-armed and tracing goes on.  Only in the process
 * that started tracing: a vfork child shares our memory (the flush would
 * run the parent's session from the child), and a fork child has no
 * timers and tracing off.
 * May call: preload.h, src/cpuprof/sampler.h (exec begin/failed).
 */
#define _GNU_SOURCE
#include "preload.h"
#include "cpuprof/sampler.h"

#include <stdarg.h>

struct pl_exec {
	bool armed;            /* sampling was paused: resume if the exec fails */
};

static void exec_begin(struct pl_exec *x)
{
	x->armed = false;
	if (!GOTRACE_ON_() || getpid() != pl_pid)
		return;
	int e = errno;
	x->armed = gt_cpuprof_exec_begin();
	if (pl_state == PL_TRACED)
		PL_LIB((void)gotrace_flush());
	errno = e;
}

static void exec_failed(struct pl_exec *x)
{
	if (x->armed) {
		int e = errno;
		gt_cpuprof_exec_failed();
		errno = e;
	}
}

#define PL_EXEC(call)              \
	({                         \
		struct pl_exec x_; \
		exec_begin(&x_);   \
		int r_ = call;     \
		exec_failed(&x_);  \
		r_;                \
	})

PL_EXPORT int execve(const char *p, char *const argv[], char *const envp[])
{
	return PL_EXEC(PL_REAL(execve)(p, argv, envp));
}

PL_EXPORT int execv(const char *p, char *const argv[])
{
	return PL_EXEC(PL_REAL(execv)(p, argv));
}

PL_EXPORT int execvp(const char *f, char *const argv[])
{
	return PL_EXEC(PL_REAL(execvp)(f, argv));
}

PL_EXPORT int execvpe(const char *f, char *const argv[], char *const envp[])
{
	return PL_EXEC(PL_REAL(execvpe)(f, argv, envp));
}

PL_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	return PL_EXEC(PL_REAL(fexecve)(fd, argv, envp));
}

/* execl, execle, execlp: the argument list into an array on the stack
 * (no allocation: exec is async-signal-safe in a forked child). */
#define PL_COLLECT(arg0, ap, argv, n, after)                       \
	size_t n = 1;                                               \
	va_start(ap, arg0);                                         \
	while (va_arg(ap, const char *))                            \
		n++;                                                \
	va_end(ap);                                                 \
	char *argv[n + 1];                                          \
	argv[0] = (char *)arg0;                                     \
	va_start(ap, arg0);                                         \
	for (size_t i_ = 1; i_ <= n; i_++)                          \
		argv[i_] = va_arg(ap, char *);                      \
	after;                                                      \
	va_end(ap)

PL_EXPORT int execl(const char *p, const char *arg0, ...)
{
	va_list ap;
	PL_COLLECT(arg0, ap, argv, n, (void)0);
	return execv(p, argv);
}

PL_EXPORT int execlp(const char *f, const char *arg0, ...)
{
	va_list ap;
	PL_COLLECT(arg0, ap, argv, n, (void)0);
	return execvp(f, argv);
}

PL_EXPORT int execle(const char *p, const char *arg0, ...)
{
	va_list ap;
	char *const *envp;
	PL_COLLECT(arg0, ap, argv, n, envp = va_arg(ap, char *const *));
	return execve(p, argv, envp);
}
