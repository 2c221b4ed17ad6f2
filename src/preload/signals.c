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
 * The fatal signals: those the session's crash handler takes (SIGSEGV
 * SIGBUS SIGILL SIGFPE SIGABRT SIGTRAP), and those whose default action
 * terminates the process (SIGHUP SIGINT SIGQUIT SIGTERM SIGPIPE SIGALRM
 * SIGUSR1 SIGUSR2 SIGXCPU SIGXFSZ SIGVTALRM: Ctrl-C, kill, `prog | head`),
 * unless GOTRACE_CRASH=nosignals.  Dying of one by its default action
 * skips every exit path, leaving the trace without its last generation
 * (unreadable if it was the first).  So wherever SIG_DFL would stand while
 * tracing -- at the start for the terminating ones whose action is SIG_DFL
 * then (an ignored one stays ignored), and whenever the program sets
 * SIG_DFL (a crash reporter before it re-raises) -- pl_fatal stands in:
 * it runs the crash flush, then dies of the signal by its default action.
 * Queries answer what the program set (SIG_DFL), and for the crash
 * signals, while the session's crash handler has them, what it replaced.  A handler of the
 * program's own replaces ours for real (it may recover, or exit: exit and
 * _exit finish the trace).  After the trace is finished pl_fatal is the
 * default action only.
 *
 * SIGPROF in the signal masks, while our sampler's handler is installed:
 * a thread that blocks SIGPROF (xz's workers block every signal) makes
 * the kernel give setitimer's process-directed signal for that thread's
 * CPU time to another thread, one asleep in a futex, and the sample shows
 * the sleeper's stack.  So pthread_sigmask and sigprocmask keep SIGPROF
 * deliverable, and keep the program's view of it per thread
 * (pl_prof_blocked: what old sets report).  A thread starts with its
 * creator's view (threads.c).  (Library threads call the real functions:
 * redefine.h.)
 *
 * Other signals, and SIGPROF when our sampler is off, go straight to the
 * real call.  (signal, bsd_signal, sysv_signal and sigset, for SIGPROF and
 * the fatal signals, go through the sigaction wrapper: prog_signal.)
 * While our sampler runs, the first request of a handler takes the
 * sampler's locks: a program that makes it from a signal handler
 * interrupting our own sampler's stop could wait; never otherwise.
 */
#define _GNU_SOURCE
#include "preload.h"

#include "cpuprof/sampler.h"

#include <string.h>
#include <sys/syscall.h>

static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP,
	                     SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGALRM,
	                     SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ, SIGVTALRM };
#define NFATAL (int)(sizeof fatal / sizeof fatal[0])
#define NCRASH 6 /* fatal[0..5]: the session's crash handler has them */

/* Per fatal signal: stands_in set while an action of ours (pl_fatal, the
 * session's crash handler) stands in for the program's; prog_act: the
 * program's (what queries return).  Written by the constructor
 * (pl_signals_before/start, one thread), by the sigaction wrapper (the bit
 * after the real call, release), read by queries (acquire) and by
 * pl_fatal (which clears it).  A program that changes one signal's
 * action from two threads at once races with itself already. */
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
	bool fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE;
	if (!fault || si == NULL || si->si_code <= 0)
		syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
	errno = e;
}

static int stand_in(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = pl_fatal;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	return PL_REAL(sigaction)(sig, &sa, NULL);
}

void pl_signals_before(void)
{
	for (int i = 0; i < NFATAL; i++)
		if (PL_REAL(sigaction)(fatal[i], NULL, &prog_act[i]) != 0)
			prog_act[i].sa_handler = SIG_ERR;
}

void pl_signals_start(void)
{
	if (!pl_crash_signals)
		return;
	for (int i = 0; i < NFATAL; i++) {
		struct sigaction cur;
		if (prog_act[i].sa_handler == SIG_ERR || PL_REAL(sigaction)(fatal[i], NULL, &cur) != 0)
			continue;
		if (i < NCRASH) {
			/* The session's crash handler (if it installed one) answers
			 * as what it replaced. */
			if (cur.sa_handler != prog_act[i].sa_handler)
				__atomic_store_n(&stands_in[i], 1, __ATOMIC_RELEASE);
			continue;
		}
		if ((cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
			continue;
		if (stand_in(fatal[i]) == 0)
			__atomic_store_n(&stands_in[i], 1, __ATOMIC_RELEASE);
	}
}

/* sigaction on a fatal signal (index i). */
static int fatal_sigaction(int i, int sig, const struct sigaction *act, struct sigaction *old)
{
	int was = __atomic_load_n(&stands_in[i], __ATOMIC_ACQUIRE);
	struct sigaction prev = prog_act[i];
	/* Only the traced process writes the table: a vfork child shares our
	 * memory, not our actions (a fork child has a copy; tracing is off
	 * there: its changes are the real ones). */
	bool mine = act && getpid() == pl_pid;
	int r;
	if (mine && act->sa_handler == SIG_DFL && pl_crash_signals && GOTRACE_ON_()) {
		prog_act[i] = *act;
		r = old ? PL_REAL(sigaction)(sig, NULL, old) : 0;
		if (r == 0)
			r = stand_in(sig);
		if (r == 0)
			__atomic_store_n(&stands_in[i], 1, __ATOMIC_RELEASE);
	} else {
		r = PL_REAL(sigaction)(sig, act, old);
		if (r == 0 && mine)
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

/* The other ways to set an action, for SIGPROF and the fatal signals:
 * through the sigaction wrapper above, with each one's semantics (glibc's
 * own versions call the kernel directly, which would leave our table
 * stale).  flags/self_mask: what that variant sets. */
static __sighandler_t prog_signal(int sig, __sighandler_t h, int flags, bool self_mask)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sigemptyset(&sa.sa_mask);
	if (self_mask)
		sigaddset(&sa.sa_mask, sig);
	sa.sa_flags = flags;
	if (sigaction(sig, &sa, &old) != 0)
		return SIG_ERR;
	return old.sa_handler;
}

static bool ours(int sig)
{
	return sig == SIGPROF || fatal_index(sig) >= 0;
}

/* signal() and bsd_signal(): BSD semantics (SA_RESTART, the signal
 * blocked in its handler). */
PL_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(!ours(sig), 1))
		return PL_REAL(signal)(sig, h);
	return prog_signal(sig, h, SA_RESTART, true);
}

PL_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(!ours(sig), 1))
		return PL_REAL(bsd_signal)(sig, h);
	return prog_signal(sig, h, SA_RESTART, true);
}

