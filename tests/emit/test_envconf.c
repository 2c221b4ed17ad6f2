/*
 * Configuration from the environment (issue 11, src/session/envconf.c):
 * gotrace_options_from_env parses every variable into the options it
 * names; gotrace_start_from_env starts a trace that Go's validators accept
 * with those options in effect, and on bad input prints exactly one line on
 * stderr and leaves tracing off while the program carries on.
 *
 * Each start runs in a forked child with an environment of the test's own
 * (clearenv, then the case's variables), its stderr captured.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gotrace.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracecheck.h"

extern char **environ;

/* ------------------------------------------------------- parsing only */

/* The parsing tests replace this process's environment: saved once (the
 * strings stay referenced here: putenv keeps them) and put back after
 * each (the judges' locations are in it). */
static char **saved_env;

static void env_save(void)
{
	if (saved_env)
		return;
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	saved_env = calloc(n + 1, sizeof *saved_env);
	for (size_t i = 0; i < n; i++)
		saved_env[i] = strdup(environ[i]);
}

static void env_restore(void)
{
	clearenv();
	for (char **e = saved_env; *e; e++)
		putenv(*e);
}

static void set_only(const char *const *kv)
{
	clearenv();
	for (; kv && kv[0]; kv += 2)
		setenv(kv[0], kv[1], 1);
}

static void parses_every_variable(void **state)
{
	(void)state;
	env_save();
	const char *kv[] = { "GOTRACE_OUT", "/tmp/x-%p-%%.trace", "GOTRACE_CPU_HZ", "250",
		             "GOTRACE_CPU", "timer", "GOTRACE_STACKS", "block,syscall",
		             "GOTRACE_ADVANCE", "250ms", "GOTRACE_MAX_BUFFERED", "3M",
		             "GOTRACE_BUFFER_SIZE", "8k", "GOTRACE_STOP_TIMEOUT", "2s",
		             "GOTRACE_CRASH", "nosignals,noatexit", "GOTRACE_CLOCK", "monotonic",
		             "GOTRACE_TEST_ANYTHING", "left to test tooling", NULL };
	set_only(kv);
	gotrace_options o;
	char path[256], want[256];
	assert_int_equal(gotrace_options_from_env(&o, path, sizeof path), 0);
	snprintf(want, sizeof want, "/tmp/x-%ld-%%.trace", (long)getpid());
	assert_string_equal(path, want);
	assert_int_equal(o.cpu_hz, 250);
	assert_int_equal(o.cpu_source, GOTRACE_CPU_THREAD_TIMER);
	assert_int_equal(o.event_stacks, GOTRACE_STACK_BLOCK | GOTRACE_STACK_SYSCALL);
	assert_int_equal(o.advance_period_ns, 250000000ull);
	assert_int_equal(o.max_buffered, 3u << 20);
	assert_int_equal(o.buffer_size, 8192);
	assert_int_equal(o.stop_timeout_ns, 2000000000ull);
	assert_int_equal(o.crash_flags, GOTRACE_CRASH_NO_SIGNALS | GOTRACE_CRASH_NO_ATEXIT);
	assert_int_equal(o.clock, GOTRACE_CLOCK_MONOTONIC);

	/* Unset: defaults, and 1 (nothing to start). */
	set_only(NULL);
	gotrace_options d;
	gotrace_options_init(&d);
	assert_int_equal(gotrace_options_from_env(&o, path, sizeof path), 1);
	assert_memory_equal(&o, &d, sizeof o);
	const char *all[] = { "GOTRACE_STACKS", "all", "GOTRACE_OUT", "t", "GOTRACE_ADVANCE", "1500", NULL };
	set_only(all);
	assert_int_equal(gotrace_options_from_env(&o, path, sizeof path), 0);
	assert_int_equal(o.event_stacks, GOTRACE_STACK_ALL);
	assert_int_equal(o.advance_period_ns, 1500);
	/* The default stack classes (blocking and syscalls, for -pprof=sync
	 * and -pprof=syscall), the word naming them, and none. */
	assert_int_equal(d.event_stacks, GOTRACE_STACK_BLOCK | GOTRACE_STACK_SYSCALL);
	const char *dflt[] = { "GOTRACE_STACKS", "default,region", "GOTRACE_OUT", "t", NULL };
	set_only(dflt);
	assert_int_equal(gotrace_options_from_env(&o, path, sizeof path), 0);
	assert_int_equal(o.event_stacks, GOTRACE_STACK_DEFAULT | GOTRACE_STACK_REGION);
	const char *none[] = { "GOTRACE_STACKS", "none", "GOTRACE_OUT", "t", NULL };
	set_only(none);
	assert_int_equal(gotrace_options_from_env(&o, path, sizeof path), 0);
	assert_int_equal(o.event_stacks, 0);
	/* Each GOTRACE_CPU word, and setitimer by default (the preload's
	 * default, auto, is its own: src/preload/init.c). */
	assert_int_equal(d.cpu_source, GOTRACE_CPU_SETITIMER);
	const char *words[] = { "setitimer", "timer", "perf", "auto" };
	const int srcs[] = { GOTRACE_CPU_SETITIMER, GOTRACE_CPU_THREAD_TIMER, GOTRACE_CPU_PERF,
		             GOTRACE_CPU_AUTO };
	for (int i = 0; i < 4; i++) {
		const char *cpu[] = { "GOTRACE_CPU", words[i], "GOTRACE_OUT", "t", NULL };
		set_only(cpu);
		o.cpu_source = -1;
		assert_int_equal(gotrace_options_from_env(&o, path, sizeof path), 0);
		assert_int_equal(o.cpu_source, srcs[i]);
	}
	env_restore();
}

