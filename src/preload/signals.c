/*
 * signals.c: the program's requests for SIGPROF, the signal of our CPU
 * sampler (GOTRACE_CPU_HZ > 0; without it nothing here changes anything).
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
	return PL_REAL(sigaction)(sig, act, old);
}

/* glibc's signal(): BSD semantics (SA_RESTART, the signal blocked in its
 * handler). */
PL_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(sig != SIGPROF, 1))
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
