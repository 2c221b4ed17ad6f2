/*
 * Crash-time flush: a child traces, logs known messages, then dies.  For
 * each way of dying: the child died of the same signal as an untraced run
 * (core dump too, where the system writes one), Go's validators accept the
 * trace, and every event the child emitted before the crash is in it.
 */
#define _GNU_SOURCE 1
#undef NDEBUG /* the assert() scenario needs assert */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <assert.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracecheck.h"

#define NLOGS 300

enum how { NULLDEREF, ABORT, ASSERT, STACKOVERFLOW, SIGBUS_MMAP, RAISE_OTHER_THREAD, IN_REGION, NHOW };
static const char *how_name[] = { "nullderef", "abort", "assert", "stackoverflow", "sigbus",
                                  "raise-other-thread", "in-region" };
static const int how_sig[] = { SIGSEGV, SIGABRT, SIGABRT, SIGSEGV, SIGBUS, SIGSEGV, SIGSEGV };

static volatile int sink;

static int recurse(int n)
{
	volatile char pad[512];
	pad[0] = (char)n;
	if (sink != -1) /* always true; hides the recursion from the compiler */
		return recurse(n + 1) + pad[0];
	return 0;
}

static void die(enum how how)
{
	switch (how) {
	case NULLDEREF:
	case IN_REGION:
		/* NULL + 16: a null struct member (UBSan would catch a plain NULL). */
		sink = *(volatile int *)(uintptr_t)(sink + 16);
		break;
	case ABORT:
		abort();
	case ASSERT:
		assert(sink == 12345);
		break;
	case STACKOVERFLOW:
		sink = recurse(0);
		break;
	case SIGBUS_MMAP: {
		char path[] = "/tmp/gotrace-sigbus-XXXXXX";
		int fd = mkstemp(path);
		unlink(path);
		if (ftruncate(fd, 4096) != 0)
			_exit(3);
		volatile char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (ftruncate(fd, 0) != 0)
			_exit(3);
		p[0] = 1; /* beyond the end of the file: SIGBUS */
		break;
	}
	default:
		break;
	}
	_exit(2); /* not reached */
}

/* Second thread: waits until main has logged, then raises SIGSEGV itself. */
static volatile int main_logged;
static void *raiser(void *arg)
{
	(void)arg;
	gotrace_log(0, "crash", "raiser up");
	while (!__atomic_load_n(&main_logged, __ATOMIC_ACQUIRE))
		;
	raise(SIGSEGV);
	return NULL;
}

/* The child: trace to fd (if >= 0), log NLOGS known messages, die. */
static void child(enum how how, int fd)
{
	if (fd >= 0) {
		gotrace_options o;
		gotrace_options_init(&o);
		o.advance_period_ns = 20 * 1000 * 1000;
		stress_options(&o, STRESS_BUFFERS | STRESS_ADVANCE);
		if (gotrace_start_fd(fd, &o) != 0)
			_exit(4);
	}
	char msg[32];
	for (int i = 0; i < NLOGS; i++) {
		snprintf(msg, sizeof msg, "ev-%d", i);
		gotrace_log(0, "crash", msg);
		if (i % 100 == 99) {
			struct timespec d = { 0, 25 * 1000 * 1000 }; /* cross advances */
			nanosleep(&d, NULL);
		}
	}
	gotrace_log(0, "crash", "about to die");
	if (how == IN_REGION)
		gotrace_region_begin(0, "dying region");
	if (how == RAISE_OTHER_THREAD) {
		pthread_t th;
		pthread_create(&th, NULL, raiser, NULL);
		__atomic_store_n(&main_logged, 1, __ATOMIC_RELEASE);
		for (int i = 0;; i++) { /* emit until killed */
			snprintf(msg, sizeof msg, "late-%d", i);
			gotrace_log(0, "late", msg);
		}
	}
	die(how);
}

