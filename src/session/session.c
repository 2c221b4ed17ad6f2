/*
 * session.c: start, stop, flush, the flusher thread, statistics, fork.
 * May call: advance.c, crash.c, the sources (sources.h), src/emit, src/core.
 */
#include "session.h"
#include "../stacks/symlines.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Serialises start and stop (never taken on an emit path). */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
void gotrace_options_init(gotrace_options *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
	o->advance_period_ns = 1000000000ull;
	o->buffer_size = 32768;
	o->max_buffered = 64u << 20;
	o->stop_timeout_ns = 5000000000ull;
	o->clock = GOTRACE_CLOCK_AUTO;
	/* Blocking and syscall stacks by default: without them go tool
	 * trace's -pprof=sync and -pprof=syscall are empty for a program that
	 * only wraps its locks and syscalls, and a contended wait or a syscall
	 * costs far more than the unwind (BENCHMARKS.md). */
	o->event_stacks = GOTRACE_STACK_DEFAULT;
}

/* Options as start uses them (defaults for fields the caller's struct does
 * not have).  Start lock held: the reason for -GOTRACE_EINVAL goes to
 * gotrace_last_error(), like every other start failure's. */
static int check_options(const gotrace_options *in, gotrace_options *o, bool flight)
{
	gotrace_options_init(o);
	if (!in)
		return 0;
	if (in->struct_size < offsetof(gotrace_options, flight_signal) || in->struct_size > sizeof *o) {
		gt_set_start_error("invalid options: struct_size %zu (initialise them with "
		                   "gotrace_options_init)", in->struct_size);
		return -GOTRACE_EINVAL;
	}
	memcpy(o, in, in->struct_size);
	o->struct_size = sizeof *o;
	if (o->advance_period_ns < 100000) {
		gt_set_start_error("invalid options: advance_period_ns %llu is below the minimum 100000",
		                   (unsigned long long)o->advance_period_ns);
		return -GOTRACE_EINVAL;
	}
	if (o->buffer_size < 4096 || o->buffer_size > GT_MAX_BATCH) {
		gt_set_start_error("invalid options: buffer_size %zu is not within 4096..%u", o->buffer_size,
		                   GT_MAX_BATCH);
		return -GOTRACE_EINVAL;
	}
	if (o->max_buffered < (1u << 20)) {
		gt_set_start_error("invalid options: max_buffered %zu is below the minimum 1 MiB",
		                   o->max_buffered);
		return -GOTRACE_EINVAL;
	}
	if (o->clock < 0 || o->clock > GOTRACE_CLOCK_MONOTONIC) {
		gt_set_start_error("invalid options: unknown clock %d", o->clock);
		return -GOTRACE_EINVAL;
	}
	if (o->stop_timeout_ns == 0)
		o->stop_timeout_ns = 5000000000ull;
	if (o->event_stacks & ~GOTRACE_STACK_ALL) {
		gt_set_start_error("invalid options: unknown event_stacks bits 0x%x",
		                   (unsigned)(o->event_stacks & ~GOTRACE_STACK_ALL));
		return -GOTRACE_EINVAL;
	}
	for (size_t i = 0; i < sizeof o->reserved_int / sizeof o->reserved_int[0]; i++) {
		if (o->reserved_int[i]) {
			gt_set_start_error("invalid options: reserved_int[%zu] is not zero", i);
			return -GOTRACE_EINVAL;
		}
	}
	for (size_t i = 0; i < sizeof o->reserved_u64 / sizeof o->reserved_u64[0]; i++) {
		if (o->reserved_u64[i]) {
			gt_set_start_error("invalid options: reserved_u64[%zu] is not zero", i);
			return -GOTRACE_EINVAL;
		}
	}
	/* A file session would ignore them: the caller meant a recorder. */
	if (!flight && (o->flight_signal || o->flight_max_bytes || o->flight_min_age_ns || o->flight_path)) {
		gt_set_start_error("invalid options: flight_* options are for gotrace_start_flight");
		return -GOTRACE_EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- flusher */

static void set_off_after_error(void)
{
	/* An output error ends tracing: writers see gen 0 after the final
	 * advance; nothing more is written. */
	__atomic_store_n(&gotrace_on_, 0, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------- flight recorder */

/* The flight signal's disposition before start: written by start and stop
 * under the start lock. */
static struct sigaction flight_old_act;
static int flight_sig_installed; /* the signal number, 0: none */

static void flight_sig_handler(int sig)
{
	(void)sig;
	int saved = errno;
	__atomic_store_n(&gt_session.flight_sig_req, 1, __ATOMIC_RELEASE);
	gt_wake_flusher(); /* futex wake: async-signal-safe */
	errno = saved;
}

/* Flusher context: the recording to flight_path, through a temporary file
 * renamed over it, so that the path always holds a complete dump.  A
 * failure is remembered in gt_session.note-free form: the session goes on
 * (nothing to report it to; the file is simply not replaced). */
static char flight_tmp[sizeof gt_session.flight_path + 8]; /* flusher-private */
static void flight_signal_dump(void)
{
	if (!gt_session.flight_path[0])
		return;
	snprintf(flight_tmp, sizeof flight_tmp, "%s.tmp", gt_session.flight_path);
	int fd = open(flight_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	int rc = gt_flight_write_fd(fd, NULL, NULL);
	if (close(fd) != 0 && rc == 0)
		rc = -EIO;
	if (rc == 0)
		rc = rename(flight_tmp, gt_session.flight_path);
	if (rc != 0)
		unlink(flight_tmp);
}

static void *flusher_main(void *arg)
{
	(void)arg;
	/* All signals stay blocked here (inherited from start): the flusher
	 * never runs a program's handler, and SIGPIPE turns into EPIPE. */
	rcu_read_lock(); /* register with urcu-bp now */
	rcu_read_unlock();
	pthread_setname_np(pthread_self(), "gotrace-flush");
	gt_out_init(gt_session.fd);
	uint64_t period = gt_session.opt.advance_period_ns;
	uint64_t next = gt_mono_ns() + period;
	uint64_t size_bound = gt_session.opt.max_buffered / 4;
	/* Flight: a generation ends early at an eighth of the ring (gotrace.h). */
	uint64_t flight_bound = gt_flight_cap() / 8;
	for (;;) {
		/* Park point: a crash flush takes over the output from here. */
		__atomic_store_n(&gt_session.flusher_busy, 1, __ATOMIC_SEQ_CST);
		if (gt_crashing())
			break;
		/* Our own CPU time is sampled on this thread (the CPU
		 * sampler's own_thread hook, sampler.h). */
		gt_for_each_source(s)
			if (s->own_thread)
				s->own_thread();
		if (__atomic_load_n(&gt_fork_park, __ATOMIC_SEQ_CST)) {
			/* A fork is being made: stay out of the allocator (and
			 * libdw, the output) until it is done (atfork_prepare). */
			uint32_t w0 = __atomic_load_n(&gt_session.wake, __ATOMIC_ACQUIRE);
			__atomic_store_n(&gt_session.flusher_busy, 0, __ATOMIC_SEQ_CST);
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			if (__atomic_load_n(&gt_fork_park, __ATOMIC_SEQ_CST))
				gt_futex(&gt_session.wake, FUTEX_WAIT_PRIVATE, w0, &ts);
			continue;
		}
		uint32_t w = __atomic_load_n(&gt_session.wake, __ATOMIC_ACQUIRE);
		bool stopping = __atomic_load_n(&gt_session.stopping, __ATOMIC_ACQUIRE);
		uint64_t req = __atomic_load_n(&gt_session.flush_req, __ATOMIC_ACQUIRE);
		uint64_t now = gt_mono_ns();
		uint64_t g = __atomic_load_n(&gt_session.gen, __ATOMIC_RELAXED);
		if (g == 0 && stopping)
			break; /* off after an output error, and stop asked: nothing
			        * is left to advance (stop frees what is queued) */
		if (g == 0) {
			/* Stopped after an output error: wait for gotrace_stop. */
			struct timespec ts = { 0, 100 * 1000 * 1000 };
			__atomic_store_n(&gt_session.flusher_busy, 0, __ATOMIC_SEQ_CST);
			gt_futex(&gt_session.wake, FUTEX_WAIT_PRIVATE, w, &ts);
			continue;
		}
		/* Write what is queued for the current generation early: it
		 * frees memory; the order of generations is unaffected. */
		uint64_t took = gt_out_drain_some(g, gt_session.flight ? flight_bound : UINT64_MAX);
		bool sig = gt_session.flight && __atomic_load_n(&gt_session.flight_sig_req, __ATOMIC_ACQUIRE);
		bool due = now >= next || req != __atomic_load_n(&gt_session.flush_done, __ATOMIC_RELAXED) ||
		           __atomic_load_n(&gt_session.buffered, __ATOMIC_RELAXED) > size_bound || stopping ||
		           sig || (gt_session.flight && gt_flight_open_bytes() > flight_bound);
		if (due && g != 0) {
			bool final = stopping || __atomic_load_n(&gt_session.out_err, __ATOMIC_ACQUIRE);
			gt_advance(final);
			gt_out_drain(g);
			if (gt_crashing())
				break; /* g is queued; the crash flush writes it */
			if (gt_session.flight)
				gt_flight_seal(g);
			if (!__atomic_load_n(&gt_session.out_err, __ATOMIC_ACQUIRE))
				__atomic_add_fetch(&gt_session.gens_written, 1, __ATOMIC_RELAXED);
			if (sig && __atomic_exchange_n(&gt_session.flight_sig_req, 0, __ATOMIC_ACQ_REL))
				flight_signal_dump();
			if (final && !stopping) {
				set_off_after_error();
				gt_out_drain(g + 1); /* nothing should be there: free it */
			}
			__atomic_store_n(&gt_session.flush_done, req, __ATOMIC_RELEASE);
			gt_futex((uint32_t *)&gt_session.flush_done, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
			next = gt_mono_ns() + period;
			if (stopping)
				break;
			continue;
		}
		if (__atomic_load_n(&gt_session.out_err, __ATOMIC_ACQUIRE) && g != 0) {
			next = 0; /* advance now to switch tracing off */
			continue;
		}
		/* Writers wake us only when the queue crosses wake_bytes
		 * (batch.c): with more than that queued we do not sleep, or
		 * a crossing we were too busy to see would be lost.  (If
		 * nothing could be taken, the bytes are still on their way
		 * into the queue -- counted before the enqueue -- or held back
		 * for a flight generation: look again in a millisecond.) */
		uint64_t wait = next > now ? next - now : 0;
		if (__atomic_load_n(&gt_session.buffered, __ATOMIC_SEQ_CST) > gt_session.wake_bytes) {
			if (took != 0)
				continue;
			if (wait > 1000 * 1000)
				wait = 1000 * 1000;
		}
		struct timespec ts = { (time_t)(wait / 1000000000u), (long)(wait % 1000000000u) };
		__atomic_store_n(&gt_session.flusher_busy, 0, __ATOMIC_SEQ_CST);
		if (w == __atomic_load_n(&gt_session.wake, __ATOMIC_ACQUIRE) && !gt_crashing())
			gt_futex(&gt_session.wake, FUTEX_WAIT_PRIVATE, w, &ts);
	}
	__atomic_store_n(&gt_session.flusher_busy, 0, __ATOMIC_SEQ_CST);
	return NULL;
}

/* ------------------------------------------------------------ start, stop */

/*
 * fork().  liburcu-bp does not register fork handlers itself: the
 * application must call its hooks, and we are that application.  Without
 * them the child inherits (1) urcu-bp's reader registry with the entries of
 * threads that do not exist in the child, so a synchronize_rcu there waits
 * forever for a reader that was inside a read-side section at the fork, and
 * (2) the lfht resize work queue without its worker thread, so
 * cds_lfht_destroy (gotrace_stop of a trace the child started) waits
 * forever for the queue to drain.
 *
 * Order.  The start lock comes first: stop holds it while it calls
 * synchronize_rcu and cds_lfht_destroy, which need the locks and the
 * worker the urcu hooks take.  Then the flusher is parked (below), then the
 * call_rcu hook (it also pauses the lfht worker, which may still need
 * rcu_gp_lock to finish a resize), then urcu_bp_before_fork (rcu_gp_lock,
 * registry lock, all signals blocked).  After the fork, the reverse.  The
 * child resets our state while signals are still blocked, then urcu-bp
 * prunes its registry.
 *
 * The child's half of the call_rcu hook is deferred to its first start
 * (rcu_child_finish): it starts threads (a new lfht worker, a new call_rcu
 * thread) whenever the parent had them, and the parent has a call_rcu
 * thread for good after its first session.  A child that never traces (one
 * that execs, one that only works) then gets no thread of ours, which is
 * also what ThreadSanitizer requires of a child of a multi-threaded
 * process.  Until then the lfht and call_rcu state stays as prepared
 * (worker paused, their locks held); nothing of ours touches it outside a
 * session, and a fork made meanwhile passes it on as it is.
 *
 * The flusher is kept at a park point across the fork, so that the child
 * never inherits a lock that the flusher held inside malloc, libdw or any
 * other library it calls.  glibc's malloc is fork-safe by itself;
 * allocators that are not (GCC 12's AddressSanitizer takes no allocator
 * lock around fork, and maps memory while holding one) leave the child
 * deadlocked at its first malloc of that size class.  The wait is
 * bounded (the flusher may sit in a write to a stalled pipe): a sleeping
 * flusher costs nothing, a busy one at most FORK_PARK_NS.
 *
 * Application threads are not parked: a fork may land anywhere in any of
 * their gotrace calls.  That is safe by construction (issue 10): their
 * steady-state paths allocate nothing from the allocator and take no lock
 * (interning and stacks: generation arenas; long region names: the block
 * pool; batch buffers: the chunk pool, else mmap; see arena.h, chunk.c),
 * and liburcu's call_rcu thread, paused by its own hook, only unmaps what
 * our callbacks release.  The DWARF unwind of event stacks (evstack.c,
 * libunwind) is the exception: on a miss of its per-thread caches (a
 * thread's first unwind, a PC never unwound before) it maps memory under
 * libunwind's own lock and calls dl_iterate_phdr (the loader's lock); a
 * fork landing there may leave such a lock held in the child, where only
 * the child's own unwinds (if it starts a trace of its own) would wait
 * for it.  The steady state (cache hits) takes neither.  What still
 * allocates on an application thread happens once, under the registry
 * lock: a thread's registration (thread.c), its stack bounds for event
 * stacks (evstack.c), an explicit goroutine's record (goroutine.c).  The prepare handler takes that lock
 * last (after the flusher parked: the advancer takes it too) and holds it
 * across the fork, so a fork never lands inside one of those.
 *
 * What the child gets (atfork_child touches only our own state, and
 * nothing another thread may have held: no allocator, no lock but the ones
 * the prepare handler itself holds): tracing off (gotrace_on_ and the
 * generation 0: every call returns at once, gotrace_stop and gotrace_flush
 * say -GOTRACE_ENOTON), no flusher, the trace fd that gotrace_start_path
 * opened closed, an empty registry (the parent's records and buffers are
 * abandoned, never written: the child cannot tell which the parent wrote),
 * a new session number (the forking thread re-registers if the child
 * traces), the start and registry locks free.  It may start a new session
 * of its own, a complete trace in a new file.
 */
#define FORK_PARK_NS (100 * 1000 * 1000ull)
static bool fork_parked; /* atfork_prepare asked the flusher to park */
static bool rcu_child_pending; /* a forked child, its call_rcu hook not run */

/* Start lock held: finish the deferred half of the call_rcu fork hook
 * before anything of a session uses an lfht.  The locks it releases were
 * taken by the thread that forked, and the child's start may come from
 * another thread: they are default (non-checking) pthread mutexes, which
 * glibc lets any thread unlock. */
static void rcu_child_finish(void)
{
	if (rcu_child_pending) {
		rcu_child_pending = false;
		urcu_bp_call_rcu_after_fork_child();
	}
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&start_lock);
	fork_parked = gt_session.flusher_running;
	if (fork_parked) {
		__atomic_store_n(&gt_fork_park, 1, __ATOMIC_SEQ_CST);
		uint64_t end = gt_mono_ns() + FORK_PARK_NS;
		while (__atomic_load_n(&gt_session.flusher_busy, __ATOMIC_SEQ_CST) &&
		       !__atomic_load_n(&gt_fork_midway, __ATOMIC_SEQ_CST) && gt_mono_ns() < end) {
			struct timespec d = { 0, 100 * 1000 };
			nanosleep(&d, NULL);
		}
	}
	gt_symlines_atfork_prepare(); /* the line resolver too (symlines.c) */
	if (!rcu_child_pending)
		urcu_bp_call_rcu_before_fork();
	urcu_bp_before_fork();
	/* Last: registration waits for no lock of urcu's while holding it
	 * (urcu-bp registers a thread before thread.c takes it). */
	pthread_mutex_lock(&gt_session.reg_lock);
}
static void atfork_parent(void)
{
	pthread_mutex_unlock(&gt_session.reg_lock);
	urcu_bp_after_fork_parent();
	if (!rcu_child_pending)
		urcu_bp_call_rcu_after_fork_parent();
	gt_symlines_atfork_parent();
	if (fork_parked) {
		__atomic_store_n(&gt_fork_park, 0, __ATOMIC_SEQ_CST);
		gt_wake_flusher();
	}
	pthread_mutex_unlock(&start_lock);
}
static void atfork_child(void)
{
	/* The child has no flusher and must never write into the parent's
	 * trace: tracing is off in the child, and its state is reset so that
	 * it can start a trace of its own (the parent's buffers are left
	 * behind: the child cannot tell which were already written). */
	__atomic_store_n(&gotrace_on_, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gt_session.gen, 0, __ATOMIC_RELAXED);
	if (gt_session.flusher_running) {
		gt_session.flusher_running = false;
		if (gt_session.own_fd)
			close(gt_session.fd);
		gt_session.fd = -1;
		gt_session.own_fd = 0;
		CDS_INIT_LIST_HEAD(&gt_session.threads);
		for (int i = 0; i < 2; i++) {
			gt_session.strtab[i].ht = NULL;
			__cds_wfcq_init(&gt_session.qhead[i], &gt_session.qtail[i]);
		}
	}
	/* Held by this thread since atfork_prepare: nobody else exists to
	 * hold it; a fresh mutex is the simplest free one. */
	pthread_mutex_init(&gt_session.reg_lock, NULL);
	gt_symlines_atfork_child();
	gt_flight_forget();
	gt_session.flight = 0;
	flight_sig_installed = 0;
	gt_tls_self = NULL;
	gt_tls_session = 0;
	gt_session.session++;
	__atomic_store_n(&gt_fork_park, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gt_fork_midway, 0, __ATOMIC_RELAXED);
	fork_parked = false;
	urcu_bp_after_fork_child();
	rcu_child_pending = true;
	pthread_mutex_unlock(&start_lock);
}

static void at_exit(void)
{
	/* Normal exit(): finish the trace the program did not stop. */
	if (__atomic_load_n(&gt_session.flusher_running, __ATOMIC_ACQUIRE) &&
	    !(gt_session.opt.crash_flags & GOTRACE_CRASH_NO_ATEXIT))
		gotrace_stop();
}

/* The registry's hooks (core.h): every source's thread hooks, and the
 * crash flush's alternate signal stack of each traced thread. */
static void on_registered(struct gt_thread *t)
{
	gt_for_each_source(s)
		if (s->thread_start)
			s->thread_start(t);
}

static void on_library_thread(void)
{
	gt_for_each_source(s)
		if (s->own_thread)
			s->own_thread();
}

static void on_exiting(struct gt_thread *t)
{
	gt_for_each_source(s)
		if (s->thread_exit)
			s->thread_exit(t);
}

static const struct gt_thread_hooks thread_hooks = {
	.registering = gt_crash_thread_init,
	.registered = on_registered,
	.exiting = on_exiting,
	.left = gt_crash_thread_exit,
	.library_thread = on_library_thread,
};

static void init_once(void)
{
	gt_seq_init();
	gt_thread_hooks_set(&thread_hooks);
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atexit(at_exit);
}

/*
 * The trace header, written on the caller's thread (see start_locked).  The
 * caller must not die of it nor hang in it:
 *  - SIGPIPE is blocked around the write, so a pipe without a reader gives
 *    EPIPE; the SIGPIPE that write raised for this thread is then consumed
 *    (sigtimedwait, zero timeout) so that it is not delivered when the mask
 *    is restored, unless one was already pending before: that one is the
 *    program's and stays pending.  The program's disposition is untouched.
 *  - A pipe or socket whose reader does not read: poll() until the fd is
 *    writable, for at most stop_timeout_ns (the bound stop has too), and
 *    write only then; the 16 bytes are less than PIPE_BUF, so a writable
 *    pipe takes them without blocking.
 * Returns 0, or -GOTRACE_EIO with the reason in gt_last_error_text.
 */
static int write_header(int fd, uint64_t timeout_ns)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
	uint64_t deadline = gt_mono_ns() + timeout_ns;
	int rc = 0;
	for (size_t off = 0; off < GT_HEADER_LEN;) {
		uint64_t now = gt_mono_ns();
		if (now >= deadline) {
			gt_set_start_error("writing the trace header: the output accepted nothing for %.1f s",
			                   (double)timeout_ns / 1e9);
			rc = -GOTRACE_EIO;
			break;
		}
		uint64_t left_ms = (deadline - now + 999999) / 1000000;
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int r = poll(&pfd, 1, left_ms > 100 ? 100 : (int)left_ms);
		if (r < 0 && errno != EINTR) {
			gt_set_start_error("writing the trace header: poll: %s", strerror(errno));
			rc = -GOTRACE_EIO;
			break;
		}
		if (r <= 0)
			continue; /* not writable yet (or EINTR): until the deadline */
		/* POLLERR/POLLHUP: write() reports the precise error. */
		ssize_t w = write(fd, GT_HEADER + off, GT_HEADER_LEN - off);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0) {
			int err = w < 0 ? errno : 0;
			if (err == EPIPE && !was_pending) {
				struct timespec zero = { 0, 0 };
				while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
					;
			}
			gt_set_start_error("writing the trace header: %s", err ? strerror(err) : "no progress");
			rc = -GOTRACE_EIO;
			break;
		}
		off += (size_t)w;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* Start a session on fd.  Called with the start lock held, options checked;
 * returns with it released.  own_fd: fd was opened by gotrace_start_path,
 * stop closes it (on failure the caller does). */
static int start_locked(int fd, const gotrace_options *opt, int own_fd, int flight)
{
	gotrace_options o = *opt;
	int rc;
	if (gt_session.flusher_running) {
		/* A session that failed but is not stopped yet counts too:
		 * gotrace_last_error() still describes it. */
		pthread_mutex_unlock(&start_lock);
		return -GOTRACE_EBUSY;
	}
	rcu_child_finish();
	/* A new session: no error of an earlier one is reported any more. */
	gt_session.err[0] = 0;
	gt_session.note[0] = 0;
	gt_last_error_text[0] = 0;
	gt_session.out_err = 0;
	rc = gt_clock_init(o.clock);
	if (rc) {
		gt_set_start_error("invalid options: clock %d is not available on this CPU", o.clock);
		goto out;
	}
	gt_session.opt = o;
	gt_session.chunk_cap = (uint32_t)o.buffer_size;
	/* 256 KiB: a few of the default 32 KiB chunks, within a core's L2 */
	gt_session.wake_bytes = 256u << 10;
	if (gt_session.wake_bytes < 4 * (uint64_t)o.buffer_size)
		gt_session.wake_bytes = 4 * (uint64_t)o.buffer_size;
	if (gt_session.wake_bytes > o.max_buffered / 4)
		gt_session.wake_bytes = o.max_buffered / 4;
	gt_session.fd = fd;
	gt_session.own_fd = 0;
	gt_session.stopping = 0;
	gt_session.flight = flight;
	gt_session.flight_sig_req = 0;
	if (flight)
		gt_flight_init(o.flight_max_bytes - o.max_buffered - o.max_buffered / 4, o.flight_min_age_ns);
	gt_session.buffered = gt_session.buffered_peak = 0;
	gt_session.bytes_written = gt_session.gens_written = gt_session.dropped_total = gt_session.threads_seen = 0;
	gt_session.flush_req = gt_session.flush_done = 0;
	for (int i = 0; i < 2; i++) {
		__cds_wfcq_init(&gt_session.qhead[i], &gt_session.qtail[i]);
		gt_session.msg_next[i] = 0;
		if (gt_strtab_init(&gt_session.strtab[i]) != 0) {
			gt_set_start_error("out of memory creating the string tables");
			rc = -GOTRACE_ENOMEM;
			goto out_tabs;
		}
	}
	/* The header is written here, not by the flusher: a trace is a trace
	 * from the moment start returns (a crash right after start still
	 * leaves a readable file), and an unwritable fd fails start. */
	if (!flight) {
		rc = write_header(fd, o.stop_timeout_ns);
		if (rc)
			goto out_tabs;
		gt_session.bytes_written = GT_HEADER_LEN;
	}
	pthread_mutex_lock(&gt_session.reg_lock);
	gt_session.next_p = 0;
	gt_session.free_p_n = 0;
	gt_session.filler_p = GT_NO_ID;
	__atomic_add_fetch(&gt_session.session, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&gt_session.reg_lock);
	gt_session.gen_first = gt_session.gen_last + 1; /* see gt_session.gen: never reused */
	__atomic_store_n(&gt_session.gen, gt_session.gen_first, __ATOMIC_RELEASE);
	__atomic_store_n(&gotrace_on_, 1, __ATOMIC_RELEASE);

	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&gt_session.flusher, NULL, flusher_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		__atomic_store_n(&gotrace_on_, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&gt_session.gen, 0, __ATOMIC_RELEASE);
		gt_set_start_error("cannot create the flusher thread: %s", strerror(e));
		rc = -GOTRACE_ESYS;
		goto out_tabs;
	}
	gt_session.flusher_running = true;
	gt_crash_install(&gt_session.opt);
	if (flight && o.flight_signal > 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = flight_sig_handler;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(o.flight_signal, &sa, &flight_old_act) == 0)
			flight_sig_installed = o.flight_signal;
	}
	if (gt_session.opt.cpu_hz > 0) {
		/* The library's other threads before the CPU timers: creating
		 * one blocks every signal in the creator while it clones, and
		 * an ITIMER_PROF signal due then goes to a program thread. */
		(void)gt_symlines_start();
		/* liburcu's call_rcu thread inherits the creator's mask: with
		 * every signal blocked it takes SIGPROF only once our callback
		 * marks it as the library's (arena.c), never as nobody's. */
		pthread_sigmask(SIG_SETMASK, &all, &old); /* all: filled above */
		(void)get_default_call_rcu_data();
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	rc = 0;
	gt_for_each_source(s)
		if (rc == 0 && s->start)
			rc = s->start(&gt_session.opt);
	if (rc == 0)
		gt_session.own_fd = own_fd; /* on failure the caller closes it */
	pthread_mutex_unlock(&start_lock);
	if (rc) {
		gotrace_stop(); /* leaves a valid, empty trace */
		return rc;
	}
	return 0;
out_tabs:
	for (int i = 0; i < 2; i++)
		gt_strtab_destroy(&gt_session.strtab[i]);
out:
	pthread_mutex_unlock(&start_lock);
	return rc;
}

int gotrace_start_fd(int fd, const gotrace_options *opt)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&start_lock);
	gotrace_options o;
	int rc = check_options(opt, &o, false);
	if (rc == 0 && (fd < 0 || fcntl(fd, F_GETFL) < 0)) {
		gt_set_start_error("invalid file descriptor %d", fd);
		rc = -GOTRACE_EINVAL;
	}
	if (rc) {
		pthread_mutex_unlock(&start_lock);
		return rc;
	}
	return start_locked(fd, &o, 0, 0);
}

int gotrace_start_path(const char *path, const gotrace_options *opt)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&start_lock);
	gotrace_options o;
	int rc = -GOTRACE_EINVAL;
	if (!path || !*path)
		gt_set_start_error("invalid path: %s", path ? "empty" : "NULL");
	else
		rc = check_options(opt, &o, false);
	/* Busy is decided under the start lock, before the open truncates
	 * anything: by the session's existence, not by the tracing-on flag,
	 * which an output error clears while the failed session (and its
	 * file) lives on until gotrace_stop. */
	if (rc == 0 && gt_session.flusher_running)
		rc = -GOTRACE_EBUSY;
	if (rc) {
		pthread_mutex_unlock(&start_lock);
		return rc;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		gt_set_start_error("cannot open %s: %s", path, strerror(errno));
		pthread_mutex_unlock(&start_lock);
		return -GOTRACE_ESYS;
	}
	rc = start_locked(fd, &o, 1, 0);
	if (rc)
		close(fd);
	return rc;
}

