/*
 * cpuprof.c: CPU profiling sessions (start, stop, statistics) and the drain
 * of a generation's CPU buffer into its CPUSamples batches.
 * May call: the other cpuprof files, src/stacks (stack ids, cached symbols),
 * src/core (chunks, the queue, the registry walk).  Called only through
 * sampler.h.
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
#include "../core/registry.h"

#include <errno.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* old_sa, installed: written by start (start lock held, before the
 * handler is installed), by stop and by the preload's SIGPROF requests
 * (gt_cpuprof_program_sigaction) under stop_lock, and by the atfork child
 * (one thread).  installed is also read without the lock (atomic load) by
 * gt_cpuprof_program_sigaction's fast path: false there means the program's
 * request goes straight to the kernel. */
static struct sigaction old_sa;
static bool installed;
static bool atfork_registered;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noinline, used)) void gotrace_cpu_samples_lost_buffer_full(void)
{
	__asm__ __volatile__("" ::: "memory");
}

/* Start lock held.  The text goes to gotrace_last_error(): into the start
 * error, and into gt_session.err, which stop copies over the start error (start's
 * failure path runs gotrace_stop, and a fallback note should survive the
 * session too). */
__attribute__((format(printf, 1, 2))) static void cp_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(gt_session.err, sizeof gt_session.err, fmt, ap);
	va_end(ap);
	gt_set_start_error("%s", gt_session.err);
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

/* The library's own threads (see gt_cpuprof_own_thread). */
#define OWN_MAX 32
static pid_t own_tids[OWN_MAX];

static void atfork_child(void)
{
	/* The child inherits our handler but none of our timers. */
	__atomic_store_n(&cp_ctl.active, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cp_ctl.running, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		cp_ctl.inflight[i] = 0;
		cp_bufs[i].head = 0;
		cp_bufs[i].lost = 0;
		cp_bufs[i].fill++; /* the parent's records never look sealed */
	}
	pthread_mutex_init(&stop_lock, NULL); /* a parent thread may have held it */
	for (int i = 0; i < OWN_MAX; i++) /* the parent's threads */
		__atomic_store_n(&own_tids[i], 0, __ATOMIC_RELAXED);
	if (installed) {
		sigaction(SIGPROF, &old_sa, NULL);
		__atomic_store_n(&installed, false, __ATOMIC_RELEASE);
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
	__atomic_store_n(&cp_ctl.samples, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cp_ctl.lost, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cp_ctl.stray, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cp_ctl.merged, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cp_ctl.tracer, 0, __ATOMIC_RELAXED);
	if (o->cpu_hz == 0)
		return 0;
	if (o->cpu_hz < 0 || o->cpu_hz > 10000) {
		cp_msg("cpu_hz %d out of range (1..10000, 0 for no CPU profiling)", o->cpu_hz);
		return -GOTRACE_EINVAL;
	}
	if (o->cpu_source < GOTRACE_CPU_SETITIMER || o->cpu_source > GOTRACE_CPU_AUTO) {
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
		__atomic_store_n(&cp_ctl.inflight[i], 0, __ATOMIC_RELAXED);

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
	__atomic_store_n(&installed, true, __ATOMIC_RELEASE);
	__atomic_store_n(&cp_ctl.active, 1, __ATOMIC_SEQ_CST);
	int e = cp_timers_arm();
	if (e != 0) {
		gt_cpuprof_stop();
		cp_msg("cpu profiling: arming the timer failed: %s", strerror(e));
		return -GOTRACE_ESYS;
	}
	if (note[0]) /* a fallback is not an error: gotrace_start_notes */
		snprintf(gt_session.note, sizeof gt_session.note, "%s", note);
	return 0;
}

/* stop_lock held. */
static void stop_locked(void)
{
	if (!installed)
		return;
	cp_timers_stop();
	__atomic_store_n(&cp_ctl.active, 0, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&cp_ctl.running, __ATOMIC_SEQ_CST) != 0)
		sched_yield();
	struct sigaction ign;
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPROF, &ign, NULL); /* discards pending SIGPROFs */
	sigaction(SIGPROF, &old_sa, NULL);
	cp_timers_restore();
	__atomic_store_n(&installed, false, __ATOMIC_RELEASE);
}

void gt_cpuprof_stop(void)
{
	pthread_mutex_lock(&stop_lock);
	stop_locked();
	pthread_mutex_unlock(&stop_lock);
}

