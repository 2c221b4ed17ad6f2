/*
 * cpuprof.c: CPU profiling sessions (start, stop, statistics) and the drain
 * of a generation's CPU buffer into its CPUSamples batches.
 *
 * SIGPROF ownership.  Start refuses (-GOTRACE_EBUSY, with a reason in
 * gotrace_last_error) if the program already has a SIGPROF handler: two
 * profilers cannot share the signal's timers meaningfully, and chaining
 * would hand the other profiler our samples' signals.  A previous action of
 * SIG_DFL or SIG_IGN, and a previous ITIMER_PROF, are saved and restored by
 * stop.  Stop disarms every timer of ours, waits until no handler of ours
 * runs, sets SIG_IGN (which discards a SIGPROF still pending on any thread,
 * so that restoring SIG_DFL cannot kill the process) and then restores the
 * previous action and interval timer.
 *
 * Lost samples.  A sample that does not fit in its generation's buffer is
 * dropped and counted per generation (cp_buf.lost).  The drain reports the
 * count in the trace as that many CPU samples whose only frame is
 * gotrace_cpu_samples_lost_buffer_full (as pprof reports lost samples under
 * a pseudo-function), stamped with the time of the generation's last loss,
 * and through gotrace_get_stats().cpu_samples_lost.  (A UserLog needs an M
 * holding a P and a G, which the flusher is not.)
 */
#include "cpuprof.h"

#include <errno.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Start lock held (or the atfork child). */
static struct sigaction old_sa;
static bool installed;
static bool atfork_registered;

__attribute__((noinline, used)) void gotrace_cpu_samples_lost_buffer_full(void)
{
	__asm__ __volatile__("" ::: "memory");
}

/* Start lock held.  The text goes to gotrace_last_error(): into the start
 * error, and into gt.err, which stop copies over the start error (start's
 * failure path runs gotrace_stop, and a fallback note should survive the
 * session too). */
__attribute__((format(printf, 1, 2))) static void cp_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(gt.err, sizeof gt.err, fmt, ap);
	va_end(ap);
	gt_set_start_error("%s", gt.err);
}

/* ----------------------------------------------------------- registration */

static void record_bounds(void)
{
	if (cp_self.hi != 0)
		return;
	pthread_attr_t a;
	void *addr;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return;
	if (pthread_attr_getstack(&a, &addr, &size) == 0 && addr && size) {
		/* lo before hi: a handler on this thread sees hi == 0 (bounds
		 * unknown) until both are in place. */
		__atomic_store_n(&cp_self.lo, (uintptr_t)addr, __ATOMIC_RELAXED);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		__atomic_store_n(&cp_self.hi, (uintptr_t)addr + size, __ATOMIC_RELAXED);
	}
	pthread_attr_destroy(&a);
}

void gt_cpuprof_thread_start(struct gt_thread *t)
{
	(void)t;
	record_bounds();
	cp_timers_thread_start();
}

void gt_cpuprof_thread_exit(struct gt_thread *t)
{
	(void)t;
	cp_timers_thread_exit((pid_t)syscall(SYS_gettid));
}

/* ------------------------------------------------------------ start, stop */

static void atfork_child(void)
{
	/* The child inherits our handler but none of our timers. */
	__atomic_store_n(&cp.active, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cp.running, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		cp.inflight[i] = 0;
		cp_bufs[i].head = 0;
		cp_bufs[i].lost = 0;
	}
	if (installed) {
		sigaction(SIGPROF, &old_sa, NULL);
		installed = false;
	}
	cp_timers_atfork_child();
}

static uint64_t buffer_bytes(const gotrace_options *o)
{
	const char *env = getenv("GOTRACE_CPU_BUFFER_BYTES");
	if (env && *env) {
		uint64_t v = strtoull(env, NULL, 0);
		return v < CP_MIN_BUF ? CP_MIN_BUF : v;
	}
	uint64_t v = o->max_buffered / 4;
	if (v < (4u << 20))
		v = 4u << 20;
	if (v > (256u << 20))
		v = 256u << 20;
	return v;
}

int gt_cpuprof_start(const gotrace_options *o)
{
	__atomic_store_n(&cp.samples, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cp.lost, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cp.stray, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cp.merged, 0, __ATOMIC_RELAXED);
	if (o->cpu_hz == 0)
		return 0;
	if (o->cpu_hz < 0 || o->cpu_hz > 10000) {
		cp_msg("cpu_hz %d out of range (1..10000, 0 for no CPU profiling)", o->cpu_hz);
		return -GOTRACE_EINVAL;
	}
	if (o->cpu_source < GOTRACE_CPU_SETITIMER || o->cpu_source > GOTRACE_CPU_PERF) {
		cp_msg("cpu_source %d is not a GOTRACE_CPU_* value", o->cpu_source);
		return -GOTRACE_EINVAL;
	}
	struct sigaction cur;
	if (sigaction(SIGPROF, NULL, &cur) != 0) {
		cp_msg("sigaction(SIGPROF): %s", strerror(errno));
		return -GOTRACE_ESYS;
	}
	if (cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN) {
		cp_msg("cpu profiling: the program already has a SIGPROF handler "
		                   "(another profiler?); gotrace does not replace or chain it: "
		                   "remove it or start with cpu_hz = 0");
		return -GOTRACE_EBUSY;
	}
	if (cp_buf_alloc(buffer_bytes(o)) != 0) {
		cp_msg("cpu profiling: cannot map the sample buffers: %s", strerror(errno));
		return -GOTRACE_ENOMEM;
	}
	if (!atfork_registered) {
		pthread_atfork(cp_timers_atfork_prepare, cp_timers_atfork_parent, atfork_child);
		atfork_registered = true;
	}
	record_bounds();
	for (int i = 0; i < 2; i++)
		__atomic_store_n(&cp.inflight[i], 0, __ATOMIC_RELAXED);

	char note[512];
	cp_timers_start(o->cpu_source, o->cpu_hz, note, sizeof note);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = cp_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPROF, &sa, &old_sa) != 0) {
		cp_timers_restore();
		cp_msg("sigaction(SIGPROF): %s", strerror(errno));
		return -GOTRACE_ESYS;
	}
	installed = true;
	__atomic_store_n(&cp.active, 1, __ATOMIC_SEQ_CST);
	int e = cp_timers_arm();
	if (e != 0) {
		gt_cpuprof_stop();
		cp_msg("cpu profiling: arming the timer failed: %s", strerror(e));
		return -GOTRACE_ESYS;
	}
	if (note[0])
		cp_msg("%s", note);
	return 0;
}

