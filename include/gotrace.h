/*
 * gotrace: write Go execution traces (format "go 1.23 trace") from C.
 *
 * A C program links libgotrace, calls gotrace_start_path() (or _fd), and
 * annotates its work with tasks, regions and log messages exactly like Go's
 * runtime/trace package.  The file opens in `go tool trace`.
 *
 * Model.  Every OS thread that makes a traced call becomes, in the trace, an M
 * holding its own P and running one goroutine (named after the thread's entry
 * function).  Threads register themselves on their first traced call; there is
 * no registration function.  Their final events are written when they exit.
 *
 * Thread-safety and signal-safety, per function, are stated below with these
 * words:
 *   MT-safe      may be called from any number of threads at once.
 *   AS-safe      may be called from a signal handler.
 *   AS-unsafe    must not be called from a signal handler (it may allocate on
 *                a slow path); doing so is undefined.
 *
 * Tracing off.  Every annotation call made while tracing is off returns at
 * once; the inline wrappers below reduce it to one well-predicted branch.
 *
 * Errors.  Functions that can fail return 0 on success or a negative
 * gotrace_err code; gotrace_last_error() describes the last failure in words.
 * The library never prints and never aborts the host program.
 */
#ifndef GOTRACE_H
#define GOTRACE_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GOTRACE_API __attribute__((visibility("default")))
#define GOTRACE_LIKELY_OFF(x) __builtin_expect(!!(x), 0)
/* A relaxed atomic load: one plain load instruction, and race-free. */
#define GOTRACE_ON_() __atomic_load_n(&gotrace_on_, __ATOMIC_RELAXED)
#else
#define GOTRACE_API
#define GOTRACE_LIKELY_OFF(x) (x)
#define GOTRACE_ON_() (gotrace_on_)
#endif

/* Error codes (negated when returned). */
enum gotrace_err {
	GOTRACE_OK = 0,
	GOTRACE_EINVAL = 1,   /* bad argument or option */
	GOTRACE_EBUSY = 2,    /* tracing already on (start twice) */
	GOTRACE_ENOTON = 3,   /* tracing is off (stop twice, flush when off) */
	GOTRACE_EIO = 4,      /* writing the trace failed; tracing stopped */
	GOTRACE_ENOMEM = 5,   /* out of memory while starting */
	GOTRACE_ESYS = 6,     /* a system call failed while starting */
	GOTRACE_ESTALLED = 7, /* stop gave up waiting for a stalled output */
};

/* Options for gotrace_start_*.  Initialise with gotrace_options_init(), then
 * set what you need: fields added later keep their defaults. */
typedef struct gotrace_options {
	/* Set by gotrace_options_init to sizeof(gotrace_options); lets older
	 * binaries run against newer libraries. */
	size_t struct_size;
	/* Generation advance period in nanoseconds (default 1e9, as in Go).
	 * Minimum 100000 (0.1 ms). */
	uint64_t advance_period_ns;
	/* Size of one per-thread batch buffer in bytes (default 32768; 4096 to
	 * 65536).  Each traced thread holds two of them for events. */
	size_t buffer_size;
	/* Bound on buffered-but-unwritten trace data in bytes (default 64 MiB,
	 * minimum 1 MiB).  When the output cannot keep up, events are dropped
	 * and counted instead of passing this bound. */
	size_t max_buffered;
	/* How long gotrace_stop() waits for a stalled output before giving up
	 * (default 5e9 ns). */
	uint64_t stop_timeout_ns;
	/* GOTRACE_CLOCK_* : timestamp source (default AUTO: invariant TSC where
	 * the CPU has one, CLOCK_MONOTONIC otherwise). */
	int clock;
	/* CPU profiling: samples per second of CPU time per thread, 0 (the
	 * default) for none.  See GOTRACE_CPU_* for the timer. */
	int cpu_hz;
	/* GOTRACE_CPU_*: what delivers SIGPROF (default SETITIMER; AUTO picks
	 * the most accurate source available, see there). */
	int cpu_source;
	/* GOTRACE_CRASH_*: crash handling (default 0: fatal-signal handlers
	 * installed, see gotrace_crash_flush). */
	int crash_flags;
	/* GOTRACE_STACK_*: event classes that carry the caller's stack
	 * (unwound in the calling thread with DWARF CFI, so code built without
	 * frame pointers has its callers; frame pointers where that fails).
	 * Default GOTRACE_STACK_DEFAULT (BLOCK | SYSCALL: the stacks of go
	 * tool trace's -pprof=sync and -pprof=syscall); 0 means none. */
	int event_stacks;
	/* Flight recorder (gotrace_start_flight only; see there).  The
	 * signal whose delivery writes the recording to flight_path (e.g.
	 * SIGUSR2); 0 (default): none. */
	int flight_signal;
	/* Reserved; must stay zero. */
	int reserved_int[2];
	/* Flight recorder: bound on the bytes of trace data retained in
	 * memory (default 0: 16 MiB; minimum 1 MiB), and the minimum age of
	 * the data kept (default 0: 10 s).  MaxBytes wins, as in Go's
	 * runtime/trace.FlightRecorder. */
	uint64_t flight_max_bytes;
	uint64_t flight_min_age_ns;
	/* Flight recorder: the file that a flight_signal dump replaces and a
	 * crash writes (the recording plus the generation in progress); NULL
	 * (default): neither.  Copied by start (at most 4095 bytes). */
	union {
		const char *flight_path;
		uint64_t flight_path_pad_;
	};
	/* Reserved; must stay zero. */
	uint64_t reserved_u64[5];
} gotrace_options;

/* Every source samples a thread only while SIGPROF is not blocked in it;
 * with setitimer, a thread that blocks it has its CPU time delivered to
 * another thread (often a sleeping one).  Keep SIGPROF out of the masks of
 * the threads to sample. */