int gotrace_stop(void)
{
	pthread_mutex_lock(&start_lock);
	if (!gt_session.flusher_running) {
		pthread_mutex_unlock(&start_lock);
		return -GOTRACE_ENOTON;
	}
	__atomic_store_n(&gotrace_on_, 0, __ATOMIC_RELEASE);
	/* Timers off and handlers out before the final advance: its drain then
	 * holds every sample taken. */
	gt_for_each_source(s)
		if (s->stop)
			s->stop();
	gt_crash_uninstall();
	if (flight_sig_installed) {
		sigaction(flight_sig_installed, &flight_old_act, NULL);
		flight_sig_installed = 0;
	}
	__atomic_store_n(&gt_session.stopping, 1, __ATOMIC_RELEASE);
	gt_wake_flusher();
	pthread_join(gt_session.flusher, NULL);
	gt_session.flusher_running = false;
	/* The line resolver the flusher started (symlines.c), after the
	 * final advance took what it answered. */
	gt_symlines_stop();
	/* Every thread left its critical section during the final advance;
	 * late callers see gen 0 and write nothing. */
	gt_threads_release_all();
	for (int i = 0; i < 2; i++) {
		gt_out_drain(i); /* after an error: free what was not written */
		gt_strtab_destroy(&gt_session.strtab[i]);
	}
	if (gt_session.flight) {
		gt_flight_destroy(); /* the recording is discarded (gotrace.h) */
		__atomic_store_n(&gt_session.flight, 0, __ATOMIC_RELEASE);
	}
	gt_chunk_pool_drain(); /* written chunks kept for reuse (chunk.c) */
	if (gt_session.own_fd)
		close(gt_session.fd);
	gt_session.fd = -1;
	int err = __atomic_load_n(&gt_session.out_err, __ATOMIC_ACQUIRE);
	if (err || gt_session.err[0]) /* keep a start error (e.g. from the profiler) */
		memcpy(gt_last_error_text, gt_session.err, sizeof gt_last_error_text);
	/* The session's error now lives in gt_last_error_text alone: a later failure
	 * (a start that fails, reporting in gt_last_error_text) must not be hidden by
	 * this session's output error (gotrace_last_error prefers gt_session.err
	 * while out_err is set). */
	gt_session.err[0] = 0;
	__atomic_store_n(&gt_session.out_err, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&start_lock);
	return err ? -err : 0;
}

