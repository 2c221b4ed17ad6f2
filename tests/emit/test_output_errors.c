/*
 * Output errors: a trace output that fails or stalls stops tracing cleanly;
 * the program keeps running, no call blocks, memory stays bounded.
 *
 *  (a) /dev/full (ENOSPC).  Since the header is written by start itself,
 *      tracing straight into /dev/full fails the start (-GOTRACE_EIO, the
 *      error text names ENOSPC, no descriptor leaked).  The disk filling up
 *      during a session (the trace fd is dup2'ed onto /dev/full while two
 *      threads emit with 1 ms advances): tracing switches itself off, no
 *      call blocks, gotrace_stop returns -GOTRACE_EIO promptly and
 *      gotrace_last_error() names the error; the file holds the complete
 *      generations written before (valid for every judge); a later session
 *      works.
 *  (b) a pipe whose reader went away (closed before the start, or closed in
 *      the middle of the trace), with SIGPIPE at its default disposition
 *      (the process must not die) and with SIGPIPE ignored: the start fails
 *      with -GOTRACE_EIO or the session ends with -GOTRACE_EIO.  When the
 *      reader went away mid-trace, what it read holds complete generations,
 *      valid for every judge.
 *  (c) a pipe nobody reads: threads keep emitting for ~1 s with
 *      max_buffered = 1 MiB: no call takes long, events are dropped and
 *      counted (per thread and in total), buffered data stays within the
 *      bound; once a reader drains the pipe, stop returns 0, the trace is
 *      valid and reports each thread's drops as "gotrace" log messages
 *      "dropped N events: ..." whose N add up to exactly the thread's count.
 *      VmRSS is printed before, during and after.
 *  (d) stop with a reader that never reads and stop_timeout_ns = 300 ms:
 *      -GOTRACE_ESTALLED within a second.  Starting again into that still
 *      full pipe returns within a second too.
 *  (e) a regular file that hits RLIMIT_FSIZE (EFBIG): -GOTRACE_EIO, the file
 *      holds complete generations up to the error, and a gotrace_start_path
 *      on the same path while the failed session is not yet stopped
 *      returns -GOTRACE_EBUSY without touching the file.
 *  (f) after a session that failed with EIO, a failed start reports its own
 *      error text.
 * Every test runs in a child process of its own (main forks one per test),
 * so that a hang or a death inside the library fails that test only; the
 * parent prints a summary.  A gotrace_stop that does not return within
 * 1.5 s ends its test as "HUNG in gotrace_stop".
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
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"
#include "tracecheck.h"

static const char *readers[] = { "go1.23", "new" };

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
	struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&d, &d) != 0)
		;
}

static size_t count_kv(const struct tsum *s, const char *kind, const char *key, const char *val)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct tline *l = &s->lines[i];
		if (strcmp(l->kind, kind) != 0)
			continue;
		if (!key || (tl_get(l, key) && !strcmp(tl_get(l, key), val)))
			n++;
	}
	return n;
}

static void *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t cap = 1 << 16, n = 0, r;
	char *buf = malloc(cap);
	while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	*len = n;
	return buf;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int get_uvarint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int i = 0, shift = 0; i < 10 && p + i < end; i++, shift += 7) {
		*v |= (uint64_t)(p[i] & 0x7f) << shift;
		if (!(p[i] & 0x80))
			return i + 1;
	}
	return 0;
}

/* A trace cut short by an output error (data: what reached the output)
 * holds complete generations followed by part of one.  Writes the complete
 * ones to `out` (batches of a generation are all written before any of the
 * next: the cut is at the first batch of the last generation present) and
 * returns how many there are; -1 if the data is not a batch sequence. */
static int complete_prefix(const uint8_t *data, size_t len, const char *out)
{
	if (len < 16 || memcmp(data, "go 1.23 trace\0\0\0", 16) != 0)
		return len == 0 ? 0 : -1;
	size_t off = 16, cut = 16;
	uint64_t cur = 0;
	int gens = 0;
	const uint8_t *end = data + len;
	while (off < len) {
		const uint8_t *p = data + off;
		if (*p != 1)
			return -1; /* EvEventBatch */
		p++;
		uint64_t gen, m, ts, size;
		int n;
		if (!(n = get_uvarint(p, end, &gen)))
			break;
		p += n;
		if (!(n = get_uvarint(p, end, &m)))
			break;
		p += n;
		if (!(n = get_uvarint(p, end, &ts)))
			break;
		p += n;
		if (!(n = get_uvarint(p, end, &size)))
			break;
		p += n;
		if (gen < cur)
			return -1;
		if (gen > cur) {
			if (cur != 0)
				gens++;
			cur = gen;
			cut = off; /* everything before this batch is complete */
		}
		if ((size_t)(end - p) < size)
			break;
		off = (size_t)(p - data) + size;
	}
	write_file(out, data, cut);
	return gens;
}

static void check_sigpipe(void (*want)(int))
{
	struct sigaction sa;
	assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
	assert_true(sa.sa_handler == want);
}

/* Every test runs in a child process of its own (see main): a library hang
 * costs one test, not the whole program.  gotrace_stop is documented never
 * to block for long (stop_timeout_ns bounds a stalled output); a stop that
 * has not returned after STOP_GUARD_MS ends the child with status
 * HUNG_IN_STOP. */
#define STOP_GUARD_MS 1500
#define HUNG_IN_STOP 77

