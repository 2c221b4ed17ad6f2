/*
 * sources.h: generation sources, the session layer's one interface to the
 * producers of a generation's data besides the threads' trace buffers
 * (today one: the CPU sampler, src/cpuprof).  The session layer (session.c,
 * advance.c, crash.c) drives every source through this table only.
 * May call: the sources it lists (sources.c), the substrate (core.h).
 */
#ifndef GT_SESSION_SOURCES_H
#define GT_SESSION_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gotrace.h"

struct gt_thread;
struct gt_chunk;

/*
 * The hooks of one source.  The table (gt_sources) is const and static:
 * written by the compiler, read by every caller, nothing to publish.  A
 * NULL member: nothing to do for that step.
 */
struct gt_source_ops {
	const char *name;
	/* Session start (start lock held, flusher running): 0 or a negative
	 * gotrace_err with gt_set_start_error() text. */
	int (*start)(const gotrace_options *o);
	/* Session stop, before the final advance: nothing of the source's
	 * runs any more once it returns. */
	void (*stop)(void);
	/* A thread joined the registry (after publication, no lock held). */
	void (*thread_start)(struct gt_thread *t);
	/* A thread is exiting (first thing of its exit). */
	void (*thread_exit)(struct gt_thread *t);
	/* On a thread of the library's own (the flusher, the line resolver),
	 * at each iteration of its loop. */
	void (*own_thread)(void);
	/* The advance of g, after the bump and the seqlock wait: wait until
	 * nothing can still write g's data ... */
	void (*quiesce)(uint64_t g);
	/* ... then queue all of g's data (end: the advancer's clock read
	 * before the bump), before the threads' buffers of g. */
	void (*drain)(uint64_t g, uint64_t end);
	/* Crash flush of g (AS-safe: in the fatal-signal handler): write g's
	 * data through write(); false only if write() failed. */
	bool (*crash_drain)(uint64_t g, uint64_t now, bool (*write)(struct gt_chunk *c));
	/* Its counters into st (gotrace_get_stats). */
	void (*stats)(gotrace_stats *st);
};

/* The sources, in drain order. */
extern const struct gt_source_ops *const gt_sources[];
extern const size_t gt_sources_n;

#define gt_for_each_source(s)                                                            \
	for (const struct gt_source_ops *const *s##_it_ = gt_sources, *s;                  \
	     s##_it_ < gt_sources + gt_sources_n && ((s) = *s##_it_, 1); s##_it_++)

#endif
