#define _GNU_SOURCE 1
#include "readtest.h"
#include "base/error.h" /* gtr_errstr */

#include <errno.h>
#include <gotrace.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ files, commands */

void buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
}

void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

int read_file(const char *path, struct buf *b)
{
	memset(b, 0, sizeof *b);
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_put(b, chunk, n);
	fclose(f);
	if (!b->p)
		buf_put(b, "", 0);
	return 0;
}

void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
		fprintf(stderr, "FATAL: cannot write %s: %s\n", path, strerror(errno));
		exit(99);
	}
}

int run(struct buf *out, const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	FILE *f = popen(cmd, "r");
	free(cmd);
	if (!f)
		return -1;
	char chunk[65536];
	size_t n;
	struct buf sink = { 0 };
	if (!out)
		out = &sink;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_put(out, chunk, n);
	if (!out->p)
		buf_put(out, "", 0);
	buf_free(&sink);
	int st = pclose(f);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

const char *env_need(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "FATAL: %s is not set: run the tests through ctest\n", name);
		exit(99);
	}
	return v;
}

/* The tracecheck binaries live in a cache shared by every checkout on the
 * machine; another checkout with other tools/tracecheck sources may have
 * rebuilt them meanwhile.  So (once per process) have build-tracecheck.sh
 * check them against our sources, which rebuilds them if needed. */
const char *tracecheck_bin(const char *which)
{
	static char p[2][4096];
	static bool checked;
	if (!checked) {
		checked = true;
		char *scripts = strdup(env_need("GOTRACE_CHECK_TRACE"));
		char *slash = strrchr(scripts, '/');
		if (slash)
			*slash = 0;
		/* the cache the tests were configured with: its tracecheck/ */
		char *cache = strdup(env_need("GOTRACE_TRACECHECK_DIR"));
		char *cs = strrchr(cache, '/');
		if (cs)
			*cs = 0;
		struct buf o = { 0 };
		if (run(&o, "GOTRACE_CACHE='%s' '%s/build-tracecheck.sh' 2>/dev/null", cache, scripts) != 0) {
			fprintf(stderr, "FATAL: scripts/build-tracecheck.sh failed\n");
			exit(99);
		}
		free(scripts);
		free(cache);
		buf_free(&o);
	}
	int i = !strcmp(which, "new");
	snprintf(p[i], sizeof p[i], "%s/tracecheck-%s", env_need("GOTRACE_TRACECHECK_DIR"), which);
	return p[i];
}

char *tmp_dir(const char *tag)
{
	const char *t = getenv("TMPDIR");
	char *d;
	if (asprintf(&d, "%s/gtread-%s-XXXXXX", t && *t ? t : "/tmp", tag) < 0 || !mkdtemp(d)) {
		fprintf(stderr, "FATAL: mkdtemp: %s\n", strerror(errno));
		exit(99);
	}
	return d;
}

/* ------------------------------------------------------------ digests */

/* Go's first line (tracecheck's %XX escape undone) with its control bytes
 * escaped as the C reader escapes trace strings (gtr_errstr); digest_c does
 * the same to the C message's first line, so raw tabs compare alike and a
 * NUL from a trace string can be compared at all. */
static void unescape(const char *s, size_t n, char *out, size_t cap)
{
	char *raw = malloc(n + 1);
	if (!raw)
		abort();
	size_t w = 0;
	for (size_t r = 0; r < n; r++) {
		if (s[r] == '%' && r + 2 < n) {
			char hex[3] = { s[r + 1], s[r + 2], 0 };
			raw[w++] = (char)strtoul(hex, NULL, 16);
			r += 2;
		} else {
			raw[w++] = s[r];
		}
	}
	gtr_errstr(out, cap, raw, w);
	free(raw);
}

