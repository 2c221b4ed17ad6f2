/*
 * symlines.h: the source-line resolver (symlines.c), used by the flusher's
 * symbol cache (symbolize.c; stop and fork: session.c).  Flusher context,
 * never a signal handler.  May call: libdw, src/core.
 */
#ifndef GT_SYMLINES_H
#define GT_SYMLINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GT_SYMLINES_HIDDEN __attribute__((visibility("hidden")))

/* One answer: pc's source file (malloc'd, the taker owns it) and line, or
 * file NULL when the module has no line for pc. */
struct gt_line_answer {
	uint64_t pc;
	char *file;
	uint64_t line;
};

/* Ask for pc's line (starting the resolver thread if needed).  *epoch is
 * the epoch the question belongs to: a question of an older epoch than
 * gt_symlines_epoch() will never be answered.  false: not asked (no
 * thread or no memory). */
GT_SYMLINES_HIDDEN bool gt_symlines_ask(uint64_t pc, uint32_t *epoch);
/* Start the resolver thread now (if it is not running): session start does
 * it before the CPU timers are armed, so that its creation -- glibc blocks
 * every signal while it clones -- never hands a tick's SIGPROF to another
 * thread.  false: no thread. */
GT_SYMLINES_HIDDEN bool gt_symlines_start(void);
GT_SYMLINES_HIDDEN uint32_t gt_symlines_epoch(void);

/* Wait at most wait_ns until every question asked is answered, then take
 * the answers given so far (*ans: malloc'd array, the caller frees it and
 * owns each file).  Returns their number. */
GT_SYMLINES_HIDDEN size_t gt_symlines_wait(uint64_t wait_ns, struct gt_line_answer **ans);

/* Session stop: end the resolver thread (it finishes the module it is
 * loading first).  Unanswered questions move to an old epoch. */
GT_SYMLINES_HIDDEN void gt_symlines_stop(void);

/* fork: prepare parks the resolver (waits until it is idle or at a park
 * point: in no allocator, holding no lock); parent lets it go on; child
 * gets a fresh mailbox, no resolver. */
GT_SYMLINES_HIDDEN void gt_symlines_atfork_prepare(void);
GT_SYMLINES_HIDDEN void gt_symlines_atfork_parent(void);
GT_SYMLINES_HIDDEN void gt_symlines_atfork_child(void);

/* No source lines for frames in the C library and the dynamic loader
 * (their functions are still named): set by the preload library before
 * tracing starts.  Every stack of an unmodified program roots in libc
 * (start_thread, __libc_start_call_main), whose lines, with libc6-dbg
 * installed, cost ~80 ms of DWARF inflation per process and point into
 * sources its users do not have. */
GT_SYMLINES_HIDDEN extern bool gt_symlines_no_libc;

/* Test hook: the resolver sleeps this long before each batch. */
GT_SYMLINES_HIDDEN extern uint64_t gt_symlines_stall_ns;

#endif
