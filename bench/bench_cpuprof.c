/*
 * bench_cpuprof: the cost and accuracy of gotrace's CPU profiling, side by
 * side with gperftools' CPU profiler, on one workload in one run.
 *
 * Workload: 2 threads, each a fixed number of rounds of hot_a (7 units) and
 * hot_b (3 units): about 70/30 of their CPU time (measured per call with
 * CLOCK_THREAD_CPUTIME_ID: the truth).  Every configuration runs in a fresh
 * child process (gperftools reads CPUPROFILE_FREQUENCY once per process),
 * interleaved, REPS times; the table shows medians.
 *
 *   bench_cpuprof [SECONDS_OF_WORK_PER_THREAD (default 5)] [REPS (default 5)]
 *
 * "gotrace-off" traces without CPU profiling (the tracing's own fixed cost:
 * flusher, symbolisation at the end).
 * Columns: wall and process CPU time (getrusage: every thread, the
 * profilers' own included) and their overhead against the unprofiled
 * median; samples collected / (rate x workers' CPU time); the share of
 * samples whose leaf is hot_a and hot_b against the truth.
 */
#define _GNU_SOURCE 1
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <gotrace.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static volatile uint64_t sink;

/* gperftools is loaded only in its own runs: libprofiler installs its
 * SIGPROF handler when loaded, and gotrace (rightly) refuses to start
 * beside another profiler's handler. */
static int (*ProfilerStart)(const char *);
static void (*ProfilerStop)(void);
static void (*ProfilerRegisterThread)(void);

static int load_gperftools(void)
{
	void *h = dlopen("libprofiler.so.0", RTLD_NOW | RTLD_GLOBAL);
	if (!h)
		return -1;
	ProfilerStart = (int (*)(const char *))dlsym(h, "ProfilerStart");
	ProfilerStop = (void (*)(void))dlsym(h, "ProfilerStop");
	ProfilerRegisterThread = (void (*)(void))dlsym(h, "ProfilerRegisterThread");
	return ProfilerStart && ProfilerStop ? 0 : -1;
}

__attribute__((noinline, noipa)) void bench_hot_a(uint64_t n)
{
	uint64_t x = __atomic_load_n(&sink, __ATOMIC_RELAXED) | 1;
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
}

__attribute__((noinline, noipa)) void bench_hot_b(uint64_t n)
{
	uint64_t x = __atomic_load_n(&sink, __ATOMIC_RELAXED) | 2;
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 11;
		x ^= x >> 9;
		x ^= x << 19;
	}
	__atomic_store_n(&sink, x, __ATOMIC_RELAXED);
}

struct worker {
	pthread_t th;
	uint64_t rounds, unit;
	uint64_t a, b, cpu;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	gotrace_log(0, "bench", "start"); /* registers (per-thread timers) */
	if (ProfilerRegisterThread)
		ProfilerRegisterThread();
	uint64_t t0 = ns(CLOCK_THREAD_CPUTIME_ID), start = t0;
	for (uint64_t r = 0; r < w->rounds; r++) {
		bench_hot_a(7 * w->unit);
		uint64_t t1 = ns(CLOCK_THREAD_CPUTIME_ID);
		bench_hot_b(3 * w->unit);
		uint64_t t2 = ns(CLOCK_THREAD_CPUTIME_ID);
		w->a += t1 - t0;
		w->b += t2 - t1;
		t0 = t2;
	}
	w->cpu = ns(CLOCK_THREAD_CPUTIME_ID) - start;
	return NULL;
}

/* ------------------------------------------------------ reading profiles */