int gotrace_flush(void)
{
	if (!__atomic_load_n(&gotrace_on_, __ATOMIC_ACQUIRE))
		return -GOTRACE_ENOTON;
	uint64_t req = __atomic_add_fetch(&gt_session.flush_req, 1, __ATOMIC_ACQ_REL);
	gt_wake_flusher();
	for (;;) {
		uint64_t done = __atomic_load_n(&gt_session.flush_done, __ATOMIC_ACQUIRE);
		if (done >= req)
			break;
		if (!__atomic_load_n(&gt_session.flusher_running, __ATOMIC_ACQUIRE) ||
		    (__atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE) == 0 && __atomic_load_n(&gt_session.out_err, __ATOMIC_ACQUIRE)))
			break;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		gt_futex((uint32_t *)&gt_session.flush_done, FUTEX_WAIT_PRIVATE, (uint32_t)done, &ts);
	}
	int err = __atomic_load_n(&gt_session.out_err, __ATOMIC_ACQUIRE);
	return err ? -err : 0;
}

void gotrace_get_stats(gotrace_stats *st)
{
	st->generations = __atomic_load_n(&gt_session.gens_written, __ATOMIC_RELAXED);
	st->bytes_written = __atomic_load_n(&gt_session.bytes_written, __ATOMIC_RELAXED);
	st->events_dropped = __atomic_load_n(&gt_session.dropped_total, __ATOMIC_RELAXED);
	st->threads_seen = __atomic_load_n(&gt_session.threads_seen, __ATOMIC_RELAXED);
	st->buffered_peak = __atomic_load_n(&gt_session.buffered_peak, __ATOMIC_RELAXED);
	gt_for_each_source(s)
		if (s->stats)
			s->stats(st);
}