int digest_parse(const char *line, struct digest *d)
{
	memset(d, 0, sizeof *d);
	const char *g = strstr(line, "gens="), *e = strstr(line, " events="), *t = strstr(line, " tail="),
		   *x = strstr(line, " err=");
	if (!g || !e || !t || !x)
		return -1;
	d->gens = strtoull(g + 5, NULL, 10);
	const char *p = e + 8;
	size_t i = 0;
	while (*p && *p != ' ' && *p != '-') {
		char *q;
		uint64_t v = strtoull(p, &q, 10);
		if (i < 64)
			d->events[i] = v;
		i++;
		p = *q == ',' ? q + 1 : q;
	}
	d->tail = strtoull(t + 6, NULL, 10);
	const char *m = x + 5;
	size_t ml = strcspn(m, "\n");
	if (ml == 1 && m[0] == '-')
		return 0;
	d->err = true;
	const char *colon = memchr(m, ':', ml);
	if (!colon)
		return -1;
	snprintf(d->src, sizeof d->src, "%.*s", (int)(colon - m), m);
	unescape(colon + 1, ml - (size_t)(colon + 1 - m), d->msg, sizeof d->msg);
	return 0;
}

void digest_c(const uint8_t *data, size_t len, struct digest *d)
{
	memset(d, 0, sizeof *d);
	struct gtr_error e;
	struct gtr_reader *r = gtr_open(data, len, NULL, &e);
	if (!r)
		goto fail;
	struct gtr_event ev;
	uint64_t cur = 0;
	int rc;
	while ((rc = gtr_next_event(r, &ev, NULL)) == GTR_OK) {
		if (ev.type == GTR_EV_SYNC) {
			if (d->gens < 64)
				d->events[d->gens] = cur;
			d->gens++;
			cur = 0;
		} else {
			cur++;
		}
	}
	d->tail = cur;
	if (rc == GTR_END) {
		gtr_close(r);
		return;
	}
	e = *gtr_reader_error(r);
	gtr_close(r);
fail:
	d->err = true;
	d->kind = e.kind;
	d->go_sees_eof = e.go_sees_eof;
	d->go123_accepts = e.go123_accepts;
	snprintf(d->src, sizeof d->src, "%s", e.go_panics ? "panic" : e.kind == GTR_EVALID ? "validator" : "reader");
	gtr_errstr(d->msg, sizeof d->msg, e.msg, strcspn(e.msg, "\n"));
}

