/*
 * CPU profiling: the contract around the sampler.
 *  - a program's own SIGPROF handler makes start fail (EBUSY, with a
 *    reason), untouched;
 *  - stop restores the previous action (SIG_IGN here) and ITIMER_PROF, and a
 *    fast source stopped abruptly cannot kill the process with a late
 *    SIGPROF under SIG_DFL (20 start/stop rounds at 5 kHz);
 *  - bad options are refused;
 *  - threads the library has never seen are sampled with m = their thread
 *    id, no P, no goroutine, a real stack (each source);
 *  - a full buffer drops samples, counted in the statistics and shown in the
 *    trace as samples of gotrace_cpu_samples_lost_buffer_full;
 *  - perf events refused (seccomp filter, as with perf_event_paranoid)
 *    falls back to thread timers, timer_create refused too to setitimer,
 *    each with the reason in gotrace_start_notes() (gotrace_last_error() ""),
 *    and AUTO the same way but never for a user-only perf clock;
 *  - AUTO takes perf events where they count kernel time, and then gives
 *    300 samples for 300 ms of CPU at 1 kHz;
 *  - perf's descriptors: capped and numbered high, CPU timers past the cap;
 *    the library's own threads never get one;
 *  - fork while sampling: the child lives (it inherits no timer).
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <gotrace.h>
#include <linux/filter.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpuprof_test.h"
#include "procstat.h"
#include "tracecheck.h"

static volatile int stop_burn;
static volatile uint64_t sink;

static double tcpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void stranger_burn(void)
{
	uint64_t x = 3;
	while (!__atomic_load_n(&stop_burn, __ATOMIC_RELAXED))
		for (int i = 0; i < 1000; i++)
			x = x * 2862933555777941757ull + 3037000493ull;
	__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
}

struct burner {
	pthread_t th;
	long tid;
	int registered;
	double secs;
};

static void *burner_main(void *arg)
{
	struct burner *b = arg;
	__atomic_store_n(&b->tid, syscall(SYS_gettid), __ATOMIC_RELEASE);
	if (b->registered)
		gotrace_log(0, "burn", "start");
	if (b->secs > 0) {
		double t0 = tcpu();
		uint64_t x = 5;
		while (tcpu() - t0 < b->secs)
			for (int i = 0; i < 10000; i++)
				x = x * 6364136223846793005ull + 1;
		__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
	} else {
		stranger_burn();
	}
	return NULL;
}

static void start_ok(const char *path, int hz, int source, uint64_t advance)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = hz;
	o.cpu_source = source;
	if (advance)
		o.advance_period_ns = advance;
	int rc = gotrace_start_path(path, &o);
	if (rc)
		fprintf(stderr, "start: %d %s\n", rc, gotrace_last_error());
	assert_int_equal(rc, 0);
}

/* Tick-driven sources' signals can all but stop on a loaded machine
 * (BENCHMARKS.md, "CPU samples under load"): burn in rounds of 0.1 s of
 * CPU on a registered thread, each ended by a flush (which writes the
 * samples taken), until want samples are written -- at most 100 rounds.
 * Returns the samples written, -1 if a flush failed. */
static long burn_until_samples(uint64_t want)
{
	gotrace_stats gs;
	int rounds = 0;
	do {
		struct burner b = { .registered = 1, .secs = 0.1 };
		pthread_create(&b.th, NULL, burner_main, &b);
		pthread_join(b.th, NULL);
		if (gotrace_flush() != 0)
			return -1;
		gotrace_get_stats(&gs);
	} while (gs.cpu_samples < want && ++rounds < 100);
	printf("%llu samples after %d rounds of 0.1 s\n", (unsigned long long)gs.cpu_samples, rounds + 1);
	return (long)gs.cpu_samples;
}

