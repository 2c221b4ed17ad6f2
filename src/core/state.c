/*
 * state.c: the definitions of the process-wide shared state declared in
 * core.h (the session state, the thread-local self pointer, the advancer's
 * writer record, the thread hooks) and the two calls every layer may
 * make on it: wake the flusher, record a start error.
 * May call: nothing but libc.
 */
#include "core.h"

#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>

/* Tracing on (gotrace.h: written by start, stop and an output error). */
int gotrace_on_;

/* The session state: see struct gt_state (core.h) for each field's
 * writer, readers and publication. */
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
 * excluded). */
struct gt_thread gt_advancer = { .unbounded = true, .tid = GT_NO_ID };

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