/* Run one scenario; returns the wait status.  traced: trace into path. */
static int run(enum how how, const char *path, bool use_pipe)
{
	int fd = -1, pfd[2] = { -1, -1 };
	if (path && !use_pipe)
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (path && use_pipe)
		assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The test runner's own fault handlers must not survive into
		 * the child: it has to die like a plain program. */
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
		setrlimit(RLIMIT_CORE, &rl);
		if (chdir(getenv("GOTRACE_CORE_DIR")) != 0)
			_exit(5);
		if (use_pipe) {
			close(pfd[0]);
			child(how, pfd[1]);
		}
		child(how, fd);
	}
	if (use_pipe) {
		close(pfd[1]);
		int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		char buf[65536];
		ssize_t n;
		while ((n = read(pfd[0], buf, sizeof buf)) > 0)
			assert_int_equal(write(out, buf, (size_t)n), n);
		close(out);
		close(pfd[0]);
	}
	if (fd >= 0)
		close(fd);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void check_trace(const char *path, enum how how)
{
	assert_int_equal(judge_trace(path), 0);
	static const char *rd[] = { "go1.23", "new" };
	for (int r = 0; r < 2; r++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, rd[r], &s), 0);
		int seen[NLOGS] = { 0 }, last = 0, late = 0, late_max = -1, region = 0;
		for (size_t i = 0; i < s.n; i++) {
			const struct tline *l = &s.lines[i];
			if (!strcmp(l->kind, "regionbegin") && !strcmp(tl_get(l, "name"), "dying region"))
				region++;
			if (strcmp(l->kind, "log") != 0)
				continue;
			const char *cat = tl_get(l, "cat"), *msg = tl_get(l, "msg");
			int k;
			if (!strcmp(cat, "crash") && sscanf(msg, "ev-%d", &k) == 1 && k >= 0 && k < NLOGS)
				seen[k]++;
			if (!strcmp(cat, "crash") && !strcmp(msg, "about to die"))
				last++;
			if (!strcmp(cat, "late") && sscanf(msg, "late-%d", &k) == 1) {
				assert_int_equal(k, late_max + 1); /* no gap */
				late_max = k;
				late++;
			}
		}
		for (int k = 0; k < NLOGS; k++)
			assert_int_equal(seen[k], 1);
		assert_int_equal(last, 1);
		if (how == IN_REGION)
			assert_int_equal(region, 1);
		if (how == RAISE_OTHER_THREAD)
			printf("  %s: %d events of the emitting thread before the crash, all present\n", rd[r], late);
		tsum_free(&s);
	}
}

static void scenario(enum how how, bool use_pipe)
{
	char *path = tmp_trace_path(how_name[how]);
	int st_untraced = run(how, NULL, false);
	int st = run(how, path, use_pipe);
	printf("%s (%s): untraced signal %d core %d; traced signal %d core %d\n", how_name[how],
	       use_pipe ? "pipe" : "file", WIFSIGNALED(st_untraced) ? WTERMSIG(st_untraced) : -1,
	       WCOREDUMP(st_untraced) ? 1 : 0, WIFSIGNALED(st) ? WTERMSIG(st) : -1, WCOREDUMP(st) ? 1 : 0);
	assert_true(WIFSIGNALED(st_untraced));
	assert_int_equal(WTERMSIG(st_untraced), how_sig[how]);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), WTERMSIG(st_untraced));
	assert_int_equal(!!WCOREDUMP(st), !!WCOREDUMP(st_untraced));
	check_trace(path, how);
	unlink(path);
	free(path);
}

static void test_nullderef_file(void **s) { (void)s; scenario(NULLDEREF, false); }
static void test_nullderef_pipe(void **s) { (void)s; scenario(NULLDEREF, true); }
static void test_abort(void **s) { (void)s; scenario(ABORT, true); }
static void test_assert(void **s) { (void)s; scenario(ASSERT, false); }
static void test_stack_overflow(void **s) { (void)s; scenario(STACKOVERFLOW, false); }
static void test_sigbus(void **s) { (void)s; scenario(SIGBUS_MMAP, false); }
static void test_raise_other_thread(void **s) { (void)s; scenario(RAISE_OTHER_THREAD, true); }
static void test_in_region(void **s) { (void)s; scenario(IN_REGION, false); }