static void rejects_bad_values(void **state)
{
	(void)state;
	env_save();
	/* name, value, a word the message must hold */
	const char *bad[][3] = {
		{ "GOTRACE_CPU", "bogus", "GOTRACE_CPU=bogus" },
		{ "GOTRACE_CPU_HZ", "fast", "GOTRACE_CPU_HZ=fast" },
		{ "GOTRACE_CPU_HZ", "-5", "GOTRACE_CPU_HZ=-5" },
		{ "GOTRACE_STACKS", "block,lock", "'lock'" },
		{ "GOTRACE_ADVANCE", "10 parsecs", "GOTRACE_ADVANCE" },
		{ "GOTRACE_ADVANCE", "5m", "GOTRACE_ADVANCE" },
		{ "GOTRACE_MAX_BUFFERED", "lots", "GOTRACE_MAX_BUFFERED" },
		{ "GOTRACE_BUFFER_SIZE", "8T", "GOTRACE_BUFFER_SIZE" },
		{ "GOTRACE_CRASH", "nosignal", "'nosignal'" },
		{ "GOTRACE_CLOCK", "sundial", "GOTRACE_CLOCK=sundial" },
		{ "GOTRACE_OUT", "x-%d.trace", "%-sequence" },
		{ "GOTRACE_OUT", "", "GOTRACE_OUT is empty" },
		{ "GOTRACE_CPUHZ", "100", "unknown environment variable GOTRACE_CPUHZ" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *kv[] = { "GOTRACE_OUT", "t.trace", bad[i][0], bad[i][1], NULL };
		set_only(kv);
		gotrace_options o;
		char path[64];
		int r = gotrace_options_from_env(&o, path, sizeof path);
		if (r != -GOTRACE_EINVAL || !strstr(gotrace_last_error(), bad[i][2]))
			fail_msg("%s=%s: returned %d, error '%s' (wanted it to mention %s)", bad[i][0],
			         bad[i][1], r, gotrace_last_error(), bad[i][2]);
	}
	/* A path that does not fit. */
	const char *kv[] = { "GOTRACE_OUT", "/a/rather/long/path/name.trace", NULL };
	set_only(kv);
	gotrace_options o;
	char small[8];
	assert_int_equal(gotrace_options_from_env(&o, small, sizeof small), -GOTRACE_EINVAL);
	env_restore();
}

/* ----------------------------------------------------- starts in a child */

struct child {
	int status;     /* wait status */
	char err[2048]; /* its stderr */
	pid_t pid;
};

/* Fork; the child gets exactly the variables kv, calls
 * gotrace_start_from_env, works in a region (with a log) for 120 ms and, if
 * tracing, until 3 generations are written, stops and exits with 10 + the
 * start's result (0 started, 1 unset, 10 - code on failure), 99 if tracing
 * is on after a failed start, 97 if 3 generations took over 2.5 s (the
 * advance period did not take effect). */
static void run_child(const char *const *kv, struct child *c)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		close(pfd[0]);
		close(pfd[1]);
		char tmp[1024];
		snprintf(tmp, sizeof tmp, "%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		clearenv();
		for (; kv && kv[0]; kv += 2) {
			char v[2200];
			/* @T in a value: the test's TMPDIR */
			const char *at = strstr(kv[1], "@T");
			if (at)
				snprintf(v, sizeof v, "%.*s%s%s", (int)(at - kv[1]), kv[1], tmp, at + 2);
			else
				snprintf(v, sizeof v, "%s", kv[1]);
			setenv(kv[0], v, 1);
		}
		int r = gotrace_start_from_env();
		if (r < 0 && gotrace_enabled())
			_exit(99);
		/* The program's own work goes on either way: 120 ms, and while
		 * tracing, until 3 generations are written (20 s at most). */
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		gotrace_region_begin(0, "work");
		volatile unsigned long x = 0;
		long ns;
		gotrace_stats st;
		do {
			for (int i = 0; i < 100000; i++)
				x += (unsigned long)i;
			clock_gettime(CLOCK_MONOTONIC, &t);
			ns = (t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec);
			gotrace_get_stats(&st);
		} while (ns < 120000000L || (r == 0 && st.generations < 3 && ns < 20000000000L));
		gotrace_region_end(0, "work");
		/* The default period (1 s) needs >= 2 s for 3 generations;
		 * GOTRACE_ADVANCE=10ms, 2.5 s is 250 periods. */
		if (r == 0 && (st.generations < 3 || ns > 2500000000L))
			_exit(97);
		gotrace_log(0, "env", "done");
		if (r == 0 && gotrace_stop() != 0)
			_exit(98);
		_exit(10 + r);
	}
	close(pfd[1]);
	size_t n = 0;
	ssize_t k;
	while ((k = read(pfd[0], c->err + n, sizeof c->err - 1 - n)) > 0)
		n += (size_t)k;
	c->err[n] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &c->status, 0), pid);
	c->pid = pid;
}