/* sysv_signal() (and __sysv_signal, what signal() is under strict
 * X/Open feature macros): System V semantics, the action reset to SIG_DFL
 * on delivery and the signal not blocked in its handler. */
PL_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(!ours(sig), 1))
		return PL_REAL(sysv_signal)(sig, h);
	return prog_signal(sig, h, SA_RESETHAND | SA_NODEFER, false);
}

PL_EXPORT __sighandler_t __sysv_signal(int sig, __sighandler_t h)
{
	if (__builtin_expect(!ours(sig), 1))
		return PL_REAL(__sysv_signal)(sig, h);
	return prog_signal(sig, h, SA_RESETHAND | SA_NODEFER, false);
}

/* sigset(): SIG_HOLD blocks the signal, leaving its action; any other
 * disposition is set (no flags, nothing blocked in the handler) and the
 * signal unblocked.  Returns SIG_HOLD if the signal was blocked before,
 * else the previous action. */
PL_EXPORT __sighandler_t sigset(int sig, __sighandler_t h)
{
	if (__builtin_expect(!ours(sig), 1))
		return PL_REAL(sigset)(sig, h);
	sigset_t one, was;
	sigemptyset(&one);
	if (sigaddset(&one, sig) != 0)
		return SIG_ERR;
	struct sigaction old;
	if (h == SIG_HOLD) {
		if (sigaction(sig, NULL, &old) != 0 || sigprocmask(SIG_BLOCK, &one, &was) != 0)
			return SIG_ERR;
	} else {
		__sighandler_t prev = prog_signal(sig, h, 0, false);
		if (prev == SIG_ERR || sigprocmask(SIG_UNBLOCK, &one, &was) != 0)
			return SIG_ERR;
		old.sa_handler = prev;
	}
	return sigismember(&was, sig) ? SIG_HOLD : old.sa_handler;
}

/* The program's view of SIGPROF in this thread's mask, while the sampler
 * runs (owner only; AS-safe: the wrappers below may run in handlers).
 * Only the program's own calls on its traced threads (PL_TRACED) are
 * changed: liburcu blocks every signal around its registry lock, which a
 * SIGPROF must not interrupt, and it runs PL_BUSY (inside our calls) or
 * on threads of its own (PL_OFF). */
__thread bool pl_prof_blocked __attribute__((tls_model("initial-exec")));

/* The mask call how/set with SIGPROF left deliverable: *prog gets the
 * program's resulting view; false if the call is passed through as is. */
static bool prof_kept(int how, const sigset_t *set, sigset_t *out, bool *prog)
{
	if (!set || !gt_cpuprof_installed() || pl_state != PL_TRACED)
		return false;
	switch (how) {
	case SIG_BLOCK: *prog = pl_prof_blocked || sigismember(set, SIGPROF) == 1; break;
	case SIG_UNBLOCK: *prog = pl_prof_blocked && sigismember(set, SIGPROF) != 1; break;
	case SIG_SETMASK: *prog = sigismember(set, SIGPROF) == 1; break;
	default: return false;
	}
	*out = *set;
	if (how != SIG_UNBLOCK)
		sigdelset(out, SIGPROF);
	return true;
}

/* pthread_sigmask and sigprocmask (real: the one to call). */
static int mask_call(int (*real)(int, const sigset_t *, sigset_t *), int how, const sigset_t *set,
                     sigset_t *old)
{
	sigset_t mine;
	bool prog, kept = prof_kept(how, set, &mine, &prog);
	bool was = pl_prof_blocked;
	int r = real(how, kept ? &mine : set, old);
	if (r == 0 && gt_cpuprof_installed() && pl_state == PL_TRACED) {
		if (old && was)
			sigaddset(old, SIGPROF);
		if (kept)
			pl_prof_blocked = prog;
	}
	return r;
}

PL_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	return mask_call(PL_REAL(pthread_sigmask), how, set, old);
}

PL_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	return mask_call(PL_REAL(sigprocmask), how, set, old);
}

void pl_prof_unblock_start(void)
{
	sigset_t one, old;
	sigemptyset(&one);
	sigaddset(&one, SIGPROF);
	if (PL_REAL(pthread_sigmask)(SIG_UNBLOCK, &one, &old) == 0 && sigismember(&old, SIGPROF) == 1)
		pl_prof_blocked = true; /* inherited blocked (exec): the program's view */
}
