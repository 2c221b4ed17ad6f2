/*
 * bench_emit: what gotrace's annotation calls cost, measured side by side
 * with baselines in the same process, and how many bytes they put in the
 * trace.  A benchmark, not a test: it judges nothing, it prints figures.
 *
 * Configurations (one "iteration" is one call, except region pairs: one
 * begin + one end, i.e. two calls and two events):
 *   baseline_tsc        read the timestamp counter, store it to a volatile
 *                       thread-local (no call)
 *   baseline_tsc_store  one out-of-line call per event that reads the
 *                       counter and writes the bytes a region event takes
 *                       (type, dt uvarint, task, name id, stack = 5 bytes)
 *                       into an initial-exec TLS buffer, wrapping around
 *   off_region_pair     gotrace_region_begin+end, tracing off
 *   off_log             gotrace_log, tracing off
 *   on_region_pair      gotrace_region_begin+end with one string literal,
 *                       tracing on (advance period 1 h, output /dev/null)
 *   on_log              gotrace_log(0, "cat", "msg"), same session
 *   on_region_lit_pair  gotrace_region_begin_lit+end_lit (call-site
 *                       literal fast path), same session
 *   on_log_lit          gotrace_log_lit(0, "cat", "msg")
 *   on_task_lit_pair    gotrace_task_begin_lit + gotrace_task_end
 *   on1s_*              the same in a session with the default 1 s period
 * each with 1 and 2 threads (2 persistent worker threads, nothing pinned).
 * The tracing-off gotrace loops run 16N (regions) or 32N (logs) iterations
 * so that they, too, last tens of milliseconds.
 *
 * Every repetition runs every configuration once (order rotated per
 * repetition), so drift of the machine hits all of them alike; figures are
 * medians over the repetitions and ratios are medians of per-repetition
 * ratios.  Then: a sustained run with the default 1 s period (so that
 * generation advances fall inside the timed loops), bytes per event from
 * real trace files, and resident memory per traced thread.
 *
 * Three clocks per timed loop:
 *   wall        CLOCK_MONOTONIC per thread: what the brief asks for; on a
 *               machine shared with other programs it includes the time the
 *               thread was not running.
 *   thread CPU  CLOCK_THREAD_CPUTIME_ID per thread: the CPU the calls cost
 *               (user + kernel, e.g. page faults), immune to time slicing.
 *   background  process CPU minus the workers' CPU over the whole run
 *               (warm-up included), per call: what the flusher thread spends
 *               writing what the calls produced.
 * The CPU used by other programs during each repetition is measured
 * (/proc/stat minus our own) and printed.
 *
 * usage: bench_emit [-n iterations] [-r repetitions] [-s sustained_seconds]
 *                   [-t rss_threads] [-d trace_dir] [-w seconds] [-p config]
 *   -w: before each repetition wait up to this many seconds (default 30, 0:
 *   never) for other programs to use < 0.15 CPU over 300 ms.
 *   -p: run only the named configuration (e.g. on_region_pair/1T) R times in
 *   one session and print its median, for profilers:
 *   perf record -e cpu-clock -g bench_emit -p on_region_pair/1T -r 20
 */
#define _GNU_SOURCE 1
#include <gotrace.h>
#include "arch/arch.h"  /* gt_arch_cycles: the library's own counter read */
#include "core/wire.h"  /* gt_put_uvarint: the library's own encoder */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"

#define IE __attribute__((tls_model("initial-exec")))
#if defined(__has_attribute)
#if __has_attribute(noipa)
#define OPAQUE __attribute__((noinline, noipa))
#endif
#endif
#ifndef OPAQUE
#define OPAQUE __attribute__((noinline))
#endif

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static uint64_t mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_emit: %s failed: %d (%s)\n", what, rc, gotrace_last_error());
	exit(1);
}

/* ------------------------------------------------------------- baselines */

static __thread volatile uint64_t tls_sink IE;

#define BASE_BUF 32768
/* Not static: the stores must stay observable. */
__thread uint8_t bench_tls_buf[BASE_BUF] IE;
static __thread uint32_t tls_pos IE;
static __thread uint64_t tls_last IE;

/* One event's worth of work without any of the library: counter read, delta
 * against the previous event, 5 bytes into a thread-local buffer. */
OPAQUE void base_event(uint8_t type, uint64_t task, uint64_t id)
{
	uint64_t now = gt_arch_cycles() >> 6; /* the library's tick */
	uint32_t pos = tls_pos;
	if (pos > BASE_BUF - 64)
		pos = 0;
	uint8_t *p = bench_tls_buf + pos;
	uint64_t dt = now > tls_last ? now - tls_last : 0;
	tls_last = now;
	*p++ = type;
	p = gt_put_uvarint(p, dt);
	p = gt_put_uvarint(p, task);
	p = gt_put_uvarint(p, id);
	*p++ = 0; /* stack */
	tls_pos = (uint32_t)(p - bench_tls_buf);
}

