/*
 * session.c: start, stop, flush, the flusher thread, statistics, fork.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int gotrace_on_;
struct gt_state gt = {
	.reg_lock = PTHREAD_MUTEX_INITIALIZER,
	.threads = CDS_LIST_HEAD_INIT(gt.threads),
};

/* Serialises start and stop (never taken on an emit path). */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char last_err[256]; /* copy of gt.err kept after stop */

static long futex(uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

void gt_set_start_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_err, sizeof last_err, fmt, ap);
	va_end(ap);
}

void gt_wake_flusher(void)
{
	__atomic_add_fetch(&gt.wake, 1, __ATOMIC_RELEASE);
	futex(&gt.wake, FUTEX_WAKE_PRIVATE, 1, NULL);
}

void gotrace_options_init(gotrace_options *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
	o->advance_period_ns = 1000000000ull;
	o->buffer_size = 32768;
	o->max_buffered = 64u << 20;
	o->stop_timeout_ns = 5000000000ull;
	o->clock = GOTRACE_CLOCK_AUTO;
}

static int check_options(const gotrace_options *in, gotrace_options *o)
{
	gotrace_options_init(o);
	if (!in)
		return 0;
	if (in->struct_size < offsetof(gotrace_options, reserved_int) || in->struct_size > sizeof *o)
		return -GOTRACE_EINVAL;
	memcpy(o, in, in->struct_size);
	o->struct_size = sizeof *o;
	if (o->advance_period_ns < 100000 || o->buffer_size < 4096 || o->buffer_size > GT_MAX_BATCH ||
	    o->max_buffered < (1u << 20) || o->clock < 0 || o->clock > GOTRACE_CLOCK_MONOTONIC)
		return -GOTRACE_EINVAL;
	if (o->stop_timeout_ns == 0)
		o->stop_timeout_ns = 5000000000ull;
	if (o->event_stacks & ~GOTRACE_STACK_ALL)
		return -GOTRACE_EINVAL;
	for (size_t i = 0; i < sizeof o->reserved_int / sizeof o->reserved_int[0]; i++)
		if (o->reserved_int[i])
			return -GOTRACE_EINVAL;
	for (int i = 0; i < 8; i++)
		if (o->reserved_u64[i])
			return -GOTRACE_EINVAL;
	return 0;
}

/* ---------------------------------------------------------------- flusher */

static void set_off_after_error(void)
{
	/* An output error ends tracing: writers see gen 0 after the final
	 * advance; nothing more is written. */
	__atomic_store_n(&gotrace_on_, 0, __ATOMIC_RELEASE);
}

