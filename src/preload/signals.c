/*
 * signals.c: the program's requests for SIGPROF, the signal of our CPU
 * sampler (GOTRACE_CPU_HZ > 0; without it nothing here changes anything),
 * and for the fatal signals (SIG_DFL while tracing: see below).
 * May call: preload.h, src/cpuprof/sampler.h (gt_cpuprof_program_sigaction).
 *
 * While our sampler runs (its handler installed, its timers armed):
 *   - the program sets SIGPROF to a handler of its own (sigaction,
 *     signal): it has its own profiler, which must see only its own
 *     signals.  Our sampling stops for the rest of the run (timers off,
 *     pending SIGPROFs discarded, the samples taken so far stay in the
 *     trace), one line goes to stderr ("gotrace: CPU sampling off: ..."),
 *     then the program's handler is installed.  Tracing goes on.
 *   - the program sets SIG_DFL or SIG_IGN, or asks what is set: answered
 *     from the disposition it last set (the one our stop restores), ours
 *     stays installed: a program with no handler and no timer of its own
 *     gets no SIGPROF either way (SIG_DFL installed for real would let our
 *     next sample kill it).
 *
 * The fatal signals (SIGSEGV SIGBUS SIGILL SIGFPE SIGABRT SIGTRAP, those
 * the session's crash handler takes unless GOTRACE_CRASH=nosignals): a
 * handler of the program's own replaces ours for real (it may recover, or
 * exit: exit and _exit finish the trace).  But SIG_DFL set while tracing
 * (what a crash reporter does before it re-raises or returns to the
 * faulting instruction) would let the process die without the crash
 * flush, leaving the trace without its last generation: pl_fatal takes
 * its place, which runs the crash flush and then dies of the signal by
 * its default action; queries answer SIG_DFL, as the program set it.
 *
 * Other signals, and SIGPROF when our sampler is off, go straight to the
 * real call.  (sigset, bsd_signal and sysv_signal are not interposed.)
 * While our sampler runs, the first request of a handler takes the
 * sampler's locks: a program that makes it from a signal handler
 * interrupting our own sampler's stop could wait; never otherwise.
 */
#define _GNU_SOURCE
#include "preload.h"

#include "cpuprof/sampler.h"

#include <string.h>
#include <sys/syscall.h>

static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP };
#define NFATAL (int)(sizeof fatal / sizeof fatal[0])

/* Per fatal signal: set while pl_fatal stands in for the program's
 * SIG_DFL; prog_act: the action the program passed (what queries
 * return).  Written by the sigaction wrapper (the bit after the real
 * call, release), read by queries (acquire) and by pl_fatal (which clears
 * it).  A program that changes one signal's action from two threads at
 * once races with itself already. */
static int stands_in[NFATAL];
static struct sigaction prog_act[NFATAL];

static int fatal_index(int sig)
{
	for (int i = 0; i < NFATAL; i++)
		if (fatal[i] == sig)
			return i;
	return -1;
}

/* In place of SIG_DFL: finish the trace (async-signal-safe crash flush),
 * then the default action.  A fault re-executes and dies on return; a
 * signal that was sent (kill, raise, abort) is sent again, pending until
 * we return (sa_mask blocks it here). */
static void pl_fatal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	int e = errno;
	if (GOTRACE_ON_() && getpid() == pl_pid) {
		pl_state = PL_OFF;
		(void)gotrace_crash_flush();
	}
	int i = fatal_index(sig);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	PL_REAL(sigaction)(sig, &dfl, NULL);
	if (i >= 0)
		__atomic_store_n(&stands_in[i], 0, __ATOMIC_RELEASE);
	if (si == NULL || si->si_code <= 0)
		syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
	errno = e;
}

/* sigaction on a fatal signal (index i). */
static int fatal_sigaction(int i, int sig, const struct sigaction *act, struct sigaction *old)
{
	int was = __atomic_load_n(&stands_in[i], __ATOMIC_ACQUIRE);
	struct sigaction prev = prog_act[i];
	int r;
	if (act && act->sa_handler == SIG_DFL && pl_crash_signals && GOTRACE_ON_() && getpid() == pl_pid) {
		prog_act[i] = *act;
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = pl_fatal;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigfillset(&sa.sa_mask);
		r = PL_REAL(sigaction)(sig, &sa, old);
		if (r == 0)
			__atomic_store_n(&stands_in[i], 1, __ATOMIC_RELEASE);
	} else {
		r = PL_REAL(sigaction)(sig, act, old);
		if (r == 0 && act)
			__atomic_store_n(&stands_in[i], 0, __ATOMIC_RELEASE);
	}
	if (r == 0 && was && old)
		*old = prev;
	return r;
}

PL_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (__builtin_expect(sig == SIGPROF, 0)) {
		int e = errno;
		int r = gt_cpuprof_program_sigaction(act, old);
		if (r == 1) {
			static const char m[] = "gotrace: CPU sampling off: the program installs its own "
			                        "SIGPROF handler\n";
			(void)!PL_REAL(write)(2, m, sizeof m - 1);
		}
		errno = e;
		if (r >= 0)
			return 0;
	}
	int i = fatal_index(sig);
	if (__builtin_expect(i >= 0, 0))
		return fatal_sigaction(i, sig, act, old);
	return PL_REAL(sigaction)(sig, act, old);
}

/* glibc's signal() (for SIGPROF and the fatal signals): BSD semantics (SA_RESTART, the signal blocked in its
 * handler). */
PL_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(sig != SIGPROF && fatal_index(sig) < 0, 1))
		return PL_REAL(signal)(sig, h);
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, sig);
	sa.sa_flags = SA_RESTART;
	if (sigaction(sig, &sa, &old) != 0)
		return SIG_ERR;
	return old.sa_handler;
}