static void parse_lines(struct buf *b, struct digest *out, size_t n, bool prefixed_by_index)
{
	char *save = NULL;
	size_t i = 0;
	for (char *line = strtok_r((char *)b->p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t k = i;
		if (prefixed_by_index)
			k = strtoull(line, NULL, 10);
		if (k >= n || digest_parse(line, &out[k]) != 0) {
			fprintf(stderr, "FATAL: bad digest line: %s\n", line);
			exit(99);
		}
		i++;
	}
	if (i != n) {
		fprintf(stderr, "FATAL: %zu digest lines, expected %zu\n", i, n);
		exit(99);
	}
}

void digest_go(const char *which, char **files, size_t n, struct digest *out)
{
	/* Command line in chunks (ARG_MAX). */
	for (size_t i = 0; i < n;) {
		struct buf cmd = { 0 };
		char *pre;
		if (asprintf(&pre, "'%s' -digest", tracecheck_bin(which)) < 0)
			abort();
		buf_put(&cmd, pre, strlen(pre));
		free(pre);
		size_t j = i;
		for (; j < n && cmd.n < 100000; j++) {
			buf_put(&cmd, " '", 2);
			buf_put(&cmd, files[j], strlen(files[j]));
			buf_put(&cmd, "'", 1);
		}
		struct buf o = { 0 };
		int st = run(&o, "%s", (char *)cmd.p);
		if (st != 0) {
			fprintf(stderr, "FATAL: tracecheck -digest failed (%d)\n", st);
			exit(99);
		}
		parse_lines(&o, out + i, j - i, false);
		buf_free(&o);
		buf_free(&cmd);
		i = j;
	}
}

struct digest *digest_go_prefixes(const char *which, const char *file, size_t len)
{
	struct digest *d = calloc(len + 1, sizeof *d);
	struct buf o = { 0 };
	if (!d || run(&o, "'%s' -prefixes '%s'", tracecheck_bin(which), file) != 0) {
		fprintf(stderr, "FATAL: tracecheck -prefixes failed\n");
		exit(99);
	}
	parse_lines(&o, d, len + 1, true);
	buf_free(&o);
	return d;
}

void digest_print(const char *label, const struct digest *d)
{
	fprintf(stderr, "  %s: gens=%zu events=", label, d->gens);
	for (size_t i = 0; i < d->gens && i < 64; i++)
		fprintf(stderr, "%s%" PRIu64, i ? "," : "", d->events[i]);
	fprintf(stderr, " tail=%" PRIu64 " err=%s%s%s%s\n", d->tail, d->err ? d->src : "-",
		d->err ? ":" : "", d->err ? d->msg : "", d->go_sees_eof ? " [go sees EOF]" : "");
}

static const char *const structural[] = {
	"expected batch event", "error reading batch", "invalid batch size", "failed to read full batch",
	"invalid generation number", "generations out of order", "no frequency event found",
	"found multiple frequency events", "expected string event", "expected stack event",
	"expected CPU sample event", "invalid string size", "invalid stack size",
	"failed to read full string", "multiple strings with", "multiple trace.stacks with", "reading frame",
	"found invalid func string ID", "found invalid file string ID", "found invalid event type",
	"found event without a timestamp", "found invalid uvarint", "found invalid stack ID",
	"found invalid string ID", "unexpected EOF", "binary: varint overflows",
	"broken trace: frontier is empty", "bad file format", "unknown or unsupported",
	"expected id ", "expected frequency or clock snapshot event",
};

bool go_error_structural(const struct digest *go)
{
	if (!go->err)
		return false;
	if (!strcmp(go->src, "validator"))
		return false;
	for (size_t i = 0; i < sizeof structural / sizeof structural[0]; i++)
		if (!strncmp(go->msg, structural[i], strlen(structural[i])))
			return true;
	return !strcmp(go->msg, "EOF");
}

static bool same_gens(const struct digest *a, const struct digest *b, size_t n)
{
	if (a->gens < n || b->gens < n)
		return false;
	for (size_t i = 0; i < n && i < 64; i++)
		if (a->events[i] != b->events[i])
			return false;
	return true;
}

enum agree digest_agree(const struct digest *c, const struct digest *go, bool exact, char *why,
			size_t whylen)
{
	why[0] = 0;
	bool go_sem = go->err && !go_error_structural(go);
	/* A generation without events: only Go 1.23 rejects it. */
	if (!exact && c->err && c->kind == GTR_EEMPTY) {
		if (same_gens(c, go, c->gens) && (go->gens > c->gens ? go->events[c->gens] == 0 : go->err))
			return AGREE_EXACT;
		snprintf(why, whylen, "empty generation");
		return DISAGREE;
	}
	/* The newest Go decodes the first event of each thread of a new
	 * generation before the Sync that ends the previous one: a bad event
	 * there leaves that generation unclosed (its events in tail). */
	if (!exact && c->err && go->err && c->gens == go->gens + 1 && c->gens <= 64 &&
	    same_gens(c, go, go->gens) && go->tail == c->events[go->gens] && c->kind == GTR_EEVENT)
		return AGREE_EXACT;
	/* Rejected here as by newer Go, accepted by Go 1.23 (which reads on,
	 * maybe to another problem further on). */
	if (exact && c->err && c->go123_accepts && go->gens >= c->gens && same_gens(c, go, c->gens))
		return AGREE_EXACT;
	if (go_sem && c->gens > go->gens) {
		if (same_gens(c, go, go->gens))
			return SEMANTIC_MISS;
		snprintf(why, whylen, "different generations/events before Go's ordering error");
		return DISAGREE;
	}
	if (c->gens != go->gens || !same_gens(c, go, go->gens)) {
		snprintf(why, whylen, "different generations/events");
		return DISAGREE;
	}
	if (!go->err) {
		if (c->err && !c->go_sees_eof) {
			snprintf(why, whylen, "C error, Go none");
			return DISAGREE;
		}
		if (!c->err && c->tail != go->tail) {
			snprintf(why, whylen, "different tail");
			return DISAGREE;
		}
		return AGREE_EXACT;
	}
	if (!c->err) {
		snprintf(why, whylen, "Go error, C none");
		return DISAGREE;
	}
	if (!exact)
		return AGREE_EXACT;
	if (c->tail != go->tail) {
		snprintf(why, whylen, "different tail (events delivered before the error)");
		return AGREE_PLACE;
	}
	/* A CPU sample with an unknown stack: Go panics in the validator. */
	if (!strcmp(go->src, "panic") && c->kind == GTR_EREF && strstr(c->msg, "for event CPUSample"))
		return AGREE_EXACT;
	if (!strncmp(go->msg, "broken trace: frontier is empty", 31) && c->kind == GTR_EEMPTY)
		return AGREE_EXACT;
	if (!strcmp(c->msg, go->msg))
		return AGREE_EXACT;
	/* A newline in a trace string ends Go's first line; the C reader
	 * escaped it (gtr_errstr). */
	size_t gl = strlen(go->msg);
	if (!strncmp(c->msg, go->msg, gl) && !strncmp(c->msg + gl, "\\x0a", 4))
		return AGREE_EXACT;
	snprintf(why, whylen, "different error text");
	return AGREE_PLACE;
}

/* ------------------------------------------------------------ traces */

struct phase {
	pthread_barrier_t *bar;
	int idx, rounds, ngens;
};

static void *worker(void *arg)
{
	struct phase *p = arg;
	char name[32], msg[64];
	snprintf(name, sizeof name, "reader-test-%d", p->idx);
	gotrace_thread_name(name);
	for (int g = 0; g < p->ngens; g++) {
		pthread_barrier_wait(p->bar);
		for (int k = 0; k < p->rounds; k++) {
			uint64_t t = gotrace_task_begin(0, "job");
			gotrace_region_begin(t, "outer");
			snprintf(msg, sizeof msg, "thr=%d gen=%d k=%d", p->idx, g, k);
			gotrace_log(t, "cat", msg);
			gotrace_region_begin(t, "inner");
			gotrace_region_end(t, "inner");
			gotrace_region_end(t, "outer");
			gotrace_task_end(t);
		}
		pthread_barrier_wait(p->bar);
	}
	return NULL;
}

void make_lib_trace(const char *path, int nthreads, int rounds, int ngens)
{
	gotrace_options o;
	gotrace_options_init(&o);
	o.advance_period_ns = 3600ULL * 1000000000ULL; /* only explicit flushes */
	if (gotrace_start_path(path, &o) != 0) {
		fprintf(stderr, "FATAL: gotrace_start_path: %s\n", gotrace_last_error());
		exit(99);
	}
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
	pthread_t th[64];
	struct phase ph[64];
	uint64_t all = gotrace_task_begin(0, "all");
	for (int i = 0; i < nthreads && i < 64; i++) {
		ph[i] = (struct phase){ &bar, i, rounds, ngens };
		pthread_create(&th[i], NULL, worker, &ph[i]);
	}
	for (int g = 0; g < ngens; g++) {
		pthread_barrier_wait(&bar);
		gotrace_log(all, "main", "phase");
		pthread_barrier_wait(&bar);
		if (g + 1 < ngens && gotrace_flush() != 0) {
			fprintf(stderr, "FATAL: gotrace_flush: %s\n", gotrace_last_error());
			exit(99);
		}
	}
	for (int i = 0; i < nthreads && i < 64; i++)
		pthread_join(th[i], NULL);
	gotrace_task_end(all);
	if (gotrace_stop() != 0) {
		fprintf(stderr, "FATAL: gotrace_stop: %s\n", gotrace_last_error());
		exit(99);
	}
	pthread_barrier_destroy(&bar);
}

size_t gen_ends(const uint8_t *data, size_t len, uint64_t *ends, size_t max)
{
	struct gtr_error e;
	struct gtr_reader *r = gtr_open(data, len, NULL, &e);
	if (!r)
		return 0;
	const struct gtr_generation *g;
	size_t n = 0;
	while (gtr_next_generation(r, &g) == GTR_OK && n < max)
		ends[n++] = g->end;
	gtr_close(r);
	return n;
}

/* A trace written by the Go 1.23 runtime (Frequency batch first in each
 * generation, stack and string tables last), several generations thanks to
 * GODEBUG=traceadvanceperiod. */
static const char go_prog[] =
	"package main\n"
	"\n"
	"import (\n"
	"\t\"context\"\n"
	"\t\"os\"\n"
	"\t\"runtime/trace\"\n"
	"\t\"sync\"\n"
	"\t\"time\"\n"
	")\n"
	"\n"
	"func main() {\n"
	"\tf, err := os.Create(os.Args[1])\n"
	"\tif err != nil {\n"
	"\t\tpanic(err)\n"
	"\t}\n"
	"\tif err := trace.Start(f); err != nil {\n"
	"\t\tpanic(err)\n"
	"\t}\n"
	"\tctx, task := trace.NewTask(context.Background(), \"cut test\")\n"
	"\tvar wg sync.WaitGroup\n"
	"\tfor i := 0; i < 2; i++ {\n"
	"\t\twg.Add(1)\n"
	"\t\tgo func() {\n"
	"\t\t\tdefer wg.Done()\n"
	"\t\t\tfor k := 0; k < 3; k++ {\n"
	"\t\t\t\ttrace.WithRegion(ctx, \"work\", func() {\n"
	"\t\t\t\t\ttrace.Log(ctx, \"k\", \"step\")\n"
	"\t\t\t\t\ttime.Sleep(2 * time.Millisecond)\n"
	"\t\t\t\t})\n"
	"\t\t\t}\n"
	"\t\t}()\n"
	"\t}\n"
	"\twg.Wait()\n"
	"\ttask.End()\n"
	"\ttrace.Stop()\n"
	"\tif err := f.Close(); err != nil {\n"
	"\t\tpanic(err)\n"
	"\t}\n"
	"}\n";

void make_go_trace(const char *path)
{
	char *dir = tmp_dir("goprog");
	char *src, *mod;
	if (asprintf(&src, "%s/main.go", dir) < 0 || asprintf(&mod, "%s/go.mod", dir) < 0)
		abort();
	write_file(src, go_prog, strlen(go_prog));
	write_file(mod, "module cuttest\n\ngo 1.23\n", 24);
	int rc = run(NULL,
		     "cd '%s' && GOTOOLCHAIN=local GOFLAGS= GOCACHE='%s' GODEBUG=traceadvanceperiod=2000000 "
		     "'%s/bin/go' run . '%s' >&2",
		     dir, env_need("GOTRACE_GOCACHE"), env_need("GOTRACE_GO123_ROOT"), path);
	if (rc != 0) {
		fprintf(stderr, "FATAL: running a Go program to write a trace failed\n");
		exit(99);
	}
	unlink(src);
	unlink(mod);
	rmdir(dir);
	free(src);
	free(mod);
	free(dir);
}

/* ------------------------------------------------------------ building */

void uv(struct buf *b, uint64_t v)
{
	uint8_t t[10];
	int n = 0;
	while (v >= 0x80) {
		t[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	t[n++] = (uint8_t)v;
	buf_put(b, t, (size_t)n);
}

void ev(struct buf *b, int type, ...)
{
	uint8_t t = (uint8_t)type;
	buf_put(b, &t, 1);
	va_list ap;
	va_start(ap, type);
	for (uint64_t a; (a = va_arg(ap, uint64_t)) != END;)
		uv(b, a);
	va_end(ap);
}

void str(struct buf *b, uint64_t id, const char *s)
{
	ev(b, 5, id, (uint64_t)strlen(s), END);
	buf_put(b, s, strlen(s));
}

void batch(struct buf *t, uint64_t gen, uint64_t m, uint64_t time, const struct buf *p)
{
	ev(t, 1, gen, m, time, (uint64_t)p->n, END);
	buf_put(t, p->p, p->n);
}