/* ---------------------------------------------------------------- loops */

enum kind { K_TSC, K_TSC_STORE, K_REGION, K_LOG, K_REGION_LIT, K_LOG_LIT, K_TASK_LIT, K_QUIT };
static const int calls_per_iter[] = { 1, 1, 2, 1, 2, 1, 2 };

static const char REGION_NAME[] = "bench.region";

static OPAQUE void run_loop(int kind, long n)
{
	switch (kind) {
	case K_TSC:
		for (long i = 0; i < n; i++)
			tls_sink = gt_arch_cycles();
		break;
	case K_TSC_STORE:
		for (long i = 0; i < n; i++)
			base_event((uint8_t)(42 + (i & 1)), 0, 1);
		break;
	case K_REGION:
		for (long i = 0; i < n; i++) {
			gotrace_region_begin(0, REGION_NAME);
			gotrace_region_end(0, REGION_NAME);
		}
		break;
	case K_LOG:
		for (long i = 0; i < n; i++)
			gotrace_log(0, "cat", "msg");
		break;
	case K_REGION_LIT:
		for (long i = 0; i < n; i++) {
			gotrace_region_begin_lit(0, "bench.region");
			gotrace_region_end_lit(0, "bench.region");
		}
		break;
	case K_LOG_LIT:
		for (long i = 0; i < n; i++)
			gotrace_log_lit(0, "cat", "msg");
		break;
	case K_TASK_LIT:
		for (long i = 0; i < n; i++)
			gotrace_task_end(gotrace_task_begin_lit(0, "bench.task"));
		break;
	}
}

/* --------------------------------------------------------------- workers */

#define NW 2
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cmd, done;
	unsigned epoch;
	int ndone;
	int kind, threads;
	long n, warm;
} ctl = { .mu = PTHREAD_MUTEX_INITIALIZER, .cmd = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };
/* Per worker: wall clock around the timed loop; thread CPU at the start of
 * the warm-up, around the timed loop. */
static struct { uint64_t t0, t1, cw, c0, c1; } wres[NW];
static pthread_t workers[NW];

/* Start line for the timed loops: spinning, so that both threads of a 2T
 * configuration are running when it is released (a sleeping barrier lets
 * one thread start a scheduler wake-up later than the other). */
static unsigned spin_arrived, spin_gen;

