/*
 * Flight recorder (issue 13 part 1): gotrace_start_flight keeps a bounded
 * ring of whole generations in memory and writes it out on demand.
 *
 *  - dumps: a worker thread logs "it" messages numbered 0, 1, 2, ... (its
 *    own clock reading before each) for many generations while the main
 *    thread dumps DUMPS times (gotrace_flight_write).  Every dump must pass
 *    every judge; its generations (batch headers parsed here) must be
 *    numbered consecutively, and a generation present in two dumps must be
 *    byte for byte the same size there (whole generations only); the logs
 *    it holds must be exactly the consecutive run a..b, every log emitted
 *    before the call included (b >= the count done before the call) and
 *    none later than the call's return; the earliest event must be at
 *    least MinAge before the call returned (timestamps: CLOCK_MONOTONIC).
 *  - signal: flight_signal SIGUSR2 makes the flusher write flight_path.
 *  - crash: a child with the recorder dies of SIGSEGV; flight_path holds a
 *    valid trace whose logs run consecutively up to the last one emitted.
 *  - memory: heavy logging through a 4 MiB recorder for many times its
 *    size, then a write-out into a slow pipe for many generations: the
 *    process's RSS (sampled every 2 ms) grows by less than MaxBytes plus
 *    the threads' open buffers plus 1 MiB, both dumps are valid and never
 *    larger than MaxBytes.
 *  - bad options, and flight options given to a file session.
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"
#include "tracecheck.h"

static const char *readers[] = { "go1.23", "new" };

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec d = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------ raw batch walk */