static volatile int stop_done;
static int stop_rc_g;

static void *stopper_main(void *arg)
{
	(void)arg;
	stop_rc_g = gotrace_stop();
	__atomic_store_n(&stop_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int guarded_stop(void)
{
	pthread_t th;
	__atomic_store_n(&stop_done, 0, __ATOMIC_RELEASE);
	if (pthread_create(&th, NULL, stopper_main, NULL) != 0)
		return gotrace_stop();
	uint64_t t0 = now_ns();
	while (!__atomic_load_n(&stop_done, __ATOMIC_ACQUIRE)) {
		if (now_ns() - t0 > STOP_GUARD_MS * 1000000ull) {
			fprintf(stderr, "HUNG: gotrace_stop() has not returned after %d ms "
			                "(last error: \"%s\")\n", STOP_GUARD_MS, gotrace_last_error());
			fflush(NULL);
			_exit(HUNG_IN_STOP);
		}
		sleep_ms(1);
	}
	pthread_join(th, NULL);
	return stop_rc_g;
}

/* ------------------------------------------------------------- emitters */

struct emitter {
	pthread_t th;
	int idx;
	uint64_t run_ns;        /* emit rounds for this long */
	volatile int final_go;  /* (c): emit the final log when set, then leave */
	volatile int waiting;   /* (c): rounds done, waiting for final_go */
	int wait_final;
	/* results */
	uint64_t rounds, zero_tasks, max_lat_ns, dropped;
	uint64_t max_lat_round;   /* the round of the slowest call */
	uint64_t first_lat_ns;    /* the first call (registers the thread) */
	uint64_t slow_calls;      /* calls slower than 10 ms */
	uint64_t max_wall_ns;     /* raw wall time of the slowest call */
	uint64_t throttle_ns;     /* pause after each round (0: none) */
	int off_seen;           /* gotrace_enabled() went to 0 while emitting */
};

/* The latency of one call.  The CI box has 2 CPUs shared with other jobs,
 * so the wall time of a call includes time the thread sat preempted; what
 * the library is responsible for is time it blocked (a voluntary context
 * switch during the call: all of its wall time counts) or spun (its CPU
 * time).  max_lat_ns is that; max_wall_ns is the raw wall time, printed. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long vol_switches(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nvcsw;
}

static void lat_record(struct emitter *e, uint64_t wall, uint64_t cpu, long vcsw)
{
	uint64_t lat = vcsw > 0 ? wall : cpu;
	if (!e->first_lat_ns)
		e->first_lat_ns = lat + 1;
	if (lat > 10000000u)
		e->slow_calls++;
	if (lat > e->max_lat_ns) {
		e->max_lat_ns = lat;
		e->max_lat_round = e->rounds;
	}
	if (wall > e->max_wall_ns)
		e->max_wall_ns = wall;
}

#define TIMED(e, call)                                                              \
	do {                                                                        \
		long v_ = vol_switches();                                           \
		uint64_t c_ = thread_cpu_ns(), a_ = now_ns();                       \
		call;                                                               \
		uint64_t w_ = now_ns() - a_;                                        \
		lat_record(e, w_, thread_cpu_ns() - c_, vol_switches() - v_);       \
	} while (0)

/* Set while a test waits for tracing to switch itself off: the emitters
 * then run past run_ns until they see it off (at most 10 s more), so a slow
 * (sanitized, loaded) start or flusher cannot end the run too early. */
static int emit_until_off;
/* Set by the first emitter that finished 20 rounds: a reader that is to
 * leave in the middle of the trace counts its time from there, so that
 * what it read holds emitted events however slowly (sanitized, loaded)
 * the threads started.  Reset by run_emitters. */
static int emitters_warm;

static void *emitter_main(void *arg)
{
	struct emitter *e = arg;
	char msg[96];
	uint64_t end = now_ns() + e->run_ns;
	int until_off = __atomic_load_n(&emit_until_off, __ATOMIC_RELAXED);
	/* (c) wants every thread to have dropped events: with a stalled
	 * reader each one runs until it has (at most 20 s more), so that a
	 * slow (sanitized, loaded) machine cannot end the rounds before the
	 * bound was reached. */
	while (now_ns() < end || (until_off && !e->off_seen && now_ns() < end + 10000000000ull) ||
	       (e->wait_final && gotrace_thread_dropped() == 0 && now_ns() < end + 20000000000ull)) {
		uint64_t t;
		snprintf(msg, sizeof msg, "thread %d round %llu: some text to fill the buffers faster",
		         e->idx, (unsigned long long)e->rounds);
		TIMED(e, t = gotrace_task_begin(0, "job"));
		TIMED(e, gotrace_region_begin(t, "work"));
		TIMED(e, gotrace_log(t, "emit", msg));
		TIMED(e, gotrace_region_end(t, "work"));
		TIMED(e, gotrace_task_end(t));
		e->zero_tasks += t == 0;
		if (++e->rounds == 20)
			__atomic_store_n(&emitters_warm, 1, __ATOMIC_RELEASE);
		if (!gotrace_enabled())
			e->off_seen = 1;
		if (e->throttle_ns) {
			struct timespec d = { 0, (long)e->throttle_ns };
			nanosleep(&d, NULL);
		}
	}
	if (e->wait_final) {
		__atomic_store_n(&e->waiting, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&e->final_go, __ATOMIC_ACQUIRE))
			sleep_ms(1);
		snprintf(msg, sizeof msg, "final %d", e->idx);
		TIMED(e, gotrace_log(0, "final", msg));
	}
	e->dropped = gotrace_thread_dropped();
	return NULL;
}

/* Outside the stall test the emitters are throttled (a round, then 20 us
 * of sleep): the traces stay small enough to judge in a moment. */
static void run_emitters(struct emitter *e, int n, uint64_t run_ns, int wait_final)
{
	__atomic_store_n(&emitters_warm, 0, __ATOMIC_RELEASE);
	for (int i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof e[i]);
		e[i].idx = i;
		e[i].run_ns = run_ns;
		e[i].wait_final = wait_final;
		e[i].throttle_ns = wait_final ? 0 : 20000;
		assert_int_equal(pthread_create(&e[i].th, NULL, emitter_main, &e[i]), 0);
	}
}