/* Leaf function of each CPU sample in a gotrace trace (raw wire format). */
static int rv(const uint8_t **p, const uint8_t *e, uint64_t *v)
{
	uint64_t x = 0;
	for (int i = 0, s = 0; i < 10 && *p < e; i++, s += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

struct counts {
	uint64_t samples, a, b;
};

static void count_gotrace(const char *path, struct counts *c)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)len);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len)
		len = 0;
	fclose(f);
	/* Per generation: string id -> is hot_a/hot_b; stack id -> leaf
	 * func string; samples' stack ids.  Generations are contiguous. */
	enum { MAXID = 1 << 20 };
	static uint8_t str_kind[MAXID];
	static uint64_t stack_leaf[MAXID];
	static uint64_t *pending;
	static size_t npend, cappend;
	uint64_t cur = 0;
	const uint8_t *p = buf + 16, *end = buf + len;
	for (;;) {
		uint64_t gen = 0, m = 0, t = 0, size = 0;
		bool eof = p >= end;
		if (!eof && (*p++ != 1 || rv(&p, end, &gen) || rv(&p, end, &m) || rv(&p, end, &t) ||
		             rv(&p, end, &size)))
			break;
		if (eof || gen != cur) {
			for (size_t i = 0; i < npend; i++) {
				uint64_t s = pending[i];
				uint64_t leaf = s < MAXID ? stack_leaf[s] : 0;
				uint8_t k = leaf < MAXID ? str_kind[leaf] : 0;
				c->samples++;
				c->a += k == 1;
				c->b += k == 2;
			}
			npend = 0;
			memset(str_kind, 0, sizeof str_kind);
			memset(stack_leaf, 0, sizeof stack_leaf);
			cur = gen;
			if (eof)
				break;
		}
		const uint8_t *q = p, *be = p + size;
		p = be;
		if (q == be)
			continue;
		uint8_t kind = *q++;
		uint64_t id, n, v;
		if (kind == 4) {
			while (q < be && *q++ == 5 && !rv(&q, be, &id) && !rv(&q, be, &n)) {
				if (id < MAXID)
					str_kind[id] = (n == 11 && !memcmp(q, "bench_hot_a", 11)) ? 1
					               : (n == 11 && !memcmp(q, "bench_hot_b", 11)) ? 2 : 0;
				q += n;
			}
		} else if (kind == 2) {
			while (q < be && *q++ == 3 && !rv(&q, be, &id) && !rv(&q, be, &n)) {
				for (uint64_t i = 0; i < n; i++) {
					uint64_t pc = 0, fn = 0, file = 0, line = 0;
					rv(&q, be, &pc);
					rv(&q, be, &fn);
					rv(&q, be, &file);
					rv(&q, be, &line);
					if (i == 0 && id < MAXID)
						stack_leaf[id] = fn;
				}
			}
		} else if (kind == 6) {
			while (q < be && *q++ == 7) {
				uint64_t s = 0;
				rv(&q, be, &v);
				rv(&q, be, &v);
				rv(&q, be, &v);
				rv(&q, be, &v);
				rv(&q, be, &s);
				if (npend == cappend) {
					cappend = cappend ? 2 * cappend : 4096;
					pending = realloc(pending, cappend * sizeof *pending);
				}
				pending[npend++] = s;
			}
		}
	}
	free(buf);
}

/* gperftools' legacy CPU profile: header words [0, 3, 0, period, 0], then
 * records [count, depth, pc...], then [0, 1, 0] and the memory map.  The
 * profile is read by the process that wrote it: addresses are valid. */
static void count_gperf(const char *path, struct counts *c)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	uintptr_t hdr[5];
	if (fread(hdr, sizeof hdr[0], 5, f) != 5) {
		fclose(f);
		return;
	}
	Dl_info di;
	uintptr_t a = 0, b = 0;
	if (dladdr((void *)bench_hot_a, &di))
		a = (uintptr_t)di.dli_saddr;
	if (dladdr((void *)bench_hot_b, &di))
		b = (uintptr_t)di.dli_saddr;
	for (;;) {
		uintptr_t cnt, depth, pcs[256];
		if (fread(&cnt, sizeof cnt, 1, f) != 1 || fread(&depth, sizeof depth, 1, f) != 1)
			break;
		if (cnt == 0 && depth == 1)
			break;
		if (depth > 256 || fread(pcs, sizeof pcs[0], depth, f) != depth)
			break;
		uintptr_t leaf = 0;
		if (depth && dladdr((void *)pcs[0], &di))
			leaf = (uintptr_t)di.dli_saddr;
		c->samples += cnt;
		c->a += leaf == a ? cnt : 0;
		c->b += leaf == b ? cnt : 0;
	}
	fclose(f);
}

