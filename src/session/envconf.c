/*
 * envconf.c: configuration from the environment (issue 11), like
 * gperftools' CPUPROFILE and LTTng-UST's LTTNG_UST_* variables, for
 * programs that call gotrace_start_from_env() (and for the launcher and the
 * preload library that build on it).
 * May call: session.c (through the public start), src/core (errors).
 *
 * The table below is the one place where a variable is declared: its name,
 * its parser, and the line of help that the README and gotrace.h repeat.
 * This is the only code of the library that prints (to stderr, one line per
 * problem, prefixed "gotrace: "), and only when the program asked to be
 * configured from the environment.
 */
#include "session.h"

#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

struct envconf {
	gotrace_options *o;
	char *path;
	size_t path_len;
	char err[256];
	bool flight;       /* GOTRACE_FLIGHT=1 */
	bool flight_opts;  /* some GOTRACE_FLIGHT_* set */
};

/* "123", "64k", "4M", "1G" (powers of 1024). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno != 0 || *s == '-')
		return -1;
	uint64_t mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B' || *end == 'b')
		end += (*end == 'i' && (end[1] == 'B' || end[1] == 'b')) ? 2 : 1;
	if (*end != '\0' || v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* "1s", "100ms", "250us", "5000ns"; a bare number is nanoseconds. */
static int parse_duration(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno != 0 || *s == '-')
		return -1;
	uint64_t mul;
	if (*end == '\0' || strcmp(end, "ns") == 0)
		mul = 1;
	else if (strcmp(end, "us") == 0)
		mul = 1000;
	else if (strcmp(end, "ms") == 0)
		mul = 1000000;
	else if (strcmp(end, "s") == 0)
		mul = 1000000000;
	else
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* A comma-separated list of words, each one of names[] (values ORed), or
 * "none" (0).  -1 and the bad word in *bad if one is unknown. */