uint64_t gotrace_thread_dropped(void)
{
	struct gt_thread *t = gt_tls_self;
	return t ? __atomic_load_n(&t->dropped_total, __ATOMIC_RELAXED) : 0;
}

const char *gotrace_start_notes(void)
{
	return gt_session.note;
}

const char *gotrace_last_error(void)
{
	if (__atomic_load_n(&gt_session.out_err, __ATOMIC_ACQUIRE) && gt_session.err[0])
		return gt_session.err;
	return gt_last_error_text;
}

/* ------------------------------------------------------- flight recorder */

/* The smallest queue a recorder gets (gotrace_start_flight): four of the
 * largest batches. */
#define FLIGHT_MIN_QUEUE (256u << 10)

int gotrace_start_flight(const gotrace_options *opt)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&start_lock);
	gotrace_options o;
	int rc = check_options(opt, &o, true);
	if (rc == 0) {
		if (o.flight_max_bytes == 0)
			o.flight_max_bytes = 16u << 20;
		if (o.flight_min_age_ns == 0)
			o.flight_min_age_ns = 10000000000ull;
		if (o.flight_max_bytes < (1u << 20)) {
			gt_set_start_error("invalid options: flight_max_bytes %llu is below the minimum 1 MiB",
			                   (unsigned long long)o.flight_max_bytes);
			rc = -GOTRACE_EINVAL;
		} else if (o.flight_signal < 0 || o.flight_signal >= NSIG || o.flight_signal == SIGKILL ||
		           o.flight_signal == SIGSTOP) {
			gt_set_start_error("invalid options: flight_signal %d cannot be caught", o.flight_signal);
			rc = -GOTRACE_EINVAL;
		} else if (o.flight_path && strlen(o.flight_path) >= sizeof gt_session.flight_path) {
			gt_set_start_error("invalid options: flight_path longer than %zu bytes",
			                   sizeof gt_session.flight_path - 1);
			rc = -GOTRACE_EINVAL;
		} else if (gt_session.flusher_running) {
			rc = -GOTRACE_EBUSY;
		}
	}
	if (rc) {
		pthread_mutex_unlock(&start_lock);
		return rc;
	}
	/* flight_max_bytes bounds the recorder's memory as a whole: the
	 * queue of data on its way into the ring (max_buffered, lowered to
	 * an eighth of it, at least FLIGHT_MIN_QUEUE) and the queue's pool
	 * (a quarter of that, chunk.c) are taken from it; the ring gets the
	 * rest (flight.c). */
	uint64_t q = o.flight_max_bytes / 8 > FLIGHT_MIN_QUEUE ? o.flight_max_bytes / 8 : FLIGHT_MIN_QUEUE;
	if (o.max_buffered > q)
		o.max_buffered = (size_t)q;
	/* The session's copy: the crash flush reads it (no pointer into the
	 * caller's memory). */
	snprintf(gt_session.flight_path, sizeof gt_session.flight_path, "%s",
	         o.flight_path ? o.flight_path : "");
	o.flight_path = NULL;
	return start_locked(-1, &o, 0, 1);
}