/* Open perf events of this process; *low of them numbered below floor. */
static int perf_events_open(int floor, int *low)
{
	int n = 0;
	*low = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		char p[300], target[64];
		snprintf(p, sizeof p, "/proc/self/fd/%s", de->d_name);
		ssize_t k = readlink(p, target, sizeof target - 1);
		if (k <= 0)
			continue;
		target[k] = 0;
		if (strcmp(target, "anon_inode:[perf_event]") == 0) {
			n++;
			*low += atoi(de->d_name) < floor;
		}
	}
	if (d)
		closedir(d);
	return n;
}

static void prof_handler(int sig) { (void)sig; }

static void refuse_foreign_handler(void **st)
{
	(void)st;
	struct sigaction sa, cur;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = prof_handler;
	sigaction(SIGPROF, &sa, NULL);
	char *path = tmp_trace_path("refuse");
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = 100;
	assert_int_equal(gotrace_start_path(path, &o), -GOTRACE_EBUSY);
	assert_non_null(strstr(gotrace_last_error(), "SIGPROF handler"));
	sigaction(SIGPROF, NULL, &cur);
	assert_ptr_equal(cur.sa_handler, prof_handler);
	assert_int_equal(judge_trace(path), 0); /* start stopped it cleanly */
	sa.sa_handler = SIG_DFL;
	sigaction(SIGPROF, &sa, NULL);
	free(path);
}

static void bad_options(void **st)
{
	(void)st;
	char *path = tmp_trace_path("badopt");
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = -5;
	assert_int_equal(gotrace_start_path(path, &o), -GOTRACE_EINVAL);
	o.cpu_hz = 100;
	o.cpu_source = 9;
	assert_int_equal(gotrace_start_path(path, &o), -GOTRACE_EINVAL);
	free(path);
}

static void restores_previous(void **st)
{
	(void)st;
	struct sigaction sa, cur;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPROF, &sa, NULL);
	struct itimerval it = { { 1, 0 }, { 5, 0 } }, got;
	setitimer(ITIMER_PROF, &it, NULL);
	char *path = tmp_trace_path("restore");
	start_ok(path, 1000, GOTRACE_CPU_SETITIMER, 0);
	long samples = burn_until_samples(1); /* samples were taken */
	assert_int_equal(gotrace_stop(), 0);
	sigaction(SIGPROF, NULL, &cur);
	getitimer(ITIMER_PROF, &got);
	/* Put SIG_DFL back before any assertion (the next tests expect it). */
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_PROF, &it, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGPROF, &sa, NULL);
	assert_true(samples > 0);
	assert_ptr_equal(cur.sa_handler, SIG_IGN);
	assert_int_equal(got.it_interval.tv_sec, 1);
	assert_int_equal(got.it_interval.tv_usec, 0);
	assert_int_equal(judge_trace(path), 0);
	free(path);
}