static void join_emitters(struct emitter *e, int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(e[i].th, NULL);
}

static void print_latency(const char *what, const struct emitter *e, int n)
{
	for (int i = 0; i < n; i++)
		printf("%s: thread %d: %llu rounds, slowest call %.3f ms (round %llu; wall time with "
		       "preemption %.3f ms), first call %.3f ms, %llu calls > 10 ms\n", what, i,
		       (unsigned long long)e[i].rounds, (double)e[i].max_lat_ns / 1e6,
		       (unsigned long long)e[i].max_lat_round, (double)e[i].max_wall_ns / 1e6,
		       (double)e[i].first_lat_ns / 1e6, (unsigned long long)e[i].slow_calls);
}

/* ----------------------------------------------------------- pipe reader */

struct reader {
	pthread_t th;
	int fd;            /* read end */
	FILE *out;         /* what was read */
	uint64_t close_after_ns; /* 0: read to EOF; else close fd after this long */
	uint64_t bytes;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char buf[65536];
	uint64_t end = UINT64_MAX, t0 = now_ns();
	for (;;) {
		/* Leave close_after_ns after the emitters got going
		 * (emitters_warm; at most 20 s after the start), but only once a
		 * few generations arrived (a sanitized build on a loaded machine
		 * may take longer than that to start and flush); give up waiting
		 * 5 s later. */
		uint64_t t = now_ns();
		if (r->close_after_ns && end == UINT64_MAX &&
		    (__atomic_load_n(&emitters_warm, __ATOMIC_ACQUIRE) || t - t0 > 20000000000ull))
			end = t + r->close_after_ns;
		if (t >= end && (r->bytes >= 16384 || t - end >= 5000000000ull)) {
			close(r->fd);
			r->fd = -1;
			break;
		}
		ssize_t n = read(r->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, r->out);
		r->bytes += (uint64_t)n;
	}
	fflush(r->out);
	return NULL;
}

static void reader_start(struct reader *r, int fd, const char *path, uint64_t close_after_ns)
{
	memset(r, 0, sizeof *r);
	__atomic_store_n(&emitters_warm, 0, __ATOMIC_RELEASE); /* emitters start after */
	r->fd = fd;
	r->close_after_ns = close_after_ns;
	r->out = fopen(path, "wb");
	assert_non_null(r->out);
	assert_int_equal(pthread_create(&r->th, NULL, reader_main, r), 0);
}

static void reader_join(struct reader *r)
{
	pthread_join(r->th, NULL);
	fclose(r->out);
	if (r->fd >= 0)
		close(r->fd);
}

/* Judge a trace and check both readers saw some "emit" logs. */
static void judge_nonempty(const char *path)
{
	assert_int_equal(judge_trace(path), 0);
	for (int k = 0; k < 2; k++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[k], &s), 0);
		assert_true(count_kv(&s, "log", "cat", "emit") > 0);
		tsum_free(&s);
	}
}

/* After a failed session: a new one works and is valid. */
static void session_after(const char *tag)
{
	char *path = tmp_trace_path(tag);
	assert_int_equal(gotrace_start_path(path, NULL), 0);
	assert_string_equal(gotrace_last_error(), "");
	gotrace_log(0, "after", tag);
	assert_int_equal(guarded_stop(), 0);
	assert_int_equal(judge_trace(path), 0);
	for (int k = 0; k < 2; k++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[k], &s), 0);
		assert_int_equal(count_kv(&s, "log", "cat", "after"), 1);
		assert_int_equal(tsum_count(&s, "log"), 1);
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

static gotrace_options fast_opts(void)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 1000 * 1000; /* 1 ms */
	return o;
}

/* --------------------------------------------------------- (a) /dev/full */