enum gotrace_cpu_source {
	/* setitimer(ITIMER_PROF): process CPU time, signal to any running
	 * thread.  What setitimer-based profilers use; the kernel tick caps
	 * the rate (about a quarter of 1 kHz is delivered). */
	GOTRACE_CPU_SETITIMER = 0,
	/* timer_create(CLOCK_THREAD_CPUTIME_ID, SIGEV_THREAD_ID) per traced
	 * thread, as the Go runtime does: fair per-thread attribution, same
	 * tick cap. */
	GOTRACE_CPU_THREAD_TIMER = 1,
	/* perf_event_open software CPU clock per traced thread, delivering
	 * SIGPROF to its thread: not limited by the kernel tick.  Its clock
	 * also runs while a hypervisor steals the vCPU; samples are weighed
	 * by the thread's CPU clock, so they add up to CPU time (not for a
	 * user-only clock, at kernel.perf_event_paranoid 2).  One
	 * descriptor per thread, numbered from half the soft RLIMIT_NOFILE
	 * (at most from 512) and at most an eighth of that limit (at most
	 * 4096) in all; the threads past that bound, or whose event cannot be
	 * opened for want of descriptors, get THREAD_TIMER's timer. */
	GOTRACE_CPU_PERF = 2,
	/* The most accurate of the three that measures user and system time:
	 * PERF if perf events may count kernel time here (root, CAP_PERFMON
	 * or kernel.perf_event_paranoid <= 1), else THREAD_TIMER, else
	 * SETITIMER; gotrace_start_notes() names the choice.  Under load the
	 * kernel delivers CPU-timer signals (SETITIMER, THREAD_TIMER) at far
	 * below one per tick, and the CPU time after a thread's last signal
	 * goes unsampled; perf's clock is not tied to the tick.  With a
	 * per-thread source it samples only the threads alive at the start
	 * and those that make a traced call (under the preload library, where
	 * it is the default, every thread the program creates). */
	GOTRACE_CPU_AUTO = 3,
};

/* Event classes for gotrace_options.event_stacks. */
enum gotrace_stack_flags {
	GOTRACE_STACK_REGION = 1,    /* region begin */
	GOTRACE_STACK_LOG = 2,       /* log messages */
	GOTRACE_STACK_BLOCK = 4,     /* block and unblock (incl. the wrappers and
	                              * gotrace_go_block) */
	GOTRACE_STACK_SYSCALL = 8,   /* syscall begin */
	GOTRACE_STACK_GOROUTINE = 16,/* goroutine creation (gotrace_go_create:
	                              * the creator's stack) and task begin */
	GOTRACE_STACK_ALL = 31,
	/* gotrace_options_init's default: blocking and syscall profiles. */
	GOTRACE_STACK_DEFAULT = GOTRACE_STACK_BLOCK | GOTRACE_STACK_SYSCALL,
};

enum gotrace_crash_flags {
	GOTRACE_CRASH_NO_SIGNALS = 1, /* do not install fatal-signal handlers */
	GOTRACE_CRASH_NO_ATEXIT = 2,  /* do not finish the trace at exit() */
};

enum gotrace_clock {
	GOTRACE_CLOCK_AUTO = 0,
	GOTRACE_CLOCK_TSC = 1,       /* fails with EINVAL if not invariant */
	GOTRACE_CLOCK_MONOTONIC = 2,
};

/* Statistics of the current (or last) tracing session. */
typedef struct gotrace_stats {
	uint64_t generations;      /* generations completely written */
	uint64_t bytes_written;    /* bytes written to the output */
	uint64_t events_dropped;   /* events dropped (memory bound hit) */
	uint64_t threads_seen;     /* threads registered in this session */
	uint64_t buffered_peak;    /* peak buffered-but-unwritten bytes */
	uint64_t cpu_samples;      /* CPU samples written into the trace */
	uint64_t cpu_samples_lost; /* CPU samples lost (sample buffer full) */
	/* CPU samples taken on the library's own threads (the flusher,
	 * named "gotrace-flush", and the line resolver, "gotrace-sym"):
	 * the library's own CPU time.
	 * Included in cpu_samples; in the trace they carry that thread's own
	 * M (its kernel thread id), no P and no goroutine, and a stack in
	 * libgotrace -- never another thread's.  Only setitimer samples our
	 * threads (the per-thread sources arm only the program's threads). */
	uint64_t cpu_samples_tracer;
} gotrace_stats;

/* Fill *opt with defaults.  MT-safe, AS-safe. */
GOTRACE_API void gotrace_options_init(gotrace_options *opt);

/* Start tracing into fd (not closed by gotrace_stop) or into a file created
 * (truncated) at path (closed by gotrace_stop).  opt may be NULL for
 * defaults.  Returns 0, -GOTRACE_EBUSY if a session exists (also one that an
 * output error switched off and that is not stopped yet: gotrace_start_path
 * then leaves the file at path untouched), -GOTRACE_EINVAL (bad options or
 * fd), -GOTRACE_ESYS (path cannot be opened), -GOTRACE_ENOMEM, -GOTRACE_EIO
 * (the header could not be written); gotrace_last_error() says why.
 * MT-safe (serialised), AS-unsafe.
 *
 * Start writes the trace header itself, on the calling thread, so that an
 * unwritable output fails the start rather than the session.  SIGPIPE is
 * blocked during that write: a pipe without a reader gives -GOTRACE_EIO and
 * never kills the process (the SIGPIPE it raised is consumed; the program's
 * disposition, and a SIGPIPE that was already pending, are left alone).  A
 * pipe or socket that accepts nothing (a reader that does not read) makes
 * start fail with -GOTRACE_EIO after stop_timeout_ns, not block for good.
 *
 * fork().  Fork handlers installed by the first start keep the library
 * consistent across fork() at any time (a fork waits for a start or stop in
 * progress).  The child starts with tracing off: every annotation returns
 * at once, gotrace_task_begin returns 0, gotrace_flush and gotrace_stop
 * return -GOTRACE_ENOTON; it has no flusher, never writes into the parent's
 * trace (the parent's buffered events are left behind, unwritten), and the
 * file that gotrace_start_path opened is closed in the child.  The child may
 * start a trace of its own, into another file: a complete, independent
 * trace.  The handlers also call liburcu-bp's fork hooks (urcu_bp_*fork*
 * and urcu_bp_call_rcu_*fork*), which the library uses internally: a
 * program that uses liburcu-bp itself must not call those hooks too.  A
 * child gets no thread of the library's until it starts a trace (then the
 * flusher and liburcu's workers); under ThreadSanitizer, which by default
 * kills a child that starts a thread after a multi-threaded fork, such a
 * child needs die_after_fork=0 (GCC 12's may still abort it: "dup thread
 * with used id"). */
