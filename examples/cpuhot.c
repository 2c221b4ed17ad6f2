/*
 * cpuhot: a CPU-bound program profiled into a Go execution trace.
 *
 * Two worker threads each spend about 70% of their CPU time in hot_a() and
 * 30% in hot_b() (the same kind of loop, in rounds of 0.38 ms) until each
 * has used the requested CPU time.  The CPU samples land in the trace: open it
 * with `go tool trace cpuhot.trace` (View trace shows "CPU profile sample"
 * instants on each thread; the profile pages aggregate them).
 *
 *   cpuhot [-t SECONDS] [-z HZ] [-s perf|timer|setitimer|none] [-n THREADS]
 *          [-a ADVANCE_NS] [-r] [OUT.trace]
 *
 * Rounds last 0.38 ms of wall time (-r: random lengths, 0.19 to 0.57 ms).
 *
 * It prints what a test needs to check the profile against the truth, one
 * fact per line: each worker's thread id, CPU time and CPU time inside
 * hot_a and hot_b (measured with CLOCK_THREAD_CPUTIME_ID around every call,
 * less the cost of the clock reads themselves), the CPU time of those reads,
 * the rounds run and skipped, the process CPU time while profiling, the source lines of the hot
 * functions, and the library's note about the source actually used.
 */
#define _GNU_SOURCE 1
#include <gotrace.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t cpu_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static volatile uint64_t sink;

/* A cheap clock for switching between the hot functions: the time-stamp
 * counter where there is one. */
enum { NOW_FIRST = __LINE__ };
static inline __attribute__((always_inline)) uint64_t now_ticks(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
#else
	return cpu_ns(CLOCK_MONOTONIC);
#endif
}
enum { NOW_LAST = __LINE__ };

/* The two hot functions: leaf functions, never inlined or merged, that
 * spin until the given time. */
enum { HOT_A_FIRST = __LINE__ };
__attribute__((noinline, noipa)) void hot_a(uint64_t until)
{
	uint64_t x = __atomic_load_n(&sink, __ATOMIC_RELAXED) | 1;
	do {
		for (int i = 0; i < 64; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
	} while (now_ticks() < until);
	__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
}
enum { HOT_A_LAST = __LINE__ };

enum { HOT_B_FIRST = __LINE__ };
__attribute__((noinline, noipa)) void hot_b(uint64_t until)
{
	uint64_t x = __atomic_load_n(&sink, __ATOMIC_RELAXED) | 2;
	do {
		for (int i = 0; i < 64; i++) {
			x ^= x << 11;
			x ^= x >> 9;
			x ^= x << 19;
		}
	} while (now_ticks() < until);
	__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
}
enum { HOT_B_LAST = __LINE__ };

/* One round: 70% in hot_a, 30% in hot_b.  Its length (0.3819 ms) is no
 * simple fraction of the sampling periods (1, 4, 10 ms), so successive
 * samples fall at well-spread phases of the round (no aliasing). */
static uint64_t round_ticks;
static int random_rounds; /* -r: round lengths vary at random */

struct worker {
	pthread_t th;
	long tid;
	uint64_t budget_ns, cpu, a, b, rnd;
	uint64_t clock_ns;  /* CPU time spent reading the thread CPU clock */
	uint64_t rounds, skipped;
};

static uint64_t next_len(struct worker *w)
{
	if (!random_rounds)
		return round_ticks;
	/* 0.5 to 1.5 times the mean, from a per-thread xorshift */
	w->rnd ^= w->rnd << 13;
	w->rnd ^= w->rnd >> 7;
	w->rnd ^= w->rnd << 17;
	return round_ticks / 2 + w->rnd % round_ticks;
}

/* CPU cost of one clock_gettime(CLOCK_THREAD_CPUTIME_ID), measured on the
 * calling thread: the minimum over a few batches of back-to-back reads (a
 * batch hit by an interrupt only reads high). */
static uint64_t clock_cost_ns(void)
{
	uint64_t best = UINT64_MAX;
	for (int batch = 0; batch < 5; batch++) {
		uint64_t c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID), c1 = c0;
		for (int i = 0; i < 200; i++)
			c1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		if ((c1 - c0) / 200 < best)
			best = (c1 - c0) / 200;
	}
	return best;
}

