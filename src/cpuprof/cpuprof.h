/*
 * cpuprof.h: internals of the CPU sampler (src/cpuprof).
 * May call: src/stacks, src/core (declarations only; the sampler never calls
 * src/emit or src/session).
 *
 * Data flow.  A SIGPROF handler (handler.c) runs on the interrupted thread,
 * reads the trace generation g under that thread's seqlock (or, on a thread
 * the library has never seen, under the in-flight counter of g's parity) and
 * appends one fixed-layout record -- timestamp, M, P, G, the registers of the
 * interrupted context, a bounded frame-pointer walk and a bounded copy of the
 * raw stack above the interrupted stack pointer -- to the CPU buffer of g's
 * parity (cpubuf.c).  Nothing else happens in the handler: no allocation, no
 * lock, no stdio, no loader call.
 *
 * When the advancer has bumped the generation to g+1 and every thread has
 * left g (advance.c), gt_cpuprof_quiesce(g) waits for the unregistered
 * writers of g, and gt_cpuprof_flush(g) -- flusher context -- unwinds every
 * record of g offline with DWARF CFI (unwind.c: the records carry the raw
 * stack, so code built without frame pointers unwinds correctly), interns
 * the stacks in g's stack table and writes the CPUSamples batches of g.  The
 * stack table and then the string table of g are written afterwards by the
 * advancer.  Samples land in the generation they were taken in, except
 * where the generations' events overlap in time (a thread stamping its last
 * event of g after samples of g+1 were taken): the drain of g then places
 * the samples by time around g's last event (cpuprof.c, relocation).  A
 * crash flush drains the crash generation from the fatal-signal handler
 * (gt_cpuprof_crash_drain, unsymbolised frames).
 *
 * Timers (timers.c): setitimer(ITIMER_PROF), timer_create per thread on the
 * thread's CPU clock, or a perf-event CPU clock per thread.
 */
#ifndef GT_CPUPROF_H
#define GT_CPUPROF_H

#include "../core/core.h"
#include "../stacks/stacks.h"

#include <signal.h>
#include <sys/types.h>

#define CP_MAX_FRAMES 64        /* frames kept per sample */
#define CP_STACK_COPY 8192u     /* raw stack bytes copied per sample, at most */
#define CP_MIN_BUF (64u << 10)  /* smallest CPU buffer (env override) */

/* Registers saved per sample, DWARF numbering on x86-64 (0-15: rax rdx rcx
 * rbx rsi rdi rbp rsp r8-r15, 16: rip).  Other architectures fill PC, SP
 * and FP only. */
#define CP_NREGS 17
#define CP_REG_FP 6
#define CP_REG_SP 7
#define CP_REG_PC 16

/* Record flags. */
#define CP_F_BOUNDS 1   /* stack bounds known: FP walk done, copy exact */
#define CP_F_COPY_SAFE 2 /* stack copied by process_vm_readv (bounds unknown) */

/*
 * One sample in a CPU buffer.  8-byte aligned; followed by nfp pairs
 * (frame address, return address) of the handler's frame-pointer walk and
 * by stack_len bytes copied from address regs[CP_REG_SP].
 * Written by exactly one signal handler into space it reserved, in two
 * steps, each closed by a release store of the buffer's fill number: hseal
 * once size, gen and time are written (right after the reservation), seal
 * once the whole record is (the handler's last write).  Stale bytes of an
 * earlier fill of the buffer never match the current fill number.
 * Read by the flusher after the generation's writers provably finished, or
 * earlier (the relocation scan of gt_cpuprof_flush, the crash drain) only
 * as far as sealed (acquire).  The flusher may afterwards rewrite gen of a
 * sealed record (relocated into the previous generation).
 */
struct cp_rec {
	uint32_t size;      /* bytes of the whole record, multiple of 8 */
	uint16_t nfp;
	uint16_t flags;
	uint32_t stack_len;
	uint32_t weight;    /* timer periods this sample stands for (>= 1) */
	uint64_t gen, time, m, p, g;
	uint64_t hseal, seal;
	uint64_t regs[CP_NREGS];
};

/*
 * The two generation-indexed CPU buffers (cpubuf.c).
 *
 * cp_bufs[g & 1] receives the samples of generation g.
 *  - mem, cap: set by gt_cpuprof_start before the handler is installed
 *    (published by sigaction, a system call); never freed (reused by later
 *    sessions).
 *  - head: bytes reserved.  Writers (signal handlers of generation g, any
 *    thread) reserve with a CAS loop that never passes cap: lock-free,
 *    never blocking; the flusher resets it to 0 after draining g, before
 *    the generation g+2 that reuses the parity can begin (ordered by the
 *    release store of gt_session.gen and the writers' acquire load of it).
 *  - lost: samples dropped because the buffer was full (atomic add by
 *    writers; exchanged to 0 by the drain).  lost_ts: time of the latest
 *    drop (relaxed store by writers, read by the drain).
 *  - fill: which filling of the buffer this is, never reused: incremented
 *    by the flusher when it resets head (cp_buf_reset), published to the
 *    writers of the next generation of this parity like head; writers seal
 *    their records with it.
 * The drain of g reads [0, head) only after gt_cpuprof_quiesce(g) and the
 * advancer's seqlock wait, i.e. when no writer of g can still run.
 */