static void *flusher_main(void *arg)
{
	(void)arg;
	/* All signals stay blocked here (inherited from start): the flusher
	 * never runs a program's handler, and SIGPIPE turns into EPIPE. */
	rcu_read_lock(); /* register with urcu-bp now */
	rcu_read_unlock();
	gt_out_init(gt.fd);
	uint64_t period = gt.opt.advance_period_ns;
	uint64_t next = gt_mono_ns() + period;
	uint64_t size_bound = gt.opt.max_buffered / 4;
	for (;;) {
		/* Park point: a crash flush takes over the output from here. */
		__atomic_store_n(&gt.flusher_busy, 1, __ATOMIC_SEQ_CST);
		if (gt_crashing())
			break;
		uint32_t w = __atomic_load_n(&gt.wake, __ATOMIC_ACQUIRE);
		bool stopping = __atomic_load_n(&gt.stopping, __ATOMIC_ACQUIRE);
		uint64_t req = __atomic_load_n(&gt.flush_req, __ATOMIC_ACQUIRE);
		uint64_t now = gt_mono_ns();
		uint64_t g = __atomic_load_n(&gt.gen, __ATOMIC_RELAXED);
		if (g == 0 && !stopping) {
			/* Stopped after an output error: wait for gotrace_stop. */
			struct timespec ts = { 0, 100 * 1000 * 1000 };
			__atomic_store_n(&gt.flusher_busy, 0, __ATOMIC_SEQ_CST);
			futex(&gt.wake, FUTEX_WAIT_PRIVATE, w, &ts);
			continue;
		}
		/* Write what is queued for the current generation early: it
		 * frees memory; the order of generations is unaffected. */
		gt_out_drain(g);
		bool due = now >= next || req != __atomic_load_n(&gt.flush_done, __ATOMIC_RELAXED) ||
		           __atomic_load_n(&gt.buffered, __ATOMIC_RELAXED) > size_bound || stopping;
		if (due && g != 0) {
			bool final = stopping || __atomic_load_n(&gt.out_err, __ATOMIC_ACQUIRE);
			gt_advance(final);
			gt_out_drain(g);
			if (gt_crashing())
				break; /* g is queued; the crash flush writes it */
			if (!__atomic_load_n(&gt.out_err, __ATOMIC_ACQUIRE))
				__atomic_add_fetch(&gt.gens_written, 1, __ATOMIC_RELAXED);
			if (final && !stopping) {
				set_off_after_error();
				gt_out_drain(g + 1); /* nothing should be there: free it */
			}
			__atomic_store_n(&gt.flush_done, req, __ATOMIC_RELEASE);
			futex((uint32_t *)&gt.flush_done, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
			next = gt_mono_ns() + period;
			if (stopping)
				break;
			continue;
		}
		if (__atomic_load_n(&gt.out_err, __ATOMIC_ACQUIRE) && g != 0) {
			next = 0; /* advance now to switch tracing off */
			continue;
		}
		uint64_t wait = next > now ? next - now : 0;
		struct timespec ts = { (time_t)(wait / 1000000000u), (long)(wait % 1000000000u) };
		__atomic_store_n(&gt.flusher_busy, 0, __ATOMIC_SEQ_CST);
		if (w == __atomic_load_n(&gt.wake, __ATOMIC_ACQUIRE) && !gt_crashing())
			futex(&gt.wake, FUTEX_WAIT_PRIVATE, w, &ts);
	}
	__atomic_store_n(&gt.flusher_busy, 0, __ATOMIC_SEQ_CST);
	return NULL;
}

/* ------------------------------------------------------------ start, stop */

static void atfork_prepare(void) { pthread_mutex_lock(&start_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&start_lock); }
static void atfork_child(void)
{
	/* The child has no flusher and must never write into the parent's
	 * trace: tracing is off in the child, and its state is reset so that
	 * it can start a trace of its own (the parent's buffers are left
	 * behind: the child cannot tell which were already written). */
	__atomic_store_n(&gotrace_on_, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gt.gen, 0, __ATOMIC_RELAXED);
	if (gt.flusher_running) {
		gt.flusher_running = false;
		if (gt.own_fd)
			close(gt.fd);
		gt.fd = -1;
		gt.own_fd = 0;
		CDS_INIT_LIST_HEAD(&gt.threads);
		for (int i = 0; i < 2; i++) {
			gt.strtab[i].ht = NULL;
			__cds_wfcq_init(&gt.qhead[i], &gt.qtail[i]);
		}
	}
	pthread_mutex_init(&gt.reg_lock, NULL);
	gt_tls_self = NULL;
	gt_tls_session = 0;
	gt.session++;
	pthread_mutex_unlock(&start_lock);
}

static void at_exit(void)
{
	/* Normal exit(): finish the trace the program did not stop. */
	if (__atomic_load_n(&gt.flusher_running, __ATOMIC_ACQUIRE) &&
	    !(gt.opt.crash_flags & GOTRACE_CRASH_NO_ATEXIT))
		gotrace_stop();
}

static void init_once(void)
{
	gt_seq_init();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atexit(at_exit);
}

int gotrace_start_fd(int fd, const gotrace_options *opt)
{
	pthread_once(&once, init_once);
	gotrace_options o;
	int rc = check_options(opt, &o);
	if (rc)
		return rc;
	if (fd < 0 || fcntl(fd, F_GETFL) < 0)
		return -GOTRACE_EINVAL;
	pthread_mutex_lock(&start_lock);
	if (gt.flusher_running) {
		pthread_mutex_unlock(&start_lock);
		return -GOTRACE_EBUSY;
	}
	rc = gt_clock_init(o.clock);
	if (rc)
		goto out;
	gt.opt = o;
	gt.chunk_cap = (uint32_t)o.buffer_size;
	gt.fd = fd;
	gt.own_fd = 0;
	gt.err[0] = 0;
	last_err[0] = 0;
	gt.out_err = 0;
	gt.stopping = 0;
	gt.buffered = gt.buffered_peak = 0;
	gt.bytes_written = gt.gens_written = gt.dropped_total = gt.threads_seen = 0;
	gt.flush_req = gt.flush_done = 0;
	for (int i = 0; i < 2; i++) {
		__cds_wfcq_init(&gt.qhead[i], &gt.qtail[i]);
		gt.msg_next[i] = 0;
		if (gt_strtab_init(&gt.strtab[i]) != 0) {
			rc = -GOTRACE_ENOMEM;
			goto out_tabs;
		}
	}
	/* The header is written here, not by the flusher: a trace is a trace
	 * from the moment start returns (a crash right after start still
	 * leaves a readable file), and an unwritable fd fails start. */
	for (size_t off = 0; off < GT_HEADER_LEN;) {
		ssize_t w = write(fd, GT_HEADER + off, GT_HEADER_LEN - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(last_err, sizeof last_err, "writing the trace header: %s",
			         w < 0 ? strerror(errno) : "no progress");
			rc = -GOTRACE_EIO;
			goto out_tabs;
		}
		off += (size_t)w;
	}
	gt.bytes_written = GT_HEADER_LEN;
	pthread_mutex_lock(&gt.reg_lock);
	gt.next_p = 0;
	gt.free_p_n = 0;
	gt.filler_p = GT_NO_ID;
	__atomic_add_fetch(&gt.session, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&gt.reg_lock);
	__atomic_store_n(&gt.gen, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&gotrace_on_, 1, __ATOMIC_RELEASE);

	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&gt.flusher, NULL, flusher_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		__atomic_store_n(&gotrace_on_, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&gt.gen, 0, __ATOMIC_RELEASE);
		snprintf(last_err, sizeof last_err, "cannot create the flusher thread: %s", strerror(e));
		rc = -GOTRACE_ESYS;
		goto out_tabs;
	}
	gt.flusher_running = true;
	gt_crash_install(&gt.opt);
	rc = gt_cpuprof_start(&gt.opt);
	pthread_mutex_unlock(&start_lock);
	if (rc) {
		gotrace_stop(); /* leaves a valid, empty trace */
		return rc;
	}
	return 0;
out_tabs:
	for (int i = 0; i < 2; i++)
		gt_strtab_destroy(&gt.strtab[i]);
out:
	pthread_mutex_unlock(&start_lock);
	return rc;
}