GOTRACE_API int gotrace_start_fd(int fd, const gotrace_options *opt);
GOTRACE_API int gotrace_start_path(const char *path, const gotrace_options *opt);

/* Flight recorder: start a session whose output is a bounded ring of the
 * most recent complete generations in memory instead of a file (Go 1.25's
 * runtime/trace.FlightRecorder, LTTng's snapshot sessions).  Nothing is
 * written until asked: gotrace_flight_write(fd), the signal
 * opt->flight_signal (to opt->flight_path), or a crash (to
 * opt->flight_path).  gotrace_stop discards the recording.  opt may be
 * NULL for defaults; the other options mean what they mean for a file
 * session (advance_period_ns: the granularity of the window; max_buffered:
 * the data not yet in the ring).
 *
 * Retention (at each generation end, as Go's recorder): the newest
 * complete generation, then older ones newest first while the window does
 * not yet reach flight_min_age_ns back from now AND the total stays within
 * flight_max_bytes.  MaxBytes wins over MinAge (as in Go), and unlike Go
 * it is a hard bound on the recorder's memory as a whole: the data on its
 * way into the ring (max_buffered is lowered to flight_max_bytes / 8, at
 * least 256 KiB, and its pool of spare buffers is a quarter of that) is
 * taken from it, and the ring, in 64 KiB blocks counted whole, gets the
 * rest.  The oldest whole generation goes first, also while a generation
 * is being collected.  Generations that a gotrace_flight_write is writing
 * count until it has written them (it lets go of each once written): the
 * recorder then waits for that, up to 100 ms per generation, rather than
 * grow (writers do not wait).  A generation is ended early when it
 * reaches an eighth of the ring, so that a burst does not make one
 * generation larger than the ring; a generation that still does not fit
 * (or that a write-out holds up longer than that) is not retained.  Memory
 * outside the bound, as in a file session: each traced thread's open
 * batch buffers (buffer_size each), the string and stack tables of the
 * current generation, and the CPU sample buffers when sampling.
 *
 * Returns what gotrace_start_fd returns; -GOTRACE_EINVAL for bad flight
 * options (flight_max_bytes below 1 MiB, a signal that cannot be caught,
 * a flight_path too long) too.  (gotrace_start_fd and _path refuse
 * flight_* options with -GOTRACE_EINVAL: a file session would ignore
 * them.)  MT-safe (serialised), AS-unsafe. */
GOTRACE_API int gotrace_start_flight(const gotrace_options *opt);

/* Write the flight recording to fd: ends the current generation (as
 * gotrace_flush), then writes the trace header and every retained
 * complete generation, oldest first: a valid trace on its own.  The
 * writing happens on the calling thread from a snapshot of the ring:
 * threads that emit meanwhile are never blocked, and the recorder goes on
 * recording.  Calls are serialised.  SIGPIPE is blocked during the write
 * (a closed pipe gives -GOTRACE_EIO).  Returns 0, -GOTRACE_ENOTON (no
 * flight session), -GOTRACE_EINVAL (bad fd), -GOTRACE_EIO (a write
 * failed; gotrace_last_error() says why; the session goes on).
 * MT-safe, AS-unsafe. */
GOTRACE_API int gotrace_flight_write(int fd);

/* Start tracing as the environment says, like gperftools' CPUPROFILE:
 *
 *   variable              value                                  default
 *   GOTRACE_OUT           trace file; %p: the process id, %%: %  (unset: off)
 *   GOTRACE_CPU_HZ        CPU samples per second, 0: none        0
 *   GOTRACE_CPU           setitimer | timer | perf | auto        setitimer
 *                         (GOTRACE_CPU_*; auto under the preload)
 *   GOTRACE_STACKS        region,log,block,syscall,goroutine     default
 *                         | all | default | none (event classes   (block,
 *                         with stacks; default: block,syscall)    syscall)
 *   GOTRACE_ADVANCE       generation period: 1s, 100ms, 500us    1s
 *   GOTRACE_MAX_BUFFERED  bound on unwritten data: 64M, 1G       64M
 *   GOTRACE_BUFFER_SIZE   per-thread batch buffer: 4k .. 64k     32k
 *   GOTRACE_STOP_TIMEOUT  wait for a stalled output: 5s          5s
 *   GOTRACE_CRASH         nosignals,noatexit | none              none
 *   GOTRACE_CLOCK         auto | tsc | monotonic                 auto
 *   GOTRACE_FLIGHT        1: flight recorder (gotrace_start_     0
 *                         flight); GOTRACE_OUT is then the file
 *                         that signal and crash dumps write
 *   GOTRACE_FLIGHT_MAX_BYTES  memory bound: 16M                   16M
 *   GOTRACE_FLIGHT_MIN_AGE    window kept: 10s                   10s
 *   GOTRACE_FLIGHT_SIGNAL     signal that dumps: USR2, 12, none   none
 *
 * (the fields of gotrace_options; sizes take k/M/G, durations ns/us/ms/s,
 * a bare number is bytes or nanoseconds).  Returns 0 if tracing started,
 * 1 if GOTRACE_OUT is unset (nothing done), or a negative gotrace_err: a
 * malformed value, an unknown GOTRACE_* variable (a misspelling would
 * otherwise pass unnoticed; names starting GOTRACE_TEST_ are left to test
 * tooling) or a failed start.  On failure it prints one line on stderr,
 * "gotrace: tracing off: <why>" -- the only output the library ever makes,
 * and only here -- and tracing stays off; the program carries on.
 * MT-safe (serialised), AS-unsafe. */
