/*
 * crash.c: advance on abort.  When the program dies of a fatal signal (or
 * calls gotrace_crash_flush), the current generation is ended and written,
 * so the trace ends with a complete generation holding every event emitted
 * up to the crash; then the program dies exactly as it would have.
 * May call: the sources' crash drains (sources.h), src/emit, src/stacks,
 * src/core; async-signal-safe only.
 *
 * Everything here runs in a signal handler (on the thread's alternate signal
 * stack, so a stack overflow is covered): async-signal-safe calls only, no
 * allocation, no locks, bounded waits only.
 *
 *   1. Claim the crash (one crash flush per process); a second crashing
 *      thread waits, bounded, for the first and then dies.
 *   2. Park the flusher: it stops at its next consistent point (between two
 *      chunk writes, or after an advance) and never writes again; wait for
 *      that, bounded.  From then on this handler is the only writer of the
 *      output, so two writers never interleave.
 *   3. Finish the generation the flusher had completely queued but not yet
 *      written (queue of gen-1).
 *   4. Crash advance of the current generation: switch tracing off (gen 0),
 *      membarrier, wait (bounded) until every other thread left its critical
 *      section (the crashing thread's own unfinished event is past its
 *      chunk's committed length, so it never reaches the file), then write
 *      straight from the chunks: the CPU samples (gt_cpuprof_crash_drain),
 *      the queue, every thread's open chunks,
 *      statuses of silent threads, the stack table (symbols from the
 *      flusher's cache), the frequency.
 * If a step cannot complete in time, what was written stays readable: every
 * earlier generation is complete, and Go's reader keeps those.
 */
#include "session.h"
#include "../core/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP };
#define NFATAL (sizeof fatal_signals / sizeof fatal_signals[0])

/* Dispositions before start: written by start/stop under the start lock,
 * read by the handler (restored before re-raising). */
static struct sigaction old_act[NFATAL];
static bool installed;

/* Crash state.  crash_owner: tid of the thread doing the crash flush (0 =
 * none), claimed by CAS.  crash_done: set when it finished (or gave up). */
static int crash_owner;
static int crash_done;

#define CRASH_FLUSHER_WAIT_NS 2000000000ull /* flusher to park */
#define CRASH_THREAD_WAIT_NS 200000000ull   /* one thread to leave */
#define CRASH_WRITE_WAIT_NS 2000000000ull   /* output to accept data */
#define CRASH_SECOND_WAIT_NS 5000000000ull  /* a second crash waits this long */

static uint64_t deadline_write; /* crash-owner-private */

/* -------------------------------------------------------------- output */

static bool crash_write(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		struct pollfd pfd = { .fd = __atomic_load_n(&gt_session.fd, __ATOMIC_RELAXED),
		                      .events = POLLOUT };
		int r = poll(&pfd, 1, 50);
		if (r < 0 && errno != EINTR)
			return false;
		if (r <= 0) {
			if (gt_mono_ns() > deadline_write)
				return false;
			continue;
		}
		ssize_t w = write(__atomic_load_n(&gt_session.fd, __ATOMIC_RELAXED), p,
		                  len > 4096 ? 4096 : len);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return false;
		}
		p += w;
		len -= (size_t)w;
		__atomic_add_fetch(&gt_session.bytes_written, (uint64_t)w, __ATOMIC_RELAXED);
	}
	return true;
}

static bool write_chunk(struct gt_chunk *c)
{
	gt_chunk_finish(c);
	return crash_write(c->data, c->len);
}

/* Write every chunk queued for gen.  Non-blocking dequeue: an enqueuer that
 * died half-way (the crashing thread) ends the queue there. */
static bool write_queue(uint64_t gen)
{
	for (;;) {
		enum cds_wfcq_ret st;
		struct cds_wfcq_node *n = __cds_wfcq_dequeue_with_state_nonblocking(
			&gt_session.qhead[gen & 1], &gt_session.qtail[gen & 1], &st);
		if (n == NULL || n == CDS_WFCQ_WOULDBLOCK)
			return n == NULL;
		struct gt_chunk *c = caa_container_of(n, struct gt_chunk, qnode);
		if (!crash_write(c->data, c->len))
			return false;
		/* Not freed: free() is not async-signal-safe. */
	}
}