/* Rounds of hot_a then hot_b until the CPU budget is used; the CPU time of
 * each call is measured: the truth the profile is compared with.
 *
 * What the truth must leave out.  CLOCK_THREAD_CPUTIME_ID is no vDSO call
 * but a system call (0.1 to 1 us, more in a VM), and reading it updates the
 * scheduler's accounting: when the thread's time slice is used up, that read
 * is where the scheduler notices, and the thread is preempted on its way
 * out of the system call.  On a loaded machine most preemptions of this
 * loop happen there, not at a timer tick inside a hot function.  The CPU
 * time of a measurement, switch-out and switch-in included, has a leaf that
 * is neither hot function (clock_gettime), yet a single read per boundary
 * charges it to the interval after the kernel read the clock, i.e. to hot_b
 * after hot_a's read (measured: up to 3 points of hot_b's share under load).
 * So each boundary reads the clock twice: hot_a's interval ends at the
 * first read after it, hot_b's starts at the second, and what lies between
 * the two (one read's cost, plus the preemption if there was one) goes to
 * clock_ns, never to a hot function.  Each interval still holds the end of
 * one read and the start of the next: one read's cost, measured by
 * clock_cost_ns and moved to clock_ns too.  A preemption elsewhere happens
 * at an interrupt inside a hot function: its samples show that function,
 * and the truth charges it to that function too.
 *
 * Rounds stay on their wall-clock grid.  (Restarting the grid when the
 * thread resumes after a preemption would align it with the scheduler tick,
 * which is also when tick-driven timers sample: a measurable bias.)  Rounds
 * that ended while the thread was off the CPU are skipped whole, grid
 * position kept: running them would be a burst of empty hot_a/hot_b calls,
 * nearly all clock reads. */
__attribute__((noinline, noipa)) void work_loop(struct worker *w)
{
	uint64_t cost = clock_cost_ns();
	uint64_t start = cpu_ns(CLOCK_THREAD_CPUTIME_ID), t0 = start;
	int64_t a = 0, b = 0, clk = 0;
	uint64_t r = now_ticks();
	while (t0 - start < w->budget_ns) {
		uint64_t len = next_len(w), now = now_ticks();
		while (r + len <= now) {
			r += len;
			len = next_len(w);
			w->skipped++;
		}
		hot_a(r + len * 7 / 10);
		uint64_t a_end = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		uint64_t b_start = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		hot_b(r + len);
		uint64_t b_end = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		uint64_t t1 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		r += len;
		a += (int64_t)(a_end - t0) - (int64_t)cost;
		b += (int64_t)(b_end - b_start) - (int64_t)cost;
		clk += (int64_t)(b_start - a_end) + (int64_t)(t1 - b_end) + 2 * (int64_t)cost;
		w->rounds++;
		t0 = t1;
	}
	w->a = a > 0 ? (uint64_t)a : 0;
	w->b = b > 0 ? (uint64_t)b : 0;
	w->clock_ns = clk > 0 ? (uint64_t)clk : 0;
	w->cpu = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
}

__attribute__((noinline, noipa)) void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->tid = syscall(SYS_gettid);
	gotrace_thread_name("hot worker");
	gotrace_region_begin(0, "hot"); /* registers the thread: per-thread timers arm */
	work_loop(w);
	gotrace_region_end(0, "hot");
	return NULL;
}

/* Ticks of now_ticks() per round. */
static void calibrate(void)
{
	uint64_t m0 = cpu_ns(CLOCK_MONOTONIC), c0 = now_ticks();
	struct timespec d = { 0, 20 * 1000 * 1000 };
	nanosleep(&d, NULL);
	uint64_t m1 = cpu_ns(CLOCK_MONOTONIC), c1 = now_ticks();
	round_ticks = (uint64_t)(381900.0 * (double)(c1 - c0) / (double)(m1 - m0));
	if (round_ticks < 10)
		round_ticks = 10;
}