int gotrace_get_flight_stats(gotrace_flight_stats *st)
{
	if (!st || st->struct_size < offsetof(gotrace_flight_stats, generations_lost) + sizeof(uint64_t))
		return -GOTRACE_EINVAL;
	if (!__atomic_load_n(&gotrace_on_, __ATOMIC_ACQUIRE) ||
	    !__atomic_load_n(&gt_session.flight, __ATOMIC_ACQUIRE))
		return -GOTRACE_ENOTON;
	st->max_bytes = gt_session.opt.flight_max_bytes;
	st->ring_cap = gt_flight_cap();
	gt_flight_stats(&st->held_bytes, &st->generations, &st->retained_bytes, &st->generations_lost);
	return 0;
}

/* Serialises write-outs (never taken by an emitting thread). */
static pthread_mutex_t flight_write_lock = PTHREAD_MUTEX_INITIALIZER;

int gotrace_flight_write(int fd)
{
	if (!__atomic_load_n(&gotrace_on_, __ATOMIC_ACQUIRE) ||
	    !__atomic_load_n(&gt_session.flight, __ATOMIC_ACQUIRE))
		return -GOTRACE_ENOTON;
	if (fd < 0 || fcntl(fd, F_GETFL) < 0) {
		gt_set_start_error("gotrace_flight_write: invalid file descriptor %d", fd);
		return -GOTRACE_EINVAL;
	}
	pthread_mutex_lock(&flight_write_lock);
	gt_flight_pin(gt_now());
	/* End the current generation: it is in the ring once this returns. */
	int rc = gotrace_flush();
	if (rc) {
		gt_flight_pin(0);
		pthread_mutex_unlock(&flight_write_lock);
		return rc;
	}
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
	rc = gt_flight_write_fd(fd, NULL, NULL);
	if (rc == -EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&flight_write_lock);
	if (rc) {
		gt_set_start_error("gotrace_flight_write: %s", strerror(-rc));
		return -GOTRACE_EIO;
	}
	return 0;
}