/* Event stacks (GOTRACE_STACK_ALL): block, unblock and syscall events carry
 * ids of the generation's event-stack table (src/stacks/evstack.c).  The
 * child blocks and syscalls in every generation (their stacks symbolised
 * by the flusher), then, in the crash generation, from call paths never
 * seen before (no cached symbols: the crash flush can only describe them
 * from data prepared in advance), and dies of a NULL dereference.  Every
 * stack id the final generation uses must be defined in it, with complete
 * frames: the validators reject the trace otherwise. */
static volatile int evs_waker_go, evs_waker_done, evs_sink; /* not sink: die() needs it 0 */
static gotrace_goroutine_t evs_sleeper_g;

static void *evs_sleeper(void *arg)
{
	(void)arg;
	gotrace_log(0, "crash", "sleeper up");
	evs_sleeper_g = gotrace_self(); /* published by the release of evs_waker_go */
	for (;;) {
		gotrace_block("chan receive");
		__atomic_store_n(&evs_waker_go, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&evs_waker_done, __ATOMIC_ACQUIRE))
			;
		__atomic_store_n(&evs_waker_done, 0, __ATOMIC_RELAXED);
		gotrace_block_end();
	}
	return NULL;
}

/* depth extra frames, then a block/unblock pair and a syscall: one more
 * distinct stack per depth. */
static __attribute__((noinline)) void evs_events(int depth)
{
	if (depth > 0) {
		evs_events(depth - 1);
		evs_sink++; /* not a tail call */
		return;
	}
	while (!__atomic_load_n(&evs_waker_go, __ATOMIC_ACQUIRE))
		;
	__atomic_store_n(&evs_waker_go, 0, __ATOMIC_RELAXED);
	gotrace_unblock(evs_sleeper_g);
	__atomic_store_n(&evs_waker_done, 1, __ATOMIC_RELEASE);
	gotrace_syscall_begin();
	gotrace_syscall_end();
}

/* Call paths used only in the crash generation. */
static __attribute__((noinline)) void evs_fresh_b(int depth)
{
	evs_events(depth);
	evs_sink++;
}
static __attribute__((noinline)) void evs_fresh_a(int depth)
{
	evs_fresh_b(depth);
	evs_sink++;
}

static void evs_child(const char *path)
{
	gotrace_options o;
	gotrace_options_init(&o);
	/* Generations end only at our flushes below: an advance landing
	 * between the final block and syscall (a few microseconds, but
	 * milliseconds when their first unwind is cold under ASan) left the
	 * crash generation without the block in about 1 run in 20. */
	o.advance_period_ns = 10ull * 1000 * 1000 * 1000;
	o.event_stacks = GOTRACE_STACK_ALL;
	if (gotrace_start_path(path, &o) != 0)
		_exit(4);
	pthread_t th;
	pthread_create(&th, NULL, evs_sleeper, NULL);
	char msg[32];
	for (int i = 0; i < NLOGS; i++) {
		snprintf(msg, sizeof msg, "ev-%d", i);
		gotrace_log(0, "crash", msg);
		if (i % 100 == 99) {
			evs_events(i / 100);
			gotrace_block("sleep");
			struct timespec d = { 0, 2 * 1000 * 1000 };
			nanosleep(&d, NULL);
			gotrace_block_end();
			gotrace_flush(); /* a new generation every 100 logs */
		}
	}
	for (int k = 0; k < 8; k++)
		evs_fresh_a(k);
	gotrace_log(0, "crash", "about to die");
	/* A block and a syscall of our own right before the crash: the crash
	 * generation holds them whenever an advance lands inside the
	 * handshakes above (a loaded run once ended a generation between the
	 * sleeper's last block and the last syscall: 0 blocks in the crash
	 * generation). */
	gotrace_block("final");
	gotrace_block_end();
	gotrace_syscall_begin();
	gotrace_syscall_end();
	die(NULLDEREF);
}