struct cp_buf {
	uint8_t *mem;
	uint64_t cap;
	uint64_t head;
	uint64_t lost;
	uint64_t lost_ts;
	uint64_t lost_m;
	uint64_t fill;
};
extern struct cp_buf cp_bufs[2];

/*
 * Handler-visible configuration and counters (handler.c).
 *  - source, period_ns, perf_user, epoch: written by start/fallback before
 *    `active` is set, read by handlers after they see active (seq_cst): no
 *    handler runs the sampling path before they are final.
 *  - active: set by start after the buffers exist; cleared by stop before
 *    it waits for `running` to drain.
 *  - running: handlers currently executing (so stop can restore the
 *    previous handler knowing none of ours is mid-way).
 *  - inflight[2]: writers on threads without a current registration,
 *    per generation parity (see handler.c for the protocol).
 *  - stray: SIGPROFs that were not from our source (ignored).
 */
struct cp_ctl {
	int active;
	int source;
	uint64_t running;
	uint64_t inflight[2];
	uint64_t stray;
	uint64_t period_ns;    /* 1e9 / hz (start, before active) */
	uint64_t next_cpu_ns;  /* setitimer: process CPU time of the next period
	                        * boundary not yet accounted (CAS by handlers) */
	uint64_t merged;       /* setitimer and perf signals whose periods were
	                        * already accounted for (no sample written) */
	int perf_user;         /* perf events count user time only (start) */
	uint64_t epoch;        /* sessions started (start, before active): tells
	                        * a thread's claims of this session (cp_tls) */
	uint64_t tracer;       /* samples taken on the library's own threads
	                        * (handlers, atomic add of the weight) */
	uint64_t samples;      /* CPU samples written into the trace (flusher) */
	uint64_t lost;         /* samples lost, total (flusher) */
};
extern struct cp_ctl cp_ctl;

/* Per-thread stack bounds, TLS of each thread: written by the thread itself
 * outside any handler (registration hook, or gt_cpuprof_own_thread on the
 * library's own threads), read by handlers on the same thread.  hi == 0:
 * unknown.  tracer: the thread is the library's own (the flusher), set by
 * itself before it first unblocks SIGPROF.  cpu_done: setitimer and perf,
 * the thread's CPU time already claimed by its samples in session `epoch`
 * (handler.c, weigh); both written and read by SIGPROF handlers on this
 * thread only (SIGPROF is blocked while one runs); 0: none yet. */
struct cp_tls {
	uintptr_t lo, hi;
	int tracer;
	uint64_t cpu_done;
	uint64_t epoch;
};
extern __thread struct cp_tls cp_self __attribute__((tls_model("initial-exec")));

/* cpubuf.c */
GT_HIDDEN int cp_buf_alloc(uint64_t cap);
GT_HIDDEN struct cp_rec *cp_buf_reserve(struct cp_buf *b, uint32_t size);
GT_HIDDEN void cp_buf_note_lost(struct cp_buf *b, uint64_t ts, uint64_t m);
GT_HIDDEN void cp_buf_reset(struct cp_buf *b);

/* handler.c */
GT_HIDDEN void cp_handler(int sig, siginfo_t *si, void *uc);

/* timers.c (start lock or cp_lock held as stated there) */
GT_HIDDEN int cp_timers_start(int source, int hz, char *note, size_t note_len);
GT_HIDDEN int cp_timers_arm(void);
GT_HIDDEN void cp_timers_stop(void);
GT_HIDDEN void cp_timers_restore(void);
GT_HIDDEN void cp_timers_thread_start(void);
GT_HIDDEN void cp_timers_thread_exit(pid_t tid);
GT_HIDDEN bool cp_timers_exec_pause(void);
GT_HIDDEN void cp_timers_exec_resume(void);
GT_HIDDEN void cp_timers_atfork_prepare(void);
GT_HIDDEN void cp_timers_atfork_parent(void);
GT_HIDDEN void cp_timers_atfork_child(void);

/* unwind.c (flusher context) */
struct cp_unwound {
	uint64_t pcs[CP_MAX_FRAMES]; /* leaf first; callers already minus 1 */
	int n;
	int how;                     /* CP_UW_* of the deepest step */
};
enum { CP_UW_NONE = 0, CP_UW_CFI = 1, CP_UW_FP = 2, CP_UW_STITCH = 4 };
GT_HIDDEN void cp_unwind(const struct cp_rec *r, struct cp_unwound *out);
GT_HIDDEN void cp_unwind_refresh(void);
GT_HIDDEN void cp_unwind_reset(void);
/* AS-safe (crash path, flusher parked): the module holding pc in the table
 * the flusher prepared at its last cp_unwind_refresh.  *name and *path point
 * into that table; false if no module is known for pc. */
GT_HIDDEN bool cp_module_of(uint64_t pc, const char **name, const char **path, uint64_t *base);

/* The frame shown for samples lost because a CPU buffer was full. */
GT_HIDDEN void gotrace_cpu_samples_lost_buffer_full(void);

#include "sampler.h"

#endif