static int lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void starts_from_env(void **state)
{
	(void)state;
	const char *kv[] = { "GOTRACE_OUT", "@T/gotrace-env-%p.trace", "GOTRACE_CPU_HZ", "1000",
		             "GOTRACE_STACKS", "region", "GOTRACE_ADVANCE", "10ms", NULL };
	struct child c;
	run_child(kv, &c);
	if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 10)
		fail_msg("child: status %#x, stderr '%s'", c.status, c.err);
	assert_string_equal(c.err, ""); /* nothing printed when all is well */
	char path[1024];
	snprintf(path, sizeof path, "%s/gotrace-env-%ld.trace",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)c.pid);
	assert_int_equal(judge_trace(path), 0);
	struct tsum s;
	assert_int_equal(tsum_load(path, "go1.23", &s), 0);
	/* The options took effect: 10 ms generations over >= 120 ms, CPU
	 * samples, and the region's stack. */
	int64_t gens = 0;
	size_t samples = 0, regions = 0;
	for (size_t i = 0; i < s.n; i++) {
		const struct tline *l = &s.lines[i];
		if (l->gen > gens)
			gens = l->gen;
		if (!strcmp(l->kind, "sample"))
			samples++;
		if (!strcmp(l->kind, "regionbegin") && !strcmp(tl_get(l, "name"), "work")) {
			regions++;
			/* The caller, or the inline wrapper where it is not
			 * inlined (-O0): a stack, which GOTRACE_STACKS asked for. */
			const char *stk = tl_get(l, "stack");
			if (!strstr(stk, "run_child") && !strstr(stk, "gotrace_region_begin"))
				fail_msg("region stack '%s'", stk);
		}
	}
	printf("env start: %lld generations, %zu samples\n", (long long)gens, samples);
	assert_true(gens >= 3);
	assert_true(samples > 0);
	assert_int_equal(regions, 1);
	tsum_free(&s);
	unlink(path);
}

