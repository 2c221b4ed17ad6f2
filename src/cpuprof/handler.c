/*
 * handler.c: the SIGPROF handler.
 * May call: cpubuf.c, src/core (clock, thread record: reads), src/seqlock;
 * async-signal-safe only.
 *
 * Async-signal safety.  Everything reachable from cp_handler is listed
 * here: atomics on static or TLS data, gt_now() (rdtsc or the vDSO
 * clock_gettime), syscall(SYS_gettid), process_vm_readv (a system call),
 * plain loads and stores to the thread's own stack and to the CPU buffer.
 * No allocation, no lock, no stdio, no dynamic-loader call: in particular
 * no unwinding library runs here (libunwind's and libgcc's local unwinders
 * find unwind tables through dl_iterate_phdr, which takes the loader lock: a
 * signal landing inside dlopen would deadlock).  The stack is only copied
 * here and unwound later by the flusher (unwind.c).  errno is saved and
 * restored.  TLS is initial-exec (no lazy allocation on first access).
 *
 * Which generation.  A registered thread takes its own seqlock and reads
 * gt_session.gen inside it, exactly like an emit: the advancer waits for the
 * seqlock before draining that generation.  If the signal interrupted the
 * thread's own critical section, gt_seq_enter returns false: the seqlock is
 * already odd and stays odd until we return, so the advancer is waiting for
 * this thread anyway; we read gt_session.gen and must not release the seqlock.
 * (That section may have read the previous generation and stamp its event
 * after our sample: the drain sorts that out by time, see take_sample.)
 *
 * A thread that has no record in the current session (never seen, or not
 * yet registered, or exiting) is not in the registry the advancer waits on.
 * It uses the in-flight counters instead:
 *     do { g = gen; inflight[g&1]++; } while (gen != g && (inflight[g&1]--, 1));
 * all seq_cst.  The advancer stores gen = g+1, executes a full fence
 * (gt_seq_sync), and gt_cpuprof_quiesce(g) waits until inflight[g&1] == 0.
 * Store-buffering argument: either the writer's re-read saw g+1 (it retries
 * and writes into g+1), or its increment preceded the advancer's store in
 * the single total order of seq_cst operations, so the quiesce load sees it
 * and waits for the decrement, which is a release that the quiesce's
 * acquire pairs with.  Such samples are attributed to m = gettid(), no P
 * (^0) and no goroutine (0).
 *
 * The library's own threads (the flusher, the line resolver) are such
 * threads.  Each unblocks SIGPROF while our profiler runs on setitimer
 * (gt_cpuprof_own_thread, sampler.h): the signal is
 * process-directed and the kernel gives it to the running thread when that
 * thread does not block it, but to another thread -- one blocked in
 * gotrace_flush, or asleep -- when it does, which would put our CPU time on
 * a stack that was not running.  Their samples carry their own M (visible
 * in the trace as threads with no P and no goroutine, their stacks in
 * libgotrace) and are counted in gotrace_stats.cpu_samples_tracer.
 *
 * Stacks.  With the thread's stack bounds known (recorded at registration,
 * pthread_getattr_np, outside the handler), the handler walks the frame
 * pointer chain (each address checked to lie in [sp, stack top) and 8-byte
 * aligned, strictly increasing, at most CP_MAX_FRAMES) and copies up to
 * CP_STACK_COPY bytes from sp, never past the stack top.  Without bounds
 * (or with sp outside them, e.g. on an alternate signal stack) it copies
 * with process_vm_readv on its own process, which fails cleanly (EFAULT at
 * the first unmapped page) instead of faulting; the frame-pointer walk is
 * then done offline over the copy.
 */
#include "cpuprof.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

struct cp_ctl cp_ctl;
__thread struct cp_tls cp_self __attribute__((tls_model("initial-exec")));

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* Reading other frames' stack slots (redzones included) is the point. */
#define CP_NOSAN __attribute__((no_sanitize_address, no_sanitize_thread, noinline))
#else
#define CP_NOSAN __attribute__((noinline))
#endif

