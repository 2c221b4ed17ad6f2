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

#include "procstat.h"

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

/* In a child: one row of the RSS table.  max 0: a file session (into dir,
 * max_buffered at its 1 MiB minimum), the baseline of what tracing costs
 * besides the recorder. */
static long file_growth_kb = -1; /* the file session's row, for the next rows */
static int growth_fd = -1;       /* the child's end of a pipe: its growth */
static void rss_child(uint64_t max)
{
	long base = proc_rss_kb();
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 100000000;
	char path[512];
	snprintf(path, sizeof path, "%s/bench_flight_rss_%d.trace", dir, (int)getpid());
	if (max) {
		o.flight_max_bytes = max;
		o.flight_min_age_ns = 3600000000000ull;
		if (gotrace_start_flight(&o) != 0)
			_exit(1);
	} else {
		o.max_buffered = 1u << 20;
		if (gotrace_start_path(path, &o) != 0)
			_exit(1);
	}
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, spam, NULL);
	long peak = base;
	gotrace_stats st;
	uint64_t t0 = clk(CLOCK_MONOTONIC);
	/* At least 2 s and 40 generations, at most 20 s. */
	for (;;) {
		long r = proc_rss_kb();
		if (r > peak)
			peak = r;
		struct timespec d = { 0, 5000000 };
		nanosleep(&d, NULL);
		uint64_t el = clk(CLOCK_MONOTONIC) - t0;
		gotrace_get_stats(&st);
		if (el > 20000000000ull || (el > 2000000000ull && st.generations > 40))
			break;
	}
	gotrace_flight_stats fs = { .struct_size = sizeof fs };
	if (max) {
		gotrace_get_flight_stats(&fs);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		gotrace_flight_write(fd);
		close(fd);
	}
	stop_spam = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	gotrace_get_stats(&st);
	gotrace_stop();
	struct stat sb;
	stat(path, &sb);
	unlink(path);
	char minus[32] = "";
	if (max && file_growth_kb >= 0)
		snprintf(minus, sizeof minus, "%.2f", (double)(peak - base - file_growth_kb) / (double)(max >> 10));
	if (max)
		printf("%8llu MiB  %10ld kB  %10.1f MiB  %12s  %8.1f MiB  %8lld  %6llu  %4llu\n",
		       (unsigned long long)(max >> 20), peak - base, (double)(peak - base) / 1024.0, minus,
		       (double)fs.ring_cap / 1048576.0, (long long)sb.st_size,
		       (unsigned long long)st.generations, (unsigned long long)fs.generations_lost);
	else
		printf("%12s  %10ld kB  %10.1f MiB  %12s  %12s  %8s  %6llu  %4s\n", "file", peak - base,
		       (double)(peak - base) / 1024.0, "", "", "", (unsigned long long)st.generations, "");
	long g = peak - base;
	if (write(growth_fd, &g, sizeof g) != sizeof g)
		_exit(1);
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
	       "MinAge 1 h; RSS growth from before start, peak; \"- file\": minus the file "
	       "session's growth, over MaxBytes):\n");
	printf("%12s  %13s  %14s  %12s  %12s  %8s  %6s  %4s\n", "MaxBytes", "RSS growth", "", "- file",
	       "ring cap", "dump B", "gens", "lost");
	static const uint64_t mib[] = { 0, 2, 4, 8, 16, 32, 64 };
	for (size_t i = 0; i < sizeof mib / sizeof mib[0]; i++) {
		fflush(stdout);
		int p[2];
		if (pipe(p) != 0)
			return 1;
		pid_t pid = fork();
		if (pid == 0) {
			close(p[0]);
			growth_fd = p[1];
			rss_child(mib[i] << 20);
		}
		close(p[1]);
		long g = -1;
		if (read(p[0], &g, sizeof g) == sizeof g && mib[i] == 0)
			file_growth_kb = g;
		int st;
		waitpid(pid, &st, 0);
		close(p[0]);
	}
	return 0;
}