static void bad_env_prints_one_line(void **state)
{
	(void)state;
	const char *cases[][5] = {
		{ "GOTRACE_OUT", "@T/gotrace-env-bad.trace", "GOTRACE_CPU", "bogus", "GOTRACE_CPU=bogus" },
		{ "GOTRACE_OUT", "@T/gotrace-env-bad.trace", "GOTRACE_CPUHZ", "100", "GOTRACE_CPUHZ" },
		{ "GOTRACE_OUT", "@T/no/such/dir/x.trace", "GOTRACE_CPU_HZ", "0", "no/such/dir" },
		{ "GOTRACE_OUT", "@T/gotrace-env-bad.trace", "GOTRACE_BUFFER_SIZE", "1k", "buffer_size" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *kv[] = { cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL };
		struct child c;
		run_child(kv, &c);
		/* Started nothing, tracing off, the program ran to its end. */
		if (!WIFEXITED(c.status))
			fail_msg("case %zu: status %#x", i, c.status);
		int code = WEXITSTATUS(c.status) - 10;
		if (code >= 0 || lines(c.err) != 1 || strncmp(c.err, "gotrace: tracing off: ", 22) != 0 ||
		    !strstr(c.err, cases[i][4]))
			fail_msg("case %zu (%s=%s): start returned %d, stderr '%s'", i, cases[i][2],
			         cases[i][3], code, c.err);
	}
	char bad[1024];
	snprintf(bad, sizeof bad, "%s/gotrace-env-bad.trace", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_int_equal(access(bad, F_OK), -1); /* no file from a refused start */

	/* GOTRACE_OUT unset: returns 1, prints nothing, traces nothing. */
	const char *none[] = { "GOTRACE_CPU_HZ", "100", NULL };
	struct child c;
	run_child(none, &c);
	assert_true(WIFEXITED(c.status));
	assert_int_equal(WEXITSTATUS(c.status), 11);
	assert_string_equal(c.err, "");
}

/* Flight recorder variables (issue 13): parsed into the options (a
 * non-zero flight_max_bytes marks a flight session), refused without
 * GOTRACE_FLIGHT=1, and a recorder started from the environment writes
 * nothing unasked (no signal, no crash: the file stays absent). */
static void flight_from_env(void **state)
{
	(void)state;
	env_save();
	const char *kv[] = { "GOTRACE_OUT", "/tmp/f.trace", "GOTRACE_FLIGHT", "1",
		             "GOTRACE_FLIGHT_MAX_BYTES", "2M", "GOTRACE_FLIGHT_MIN_AGE", "300ms",
		             "GOTRACE_FLIGHT_SIGNAL", "SIGUSR2", NULL };
	set_only(kv);
	gotrace_options o;
	char path[256];
	assert_int_equal(gotrace_options_from_env(&o, path, sizeof path), 0);
	assert_int_equal(o.flight_max_bytes, 2u << 20);
	assert_int_equal(o.flight_min_age_ns, 300000000ull);
	assert_int_equal(o.flight_signal, SIGUSR2);
	const char *kv2[] = { "GOTRACE_OUT", "/tmp/f.trace", "GOTRACE_FLIGHT", "1",
		              "GOTRACE_FLIGHT_SIGNAL", "12", NULL };
	set_only(kv2);
	assert_int_equal(gotrace_options_from_env(&o, path, sizeof path), 0);
	assert_int_equal(o.flight_max_bytes, 16u << 20); /* the default */
	assert_int_equal(o.flight_signal, 12);
	const char *bad[][4] = { { "GOTRACE_FLIGHT_MAX_BYTES", "4M", NULL, NULL }, /* no GOTRACE_FLIGHT */
		                 { "GOTRACE_FLIGHT", "1", "GOTRACE_FLIGHT_MAX_BYTES", "100k" },
		                 { "GOTRACE_FLIGHT", "1", "GOTRACE_FLIGHT_SIGNAL", "KILL" },
		                 { "GOTRACE_FLIGHT", "yes", NULL, NULL } };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *b[] = { bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL };
		set_only(b);
		if (gotrace_options_from_env(&o, path, sizeof path) != -GOTRACE_EINVAL)
			fail_msg("case %zu accepted", i);
		assert_non_null(strstr(gotrace_last_error(), "GOTRACE_FLIGHT"));
	}
	env_restore();
	const char *run[] = { "GOTRACE_OUT", "@T/gotrace-env-flight-%p.trace", "GOTRACE_FLIGHT", "1",
		              "GOTRACE_FLIGHT_MAX_BYTES", "2M", "GOTRACE_ADVANCE", "10ms", NULL };
	struct child c;
	run_child(run, &c);
	if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 10)
		fail_msg("child: status %#x, stderr '%s'", c.status, c.err);
	assert_string_equal(c.err, "");
	char fpath[1024];
	snprintf(fpath, sizeof fpath, "%s/gotrace-env-flight-%ld.trace",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)c.pid);
	assert_int_equal(access(fpath, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(starts_from_env),
		cmocka_unit_test(bad_env_prints_one_line),
		cmocka_unit_test(parses_every_variable),
		cmocka_unit_test(flight_from_env),
		cmocka_unit_test(rejects_bad_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