struct word {
	const char *name;
	int value;
};
static int parse_words(const char *s, const struct word *w, int *out, char *bad, size_t badlen)
{
	int v = 0;
	const char *p = s;
	while (*p) {
		size_t n = strcspn(p, ",");
		int found = n == 4 && strncmp(p, "none", 4) == 0;
		for (const struct word *x = w; !found && x->name; x++)
			if (strlen(x->name) == n && strncmp(p, x->name, n) == 0) {
				v |= x->value;
				found = 1;
			}
		if (!found) {
			snprintf(bad, badlen, "%.*s", (int)(n < 64 ? n : 64), p);
			return -1;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	*out = v;
	return 0;
}

static int set_out(struct envconf *c, const char *v)
{
	/* %p: the process id (each process of a fork/exec tree its own
	 * file); %%: a percent sign. */
	size_t o = 0;
	for (const char *p = v; *p; p++) {
		char buf[32];
		const char *add = buf;
		if (*p != '%') {
			buf[0] = *p;
			buf[1] = '\0';
		} else if (p[1] == 'p') {
			snprintf(buf, sizeof buf, "%ld", (long)getpid());
			p++;
		} else if (p[1] == '%') {
			add = "%";
			p++;
		} else {
			snprintf(c->err, sizeof c->err, "GOTRACE_OUT=%s: unknown %%-sequence (use %%p or %%%%)",
			         v);
			return -1;
		}
		size_t n = strlen(add);
		if (o + n + 1 > c->path_len) {
			snprintf(c->err, sizeof c->err, "GOTRACE_OUT: path longer than %zu bytes",
			         c->path_len - 1);
			return -1;
		}
		memcpy(c->path + o, add, n);
		o += n;
	}
	c->path[o] = '\0';
	if (o == 0) {
		snprintf(c->err, sizeof c->err, "GOTRACE_OUT is empty");
		return -1;
	}
	return 0;
}

static int set_cpu(struct envconf *c, const char *v)
{
	static const struct word w[] = { { "setitimer", GOTRACE_CPU_SETITIMER + 1 },
		                         { "timer", GOTRACE_CPU_THREAD_TIMER + 1 },
		                         { "perf", GOTRACE_CPU_PERF + 1 },
		                         { "auto", GOTRACE_CPU_AUTO + 1 },
		                         { NULL, 0 } };
	for (const struct word *x = w; x->name; x++)
		if (strcmp(v, x->name) == 0) {
			c->o->cpu_source = x->value - 1;
			return 0;
		}
	snprintf(c->err, sizeof c->err, "GOTRACE_CPU=%s: expected setitimer, timer, perf or auto", v);
	return -1;
}

static int set_cpu_hz(struct envconf *c, const char *v)
{
	char *end;
	errno = 0;
	long hz = strtol(v, &end, 10);
	if (end == v || *end != '\0' || errno != 0 || hz < 0 || hz > 100000) {
		snprintf(c->err, sizeof c->err, "GOTRACE_CPU_HZ=%s: expected 0 (off) to 100000", v);
		return -1;
	}
	c->o->cpu_hz = (int)hz;
	return 0;
}

static int set_stacks(struct envconf *c, const char *v)
{
	static const struct word w[] = { { "region", GOTRACE_STACK_REGION },
		                         { "log", GOTRACE_STACK_LOG },
		                         { "block", GOTRACE_STACK_BLOCK },
		                         { "syscall", GOTRACE_STACK_SYSCALL },
		                         { "goroutine", GOTRACE_STACK_GOROUTINE },
		                         { "all", GOTRACE_STACK_ALL },
		                         { "default", GOTRACE_STACK_DEFAULT },
		                         { NULL, 0 } };
	char bad[80];
	if (parse_words(v, w, &c->o->event_stacks, bad, sizeof bad) != 0) {
		snprintf(c->err, sizeof c->err,
		         "GOTRACE_STACKS=%s: unknown class '%s' (region, log, block, syscall, goroutine, "
		         "all, default, none)", v, bad);
		return -1;
	}
	return 0;
}

static int set_crash(struct envconf *c, const char *v)
{
	static const struct word w[] = { { "nosignals", GOTRACE_CRASH_NO_SIGNALS },
		                         { "noatexit", GOTRACE_CRASH_NO_ATEXIT },
		                         { NULL, 0 } };
	char bad[80];
	if (parse_words(v, w, &c->o->crash_flags, bad, sizeof bad) != 0) {
		snprintf(c->err, sizeof c->err,
		         "GOTRACE_CRASH=%s: unknown flag '%s' (nosignals, noatexit, none)", v, bad);
		return -1;
	}
	return 0;
}

static int set_clock(struct envconf *c, const char *v)
{
	if (strcmp(v, "auto") == 0)
		c->o->clock = GOTRACE_CLOCK_AUTO;
	else if (strcmp(v, "tsc") == 0)
		c->o->clock = GOTRACE_CLOCK_TSC;
	else if (strcmp(v, "monotonic") == 0)
		c->o->clock = GOTRACE_CLOCK_MONOTONIC;
	else {
		snprintf(c->err, sizeof c->err, "GOTRACE_CLOCK=%s: expected auto, tsc or monotonic", v);
		return -1;
	}
	return 0;
}

static int set_advance(struct envconf *c, const char *v)
{
	if (parse_duration(v, &c->o->advance_period_ns) != 0) {
		snprintf(c->err, sizeof c->err, "GOTRACE_ADVANCE=%s: expected a duration (1s, 100ms, 500us)",
		         v);
		return -1;
	}
	return 0;
}

static int set_stop_timeout(struct envconf *c, const char *v)
{
	if (parse_duration(v, &c->o->stop_timeout_ns) != 0) {
		snprintf(c->err, sizeof c->err, "GOTRACE_STOP_TIMEOUT=%s: expected a duration (5s, 500ms)",
		         v);
		return -1;
	}
	return 0;
}

static int set_max_buffered(struct envconf *c, const char *v)
{
	uint64_t n;
	if (parse_size(v, &n) != 0 || n > SIZE_MAX) {
		snprintf(c->err, sizeof c->err, "GOTRACE_MAX_BUFFERED=%s: expected a size (64M, 1G)", v);
		return -1;
	}
	c->o->max_buffered = (size_t)n;
	return 0;
}

static int set_buffer_size(struct envconf *c, const char *v)
{
	uint64_t n;
	if (parse_size(v, &n) != 0 || n > SIZE_MAX) {
		snprintf(c->err, sizeof c->err, "GOTRACE_BUFFER_SIZE=%s: expected a size (4k to 64k)", v);
		return -1;
	}
	c->o->buffer_size = (size_t)n;
	return 0;
}

static int set_flight(struct envconf *c, const char *v)
{
	if (strcmp(v, "1") == 0)
		c->flight = true;
	else if (strcmp(v, "0") != 0) {
		snprintf(c->err, sizeof c->err, "GOTRACE_FLIGHT=%s: expected 1 (flight recorder) or 0", v);
		return -1;
	}
	return 0;
}

static int set_flight_max_bytes(struct envconf *c, const char *v)
{
	uint64_t n;
	if (parse_size(v, &n) != 0 || n < (1u << 20)) {
		snprintf(c->err, sizeof c->err, "GOTRACE_FLIGHT_MAX_BYTES=%s: expected a size of at least 1M (16M)",
		         v);
		return -1;
	}
	c->o->flight_max_bytes = n;
	c->flight_opts = true;
	return 0;
}

static int set_flight_min_age(struct envconf *c, const char *v)
{
	if (parse_duration(v, &c->o->flight_min_age_ns) != 0 || c->o->flight_min_age_ns == 0) {
		snprintf(c->err, sizeof c->err, "GOTRACE_FLIGHT_MIN_AGE=%s: expected a duration (10s, 500ms)",
		         v);
		return -1;
	}
	c->flight_opts = true;
	return 0;
}

static int set_flight_signal(struct envconf *c, const char *v)
{
	static const struct word w[] = { { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "HUP", SIGHUP },
		                         { "QUIT", SIGQUIT }, { "TERM", SIGTERM }, { "INT", SIGINT },
		                         { "PWR", SIGPWR },   { "none", 0 },        { NULL, 0 } };
	const char *name = strncmp(v, "SIG", 3) == 0 ? v + 3 : v;
	for (const struct word *x = w; x->name; x++)
		if (strcmp(name, x->name) == 0) {
			c->o->flight_signal = x->value;
			c->flight_opts = true;
			return 0;
		}
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (end != v && *end == '\0' && errno == 0 && n > 0 && n < NSIG && n != SIGKILL && n != SIGSTOP) {
		c->o->flight_signal = (int)n;
		c->flight_opts = true;
		return 0;
	}
	snprintf(c->err, sizeof c->err,
	         "GOTRACE_FLIGHT_SIGNAL=%s: expected a signal name (USR2, SIGUSR2, ...), a number or none", v);
	return -1;
}

/* The variables (README "Environment" and gotrace.h repeat this table). */
static const struct var {
	const char *name;
	int (*set)(struct envconf *, const char *);
} vars[] = {
	{ "GOTRACE_OUT", set_out },                   /* path; %p pid, %% percent */
	{ "GOTRACE_CPU_HZ", set_cpu_hz },             /* CPU samples/s, 0 off */
	{ "GOTRACE_CPU", set_cpu },                   /* setitimer | timer | perf | auto */
	{ "GOTRACE_STACKS", set_stacks },             /* region,log,block,syscall,goroutine|all|default|none */
	{ "GOTRACE_ADVANCE", set_advance },           /* generation period: 1s, 100ms */
	{ "GOTRACE_MAX_BUFFERED", set_max_buffered }, /* memory bound: 64M */
	{ "GOTRACE_BUFFER_SIZE", set_buffer_size },   /* per-thread batch buffer: 32k */
	{ "GOTRACE_STOP_TIMEOUT", set_stop_timeout }, /* stalled output wait: 5s */
	{ "GOTRACE_CRASH", set_crash },               /* nosignals,noatexit|none */
	{ "GOTRACE_CLOCK", set_clock },               /* auto | tsc | monotonic */
	{ "GOTRACE_FLIGHT", set_flight },             /* 1: flight recorder */
	{ "GOTRACE_FLIGHT_MAX_BYTES", set_flight_max_bytes }, /* memory bound: 16M */
	{ "GOTRACE_FLIGHT_MIN_AGE", set_flight_min_age },     /* window: 10s */
	{ "GOTRACE_FLIGHT_SIGNAL", set_flight_signal },       /* USR2 | 12 | none */
};
#define NVARS (sizeof vars / sizeof vars[0])

/* Names of this form are not ours: build and test tooling may use them. */
static bool reserved_name(const char *name, size_t n)
{
	return (n >= 13 && strncmp(name, "GOTRACE_TEST_", 13) == 0);
}

int gotrace_options_from_env(gotrace_options *opt, char *path, size_t path_len)
{
	if (!opt || !path || path_len < 2) {
		gt_set_start_error("gotrace_options_from_env: bad arguments");
		return -GOTRACE_EINVAL;
	}
	struct envconf c = { .o = opt, .path = path, .path_len = path_len };
	gotrace_options_init(opt);
	path[0] = '\0';
	bool have_out = false;
	/* Every GOTRACE_* variable must be one of ours: a misspelt one
	 * (GOTRACE_CPUHZ) would otherwise be ignored without a word. */
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, "GOTRACE_", 8) != 0)
			continue;
		const char *eq = strchr(*e, '=');
		size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
		if (reserved_name(*e, n))
			continue;
		const struct var *v = NULL;
		for (size_t i = 0; i < NVARS; i++)
			if (strlen(vars[i].name) == n && strncmp(*e, vars[i].name, n) == 0)
				v = &vars[i];
		if (!v) {
			gt_set_start_error("unknown environment variable %.*s (known: GOTRACE_OUT, "
			                   "GOTRACE_CPU_HZ, GOTRACE_CPU, GOTRACE_STACKS, GOTRACE_ADVANCE, "
			                   "GOTRACE_MAX_BUFFERED, GOTRACE_BUFFER_SIZE, GOTRACE_STOP_TIMEOUT, "
			                   "GOTRACE_CRASH, GOTRACE_CLOCK, GOTRACE_FLIGHT, GOTRACE_FLIGHT_MAX_BYTES, "
			                   "GOTRACE_FLIGHT_MIN_AGE, GOTRACE_FLIGHT_SIGNAL)", (int)(n < 64 ? n : 64), *e);
			return -GOTRACE_EINVAL;
		}
	}
	for (size_t i = 0; i < NVARS; i++) {
		const char *val = getenv(vars[i].name);
		if (!val)
			continue;
		if (vars[i].set(&c, val) != 0) {
			gt_set_start_error("%s", c.err);
			return -GOTRACE_EINVAL;
		}
		if (vars[i].set == set_out)
			have_out = true;
	}
	if (c.flight_opts && !c.flight) {
		gt_set_start_error("GOTRACE_FLIGHT_MAX_BYTES, GOTRACE_FLIGHT_MIN_AGE and GOTRACE_FLIGHT_SIGNAL "
		                   "need GOTRACE_FLIGHT=1");
		return -GOTRACE_EINVAL;
	}
	/* A flight session is told by a non-zero flight_max_bytes. */
	if (c.flight && opt->flight_max_bytes == 0)
		opt->flight_max_bytes = 16u << 20;
	return have_out ? 0 : 1;
}

int gotrace_start_from_env(void)
{
	gotrace_options o;
	char path[PATH_MAX];
	int r = gotrace_options_from_env(&o, path, sizeof path);
	if (r == 0 && o.flight_max_bytes != 0) {
		o.flight_path = path; /* start copies it */
		r = gotrace_start_flight(&o);
	} else if (r == 0) {
		r = gotrace_start_path(path, &o);
	}
	if (r < 0) {
		/* The one place the library prints: the user asked for tracing
		 * through the environment and would otherwise never learn why
		 * there is no trace. */
		fprintf(stderr, "gotrace: tracing off: %s\n", gotrace_last_error());
		fflush(stderr);
	}
	return r;
}