static bool source_accepts(int source, const siginfo_t *si)
{
	switch (source) {
	case GOTRACE_CPU_SETITIMER:
		return si->si_code == SI_KERNEL;
	case GOTRACE_CPU_THREAD_TIMER:
		return si->si_code == SI_TIMER;
	case GOTRACE_CPU_PERF:
		/* fasync delivery with F_SETSIG: si_code is the poll band; or
		 * the CPU timer of a thread past the descriptor cap (timers.c,
		 * perf_fd_cap). */
		return (si->si_code >= POLL_IN && si->si_code <= POLL_HUP) || si->si_code == SI_TIMER;
	}
	return false;
}

static void get_regs(const ucontext_t *uc, uint64_t *r)
{
#if defined(__x86_64__)
	const greg_t *g = uc->uc_mcontext.gregs;
	static const int map[CP_NREGS] = {
		REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP, REG_RSP,
		REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP,
	};
	for (int i = 0; i < CP_NREGS; i++)
		r[i] = (uint64_t)g[map[i]];
#elif defined(__aarch64__)
	for (int i = 0; i < CP_NREGS; i++)
		r[i] = 0;
	r[CP_REG_PC] = uc->uc_mcontext.pc;
	r[CP_REG_SP] = uc->uc_mcontext.sp;
	r[CP_REG_FP] = uc->uc_mcontext.regs[29];
#else
	(void)uc;
	for (int i = 0; i < CP_NREGS; i++)
		r[i] = 0;
#endif
}

/* Frame-pointer walk within [lo, hi).  out[i] = {frame address, return
 * address}.  x86-64 and arm64 frame records are both {saved fp, return
 * address} at the frame pointer. */
CP_NOSAN static int fp_walk(uint64_t fp, uint64_t lo, uint64_t hi, uint64_t (*out)[2], int max)
{
	int n = 0;
	while (n < max) {
		if (fp < lo || hi < 16 || fp > hi - 16 || (fp & 7) != 0)
			break;
		const volatile uint64_t *f = (const volatile uint64_t *)(uintptr_t)fp;
		uint64_t next = f[0], ret = f[1];
		if (ret < 4096)
			break;
		out[n][0] = fp;
		out[n][1] = ret;
		n++;
		if (next <= fp)
			break;
		fp = next;
	}
	return n;
}

/* Word copy that no compiler turns into an (intercepted) memcpy call. */
CP_NOSAN static void copy_words(uint64_t *dst, uint64_t src, size_t words)
{
	const volatile uint64_t *s = (const volatile uint64_t *)(uintptr_t)src;
	for (size_t i = 0; i < words; i++)
		dst[i] = s[i];
}

/* Copy [src, src+len) without knowing whether it is mapped.  Returns the
 * bytes copied (a prefix, page by page). */
static size_t copy_safe(void *dst, uint64_t src, size_t len)
{
	struct iovec local = { dst, len }, remote[4];
	int n = 0;
	uint64_t a = src, end = src + len;
	while (a < end && n < 4) {
		uint64_t next = (a & ~(uint64_t)4095) + 4096;
		if (next > end || n == 3)
			next = end;
		remote[n].iov_base = (void *)(uintptr_t)a;
		remote[n].iov_len = (size_t)(next - a);
		n++;
		a = next;
	}
	ssize_t got = process_vm_readv(getpid(), &local, 1, remote, (unsigned long)n, 0);
	return got > 0 ? (size_t)got : 0;
}

/* Enter generation g as a thread without a current registration. */
static uint64_t inflight_enter(void)
{
	for (;;) {
		uint64_t g = __atomic_load_n(&gt_session.gen, __ATOMIC_SEQ_CST);
		if (g == 0)
			return 0;
		__atomic_add_fetch(&cp_ctl.inflight[g & 1], 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&gt_session.gen, __ATOMIC_SEQ_CST) == g)
			return g;
		__atomic_sub_fetch(&cp_ctl.inflight[g & 1], 1, __ATOMIC_RELEASE);
	}
}