static int get_uv(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int s = 0; *p < end && s < 70; s += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

#define MAXG 4096
struct rawgens {
	int n;
	uint64_t gen[MAXG];
	uint64_t bytes[MAXG];
	uint64_t total;
};

/* Walk the file's batches: generation numbers in order of appearance
 * (non-decreasing, consecutive), bytes per generation. */
static void raw_walk(const char *path, struct rawgens *r)
{
	memset(r, 0, sizeof *r);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	r->total = (uint64_t)st.st_size;
	assert_true(st.st_size >= 16);
	assert_memory_equal(buf, "go 1.23 trace\0\0\0", 16);
	const uint8_t *p = buf + 16, *end = buf + st.st_size;
	while (p < end) {
		const uint8_t *b0 = p;
		assert_int_equal(*p++, 1); /* EventBatch */
		uint64_t gen, m, ts, size;
		assert_int_equal(get_uv(&p, end, &gen), 0);
		assert_int_equal(get_uv(&p, end, &m), 0);
		assert_int_equal(get_uv(&p, end, &ts), 0);
		assert_int_equal(get_uv(&p, end, &size), 0);
		assert_true(size <= (uint64_t)(end - p));
		p += size;
		if (r->n == 0 || r->gen[r->n - 1] != gen) {
			if (r->n > 0)
				assert_int_equal(gen, r->gen[r->n - 1] + 1); /* consecutive */
			assert_true(r->n < MAXG);
			r->gen[r->n++] = gen;
		}
		r->bytes[r->n - 1] += (uint64_t)(p - b0);
	}
	free(buf);
}

/* Generations common to a and b have the same size in both. */
static int same_common(const struct rawgens *a, const struct rawgens *b)
{
	int common = 0;
	for (int i = 0; i < a->n; i++)
		for (int j = 0; j < b->n; j++)
			if (a->gen[i] == b->gen[j]) {
				assert_int_equal(a->bytes[i], b->bytes[j]);
				common++;
			}
	return common;
}

/* Logs of category "it": their numbers must be one consecutive run;
 * returns it in *lo..*hi (*lo = -1 if none) and the earliest event time. */
static void cat_run(const char *path, const char *which, const char *cat, int64_t *lo, int64_t *hi,
                    int64_t *tmin, int64_t *t_lo)
{
	struct tsum ts;
	assert_int_equal(tsum_load(path, which, &ts), 0);
	*lo = *hi = -1;
	*tmin = INT64_MAX;
	*t_lo = -1;
	for (size_t i = 0; i < ts.n; i++) {
		const struct tline *l = &ts.lines[i];
		if (strcmp(l->kind, "sync") != 0 && l->t != INT64_MIN && l->t < *tmin)
			*tmin = l->t;
		if (strcmp(l->kind, "log") != 0 || strcmp(tl_get(l, "cat"), cat) != 0)
			continue;
		int64_t k = strtoll(tl_get(l, "msg"), NULL, 10);
		if (*lo < 0) {
			*lo = *hi = k;
			*t_lo = l->t;
		} else {
			if (k != *hi + 1)
				fail_msg("%s (%s): log %lld after %lld: not consecutive", path, which, (long long)k,
				         (long long)*hi);
			*hi = k;
		}
	}
	tsum_free(&ts);
}

static void it_run(const char *path, const char *which, int64_t *lo, int64_t *hi, int64_t *tmin,
                   int64_t *t_lo)
{
	cat_run(path, which, "it", lo, hi, tmin, t_lo);
}

/* ------------------------------------------------------------- dumps */

#define DUMPS 5
#define MIN_AGE_NS 150000000ull
static volatile int stop_worker;
static int64_t done;  /* atomic: "it" logs emitted */
static int64_t done2; /* atomic: "jt" logs emitted (second worker, no sleep) */

static void *worker(void *arg)
{
	(void)arg;
	gotrace_thread_name("worker");
	for (int64_t i = 0; !__atomic_load_n(&stop_worker, __ATOMIC_ACQUIRE); i++) {
		gotrace_region_begin(0, "iter");
		gotrace_logf(0, "it", "%lld", (long long)i);
		gotrace_region_end(0, "iter");
		__atomic_store_n(&done, i + 1, __ATOMIC_RELEASE);
		sleep_ns(50000);
	}
	return NULL;
}

/* A second writer that emits in bursts of 200 back-to-back logs (one per
 * millisecond: ~4 MB/s of trace, well within the ring and the flusher's
 * pace on a loaded 2-CPU machine, so that nothing is dropped). */
static void *worker2(void *arg)
{
	(void)arg;
	for (int64_t i = 0; !__atomic_load_n(&stop_worker, __ATOMIC_ACQUIRE); i++) {
		gotrace_logf(0, "jt", "%lld", (long long)i);
		__atomic_store_n(&done2, i + 1, __ATOMIC_RELEASE);
		if (i % 200 == 199)
			sleep_ns(1000000);
	}
	return NULL;
}

static void start_flight(uint64_t max_bytes, uint64_t period_ns, const char *path, int sig)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.clock = GOTRACE_CLOCK_MONOTONIC; /* trace times are CLOCK_MONOTONIC ns */
	o.advance_period_ns = period_ns;
	o.flight_max_bytes = max_bytes;
	o.flight_min_age_ns = MIN_AGE_NS;
	o.flight_path = path;
	o.flight_signal = sig;
	int rc = gotrace_start_flight(&o);
	if (rc)
		fail_msg("gotrace_start_flight: %d %s", rc, gotrace_last_error());
}