static void test_event_stacks(void **s)
{
	(void)s;
	char *path = tmp_trace_path("evstacks");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		evs_child(path);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
	check_trace(path, NULLDEREF);
	/* The crash generation holds blocks and syscalls with stacks. */
	static const char *rd[] = { "go1.23", "new" };
	for (int r = 0; r < 2; r++) {
		struct tsum ts;
		assert_int_equal(tsum_load(path, rd[r], &ts), 0);
		int64_t last = 0;
		for (size_t i = 0; i < ts.n; i++)
			if (ts.lines[i].gen > last)
				last = ts.lines[i].gen;
		int blocks = 0, syscalls = 0;
		for (size_t i = 0; i < ts.n; i++) {
			const struct tline *l = &ts.lines[i];
			if (l->gen != last || strcmp(l->kind, "gostate") != 0 || !*tl_get(l, "stack"))
				continue;
			if (!strcmp(tl_get(l, "to"), "Waiting"))
				blocks++;
			if (!strcmp(tl_get(l, "to"), "Syscall"))
				syscalls++;
		}
		printf("  %s: final generation %lld: %d blocks, %d syscalls with stacks\n", rd[r],
		       (long long)last, blocks, syscalls);
		assert_true(blocks >= 1);
		assert_true(syscalls >= 1);
		tsum_free(&ts);
	}
	unlink(path);
	free(path);
}

/* Crash while sampling at 1 kHz: two threads burn CPU while the generation
 * advances (gotrace_flush: their samples are drained and symbolised, so the
 * crash path has a symbol cache and a module table from before the crash),
 * then, in the final generation, each burns CPU_FINAL_MS more of its own
 * CPU time and the main thread dies of a NULL dereference.  The crash flush
 * must drain the final generation's CPU samples into it (src/cpuprof,
 * gt_cpuprof_crash_drain): required, in that generation, at least half of
 * rate x the CPU time burnt there (every source weighs its samples to that
 * rate), each with a stack whose leaf is cpu_spin (a cached symbol) or a
 * module+offset frame of this test program. */
#define CPU_FINAL_MS 150
static volatile int cpu_phase; /* 1: final generation started */
static volatile int cpu_done[2];
static uint64_t cpu_sink; /* not sink: die() dereferences sink + 16 */

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noinline)) static void cpu_spin(uint64_t until_cpu_ns)
{
	uint64_t x = 1;
	/* ~0.1 ms of arithmetic per clock read: the (system call) read is
	 * under 1% of the samples. */
	while (thread_cpu_ns() < until_cpu_ns)
		for (int i = 0; i < 100000; i++)
			x = x * 6364136223846793005ull + 1;
	__atomic_store_n(&cpu_sink, x, __ATOMIC_RELAXED); /* both burners: atomic */
}

static void *cpu_burner(void *arg)
{
	int k = (int)(intptr_t)arg;
	gotrace_region_begin(0, "burn"); /* registers: the per-thread timer arms */
	while (!__atomic_load_n(&cpu_phase, __ATOMIC_ACQUIRE))
		cpu_spin(thread_cpu_ns() + 2000000);
	cpu_spin(thread_cpu_ns() + CPU_FINAL_MS * 1000000ull);
	__atomic_store_n(&cpu_done[k], 1, __ATOMIC_RELEASE);
	for (;;)
		cpu_spin(thread_cpu_ns() + 2000000); /* until the process dies */
	return NULL;
}