GOTRACE_API int gotrace_start_from_env(void);

/* The parsing half of gotrace_start_from_env, for launchers: fills *opt
 * (initialised first) and path (the expanded GOTRACE_OUT, at most
 * path_len - 1 bytes).  Returns 0, 1 (GOTRACE_OUT unset: opt still
 * filled), or -GOTRACE_EINVAL with gotrace_last_error() saying why.
 * Prints nothing.  MT-safe with respect to other threads that do not
 * change the environment, AS-unsafe. */
GOTRACE_API int gotrace_options_from_env(gotrace_options *opt, char *path, size_t path_len);

/* Stop tracing: ends the current generation, writes everything buffered,
 * joins the background flusher.  The trace is then complete.  Returns 0,
 * -GOTRACE_ENOTON if tracing is off, -GOTRACE_EIO if an output error stopped
 * tracing earlier (the trace holds every generation before the error), or
 * -GOTRACE_ESTALLED if the output stayed blocked for stop_timeout_ns.
 * MT-safe (serialised), AS-unsafe. */
GOTRACE_API int gotrace_stop(void);

/* End the current generation now and write it out before returning.
 * Returns 0, -GOTRACE_ENOTON, -GOTRACE_EIO.  MT-safe, AS-unsafe.
 *
 * How long it takes: the wait for threads inside a traced call to leave it
 * (microseconds each), the encoding of the generation (proportional to its
 * events, CPU samples and new stacks), at most 10 ms of waiting for source
 * lines, and the write (bounded by stop_timeout_ns for a stalled output);
 * on a loaded machine add the time the library's thread waits for a CPU.
 * Loading debug information never runs inside it: function names come
 * from the ELF symbol tables; source lines of a module whose DWARF is
 * small and in its own file (a program's own objects, typically) are read
 * at once, others (libc with its separate debug information: ~100 ms) on a
 * thread of the library's own ("gotrace-sym").  A frame whose line is not
 * known when its generation ends is written with its module's path as the
 * file and line 1, and with its line in later generations.  gotrace_stop
 * waits up to 200 ms for lines. */
GOTRACE_API int gotrace_flush(void);

/* End the current generation now and write everything out, for a
 * program's own fatal-error path (its panic function): after it the trace
 * ends with a complete generation holding every event emitted so far, and
 * tracing is off (the process is expected to die; gotrace_stop still
 * returns).  Uses only async-signal-safe calls and bounded waits (at most a
 * few seconds if the output or a thread is stuck).  Returns 0, -GOTRACE_EIO
 * if a complete final generation could not be written (every earlier one
 * is), -GOTRACE_ENOTON.  MT-safe, AS-safe.
 *
 * The fatal-signal handlers installed by start (unless
 * GOTRACE_CRASH_NO_SIGNALS) call the same flush for SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE, SIGABRT and SIGTRAP, on an alternate signal stack that each
 * traced thread gets at registration (unless it has its own), then chain to
 * the handler the program had installed before start, or restore the
 * default action and re-raise: the process dies of the same signal, with a
 * core dump where the system writes one.  A normal exit() finishes the trace
 * as gotrace_stop would (unless GOTRACE_CRASH_NO_ATEXIT).
 *
 * In a flight recorder session (gotrace_start_flight) the same flush
 * creates (truncates) the file flight_path and writes the trace header, the
 * retained generations and the generation in progress there (nothing, and
 * -GOTRACE_EIO, without a flight_path). */
GOTRACE_API int gotrace_crash_flush(void);

/* Statistics of the current or last session.  MT-safe, AS-safe. */
GOTRACE_API void gotrace_get_stats(gotrace_stats *st);

/* Flight recorder statistics (gotrace_get_flight_stats). */
typedef struct gotrace_flight_stats {
	/* Set by the caller to sizeof(gotrace_flight_stats): fields added
	 * later are then left alone for older binaries. */
	size_t struct_size;
	uint64_t max_bytes;        /* flight_max_bytes: the memory bound */
	uint64_t ring_cap;         /* the ring's part of it (the rest: the
	                            * queue into the ring and its pool) */
	uint64_t held_bytes;       /* ring blocks in use now: retained, being
	                            * collected, or held by a write-out */
	uint64_t generations;      /* complete generations retained now */
	uint64_t retained_bytes;   /* their bytes: a write-out now writes
	                            * these plus the header */
	uint64_t generations_lost; /* generations not retained: they did not
	                            * fit the ring (or found it held by a
	                            * write-out) */
} gotrace_flight_stats;

/* The flight recorder's state.  Returns 0, -GOTRACE_ENOTON (no flight
 * session), -GOTRACE_EINVAL (st NULL or struct_size too small).  MT-safe,
 * AS-safe. */
GOTRACE_API int gotrace_get_flight_stats(gotrace_flight_stats *st);

/* Events dropped by the calling thread in this session.  MT-safe, AS-safe. */
GOTRACE_API uint64_t gotrace_thread_dropped(void);

/* Text of the last error, or "" if none: of a failed start (bad options
 * included), or of the current or last session (output errors; stop keeps
 * them).  A successful start clears it; a failed one replaces it (but
 * -GOTRACE_EBUSY, which leaves the running session's).  The string stays
 * valid until the next start.  MT-safe, AS-safe. */
