/*
 * sampler.h: the CPU sampler as a generation source -- the functions the
 * session layer's source table lists (src/session/sources.c).  Nothing
 * below the session layer includes this header.
 * May call: nothing (declarations).
 */
#ifndef GT_CPUPROF_SAMPLER_H
#define GT_CPUPROF_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "gotrace.h"

struct gt_thread;
struct gt_chunk;

/* Start sampling per o (start lock held, flusher running); 0 or a negative
 * gotrace_err with gt_set_start_error() text.  Stop: timers off, previous
 * handler and timers restored, no handler running any more. */
__attribute__((visibility("hidden"))) int gt_cpuprof_start(const gotrace_options *o);
__attribute__((visibility("hidden"))) void gt_cpuprof_stop(void);
/* The program asks for SIGPROF's disposition (the preload library's
 * sigaction/signal wrappers) while our handler may be installed.  Not
 * installed: returns -1 and does nothing (the caller makes the real call).
 * Installed: *old (if old) gets the disposition the program last set (the
 * one stop restores), and
 *   act NULL, SIG_DFL or SIG_IGN: recorded as the one stop restores; our
 *       handler and timers stay (no SIGPROF of the program's can arrive:
 *       it has no handler and no timer of its own); returns 0;
 *   act a handler: the program's own profiler.  Our sampling stops for the
 *       rest of the session exactly as gt_cpuprof_stop does (timers off,
 *       no handler of ours running, pending SIGPROFs discarded), then act
 *       is installed; returns 1 (the samples taken so far stay in the
 *       trace).
 * AS-unsafe while installed (takes stop_lock and cp_lock).  Thread-safe
 * against stop. */
struct sigaction;
__attribute__((visibility("hidden"))) int gt_cpuprof_program_sigaction(const struct sigaction *act,
                                                                        struct sigaction *old);
/* Whether our SIGPROF handler is installed (sampling, the program has not
 * taken SIGPROF for itself).  AS-safe: one atomic load. */
__attribute__((visibility("hidden"))) bool gt_cpuprof_installed(void);
/* Before an exec (the preload's exec family): stop the calling thread's
 * SIGPROF source (see timers.c); true if one was stopped, and then
 * gt_cpuprof_exec_failed re-arms it when the exec returns.  MT-safe, not
 * AS-safe (start lock). */
/* The perf events' descriptors, which the preload's close wrappers keep
 * open like the trace's: is fd one of them; the lowest in [lo, hi], or
 * -1.  MT-safe, AS-safe (lock-free reads). */
__attribute__((visibility("hidden"))) bool gt_cpuprof_fd_is_ours(int fd);
__attribute__((visibility("hidden"))) int gt_cpuprof_next_fd(unsigned lo, unsigned hi);
/* Move the event at fd to another number before a dup2 onto fd (timers.c);
 * false if fd is not ours or it was not moved.  MT-safe, AS-safe. */
__attribute__((visibility("hidden"))) bool gt_cpuprof_fd_move(int fd);
__attribute__((visibility("hidden"))) bool gt_cpuprof_exec_begin(void);
__attribute__((visibility("hidden"))) void gt_cpuprof_exec_failed(void);
/* Samples written into the trace and lost (gotrace_stats). */
__attribute__((visibility("hidden"))) void gt_cpuprof_stats(uint64_t *samples, uint64_t *lost);
/* Samples taken on the library's own threads (gotrace_stats). */
__attribute__((visibility("hidden"))) uint64_t gt_cpuprof_tracer_samples(void);

/* On the registering thread, after it is published in the registry, outside
 * any critical section: record the thread's stack bounds (for the handler's
 * bounded stack walk) and, if a per-thread CPU timer source is running, arm
 * the thread's timer.  AS-unsafe (allocates, locks). */
__attribute__((visibility("hidden"))) void gt_cpuprof_thread_start(struct gt_thread *t);

/* On the exiting thread (its pthread key destructor), first thing: disarm
 * and release the thread's CPU timer, if any. */
__attribute__((visibility("hidden"))) void gt_cpuprof_thread_exit(struct gt_thread *t);

/* On a thread of the library's own (the flusher), at each iteration of
 * its loop: SIGPROF unblocked while our CPU profiler runs on setitimer,
 * blocked otherwise (a program's own SIGPROF handler never runs on our
 * threads, and the per-thread sources never arm them).
 * Why: setitimer's signal is process-directed; the kernel gives it to the
 * running thread when that thread does not block it, and to some other
 * thread -- one blocked in gotrace_flush, or asleep -- when it does, which
 * put the flusher's CPU time on a stack that was not running.  Unblocked,
 * our samples carry our own M (handler.c).  (Issue 10.) */
__attribute__((visibility("hidden"))) void gt_cpuprof_own_thread(void);

/* Is tid one of the library's threads (those that made the call above)?
 * MT-safe, AS-safe. */
__attribute__((visibility("hidden"))) bool gt_cpuprof_is_own_tid(pid_t tid);

/* Wait until no signal handler can still write generation gen's CPU
 * buffer (called by the advancer after the bump, before draining). */
__attribute__((visibility("hidden"))) void gt_cpuprof_quiesce(uint64_t gen);

/* Drain generation gen's samples into CPUSample batches of gen (flusher
 * context, after every thread left gen).  now: the time of the advancer's
 * own events of gen, read before the bump (a lower bound of gen's last
 * event, see gt_advance).  A no-op when CPU profiling is off. */
__attribute__((visibility("hidden"))) void gt_cpuprof_flush(uint64_t gen, uint64_t now);

/* Crash flush (inside the fatal-signal handler, the flusher parked, every
 * other thread out of generation gen or given up on): write generation
 * gen's CPU samples -- CPUSamples, with the Stacks and Strings batches they
 * need, frames unsymbolised (see cpuprof.c) -- through write(), before
 * gen's trace buffers.  Async-signal-safe, bounded waits.  false only if
 * write() failed.  A no-op when CPU profiling never ran. */
__attribute__((visibility("hidden"))) bool gt_cpuprof_crash_drain(uint64_t gen, uint64_t now,
                                                                  bool (*write)(struct gt_chunk *c));

#endif