/* ------------------------------------------------ the crash advance */

/* A batch built in static memory (crash-owner-private). */
static uint8_t scratch_mem[sizeof(struct gt_chunk) + 65536];
static struct gt_chunk *scratch = (struct gt_chunk *)scratch_mem;

static void scratch_open(uint64_t gen, uint64_t m, uint64_t ts, int marker)
{
	scratch->cap = 65536;
	scratch->limit = 65536;
	gt_chunk_open(scratch, gen, m, ts);
	if (marker)
		scratch->data[scratch->len++] = (uint8_t)marker;
}

static uint8_t *scratch_room(uint32_t need)
{
	return scratch->len + need <= scratch->cap ? scratch->data + scratch->len : NULL;
}

static bool wait_left_bounded(struct gt_thread *t, struct gt_thread *self)
{
	if (t == self)
		return true; /* its unfinished event is past the committed length */
	uint64_t snap = gt_seq_read(&t->seq);
	uint64_t end = gt_mono_ns() + CRASH_THREAD_WAIT_NS;
	while (!gt_seq_left(&t->seq, snap)) {
		if (gt_mono_ns() > end)
			return false;
		struct timespec d = { 0, 100000 };
		nanosleep(&d, NULL);
	}
	return true;
}

/* Status of a thread that wrote nothing in g (see advance.c state_thread:
 * the same events, from gt_silent_status, with the thread's current state:
 * every thread has left g). */
static bool write_silent_status(struct gt_thread *t, uint64_t g, uint64_t now)
{
	int state = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
	if (gt_stated_in(t, g) ||
	    (state != GT_TS_RUNNING && state != GT_TS_SYSCALL && state != GT_TS_BLOCKED &&
	     state != GT_TS_XG))
		return true;
	static uint8_t anon[GT_SILENT_MAX]; /* crash-owner-private */
	uint8_t *a = anon;
	scratch_open(g, t->tid, now, 0);
	uint8_t *p = scratch->data + scratch->len;
	gt_silent_status(t, g, state, __atomic_load_n(&t->sys, __ATOMIC_ACQUIRE),
	                 __atomic_load_n(&t->own.word, __ATOMIC_ACQUIRE), &p, &a);
	scratch->len = (uint32_t)(p - scratch->data);
	if (scratch->len > scratch->hdr_len && !write_chunk(scratch))
		return false;
	if (a == anon)
		return true;
	scratch_open(g, GT_NO_ID, now, 0);
	memcpy(scratch->data + scratch->len, anon, (size_t)(a - anon));
	scratch->len += (uint32_t)(a - anon);
	return write_chunk(scratch);
}

/* Strings for the crash stack table: fresh odd ids of g's counter, defined
 * in a strings batch built in static memory. */
static uint8_t str_mem[sizeof(struct gt_chunk) + 65536];
static struct gt_chunk *strb = (struct gt_chunk *)str_mem;

static uint64_t crash_string(uint64_t g, const char *s)
{
	size_t len = strlen(s);
	if (len > GT_MAX_STRING)
		len = GT_MAX_STRING;
	if (strb->len + 1 + 2 * GT_UVARINT_MAX + len > strb->cap)
		return 0;
	uint64_t id = 2 * __atomic_add_fetch(&gt_session.strtab[g & 1].next_id, 1, __ATOMIC_RELAXED) - 1;
	uint8_t *p = strb->data + strb->len;
	*p++ = GT_EV_STRING;
	p = gt_put_uvarint(p, id);
	p = gt_put_uvarint(p, len);
	memcpy(p, s, len);
	strb->len = (uint32_t)(p + len - strb->data);
	return id;
}