static void stop_under_fire(void **st)
{
	(void)st;
	char *path = tmp_trace_path("fire");
	for (int round = 0; round < 20; round++) {
		int src = round % 3 == 0 ? GOTRACE_CPU_PERF : round % 3 == 1 ? GOTRACE_CPU_THREAD_TIMER
		                                                             : GOTRACE_CPU_SETITIMER;
		start_ok(path, 5000, src, 0);
		struct burner b[2] = { { .registered = 1, .secs = 0.03 }, { .registered = 1, .secs = 0.03 } };
		for (int i = 0; i < 2; i++)
			pthread_create(&b[i].th, NULL, burner_main, &b[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(b[i].th, NULL);
		assert_int_equal(gotrace_stop(), 0);
	}
	struct timespec d = { 0, 100 * 1000 * 1000 };
	nanosleep(&d, NULL); /* a late SIGPROF under SIG_DFL would kill us here */
	struct sigaction cur;
	sigaction(SIGPROF, NULL, &cur);
	assert_ptr_equal(cur.sa_handler, SIG_DFL);
	assert_int_equal(judge_trace(path), 0);
	free(path);
}

/* Samples of a thread that never calls the library. */
static void strangers_for(int source, const char *tag)
{
	char *path = tmp_trace_path(tag);
	__atomic_store_n(&stop_burn, 0, __ATOMIC_RELAXED);
	struct burner early = { .registered = 0, .secs = 0 };
	pthread_create(&early.th, NULL, burner_main, &early); /* before start */
	while (!__atomic_load_n(&early.tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	start_ok(path, 500, source, 100000000);
	struct burner late = { .registered = 0, .secs = 0 };
	pthread_create(&late.th, NULL, burner_main, &late); /* after start */
	gotrace_log(0, "main", "registered");
	/* Both threads burn at least 0.1 s of CPU (600 ms of wall time gave
	 * one of them almost none on a loaded box under TSan), at most 20 s. */
	clockid_t ce, cl;
	struct timespec te, tl;
	pthread_getcpuclockid(early.th, &ce);
	pthread_getcpuclockid(late.th, &cl);
	for (int i = 0; i < 200; i++) {
		usleep(100000);
		clock_gettime(ce, &te);
		clock_gettime(cl, &tl);
		if (i >= 5 && te.tv_sec * 1e9 + te.tv_nsec >= 1e8 && tl.tv_sec * 1e9 + tl.tv_nsec >= 1e8)
			break;
	}
	__atomic_store_n(&stop_burn, 1, __ATOMIC_RELAXED);
	pthread_join(early.th, NULL);
	pthread_join(late.th, NULL);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	long n_early = 0, n_late = 0, good_stack = 0;
	static struct frame fr[FR_MAX];
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (strcmp(l->kind, "sample") != 0 || (l->m != early.tid && l->m != late.tid))
			continue;
		assert_int_equal(l->p, -1);
		assert_int_equal(l->g, -1);
		if (l->m == early.tid)
			n_early++;
		else
			n_late++;
		int nf = frames(tl_get(l, "stack"), fr, FR_MAX);
		if (nf >= 2 && !strcmp(fr[0].func, "stranger_burn") && !strcmp(fr[1].func, "burner_main"))
			good_stack++;
	}
	double cpu_e = te.tv_sec + te.tv_nsec / 1e9, cpu_l = tl.tv_sec + tl.tv_nsec / 1e9;
	printf("FIGURE strangers %s: early thread %ld samples (%.3f s CPU), late thread %ld (%.3f s "
	       "CPU), full stacks %ld\n", tag, n_early, cpu_e, n_late, cpu_l, good_stack);
	/* Per-thread sources arm the threads alive at start only.  (Counts
	 * against CPU time: the timers start after the threads, and setitimer
	 * spreads process periods over the threads it interrupts.) */
#if defined(__SANITIZE_THREAD__)
	/* Under TSan a signal runs at the runtime's next safe point on its
	 * thread, not when it arrived, and a setitimer sample's weight is the
	 * process periods not yet claimed when its handler runs: a late
	 * handler claims periods another thread's CPU made.  The split of the
	 * process's samples between the two threads then varies (0.4 to 1.5
	 * of each thread's share, measured, with the library before and after
	 * the relocation change alike): only their presence is required. */
	bool split_counts = source != GOTRACE_CPU_SETITIMER;
#else
	bool split_counts = true;
#endif
	if (split_counts)
		assert_true(n_early > 0.5 * 500 * cpu_e - 5);
	else
		assert_true(n_early > 0);
	if (source == GOTRACE_CPU_SETITIMER)
		assert_true(split_counts ? n_late > 0.5 * 500 * cpu_l - 5 : n_late > 0);
	assert_true(good_stack >= 0.9 * (n_early + n_late));
	tsum_free(&s);
	free(path);
}

static void strangers(void **st)
{
	(void)st;
	strangers_for(GOTRACE_CPU_SETITIMER, "strangers-setitimer");
	strangers_for(GOTRACE_CPU_THREAD_TIMER, "strangers-timer");
	strangers_for(GOTRACE_CPU_PERF, "strangers-perf");
}

static void lost_samples(void **st)
{
	(void)st;
	char *path = tmp_trace_path("lost");
	setenv("GOTRACE_CPU_BUFFER_BYTES", "65536", 1);
	start_ok(path, 2000, GOTRACE_CPU_PERF, 1000000000);
	unsetenv("GOTRACE_CPU_BUFFER_BYTES");
	struct burner b[2] = { { .registered = 1, .secs = 0.6 }, { .registered = 1, .secs = 0.6 } };
	for (int i = 0; i < 2; i++)
		pthread_create(&b[i].th, NULL, burner_main, &b[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(b[i].th, NULL);
	assert_int_equal(gotrace_stop(), 0);
	gotrace_stats gs;
	gotrace_get_stats(&gs);
	assert_int_equal(judge_trace(path), 0);
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	uint64_t marked = 0, real = 0;
	static struct frame fr[FR_MAX];
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (strcmp(l->kind, "sample") != 0)
			continue;
		frames(tl_get(l, "stack"), fr, FR_MAX);
		if (!strcmp(fr[0].func, "gotrace_cpu_samples_lost_buffer_full"))
			marked++;
		else
			real++;
	}
	printf("FIGURE lost: %llu samples kept, %llu lost (stats), %llu lost-sample markers in the trace\n",
	       (unsigned long long)gs.cpu_samples, (unsigned long long)gs.cpu_samples_lost,
	       (unsigned long long)marked);
	assert_true(gs.cpu_samples_lost > 0);
	assert_int_equal(marked, gs.cpu_samples_lost);
	assert_int_equal(real, gs.cpu_samples);
	tsum_free(&s);
	free(path);
}

/* Samples of the trace at path with func in their stack (Go 1.23's view). */
static int samples_in(const char *path, const char *func)
{
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	int n = 0;
	for (size_t i = 0; i < s.n; i++)
		n += !strcmp(s.lines[i].kind, "sample") && strstr(tl_get(&s.lines[i], "stack"), func);
	tsum_free(&s);
	return n;
}

/* Runs this program again as "test_api FLAG PATH [ARG]" (main dispatches
 * on FLAG), which writes a trace at PATH and exits 0 on success: a child
 * of a multi-threaded process may not start threads under TSan, and the
 * children need a clean process (a seccomp filter, a descriptor limit). */
static void reexec_child(const char *flag, const char *path, const char *arg)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "test_api", flag, path, arg, (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(judge_trace(path), 0);
}

#if defined(__x86_64__)
/* In a child: make perf_event_open (and timer_create if both) fail with
 * EACCES, as perf_event_paranoid does; start; sample; report.  mode: 0
 * PERF, perf refused; 1 PERF, perf and timer_create refused; 2 and 3 the
 * same with AUTO. */
static int fallback_child(const char *path, int mode)
{
	int both = mode & 1, autosrc = mode >= 2;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_perf_event_open, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, both ? __NR_timer_create : 0xfffff, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
	};
	struct sock_fprog prog = { sizeof f / sizeof f[0], f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 10;
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = 1000;
	o.cpu_source = autosrc ? GOTRACE_CPU_AUTO : GOTRACE_CPU_PERF;
	if (gotrace_start_path(path, &o) != 0)
		return 11;
	if (*gotrace_last_error())
		return 15; /* a fallback is not an error */
	const char *e = gotrace_start_notes();
	printf("fallback note: %s\n", e);
	fflush(stdout);
	if (!strstr(e, "perf_event_paranoid"))
		return 12;
	if (!autosrc && !strstr(e, both ? "falling back to setitimer" : "falling back to per-thread CPU timers"))
		return 13;
	if (autosrc && (strstr(e, both ? "cpu profiling: auto: setitimer(ITIMER_PROF) (perf_event_open refused counting kernel time"
	                                : "cpu profiling: auto: per-thread CPU timers (perf_event_open refused counting kernel time") != e ||
	                (both && !strstr(e, "; timer_create")) || e[strlen(e) - 1] != ')'))
		return 16;
	/* The fallback source samples: 30 samples written. */
	printf("fallback: ");
	long n = burn_until_samples(30);
	gotrace_stop();
	return n < 0 ? 17 : n >= 30 ? 0 : 14;
}

static void fallback(void **st)
{
	(void)st;
	for (int mode = 0; mode < 4; mode++) {
		char name[16];
		snprintf(name, sizeof name, "fallback%d", mode + 1);
		char *path = tmp_trace_path(name);
		char mode_s[2] = { (char)('0' + mode), 0 };
		reexec_child("--fallback-child", path, mode_s);
		free(path);
	}
}
#else
static void fallback(void **st) { (void)st; skip(); }
#endif

static void fork_while_sampling(void **st)
{
	(void)st;
	char *path = tmp_trace_path("forkprof");
	start_ok(path, 2000, GOTRACE_CPU_PERF, 0);
	struct burner b = { .registered = 1, .secs = 0.2 };
	pthread_create(&b.th, NULL, burner_main, &b);
	pid_t pid = fork();
	if (pid == 0) {
		double t0 = tcpu();
		while (tcpu() - t0 < 0.2)
			__atomic_add_fetch(&sink, 1, __ATOMIC_RELAXED);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	pthread_join(b.th, NULL);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	free(path);
}

/* A sample taken while an explicit goroutine runs on the thread names that
 * goroutine, not the thread's own (which is parked meanwhile): every
 * sample of the burn inside the goroutine goes to it.  Perf's clock (a
 * thread timer's signals can all but stop on a loaded machine:
 * BENCHMARKS.md, "CPU samples under load"). */
static __attribute__((noinline)) void xg_burn(double secs)
{
	double t0 = tcpu();
	volatile uint64_t x = 1;
	while (tcpu() - t0 < secs)
		for (int i = 0; i < 10000; i++)
			x = x * 6364136223846793005ull + 1;
}

static void samples_name_explicit_goroutine(void **st)
{
	(void)st;
	char *path = tmp_trace_path("xg-samples");
	start_ok(path, 1000, GOTRACE_CPU_PERF, 0);
	gotrace_goroutine_t x = gotrace_go_create("xg_burner");
	gotrace_go_start(x);
	xg_burn(0.3);
	gotrace_go_stop(x);
	gotrace_go_destroy(x);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	int64_t xid = -1;
	for (size_t i = 0; i < s.n; i++)
		if (!strcmp(s.lines[i].kind, "gsum") && !strcmp(tl_get(&s.lines[i], "name"), "xg_burner"))
			xid = tl_int(&s.lines[i], "id");
	assert_true(xid > 0);
	int in_burn = 0, to_xg = 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (strcmp(l->kind, "sample") || !strstr(tl_get(l, "stack"), "xg_burn"))
			continue;
		in_burn++;
		to_xg += l->g == xid;
	}
	printf("xg samples: %d in xg_burn, %d naming the goroutine\n", in_burn, to_xg);
	assert_true(in_burn >= 20);
	assert_int_equal(to_xg, in_burn);
	tsum_free(&s);
	unlink(path);
	free(path);
}

/* Perf's descriptors stay out of the program's way: at most 1/8 of the
 * soft RLIMIT_NOFILE (64 here: 8), numbered from half of it (32); the
 * threads past the cap get per-thread CPU timers.  The main thread and 12
 * registered threads alive at once: 8 perf events, 5 timers signalling
 * SIGPROF, and samples in a valid trace.  In a child of its own (the
 * limit). */
struct capped {
	pthread_barrier_t all_in, go;
	double secs;
};

static void *capped_main(void *arg)
{
	struct capped *c = arg;
	gotrace_log(0, "capped", "registered"); /* arms its source */
	pthread_barrier_wait(&c->all_in);
	pthread_barrier_wait(&c->go);
	double t0 = tcpu();
	volatile uint64_t x = 1;
	while (tcpu() - t0 < c->secs)
		for (int i = 0; i < 10000; i++)
			x = x * 6364136223846793005ull + 1;
	return NULL;
}

static int fdcap_child(const char *path)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 30;
	rl.rlim_cur = 64;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 31;
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = 1000;
	o.cpu_source = GOTRACE_CPU_PERF;
	if (gotrace_start_path(path, &o) != 0)
		return 32;
	if (strstr(gotrace_start_notes(), "falling back")) {
		printf("fdcap: no perf events here: %s\n", gotrace_start_notes());
		return 33;
	}
	enum { N = 12 };
	struct capped c = { .secs = 0.1 };
	pthread_barrier_init(&c.all_in, NULL, N + 1);
	pthread_barrier_init(&c.go, NULL, N + 1);
	pthread_t th[N];
	for (int i = 0; i < N; i++)
		if (pthread_create(&th[i], NULL, capped_main, &c) != 0)
			return 34;
	pthread_barrier_wait(&c.all_in);
	int low, timers = 0;
	int perf = perf_events_open(32, &low);
	FILE *f = fopen("/proc/self/timers", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		timers += strncmp(line, "signal: 27/", 11) == 0 && SIGPROF == 27;
	if (f)
		fclose(f);
	pthread_barrier_wait(&c.go);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	gotrace_stop();
	gotrace_stats gs;
	gotrace_get_stats(&gs);
	printf("fdcap: %d perf events (%d below 32), %d SIGPROF timers, %llu samples\n", perf, low,
	       timers, (unsigned long long)gs.cpu_samples);
	if (perf != 8 || low != 0)
		return 35;
	if (timers != N + 1 - 8) /* the main thread has its own source too */
		return 36;
	return gs.cpu_samples > 0 ? 0 : 37;
}

static void perf_fd_cap(void **st)
{
	(void)st;
	char *path = tmp_trace_path("fdcap");
	reexec_child("--fdcap-child", path, NULL);
	int in_capped = samples_in(path, "capped_main");
	printf("fdcap: %d samples in capped_main\n", in_capped);
	assert_true(in_capped > 0);
	unlink(path);
	free(path);
}

/* The per-thread sources arm the program's threads only: the library's
 * own (flusher, line resolver, liburcu's call_rcu thread) keep SIGPROF
 * blocked, which is how the start's scan of /proc/self/task tells them
 * apart.  A flusher that unblocked it got a perf event of the program's
 * budget when the scan came late (seen once in CI), and so would the
 * threads that outlive a setitimer session.  After such a session and a
 * flush (a flusher iteration) in a perf one, only this thread has a perf
 * event, and no descriptor of an earlier session's is left. */
static bool sigprof_blocked(long tid)
{
	char p[300], line[256];
	snprintf(p, sizeof p, "/proc/self/task/%ld/status", tid);
	FILE *f = fopen(p, "r");
	bool blocked = false;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "SigBlk:", 7))
			blocked = (strtoull(line + 7, NULL, 16) >> (SIGPROF - 1)) & 1;
	if (f)
		fclose(f);
	return blocked;
}

static void library_threads_unarmed(void **st)
{
	(void)st;
	char *path = tmp_trace_path("unarmed");
	/* First a setitimer session, in which our threads unblock SIGPROF;
	 * the line resolver and liburcu's call_rcu thread outlive it. */
	start_ok(path, 1000, GOTRACE_CPU_SETITIMER, 0);
	gotrace_log(0, "main", "registered");
	assert_int_equal(gotrace_flush(), 0);
	assert_int_equal(gotrace_stop(), 0);
	start_ok(path, 1000, GOTRACE_CPU_PERF, 0);
	gotrace_log(0, "main", "registered");
	assert_int_equal(gotrace_flush(), 0);
	long tids[64];
	int ours = proc_threads_named("gotrace-", 1, tids, 64), ours_unblocked = 0;
	for (int i = 0; i < ours; i++)
		ours_unblocked += !sigprof_blocked(tids[i]);
	int low;
	int perf = perf_events_open(0, &low);
	assert_int_equal(gotrace_stop(), 0);
	printf("unarmed: %d library threads (%d with SIGPROF unblocked), %d perf events\n", ours,
	       ours_unblocked, perf);
	assert_true(ours >= 1);
	assert_int_equal(ours_unblocked, 0);
	assert_int_equal(perf, 1);
	assert_int_equal(judge_trace(path), 0);
	free(path);
}

/* AUTO takes perf events when they may count kernel time here (the test
 * asks the kernel itself), else per-thread timers, and says which in the
 * start notes.  With perf, 300 ms of CPU at 1 kHz is 300 samples within
 * 2%, whatever the machine's load (the tick-driven timers are not: see
 * BENCHMARKS.md, "CPU samples under load") and whatever the hypervisor
 * steals: perf's clock counts stolen time, and a CI run on a VM counted
 * 321 periods in 300 ms of thread CPU before the samples were weighed by
 * the thread's CPU clock (handler.c, weigh).  The weights add up to the
 * thread's whole periods from its last claim before the burn (up to one
 * period early) to its last signal in it (up to one period short). */
static bool perf_counts_kernel(void)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.size = sizeof a;
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.sample_period = 1000000;
	a.disabled = 1;
	a.exclude_hv = 1;
	int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void auto_source(void **st)
{
	(void)st;
	char *path = tmp_trace_path("auto");
	start_ok(path, 1000, GOTRACE_CPU_AUTO, 0);
	const char *e = gotrace_start_notes();
	bool perf = perf_counts_kernel();
	printf("auto: %s\n", e);
	if (perf)
		assert_string_equal(e, "cpu profiling: auto: perf-event CPU clocks");
	else
		assert_ptr_equal(strstr(e, "cpu profiling: auto: per-thread CPU timers (perf_event_open "
		                           "refused counting kernel time"), e);
	xg_burn(0.3);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	int n = samples_in(path, "xg_burn");
	printf("auto: %d samples in xg_burn (300 ms of CPU at 1 kHz)\n", n);
	if (perf) {
		assert_true(n >= 294);
		assert_true(n <= 303);
	}
	unlink(path);
	free(path);
}

/* A thread's claimed CPU time belongs to its session (handler.c,
 * claimed_cpu).  The main thread burns 200 ms in one session, 300 ms
 * between sessions, then 100 ms in a second one: the second trace has
 * 100 samples within 3%, not the 300 periods of the gap on its first
 * sample.  Perf where it counts kernel time (weighed by the thread's CPU
 * clock), else setitimer (the tick: only the upper bound holds). */
static __attribute__((noinline)) void gap_burn(double secs)
{
	xg_burn(secs);
}

static void claims_per_session(void **st)
{
	(void)st;
	char *path = tmp_trace_path("claims");
	int source = perf_counts_kernel() ? GOTRACE_CPU_PERF : GOTRACE_CPU_SETITIMER;
	start_ok(path, 1000, source, 0);
	xg_burn(0.2);
	assert_int_equal(gotrace_stop(), 0);
	gap_burn(0.3);
	start_ok(path, 1000, source, 0);
	xg_burn(0.1);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	int n = samples_in(path, "xg_burn"), gap = samples_in(path, "gap_burn");
	printf("claims: %d samples in 100 ms of the second session (%s), %d in the gap\n", n,
	       source == GOTRACE_CPU_PERF ? "perf" : "setitimer", gap);
	assert_int_equal(gap, 0);
	assert_true(n <= 103);
	if (source == GOTRACE_CPU_PERF)
		assert_true(n >= 97);
	unlink(path);
	free(path);
}

int main(int argc, char **argv)
{
#if defined(__x86_64__)
	if (argc == 4 && !strcmp(argv[1], "--fallback-child"))
		return fallback_child(argv[2], atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "--fdcap-child"))
		return fdcap_child(argv[2]);
#else
	(void)argc;
	(void)argv;
#endif
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refuse_foreign_handler),
		cmocka_unit_test(bad_options),
		cmocka_unit_test(restores_previous),
		cmocka_unit_test(stop_under_fire),
		cmocka_unit_test(strangers),
		cmocka_unit_test(lost_samples),
		cmocka_unit_test(fallback),
		cmocka_unit_test(auto_source),
		cmocka_unit_test(perf_fd_cap),
		cmocka_unit_test(library_threads_unarmed),
		cmocka_unit_test(fork_while_sampling),
		cmocka_unit_test(samples_name_explicit_goroutine),
		cmocka_unit_test(claims_per_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