static void spin_barrier(int threads)
{
	unsigned g = __atomic_load_n(&spin_gen, __ATOMIC_ACQUIRE);
	if (__atomic_add_fetch(&spin_arrived, 1, __ATOMIC_ACQ_REL) == (unsigned)threads) {
		__atomic_store_n(&spin_arrived, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&spin_gen, g + 1, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_load_n(&spin_gen, __ATOMIC_ACQUIRE) == g)
		gt_arch_relax();
}

static void *worker_main(void *arg)
{
	int id = (int)(intptr_t)arg;
	unsigned seen = 0;
	char name[16];
	snprintf(name, sizeof name, "worker%d", id);
	gotrace_thread_name(name);
	for (;;) {
		pthread_mutex_lock(&ctl.mu);
		while (ctl.epoch == seen)
			pthread_cond_wait(&ctl.cmd, &ctl.mu);
		seen = ctl.epoch;
		int kind = ctl.kind, threads = ctl.threads;
		long n = ctl.n, warm = ctl.warm;
		pthread_mutex_unlock(&ctl.mu);
		if (kind != K_QUIT && id < threads) {
			uint64_t cw = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			run_loop(kind, warm);
			spin_barrier(threads);
			uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			uint64_t t0 = mono_ns();
			run_loop(kind, n);
			uint64_t t1 = mono_ns();
			uint64_t c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			wres[id].t0 = t0;
			wres[id].t1 = t1;
			wres[id].cw = cw;
			wres[id].c0 = c0;
			wres[id].c1 = c1;
		}
		pthread_mutex_lock(&ctl.mu);
		ctl.ndone++;
		pthread_cond_signal(&ctl.done);
		pthread_mutex_unlock(&ctl.mu);
		if (kind == K_QUIT)
			return NULL;
	}
}

static void dispatch(int kind, int threads, long n, long warm)
{
	pthread_mutex_lock(&ctl.mu);
	ctl.kind = kind;
	ctl.threads = threads;
	ctl.n = n;
	ctl.warm = warm;
	ctl.ndone = 0;
	ctl.epoch++;
	pthread_cond_broadcast(&ctl.cmd);
	while (ctl.ndone < NW)
		pthread_cond_wait(&ctl.done, &ctl.mu);
	pthread_mutex_unlock(&ctl.mu);
}

/* One timed run.  Per-iteration figures are per thread (mean over the
 * threads); rates are iterations per second of all threads together. */
struct sample {
	double wall;      /* wall ns per iteration */
	double cpu;       /* thread-CPU ns per iteration */
	double bg;        /* background (non-worker) CPU ns per iteration */
	double rate_wall; /* n*threads / (last end - first start) */
	double rate_cpu;  /* sum over threads of n / thread CPU */
};

static struct sample measure(int kind, int threads, long n, long warm)
{
	uint64_t p0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	dispatch(kind, threads, n, warm);
	uint64_t p1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	struct sample s = { 0, 0, 0, 0, 0 };
	uint64_t first = UINT64_MAX, last = 0;
	double worker_cpu = 0;
	for (int i = 0; i < threads; i++) {
		s.wall += (double)(wres[i].t1 - wres[i].t0) / (double)n;
		s.cpu += (double)(wres[i].c1 - wres[i].c0) / (double)n;
		s.rate_cpu += (double)n / ((double)(wres[i].c1 - wres[i].c0) * 1e-9);
		worker_cpu += (double)(wres[i].c1 - wres[i].cw);
		if (wres[i].t0 < first)
			first = wres[i].t0;
		if (wres[i].t1 > last)
			last = wres[i].t1;
	}
	s.wall /= threads;
	s.cpu /= threads;
	s.bg = ((double)(p1 - p0) - worker_cpu) / ((double)(n + warm) * threads);
	if (s.bg < 0)
		s.bg = 0;
	s.rate_wall = (double)n * threads / ((double)(last - first) * 1e-9);
	return s;
}

/* -------------------------------------------------------------- sessions */

static int devnull = -1;
#define LONG_PERIOD (3600ull * 1000000000ull)

static void session_start(const char *path, uint64_t period)
{
	gotrace_options o;
	gotrace_options_init(&o);
	if (period)
		o.advance_period_ns = period;
	int rc = path ? gotrace_start_path(path, &o) : gotrace_start_fd(devnull, &o);
	if (rc)
		die("gotrace_start", rc);
}

static gotrace_stats session_stop(void)
{
	int rc = gotrace_stop();
	if (rc)
		die("gotrace_stop", rc);
	gotrace_stats st;
	gotrace_get_stats(&st);
	if (st.events_dropped)
		fprintf(stderr, "bench_emit: WARNING: %llu events dropped (timings of that session are too good)\n",
		        (unsigned long long)st.events_dropped);
	return st;
}

/* -------------------------------------------------------------- configs */

enum phase { PH_OFF, PH_ON, PH_ON1S, PH_N };
static const char *phase_name[] = { "off", "on, 1 h", "on, 1 s" };
static const char *phase_long[] = { "tracing off", "tracing on, advance period 1 h, output /dev/null",
                                    "tracing on, default advance period 1 s, output /dev/null" };

/* mult: the tracing-off gotrace loops run mult*N iterations so that every
 * timed loop lasts tens of ms (2M off-calls take ~1 ms: too short to start
 * two threads together reliably on a VM). */
struct cfg {
	const char *name;
	int kind, threads, phase, mult;
};
static const struct cfg cfgs[] = {
	{ "baseline_tsc/1T", K_TSC, 1, PH_OFF, 1 },
	{ "baseline_tsc/2T", K_TSC, 2, PH_OFF, 1 },
	{ "baseline_tsc_store/1T", K_TSC_STORE, 1, PH_OFF, 1 },
	{ "baseline_tsc_store/2T", K_TSC_STORE, 2, PH_OFF, 1 },
	{ "off_region_pair/1T", K_REGION, 1, PH_OFF, 16 },
	{ "off_region_pair/2T", K_REGION, 2, PH_OFF, 16 },
	{ "off_log/1T", K_LOG, 1, PH_OFF, 32 },
	{ "on_region_pair/1T", K_REGION, 1, PH_ON, 1 },
	{ "on_region_pair/2T", K_REGION, 2, PH_ON, 1 },
	{ "on_log/1T", K_LOG, 1, PH_ON, 1 },
	{ "on_log/2T", K_LOG, 2, PH_ON, 1 },
	{ "on_region_lit_pair/1T", K_REGION_LIT, 1, PH_ON, 1 },
	{ "on_region_lit_pair/2T", K_REGION_LIT, 2, PH_ON, 1 },
	{ "on_log_lit/1T", K_LOG_LIT, 1, PH_ON, 1 },
	{ "on_log_lit/2T", K_LOG_LIT, 2, PH_ON, 1 },
	{ "on_task_lit_pair/1T", K_TASK_LIT, 1, PH_ON, 1 },
	{ "on_task_lit_pair/2T", K_TASK_LIT, 2, PH_ON, 1 },
	{ "off_region_lit_pair/1T", K_REGION_LIT, 1, PH_OFF, 16 },
	{ "on1s_region_pair/1T", K_REGION, 1, PH_ON1S, 1 },
	{ "on1s_region_pair/2T", K_REGION, 2, PH_ON1S, 1 },
	{ "on1s_log/1T", K_LOG, 1, PH_ON1S, 1 },
};
#define NCFG (int)(sizeof cfgs / sizeof cfgs[0])
#define MAXR 101

static struct sample res[NCFG][MAXR];
static int R = 11;

static int cfg_index(const char *name)
{
	for (int i = 0; i < NCFG; i++)
		if (strcmp(cfgs[i].name, name) == 0)
			return i;
	fprintf(stderr, "bench_emit: no configuration %s\n", name);
	exit(2);
}

/* ------------------------------------------------------------ statistics */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double tmp[MAXR * 8];
	memcpy(tmp, v, (size_t)n * sizeof *v);
	qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static double minv(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double maxv(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

enum metric { M_WALL, M_CPU, M_BG, M_RATE_WALL, M_RATE_CPU };

/* Metric m of configuration c in each repetition; per-iteration metrics are
 * turned into per call. */
static void series(int c, int m, double *out)
{
	for (int r = 0; r < R; r++) {
		const struct sample *s = &res[c][r];
		double per = calls_per_iter[cfgs[c].kind];
		switch (m) {
		case M_WALL: out[r] = s->wall / per; break;
		case M_CPU: out[r] = s->cpu / per; break;
		case M_BG: out[r] = s->bg / per; break;
		case M_RATE_WALL: out[r] = s->rate_wall * per; break;
		case M_RATE_CPU: out[r] = s->rate_cpu * per; break;
		}
	}
}

static double med(const char *name, int m)
{
	double v[MAXR];
	series(cfg_index(name), m, v);
	return median(v, R);
}

/* Median over repetitions of metric(a) / metric(b). */
static double ratio(const char *a, const char *b, int m)
{
	double v[MAXR], x[MAXR], y[MAXR];
	series(cfg_index(a), m, x);
	series(cfg_index(b), m, y);
	for (int r = 0; r < R; r++)
		v[r] = x[r] / y[r];
	return median(v, R);
}

/* ---------------------------------------------------- foreign load */

/* CPU seconds used by everything on the machine (/proc/stat) and by this
 * process; their difference over an interval is what other programs took. */
struct cpu_snap {
	double busy, steal, own, wall;
};

static struct cpu_snap cpu_snap(void)
{
	struct cpu_snap s = { 0, 0, 0, (double)mono_ns() * 1e-9 };
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	if (f) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		           &v[6], &v[7]) != 8)
			memset(v, 0, sizeof v);
		fclose(f);
	}
	double hz = (double)sysconf(_SC_CLK_TCK);
	s.busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
	s.steal = (double)v[7] / hz;
	s.own = (double)clock_ns(CLOCK_PROCESS_CPUTIME_ID) * 1e-9;
	return s;
}