/* Event stacks (evstack.c) of the crash generation: block, unblock and
 * syscall events of g carry their ids, so they must be defined in g (Go's
 * reader and validator reject an unknown stack id).  Frames come from data
 * prepared in advance (gt_evstack_crash_frame: the flusher's symbol cache,
 * else module+offset, else the bare PC); strings that stay put are
 * deduplicated by pointer (crash-owner-private table, reset per flush).
 * Full batches are written out and reopened. */
#define CRASH_SDEDUP 1024
static struct {
	const char *p;
	uint64_t id;
} sdedup[CRASH_SDEDUP];

static uint64_t crash_string_more(uint64_t g, uint64_t now, const char *s, bool stable)
{
	size_t j = (size_t)(((uintptr_t)s * 0x9e3779b97f4a7c15ull) >> 40) & (CRASH_SDEDUP - 1);
	if (stable)
		for (int k = 0; k < 8 && sdedup[j].p; k++, j = (j + 1) & (CRASH_SDEDUP - 1))
			if (sdedup[j].p == s)
				return sdedup[j].id;
	uint64_t id = crash_string(g, s);
	if (!id) { /* strings batch full */
		if (!write_chunk(strb))
			return 0;
		gt_chunk_open(strb, g, GT_NO_ID, now);
		strb->data[strb->len++] = GT_EV_STRINGS;
		id = crash_string(g, s);
	}
	if (id && stable && !sdedup[j].p) {
		sdedup[j].p = s;
		sdedup[j].id = id;
	}
	return id;
}

struct evs_ctx {
	uint64_t g, now;
	bool ok;
};

/* Room for need bytes in the scratch Stacks batch, writing it out and
 * opening the next one when it is full; NULL if the write failed. */
static uint8_t *stacks_room(struct evs_ctx *x, uint32_t need)
{
	uint8_t *p = scratch_room(need);
	if (!p) { /* stacks batch full */
		if (!write_chunk(scratch))
			return NULL;
		scratch_open(x->g, GT_NO_ID, x->now, GT_EV_STACKS);
		p = scratch_room(need);
	}
	return p;
}

static bool write_event_stack(void *arg, uint64_t id, const uint64_t *pcs, int n)
{
	struct evs_ctx *x = arg;
	uint64_t fr4[64][4]; /* pc, func id, file id, line */
	static char fbuf[96]; /* crash-owner-private; copied by crash_string */
	if (n > 64)
		n = 64;
	for (int k = 0; k < n; k++) {
		struct gt_frame fr;
		bool stable = gt_evstack_crash_frame(pcs[k], &fr, fbuf, sizeof fbuf);
		fr4[k][0] = fr.pc;
		fr4[k][1] = crash_string_more(x->g, x->now, fr.func, stable);
		fr4[k][2] = crash_string_more(x->g, x->now, fr.file, true);
		fr4[k][3] = fr.line;
		if (!fr4[k][1] || !fr4[k][2])
			return x->ok = false;
	}
	uint32_t need = (uint32_t)(1 + 2 * GT_UVARINT_MAX + n * 4 * GT_UVARINT_MAX);
	uint8_t *p = stacks_room(x, need);
	if (!p)
		return x->ok = false;
	*p++ = GT_EV_STACK;
	p = gt_put_uvarint(p, id);
	p = gt_put_uvarint(p, (uint64_t)n);
	for (int k = 0; k < n; k++)
		for (int i = 0; i < 4; i++)
			p = gt_put_uvarint(p, fr4[k][i]);
	scratch->len = (uint32_t)(p - scratch->data);
	return true;
}