GOTRACE_API const char *gotrace_last_error(void);

/* What the current or last session's start chose instead of what was
 * asked, "" if nothing: a CPU source that fell back ("cpu profiling:
 * perf_event_open refused (...): falling back to per-thread CPU timers"),
 * perf counting user time only.  Not errors: after a successful start
 * gotrace_last_error() is "".  Valid until the next start.  MT-safe,
 * AS-safe. */
GOTRACE_API const char *gotrace_start_notes(void);

/* Is tracing on?  MT-safe, AS-safe. */
static inline int gotrace_enabled(void);

/* ---- annotations (Go's runtime/trace) ----------------------------------
 * Strings: NULL is treated as "" ; strings longer than 1024 bytes (the
 * format's limit) are truncated to their first 1024 bytes.  Names (task and
 * region names, log categories) are interned per generation; log messages
 * are written as they are.
 *
 * All of these are MT-safe and AS-unsafe, and do nothing while tracing is off.
 */

/* Begin a task named name, child of parent (0: no parent).  Returns the new
 * task's id (never 0, unique in the process, not consecutive: each thread
 * takes ids in blocks), or 0 if tracing is off. */
static inline uint64_t gotrace_task_begin(uint64_t parent, const char *name);
/* End a task.  Ending id 0 or an id beyond every id handed out writes
 * nothing; another id that was never begun writes a task end that readers
 * take for a task begun before the trace.  Tasks are not bound to
 * threads: any thread may end a task. */
static inline void gotrace_task_end(uint64_t task);

/* Begin / end a region on the calling thread, within task (0: none).
 * Regions nest per thread.  Ending a region that is not open on this thread
 * writes nothing.  Ending one that is open but not innermost first ends the
 * regions opened inside it (as if unwound).  Nesting deeper than 64 levels
 * is not traced (the extra begins and their ends write nothing; an end is
 * matched against those untraced regions first, innermost first, then
 * against the traced ones). */
static inline void gotrace_region_begin(uint64_t task, const char *name);
static inline void gotrace_region_end(uint64_t task, const char *name);

/* Log message msg under category cat (may be NULL) within task (0: none).
 * A message logged again from the same address with the same text (up to
 * 39 bytes) in the same generation refers to the string already in the
 * trace instead of repeating it: a fixed message costs about 6 bytes per
 * log.  Any other message is written out each time. */
static inline void gotrace_log(uint64_t task, const char *cat, const char *msg);
/* gotrace_log with a printf format: the message is formatted into a
 * 1024-byte buffer of the callee's (the format's limit; longer messages
 * are truncated) only while tracing is on. */
GOTRACE_API void gotrace_logf(uint64_t task, const char *cat, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The fast path for names that are string literals: the _lit forms take a
 * literal (a compile error otherwise) and keep a static descriptor per call
 * site, so that the call skips measuring, looking up and copying the name:
 * the cheapest annotations (BENCHMARKS.md).  They mix freely with the
 * forms above (a region begun with one ends with the other).  GCC/Clang
 * (statement expressions).  MT-safe, AS-unsafe, nothing while tracing is
 * off. */
#define gotrace_region_begin_lit(task, lit)                                                \
	do {                                                                               \
		if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))                                     \
			(void)gotrace_region_begin_site_((task), GOTRACE_SITE_(lit));      \
	} while (0)
#define gotrace_region_end_lit(task, lit)                                                  \
	do {                                                                               \
		if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))                                     \
			gotrace_region_end_site_((task), GOTRACE_SITE_(lit), 0);           \
	} while (0)
#define gotrace_task_begin_lit(parent, lit)                                                \
	(__extension__({                                                                   \
		uint64_t gotrace_t_ = 0;                                                   \
		if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))                                     \
			gotrace_t_ = gotrace_task_begin_site_((parent), GOTRACE_SITE_(lit)); \
		gotrace_t_;                                                                \
	}))
/* Log msg (any string) under the literal category cat_lit. */
#define gotrace_log_lit(task, cat_lit, msg)                                                \
	do {                                                                               \
		if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))                                     \
			gotrace_log_site_((task), GOTRACE_SITE_(cat_lit), (msg));          \
	} while (0)

/* A region that ends itself: GOTRACE_REGION(task, "name"); at the top of a
 * block begins the region there and ends it when the block is left, by any
 * path (GCC/Clang cleanup attribute); GOTRACE_REGION_LIT(task, "literal")
 * is the same on the literal fast path, and its end finds its region
 * without comparing names.  gotrace_region_open() / gotrace_region_close()
 * are the same as a pair of calls on a handle, so that the end does not
 * repeat the task and the name. */
typedef struct gotrace_site gotrace_site;
typedef struct gotrace_region {
	uint64_t task;
	const char *name;     /* NULL once closed */
	gotrace_site *site_;  /* the _lit forms' call site, else NULL */
	uint32_t at_;         /* the _lit forms: where the begin put it (+1) */
} gotrace_region_t;
static inline gotrace_region_t gotrace_region_open(uint64_t task, const char *name);
static inline void gotrace_region_close(gotrace_region_t *r);
#define GOTRACE_CAT2_(a, b) a##b
#define GOTRACE_CAT_(a, b) GOTRACE_CAT2_(a, b)
#define GOTRACE_REGION(task, name)                                                         \
	gotrace_region_t GOTRACE_CAT_(gotrace_region_, __LINE__)                           \
		__attribute__((cleanup(gotrace_region_close), unused)) =                   \
			gotrace_region_open((task), (name))
#define gotrace_region_open_lit(task, lit) gotrace_region_open_site_((task), GOTRACE_SITE_(lit))
#define GOTRACE_REGION_LIT(task, lit)                                                      \
	gotrace_region_t GOTRACE_CAT_(gotrace_region_, __LINE__)                           \
		__attribute__((cleanup(gotrace_region_close), unused)) =                   \
			gotrace_region_open_lit((task), lit)