static int fd_count(void)
{
	int n = 0;
	char path[64];
	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

/* The header is written by start itself (since 27fa7c1): an output that
 * fails at once fails the start, cleanly. */
static void test_dev_full_at_start(void **state)
{
	(void)state;
	int fds = fd_count();
	gotrace_options o = fast_opts();
	int rc = gotrace_start_path("/dev/full", &o);
	printf("(a) gotrace_start_path(/dev/full): %d \"%s\"\n", rc, gotrace_last_error());
	assert_int_equal(rc, -GOTRACE_EIO);
	assert_int_equal(gotrace_enabled(), 0);
	if (!strstr(gotrace_last_error(), strerror(ENOSPC)))
		fail_msg("last error \"%s\" does not mention \"%s\"", gotrace_last_error(), strerror(ENOSPC));
	assert_int_equal(fd_count(), fds); /* the file it opened is closed */
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(gotrace_start_fd(fd, &o), -GOTRACE_EIO);
	assert_true(fcntl(fd, F_GETFD) >= 0); /* the caller's fd: left open */
	close(fd);
	assert_int_equal(guarded_stop(), -GOTRACE_ENOTON);
	struct emitter e[2];
	run_emitters(e, 2, 50 * 1000 * 1000ull, 0);
	join_emitters(e, 2);
	for (int i = 0; i < 2; i++)
		assert_int_equal(e[i].zero_tasks, e[i].rounds);
	session_after("after-devfull-start");
}

/* The disk fills up during the session (ENOSPC): the trace fd is made to
 * point at /dev/full (dup2) while two threads emit with 1 ms advances. */
static void disk_full_session(const char *path, struct emitter *e, uint64_t *stop_ms, int *stop_rc)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(full >= 0);
	gotrace_options o = fast_opts();
	assert_int_equal(gotrace_start_fd(fd, &o), 0);
	run_emitters(e, 2, 400 * 1000 * 1000ull, 0);
	/* Some rounds were emitted and a generation holding them is in the
	 * file before the disk fills (a sleep was not enough on a loaded
	 * machine: TSan at load 12 once filled it before any "emit" log had
	 * been written).  At most 20 s. */
	for (uint64_t t0 = now_ns(); !__atomic_load_n(&emitters_warm, __ATOMIC_ACQUIRE) &&
	                             now_ns() - t0 < 20000000000ull;)
		sleep_ms(1);
	assert_int_equal(gotrace_flush(), 0);
	sleep_ms(20);
	assert_true(gotrace_enabled());
	assert_true(dup3(full, fd, O_CLOEXEC) == fd); /* the disk is full now */
	uint64_t t0 = now_ns();
	while (gotrace_enabled() && now_ns() - t0 < 2000000000ull)
		sleep_ms(1);
	assert_int_equal(gotrace_enabled(), 0); /* switched itself off */
	int rc = gotrace_flush();               /* returns, does not hang */
	assert_true(rc == -GOTRACE_EIO || rc == -GOTRACE_ENOTON);
	join_emitters(e, 2);
	uint64_t t1 = now_ns();
	*stop_rc = guarded_stop();
	*stop_ms = (now_ns() - t1) / 1000000;
	close(fd);
	close(full);
}

static void test_disk_full_mid_session(void **state)
{
	(void)state;
	char *path = tmp_trace_path("diskfull");
	struct emitter e[2];
	uint64_t stop_ms;
	int rc;
	disk_full_session(path, e, &stop_ms, &rc);
	printf("(a) ENOSPC mid-session: stop %d after %llu ms: \"%s\"\n", rc, (unsigned long long)stop_ms,
	       gotrace_last_error());
	print_latency("(a)", e, 2);
	for (int i = 0; i < 2; i++) {
		assert_true(e[i].rounds > 0);
		assert_true(e[i].off_seen);
		assert_true(e[i].max_lat_ns < 50 * 1000000ull);
	}
	assert_int_equal(rc, -GOTRACE_EIO);
	assert_true(stop_ms < 1000);
	const char *err = gotrace_last_error();
	if (!strstr(err, strerror(ENOSPC)))
		fail_msg("last error \"%s\" does not mention \"%s\"", err, strerror(ENOSPC));
	assert_int_equal(guarded_stop(), -GOTRACE_ENOTON);
	assert_int_equal(gotrace_task_begin(0, "off"), 0);
	/* The file holds the generations written before the disk filled. */
	size_t len;
	uint8_t *data = read_file(path, &len);
	char *cut = tmp_trace_path("diskfull-prefix");
	int gens = complete_prefix(data, len, cut);
	printf("(a) the file holds %zu bytes, %d complete generations\n", len, gens);
	assert_true(gens >= 1);
	judge_nonempty(cut);
	unlink(cut);
	free(cut);
	free(data);
	unlink(path);
	free(path);
	session_after("after-diskfull");
}

/* (f) After a failed (EIO) session, a start that fails reports its own
 * error, not the old session's. */
static void test_error_text_after_eio_session(void **state)
{
	(void)state;
	char *path = tmp_trace_path("diskfull2");
	struct emitter e[2];
	uint64_t stop_ms;
	int rc;
	disk_full_session(path, e, &stop_ms, &rc);
	assert_int_equal(rc, -GOTRACE_EIO);
	assert_non_null(strstr(gotrace_last_error(), strerror(ENOSPC)));
	unlink(path);
	free(path);
	const char *bad = "/nonexistent-gotrace-dir/x.trace";
	assert_int_equal(gotrace_start_path(bad, NULL), -GOTRACE_ESYS);
	const char *err = gotrace_last_error();
	if (!strstr(err, bad))
		fail_msg("gotrace_start_path(%s) failed with -GOTRACE_ESYS but gotrace_last_error() "
		         "still says \"%s\" (the previous session's output error)", bad, err);
}

/* ---------------------------------------------------- (b) broken pipes */

/* A reader that went away before the start.  Run in a child process: if
 * SIGPIPE killed the process, the parent can still tell. */
struct pipe_child {
	volatile int step;  /* 1: before start, 2: after start, 3: after stop */
	int start_rc, stop_rc;
	char err[256];
};

