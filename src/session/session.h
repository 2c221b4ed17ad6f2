/*
 * session.h: the session layer's internal interface (src/session): the
 * generation advance (advance.c) and the crash flush (crash.c), used by
 * session.c and sources.c.
 * May call: everything below -- src/emit, src/cpuprof (through sources.h
 * only), src/stacks, src/core.
 */
#ifndef GT_SESSION_H
#define GT_SESSION_H

#include "../emit/emit.h"
#include "sources.h"

/* Advance (flusher context). final: switch tracing off (gen 0). */
GT_HIDDEN void gt_advance(bool final);
GT_HIDDEN void gt_thread_collect(struct gt_thread *t, uint64_t gen);
GT_HIDDEN void gt_threads_reap(uint64_t gen);

/* Crash handling (crash.c). */
GT_HIDDEN int gt_crash_install(const gotrace_options *o);
GT_HIDDEN void gt_crash_uninstall(void);
GT_HIDDEN void gt_crash_thread_init(struct gt_thread *t);
GT_HIDDEN void gt_crash_thread_exit(struct gt_thread *t);

#endif