static void test_dumps(void **s)
{
	(void)s;
	stop_worker = 0;
	done = done2 = 0;
	start_flight(8u << 20, 20000000, NULL, 0);
	pthread_t th, th2;
	assert_int_equal(pthread_create(&th, NULL, worker, NULL), 0);
	assert_int_equal(pthread_create(&th2, NULL, worker2, NULL), 0);
	char *path[DUMPS];
	int64_t before[DUMPS], after[DUMPS], before2[DUMPS], after2[DUMPS];
	uint64_t t_ret[DUMPS];
	/* Both writers under way (on a loaded machine they may wait for a
	 * CPU), at most 10 s, then the window fills. */
	for (uint64_t t0 = mono_ns(); (__atomic_load_n(&done, __ATOMIC_ACQUIRE) == 0 ||
	                               __atomic_load_n(&done2, __ATOMIC_ACQUIRE) == 0) &&
	                              mono_ns() - t0 < 10000000000ull;)
		sleep_ns(1000000);
	for (int d = 0; d < DUMPS; d++) {
		sleep_ns(d == 0 ? 2 * MIN_AGE_NS : 90000000);
		char tag[32];
		snprintf(tag, sizeof tag, "flight%d", d);
		path[d] = tmp_trace_path(tag);
		int fd = open(path[d], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		before[d] = __atomic_load_n(&done, __ATOMIC_ACQUIRE);
		before2[d] = __atomic_load_n(&done2, __ATOMIC_ACQUIRE);
		int rc = gotrace_flight_write(fd);
		t_ret[d] = mono_ns();
		after[d] = __atomic_load_n(&done, __ATOMIC_ACQUIRE);
		after2[d] = __atomic_load_n(&done2, __ATOMIC_ACQUIRE);
		if (rc)
			fail_msg("gotrace_flight_write: %d %s", rc, gotrace_last_error());
		close(fd);
	}
	__atomic_store_n(&stop_worker, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	pthread_join(th2, NULL);
	gotrace_stats st;
	gotrace_get_stats(&st);
	assert_int_equal(st.events_dropped, 0); /* the run below counts on it */
	assert_int_equal(gotrace_stop(), 0);

	static struct rawgens rg[DUMPS];
	int64_t prev_lo = -1;
	for (int d = 0; d < DUMPS; d++) {
		assert_int_equal(judge_trace(path[d]), 0);
		raw_walk(path[d], &rg[d]);
		assert_true(rg[d].n >= 2);
		for (int r = 0; r < 2; r++) {
			int64_t lo, hi, tmin, t_lo;
			it_run(path[d], readers[r], &lo, &hi, &tmin, &t_lo);
			printf("  dump %d (%s): gens %llu..%llu (%d), %llu bytes, logs %lld..%lld "
			       "(done %lld..%lld), window %.1f ms before return\n",
			       d, readers[r], (unsigned long long)rg[d].gen[0],
			       (unsigned long long)rg[d].gen[rg[d].n - 1], rg[d].n,
			       (unsigned long long)rg[d].total, (long long)lo, (long long)hi,
			       (long long)before[d], (long long)after[d],
			       (double)((int64_t)t_ret[d] - tmin) / 1e6);
			if (getenv("FLIGHT_KEEP"))
				printf("  %s\n", path[d]);
			assert_true(lo >= 0);
			assert_true(hi >= before[d] - 1); /* everything before the call */
			assert_true(hi <= after[d] - 1);  /* nothing after its return */
			assert_true(lo >= prev_lo);       /* the window moves forward */
			/* MinAge: the earliest event is at least MinAge before
			 * the write-out returned (the session is older). */
			assert_true(tmin + (int64_t)MIN_AGE_NS <= (int64_t)t_ret[d]);
			if (r == 1)
				prev_lo = lo;
			/* The unthrottled writer: the same, per its own count. */
			int64_t lo2, hi2, tmin2, t_lo2;
			cat_run(path[d], readers[r], "jt", &lo2, &hi2, &tmin2, &t_lo2);
			printf("  dump %d (%s): fast writer's logs %lld..%lld (done %lld..%lld)\n", d,
			       readers[r], (long long)lo2, (long long)hi2, (long long)before2[d],
			       (long long)after2[d]);
			assert_true(lo2 >= 0);
			assert_true(hi2 >= before2[d] - 1);
			assert_true(hi2 <= after2[d] - 1);
		}
		if (d > 0)
			printf("  dumps %d and %d: %d generations in common, same sizes\n", d - 1, d,
			       same_common(&rg[d - 1], &rg[d]));
	}
	for (int d = 0; d < DUMPS; d++) {
		if (!getenv("FLIGHT_KEEP"))
			unlink(path[d]);
		free(path[d]);
	}
}

/* ------------------------------------------------------------- signal */

static void test_signal(void **s)
{
	(void)s;
	char *path = tmp_trace_path("flight-sig");
	unlink(path);
	stop_worker = 0;
	done = 0;
	start_flight(4u << 20, 20000000, path, SIGUSR2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, worker, NULL), 0);
	/* Some logs first (the worker may wait for a CPU on a loaded
	 * machine), at most 10 s. */
	for (uint64_t t0 = mono_ns(); __atomic_load_n(&done, __ATOMIC_ACQUIRE) < 200 &&
	                              mono_ns() - t0 < 10000000000ull;)
		sleep_ns(5000000);
	int64_t before = __atomic_load_n(&done, __ATOMIC_ACQUIRE);
	assert_true(before > 0);
	assert_int_equal(kill(getpid(), SIGUSR2), 0);
	struct stat st;
	uint64_t end = mono_ns() + 10000000000ull;
	while (stat(path, &st) != 0 && mono_ns() < end)
		sleep_ns(5000000);
	__atomic_store_n(&stop_worker, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_int_equal(gotrace_stop(), 0);
	assert_int_equal(stat(path, &st), 0);
	/* The disposition is back: SIGUSR2 is the default (terminate) again. */
	struct sigaction cur;
	sigaction(SIGUSR2, NULL, &cur);
	assert_true(cur.sa_handler == SIG_DFL);
	assert_int_equal(judge_trace(path), 0);
	struct rawgens rg;
	raw_walk(path, &rg);
	for (int r = 0; r < 2; r++) {
		int64_t lo, hi, tmin, t_lo;
		it_run(path, readers[r], &lo, &hi, &tmin, &t_lo);
		printf("  signal dump (%s): logs %lld..%lld (done before the signal %lld)\n", readers[r],
		       (long long)lo, (long long)hi, (long long)before);
		assert_true(lo >= 0 && hi >= before - 1);
	}
	unlink(path);
	free(path);
}

/* -------------------------------------------------------------- crash */

static void test_crash(void **s)
{
	(void)s;
	char *path = tmp_trace_path("flight-crash");
	unlink(path);
	int64_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	shared[0] = -1;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		start_flight(4u << 20, 10000000, path, 0);
		uint64_t end = mono_ns() + 400000000ull;
		int64_t i = 0;
		for (; mono_ns() < end; i++) {
			gotrace_logf(0, "it", "%lld", (long long)i);
			__atomic_store_n(&shared[0], i, __ATOMIC_RELEASE);
			sleep_ns(50000);
		}
		/* NULL + 16: a null struct member (UBSan would catch a plain
		 * NULL), as tests/emit/test_crash.c does. */
		shared[2] = *(volatile int *)(uintptr_t)(shared[1] + 16);
		_exit(3);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
	int64_t last = __atomic_load_n(&shared[0], __ATOMIC_ACQUIRE);
	assert_int_equal(judge_trace(path), 0);
	struct rawgens rg;
	raw_walk(path, &rg);
	for (int r = 0; r < 2; r++) {
		int64_t lo, hi, tmin, t_lo;
		it_run(path, readers[r], &lo, &hi, &tmin, &t_lo);
		printf("  crash dump (%s): %d generations, logs %lld..%lld, last emitted %lld\n",
		       readers[r], rg.n, (long long)lo, (long long)hi, (long long)last);
		assert_true(lo >= 0);
		assert_int_equal(hi, last); /* the last events before the crash */
	}
	munmap(shared, 4096);
	unlink(path);
	free(path);
}

/* ------------------------------------------------------------- memory */

#define MEM_THREADS 2
static void *spammer(void *arg)
{
	(void)arg;
	char msg[200];
	memset(msg, 'x', sizeof msg - 1);
	msg[sizeof msg - 1] = 0;
	while (!__atomic_load_n(&stop_worker, __ATOMIC_ACQUIRE))
		for (int k = 0; k < 100; k++)
			gotrace_log(0, "spam", msg);
	return NULL;
}

/* The peak RSS, sampled every 2 ms by its own thread while the test body
 * runs (a write-out blocks the main thread). */
static volatile int stop_sampler;
static long rss_peak;
static void *rss_sampler(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop_sampler, __ATOMIC_ACQUIRE)) {
		long r = proc_rss_kb();
		if (r > __atomic_load_n(&rss_peak, __ATOMIC_RELAXED))
			__atomic_store_n(&rss_peak, r, __ATOMIC_RELAXED);
		sleep_ns(2000000);
	}
	return NULL;
}

