/*
 * hooks.h: the CPU sampler's two registration hooks, called by the thread
 * registry (src/emit/thread.c).
 */
#ifndef GT_CPUPROF_HOOKS_H
#define GT_CPUPROF_HOOKS_H

struct gt_thread;

/* On the registering thread, after it is published in the registry, outside
 * any critical section: record the thread's stack bounds (for the handler's
 * bounded stack walk) and, if a per-thread CPU timer source is running, arm
 * the thread's timer.  AS-unsafe (allocates, locks). */
__attribute__((visibility("hidden"))) void gt_cpuprof_thread_start(struct gt_thread *t);

/* On the exiting thread (its pthread key destructor), first thing: disarm
 * and release the thread's CPU timer, if any. */
__attribute__((visibility("hidden"))) void gt_cpuprof_thread_exit(struct gt_thread *t);

#endif