static void cpu_child(const char *path)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 10ull * 1000 * 1000 * 1000; /* only our flushes */
	o.cpu_hz = 1000;
	o.cpu_source = GOTRACE_CPU_PERF; /* falls back if unavailable */
	if (gotrace_start_path(path, &o) != 0)
		_exit(4);
	pthread_t th[2];
	for (long k = 0; k < 2; k++)
		pthread_create(&th[k], NULL, cpu_burner, (void *)k);
	for (int i = 0; i < 4; i++) {
		struct timespec d = { 0, 50 * 1000 * 1000 };
		nanosleep(&d, NULL);
		gotrace_log(0, "crash", "flush");
		if (gotrace_flush() != 0)
			_exit(6);
	}
	__atomic_store_n(&cpu_phase, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&cpu_done[0], __ATOMIC_ACQUIRE) ||
	       !__atomic_load_n(&cpu_done[1], __ATOMIC_ACQUIRE)) {
		struct timespec d = { 0, 1000 * 1000 };
		nanosleep(&d, NULL);
	}
	gotrace_log(0, "crash", "about to die");
	die(NULLDEREF);
}

static void test_cpu_samples(void **s)
{
	(void)s;
	char path[512]; /* nothing allocated lives across an assertion */
	{
		char *p = tmp_trace_path("cpu");
		snprintf(path, sizeof path, "%s", p);
		free(p);
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		cpu_child(path);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
	assert_int_equal(judge_trace(path), 0);
	static const char *rd[] = { "go1.23", "new" };
	for (int r = 0; r < 2; r++) {
		struct tsum ts;
		int loaded = tsum_load(path, rd[r], &ts);
		if (loaded != 0)
			tsum_free(&ts);
		assert_int_equal(loaded, 0);
		int64_t last = 0;
		for (size_t i = 0; i < ts.n; i++)
			if (ts.lines[i].gen > last)
				last = ts.lines[i].gen;
		int samples = 0, named = 0, earlier = 0, died = 0;
		for (size_t i = 0; i < ts.n; i++) {
			const struct tline *l = &ts.lines[i];
			if (!strcmp(l->kind, "log") && !strcmp(tl_get(l, "msg"), "about to die"))
				died += l->gen == last;
			if (strcmp(l->kind, "sample") != 0)
				continue;
			if (l->gen != last) {
				earlier++;
				continue;
			}
			samples++;
			const char *stack = tl_get(l, "stack");
			const char *end = strchr(stack, ';');
			size_t n = end ? (size_t)(end - stack) : strlen(stack);
			char leaf[256];
			snprintf(leaf, sizeof leaf, "%.*s", (int)n, stack);
			if (!strncmp(leaf, "cpu_spin@", 9) || !strncmp(leaf, "thread_cpu_ns@", 14) ||
			    strstr(leaf, "emit_test_crash+0x"))
				named++;
		}
		printf("  %s: final generation %lld: %d CPU samples (%d with the burner's leaf "
		       "or its module+offset), %d in earlier generations\n",
		       rd[r], (long long)last, samples, named, earlier);
		tsum_free(&ts);
		assert_int_equal(died, 1);
		assert_true(earlier > 0);
		assert_true(samples >= 2 * CPU_FINAL_MS / 2); /* 1 kHz x 2 x 150 ms, halved */
		assert_true(named >= samples / 2);
	}
	unlink(path);
}

/* In a child: trace into path, log the known messages. */
static void start_and_log(const char *path)
{
	if (gotrace_start_path(path, NULL) != 0)
		_exit(4);
	char msg[32];
	for (int i = 0; i < NLOGS; i++) {
		snprintf(msg, sizeof msg, "ev-%d", i);
		gotrace_log(0, "crash", msg);
	}
	gotrace_log(0, "crash", "about to die");
}

/* The program's own fatal path: gotrace_crash_flush, then _exit. */
static void test_explicit_hook(void **s)
{
	(void)s;
	char *path = tmp_trace_path("hook");
	pid_t pid = fork();
	if (pid == 0) {
		start_and_log(path);
		_exit(gotrace_crash_flush() == 0 ? 7 : 8);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 7);
	check_trace(path, NULLDEREF);
	unlink(path);
	free(path);
}

/* exit() without gotrace_stop finishes the trace. */
static void test_exit_without_stop(void **s)
{
	(void)s;
	char *path = tmp_trace_path("atexit");
	pid_t pid = fork();
	if (pid == 0) {
		start_and_log(path);
		exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	check_trace(path, NULLDEREF);
	unlink(path);
	free(path);
}

/* Stress: 4 threads emit, the generation advances every 1 ms, the parent
 * kills the child with SIGABRT at a random moment.  Every trace must be
 * valid as a whole: complete earlier generations plus the final flush. */
static void *stress_thread(void *arg)
{
	char msg[32];
	for (long i = 0;; i++) {
		snprintf(msg, sizeof msg, "%ld-%ld", (long)arg, i);
		gotrace_region_begin(0, "work");
		gotrace_log(0, "stress", msg);
		gotrace_region_end(0, "work");
		/* ~200k events/s per thread: a kill lands anywhere (inside
		 * emits, advances, writes) while traces stay quick to judge. */
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do
			clock_gettime(CLOCK_MONOTONIC, &t1);
		while ((t1.tv_nsec - t0.tv_nsec + 1000000000L * (t1.tv_sec - t0.tv_sec)) < 15000);
	}
	return NULL;
}

static void test_stress_random_kills(void **s)
{
	(void)s;
	int runs = getenv("GOTRACE_CRASH_RUNS") ? atoi(getenv("GOTRACE_CRASH_RUNS")) : 100;
	char *path = tmp_trace_path("stress");
	int valid = 0, nolog = 0;
	srand(12345);
	for (int r = 0; r < runs; r++) {
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			gotrace_options o;
			gotrace_options_init(&o);
			o.advance_period_ns = 1000000;
			stress_options(&o, STRESS_BUFFERS);
			if (gotrace_start_path(path, &o) != 0)
				_exit(4);
			pthread_t th[4];
			for (long i = 0; i < 4; i++)
				pthread_create(&th[i], NULL, stress_thread, (void *)i);
			if (write(pfd[1], "x", 1) != 1)
				_exit(6);
			for (;;)
				pause();
		}
		close(pfd[1]);
		char c;
		assert_int_equal(read(pfd[0], &c, 1), 1);
		close(pfd[0]);
		struct timespec d = { 0, (long)(rand() % 50) * 1000 * 1000 };
		nanosleep(&d, NULL);
		kill(pid, SIGABRT);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
		struct tsum a, b;
		int ra = tsum_load(path, "go1.23", &a), rb = tsum_load(path, "new", &b);
		if (ra == 0 && rb == 0)
			valid++;
		else
			fprintf(stderr, "run %d: final flush missing or trace invalid\n", r);
		if (ra == 0 && tsum_count(&a, "log") == 0)
			nolog++;
		tsum_free(&a);
		tsum_free(&b);
	}
	printf("stress: %d of %d traces complete and valid (%d killed before any event)\n", valid, runs, nolog);
	assert_int_equal(valid, runs);
	unlink(path);
	free(path);
}

static int setup(void **s)
{
	(void)s;
	static char dir[] = "/tmp/gotrace-cores-XXXXXX";
	if (!mkdtemp(dir))
		return -1;
	setenv("GOTRACE_CORE_DIR", dir, 1);
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", getenv("GOTRACE_CORE_DIR"));
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nullderef_file),  cmocka_unit_test(test_nullderef_pipe),
		cmocka_unit_test(test_abort),           cmocka_unit_test(test_assert),
		cmocka_unit_test(test_stack_overflow),  cmocka_unit_test(test_sigbus),
		cmocka_unit_test(test_raise_other_thread), cmocka_unit_test(test_in_region),
		cmocka_unit_test(test_explicit_hook),   cmocka_unit_test(test_exit_without_stop),
		cmocka_unit_test(test_stress_random_kills),
		cmocka_unit_test(test_event_stacks),
		cmocka_unit_test(test_cpu_samples),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