static void closed_pipe_before_start(void (*disp)(int), const char *what)
{
	struct pipe_child *pc = mmap(NULL, sizeof *pc, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	                             -1, 0);
	assert_true(pc != MAP_FAILED);
	memset(pc, 0, sizeof *pc);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGPIPE, disp);
		int p[2];
		if (pipe2(p, O_CLOEXEC) != 0)
			_exit(90);
		close(p[0]);
		gotrace_options o = fast_opts();
		pc->step = 1;
		pc->start_rc = gotrace_start_fd(p[1], &o);
		pc->step = 2;
		if (pc->start_rc == 0) {
			struct emitter e[2];
			run_emitters(e, 2, 200 * 1000 * 1000ull, 0);
			join_emitters(e, 2);
		}
		pc->stop_rc = guarded_stop();
		snprintf(pc->err, sizeof pc->err, "%s", gotrace_last_error());
		pc->step = 3;
		_exit(0);
	}
	int st = 0;
	uint64_t t0 = now_ns();
	pid_t r;
	while ((r = waitpid(pid, &st, WNOHANG)) == 0 && now_ns() - t0 < 5000000000ull)
		sleep_ms(2);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("%s: the child hung at step %d", what, pc->step);
	}
	if (pc->step == 3)
		printf("(b) %s: start %d, stop %d, \"%s\"\n", what, pc->start_rc, pc->stop_rc, pc->err);
	if (WIFEXITED(st) && WEXITSTATUS(st) == HUNG_IN_STOP)
		fail_msg("%s: gotrace_stop hung (start returned %d)", what, pc->start_rc);
	if (WIFSIGNALED(st))
		fail_msg("%s: the process was killed by signal %d (%s) at step %d (%s)", what, WTERMSIG(st),
		         strsignal(WTERMSIG(st)), pc->step,
		         pc->step == 1 ? "inside gotrace_start_fd" : "after gotrace_start_fd");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Either the start fails, or the session ends with EIO. */
	if (pc->start_rc == 0)
		assert_int_equal(pc->stop_rc, -GOTRACE_EIO);
	else {
		assert_int_equal(pc->start_rc, -GOTRACE_EIO);
		assert_int_equal(pc->stop_rc, -GOTRACE_ENOTON);
	}
	if (!strstr(pc->err, strerror(EPIPE)))
		fail_msg("%s: last error \"%s\" does not mention \"%s\"", what, pc->err, strerror(EPIPE));
	munmap(pc, sizeof *pc);
}

static void test_pipe_closed_sigpipe_default(void **state)
{
	(void)state;
	closed_pipe_before_start(SIG_DFL, "pipe closed before start, SIGPIPE default");
}

static void test_pipe_closed_sigpipe_ignored(void **state)
{
	(void)state;
	closed_pipe_before_start(SIG_IGN, "pipe closed before start, SIGPIPE ignored");
}

/* The reader reads for a while, then goes away in the middle of the trace. */
static void reader_leaves(void (*disp)(int), const char *tag)
{
	struct sigaction old, sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = disp;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGPIPE, &sa, &old), 0);

	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	char *path = tmp_trace_path(tag);
	struct reader r;
	reader_start(&r, p[0], path, 150 * 1000 * 1000ull);
	gotrace_options o = fast_opts();
	assert_int_equal(gotrace_start_fd(p[1], &o), 0);
	struct emitter e[2];
	__atomic_store_n(&emit_until_off, 1, __ATOMIC_RELAXED);
	run_emitters(e, 2, 400 * 1000 * 1000ull, 0);
	join_emitters(e, 2);
	__atomic_store_n(&emit_until_off, 0, __ATOMIC_RELAXED);
	print_latency("(b)", e, 2);
	for (int i = 0; i < 2; i++)
		assert_true(e[i].max_lat_ns < 50 * 1000000ull);
	/* The reader is gone: tracing switched itself off meanwhile. */
	assert_int_equal(gotrace_enabled(), 0);
	assert_true(e[0].off_seen && e[1].off_seen);
	reader_join(&r);
	uint64_t t1 = now_ns();
	int rc = guarded_stop();
	uint64_t stop_ms = (now_ns() - t1) / 1000000;
	printf("(b) %s: stop %d after %llu ms: \"%s\"\n", tag, rc, (unsigned long long)stop_ms,
	       gotrace_last_error());
	assert_int_equal(rc, -GOTRACE_EIO);
	assert_true(stop_ms < 1000);
	if (!strstr(gotrace_last_error(), strerror(EPIPE)))
		fail_msg("last error \"%s\" does not mention \"%s\"", gotrace_last_error(), strerror(EPIPE));
	close(p[1]);
	/* Still alive, and the program's SIGPIPE disposition is untouched. */
	check_sigpipe(disp);
	assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);

	/* What the reader got before it went away: complete generations,
	 * then part of one. */
	size_t len;
	uint8_t *data = read_file(path, &len);
	assert_true(len > 0);
	assert_int_equal((uint64_t)len, r.bytes);
	char *cut = tmp_trace_path("pipe-prefix");
	int gens = complete_prefix(data, len, cut);
	printf("(b) %s: the reader got %zu bytes, %d complete generations\n", tag, len, gens);
	assert_true(gens >= 1);
	judge_nonempty(cut);
	unlink(cut);
	free(cut);
	free(data);
	unlink(path);
	free(path);
	session_after("after-pipe");
}