/* The one-frame stack naming an explicit goroutine created in g. */
static bool write_xg_stack(void *arg, uint64_t id, uint64_t pc, const char *name)
{
	struct evs_ctx *x = arg;
	uint64_t fid = crash_string_more(x->g, x->now, name, false);
	uint64_t lid = crash_string_more(x->g, x->now, "[goroutine]", true);
	if (!fid || !lid)
		return x->ok = false;
	uint32_t need = 1 + 6 * GT_UVARINT_MAX;
	uint8_t *p = stacks_room(x, need);
	if (!p)
		return x->ok = false;
	*p++ = GT_EV_STACK;
	p = gt_put_uvarint(p, id);
	p = gt_put_uvarint(p, 1);
	p = gt_put_uvarint(p, pc);
	p = gt_put_uvarint(p, fid);
	p = gt_put_uvarint(p, lid);
	p = gt_put_uvarint(p, 0);
	scratch->len = (uint32_t)(p - scratch->data);
	return true;
}

static bool write_tables(uint64_t g, uint64_t now)
{
	memset(sdedup, 0, sizeof sdedup);
	strb->cap = strb->limit = 65536;
	gt_chunk_open(strb, g, GT_NO_ID, now);
	strb->data[strb->len++] = GT_EV_STRINGS;
	scratch_open(g, GT_NO_ID, now, GT_EV_STACKS);
	struct gt_thread *t;
	gt_reg_for_each(t, &gt_session.threads) {
		if (!gt_thread_current(t) || !gt_stated_in(t, g))
			continue;
		struct gt_frame fr;
		int set = __atomic_load_n(&t->entry_set, __ATOMIC_ACQUIRE);
		if (set == 2) {
			fr.pc = 1;
			fr.func = t->entry_name;
			fr.file = "?";
			fr.line = 1;
		} else if (set == 1 ? !gt_sym_peek(t->entry_fn, &fr)
		                    : (t->entry_n == 0 || !gt_sym_peek(t->entry_pc[t->entry_chosen], &fr))) {
			fr.pc = 1; /* the same synthetic frame as gt_entry_frame */
			fr.func = "thread";
			fr.file = "?";
			fr.line = 1;
		}
		uint64_t fid = crash_string(g, fr.func), lid = crash_string(g, fr.file);
		uint8_t *p = scratch_room(1 + 6 * GT_UVARINT_MAX);
		if (!p || !fid || !lid)
			break;
		*p++ = GT_EV_STACK;
		p = gt_put_uvarint(p, gt_entry_stack_id(t));
		p = gt_put_uvarint(p, 1);
		p = gt_put_uvarint(p, fr.pc);
		p = gt_put_uvarint(p, fid);
		p = gt_put_uvarint(p, lid);
		p = gt_put_uvarint(p, fr.line);
		scratch->len = (uint32_t)(p - scratch->data);
	}
	struct evs_ctx evs = { g, now, true };
	gt_evstack_crash_walk(g, write_event_stack, &evs);
	if (evs.ok)
		gt_xg_crash_walk(g, write_xg_stack, &evs);
	if (!evs.ok || !write_chunk(scratch) || !write_chunk(strb))
		return false;
	scratch_open(g, GT_NO_ID, now, GT_EV_FREQUENCY);
	scratch->len = (uint32_t)(gt_put_uvarint(scratch->data + scratch->len, gt_clock.freq) - scratch->data);
	return write_chunk(scratch);
}