static double foreign_cpus(const struct cpu_snap *a, const struct cpu_snap *b)
{
	double f = ((b->busy - a->busy) - (b->own - a->own)) / (b->wall - a->wall);
	return f < 0 ? 0 : f; /* /proc/stat counts in ticks */
}

/* Wait (up to max_s) until other programs use < 0.15 CPU over 300 ms.
 * Returns the time waited. */
static double idle_wait(double max_s)
{
	uint64_t t0 = mono_ns();
	while ((double)(mono_ns() - t0) * 1e-9 < max_s) {
		struct cpu_snap a = cpu_snap();
		usleep(300000);
		struct cpu_snap b = cpu_snap();
		if (foreign_cpus(&a, &b) < 0.15)
			break;
	}
	return (double)(mono_ns() - t0) * 1e-9;
}

/* ------------------------------------------------------------ machine */

static void print_machine(long n, long warm)
{
	char model[256] = "?";
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[512];
		while (fgets(line, sizeof line, f)) {
			if (strncmp(line, "model name", 10) == 0) {
				char *p = strchr(line, ':');
				if (p) {
					p += 1 + (p[1] == ' ');
					snprintf(model, sizeof model, "%s", p);
					model[strcspn(model, "\n")] = 0;
				}
				break;
			}
		}
		fclose(f);
	}
	struct utsname u;
	uname(&u);
	printf("machine: nproc=%ld, cpu=\"%s\", kernel %s %s\n", sysconf(_SC_NPROCESSORS_ONLN), model, u.release,
	       u.machine);
	printf("run: R=%d repetitions, N=%ld timed iterations per configuration per repetition (+%ld warm-up;"
	       " tracing-off gotrace loops 16N or 32N), order rotated per repetition\n",
	       R, n, warm);
}