int gt_cpuprof_program_sigaction(const struct sigaction *act, struct sigaction *old)
{
	if (!__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
		return -1;
	pthread_mutex_lock(&stop_lock);
	int r = -1;
	if (installed) {
		if (old)
			*old = old_sa;
		r = 0;
		if (act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
			/* The program's own profiler: ours gives way. */
			stop_locked();
			sigaction(SIGPROF, act, NULL);
			r = 1;
		} else if (act) {
			old_sa = *act; /* what stop will restore */
		}
	}
	pthread_mutex_unlock(&stop_lock);
	return r;
}

bool gt_cpuprof_installed(void)
{
	return __atomic_load_n(&installed, __ATOMIC_ACQUIRE);
}

bool gt_cpuprof_exec_begin(void)
{
	if (!__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&stop_lock);
	bool paused = installed && cp_timers_exec_pause();
	pthread_mutex_unlock(&stop_lock);
	return paused;
}

void gt_cpuprof_exec_failed(void)
{
	pthread_mutex_lock(&stop_lock);
	if (installed)
		cp_timers_exec_resume();
	pthread_mutex_unlock(&stop_lock);
}

/* Owner-private: whether this (library-owned) thread unblocked SIGPROF. */
static __thread int own_unblocked __attribute__((tls_model("initial-exec")));

/*
 * The library's own threads by kernel thread id, for the per-thread
 * sources' start scan (timers.c, arm_all_threads), which must not arm
 * them: their signal masks alone do not tell, since a thread that kept
 * SIGPROF unblocked for a setitimer session keeps it until its next hook
 * call (liburcu's call_rcu thread calls it only when it has callbacks; a
 * scan in a later perf session gave it a perf event of the program's
 * budget).  Each such thread takes a slot at its first own_thread call
 * (CAS from 0) and frees it from its pthread key's destructor; the scan
 * reads the slots (acquire).  A thread past OWN_MAX slots is told by its
 * mask only, as before.  (own_tids: defined above, cleared in a child.)
 */
static pthread_key_t own_key;
static pthread_once_t own_once = PTHREAD_ONCE_INIT;
static __thread int own_listed __attribute__((tls_model("initial-exec")));

static void own_exit(void *slot)
{
	__atomic_store_n(&own_tids[(intptr_t)slot - 1], 0, __ATOMIC_RELEASE);
}

static void own_key_init(void)
{
	(void)pthread_key_create(&own_key, own_exit);
}

static void own_list(void)
{
	own_listed = 1;
	pthread_once(&own_once, own_key_init);
	pid_t me = (pid_t)syscall(SYS_gettid);
	for (intptr_t i = 0; i < OWN_MAX; i++) {
		pid_t z = 0;
		if (__atomic_compare_exchange_n(&own_tids[i], &z, me, false, __ATOMIC_RELEASE,
		                                __ATOMIC_RELAXED)) {
			if (pthread_setspecific(own_key, (void *)(i + 1)) != 0)
				__atomic_store_n(&own_tids[i], 0, __ATOMIC_RELEASE);
			return;
		}
	}
}

bool gt_cpuprof_is_own_tid(pid_t tid)
{
	for (int i = 0; i < OWN_MAX; i++)
		if (__atomic_load_n(&own_tids[i], __ATOMIC_ACQUIRE) == tid)
			return true;
	return false;
}

void gt_cpuprof_own_thread(void)
{
	if (!own_listed)
		own_list();
	/* Only setitimer's process-directed signal needs it.  With a
	 * per-thread source our threads keep SIGPROF blocked, which is also
	 * how arm_all_threads (timers.c) tells them from the program's: a
	 * flusher that had unblocked it before the scan got a perf event or
	 * a timer of the program's budget (seen in CI: 6 timers for 5
	 * threads in cpuprof_test_api's perf_fd_cap). */
	int want = __atomic_load_n(&cp_ctl.active, __ATOMIC_ACQUIRE) != 0 &&
	           __atomic_load_n(&cp_ctl.source, __ATOMIC_RELAXED) == GOTRACE_CPU_SETITIMER;
	if (want == own_unblocked)
		return;
	if (want && !cp_self.tracer) {
		record_bounds(); /* the handler's bounded walk on our stack */
		__atomic_store_n(&cp_self.tracer, 1, __ATOMIC_RELAXED);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	}
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGPROF);
	pthread_sigmask(want ? SIG_UNBLOCK : SIG_BLOCK, &s, NULL);
	own_unblocked = want;
}