static void test_pipe_reader_leaves_sigpipe_default(void **state)
{
	(void)state;
	reader_leaves(SIG_DFL, "pipe-leaves-dfl");
}

static void test_pipe_reader_leaves_sigpipe_ignored(void **state)
{
	(void)state;
	reader_leaves(SIG_IGN, "pipe-leaves-ign");
}

/* ---------------------------------------------------- (c) stalled reader */

#define NSTALL 2 /* + the flusher: the 2 CPUs of the CI box, no preemption noise */

/* Sum of N over "dropped N events..." notes of goroutine g. */
static uint64_t noted_drops(const struct tsum *s, int64_t g, size_t *notes)
{
	uint64_t sum = 0;
	*notes = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct tline *l = &s->lines[i];
		if (strcmp(l->kind, "log") || l->g != g || strcmp(tl_get(l, "cat"), "gotrace"))
			continue;
		const char *m = tl_get(l, "msg");
		assert_int_equal(strncmp(m, "dropped ", 8), 0);
		sum += strtoull(m + 8, NULL, 10);
		(*notes)++;
	}
	return sum;
}

static size_t count_g(const struct tsum *s, const char *kind, int64_t g)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += !strcmp(s->lines[i].kind, kind) && s->lines[i].g == g;
	return n;
}

static size_t count_g_cat(const struct tsum *s, int64_t g, const char *cat)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct tline *l = &s->lines[i];
		n += !strcmp(l->kind, "log") && l->g == g && !strcmp(tl_get(l, "cat"), cat);
	}
	return n;
}

static void test_stalled_reader_drops(void **state)
{
	(void)state;
	long rss0 = proc_rss_kb();
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 10 * 1000 * 1000;
	o.max_buffered = 1u << 20; /* the minimum */
	assert_int_equal(gotrace_start_fd(p[1], &o), 0);

	struct emitter e[NSTALL];
	run_emitters(e, NSTALL, 1000 * 1000 * 1000ull, 1);
	/* Wait for the rounds to end (each thread then waits for final_go). */
	for (int i = 0; i < NSTALL; i++)
		while (!__atomic_load_n(&e[i].waiting, __ATOMIC_ACQUIRE))
			sleep_ms(5);
	long rss1 = proc_rss_kb();
	gotrace_stats st;
	gotrace_get_stats(&st);
	printf("(c) stalled 1 s: %llu events dropped, buffered peak %llu bytes (bound %zu), %llu bytes "
	       "written\n", (unsigned long long)st.events_dropped, (unsigned long long)st.buffered_peak,
	       o.max_buffered, (unsigned long long)st.bytes_written);
	assert_true(st.events_dropped > 0);
	assert_true(st.buffered_peak <= o.max_buffered);
	assert_true(gotrace_enabled());

	/* Now drain, and let every thread emit once more: that writes the
	 * last notes of its drops. */
	char *path = tmp_trace_path("stalled");
	struct reader r;
	reader_start(&r, p[0], path, 0);
	assert_int_equal(gotrace_flush(), 0); /* everything queued is out */
	for (int i = 0; i < NSTALL; i++)
		__atomic_store_n(&e[i].final_go, 1, __ATOMIC_RELEASE);
	join_emitters(e, NSTALL);
	assert_int_equal(guarded_stop(), 0);
	close(p[1]);
	reader_join(&r);
	long rss2 = proc_rss_kb();
	gotrace_get_stats(&st);
	printf("(c) VmRSS: %ld kB before start, %ld kB after 1 s stalled, %ld kB after stop\n", rss0, rss1,
	       rss2);
	uint64_t sum_dropped = 0, max_lat = 0;
	for (int i = 0; i < NSTALL; i++) {
		printf("(c) thread %d: %llu rounds, %llu events dropped, %llu task_begin returned 0\n", i,
		       (unsigned long long)e[i].rounds, (unsigned long long)e[i].dropped,
		       (unsigned long long)e[i].zero_tasks);
		assert_true(e[i].dropped > 0);
		sum_dropped += e[i].dropped;
		max_lat = e[i].max_lat_ns > max_lat ? e[i].max_lat_ns : max_lat;
	}
	print_latency("(c)", e, NSTALL);
	assert_true(max_lat < 50 * 1000000ull);
	assert_int_equal(sum_dropped, st.events_dropped);
	assert_true(st.buffered_peak <= o.max_buffered);

	assert_int_equal(judge_trace(path), 0);
	for (int k = 0; k < 2; k++) {
		struct tsum s;
		assert_int_equal(tsum_load(path, readers[k], &s), 0);
		assert_true(count_kv(&s, "log", "cat", "gotrace") > 0);
		for (int i = 0; i < NSTALL; i++) {
			char want[32];
			snprintf(want, sizeof want, "final %d", i);
			assert_int_equal(count_kv(&s, "log", "msg", want), 1);
			int64_t g = -1;
			for (size_t j = 0; j < s.n; j++)
				if (!strcmp(s.lines[j].kind, "log") && !strcmp(tl_get(&s.lines[j], "msg"), want))
					g = s.lines[j].g;
			/* The notes of this goroutine account for exactly its
			 * drops. */
			size_t notes;
			uint64_t noted = noted_drops(&s, g, &notes);
			if (noted != e[i].dropped)
				fail_msg("%s: thread %d dropped %llu events, its notes say %llu (%zu notes)",
				         readers[k], i, (unsigned long long)e[i].dropped,
				         (unsigned long long)noted, notes);
			/* Every call either reached the trace or was counted:
			 * per round task begin, region begin, log and task end
			 * are each written or dropped (a task end is not even
			 * attempted for a task_begin that returned 0); a region
			 * end is written exactly for a written region begin. */
			uint64_t w_tb = count_g(&s, "taskbegin", g), w_te = count_g(&s, "taskend", g);
			uint64_t w_rb = count_g(&s, "regionbegin", g), w_re = count_g(&s, "regionend", g);
			uint64_t w_log = count_g_cat(&s, g, "emit");
			assert_int_equal(w_re, w_rb);
			uint64_t calls = 4 * e[i].rounds - e[i].zero_tasks;
			if (w_tb + w_rb + w_log + w_te + e[i].dropped != calls)
				fail_msg("%s: thread %d: %llu rounds: written tb=%llu rb=%llu log=%llu te=%llu, "
				         "dropped %llu: %llu calls accounted for, expected %llu", readers[k], i,
				         (unsigned long long)e[i].rounds, (unsigned long long)w_tb,
				         (unsigned long long)w_rb, (unsigned long long)w_log,
				         (unsigned long long)w_te, (unsigned long long)e[i].dropped,
				         (unsigned long long)(w_tb + w_rb + w_log + w_te + e[i].dropped),
				         (unsigned long long)calls);
		}
		tsum_free(&s);
	}
	unlink(path);
	free(path);
}