static bool crash_advance(struct gt_thread *self)
{
	uint64_t g = __atomic_load_n(&gt_session.gen, __ATOMIC_ACQUIRE);
	if (g == 0)
		return true; /* tracing already off: everything is written */
	/* The flusher queued g-1 completely but may not have written it all. */
	if (__atomic_load_n(&gt_session.gens_written, __ATOMIC_ACQUIRE) + gt_session.gen_first < g) {
		/* Flight: what the flusher already moved into the ring's open
		 * generation comes first. */
		if (gt_session.flight && !gt_flight_crash_write_open(g - 1, crash_write))
			return false;
		if (!write_queue(g - 1))
			return false;
		__atomic_add_fetch(&gt_session.gens_written, 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&gotrace_on_, 0, __ATOMIC_RELEASE);
	gt_session.gen_last = g;
	__atomic_store_n(&gt_session.gen, 0, __ATOMIC_RELEASE);
	gt_seq_sync();
	uint64_t now = gt_now();
	struct gt_thread *t;
	gt_reg_for_each(t, &gt_session.threads)
		if (gt_thread_current(t))
			t->crash_skip = !wait_left_bounded(t, self);
	/* The CPU samples of g first, as the flusher's advance does. */
	gt_for_each_source(s)
		if (s->crash_drain && !s->crash_drain(g, now, write_chunk))
			return false;
	if (gt_session.flight && !gt_flight_crash_write_open(g, crash_write))
		return false;
	if (!write_queue(g))
		return false;
	bool any = false;
	gt_reg_for_each(t, &gt_session.threads) {
		if (!gt_thread_current(t) || t->crash_skip)
			continue;
		struct gt_tbuf *tb = &t->tb[g & 1];
		struct gt_chunk *cs[2] = { tb->ev, tb->str };
		for (int i = 0; i < 2; i++)
			if (cs[i] && cs[i]->len != 0 && cs[i]->gen == g && !write_chunk(cs[i]))
				return false;
		if (!write_silent_status(t, g, now))
			return false;
		any |= gt_stated_in(t, g);
	}
	if (!any) {
		scratch_open(g, GT_NO_ID, now, 0);
		uint8_t *p = scratch->data + scratch->len;
		*p++ = GT_EV_PROC_STATUS;
		*p++ = 0;
		p = gt_put_uvarint(p, gt_session.filler_p != GT_NO_ID ? gt_session.filler_p : gt_session.next_p);
		p = gt_put_uvarint(p, GT_P_IDLE);
		scratch->len = (uint32_t)(p - scratch->data);
		if (!write_chunk(scratch))
			return false;
	}
	if (!write_tables(g, now))
		return false;
	__atomic_add_fetch(&gt_session.gens_written, 1, __ATOMIC_RELAXED);
	return true;
}

/* Wait for the flusher to park (it checks gt_session.crashing between writes and
 * after each advance). */
static bool park_flusher(void)
{
	__atomic_store_n(&gt_session.crash_tid, crash_owner, __ATOMIC_RELAXED);
	__atomic_store_n(&gt_session.crashing, 1, __ATOMIC_SEQ_CST);
	gt_wake_flusher(); /* futex wake: async-signal-safe */
	uint64_t end = gt_mono_ns() + CRASH_FLUSHER_WAIT_NS;
	while (__atomic_load_n(&gt_session.flusher_busy, __ATOMIC_ACQUIRE)) {
		if (gt_mono_ns() > end)
			return false;
		struct timespec d = { 0, 200000 };
		nanosleep(&d, NULL);
	}
	return true;
}

/* Flight recorder: the crash writes to flight_path (open(2) is
 * async-signal-safe): the header and the ring's sealed generations (the
 * flusher is parked, so the ring stands still: flight.c), then the crash
 * advance writes what follows as for a file.  gt_session.fd becomes the
 * new file (the flusher, its other user, is parked for good).  false: no
 * path, or it cannot be opened or written. */
static bool flight_crash_open(void)
{
	if (!gt_session.flight_path[0])
		return false;
	int fd = open(gt_session.flight_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return false;
	gt_session.fd = fd;
	gt_session.own_fd = 1; /* fsync'd below; closed by stop */
	return gt_flight_crash_write_sealed(crash_write);
}

/* The crash flush proper.  Returns 0 if a complete final generation was
 * written. */
static int crash_flush(void)
{
	int tid = (int)syscall(SYS_gettid);
	int zero = 0;
	__atomic_store_n(&gt_session.crash_tid, tid, __ATOMIC_RELAXED);
	if (!__atomic_compare_exchange_n(&crash_owner, &zero, tid, false, __ATOMIC_ACQ_REL,
	                                 __ATOMIC_ACQUIRE)) {
		/* Another thread is flushing (or did): let it finish, bounded. */
		uint64_t end = gt_mono_ns() + CRASH_SECOND_WAIT_NS;
		while (!__atomic_load_n(&crash_done, __ATOMIC_ACQUIRE) && gt_mono_ns() < end) {
			struct timespec d = { 0, 1000000 };
			nanosleep(&d, NULL);
		}
		return -1;
	}
	int rc = -1;
	if (__atomic_load_n(&gt_session.flusher_running, __ATOMIC_ACQUIRE) && park_flusher()) {
		deadline_write = gt_mono_ns() + CRASH_WRITE_WAIT_NS;
		if (gt_session.flight && !flight_crash_open()) {
			__atomic_store_n(&crash_done, 1, __ATOMIC_RELEASE);
			return -1;
		}
		struct gt_thread *self = gt_tls_self;
		if (self && __atomic_load_n(&self->session, __ATOMIC_RELAXED) != gt_session.session)
			self = NULL;
		rc = crash_advance(self) ? 0 : -1;
		if (gt_session.own_fd)
			fsync(gt_session.fd);
	}
	__atomic_store_n(&crash_done, 1, __ATOMIC_RELEASE);
	return rc;
}

/* ------------------------------------------------------- the handler */

static void crash_handler(int sig, siginfo_t *info, void *uctx)
{
	int saved = errno;
	crash_flush();
	/* Die as the program would have: its own handler (chained), or the
	 * default action for this signal. */
	size_t i = 0;
	while (i < NFATAL && fatal_signals[i] != sig)
		i++;
	struct sigaction *old = i < NFATAL ? &old_act[i] : NULL;
	if (old && (old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
		errno = saved;
		old->sa_sigaction(sig, info, uctx);
		return;
	}
	if (old && !(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL &&
	    old->sa_handler != SIG_IGN) {
		errno = saved;
		old->sa_handler(sig);
		return;
	}
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = (old && old->sa_handler == SIG_IGN) ? SIG_IGN : SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	/* A fault re-executes and dies on return; a signal that was sent
	 * (raise, abort, kill) is sent again, pending until we return. */
	if (info == NULL || info->si_code <= 0)
		syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
	errno = saved;
}

int gt_crash_install(const gotrace_options *o)
{
	__atomic_store_n(&crash_owner, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&crash_done, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gt_session.crashing, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gt_session.crash_tid, 0, __ATOMIC_RELAXED);
	if (o->crash_flags & GOTRACE_CRASH_NO_SIGNALS)
		return 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = crash_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigfillset(&sa.sa_mask); /* no SIGPROF or other handler inside the flush */
	for (size_t i = 0; i < NFATAL; i++)
		sigaction(fatal_signals[i], &sa, &old_act[i]);
	installed = true;
	return 0;
}

void gt_crash_uninstall(void)
{
	if (!installed)
		return;
	for (size_t i = 0; i < NFATAL; i++) {
		struct sigaction cur;
		sigaction(fatal_signals[i], NULL, &cur);
		if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == crash_handler)
			sigaction(fatal_signals[i], &old_act[i], NULL);
	}
	installed = false;
}

/* Per-thread alternate signal stack, so a stack overflow still runs the
 * handler.  Installed at registration (not in a handler) unless the thread
 * has one already; removed at thread exit. */
#define ALTSTACK_SIZE (64 * 1024)

void gt_crash_thread_init(struct gt_thread *t)
{
	if (!installed || t->altstack)
		return;
	stack_t cur;
	if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
		return; /* the program's own */
	void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return;
	stack_t ss = { .ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) != 0) {
		munmap(mem, ALTSTACK_SIZE);
		return;
	}
	t->altstack = mem;
}

void gt_crash_thread_exit(struct gt_thread *t)
{
	if (!t->altstack)
		return;
	stack_t ss = { .ss_flags = SS_DISABLE };
	sigaltstack(&ss, NULL);
	munmap(t->altstack, ALTSTACK_SIZE);
	t->altstack = NULL;
}

int gotrace_crash_flush(void)
{
	if (!__atomic_load_n(&gt_session.flusher_running, __ATOMIC_ACQUIRE))
		return -GOTRACE_ENOTON;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = crash_flush();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc == 0 ? 0 : -GOTRACE_EIO;
}
