/*
 * init.c: the preload library's constructor (start tracing as GOTRACE_*
 * say), the refusal of setuid/setgid programs, the trace descriptor kept
 * safe from programs that close every descriptor, and the exit paths.
 * May call: preload.h, the public API, src/cpuprof/sampler.h (the
 * sampler's descriptors).
 */
#define _GNU_SOURCE
#include "preload.h"
#include "core/outfd.h"
#include "cpuprof/sampler.h"
#include "stacks/symlines.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

__thread int pl_state __attribute__((tls_model("initial-exec")));
int pl_trace_fd = -1;

pid_t pl_pid;
bool pl_crash_signals;

/* The exit handlers that run after ours (the library's own, which
 * finishes the trace, and those the program registered before main) run
 * untraced: the library's stop must not trace its own reads and waits. */
static void pl_at_exit(void)
{
	pl_state = PL_OFF;
}

/* Open GOTRACE_OUT ourselves (rather than gotrace_start_from_env) so that
 * the descriptor is close-on-exec (an exec'd child starts its own trace,
 * or none) and sits high, out of the way of programs that dup2 onto low
 * numbers; the close wrappers below keep it open. */
static void pl_start(void)
{
	gotrace_options opt;
	char path[PATH_MAX];
	int r = gotrace_options_from_env(&opt, path, sizeof path);
	if (r == 1)
		return; /* GOTRACE_OUT unset: nothing to do */
	if (r < 0) {
		fprintf(stderr, "gotrace: tracing off: %s\n", gotrace_last_error());
		return;
	}
	/* Frames in libc get no source lines (stacks/symlines.h): the cost
	 * of libc6-dbg's DWARF is per process, the lines are not the
	 * program's. */
	gt_symlines_no_libc = true;
	/* A thread's creation carries its creator's stack unless the
	 * program's environment chose the classes (threads.c). */
	const char *st = getenv("GOTRACE_STACKS");
	if (!st || !*st)
		opt.event_stacks |= GOTRACE_STACK_GOROUTINE;
	/* Every thread the program creates registers at its start
	 * (threads.c), so the per-thread sources see them all: take the most
	 * accurate source unless the environment chose one. */
	const char *cs = getenv("GOTRACE_CPU");
	if (!cs || !*cs)
		opt.cpu_source = GOTRACE_CPU_AUTO;
	int fd = -1;
	if (opt.flight_max_bytes != 0) {
		/* GOTRACE_FLIGHT=1: a recorder; GOTRACE_OUT is the file its
		 * signal and crash dumps write (the library opens it then). */
		opt.flight_path = path;
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0) {
			fprintf(stderr, "gotrace: tracing off: cannot open %s: %s\n", path, strerror(errno));
			return;
		}
		int high = fcntl(fd, F_DUPFD_CLOEXEC, 512);
		if (high >= 0) {
			PL_REAL(close)(fd);
			fd = high;
		}
	}
	pl_trace_fd = fd;
	pl_signals_before();
	r = fd >= 0 ? gotrace_start_fd(fd, &opt) : gotrace_start_flight(&opt);
	if (r != 0) {
		fprintf(stderr, "gotrace: tracing off: %s\n", gotrace_last_error());
		pl_trace_fd = -1;
		if (fd >= 0)
			PL_REAL(close)(fd);
		return;
	}
	pl_crash_signals = !(opt.crash_flags & GOTRACE_CRASH_NO_SIGNALS);
	pl_signals_start();
	if (opt.cpu_hz > 0)
		pl_prof_unblock_start();
	/* Without %p every exec'd child would truncate this file: only the
	 * first process is traced, and its children do not see GOTRACE_OUT. */
	const char *out = getenv("GOTRACE_OUT");
	if (out && !strstr(out, "%p"))
		unsetenv("GOTRACE_OUT");
	atexit(pl_at_exit);
}

/* Priority 200 like gotrace-autostart.o: after the C runtime's own
 * constructors, before the program's default-priority ones. */
__attribute__((constructor(200))) static void pl_init(void)
{
	int e = errno;
	pl_resolve();
	if (getauxval(AT_SECURE)) {
		if (getenv("GOTRACE_OUT"))
			fprintf(stderr, "gotrace: refusing to trace a setuid/setgid program\n");
		errno = e;
		return;
	}
	pl_pid = getpid();
	/* Busy while starting: the start creates the library's threads
	 * (and liburcu's), which must stay untraced. */
	pl_state = PL_BUSY;
	pl_start();
	pl_state = PL_TRACED;
	errno = e;
}

/* The library's own descriptors while tracing: the trace's, and the CPU
 * sampler's perf events (one per sampled thread). */
static bool pl_own_fd(int fd)
{
	return fd >= 0 && GOTRACE_ON_() &&
	       (fd == __atomic_load_n(&pl_trace_fd, __ATOMIC_RELAXED) || gt_cpuprof_fd_is_ours(fd));
}