uint64_t gt_cpuprof_tracer_samples(void)
{
	return __atomic_load_n(&cp_ctl.tracer, __ATOMIC_RELAXED);
}

void gt_cpuprof_stats(uint64_t *samples, uint64_t *lost)
{
	*samples = __atomic_load_n(&cp_ctl.samples, __ATOMIC_RELAXED);
	*lost = __atomic_load_n(&cp_ctl.lost, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ drain */

void gt_cpuprof_quiesce(uint64_t gen)
{
	for (int spins = 0; __atomic_load_n(&cp_ctl.inflight[gen & 1], __ATOMIC_SEQ_CST) != 0; spins++) {
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

/* ------------------------------------------------------------ relocation */
/*
 * A sample belongs, by its time, among the events of its generation.  The
 * handler takes it in the generation g it reads and stamps it right after
 * (handler.c), but the threads' events of g-1 can still be stamped later:
 * a thread reads the generation at the start of its critical section and
 * the clock a little after, and anything that stops it in between -- a
 * preemption, or our own SIGPROF handler running nested there (under
 * ThreadSanitizer, which delivers signals at atomic operations, that is
 * right after the generation load, for as long as the handler takes) --
 * delays the stamp of its event of g-1 past the bump, by microseconds to
 * milliseconds.  A sample of g taken meanwhile, on that thread (nested) or
 * on another, would then lie before every event of g and before the last
 * event of g-1: Go's readers, which order generation after generation,
 * would show it late by the overlap.  Symmetrically, a handler stopped
 * between its generation load and its clock read can stamp a sample of g-1
 * after the last event of g-1, while g already has events.
 *
 * So the drain of g-1 (the advancer, once every thread has left g-1, and
 * before their chunks are collected) places samples by time around
 * E = the last event time of g-1: the latest of the threads' own events
 * (events_end) and of the advancer's (statuses of silent threads and
 * goroutines, the filler: all stamped at the time the advancer read just
 * before the bump, the drain's `now`, see gt_advance):
 *   - a sample of g-1 stamped after E is carried forward into g (copied
 *     into g's buffer, sealed; the drain of g writes it);
 *   - a sample of g stamped before E is moved back into g-1 (written now,
 *     marked as g-1 so that the drain of g skips it).
 * Then every sample of g-1 lies at or before E (the end of g-1's events),
 * and every sample of g at or after it (but for a full buffer of g, or the
 * bounded wait below): none falls outside the span that its generation
 * and its neighbour's events delimit, and Go's readers show each at its
 * own time.
 *
 * Completeness of the backward move: a record of g stamped before E was
 * reserved before E (handler.c reserves, then reads the clock), E is the
 * stamp of an event whose critical section ended before the advancer's
 * seqlock wait returned, so a load of g's head after that wait covers the
 * record.  It may still be being written: the scan waits for its seals
 * (bounded by CP_SEAL_WAIT_NS: a handler descheduled that long ends the
 * scan, and what it did not reach stays in g).
 *
 * Not done for the final generation (nothing follows) nor by the crash
 * drain (the crash generation is the last one).
 */
#define CP_SEAL_WAIT_NS 10000000ull

/* The time of the last event the threads wrote in gen in their own
 * critical sections: each thread's open event batch of gen holds its latest
 * event (a batch is handed off only when an event does not fit, and that
 * event opens the next batch); a thread that exited in gen without room for
 * its exit events owes them, stamped at its exit time (the advancer writes
 * them).  0 if none.  Advancer, after every thread
 * left gen and before their chunks are collected (the thread's release on
 * leaving, the advancer's acquire in its wait: the fields are final). */
static uint64_t events_end(uint64_t gen)
{
	uint64_t end = 0;
	struct gt_thread *t;
	rcu_read_lock();
	gt_reg_for_each(t, &gt_session.threads) {
		if (!gt_thread_current(t))
			continue;
		const struct gt_tbuf *tb = &t->tb[gen & 1];
		const struct gt_chunk *c = tb->ev;
		if (tb->gen == gen && c && c->gen == gen && c->len > c->hdr_len && c->last_ts > end)
			end = c->last_ts;
		if (__atomic_load_n(&t->state, __ATOMIC_ACQUIRE) == GT_TS_EXITED && t->exit_gen == gen &&
		    t->exit_ts > end)
			end = t->exit_ts;
	}
	rcu_read_unlock();
	return end;
}

/* Wait until *seal (a record's hseal or seal) holds fill; false after
 * CP_SEAL_WAIT_NS in all (*deadline carries the deadline over a scan). */
static bool wait_sealed(const uint64_t *seal, uint64_t fill, uint64_t *deadline)
{
	for (int spins = 0; __atomic_load_n(seal, __ATOMIC_ACQUIRE) != fill; spins++) {
		if (spins < 64) {
			gt_arch_relax();
			continue;
		}
		uint64_t t = gt_mono_ns();
		if (*deadline == 0)
			*deadline = t + CP_SEAL_WAIT_NS;
		else if (t > *deadline)
			return false;
		sched_yield();
	}
	return true;
}

/* Copy r into the buffer of generation next; false if it is full. */
static bool carry(const struct cp_rec *r, struct cp_buf *nb, uint64_t next)
{
	struct cp_rec *d = cp_buf_reserve(nb, r->size);
	if (!d)
		return false;
	uint64_t fill = __atomic_load_n(&nb->fill, __ATOMIC_RELAXED);
	memcpy(d, r, r->size);
	d->gen = next;
	__atomic_store_n(&d->hseal, fill, __ATOMIC_RELEASE);
	__atomic_store_n(&d->seal, fill, __ATOMIC_RELEASE);
	return true;
}

static void write_rec(struct swriter *w, const struct cp_rec *r, struct cp_unwound *uw)
{
	cp_unwind(r, uw);
	uint64_t id = gt_stack_intern(w->gen, uw->pcs, uw->n);
	for (uint32_t k = 0; k < (r->weight ? r->weight : 1); k++)
		put_sample(w, r->time, r->m, r->p, r->g, id);
}

void gt_cpuprof_flush(uint64_t gen, uint64_t now)
{
	struct cp_buf *b = &cp_bufs[gen & 1], *nb = &cp_bufs[(gen + 1) & 1];
	if (!__atomic_load_n(&b->mem, __ATOMIC_ACQUIRE))
		return;
	/* Every writer of gen has finished (seqlock wait + quiesce). */
	uint64_t used = __atomic_load_n(&b->head, __ATOMIC_ACQUIRE);
	uint64_t lost = __atomic_exchange_n(&b->lost, 0, __ATOMIC_ACQ_REL);
	/* Relocation (above): the next generation runs and gen had events.
	 * The head of gen+1 is loaded after the advancer's wait (the
	 * completeness argument); nothing to do, no registry walk, when both
	 * buffers are empty (CPU profiling off). */
	uint64_t end = 0, nused = 0, nfill = 0;
	bool next_runs = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE) == gen + 1 &&
	                 __atomic_load_n(&nb->mem, __ATOMIC_ACQUIRE);
	if (next_runs) {
		nused = __atomic_load_n(&nb->head, __ATOMIC_ACQUIRE);
		nfill = __atomic_load_n(&nb->fill, __ATOMIC_RELAXED);
	}
	if (used == 0 && lost == 0 && nused == 0)
		return;
	if (next_runs && (used != 0 || nused != 0)) {
		end = events_end(gen);
		if (now > end)
			end = now; /* the advancer's own events of gen */
	}
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
			continue; /* moved back into gen-1 by its drain */
		if (end && r->time > end && carry(r, nb, gen + 1))
			continue;
		write_rec(&w, r, &uw);
	}
	/* Only the records to move are waited for in full: for the others
	 * (nearly all) size and time suffice, sealed right after the
	 * reservation. */
	uint64_t deadline = 0;
	for (off = 0; off + sizeof(struct cp_rec) <= nused;) {
		struct cp_rec *r = (struct cp_rec *)(void *)(nb->mem + off);
		if (!wait_sealed(&r->hseal, nfill, &deadline))
			break;
		if (r->size < sizeof *r || r->size > nused - off)
			break; /* cannot happen */
		off += r->size;
		if (r->gen == gen + 1 && r->time < end) {
			if (!wait_sealed(&r->seal, nfill, &deadline))
				break;
			r->gen = gen;
			write_rec(&w, r, &uw);
		}
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
	__atomic_add_fetch(&cp_ctl.samples, real, __ATOMIC_RELAXED);
	__atomic_add_fetch(&cp_ctl.lost, lost, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ crash drain */
/*
 * gt_cpuprof_crash_drain: the CPU samples of the crash generation, written
 * from the fatal-signal handler (crash.c) before the generation's trace
 * buffers, as the flusher's advance does.  Async-signal-safe: atomics,
 * loads and stores on static memory and on the CPU buffer, the caller's
 * write function; no allocation, no lock, no stdio, no libdw, bounded
 * waits.
 *
 * Frames.  Symbolising needs libdw (allocation, file I/O, locks), and so
 * does the DWARF unwinder; neither may run here.  The stacks are instead
 *   - the interrupted PC, then the return addresses of the handler's own
 *     frame-pointer walk (or, when the stack bounds were unknown, a
 *     frame-pointer walk over the copied stack): code built without frame
 *     pointers shows its leaf and the frame-pointer callers only;
 *   - each PC named from data prepared before the crash: the flusher's
 *     symbol cache (gt_sym_peek: function, file, line of a PC it already
 *     symbolised), else the module table of the last unwind refresh
 *     (cp_module_of: "libfoo.so+0x1234", the module's path as file), else
 *     the bare PC ("0x7f...").
 * They go into a Stacks batch and a Strings batch of their own (fresh ids
 * from the generation's counters), so the crash path's other tables are
 * left alone.  Records a writer did not finish (the crashing thread inside
 * the handler, a thread the crash flush gave up waiting for) are not
 * sealed: they are skipped, or, if not even their size is (hseal), the walk
 * stops there.
 *
 * Crash-owner-private static state (one crash flush per process).
 */
#define CR_CAP 65536u
static uint8_t cr_smp_mem[sizeof(struct gt_chunk) + CR_CAP] __attribute__((aligned(16)));
static uint8_t cr_stk_mem[sizeof(struct gt_chunk) + CR_CAP] __attribute__((aligned(16)));
static uint8_t cr_str_mem[sizeof(struct gt_chunk) + CR_CAP] __attribute__((aligned(16)));
#define CR_PCS 4096 /* distinct PCs named, per crash */
static struct cr_pc {
	uint64_t pc, func, file, line; /* func == 0: free */
} cr_pcs[CR_PCS];
#define CR_STACKS 4096 /* distinct stacks, per crash */
static struct cr_stack {
	uint64_t hash, id; /* id == 0: free */
} cr_stacks[CR_STACKS];

struct crw {
	uint64_t gen, now;
	bool (*write)(struct gt_chunk *c);
	struct gt_chunk *smp, *stk, *str;
	bool ok;
};

static void cr_open(struct gt_chunk *c, uint64_t gen, uint64_t now, uint8_t marker)
{
	c->cap = c->limit = CR_CAP;
	gt_chunk_open(c, gen, GT_NO_ID, now);
	c->data[c->len++] = marker;
}

/* Room for need bytes in c, writing it out first if it is full. */
static uint8_t *cr_room(struct crw *x, struct gt_chunk *c, uint32_t need, uint8_t marker)
{
	if (c->len + need > c->cap) {
		if (!x->write(c))
			x->ok = false;
		cr_open(c, x->gen, x->now, marker);
	}
	return c->data + c->len;
}

static char *cr_hex(char *p, uint64_t v)
{
	static const char dig[] = "0123456789abcdef";
	*p++ = '0';
	*p++ = 'x';
	int sh = 60;
	while (sh > 0 && ((v >> sh) & 15) == 0)
		sh -= 4;
	for (; sh >= 0; sh -= 4)
		*p++ = dig[(v >> sh) & 15];
	*p = 0;
	return p;
}

/* A fresh string id of gen with its definition. */
static uint64_t cr_string(struct crw *x, const char *s)
{
	size_t len = strnlen(s, GT_MAX_STRING);
	uint8_t *p = cr_room(x, x->str, (uint32_t)(1 + 2 * GT_UVARINT_MAX + len), GT_EV_STRINGS);
	uint64_t id = 2 * __atomic_add_fetch(&gt_session.strtab[x->gen & 1].next_id, 1, __ATOMIC_RELAXED) - 1;
	*p++ = GT_EV_STRING;
	p = gt_put_uvarint(p, id);
	p = gt_put_uvarint(p, len);
	memcpy(p, s, len);
	x->str->len = (uint32_t)(p + len - x->str->data);
	return id;
}

/* The frame of pc: its strings defined once per crash. */
static const struct cr_pc *cr_frame(struct crw *x, uint64_t pc)
{
	static struct cr_pc spill; /* table full around pc's slot */
	size_t j = (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 52) & (CR_PCS - 1);
	struct cr_pc *slot = &spill;
	for (int k = 0; k < 16; k++, j = (j + 1) & (CR_PCS - 1)) {
		if (cr_pcs[j].func == 0) {
			slot = &cr_pcs[j];
			break;
		}
		if (cr_pcs[j].pc == pc)
			return &cr_pcs[j];
	}
	struct gt_frame fr;
	char buf[300];
	const char *name, *path;
	uint64_t base;
	if (!gt_sym_peek(pc, &fr)) {
		/* Line 1, not 0: newer Go validators reject a frame without a
		 * line as "missing information" (crash.c's entry frames do the
		 * same). */
		fr.file = "?";
		fr.line = 1;
		fr.func = buf;
		if (cp_module_of(pc, &name, &path, &base)) {
			size_t n = strnlen(name, 256);
			memcpy(buf, name, n);
			buf[n] = '+';
			cr_hex(buf + n + 1, pc - base);
			if (path[0])
				fr.file = path;
		} else {
			cr_hex(buf, pc);
		}
	}
	slot->pc = pc;
	slot->file = cr_string(x, fr.file);
	slot->line = fr.line ? fr.line : 1;
	slot->func = cr_string(x, fr.func); /* last: marks the slot used */
	return slot;
}

/* The PCs of r, leaf first, callers minus one (like cp_unwind's). */
static int cr_pcs_of(const struct cp_rec *r, uint64_t *pcs)
{
	int n = 0;
	pcs[n++] = r->regs[CP_REG_PC];
	const uint64_t *tail = (const uint64_t *)(const void *)(r + 1);
	if (r->nfp > 0) {
		for (int i = 0; i < r->nfp && n < CP_MAX_FRAMES; i++)
			if (tail[2 * i + 1] >= 4096)
				pcs[n++] = tail[2 * i + 1] - 1;
		return n;
	}
	/* Bounds were unknown: walk the frame records inside the copy. */
	const uint8_t *stk = (const uint8_t *)(tail + 2 * r->nfp);
	uint64_t sp = r->regs[CP_REG_SP], fp = r->regs[CP_REG_FP], len = r->stack_len;
	while (n < CP_MAX_FRAMES && fp >= sp && fp - sp + 16 <= len && (fp & 7) == 0) {
		uint64_t next, ret;
		memcpy(&next, stk + (fp - sp), 8);
		memcpy(&ret, stk + (fp - sp) + 8, 8);
		if (ret < 4096)
			break;
		pcs[n++] = ret - 1;
		if (next <= fp)
			break;
		fp = next;
	}
	return n;
}

/* The stack id of pcs in the crash generation, its Stack event written
 * once per crash (identical stacks share an id). */
static uint64_t cr_stack(struct crw *x, const uint64_t *pcs, int n)
{
	uint64_t h = gt_hash_pcs(pcs, n);
	/* A 64-bit hash stands for the PCs: a collision (2^-64 per pair)
	 * would only show one sample with another's stack. */
	size_t j = (size_t)(h >> 52) & (CR_STACKS - 1);
	struct cr_stack *slot = NULL;
	for (int k = 0; k < 16; k++, j = (j + 1) & (CR_STACKS - 1)) {
		if (cr_stacks[j].id == 0) {
			slot = &cr_stacks[j];
			break;
		}
		if (cr_stacks[j].hash == h)
			return cr_stacks[j].id;
	}
	uint64_t fr[CP_MAX_FRAMES][4];
	for (int i = 0; i < n; i++) {
		const struct cr_pc *f = cr_frame(x, pcs[i]);
		fr[i][0] = f->pc;
		fr[i][1] = f->func;
		fr[i][2] = f->file;
		fr[i][3] = f->line;
	}
	uint64_t id = gt_stack_id_new(x->gen);
	uint32_t need = (uint32_t)(1 + 2 * GT_UVARINT_MAX + (size_t)n * 4 * GT_UVARINT_MAX);
	uint8_t *p = cr_room(x, x->stk, need, GT_EV_STACKS);
	*p++ = GT_EV_STACK;
	p = gt_put_uvarint(p, id);
	p = gt_put_uvarint(p, (uint64_t)n);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 4; k++)
			p = gt_put_uvarint(p, fr[i][k]);
	x->stk->len = (uint32_t)(p - x->stk->data);
	if (slot) {
		slot->hash = h;
		slot->id = id;
	}
	return id;
}

static void cr_sample(struct crw *x, uint64_t time, uint64_t m, uint64_t p, uint64_t g, uint64_t stack)
{
	uint8_t *q = cr_room(x, x->smp, SAMPLE_MAX, GT_EV_CPU_SAMPLES);
	*q++ = GT_EV_CPU_SAMPLE;
	q = gt_put_uvarint(q, time);
	q = gt_put_uvarint(q, m);
	q = gt_put_uvarint(q, p);
	q = gt_put_uvarint(q, g);
	q = gt_put_uvarint(q, stack);
	x->smp->len = (uint32_t)(q - x->smp->data);
}

#define CR_INFLIGHT_WAIT_NS 100000000ull /* unregistered writers to finish */

bool gt_cpuprof_crash_drain(uint64_t gen, uint64_t now, bool (*write)(struct gt_chunk *c))
{
	struct cp_buf *b = &cp_bufs[gen & 1];
	if (!__atomic_load_n(&b->mem, __ATOMIC_ACQUIRE))
		return true;
	/* The registered writers of gen were waited for by the caller (their
	 * seqlocks); the others are counted in flight. */
	uint64_t end = gt_mono_ns() + CR_INFLIGHT_WAIT_NS;
	while (__atomic_load_n(&cp_ctl.inflight[gen & 1], __ATOMIC_SEQ_CST) != 0 && gt_mono_ns() < end) {
		struct timespec d = { 0, 100000 };
		nanosleep(&d, NULL);
	}
	uint64_t used = __atomic_load_n(&b->head, __ATOMIC_ACQUIRE);
	uint64_t lost = __atomic_exchange_n(&b->lost, 0, __ATOMIC_ACQ_REL);
	uint64_t fill = __atomic_load_n(&b->fill, __ATOMIC_RELAXED);
	if (used == 0 && lost == 0)
		return true;
	memset(cr_pcs, 0, sizeof cr_pcs);
	memset(cr_stacks, 0, sizeof cr_stacks);
	struct crw x = {
		.gen = gen, .now = now, .write = write, .ok = true,
		.smp = (struct gt_chunk *)(void *)cr_smp_mem,
		.stk = (struct gt_chunk *)(void *)cr_stk_mem,
		.str = (struct gt_chunk *)(void *)cr_str_mem,
	};
	cr_open(x.smp, gen, now, GT_EV_CPU_SAMPLES);
	cr_open(x.stk, gen, now, GT_EV_STACKS);
	cr_open(x.str, gen, now, GT_EV_STRINGS);
	uint64_t pcs[CP_MAX_FRAMES], deadline = 0;
	for (uint64_t off = 0; off + sizeof(struct cp_rec) <= used && x.ok;) {
		const struct cp_rec *r = (const struct cp_rec *)(const void *)(b->mem + off);
		if (!wait_sealed(&r->hseal, fill, &deadline) || r->size < sizeof *r ||
		    r->size > used - off)
			break;
		off += r->size;
		if (r->gen != gen || !wait_sealed(&r->seal, fill, &deadline))
			continue; /* moved back into gen-1, or never finished */
		uint64_t id = cr_stack(&x, pcs, cr_pcs_of(r, pcs));
		for (uint32_t k = 0; k < (r->weight ? r->weight : 1); k++)
			cr_sample(&x, r->time, r->m, r->p, r->g, id);
	}
	if (lost) {
		uint64_t pc = (uint64_t)(uintptr_t)gotrace_cpu_samples_lost_buffer_full;
		uint64_t id = cr_stack(&x, &pc, 1);
		uint64_t ts = __atomic_load_n(&b->lost_ts, __ATOMIC_RELAXED);
		uint64_t m = __atomic_load_n(&b->lost_m, __ATOMIC_RELAXED);
		for (uint64_t i = 0; i < lost; i++)
			cr_sample(&x, ts, m, GT_NO_ID, 0, id);
	}
	/* Strings and stacks before the samples that use them (any order
	 * is valid within a generation; this one reads naturally). */
	struct gt_chunk *out[3] = { x.str, x.stk, x.smp };
	for (int i = 0; i < 3 && x.ok; i++)
		if (out[i]->len > out[i]->hdr_len + 1 && !write(out[i]))
			x.ok = false;
	return x.ok;
}
