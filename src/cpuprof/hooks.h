/*
 * hooks.h: the CPU sampler's hooks into the emitter: two registration hooks,
 * called by the thread registry (src/emit/thread.c), and the crash drain,
 * called by the crash flush (src/emit/crash.c).
 */
#ifndef GT_CPUPROF_HOOKS_H
#define GT_CPUPROF_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

struct gt_thread;
struct gt_chunk;

/* On the registering thread, after it is published in the registry, outside
 * any critical section: record the thread's stack bounds (for the handler's
 * bounded stack walk) and, if a per-thread CPU timer source is running, arm
 * the thread's timer.  AS-unsafe (allocates, locks). */
__attribute__((visibility("hidden"))) void gt_cpuprof_thread_start(struct gt_thread *t);

/* On the exiting thread (its pthread key destructor), first thing: disarm
 * and release the thread's CPU timer, if any. */
__attribute__((visibility("hidden"))) void gt_cpuprof_thread_exit(struct gt_thread *t);

/* Crash flush (src/emit/crash.c, inside the fatal-signal handler, the
 * flusher parked, every other thread out of generation gen or given up on):
 * write generation gen's CPU samples -- CPUSamples, with the Stacks and
 * Strings batches they need, frames unsymbolised (see cpuprof.c) -- through
 * write(), before gen's trace buffers.  Async-signal-safe, bounded waits.
 * false only if write() failed.  A no-op when CPU profiling never ran. */
__attribute__((visibility("hidden"))) bool gt_cpuprof_crash_drain(uint64_t gen, uint64_t now,
                                                                  bool (*write)(struct gt_chunk *c));

#endif