/* ------------------------------------------------------- (d) stalled stop */

static void test_stop_with_stalled_reader(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	gotrace_options o;
	gotrace_options_init(&o);
	o.stop_timeout_ns = 300 * 1000 * 1000ull;
	assert_int_equal(gotrace_start_fd(p[1], &o), 0);
	/* Far more than the pipe holds. */
	char msg[128];
	memset(msg, 'm', sizeof msg - 1);
	msg[sizeof msg - 1] = 0;
	for (int i = 0; i < 20000; i++)
		gotrace_log(0, "emit", msg);
	sleep_ms(50);
	uint64_t t0 = now_ns();
	int rc = guarded_stop();
	uint64_t ms = (now_ns() - t0) / 1000000;
	printf("(d) stop with a stalled reader: %d after %llu ms: \"%s\"\n", rc, (unsigned long long)ms,
	       gotrace_last_error());
	assert_int_equal(rc, -GOTRACE_ESTALLED);
	assert_true(ms >= 250 && ms < 1000);
	assert_true(*gotrace_last_error() != 0);
	assert_int_equal(gotrace_enabled(), 0);
	assert_int_equal(guarded_stop(), -GOTRACE_ENOTON);
	close(p[0]);
	close(p[1]);
	session_after("after-stall");
}

/* Starting again into a pipe that is still full (say, after a stop gave up
 * with ESTALLED): the start must not block the caller for good. */
struct starter {
	int fd, rc;
	volatile int done;
};

static void *starter_main(void *arg)
{
	struct starter *s = arg;
	gotrace_options o;
	gotrace_options_init(&o);
	o.stop_timeout_ns = 300 * 1000 * 1000ull;
	s->rc = gotrace_start_fd(s->fd, &o);
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_start_on_full_pipe(void **state)
{
	(void)state;
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	char junk[4096];
	memset(junk, 'j', sizeof junk);
	while (write(p[1], junk, sizeof junk) > 0)
		;
	assert_int_equal(errno, EAGAIN); /* full */
	assert_int_equal(fcntl(p[1], F_SETFL, 0), 0); /* blocking again */
	static struct starter s;
	memset(&s, 0, sizeof s);
	s.fd = p[1];
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, starter_main, &s), 0);
	uint64_t t0 = now_ns();
	while (!__atomic_load_n(&s.done, __ATOMIC_ACQUIRE) && now_ns() - t0 < 1000000000ull)
		sleep_ms(2);
	int blocked = !__atomic_load_n(&s.done, __ATOMIC_ACQUIRE);
	if (blocked)
		close(p[0]); /* unblock it (EPIPE: SIGPIPE is ignored here) */
	pthread_join(th, NULL);
	uint64_t ms = (now_ns() - t0) / 1000000;
	printf("(d) gotrace_start_fd on a full pipe: %d after %llu ms%s\n", s.rc, (unsigned long long)ms,
	       blocked ? " (only once the reader was closed)" : "");
	int stop_rc = guarded_stop();
	if (!blocked)
		close(p[0]);
	close(p[1]);
	signal(SIGPIPE, old);
	if (blocked)
		fail_msg("gotrace_start_fd blocked for more than 1 s on a pipe whose reader does not read "
		         "(returned %d only when the read end was closed)", s.rc);
	/* Started: stop gives up after stop_timeout_ns.  Or: a clean error. */
	if (s.rc == 0)
		assert_int_equal(stop_rc, -GOTRACE_ESTALLED);
	else
		assert_int_equal(stop_rc, -GOTRACE_ENOTON);
}

/* ------------------------------------------------ (e) EFBIG, then EBUSY */