/* ------------------------------------------------------------- RSS */

struct rss_ctl {
	long pairs; /* region pairs per thread (0: no traced call) */
	pthread_barrier_t in, out;
};

static void *rss_thread(void *arg)
{
	struct rss_ctl *c = arg;
	for (long i = 0; i < c->pairs; i++) {
		gotrace_region_begin(0, REGION_NAME);
		gotrace_region_end(0, REGION_NAME);
	}
	if (c->pairs)
		gotrace_log(0, "cat", "msg");
	pthread_barrier_wait(&c->in);  /* all alive, all have emitted */
	pthread_barrier_wait(&c->out); /* main has read VmRSS */
	return NULL;
}

/* VmRSS growth in kB while T threads are alive (each after its events). */
static long rss_run(int T, long pairs)
{
	struct rss_ctl c = { .pairs = pairs };
	pthread_barrier_init(&c.in, NULL, (unsigned)T + 1);
	pthread_barrier_init(&c.out, NULL, (unsigned)T + 1);
	pthread_t *th = calloc((size_t)T, sizeof *th);
	long before = proc_rss_kb();
	for (int i = 0; i < T; i++)
		if (pthread_create(&th[i], NULL, rss_thread, &c) != 0)
			die("pthread_create", errno);
	pthread_barrier_wait(&c.in);
	long during = proc_rss_kb();
	pthread_barrier_wait(&c.out);
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	free(th);
	pthread_barrier_destroy(&c.in);
	pthread_barrier_destroy(&c.out);
	return during - before;
}

/* ------------------------------------------------------------- report */

static void row_ratio(const char *what, const char *a, const char *b, int m_wall, int m_cpu)
{
	printf("| %s | %.2f | %.2f |\n", what, ratio(a, b, m_wall), ratio(a, b, m_cpu));
}