/* A slow reader of a write-out: 64 KiB every 20 ms, into a file. */
struct slow_reader {
	int rfd, out;
	uint64_t bytes;
};
static void *slow_read(void *arg)
{
	struct slow_reader *r = arg;
	static char buf[65536];
	ssize_t n;
	while ((n = read(r->rfd, buf, sizeof buf)) > 0) {
		assert_true(write(r->out, buf, (size_t)n) == n);
		r->bytes += (uint64_t)n;
		sleep_ns(20000000);
	}
	return NULL;
}

static void test_memory(void **s)
{
	(void)s;
	const uint64_t max = 4u << 20;
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 50000000;
	o.buffer_size = 16384;
	o.flight_max_bytes = max;
	o.flight_min_age_ns = 60000000000ull; /* MaxBytes must win */
	long base = proc_rss_kb();
	rss_peak = base;
	stop_sampler = 0;
	pthread_t sampler;
	assert_int_equal(pthread_create(&sampler, NULL, rss_sampler, NULL), 0);
	assert_int_equal(gotrace_start_flight(&o), 0);
	stop_worker = 0;
	pthread_t th[MEM_THREADS];
	for (int i = 0; i < MEM_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, spammer, NULL), 0);
	gotrace_stats st0, st1, st2;
	gotrace_get_stats(&st0);
	/* Phase 1: the ring wraps.  At least 1.5 s and 12 generations (slow
	 * sanitizer builds), at most 30 s. */
	uint64_t t0 = mono_ns();
	for (;;) {
		sleep_ns(5000000);
		gotrace_get_stats(&st1);
		uint64_t el = mono_ns() - t0;
		if (el > 30000000000ull || (el > 1500000000ull && st1.generations - st0.generations >= 12))
			break;
	}
	gotrace_get_stats(&st1);
	/* The recorder's own account: the ring's part of MaxBytes, within
	 * which its blocks stay. */
	gotrace_flight_stats fs = { .struct_size = sizeof fs };
	assert_int_equal(gotrace_get_flight_stats(&fs), 0);
	printf("  flight stats: ring cap %llu, held %llu, %llu generations of %llu bytes, %llu lost\n",
	       (unsigned long long)fs.ring_cap, (unsigned long long)fs.held_bytes,
	       (unsigned long long)fs.generations, (unsigned long long)fs.retained_bytes,
	       (unsigned long long)fs.generations_lost);
	assert_true(fs.max_bytes == max);
	assert_true(fs.ring_cap < max && fs.ring_cap >= max / 2);
	assert_true(fs.held_bytes <= fs.ring_cap);
	assert_true(fs.generations >= 1 && fs.retained_bytes <= fs.ring_cap);
	char *path = tmp_trace_path("flight-mem");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(gotrace_flight_write(fd), 0);
	close(fd);
	/* Phase 2: a write-out to a slow pipe, while the spammers go on for
	 * many generations: the generations it holds count against the
	 * bound, so the ring drops sooner instead of growing. */
	char *slow_path = tmp_trace_path("flight-mem-slow");
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct slow_reader sr = { .rfd = p[0], .out = open(slow_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) };
	assert_true(sr.out >= 0);
	pthread_t rd;
	assert_int_equal(pthread_create(&rd, NULL, slow_read, &sr), 0);
	uint64_t t1 = mono_ns();
	assert_int_equal(gotrace_flight_write(p[1]), 0);
	uint64_t slow_ns = mono_ns() - t1;
	close(p[1]);
	pthread_join(rd, NULL);
	close(p[0]);
	close(sr.out);
	gotrace_get_stats(&st2);
	__atomic_store_n(&stop_worker, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < MEM_THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(gotrace_stop(), 0);
	__atomic_store_n(&stop_sampler, 1, __ATOMIC_RELEASE);
	pthread_join(sampler, NULL);
	long peak = rss_peak;
	struct rawgens rg, rs;
	raw_walk(path, &rg);
	raw_walk(slow_path, &rs);
	uint64_t gens = st1.generations - st0.generations;
	uint64_t slow_gens = st2.generations - st1.generations;
	/* Bound (from before the start): MaxBytes is the recorder's memory
	 * as a whole (ring, queue, pool, generations a write-out holds);
	 * outside it each thread's open batches (event and strings, two
	 * generations: 4 buffers) and 1 MiB for the rest (string tables,
	 * the threads' stacks, symbols). */
	long bound_kb = (long)((max + MEM_THREADS * 4 * o.buffer_size) / 1024) + 1024;
	printf("  dropped %llu events\n", (unsigned long long)(st2.events_dropped - st0.events_dropped));
	printf("  RSS %ld kB -> peak %ld kB (+%ld kB, bound +%ld kB) over %llu generations; "
	       "dump %llu bytes in %d generations (MaxBytes %llu)\n",
	       base, peak, peak - base, bound_kb, (unsigned long long)gens,
	       (unsigned long long)rg.total, rg.n, (unsigned long long)max);
	printf("  slow write-out: %llu bytes in %d generations, %.2f s, %llu generations meanwhile\n",
	       (unsigned long long)rs.total, rs.n, (double)slow_ns / 1e9, (unsigned long long)slow_gens);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	/* The sanitizers' shadow memory and metadata (TSan: several times
	 * every byte touched) and ASan's quarantine of freed allocations
	 * (up to 256 MiB, growing with every generation) make RSS say
	 * nothing about the library here; the plain build checks it.  The
	 * dumps' sizes and the recorder's own account still must hold. */
	printf("  (sanitizer build: RSS not checked)\n");
#else
	assert_true(peak - base <= bound_kb);
#endif
	assert_true(rg.total <= max);
	assert_true(rg.n >= 1);
	/* The ring wrapped many times: more data went through than it holds. */
	assert_true(gens * (rg.total / (uint64_t)rg.n) > 3 * max);
	/* The slow write-out is whole, and the ring turned over meanwhile:
	 * at least as many generations as the dump holds were made. */
	assert_int_equal(sr.bytes, rs.total);
	assert_true(rs.n >= 1 && rs.total <= max);
	assert_true(slow_gens >= (uint64_t)rs.n);
	assert_int_equal(judge_trace(path), 0);
	assert_int_equal(judge_trace(slow_path), 0);
	unlink(path);
	unlink(slow_path);
	free(path);
	free(slow_path);
}

