/*
 * state.c: the definitions of the process-wide shared state declared in
 * core.h (the session state, the thread-local self pointer, the advancer's
 * writer record, the thread hooks) and the two calls every layer may
 * make on it: wake the flusher, record a start error; the flusher's fork
 * point.
 * May call: nothing but libc.
 */
#include "core.h"

#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

/* Tracing on (gotrace.h: written by start, stop and an output error; read
 * by every traced call).  Alone in its cache line (arch.h, GT_LINE): a
 * section of its own, line-aligned and filled to the line's end by the
 * padding that no_reorder keeps after it, a line long whatever its
 * alignment (tests/unit/hot_lines.py checks the built library). */
#define GT_ON_LINE __attribute__((section(".data.gotrace_on"), no_reorder))
GT_ON_LINE __attribute__((aligned(GT_LINE))) int gotrace_on_ = 0;
GT_ON_LINE __attribute__((used)) static char gotrace_on_pad_[GT_LINE] = { 0 };

/* The session state: see struct gt_state (core.h) for each field's
 * writer, readers and publication.  Its first line (gen, session: read by
 * every emit) starts a cache line: struct gt_state's alignment. */
struct gt_state gt_session = {
	.reg_lock = PTHREAD_MUTEX_INITIALIZER,
	.threads = CDS_LIST_HEAD_INIT(gt_session.threads),
};

/* The calling thread's record and the session it belongs to (core.h):
 * written and read only by the thread itself (and by its signal
 * handlers, which only read). */
__thread struct gt_thread *gt_tls_self __attribute__((tls_model("initial-exec")));
__thread uint64_t gt_tls_session __attribute__((tls_model("initial-exec")));

/* The advancer's own writer state: the strings of a generation's tables.
 * Flusher-private (the crash path uses it only once the flusher is
 * excluded).  On a line boundary, as thread.c allocates every record: its
 * seqlock, which the advancer takes for each batch it writes, must not
 * share a line with a global the writers read (arch.h, GT_LINE). */
struct gt_thread gt_advancer __attribute__((aligned(GT_THREAD_ALIGN))) = { .unbounded = true, .tid = GT_NO_ID };

/* The text gotrace_last_error() returns when no output error is pending:
 * start errors (start lock held) and the copy of gt_session.err that stop keeps. */
char gt_last_error_text[256];

void gt_set_start_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(gt_last_error_text, sizeof gt_last_error_text, fmt, ap);
	va_end(ap);
}

void gt_wake_flusher(void)
{
	__atomic_add_fetch(&gt_session.wake, 1, __ATOMIC_RELEASE);
	gt_futex(&gt_session.wake, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* Set (seq_cst) by the session layer's atfork_prepare while a fork is
 * being made, cleared after it: the flusher parks at its next park point
 * (flusher_busy 0) until it is cleared, or at a fork point inside an
 * advance (gt_flusher_fork_point), where it sets gt_fork_midway (seq_cst;
 * read by atfork_prepare). */
int gt_fork_park;
int gt_fork_midway;

/* Flusher, inside an advance, before work that allocates for long (loading
 * a module's symbols or unwind tables): if a fork is being made, wait here,
 * holding no lock and in no allocator, until it is done.  Why: allocators
 * without fork handlers of their own (AddressSanitizer's) leave a lock held
 * by a thread inside malloc held for good in the child; the park point at
 * the top of the flusher's loop is reached only after the advance, which
 * can take longer than a fork may wait for it.  Not a crash park:
 * flusher_busy stays 1 (the crash flush must not take the output over in
 * the middle of an advance). */
void gt_flusher_fork_point(void)
{
	if (!__atomic_load_n(&gt_fork_park, __ATOMIC_SEQ_CST))
		return;
	__atomic_store_n(&gt_fork_midway, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		uint32_t w0 = __atomic_load_n(&gt_session.wake, __ATOMIC_ACQUIRE);
		if (!__atomic_load_n(&gt_fork_park, __ATOMIC_SEQ_CST) || gt_crashing())
			break;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		gt_futex(&gt_session.wake, FUTEX_WAIT_PRIVATE, w0, &ts);
	}
	__atomic_store_n(&gt_fork_midway, 0, __ATOMIC_SEQ_CST);
}

/* The thread hooks (core.h): written once by the session layer
 * (release), read by registering and exiting threads (acquire). */
static const struct gt_thread_hooks *thread_hooks;

void gt_thread_hooks_set(const struct gt_thread_hooks *h)
{
	__atomic_store_n(&thread_hooks, h, __ATOMIC_RELEASE);
}

const struct gt_thread_hooks *gt_thread_hooks_get(void)
{
	return __atomic_load_n(&thread_hooks, __ATOMIC_ACQUIRE);
}