/* Name the calling thread's goroutine (a Go goroutine label, shown by
 * `go tool trace`).  May be called before tracing starts: the name is kept
 * for the thread's lifetime and written in every session.  MT-safe,
 * AS-unsafe. */
GOTRACE_API void gotrace_thread_name(const char *name);

/* Name another thread's goroutine, as pthread_setname_np(th, name) names
 * it for the kernel (a creator naming its threads).  The label is written
 * by th itself, at its next traced call; a thread that has not made its
 * first traced call yet gets it when it does (up to 16 such names are
 * kept per session, oldest dropped first).  th == pthread_self() is
 * gotrace_thread_name(name).  Returns 0 or -GOTRACE_ENOTON (tracing off;
 * nothing kept).  MT-safe, AS-unsafe. */
GOTRACE_API int gotrace_thread_name_of(pthread_t th, const char *name);

/* Name the calling thread's entry function, for threads that all start in
 * the same trampoline (a thread pool's start routine): `go tool trace`
 * groups goroutines by entry function, which is otherwise the outermost
 * function of the program on the thread's stack at its first traced call.
 * gotrace_thread_entry(fn) takes a function (symbolized like any frame);
 * gotrace_thread_entry_name(name) a name as is (at most 63 bytes).  The
 * first call of a thread wins; it holds for the thread's lifetime, in every
 * session, and may be made before tracing starts.  Call it before the
 * thread's first traced event: the goroutine's creation is written with
 * the entry it had then (later generations show the new one).  MT-safe,
 * AS-unsafe. */
#define gotrace_thread_entry(fn) gotrace_thread_entry_((const void *)(uintptr_t)(fn))
GOTRACE_API void gotrace_thread_entry_(const void *fn);
GOTRACE_API void gotrace_thread_entry_name(const char *name);

/* ---- scheduling: blocking calls, blocking, waking ----------------------
 * A traced thread is, in the trace, an M holding its own P and running its
 * own goroutine.  These calls describe what that goroutine does besides
 * running.  All are MT-safe and AS-unsafe (they may register the thread or
 * allocate on a slow path), and do nothing while tracing is off.
 *
 * Syscalls.  Bracket a blocking call (I/O, sleep, a system call, a blocking
 * library call) with gotrace_syscall_begin() / gotrace_syscall_end() on the
 * same thread.  Brackets nest (only the outermost is traced).  Annotations
 * (tasks, regions, logs) made inside a bracket are not traced.  A thread
 * that stays inside a bracket across a generation boundary loses its P at
 * the boundary, as a Go goroutine in a syscall does: `go tool trace` then
 * counts the rest of the call as "syscall blocking" and shows the P idle;
 * the end reacquires it.  An exiting thread ends its open bracket. */
static inline void gotrace_syscall_begin(void);
static inline void gotrace_syscall_end(void);

/* A goroutine that other threads can wake (a thread's own, gotrace_self,
 * or an explicit one, gotrace_go_create): a small value, copied freely.
 * {NULL, 0} is "none". */
typedef struct gotrace_goroutine {
	void *rec_;
	uint64_t id_;
} gotrace_goroutine_t;

/* The calling thread's goroutine (registers the thread if needed; writes no
 * event).  {NULL, 0} if tracing is off.  Valid while the thread lives and
 * tracing stays on; using it after the thread exited is undefined. */
GOTRACE_API gotrace_goroutine_t gotrace_self(void);

/* The calling thread's goroutine waits for something another thread will
 * do: GoBlock with a Go block reason, which `go tool trace` groups by:
 * "sync", "sync.Mutex.Lock", "sync.Cond.Wait", "chan receive", "chan send",
 * "select" (Synchronization blocking profile: reasons containing sync, chan,
 * select), "network" (Network blocking profile), "sleep", … (NULL: "").
 * The thread keeps its P.  It resumes (GoStart) at gotrace_block_end() or at
 * its next traced call.  Call it right before the real wait. */
static inline void gotrace_block(const char *reason);
static inline void gotrace_block_end(void);

/* Wake goroutine g, blocked with gotrace_block on another thread: the trace
 * shows this thread unblocking it (an arrow in `go tool trace`).  Returns 1
 * if recorded, 0 if g was not blocked (then nothing is written: call it
 * after the target's gotrace_block, e.g. under the lock that protects the
 * condition it waits for).  A blocked goroutine that nobody wakes wakes
 * itself at gotrace_block_end. */
static inline int gotrace_unblock(gotrace_goroutine_t g);

/* Drop-in instrumented pthread calls: same arguments and results.  An
 * uncontended lock (trylock succeeds) records nothing; a contended one is a
 * block "sync.Mutex.Lock" from the moment it had to wait until it got the
 * lock; cond waits are blocks "sync.Cond.Wait".  The _named variants add a
 * name to the reason ("sync.Mutex.Lock queue"), which `go tool trace` shows
 * and groups by; the reason keeps "sync", so the wait stays in the
 * synchronization blocking profile (`go tool trace -pprof=sync`, with the
 * waiter's stack under GOTRACE_STACK_BLOCK, on by default).  NULL or ""
 * name: the plain reason.  Names longer than about 100 bytes are cut.
 *
 * Who woke whom.  A waiter that nobody is known to have woken records its
 * own wake-up.  gotrace_mutex_unlock, gotrace_cond_signal and
 * gotrace_cond_broadcast record the unblock of the waiters of that object
 * that are inside a wrapped wait (an arrow from the releasing thread in
 * `go tool trace`), before doing the real call: broadcast all of them
 * (up to 256), signal and unlock the one that began waiting first (the
 * system does not say which one it wakes; if it wakes another, that one
 * records its own wake-up and the trace stays valid).  Their cost while
 * tracing is on: nothing extra while no thread is in a wrapped wait,
 * otherwise a walk over the traced threads.
 *
 * All MT-safe, AS-unsafe (like the pthread calls they wrap). */
