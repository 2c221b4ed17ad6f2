/*
 * owncpu.h: the CPU profiler and the library's own threads (issue 10).
 */
#ifndef GT_CPUPROF_OWNCPU_H
#define GT_CPUPROF_OWNCPU_H

#include <stdint.h>

/* On a thread of the library's own (the flusher), at each iteration of
 * its loop: SIGPROF unblocked while our CPU profiler runs, blocked
 * otherwise (a program's own SIGPROF handler never runs on our threads).
 * Why: setitimer's signal is process-directed; the kernel gives it to the
 * running thread when that thread does not block it, and to some other
 * thread -- one blocked in gotrace_flush, or asleep -- when it does, which
 * put the flusher's CPU time on a stack that was not running.  Unblocked,
 * our samples carry our own M (handler.c).  cpuprof.c. */
__attribute__((visibility("hidden"))) void gt_cpuprof_own_thread(void);
/* Samples taken on the library's own threads (gotrace_stats). */
__attribute__((visibility("hidden"))) uint64_t gt_cpuprof_tracer_samples(void);

#endif