/* ------------------------------------------------------------------ child */

static int child(const char *mode, int hz, uint64_t rounds, uint64_t unit, const char *out)
{
	struct worker w[2];
	memset(w, 0, sizeof w);
	bool gt = !strncmp(mode, "gotrace-", 8) && strcmp(mode, "gotrace-off") != 0, gp = !strcmp(mode, "gperftools");
	if (!strcmp(mode, "gotrace-off")) { /* tracing without CPU profiling */
		if (gotrace_start_path(out, NULL) != 0)
			return 1;
	} else if (gt) {
		gotrace_options o;
		gotrace_options_init(&o);
		o.cpu_hz = hz;
		o.cpu_source = !strcmp(mode + 8, "perf") ? GOTRACE_CPU_PERF
		               : !strcmp(mode + 8, "timer") ? GOTRACE_CPU_THREAD_TIMER
		                                            : GOTRACE_CPU_SETITIMER;
		if (gotrace_start_path(out, &o) != 0) {
			fprintf(stderr, "start: %s\n", gotrace_last_error());
			return 1;
		}
	} else if (gp) {
		char f[32];
		snprintf(f, sizeof f, "%d", hz);
		setenv("CPUPROFILE_FREQUENCY", f, 1);
		if (load_gperftools() != 0 || !ProfilerStart(out))
			return 1;
	}
	uint64_t w0 = ns(CLOCK_MONOTONIC);
	for (int i = 0; i < 2; i++) {
		w[i].rounds = rounds;
		w[i].unit = unit;
		pthread_create(&w[i].th, NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(w[i].th, NULL);
	if (gt || !strcmp(mode, "gotrace-off"))
		gotrace_stop();
	else if (gp)
		ProfilerStop();
	uint64_t wall = ns(CLOCK_MONOTONIC) - w0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	uint64_t cpu = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
	               (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
	struct counts c = { 0 };
	if (gt)
		count_gotrace(out, &c);
	else if (gp)
		count_gperf(out, &c);
	printf("%llu %llu %llu %llu %llu %llu %llu %llu\n", (unsigned long long)wall,
	       (unsigned long long)cpu, (unsigned long long)(w[0].cpu + w[1].cpu),
	       (unsigned long long)(w[0].a + w[1].a), (unsigned long long)(w[0].b + w[1].b),
	       (unsigned long long)c.samples, (unsigned long long)c.a, (unsigned long long)c.b);
	return 0;
}

/* ----------------------------------------------------------------- parent */

struct cfg {
	const char *mode;
	int hz;
	double wall[16], cpu[16], exp_ratio[16], sa[16], sb[16], ta[16], tb[16];
};

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double t[16];
	memcpy(t, v, (size_t)n * sizeof *t);
	qsort(t, (size_t)n, sizeof *t, cmpd);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	if (argc >= 7 && !strcmp(argv[1], "child"))
		return child(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 0), strtoull(argv[5], NULL, 0),
		             argv[6]);
	double secs = argc > 1 ? atof(argv[1]) : 5;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	if (reps < 1 || reps > 16)
		reps = 5;
	/* Calibrate: iterations per unit for a 1 ms round. */
	uint64_t t0 = ns(CLOCK_THREAD_CPUTIME_ID);
	bench_hot_a(20000000);
	double per_iter = (double)(ns(CLOCK_THREAD_CPUTIME_ID) - t0) / 20000000;
	uint64_t unit = (uint64_t)(100000 / per_iter); /* 10 units = 1 ms */
	uint64_t rounds = (uint64_t)(secs * 1000);
	static struct cfg cfgs[] = {
		{ "none", 0 },
		{ "gotrace-off", 0 },
		{ "gotrace-setitimer", 100 },
		{ "gotrace-timer", 100 },
		{ "gotrace-perf", 100 },
		{ "gperftools", 100 },
		{ "gotrace-perf", 1000 },
		{ "gotrace-timer", 1000 },
		{ "gotrace-setitimer", 1000 },
		{ "gperftools", 1000 },
	};
	int ncfg = sizeof cfgs / sizeof cfgs[0];
	char tmpl[] = "/tmp/bench_cpuprof_XXXXXX";
	char *dir = mkdtemp(tmpl);
	fprintf(stderr, "bench_cpuprof: %g s of work per thread, 2 threads, %d reps, %d configs\n", secs,
	        reps, ncfg);
	for (int r = 0; r < reps; r++) {
		for (int i = 0; i < ncfg; i++) {
			struct cfg *c = &cfgs[i];
			char out[256], hz[16], ro[32], un[32], cmd[1024];
			snprintf(out, sizeof out, "%s/%s-%d.prof", dir, c->mode, c->hz);
			snprintf(hz, sizeof hz, "%d", c->hz);
			snprintf(ro, sizeof ro, "%llu", (unsigned long long)rounds);
			snprintf(un, sizeof un, "%llu", (unsigned long long)unit);
			snprintf(cmd, sizeof cmd, "/proc/%d/exe child %s %s %s %s %s", (int)getpid(), c->mode, hz,
			         ro, un, out);
			FILE *f = popen(cmd, "r");
			unsigned long long wall, cpu, wcpu, ta, tb, n, a, b;
			int ok = f && fscanf(f, "%llu %llu %llu %llu %llu %llu %llu %llu", &wall, &cpu, &wcpu,
			                     &ta, &tb, &n, &a, &b) == 8;
			if (f)
				pclose(f);
			unlink(out);
			if (!ok) {
				fprintf(stderr, "child %s %d failed\n", c->mode, c->hz);
				return 1;
			}
			c->wall[r] = wall / 1e9;
			c->cpu[r] = cpu / 1e9;
			c->exp_ratio[r] = c->hz ? n / (c->hz * wcpu / 1e9) : 0;
			c->sa[r] = n ? 100.0 * a / n : 0;
			c->sb[r] = n ? 100.0 * b / n : 0;
			c->ta[r] = 100.0 * ta / wcpu;
			c->tb[r] = 100.0 * tb / wcpu;
		}
		fprintf(stderr, "  rep %d done\n", r + 1);
	}
	rmdir(dir);
	double w0 = median(cfgs[0].wall, reps), c0 = median(cfgs[0].cpu, reps);
	printf("| profiler | rate | wall s | wall overhead | CPU s | CPU overhead | samples / expected | "
	       "hot_a %% (truth) | hot_b %% (truth) |\n|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < ncfg; i++) {
		struct cfg *c = &cfgs[i];
		double w = median(c->wall, reps), cp = median(c->cpu, reps);
		if (!c->hz) {
			printf("| %s | - | %.3f | - | %.3f | - | - | (%.2f) | (%.2f) |\n", c->mode, w, cp,
			       median(c->ta, reps), median(c->tb, reps));
			continue;
		}
		printf("| %s | %d Hz | %.3f | %+.2f%% | %.3f | %+.2f%% | %.3f | %.2f (%.2f) | %.2f (%.2f) |\n",
		       c->mode, c->hz, w, 100 * (w - w0) / w0, cp, 100 * (cp - c0) / c0,
		       median(c->exp_ratio, reps), median(c->sa, reps), median(c->ta, reps),
		       median(c->sb, reps), median(c->tb, reps));
	}
	return 0;
}