static inline int gotrace_mutex_lock(pthread_mutex_t *m);
static inline int gotrace_mutex_lock_named(pthread_mutex_t *m, const char *name);
static inline int gotrace_mutex_unlock(pthread_mutex_t *m);
GOTRACE_API int gotrace_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
GOTRACE_API int gotrace_cond_wait_named(pthread_cond_t *c, pthread_mutex_t *m, const char *name);
GOTRACE_API int gotrace_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                       const struct timespec *abstime);
GOTRACE_API int gotrace_cond_timedwait_named(pthread_cond_t *c, pthread_mutex_t *m,
                                             const struct timespec *abstime, const char *name);
GOTRACE_API int gotrace_cond_signal(pthread_cond_t *c);
GOTRACE_API int gotrace_cond_broadcast(pthread_cond_t *c);

/* ---- goroutines of user-level schedulers --------------------------------
 * A C runtime with green threads (coroutines, fibers, tasks of an event
 * loop) describes each of them as an explicit goroutine, so that `go tool
 * trace` analyses them like Go's: execution, scheduling wait, blocking and
 * syscall time per goroutine, grouped by name.
 *
 * A goroutine is created Runnable; gotrace_go_start() runs it on the
 * calling thread (the thread's own goroutine is then suspended: it waits
 * while the thread runs explicit goroutines, and resumes at the thread's
 * next traced call made outside them); gotrace_go_stop() (yield: Runnable)
 * or gotrace_go_block() (Waiting, until gotrace_unblock() or its next
 * start) takes it off the thread.  It may run on any thread each time.
 * While it runs, the calling thread's annotations, syscall brackets and
 * gotrace_block calls are its own (regions opened in it move with it).
 * gotrace_go_destroy() ends it: on the thread running it, or when it is not
 * running (it is then run to its end on the calling thread, as a Go
 * goroutine must run to exit).
 *
 * Handles are gotrace_goroutine_t values (copy freely); gotrace_unblock()
 * wakes a blocked explicit goroutine like a blocked thread.  A handle is
 * valid from create to destroy; using it after destroy is undefined.
 * Goroutines created while tracing is off get {NULL, 0} (every call on it
 * does nothing); those of an ended session are no longer traced but must
 * still be destroyed.  Ids never collide with threads' goroutine ids.
 *
 * Calls made on a goroutine in the wrong state write nothing: start of one
 * that runs (or is blocked inside gotrace_block) on another thread, stop /
 * block of one that is not running on the calling thread, any call made
 * inside a syscall bracket of the thread's own goroutine (destroy then only
 * forgets the goroutine).  Starting a goroutine while another one runs on
 * the thread stops that one first.
 *
 * All are MT-safe (a goroutine may be started on one thread and unblocked
 * from another; the caller keeps one goroutine from being started, stopped
 * or destroyed by two threads at once, as any scheduler does) and AS-unsafe.
 */

/* Create a goroutine named name (the function name `go tool trace` groups
 * it by; NULL: "goroutine") on behalf of the calling thread, which is its
 * creator in the trace (with its stack if GOTRACE_STACK_GOROUTINE).
 * Allocates a small record (freed by gotrace_go_destroy) and takes a
 * registry lock briefly.  {NULL, 0} if tracing is off or out of memory. */
GOTRACE_API gotrace_goroutine_t gotrace_go_create(const char *name);
/* gotrace_go_create with an entry function: the goroutine is grouped
 * under fn, symbolised like any frame (name, file and line), as Go groups
 * goroutines by their start function.  name is what a crashed program's
 * trace shows if fn was never symbolised before the crash (NULL:
 * "goroutine").  fn is never called. */
#define gotrace_go_create_fn(fn, name) \
	gotrace_go_create_fn_((const void *)(uintptr_t)(fn), (name))
GOTRACE_API gotrace_goroutine_t gotrace_go_create_fn_(const void *fn, const char *name);
/* Run g on the calling thread (GoStart; after GoCreate if its creation
 * could not be written, after GoUnblock if it was blocked and nobody woke
 * it). */
static inline void gotrace_go_start(gotrace_goroutine_t g);
/* g, running on the calling thread, yields: Runnable (GoStop). */
static inline void gotrace_go_stop(gotrace_goroutine_t g);
/* g, running on the calling thread, waits for reason (see gotrace_block
 * for the reasons `go tool trace` knows): Waiting (GoBlock) until
 * gotrace_unblock(g) or its next start. */
static inline void gotrace_go_block(gotrace_goroutine_t g, const char *reason);
/* End g (GoDestroy) and free its record.  Always call it, tracing on or
 * off. */
GOTRACE_API void gotrace_go_destroy(gotrace_goroutine_t g);
/* The calling thread, new to the session, takes g as its own goroutine:
 * the thread's goroutine is the one its creator made (GoCreate with the
 * creator's stack, grouped under gotrace_go_create_fn's fn), not one the
 * thread creates itself.  The usual pattern: the creator calls
 * gotrace_go_create_fn(start_routine, NULL) before pthread_create and
 * hands g to the new thread, whose first traced call is this one (g
 * starts at once: GoStart).  g must not have been started or destroyed;
 * afterwards it is no longer an explicit goroutine (the thread's exit
 * ends it; gotrace_self() returns it; the creator's copy of g must not be
 * used).  The handle is consumed either way: on error g is destroyed and
 * the thread gets a goroutine of its own at its first traced call.
 * Returns 0, -GOTRACE_EINVAL (g stale or already started, or the thread
 * already traced in this session) or -GOTRACE_ENOMEM.  MT-safe, AS-unsafe
 * (registers the thread: allocates, takes a lock). */