int main(int argc, char **argv)
{
	double seconds = 3;
	int hz = 100, nthreads = 2, source = GOTRACE_CPU_PERF, opt;
	uint64_t advance = 0;
	const char *src_name = "perf";
	while ((opt = getopt(argc, argv, "t:z:s:n:a:r")) != -1) {
		switch (opt) {
		case 't': seconds = atof(optarg); break;
		case 'z': hz = atoi(optarg); break;
		case 'n': nthreads = atoi(optarg); break;
		case 'a': advance = strtoull(optarg, NULL, 0); break;
		case 'r': random_rounds = 1; break;
		case 's':
			src_name = optarg;
			if (!strcmp(optarg, "perf"))
				source = GOTRACE_CPU_PERF;
			else if (!strcmp(optarg, "timer"))
				source = GOTRACE_CPU_THREAD_TIMER;
			else if (!strcmp(optarg, "setitimer"))
				source = GOTRACE_CPU_SETITIMER;
			else if (!strcmp(optarg, "none"))
				hz = 0;
			else
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (nthreads < 1 || nthreads > 64 || seconds <= 0)
		goto usage;
	const char *out = optind < argc ? argv[optind] : "cpuhot.trace";
	calibrate();

	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = hz;
	o.cpu_source = source;
	if (advance)
		o.advance_period_ns = advance;
	int rc = gotrace_start_path(out, &o);
	if (rc != 0) {
		fprintf(stderr, "cpuhot: gotrace_start: %d: %s\n", rc, gotrace_last_error());
		return 1;
	}
	printf("note=%s\n", gotrace_start_notes());
	uint64_t p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	struct worker *w = calloc((size_t)nthreads, sizeof *w);
	for (int i = 0; i < nthreads; i++) {
		w[i].budget_ns = (uint64_t)(seconds * 1e9);
		w[i].rnd = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) ^ (uint64_t)getpid();
		pthread_create(&w[i].th, NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(w[i].th, NULL);
	uint64_t p1 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	rc = gotrace_stop();
	gotrace_stats st;
	gotrace_get_stats(&st);
	printf("source=%s hz=%d seconds=%g\n", src_name, hz, seconds);
	for (int i = 0; i < nthreads; i++)
		printf("thread tid=%ld cpu_ns=%llu a_ns=%llu b_ns=%llu clock_ns=%llu rounds=%llu "
		       "skipped=%llu\n",
		       w[i].tid, (unsigned long long)w[i].cpu, (unsigned long long)w[i].a,
		       (unsigned long long)w[i].b, (unsigned long long)w[i].clock_ns,
		       (unsigned long long)w[i].rounds, (unsigned long long)w[i].skipped);
	printf("process_cpu_ns=%llu\n", (unsigned long long)(p1 - p0));
	printf("lines hot_a %d %d\n", HOT_A_FIRST + 1, HOT_A_LAST - 1);
	printf("lines hot_b %d %d\n", HOT_B_FIRST + 1, HOT_B_LAST - 1);
	printf("lines now_ticks %d %d\n", NOW_FIRST + 1, NOW_LAST - 1); /* inlined in both */
	printf("stats cpu_samples=%llu cpu_samples_lost=%llu\n", (unsigned long long)st.cpu_samples,
	       (unsigned long long)st.cpu_samples_lost);
	printf("trace=%s\n", out);
	free(w);
	return rc == 0 ? 0 : 1;
usage:
	fprintf(stderr, "usage: cpuhot [-t SECONDS] [-z HZ] [-s perf|timer|setitimer|none] "
	                "[-n THREADS] [-a ADVANCE_NS] [-r] [OUT.trace]\n");
	return 2;
}