int gotrace_start_path(const char *path, const gotrace_options *opt)
{
	if (!path || !*path)
		return -GOTRACE_EINVAL;
	gotrace_options o;
	int rc = check_options(opt, &o);
	if (rc)
		return rc;
	if (__atomic_load_n(&gotrace_on_, __ATOMIC_ACQUIRE))
		return -GOTRACE_EBUSY; /* do not truncate a file being traced into */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(last_err, sizeof last_err, "cannot open %s: %s", path, strerror(errno));
		return -GOTRACE_ESYS;
	}
	rc = gotrace_start_fd(fd, &o);
	if (rc) {
		close(fd);
		return rc;
	}
	gt.own_fd = 1; /* start_lock not needed: only stop reads it, later */
	return 0;
}

int gotrace_stop(void)
{
	pthread_mutex_lock(&start_lock);
	if (!gt.flusher_running) {
		pthread_mutex_unlock(&start_lock);
		return -GOTRACE_ENOTON;
	}
	__atomic_store_n(&gotrace_on_, 0, __ATOMIC_RELEASE);
	/* Timers off and handlers out before the final advance: its drain then
	 * holds every sample taken. */
	gt_cpuprof_stop();
	gt_crash_uninstall();
	__atomic_store_n(&gt.stopping, 1, __ATOMIC_RELEASE);
	gt_wake_flusher();
	pthread_join(gt.flusher, NULL);
	gt.flusher_running = false;
	/* Every thread left its critical section during the final advance;
	 * late callers see gen 0 and write nothing. */
	gt_threads_release_all();
	for (int i = 0; i < 2; i++) {
		gt_out_drain(i); /* after an error: free what was not written */
		gt_strtab_destroy(&gt.strtab[i]);
	}
	if (gt.own_fd)
		close(gt.fd);
	gt.fd = -1;
	int err = __atomic_load_n(&gt.out_err, __ATOMIC_ACQUIRE);
	if (err || gt.err[0]) /* keep a start error (e.g. from the profiler) */
		memcpy(last_err, gt.err, sizeof last_err);
	pthread_mutex_unlock(&start_lock);
	return err ? -err : 0;
}

int gotrace_flush(void)
{
	if (!__atomic_load_n(&gotrace_on_, __ATOMIC_ACQUIRE))
		return -GOTRACE_ENOTON;
	uint64_t req = __atomic_add_fetch(&gt.flush_req, 1, __ATOMIC_ACQ_REL);
	gt_wake_flusher();
	for (;;) {
		uint64_t done = __atomic_load_n(&gt.flush_done, __ATOMIC_ACQUIRE);
		if (done >= req)
			break;
		if (!__atomic_load_n(&gt.flusher_running, __ATOMIC_ACQUIRE) ||
		    (__atomic_load_n(&gt.gen, __ATOMIC_ACQUIRE) == 0 && __atomic_load_n(&gt.out_err, __ATOMIC_ACQUIRE)))
			break;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		futex((uint32_t *)&gt.flush_done, FUTEX_WAIT_PRIVATE, (uint32_t)done, &ts);
	}
	int err = __atomic_load_n(&gt.out_err, __ATOMIC_ACQUIRE);
	return err ? -err : 0;
}

void gotrace_get_stats(gotrace_stats *st)
{
	st->generations = __atomic_load_n(&gt.gens_written, __ATOMIC_RELAXED);
	st->bytes_written = __atomic_load_n(&gt.bytes_written, __ATOMIC_RELAXED);
	st->events_dropped = __atomic_load_n(&gt.dropped_total, __ATOMIC_RELAXED);
	st->threads_seen = __atomic_load_n(&gt.threads_seen, __ATOMIC_RELAXED);
	st->buffered_peak = __atomic_load_n(&gt.buffered_peak, __ATOMIC_RELAXED);
	gt_cpuprof_stats(&st->cpu_samples, &st->cpu_samples_lost);
}

uint64_t gotrace_thread_dropped(void)
{
	struct gt_thread *t = gt_tls_self;
	return t ? __atomic_load_n(&t->dropped_total, __ATOMIC_RELAXED) : 0;
}

const char *gotrace_last_error(void)
{
	if (__atomic_load_n(&gt.out_err, __ATOMIC_ACQUIRE) && gt.err[0])
		return gt.err;
	return last_err;
}
