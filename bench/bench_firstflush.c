/*
 * bench_firstflush: with CPU sampling on (1 kHz), how long the first
 * gotrace_flush takes, and how regular the advances are afterwards, in a
 * program linked with 20 shared libraries whose functions the samples hit
 * (issue 10).  Each repetition is a fresh process (the symbol cache lives
 * as long as the process), for the setitimer and the perf source:
 *   - first flush: start (advance period 1 s, so the flush is the first
 *     advance), 200 ms of CPU spread over the 20 libraries and libc, then
 *     the latency of gotrace_flush();
 *   - advance lateness: a fresh process with a 10 ms period from the
 *     start and 1 s of the same work; the generation count is read after
 *     every slice of work (about 1 ms), and each interval between two
 *     increments, per generation, minus 10 ms is one figure.
 * Prints p50 and p99 of each over the repetitions (all gaps pooled).
 *   bench_firstflush [REPS]     (default 15)
 */
#define _GNU_SOURCE 1
#include <gotrace.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DECL(i) uint64_t ff_burn_##i(uint64_t n);
DECL(0) DECL(1) DECL(2) DECL(3) DECL(4) DECL(5) DECL(6) DECL(7) DECL(8) DECL(9)
DECL(10) DECL(11) DECL(12) DECL(13) DECL(14) DECL(15) DECL(16) DECL(17) DECL(18) DECL(19)
static uint64_t (*const burns[20])(uint64_t) = {
	ff_burn_0, ff_burn_1, ff_burn_2, ff_burn_3, ff_burn_4, ff_burn_5, ff_burn_6,
	ff_burn_7, ff_burn_8, ff_burn_9, ff_burn_10, ff_burn_11, ff_burn_12, ff_burn_13,
	ff_burn_14, ff_burn_15, ff_burn_16, ff_burn_17, ff_burn_18, ff_burn_19,
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static volatile uint64_t sink;

static void work_slice(void)
{
	static int arr[2000];
	for (int i = 0; i < 20; i++)
		sink += burns[i](20000);
	for (int i = 0; i < 2000; i++)
		arr[i] = (int)(sink * 2654435761u + (unsigned)i);
	qsort(arr, 2000, sizeof arr[0], cmp_int);
}

static int start(int source, uint64_t period)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.cpu_hz = 1000;
	o.cpu_source = source;
	o.advance_period_ns = period;
	return gotrace_start_path("/dev/null", &o);
}

/* Child: one measurement, written to fd as text. */
static int child(int mode, int source, int fd)
{
	char out[65536];
	size_t len = 0;
	if (mode == 0) {
		if (start(source, 1000000000ull))
			return 1;
		gotrace_log(0, "bench", "go");
		double t0 = mono();
		while (mono() - t0 < 0.2)
			work_slice();
		double a = mono();
		gotrace_flush();
		double b = mono();
		len = (size_t)snprintf(out, sizeof out, "%.6f\n", (b - a) * 1e3);
	} else {
		if (start(source, 10000000ull))
			return 1;
		gotrace_log(0, "bench", "go");
		gotrace_stats st;
		uint64_t last = 0;
		double t_last = mono(), t0 = t_last;
		while (mono() - t0 < 1.0) {
			work_slice();
			gotrace_get_stats(&st);
			if (st.generations != last) {
				double t = mono();
				if (last != 0 && len < sizeof out - 32)
					len += (size_t)snprintf(out + len, sizeof out - len, "%.6f\n",
					                        (t - t_last) * 1e3 / (double)(st.generations - last) - 10.0);
				last = st.generations;
				t_last = t;
			}
		}
	}
	gotrace_stop();
	return write(fd, out, len) == (ssize_t)len ? 0 : 1;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof *v, cmp_d);
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return n ? v[i] : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--child")) {
		int mode = atoi(argv[2]), source = atoi(argv[3]);
		return child(mode, source, 1);
	}
	int reps = argc > 1 ? atoi(argv[1]) : 15;
	const int sources[2] = { GOTRACE_CPU_SETITIMER, GOTRACE_CPU_PERF };
	const char *names[2] = { "setitimer", "perf" };
	for (int si = 0; si < 2; si++) {
		for (int mode = 0; mode < 2; mode++) {
			static double v[200000];
			size_t n = 0;
			for (int r = 0; r < reps; r++) {
				int p[2];
				if (pipe(p))
					return 1;
				pid_t pid = fork();
				if (pid == 0) {
					dup2(p[1], 1);
					char m[8], s[8];
					snprintf(m, sizeof m, "%d", mode);
					snprintf(s, sizeof s, "%d", sources[si]);
					execl("/proc/self/exe", argv[0], "--child", m, s, (char *)NULL);
					_exit(127);
				}
				close(p[1]);
				FILE *f = fdopen(p[0], "r");
				double x;
				while (f && fscanf(f, "%lf", &x) == 1 && n < sizeof v / sizeof v[0])
					v[n++] = x;
				if (f)
					fclose(f);
				waitpid(pid, NULL, 0);
			}
			if (mode == 0)
				printf("%-9s first flush     (%2d runs): p50 %7.2f ms  p99 %7.2f ms\n", names[si],
				       reps, pct(v, n, 0.5), pct(v, n, 0.99));
			else
				printf("%-9s advance lateness (%zu gaps of 10 ms): p50 %6.2f ms  p99 %6.2f ms\n",
				       names[si], n, pct(v, n, 0.5), pct(v, n, 0.99));
			fflush(stdout);
		}
	}
	return 0;
}