static void test_file_size_limit(void **state)
{
	(void)state;
	char *path = tmp_trace_path("efbig");
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 256 * 1024;
	/* SIGXFSZ stays at its default (fatal) disposition: the library must
	 * not let it kill the program. */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	gotrace_options o = fast_opts();
	assert_int_equal(gotrace_start_path(path, &o), 0);
	struct emitter e[2];
	run_emitters(e, 2, 400 * 1000 * 1000ull, 0);
	join_emitters(e, 2);
	/* The flusher meets EFBIG at its next write and switches tracing
	 * off: wait for that state (a loaded machine under TSan took longer
	 * than the emitters' 400 ms), at most 10 s. */
	for (int i = 0; i < 1000 && gotrace_enabled(); i++)
		sleep_ms(10);
	assert_int_equal(gotrace_enabled(), 0);
	/* The session failed but is not stopped yet.  Keep what is in the
	 * file, then try to start again on the same path. */
	size_t len;
	uint8_t *data = read_file(path, &len);
	int rc_busy = gotrace_start_path(path, NULL);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	int rc = guarded_stop();
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	printf("(e) RLIMIT_FSIZE %llu: stop %d: \"%s\"; file %zu bytes, %lld after a second start (%d)\n",
	       (unsigned long long)lim.rlim_cur, rc, gotrace_last_error(), len, (long long)st.st_size,
	       rc_busy);
	assert_int_equal(rc, -GOTRACE_EIO);
	if (!strstr(gotrace_last_error(), strerror(EFBIG)))
		fail_msg("last error \"%s\" does not mention \"%s\"", gotrace_last_error(), strerror(EFBIG));
	assert_true(len > 0 && len <= lim.rlim_cur);
	char *cut = tmp_trace_path("efbig-prefix");
	int gens = complete_prefix(data, len, cut);
	assert_true(gens >= 1);
	judge_nonempty(cut);
	unlink(cut);
	free(cut);
	free(data);
	unlink(path);
	free(path);
	assert_int_equal(rc_busy, -GOTRACE_EBUSY);
	if ((size_t)st.st_size != len)
		fail_msg("gotrace_start_path on the path of the failed but not yet stopped session "
		         "returned %d and changed the file from %zu to %lld bytes", rc_busy, len,
		         (long long)st.st_size);
	session_after("after-efbig");
}

static int teardown(void **state)
{
	(void)state;
	if (gotrace_enabled())
		guarded_stop();
	return 0;
}

/* Remove the traces a test child left behind (it failed or hung before
 * cleaning up): tmp_trace_path names them gotrace-<tag>-<pid>.trace. */
static void remove_leftovers(pid_t pid)
{
	const char *dir = getenv("TMPDIR");
	char pat[512];
	snprintf(pat, sizeof pat, "%s/gotrace-*-%d.trace", dir && *dir ? dir : "/tmp", (int)pid);
	glob_t g;
	if (glob(pat, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			unlink(g.gl_pathv[i]);
		globfree(&g);
	}
}

/* Each test in a child process; the parent reports hangs and deaths. */
int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_dev_full_at_start, teardown),
		cmocka_unit_test_teardown(test_disk_full_mid_session, teardown),
		cmocka_unit_test_teardown(test_error_text_after_eio_session, teardown),
		cmocka_unit_test_teardown(test_pipe_closed_sigpipe_default, teardown),
		cmocka_unit_test_teardown(test_pipe_closed_sigpipe_ignored, teardown),
		cmocka_unit_test_teardown(test_pipe_reader_leaves_sigpipe_default, teardown),
		cmocka_unit_test_teardown(test_pipe_reader_leaves_sigpipe_ignored, teardown),
		cmocka_unit_test_teardown(test_stalled_reader_drops, teardown),
		cmocka_unit_test_teardown(test_stop_with_stalled_reader, teardown),
		cmocka_unit_test_teardown(test_start_on_full_pipe, teardown),
		cmocka_unit_test_teardown(test_file_size_limit, teardown),
	};
	size_t n = sizeof tests / sizeof tests[0];
	int failed = 0;
	char summary[4096] = "";
	for (size_t i = 0; i < n; i++) {
		fflush(NULL);
		uint64_t t0 = now_ns();
		pid_t pid = fork();
		if (pid < 0)
			return 2;
		if (pid == 0) /* exit(), not _exit(): LeakSanitizer checks each test */
			exit(_cmocka_run_group_tests(tests[i].name, &tests[i], 1, NULL, NULL) ? 1 : 0);
		int st = 0;
		pid_t r;
		while ((r = waitpid(pid, &st, WNOHANG)) == 0 && now_ns() - t0 < 15000000000ull)
			sleep_ms(5);
		const char *verdict = "ok";
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			verdict = "HUNG (killed after 15 s)";
		} else if (WIFSIGNALED(st)) {
			verdict = "KILLED by a signal";
		} else if (WEXITSTATUS(st) == HUNG_IN_STOP) {
			verdict = "HUNG in gotrace_stop";
		} else if (WEXITSTATUS(st) != 0) {
			verdict = "FAILED";
		}
		remove_leftovers(pid);
		failed += strcmp(verdict, "ok") != 0;
		char line[256];
		snprintf(line, sizeof line, "  %-45s %-28s %5.2f s\n", tests[i].name, verdict,
		         (double)(now_ns() - t0) / 1e9);
		strncat(summary, line, sizeof summary - strlen(summary) - 1);
	}
	printf("\n==== test_output_errors: one process per test ====\n%s%d of %zu failed\n", summary, failed,
	       n);
	return failed != 0;
}