/* The lowest of them in [lo, hi], or -1. */
static int pl_next_own_fd(unsigned lo, unsigned hi)
{
	if (!GOTRACE_ON_())
		return -1;
	int p = gt_cpuprof_next_fd(lo, hi), t = __atomic_load_n(&pl_trace_fd, __ATOMIC_RELAXED);
	if (t >= 0 && (unsigned)t >= lo && (unsigned)t <= hi && (p < 0 || t < p))
		return t;
	return p;
}

/* close(one of them) while tracing: ignored (returns 0), so that a daemon
 * that closes every descriptor keeps a complete trace and its threads'
 * samples, and never gets a number reused under the library's writes. */
PL_EXPORT int close(int fd)
{
	if (__builtin_expect(pl_own_fd(fd), 0))
		return 0;
	return PL_REAL(close)(fd);
}

/* dup2 or dup3 onto one of them while tracing: the program gets the
 * number it asked for, and what was there moves out of its way first,
 * with the library's every later use: a perf event (gt_cpuprof_fd_move),
 * so that its thread keeps its samples; the trace (gt_out_fd_move, which
 * returns once the flusher no longer writes the old number), so that the
 * trace stays whole and the program's file gets none of its bytes.  If
 * the call then fails (a bad old descriptor), it closed nothing: our copy
 * at the old number goes, which leaves that number as free as the program
 * believes it is. */
static int pl_dup_onto(int old, int new, int fl, bool three)
{
	bool moved = false;
	if (old != new && pl_own_fd(new)) {
		if (new == __atomic_load_n(&pl_trace_fd, __ATOMIC_RELAXED)) {
			int n = gt_out_fd_move(new, 512);
			if (n >= 0) {
				__atomic_store_n(&pl_trace_fd, n, __ATOMIC_RELAXED);
				moved = true;
			}
		} else {
			moved = gt_cpuprof_fd_move(new);
		}
	}
	int r = three ? PL_REAL(dup3)(old, new, fl) : PL_REAL(dup2)(old, new);
	if (moved && r < 0) {
		int e = errno;
		PL_REAL(close)(new);
		errno = e;
	}
	return r;
}

PL_EXPORT int dup2(int old, int new) { return pl_dup_onto(old, new, 0, false); }
PL_EXPORT int dup3(int old, int new, int fl) { return pl_dup_onto(old, new, fl, true); }

/* close_range and closefrom close the spans between them. */
PL_EXPORT int close_range(unsigned int lo, unsigned int hi, int fl)
{
	for (;;) {
		int o = lo <= hi ? pl_next_own_fd(lo, hi) : -1;
		if (o < 0) /* (lo > hi on the first pass: the kernel's EINVAL) */
			return PL_REAL(close_range)(lo, hi, fl);
		if ((unsigned)o > lo) {
			int r = PL_REAL(close_range)(lo, (unsigned)o - 1, fl);
			if (r != 0)
				return r;
		}
		if ((unsigned)o == hi)
			return 0;
		lo = (unsigned)o + 1;
	}
}

PL_EXPORT void closefrom(int lo)
{
	if (lo < 0)
		lo = 0;
	for (;;) {
		int o = pl_next_own_fd((unsigned)lo, ~0u);
		if (o < 0) {
			PL_REAL(closefrom)(lo);
			return;
		}
		if (o > lo)
			(void)PL_REAL(close_range)((unsigned)lo, (unsigned)o - 1, 0);
		lo = o + 1;
	}
}

/* Pipes made while the library runs on a program's thread (PL_BUSY):
 * libunwind's memory-validation pipe, which it makes lazily during a stack
 * capture and makes again when the program closed it (a daemon's
 * closefrom), keeps both ends open for good.  Made at the lowest free
 * numbers it would take the 0, 1, 2 that a daemon's next opens expect;
 * moved above the program's range (512, as the trace's descriptor) they
 * leave the program's numbering alone. */
static void pl_pipe_high(int fds[2], int fl)
{
	for (int i = 0; i < 2; i++) {
		int h = fcntl(fds[i], (fl & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 512);
		if (h >= 0) {
			PL_REAL(close)(fds[i]);
			fds[i] = h;
		}
	}
}

PL_EXPORT int pipe2(int fds[2], int fl)
{
	int r = PL_REAL(pipe2)(fds, fl);
	if (r == 0 && pl_state == PL_BUSY)
		pl_pipe_high(fds, fl);
	return r;
}

PL_EXPORT int pipe(int fds[2])
{
	int r = PL_REAL(pipe)(fds);
	if (r == 0 && pl_state == PL_BUSY)
		pl_pipe_high(fds, 0);
	return r;
}

/* _exit skips atexit: finish the trace with the crash flush, which is
 * async-signal-safe like _exit itself (signal handlers call _exit). */
static void pl_flush_for_exit(void)
{
	if (GOTRACE_ON_() && getpid() == pl_pid) {
		int e = errno;
		pl_state = PL_OFF;
		(void)gotrace_crash_flush();
		errno = e;
	}
}

PL_EXPORT void _exit(int st)
{
	pl_flush_for_exit();
	PL_REAL(_exit)(st);
	__builtin_unreachable();
}

PL_EXPORT void _Exit(int st)
{
	pl_flush_for_exit();
	PL_REAL(_Exit)(st);
	__builtin_unreachable();
}