/*
 * Weight.  Each sample stands for a number of timer periods of CPU time, so
 * that the samples in the trace add up to rate x CPU time even when the
 * kernel delivers fewer signals than periods elapsed.  POSIX CPU timers and
 * setitimer are checked at the scheduler tick: a timer due between ticks
 * fires late, and periods that fall due while a signal is pending are merged.
 *  - thread timers (also under PERF, past the descriptor cap): the kernel
 *    counts the merged periods (si_overrun): the weight is 1 + si_overrun;
 *  - setitimer: no overrun count, so the handler reads the process CPU
 *    clock and claims every whole period boundary passed since the last
 *    claim (CAS on cp_ctl.next_cpu_ns) -- but no more periods than this
 *    thread has used since its own last claim (cp_self.cpu_done).  The
 *    signal is process-directed: the kernel sends it to any thread that
 *    does not block it, and sends it from task work that runs when the
 *    ticked thread next returns to user mode -- a tick that lands as a
 *    thread enters a 1 s sleep is delivered when the sleep ends.  Claimed
 *    on the process clock alone, such a signal put every period the other
 *    threads used meanwhile (the library's own included) on the sleeper's
 *    stack.  A signal that finds no unclaimed boundary, or lands on a
 *    thread that used less than a period since its last claim, writes
 *    nothing (counted in cp_ctl.merged): the periods stay for the threads
 *    that used them;
 *  - perf events: one signal per period of the event's clock, which is the
 *    scheduler's wall time on the CPU, hypervisor steal included (the
 *    thread CPU clock leaves steal out: PARAVIRT_TIME_ACCOUNTING).  On a VM
 *    whose host takes time from the vCPU, weight 1 per signal counted 1-7%
 *    more periods than the thread's CPU time (tests/cpuprof/test_api.c,
 *    auto_source).  So the weight is this thread's whole periods of CPU
 *    time since its last claim, as for setitimer without the process-wide
 *    part: a signal after a stolen stretch finds less than a period and
 *    writes nothing (cp_ctl.merged); the remainder stays for the next.
 *    A user-only perf clock (cp_ctl.perf_user) keeps weight 1: it counts
 *    user time, which the thread CPU clock cannot tell from system time.
 * The drain writes a sample of weight k as k CPUSample events with the same
 * time, thread and stack (the trace format has no weight field).
 */