GOTRACE_API int gotrace_thread_adopt(gotrace_goroutine_t g);

/* ---- internals of the inline wrappers (not part of the API) ------------ */
/* A _lit call site: the literal, its length, and cache_, which the library
 * writes and reads atomically from any thread (the literal's string id in
 * one generation).  One static instance per call site. */
struct gotrace_site {
	const char *name_;
	uint32_t len_;
	uint64_t cache_;
};
#define GOTRACE_SITE_(lit)                                                                 \
	(__extension__({                                                                   \
		static gotrace_site gotrace_site_ = { "" lit, sizeof("" lit) - 1, 0 };      \
		&gotrace_site_;                                                            \
	}))
GOTRACE_API uint32_t gotrace_region_begin_site_(uint64_t task, gotrace_site *s);
GOTRACE_API void gotrace_region_end_site_(uint64_t task, gotrace_site *s, uint32_t at);
GOTRACE_API uint64_t gotrace_task_begin_site_(uint64_t parent, gotrace_site *s);
GOTRACE_API void gotrace_log_site_(uint64_t task, gotrace_site *cat, const char *msg);
/* gotrace_on_ is non-zero while tracing is on.  Written (atomically) only
 * by start, stop and the crash flush; read by everyone with a relaxed load: a
 * stale value is harmless because the out-of-line functions re-check the
 * generation under the thread's seqlock. */
GOTRACE_API extern int gotrace_on_;
GOTRACE_API uint64_t gotrace_task_begin_(uint64_t parent, const char *name);
GOTRACE_API void gotrace_task_end_(uint64_t task);
GOTRACE_API void gotrace_region_begin_(uint64_t task, const char *name);
GOTRACE_API void gotrace_region_end_(uint64_t task, const char *name);
GOTRACE_API void gotrace_log_(uint64_t task, const char *cat, const char *msg);
GOTRACE_API void gotrace_syscall_begin_(void);
GOTRACE_API void gotrace_syscall_end_(void);
GOTRACE_API void gotrace_block_(const char *reason);
GOTRACE_API void gotrace_block_end_(void);
GOTRACE_API int gotrace_unblock_(gotrace_goroutine_t g);
GOTRACE_API int gotrace_mutex_lock_(pthread_mutex_t *m);
GOTRACE_API int gotrace_mutex_lock_named_(pthread_mutex_t *m, const char *name);
GOTRACE_API int gotrace_mutex_unlock_(pthread_mutex_t *m);
GOTRACE_API void gotrace_go_start_(gotrace_goroutine_t g);
GOTRACE_API void gotrace_go_stop_(gotrace_goroutine_t g);
GOTRACE_API void gotrace_go_block_(gotrace_goroutine_t g, const char *reason);

static inline int gotrace_enabled(void) { return GOTRACE_ON_() != 0; }

static inline uint64_t gotrace_task_begin(uint64_t parent, const char *name)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		return gotrace_task_begin_(parent, name);
	return 0;
}
static inline void gotrace_task_end(uint64_t task)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_task_end_(task);
}
static inline void gotrace_region_begin(uint64_t task, const char *name)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_region_begin_(task, name);
}
static inline void gotrace_region_end(uint64_t task, const char *name)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_region_end_(task, name);
}
static inline gotrace_region_t gotrace_region_open(uint64_t task, const char *name)
{
	gotrace_region_t r = { task, name ? name : "", NULL, 0 };
	gotrace_region_begin(task, name);
	return r;
}

static inline gotrace_region_t gotrace_region_open_site_(uint64_t task, gotrace_site *s)
{
	gotrace_region_t r = { task, s->name_, s, 0 };
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		r.at_ = gotrace_region_begin_site_(task, s);
	return r;
}

static inline void gotrace_region_close(gotrace_region_t *r)
{
	if (r->name) {
		if (r->site_) {
			if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
				gotrace_region_end_site_(r->task, r->site_, r->at_);
		} else {
			gotrace_region_end(r->task, r->name);
		}
		r->name = NULL;
	}
}

static inline void gotrace_log(uint64_t task, const char *cat, const char *msg)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_log_(task, cat, msg);
}

static inline void gotrace_syscall_begin(void)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_syscall_begin_();
}
static inline void gotrace_syscall_end(void)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_syscall_end_();
}
static inline void gotrace_block(const char *reason)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_block_(reason);
}
static inline void gotrace_block_end(void)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_block_end_();
}
static inline int gotrace_mutex_lock(pthread_mutex_t *m)
{
	/* Uncontended: one trylock, inline. */
	int r = pthread_mutex_trylock(m);
	if (GOTRACE_LIKELY_OFF(r != 0))
		return gotrace_mutex_lock_(m);
	return 0;
}
static inline int gotrace_mutex_lock_named(pthread_mutex_t *m, const char *name)
{
	int r = pthread_mutex_trylock(m);
	if (GOTRACE_LIKELY_OFF(r != 0))
		return gotrace_mutex_lock_named_(m, name);
	return 0;
}
static inline int gotrace_mutex_unlock(pthread_mutex_t *m)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		return gotrace_mutex_unlock_(m);
	return pthread_mutex_unlock(m);
}
static inline int gotrace_unblock(gotrace_goroutine_t g)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		return gotrace_unblock_(g);
	return 0;
}

static inline void gotrace_go_start(gotrace_goroutine_t g)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_go_start_(g);
}
static inline void gotrace_go_stop(gotrace_goroutine_t g)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_go_stop_(g);
}
static inline void gotrace_go_block(gotrace_goroutine_t g, const char *reason)
{
	if (GOTRACE_LIKELY_OFF(GOTRACE_ON_()))
		gotrace_go_block_(g, reason);
}

#ifdef __cplusplus
}
#endif
#endif /* GOTRACE_H */