void gt_cpuprof_stop(void)
{
	if (!installed)
		return;
	cp_timers_stop();
	__atomic_store_n(&cp.active, 0, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&cp.running, __ATOMIC_SEQ_CST) != 0)
		sched_yield();
	struct sigaction ign;
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPROF, &ign, NULL); /* discards pending SIGPROFs */
	sigaction(SIGPROF, &old_sa, NULL);
	cp_timers_restore();
	installed = false;
}

void gt_cpuprof_stats(uint64_t *samples, uint64_t *lost)
{
	*samples = __atomic_load_n(&cp.samples, __ATOMIC_RELAXED);
	*lost = __atomic_load_n(&cp.lost, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ drain */

void gt_cpuprof_quiesce(uint64_t gen)
{
	for (int spins = 0; __atomic_load_n(&cp.inflight[gen & 1], __ATOMIC_SEQ_CST) != 0; spins++) {
		if (spins < 100) {
			gt_arch_relax();
		} else if (spins < 200) {
			sched_yield();
		} else {
			struct timespec d = { 0, 20000 };
			nanosleep(&d, NULL);
		}
	}
}

/* The CPUSamples batches being written (flusher-private). */
struct swriter {
	uint64_t gen, now;
	struct gt_chunk *c;
	uint64_t n;
};

#define SAMPLE_MAX (1 + 5 * GT_UVARINT_MAX)

static void put_sample(struct swriter *w, uint64_t time, uint64_t m, uint64_t p, uint64_t g,
                       uint64_t stack)
{
	if (w->c && w->c->len + SAMPLE_MAX > w->c->cap) {
		gt_queue_push(w->c);
		w->c = NULL;
	}
	if (!w->c) {
		w->c = gt_chunk_new(32768, 0);
		if (!w->c)
			return;
		gt_chunk_open(w->c, w->gen, GT_NO_ID, w->now);
		w->c->data[w->c->len++] = GT_EV_CPU_SAMPLES;
	}
	uint8_t *q = w->c->data + w->c->len;
	*q++ = GT_EV_CPU_SAMPLE;
	q = gt_put_uvarint(q, time);
	q = gt_put_uvarint(q, m);
	q = gt_put_uvarint(q, p);
	q = gt_put_uvarint(q, g);
	q = gt_put_uvarint(q, stack);
	w->c->len = (uint32_t)(q - w->c->data);
	w->n++;
}

void gt_cpuprof_flush(uint64_t gen, uint64_t now)
{
	struct cp_buf *b = &cp_bufs[gen & 1];
	if (!__atomic_load_n(&b->mem, __ATOMIC_ACQUIRE))
		return;
	/* Every writer of gen has finished (seqlock wait + quiesce). */
	uint64_t used = __atomic_load_n(&b->head, __ATOMIC_ACQUIRE);
	uint64_t lost = __atomic_exchange_n(&b->lost, 0, __ATOMIC_ACQ_REL);
	if (used == 0 && lost == 0)
		return;
	cp_unwind_refresh();
	struct swriter w = { .gen = gen, .now = now };
	static struct cp_unwound uw; /* flusher-private */
	uint64_t off = 0;
	while (off + sizeof(struct cp_rec) <= used) {
		const struct cp_rec *r = (const struct cp_rec *)(const void *)(b->mem + off);
		if (r->size < sizeof *r || r->size > used - off)
			break; /* cannot happen: every reservation is written */
		off += r->size;
		if (r->gen != gen)
			continue;
		cp_unwind(r, &uw);
		uint64_t id = gt_stack_intern(gen, uw.pcs, uw.n);
		for (uint32_t k = 0; k < (r->weight ? r->weight : 1); k++)
			put_sample(&w, r->time, r->m, r->p, r->g, id);
	}
	uint64_t real = w.n;
	if (lost) {
		uint64_t pc = (uint64_t)(uintptr_t)gotrace_cpu_samples_lost_buffer_full;
		uint64_t id = gt_stack_intern(gen, &pc, 1);
		uint64_t ts = __atomic_load_n(&b->lost_ts, __ATOMIC_RELAXED);
		uint64_t m = __atomic_load_n(&b->lost_m, __ATOMIC_RELAXED);
		for (uint64_t i = 0; i < lost; i++)
			put_sample(&w, ts, m, GT_NO_ID, 0, id);
	}
	if (w.c)
		gt_queue_push(w.c);
	cp_buf_reset(b);
	__atomic_add_fetch(&cp.samples, real, __ATOMIC_RELAXED);
	__atomic_add_fetch(&cp.lost, lost, __ATOMIC_RELAXED);
}