static void check(const char *what, double wall, double cpu, double target, int le)
{
	int ok_w = le ? wall <= target : wall >= target;
	int ok_c = le ? cpu <= target : cpu >= target;
	printf("| %s | %s %.2f | %.2f (%s) | %.2f (%s) |\n", what, le ? "<=" : ">=", target, wall,
	       ok_w ? "met" : "MISSED", cpu, ok_c ? "met" : "MISSED");
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	long n = 2000000;
	double sustain_s = 5;
	int rss_T = 64;
	const char *dir = "/tmp";
	const char *profile = NULL;
	double idle_max = 30;
	int opt;
	while ((opt = getopt(argc, argv, "n:r:s:t:d:p:w:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'r': R = atoi(optarg); break;
		case 's': sustain_s = atof(optarg); break;
		case 't': rss_T = atoi(optarg); break;
		case 'd': dir = optarg; break;
		case 'p': profile = optarg; break;
		case 'w': idle_max = atof(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-n iterations] [-r reps] [-s sustained_s] [-t rss_threads]"
			                " [-d trace_dir] [-w max_idle_wait_s] [-p config]\n", argv[0]);
			return 2;
		}
	}
	if (n < 1000 || R < 1 || R > MAXR || rss_T < 1) {
		fprintf(stderr, "bench_emit: need n >= 1000, 1 <= r <= %d, t >= 1\n", MAXR);
		return 2;
	}
	long warm = n / 10;
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0)
		die("open /dev/null", errno);
	for (int i = 0; i < NW; i++)
		pthread_create(&workers[i], NULL, worker_main, (void *)(intptr_t)i);

	if (profile) {
		int c = cfg_index(profile);
		if (cfgs[c].phase != PH_OFF)
			session_start(NULL, cfgs[c].phase == PH_ON ? LONG_PERIOD : 0);
		for (int r = 0; r < R; r++)
			res[c][r] = measure(cfgs[c].kind, cfgs[c].threads, n * cfgs[c].mult, r ? 0 : warm * cfgs[c].mult);
		if (cfgs[c].phase != PH_OFF)
			session_stop();
		double w[MAXR], u[MAXR];
		series(c, M_WALL, w);
		series(c, M_CPU, u);
		printf("%s: ns/call median wall %.2f (min %.2f, max %.2f), thread CPU %.2f, over %d repetitions\n",
		       profile, median(w, R), minv(w, R), maxv(w, R), median(u, R), R);
		dispatch(K_QUIT, 0, 0, 0);
		return 0;
	}

	print_machine(n, warm);

	/* ---- interleaved repetitions ---- */
	double bpe[PH_N][MAXR]; /* bytes written per event, per on-session */
	double foreign[MAXR], steal[MAXR], waited[MAXR];
	for (int r = 0; r < R; r++) {
		waited[r] = idle_max > 0 ? idle_wait(idle_max) : 0;
		struct cpu_snap s0 = cpu_snap();
		for (int ph = 0; ph < PH_N; ph++) {
			int idx[NCFG], k = 0;
			for (int c = 0; c < NCFG; c++)
				if (cfgs[c].phase == ph)
					idx[k++] = c;
			if (ph != PH_OFF)
				session_start(NULL, ph == PH_ON ? LONG_PERIOD : 0);
			double events = 0;
			for (int j = 0; j < k; j++) {
				int c = idx[(j + r) % k];
				long m = cfgs[c].mult;
				res[c][r] = measure(cfgs[c].kind, cfgs[c].threads, n * m, warm * m);
				events += (double)(n + warm) * m * cfgs[c].threads * calls_per_iter[cfgs[c].kind];
			}
			if (ph != PH_OFF) {
				gotrace_stats st = session_stop();
				bpe[ph][r] = (double)st.bytes_written / events;
			}
		}
		struct cpu_snap s1 = cpu_snap();
		foreign[r] = foreign_cpus(&s0, &s1);
		steal[r] = (s1.steal - s0.steal) / (s1.wall - s0.wall);
		fprintf(stderr, "repetition %d/%d: waited %.1f s for a quiet machine; ran %.1f s while other programs"
		        " used %.2f CPUs (steal %.2f)\n", r + 1, R, waited[r], s1.wall - s0.wall, foreign[r], steal[r]);
	}
	printf("other programs' CPU use during the repetitions (CPUs, of %ld):", sysconf(_SC_NPROCESSORS_ONLN));
	for (int r = 0; r < R; r++)
		printf(" %.2f", foreign[r]);
	printf("; median %.2f; hypervisor steal median %.2f\n\n", median(foreign, R), median(steal, R));

	printf("## Per configuration: medians over %d repetitions, ns per call (a region pair is 2 calls)\n\n", R);
	printf("| configuration | tracing | wall ns/call | wall min..max | thread-CPU ns/call |"
	       " background CPU ns/call | wall / baseline_tsc_store | CPU / baseline_tsc_store |"
	       " aggregate Mcalls/s (wall) |\n");
	printf("|---|---|---:|---|---:|---:|---:|---:|---:|\n");
	for (int c = 0; c < NCFG; c++) {
		double w[MAXR], u[MAXR], b[MAXR], rw[MAXR];
		series(c, M_WALL, w);
		series(c, M_CPU, u);
		series(c, M_BG, b);
		series(c, M_RATE_WALL, rw);
		const char *base = cfgs[c].threads == 1 ? "baseline_tsc_store/1T" : "baseline_tsc_store/2T";
		printf("| %s | %s | %.2f | %.2f..%.2f | %.2f | %.2f | %.2f | %.2f | %.1f |\n", cfgs[c].name,
		       phase_name[cfgs[c].phase], median(w, R), minv(w, R), maxv(w, R), median(u, R), median(b, R),
		       ratio(cfgs[c].name, base, M_WALL), ratio(cfgs[c].name, base, M_CPU), median(rw, R) / 1e6);
	}
	printf("\nSessions: off = %s; \"on, 1 h\" = %s; \"on, 1 s\" = %s.\n", phase_long[PH_OFF], phase_long[PH_ON],
	       phase_long[PH_ON1S]);

	printf("\n## Ratios (median of per-repetition ratios)\n\n");
	printf("| ratio | wall clock | thread CPU |\n|---|---:|---:|\n");
	static const char *pairs[][3] = {
		{ "region event (pair/2) / baseline_tsc_store, 1T", "on_region_pair/1T", "baseline_tsc_store/1T" },
		{ "region event (pair/2) / baseline_tsc_store, 2T", "on_region_pair/2T", "baseline_tsc_store/2T" },
		{ "log event / baseline_tsc_store, 1T", "on_log/1T", "baseline_tsc_store/1T" },
		{ "region _lit event (pair/2) / baseline_tsc_store, 1T", "on_region_lit_pair/1T", "baseline_tsc_store/1T" },
		{ "region _lit event (pair/2) / baseline_tsc_store, 2T", "on_region_lit_pair/2T", "baseline_tsc_store/2T" },
		{ "task _lit event (pair/2) / baseline_tsc_store, 1T", "on_task_lit_pair/1T", "baseline_tsc_store/1T" },
		{ "task _lit event (pair/2) / baseline_tsc_store, 2T", "on_task_lit_pair/2T", "baseline_tsc_store/2T" },
		{ "log _lit event / baseline_tsc_store, 1T", "on_log_lit/1T", "baseline_tsc_store/1T" },
		{ "log _lit event / baseline_tsc_store, 2T", "on_log_lit/2T", "baseline_tsc_store/2T" },
		{ "region _lit / region by name, 1T", "on_region_lit_pair/1T", "on_region_pair/1T" },
		{ "log event / baseline_tsc_store, 2T", "on_log/2T", "baseline_tsc_store/2T" },
		{ "region event / baseline_tsc, 1T", "on_region_pair/1T", "baseline_tsc/1T" },
		{ "log event / baseline_tsc, 1T", "on_log/1T", "baseline_tsc/1T" },
		{ "baseline_tsc_store / baseline_tsc, 1T", "baseline_tsc_store/1T", "baseline_tsc/1T" },
		{ "on / off, region pair, 1T", "on_region_pair/1T", "off_region_pair/1T" },
		{ "on / off, log, 1T", "on_log/1T", "off_log/1T" },
		{ "period 1 s / period 1 h, region pair, 1T", "on1s_region_pair/1T", "on_region_pair/1T" },
		{ "period 1 s / period 1 h, region pair, 2T", "on1s_region_pair/2T", "on_region_pair/2T" },
		{ "period 1 s / period 1 h, log, 1T", "on1s_log/1T", "on_log/1T" },
		{ "per-thread cost 2T / 1T, region pair", "on_region_pair/2T", "on_region_pair/1T" },
		{ "per-thread cost 2T / 1T, log", "on_log/2T", "on_log/1T" },
		{ "per-thread cost 2T / 1T, baseline_tsc_store", "baseline_tsc_store/2T", "baseline_tsc_store/1T" },
	};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
		row_ratio(pairs[i][0], pairs[i][1], pairs[i][2], M_WALL, M_CPU);
	static const char *scal[][3] = {
		{ "2T/1T aggregate throughput, baseline_tsc", "baseline_tsc/2T", "baseline_tsc/1T" },
		{ "2T/1T aggregate throughput, baseline_tsc_store", "baseline_tsc_store/2T", "baseline_tsc_store/1T" },
		{ "2T/1T aggregate throughput, off_region_pair", "off_region_pair/2T", "off_region_pair/1T" },
		{ "2T/1T aggregate throughput, on_region_pair", "on_region_pair/2T", "on_region_pair/1T" },
		{ "2T/1T aggregate throughput, on_log", "on_log/2T", "on_log/1T" },
		{ "2T/1T aggregate throughput, on1s_region_pair", "on1s_region_pair/2T", "on1s_region_pair/1T" },
	};
	for (size_t i = 0; i < sizeof scal / sizeof scal[0]; i++)
		row_ratio(scal[i][0], scal[i][1], scal[i][2], M_RATE_WALL, M_RATE_CPU);
	printf("\nWall-clock throughput of 2 threads: calls of both / (last end - first start).  Thread-CPU"
	       " throughput: sum over the threads of calls / own CPU time (2.00 = no contention between them;"
	       " it does not see the flusher taking a core away).\n");

	printf("\n## Bytes written per event (gotrace_get_stats().bytes_written / calls of the session, median)\n\n");
	printf("| session (regions and logs mixed, 1T and 2T) | bytes/event |\n|---|---:|\n");
	for (int ph = PH_ON; ph < PH_N; ph++)
		printf("| %s | %.3f |\n", phase_long[ph], median(bpe[ph], R));

	/* ---- targets ---- */
	printf("\n## Targets\n\n| target | goal | wall clock | thread CPU |\n|---|---|---:|---:|\n");
	check("tracing off: ns per region call, 1T", med("off_region_pair/1T", M_WALL), med("off_region_pair/1T", M_CPU),
	      1.0, 1);
	check("region event / baseline_tsc_store, 1T", ratio("on_region_pair/1T", "baseline_tsc_store/1T", M_WALL),
	      ratio("on_region_pair/1T", "baseline_tsc_store/1T", M_CPU), 1.5, 1);
	check("region event / baseline_tsc_store, 2T", ratio("on_region_pair/2T", "baseline_tsc_store/2T", M_WALL),
	      ratio("on_region_pair/2T", "baseline_tsc_store/2T", M_CPU), 1.5, 1);
	check("log event / baseline_tsc_store, 1T", ratio("on_log/1T", "baseline_tsc_store/1T", M_WALL),
	      ratio("on_log/1T", "baseline_tsc_store/1T", M_CPU), 1.5, 1);
	check("2T/1T throughput, on_region_pair", ratio("on_region_pair/2T", "on_region_pair/1T", M_RATE_WALL),
	      ratio("on_region_pair/2T", "on_region_pair/1T", M_RATE_CPU), 1.9, 0);
	check("2T/1T throughput, on_log", ratio("on_log/2T", "on_log/1T", M_RATE_WALL),
	      ratio("on_log/2T", "on_log/1T", M_RATE_CPU), 1.9, 0);
	fflush(stdout);

	/* ---- sustained, default 1 s period: advances inside the loops ---- */
	printf("\n## Sustained region pairs, default advance period (1 s), /dev/null, %.0f s per thread count\n\n",
	       sustain_s);
	printf("| configuration | blocks of N pairs | wall ns/call, median block | wall ns/call, all time / all calls |"
	       " wall ns/call, slowest block | thread-CPU ns/call, all | background CPU ns/call | generations |"
	       " bytes/event | other programs (CPUs) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int threads = 1; threads <= 2; threads++) {
		static double blk[MAXR * 8];
		int nb = 0;
		double wall = 0, cpu = 0, bg = 0, calls = 0;
		if (idle_max > 0)
			idle_wait(idle_max);
		struct cpu_snap s0 = cpu_snap();
		session_start(NULL, 0);
		uint64_t t_end = mono_ns() + (uint64_t)(sustain_s * 1e9);
		while ((mono_ns() < t_end || nb == 0) && nb < MAXR * 8) {
			long w = nb ? 0 : warm;
			struct sample s = measure(K_REGION, threads, n, w);
			blk[nb++] = s.wall / 2;
			wall += s.wall * n;
			cpu += s.cpu * n;
			bg += s.bg * (n + w) * threads;
			calls += 2.0 * n;
		}
		gotrace_stats st = session_stop();
		struct cpu_snap s1 = cpu_snap();
		double all_calls = (calls + 2.0 * warm) * threads;
		printf("| on1s_region_pair/%dT | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %llu | %.3f | %.2f |\n", threads,
		       nb, median(blk, nb), wall / calls, maxv(blk, nb), cpu / calls, bg / all_calls,
		       (unsigned long long)st.generations, (double)st.bytes_written / all_calls,
		       foreign_cpus(&s0, &s1));
		fflush(stdout);
	}

	/* ---- bytes per event from real trace files ---- */
	printf("\n## Trace files (tracing on, period 1 h, 1 thread, only this kind of event, written to %s)\n\n", dir);
	printf("| file | events | file bytes | file bytes/event | stats bytes_written/event |\n"
	       "|---|---:|---:|---:|---:|\n");
	for (int kind = K_REGION; kind <= K_LOG; kind++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/gotrace_bench_%s.trace", dir, kind == K_REGION ? "regions" : "logs");
		session_start(path, LONG_PERIOD);
		measure(kind, 1, n, warm);
		gotrace_stats st = session_stop();
		double events = (double)(n + warm) * calls_per_iter[kind];
		uint64_t sz = file_size(path);
		printf("| %s | %.0f | %llu | %.3f | %.3f |\n", path, events, (unsigned long long)sz, sz / events,
		       st.bytes_written / events);
	}

	/* ---- resident memory per traced thread ---- */
	printf("\n## Resident memory, %d threads alive at once (VmRSS growth / threads)\n\n", rss_T);
	long ctl0 = rss_run(rss_T, 0);
	session_start(NULL, LONG_PERIOD);
	long few = rss_run(rss_T, 2);
	long busy = rss_run(rss_T, 5000);
	session_stop();
	long ctl1 = rss_run(rss_T, 0);
	double ctl = (ctl0 + ctl1) / 2.0;
	printf("| threads | kB/thread | kB/thread minus untraced |\n|---|---:|---:|\n");
	printf("| untraced (no gotrace call), run before | %.1f | |\n", (double)ctl0 / rss_T);
	printf("| untraced (no gotrace call), run after | %.1f | |\n", (double)ctl1 / rss_T);
	printf("| traced, 5 events each (2 region pairs + 1 log) | %.1f | %.1f |\n", (double)few / rss_T,
	       (few - ctl) / rss_T);
	printf("| traced, 10001 events each (5000 region pairs + 1 log) | %.1f | %.1f |\n", (double)busy / rss_T,
	       (busy - ctl) / rss_T);
	printf("\n(Every thread of this program, traced or not, also carries the benchmark's own 32 KiB TLS"
	       " buffer of baseline_tsc_store.)\n");

	dispatch(K_QUIT, 0, 0, 0);
	for (int i = 0; i < NW; i++)
		pthread_join(workers[i], NULL);
	return 0;
}