/* --------------------------------------------------------- bad options */

static void test_bad_options(void **s)
{
	(void)s;
	gotrace_options o;
	gotrace_options_init(&o);
	o.flight_max_bytes = 1000;
	assert_int_equal(gotrace_start_flight(&o), -GOTRACE_EINVAL);
	assert_non_null(strstr(gotrace_last_error(), "flight_max_bytes"));
	gotrace_options_init(&o);
	o.flight_signal = SIGKILL;
	assert_int_equal(gotrace_start_flight(&o), -GOTRACE_EINVAL);
	assert_int_equal(gotrace_flight_write(1), -GOTRACE_ENOTON);
	gotrace_flight_stats fs = { .struct_size = sizeof fs };
	assert_int_equal(gotrace_get_flight_stats(&fs), -GOTRACE_ENOTON);
	/* A file session is not a recorder. */
	char *path = tmp_trace_path("flight-file");
	assert_int_equal(gotrace_start_path(path, NULL), 0);
	assert_int_equal(gotrace_flight_write(1), -GOTRACE_ENOTON);
	assert_int_equal(gotrace_get_flight_stats(&fs), -GOTRACE_ENOTON);
	assert_int_equal(gotrace_stop(), 0);
	/* ... and refuses the recorder's options rather than ignore them. */
	gotrace_options_init(&o);
	o.flight_signal = SIGUSR2;
	assert_int_equal(gotrace_start_path(path, &o), -GOTRACE_EINVAL);
	assert_non_null(strstr(gotrace_last_error(), "gotrace_start_flight"));
	gotrace_options_init(&o);
	o.flight_max_bytes = 8u << 20;
	assert_int_equal(gotrace_start_fd(1, &o), -GOTRACE_EINVAL);
	unlink(path);
	free(path);
	/* Defaults: a recorder starts with NULL options. */
	assert_int_equal(gotrace_start_flight(NULL), 0);
	fs.struct_size = 0;
	assert_int_equal(gotrace_get_flight_stats(&fs), -GOTRACE_EINVAL);
	assert_int_equal(gotrace_get_flight_stats(NULL), -GOTRACE_EINVAL);
	fs.struct_size = sizeof fs;
	assert_int_equal(gotrace_get_flight_stats(&fs), 0);
	assert_true(fs.max_bytes == 16u << 20 && fs.ring_cap < fs.max_bytes);
	assert_int_equal(gotrace_flight_write(-1), -GOTRACE_EINVAL);
	assert_int_equal(gotrace_stop(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* The crash test forks: first, while the process has one
		 * thread (ThreadSanitizer refuses threads in the child of a
		 * multi-threaded fork). */
		cmocka_unit_test(test_crash),  cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_dumps),  cmocka_unit_test(test_signal),
		cmocka_unit_test(test_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