static uint64_t cpu_clock_ns(clockid_t id)
{
	struct timespec ts;
	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* This thread's claimed CPU time, 0 if none in this session: a value
 * from an earlier session (cp_self.epoch behind cp_ctl.epoch) is stale,
 * the CPU the thread used between sessions is not ours. */
static uint64_t claimed_cpu(void)
{
	uint64_t epoch = __atomic_load_n(&cp_ctl.epoch, __ATOMIC_RELAXED);
	if (cp_self.epoch != epoch) {
		cp_self.epoch = epoch;
		cp_self.cpu_done = 0;
	}
	return cp_self.cpu_done;
}

static uint32_t cap_weight(uint64_t k)
{
	return k < 10000 ? (uint32_t)k : 10000;
}

static uint32_t weigh(int source, const siginfo_t *si)
{
	if (source == GOTRACE_CPU_THREAD_TIMER || si->si_code == SI_TIMER) {
		int ov = si->si_overrun;
		return ov > 0 ? (uint32_t)(ov < 10000 ? ov + 1 : 10000) : 1;
	}
	if (source == GOTRACE_CPU_PERF && __atomic_load_n(&cp_ctl.perf_user, __ATOMIC_RELAXED))
		return 1;
	uint64_t period = cp_ctl.period_ns, k;
	uint64_t tc = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	if (tc == 0)
		return 1;
	/* This thread's whole periods since its last claim (its first sample
	 * counts one: its CPU before the profiler started is not ours). */
	uint64_t done = claimed_cpu();
	if (done == 0 || done > tc)
		done = tc > period ? tc - period : 0;
	uint64_t kt = (tc - done) / period;
	if (kt == 0)
		return 0;
	if (source != GOTRACE_CPU_SETITIMER) {
		cp_self.cpu_done = done + kt * period;
		return cap_weight(kt);
	}
	uint64_t c = cpu_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	if (c == 0)
		return 1;
	uint64_t e = __atomic_load_n(&cp_ctl.next_cpu_ns, __ATOMIC_RELAXED);
	do {
		if (c < e)
			return 0;
		k = (c - e) / period + 1;
		if (k > kt)
			k = kt;
	} while (!__atomic_compare_exchange_n(&cp_ctl.next_cpu_ns, &e, e + k * period, true,
	                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	cp_self.cpu_done = done + k * period;
	return cap_weight(k);
}

/* The sample's timestamp, taken only once the generation load it belongs
 * to has completed.  rdtsc is not ordered after earlier loads (Intel SDM:
 * it may execute before them), so without the fence the counter can be
 * read before the generation, i.e. before the bump the load observed.
 * lfence waits for every earlier instruction to complete locally (on AMD,
 * since the Spectre mitigations, too).  On arm64 "dsb ish" waits for the
 * load, and gt_arch_cycles's isb keeps the counter read after it.  The
 * vDSO clock (no invariant TSC) orders its own counter read; the fence is
 * harmless there. */
static inline uint64_t stamp_after_loads(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("lfence" ::: "memory");
#elif defined(__aarch64__)
	__asm__ __volatile__("dsb ish" ::: "memory");
#endif
	return gt_now();
}


/* The goroutine the interrupted thread runs: an explicit goroutine it runs
 * (cur, meaningful in states XG, SYSCALL and BLOCKED: core.h), else its
 * own.  The handler runs on the thread that writes both, so it reads a
 * value that thread stored (or the one before, at the instant of a
 * switch: the sample then goes to the goroutine just stopped). */
static uint64_t running_g(struct gt_thread *t)
{
	int st = __atomic_load_n(&t->state, __ATOMIC_RELAXED);
	if (st == GT_TS_XG || st == GT_TS_SYSCALL || st == GT_TS_BLOCKED) {
		struct gt_gor *cur = __atomic_load_n(&t->cur, __ATOMIC_RELAXED);
		uint64_t id = cur ? __atomic_load_n(&cur->id, __ATOMIC_RELAXED) : 0;
		if (id != 0)
			return id;
	}
	return t->goid;
}

/*
 * Order of the steps, and why.  The stack walk and the record's size come
 * first (they do not depend on the generation).  Then, under the seqlock or
 * the in-flight counter: read the generation g, reserve the record in g's
 * buffer, read the clock (stamp_after_loads), write the record's size,
 * generation and time and seal them (hseal), fill the rest, seal it all.
 *
 * Reserving before reading the clock gives the drain of g-1 (cpuprof.c,
 * relocation) its completeness argument: a record of g stamped before some
 * time T was reserved before T (the CAS is a locked instruction, complete
 * and globally visible before the lfence lets rdtsc run), so a snapshot of
 * the buffer's head taken after T covers it.
 *
 * The generation a sample is taken in and its time need not agree with
 * the other threads' events: a thread that read g-1 in its critical section
 * can be stopped before it reads the clock -- preempted, or interrupted by
 * this very handler, which then runs nested in that section (gt_seq_enter
 * returns false) and may read g already -- and write an event of g-1
 * stamped after samples of g that other threads (or this handler) took.
 * Those samples are moved to g-1 by the drain of g-1, which knows the last
 * event time of g-1 once every thread left it; see gt_cpuprof_flush.
 */
static void take_sample(const ucontext_t *uc, uint32_t weight)
{
	uint64_t regs[CP_NREGS];
	get_regs(uc, regs);

	uint64_t sp = regs[CP_REG_SP] & ~(uint64_t)7;
	uint64_t lo = cp_self.lo, hi = cp_self.hi;
	bool bounds = hi != 0 && sp >= lo && sp < hi;
	uint64_t fps[CP_MAX_FRAMES][2];
	int nfp = 0;
	uint32_t copy = CP_STACK_COPY;
	if (bounds) {
		nfp = fp_walk(regs[CP_REG_FP], sp, hi, fps, CP_MAX_FRAMES);
		if (hi - sp < copy)
			copy = (uint32_t)(hi - sp);
	}
	copy &= ~7u;
	uint32_t size = (uint32_t)(sizeof(struct cp_rec) + (size_t)nfp * 16 + copy);

	struct gt_thread *t = gt_tls_self;
	bool registered = t != NULL && gt_tls_session == __atomic_load_n(&gt_session.session, __ATOMIC_RELAXED);
	bool took = false;
	uint64_t g;
	if (registered) {
		took = gt_seq_enter(&t->seq);
		g = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE);
	} else {
		g = inflight_enter();
	}
	if (g == 0)
		goto out;
	uint64_t m = registered ? t->tid : (uint64_t)syscall(SYS_gettid);
	struct cp_buf *b = &cp_bufs[g & 1];
	/* Published with g (the flusher resets it before the advancer's
	 * release store of the generation that reuses the parity). */
	uint64_t fill = __atomic_load_n(&b->fill, __ATOMIC_RELAXED);
	struct cp_rec *r = cp_buf_reserve(b, size);
	uint64_t now = stamp_after_loads();
	if (!r) {
		cp_buf_note_lost(b, now, m);
		goto out;
	}
	r->size = size;
	r->gen = g;
	r->time = now;
	__atomic_store_n(&r->hseal, fill, __ATOMIC_RELEASE);
	r->nfp = (uint16_t)nfp;
	r->flags = bounds ? CP_F_BOUNDS : CP_F_COPY_SAFE;
	r->weight = weight;
	r->m = m;
	if (!registered && cp_self.tracer)
		__atomic_add_fetch(&cp_ctl.tracer, weight, __ATOMIC_RELAXED);
	r->p = registered ? t->p : GT_NO_ID;
	r->g = registered ? running_g(t) : 0;
	for (int i = 0; i < CP_NREGS; i++)
		r->regs[i] = regs[i];
	r->regs[CP_REG_SP] = sp;
	uint64_t *tail = (uint64_t *)(void *)(r + 1);
	for (int i = 0; i < nfp; i++) {
		tail[2 * i] = fps[i][0];
		tail[2 * i + 1] = fps[i][1];
	}
	uint64_t *stk = tail + 2 * nfp;
	if (bounds) {
		copy_words(stk, sp, copy / 8);
		r->stack_len = copy;
	} else {
		r->stack_len = (uint32_t)copy_safe(stk, sp, copy) & ~7u;
	}
	__atomic_store_n(&r->seal, fill, __ATOMIC_RELEASE);
out:
	if (registered) {
		if (took)
			gt_seq_leave(&t->seq);
	} else if (g != 0) {
		__atomic_sub_fetch(&cp_ctl.inflight[g & 1], 1, __ATOMIC_RELEASE);
	}
}

void cp_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	int saved = errno;
	__atomic_add_fetch(&cp_ctl.running, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&cp_ctl.active, __ATOMIC_SEQ_CST)) {
		int source = __atomic_load_n(&cp_ctl.source, __ATOMIC_RELAXED);
		if (!source_accepts(source, si)) {
			__atomic_add_fetch(&cp_ctl.stray, 1, __ATOMIC_RELAXED);
		} else {
			uint32_t w = weigh(source, si);
			if (w)
				take_sample(uc, w);
			else
				__atomic_add_fetch(&cp_ctl.merged, 1, __ATOMIC_RELAXED);
		}
	}
	__atomic_sub_fetch(&cp_ctl.running, 1, __ATOMIC_RELEASE);
	errno = saved;
}
