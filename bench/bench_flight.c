/*
 * bench_flight: the flight recorder (gotrace_start_flight) against a file
 * session, side by side in the same run, and resident memory as a function
 * of flight_max_bytes.  A benchmark, not a test: it prints figures.
 *
 * Part 1, per-event cost.  Every repetition runs both configurations once
 * (order alternated), each a fresh session with a 100 ms advance period (so
 * that generation ends, and the ring's copying and dropping, fall inside
 * the timed loop), T threads each doing N region begin+end pairs (two
 * events per iteration):
 *   file    gotrace_start_path into a file under the trace dir
 *   flight  gotrace_start_flight, flight_max_bytes 16 MiB, MinAge 1 s
 * Per event: wall time and thread CPU time of the emitting threads, and the
 * background CPU (process CPU minus the emitting threads' CPU: the
 * flusher writing the file or copying into the ring).  Medians over the
 * repetitions; the ratio is the median of per-repetition ratios.
 *
 * Part 2, RSS against flight_max_bytes.  For each bound, a forked child
 * (a clean process) reads VmRSS, starts a recorder (MinAge 1 h: MaxBytes
 * decides), emits region pairs from 2 threads until at least 4x the bound
 * went through the ring, sampling VmRSS every 5 ms, then dumps the ring to
 * /dev/null-like temporary file and reports the peak RSS growth and the
 * dump's size.
 *
 * usage: bench_flight [-n iterations] [-r repetitions] [-t threads] [-d dir]
 */
#define _GNU_SOURCE 1
#include <gotrace.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t clk(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long iters = 2000000;
static int reps = 9, nthreads = 1;
static const char *dir = "/tmp";

struct wres {
	uint64_t wall, cpu;
};

static pthread_barrier_t bar;

static void *worker(void *arg)
{
	struct wres *r = arg;
	pthread_barrier_wait(&bar);
	uint64_t w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < iters; i++) {
		gotrace_region_begin(0, "bench");
		gotrace_region_end(0, "bench");
	}
	r->wall = clk(CLOCK_MONOTONIC) - w0;
	r->cpu = clk(CLOCK_THREAD_CPUTIME_ID) - c0;
	return NULL;
}

/* One timed run; ns per event: wall, emitting CPU, background CPU. */
static void run(int flight, double out[3])
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 100000000;
	char path[512];
	snprintf(path, sizeof path, "%s/bench_flight_%d.trace", dir, (int)getpid());
	int rc;
	uint64_t p0 = clk(CLOCK_PROCESS_CPUTIME_ID);
	if (flight) {
		o.flight_max_bytes = 16u << 20;
		o.flight_min_age_ns = 1000000000ull;
		rc = gotrace_start_flight(&o);
	} else {
		rc = gotrace_start_path(path, &o);
	}
	if (rc) {
		fprintf(stderr, "start: %s\n", gotrace_last_error());
		exit(1);
	}
	pthread_t th[16];
	struct wres r[16];
	pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, worker, &r[i]);
	uint64_t wall = 0, cpu = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		wall += r[i].wall;
		cpu += r[i].cpu;
	}
	gotrace_stop();
	uint64_t proc = clk(CLOCK_PROCESS_CPUTIME_ID) - p0;
	pthread_barrier_destroy(&bar);
	unlink(path);
	double ev = 2.0 * (double)iters * nthreads;
	out[0] = (double)wall / ev;
	out[1] = (double)cpu / ev;
	out[2] = proc > cpu ? (double)(proc - cpu) / ev : 0;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmpd);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static volatile int stop_spam;
static void *spam(void *arg)
{
	(void)arg;
	while (!stop_spam)
		for (int i = 0; i < 1000; i++) {
			gotrace_region_begin(0, "bench");
			gotrace_region_end(0, "bench");
		}
	return NULL;
}

/* In a child: prints "max_mib rss_growth_kb dump_bytes gens". */
static void rss_child(uint64_t max)
{
	long base = rss_kb();
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 100000000;
	o.flight_max_bytes = max;
	o.flight_min_age_ns = 3600000000000ull;
	if (gotrace_start_flight(&o) != 0)
		_exit(1);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, spam, NULL);
	long peak = base;
	gotrace_stats st;
	uint64_t t0 = clk(CLOCK_MONOTONIC);
	/* Until 4x the bound went through (bytes of generations are not in
	 * the stats: estimate from a dump's bytes per generation below), at
	 * least 2 s, at most 20 s. */
	for (;;) {
		long r = rss_kb();
		if (r > peak)
			peak = r;
		struct timespec d = { 0, 5000000 };
		nanosleep(&d, NULL);
		uint64_t el = clk(CLOCK_MONOTONIC) - t0;
		gotrace_get_stats(&st);
		if (el > 20000000000ull || (el > 2000000000ull && st.generations > 40))
			break;
	}
	char path[512];
	snprintf(path, sizeof path, "%s/bench_flight_rss_%d.trace", dir, (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	gotrace_flight_write(fd);
	close(fd);
	stop_spam = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	gotrace_get_stats(&st);
	gotrace_stop();
	struct stat sb;
	stat(path, &sb);
	unlink(path);
	printf("%8llu MiB  %10ld kB  %10.1f MiB  %8lld  %6llu\n", (unsigned long long)(max >> 20),
	       peak - base, (double)(peak - base) / 1024.0, (long long)sb.st_size,
	       (unsigned long long)st.generations);
	fflush(stdout);
	_exit(0);
}

int main(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "n:r:t:d:")) != -1) {
		if (c == 'n')
			iters = atol(optarg);
		else if (c == 'r')
			reps = atoi(optarg);
		else if (c == 't')
			nthreads = atoi(optarg) > 16 ? 16 : atoi(optarg);
		else if (c == 'd')
			dir = optarg;
	}
	printf("bench_flight: %ld region pairs x %d thread(s), %d repetitions, 100 ms generations\n",
	       iters, nthreads, reps);
	double v[2][3][64], ratio[3][64];
	if (reps > 64)
		reps = 64;
	for (int r = 0; r < reps; r++) {
		double a[2][3];
		for (int k = 0; k < 2; k++) {
			int which = (r + k) % 2; /* alternate the order */
			run(which, a[which]);
		}
		for (int w = 0; w < 2; w++)
			for (int m = 0; m < 3; m++)
				v[w][m][r] = a[w][m];
		for (int m = 0; m < 3; m++)
			ratio[m][r] = a[0][m] > 0 ? a[1][m] / a[0][m] : 0;
	}
	static const char *mname[] = { "wall ns/event", "emitting CPU ns/event", "background CPU ns/event" };
	printf("%-26s %10s %10s %14s\n", "median of reps", "file", "flight", "flight/file");
	for (int m = 0; m < 3; m++)
		printf("%-26s %10.2f %10.2f %13.2fx\n", mname[m], median(v[0][m], reps), median(v[1][m], reps),
		       median(ratio[m], reps));

	printf("\nRSS against flight_max_bytes (2 threads of region pairs, 100 ms generations, "
	       "MinAge 1 h; RSS growth from before start, peak):\n");
	printf("%12s  %13s  %14s  %8s  %6s\n", "MaxBytes", "RSS growth", "", "dump B", "gens");
	static const uint64_t mib[] = { 2, 4, 8, 16, 32, 64 };
	for (size_t i = 0; i < sizeof mib / sizeof mib[0]; i++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			rss_child(mib[i] << 20);
		int st;
		waitpid(pid, &st, 0);
	}
	return 0;
}
