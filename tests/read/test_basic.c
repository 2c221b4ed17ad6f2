/*
 * The reader on hand-made traces: every check, every error message, the
 * broken-tail policy, the API (events, Syncs, tables), the tool's commands
 * and exit codes.  Every damaged trace here is also given to Go 1.23's and
 * the newest Go's reader + validator, which must agree (tracecheck -digest).
 */
#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "readtest.h"

#define NONE UINT64_MAX

static char *dir;

enum { F_NOFREQ = 1, F_DUPSTR = 2, F_BADREF = 4, F_SAMPLE_BADSTACK = 8, F_FRAME_BADSTR = 16, F_GEN3 = 32,
       F_FREQ_TRAILER = 64, F_STR0 = 128, F_BIGSTR = 256, F_BIGSTACK = 512, F_BADTYPE = 1024,
       F_UNTIMED = 2048, F_EMPTYGEN2 = 4096, F_DUPSTACK = 8192, F_STRTRUNC = 16384, F_GEN0 = 32768,
       F_DUPSTR_CTL = 65536 };

/* A valid two-generation trace (flags damage it in gen 2), with offsets of
 * the generation 2 start in *gen2. */
static void base(struct buf *t, unsigned flags, size_t *gen2)
{
	memset(t, 0, sizeof *t);
	buf_put(t, "go 1.23 trace\0\0\0", 16);
	struct buf p = { 0 };
	/* generation 1 */
	ev(&p, 13, 1, 0, 1, END);          /* ProcStatus p=0 Running */
	ev(&p, 25, 1, 1, 1, 2, END);       /* GoStatus g=1 m=1 Running */
	ev(&p, 40, 5, 1, 0, 1, 1, END);    /* UserTaskBegin task=1 parent=0 name=1 stack=1 */
	ev(&p, 44, 5, 1, 2, 3, 0, END);    /* UserLog task=1 key=2 value=3 */
	ev(&p, 42, 5, 1, 6, 1, END);       /* UserRegionBegin task=1 name=6 stack=1 */
	ev(&p, 43, 5, 1, 6, 1, END);       /* UserRegionEnd */
	ev(&p, 41, 5, 1, 0, END);          /* UserTaskEnd task=1 */
	batch(t, 1, 1, 1000, &p);
	buf_free(&p);
	ev(&p, 8, (uint64_t)1000000000, END);
	batch(t, 1, NONE, 1000, &p);
	buf_free(&p);
	ev(&p, 6, END);
	ev(&p, 7, 1003, 1, 0, 1, 1, END);
	ev(&p, 7, 1010, 1, NONE, 0, 0, END);
	batch(t, 1, NONE, 1000, &p);
	buf_free(&p);
	ev(&p, 2, END);
	ev(&p, 3, 1, 2, 0x1000, 4, 5, 10, 0x1068, 4, 5, 20, END);
	batch(t, 1, NONE, 1000, &p);
	buf_free(&p);
	ev(&p, 4, END);
	str(&p, 1, "my task");
	str(&p, 2, "category");
	str(&p, 3, "hello from C");
	str(&p, 4, "main");
	str(&p, 5, "/src/app.c");
	str(&p, 6, "my region");
	batch(t, 1, NONE, 1000, &p);
	buf_free(&p);
	*gen2 = t->n;
	/* generation 2 */
	uint64_t g2 = flags & F_GEN3 ? 3 : flags & F_GEN0 ? 0 : 2;
	if (!(flags & F_EMPTYGEN2)) {
		ev(&p, 13, 1, 0, 1, END);
		ev(&p, 25, 1, 1, 1, 2, END);
		ev(&p, 44, 5, 0, 1, flags & F_BADREF ? 99 : 2, 0, END); /* UserLog key=1 value=2 */
		if (flags & F_BADTYPE)
			ev(&p, 200, END);
		if (flags & F_UNTIMED)
			ev(&p, 8, 5, END);
		batch(t, g2, 1, 2000, &p);
		buf_free(&p);
	}
	ev(&p, 4, END);
	str(&p, 1, "k");
	str(&p, 2, "v");
	if (flags & F_DUPSTR)
		str(&p, 1, "again");
	if (flags & F_STR0)
		str(&p, 0, "zero");
	if (flags & F_DUPSTR_CTL) { /* a NUL and a newline: Go prints them raw */
		ev(&p, 5, 1, 5, END);
		buf_put(&p, "a\0b\nc", 5);
	}
	if (flags & F_BIGSTR) {
		char big[1100];
		memset(big, 'x', sizeof big - 1);
		big[sizeof big - 1] = 0;
		str(&p, 9, big);
	}
	if (flags & F_STRTRUNC)
		ev(&p, 5, END); /* a String event cut after its type byte */
	batch(t, g2, NONE, 2000, &p);
	buf_free(&p);
	if (flags & (F_BIGSTACK | F_FRAME_BADSTR | F_DUPSTACK | F_SAMPLE_BADSTACK)) {
		ev(&p, 2, END);
		if (flags & F_BIGSTACK) {
			ev(&p, 3, 1, 129, END);
			for (int i = 0; i < 129; i++)
				ev(&p, 0, (uint64_t)i + 1, 1, 2, 3, END);
		}
		if (flags & F_FRAME_BADSTR)
			ev(&p, 3, 2, 1, 0x2000, 77, 2, 5, END);
		if (flags & F_DUPSTACK) {
			ev(&p, 3, 3, 1, 0x3000, 1, 2, 5, END);
			ev(&p, 3, 3, 1, 0x3001, 1, 2, 6, END);
		}
		batch(t, g2, NONE, 2000, &p);
		buf_free(&p);
	}
	if (flags & F_SAMPLE_BADSTACK) {
		ev(&p, 6, END);
		ev(&p, 7, 2001, 1, 0, 1, 9, END);
		batch(t, g2, NONE, 2000, &p);
		buf_free(&p);
	}
	if (!(flags & F_NOFREQ)) {
		ev(&p, 8, (uint64_t)1000000000, END);
		if (flags & F_FREQ_TRAILER)
			ev(&p, 7, END);
		batch(t, g2, NONE, 2000, &p);
		buf_free(&p);
	}
}

/* ------------------------------------------------------------ checking */

struct expect {
	const char *name;
	struct buf t;
	int gens;        /* generations delivered */
	const char *msg; /* NULL: no error */
	bool deferred;
	bool exact_go;   /* Go 1.23 must report the same text */
};

#define MAXCASES 64
static struct expect cases[MAXCASES];
static int ncases;

static struct expect *add(const char *name, int gens, const char *msg, bool deferred)
{
	struct expect *e = &cases[ncases++];
	e->name = name;
	e->gens = gens;
	e->msg = msg;
	e->deferred = deferred;
	e->exact_go = true;
	return e;
}

static void check_c(const struct expect *x)
{
	struct gtr_error e;
	struct gtr_reader *r = gtr_open(x->t.p, x->t.n, NULL, &e);
	int gens = 0;
	int rc = GTR_ERR;
	if (r) {
		struct gtr_event ev;
		bool synced = false;
		while ((rc = gtr_next_event(r, &ev, NULL)) == GTR_OK) {
			synced = ev.type == GTR_EV_SYNC;
			gens += synced;
		}
		/* a Sync always comes right before the end or a deferred error */
		if (gens && (rc == GTR_END || gtr_reader_error(r)->deferred))
			assert_true(synced);
		e = *gtr_reader_error(r);
		gtr_close(r);
	}
	if (gens != x->gens || (x->msg == NULL) != (rc == GTR_END) ||
	    (x->msg && (strncmp(e.msg, x->msg, strlen(x->msg)) ||
			(e.msg[strlen(x->msg)] != 0 && e.msg[strlen(x->msg)] != '\n') ||
			e.deferred != x->deferred))) {
		fprintf(stderr, "%s: got %d generations, rc %d, '%s' (deferred %d); want %d, '%s' (%d)\n",
			x->name, gens, rc, e.msg, e.deferred, x->gens, x->msg ? x->msg : "(none)", x->deferred);
		fail();
	}
}

static void test_policy_and_messages(void **state)
{
	(void)state;
	size_t g2;
	struct expect *x;
	x = add("valid", 2, NULL, false);
	base(&x->t, 0, &g2);

	/* deferred: errors while looking for the end of generation 1 */
	x = add("cut in gen 2's first batch header", 1, "error reading batch timestamp: EOF", true);
	base(&x->t, 0, &g2);
	x->t.n = g2 + 3; /* 01 gen m | */
	x = add("cut in gen 2's first batch payload", 1, "failed to read full batch: read 2 but wanted 15", true);
	base(&x->t, 0, &g2);
	x->t.n = g2 + 8;
	x = add("gen 2's first batch claims 65537 bytes", 1, "invalid batch size 65537, maximum is 65536", true);
	base(&x->t, 0, &g2);
	x->t.n = g2;
	ev(&x->t, 1, 2, 1, 2000, 65537, END);
	x = add("garbage byte after the last generation", 2, "expected batch event, got CPUSample", true);
	base(&x->t, 0, &g2);
	buf_put(&x->t, "\x07", 1);
	x = add("last byte missing", 1, "no frequency event found", false);
	base(&x->t, 0, &g2);
	x->t.n--;

	/* fatal for the generation being read: earlier ones are delivered */
	x = add("no frequency", 1, "no frequency event found", false);
	base(&x->t, F_NOFREQ, &g2);
	x = add("duplicate string", 1, "multiple strings with the same ID: id=1, new=again, existing=k", false);
	base(&x->t, F_DUPSTR, &g2);
	x = add("duplicate string with control bytes", 1,
		"multiple strings with the same ID: id=1, new=a\\x00b\\x0ac, existing=k", false);
	base(&x->t, F_DUPSTR_CTL, &g2);
	x = add("string ID 0", 1, "multiple strings with the same ID: id=0, new=zero, existing=", false);
	base(&x->t, F_STR0, &g2);
	x = add("string too long", 1, "invalid string size 1099, maximum is 1024", false);
	base(&x->t, F_BIGSTR, &g2);
	x = add("stack too deep", 1, "invalid stack size 129, maximum is 128", false);
	base(&x->t, F_BIGSTACK, &g2);
	x = add("duplicate stack", 1,
		"multiple trace.stacks with the same ID: id=3, new=\t0x3001\n, existing=\t0x3000\n", false);
	base(&x->t, F_DUPSTACK, &g2);
	x = add("frame with unknown string", 1, "found invalid func string ID 77 for stack 2", false);
	base(&x->t, F_FRAME_BADSTR, &g2);
	x = add("event with unknown string", 1, "found invalid string ID 99 for event UserLog", false);
	base(&x->t, F_BADREF, &g2);
	x = add("CPU sample with unknown stack", 1, "found invalid stack ID 9 for event CPUSample", false);
	base(&x->t, F_SAMPLE_BADSTACK, &g2);
	x = add("invalid event type", 1, "found invalid event type: 200", false);
	base(&x->t, F_BADTYPE, &g2);
	x = add("untimed event in an event batch", 1, "found event without a timestamp: type=8", false);
	base(&x->t, F_UNTIMED, &g2);
	x = add("generation 3 after 1", 0, "generations out of order", false);
	base(&x->t, F_GEN3, &g2);
	x = add("generation 0", 0, "invalid generation number 0", false);
	base(&x->t, F_GEN0, &g2);
	x = add("generation without events", 1, "broken trace: frontier is empty:", false);
	base(&x->t, F_EMPTYGEN2, &g2);
	/* Go takes these for a clean end, or accepts them (Go 1.23) */
	x = add("string event cut in a strings batch", 1, "EOF", false);
	base(&x->t, F_STRTRUNC, &g2);
	x = add("frequency batch with a trailer", 1, "expected frequency or clock snapshot event, got 7", false);
	base(&x->t, F_FREQ_TRAILER, &g2);
	x = add("lone ExperimentalBatch byte at the end", 2, "error reading experimental batch header: EOF", true);
	base(&x->t, 0, &g2);
	buf_put(&x->t, "\x31", 1);

	/* headers */
	x = add("empty file", 0, "bad file format: not a Go execution trace?", false);
	buf_put(&x->t, "", 0);
	x = add("not a trace", 0, "bad file format: not a Go execution trace?", false);
	buf_put(&x->t, "hello world, this is not a trace", 32);
	x = add("version 1.25", 0, "unknown or unsupported trace version go 1.25", false);
	buf_put(&x->t, "go 1.25 trace\0\0\0", 16);
	x->exact_go = false; /* the newest Go reads it */
	x = add("version 1.21", 0,
		"unsupported trace version go 1.21: it uses the pre-1.22 format, which this reader does not "
		"read",
		false);
	buf_put(&x->t, "go 1.21 trace\0\0\0", 16);
	x->exact_go = false; /* Go reads the old format */
	x = add("header only", 0, "no frequency event found", false);
	buf_put(&x->t, "go 1.23 trace\0\0\0", 16);
	{
		/* Go's Fscanf accepts more spaces and leading zeros */
		size_t g;
		struct buf v;
		base(&v, 0, &g);
		x = add("header with extra spaces and zeros", 2, NULL, false);
		buf_put(&x->t, "go  1.0023 \t trace\0\0\0", 21);
		buf_put(&x->t, v.p + 16, v.n - 16);
		buf_free(&v);
	}

	char *files[MAXCASES];
	for (int i = 0; i < ncases; i++) {
		check_c(&cases[i]);
		if (asprintf(&files[i], "%s/case-%02d.trace", dir, i) < 0)
			abort();
		write_file(files[i], cases[i].t.p, cases[i].t.n);
	}
	/* Go agrees */
	struct digest g123[MAXCASES], gnew[MAXCASES];
	digest_go("go1.23", files, (size_t)ncases, g123);
	digest_go("new", files, (size_t)ncases, gnew);
	int bad = 0;
	for (int i = 0; i < ncases; i++) {
		struct digest c;
		digest_c(cases[i].t.p, cases[i].t.n, &c);
		char why[128];
		enum agree a = digest_agree(&c, &g123[i], true, why, sizeof why);
		enum agree an = digest_agree(&c, &gnew[i], false, why + 64, sizeof why - 64);
		if ((cases[i].exact_go && a != AGREE_EXACT) || (cases[i].exact_go && an != AGREE_EXACT)) {
			fprintf(stderr, "%s: Go disagrees (%s / %s)\n", cases[i].name, why, why + 64);
			digest_print("C     ", &c);
			digest_print("go1.23", &g123[i]);
			digest_print("new   ", &gnew[i]);
			bad++;
		}
		unlink(files[i]);
		free(files[i]);
	}
	printf("%d hand-made traces: C reader as expected; Go 1.23 and the newest Go agree on all\n", ncases);
	for (int i = 0; i < ncases; i++)
		buf_free(&cases[i].t);
	assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------ API */

static void test_api(void **state)
{
	(void)state;
	size_t g2;
	struct buf t;
	base(&t, 0, &g2);
	struct gtr_error e;
	struct gtr_reader *r = gtr_open(t.p, t.n, NULL, &e);
	assert_non_null(r);
	assert_int_equal(gtr_version(r), 23);
	assert_int_equal(gtr_header_len(r), 16);
	const struct gtr_generation *g;
	struct gtr_event e1;
	/* generation 1: 7 events and 2 samples in Go's order (by time), then Sync */
	static const uint8_t want1[] = { 13, 25, GTR_EV_CPUSAMPLE, 40, GTR_EV_CPUSAMPLE, 44, 42, 43, 41,
					 GTR_EV_SYNC };
	for (size_t i = 0; i < sizeof want1; i++) {
		assert_int_equal(gtr_next_event(r, &e1, &g), GTR_OK);
		assert_int_equal(e1.type, want1[i]);
		assert_int_equal(e1.gen, 1);
		if (i == 0) {
			assert_int_equal(g->gen, 1);
			assert_int_equal(g->begin, 16);
			assert_int_equal(g->end, g2);
			assert_int_equal(g->freq, 1000000000);
			assert_int_equal(g->nsamples, 2);
			assert_int_equal(g->nstrings, 6);
			assert_int_equal(g->nstacks, 1);
			assert_int_equal(g->nthreads, 1);
			assert_int_equal(e1.ts, 1001);
			assert_int_equal(e1.time_ns, 1001);
			assert_int_equal(e1.m, 1);
			assert_int_equal(e1.p, GTR_NONE); /* before: the context it applies in */
			assert_int_equal(e1.nargs, 2);
			assert_int_equal(e1.args[0], 0);
			assert_int_equal(e1.args[1], 1);
			assert_int_equal(e1.args[2], 0); /* Go's old state: undetermined */
			const char *s;
			size_t n;
			assert_true(gtr_string(g, 3, &s, &n));
			assert_int_equal(n, 12);
			assert_memory_equal(s, "hello from C", 12);
			assert_true(gtr_string(g, 0, &s, &n));
			assert_int_equal(n, 0);
			assert_false(gtr_string(g, 7, &s, &n));
			const struct gtr_frame *f;
			assert_true(gtr_stack(g, 1, &f, &n));
			assert_int_equal(n, 2);
			assert_int_equal(f[1].pc, 0x1068);
			assert_int_equal(f[1].line, 20);
			assert_false(gtr_stack(g, 2, &f, &n));
		}
		if (want1[i] == 40) {
			assert_int_equal(e1.ts, 1007);
			assert_int_equal(e1.args[1], GTR_NONE); /* parent 0 means none */
			assert_int_equal(e1.args[2], 1);
			assert_int_equal(e1.size, 6);
			assert_int_equal(e1.m, 1);
			assert_int_equal(e1.p, 0);
			assert_int_equal(e1.g, 1);
		}
		if (i == 2) {
			assert_int_equal(e1.ts, 1003);
			assert_int_equal(e1.m, 1);
			assert_int_equal(e1.args[3], 1);
		}
		if (want1[i] == GTR_EV_SYNC) {
			assert_int_equal(g->nevents, 7);
			assert_int_equal(e1.time_ns, 1028); /* after the last event */
		}
	}
	/* generation 2 by generation */
	assert_int_equal(gtr_next_generation(r, &g), GTR_OK);
	assert_int_equal(g->gen, 2);
	assert_int_equal(g->end, t.n);
	assert_int_equal(gtr_next_generation(r, &g), GTR_END);
	assert_int_equal(gtr_next_event(r, &e1, NULL), GTR_END);
	gtr_close(r);

	/* wire order: file order, samples where their batch is */
	struct gtr_options wo = { .wire_order = true };
	r = gtr_open(t.p, t.n, &wo, &e);
	assert_non_null(r);
	static const uint8_t want2[] = { 13, 25, 40, 44, 42, 43, 41, GTR_EV_CPUSAMPLE, GTR_EV_CPUSAMPLE,
					 GTR_EV_SYNC, 13, 25, 44, GTR_EV_SYNC };
	for (size_t i = 0; i < sizeof want2; i++) {
		assert_int_equal(gtr_next_event(r, &e1, &g), GTR_OK);
		assert_int_equal(e1.type, want2[i]);
		if (i == 0)
			assert_int_equal(g->nevents, 7);
	}
	assert_int_equal(gtr_next_event(r, &e1, NULL), GTR_END);
	gtr_close(r);

	/* salvage of a cut trace, and of an intact one */
	struct gtr_salvage s;
	assert_int_equal(gtr_salvage_plan(t.p, t.n - 1, &s), GTR_OK);
	assert_int_equal(s.keep_len, g2);
	assert_int_equal(s.gens_kept, 1);
	assert_int_equal(s.events_kept, 9);
	assert_int_equal(s.dropped_len, t.n - 1 - g2);
	assert_string_equal(s.why.msg, "no frequency event found");
	assert_int_equal(gtr_salvage_plan(t.p, t.n, &s), GTR_OK);
	assert_int_equal(s.keep_len, t.n);
	assert_int_equal(s.why.kind, GTR_ENONE);
	assert_int_equal(gtr_salvage_plan(t.p, g2 - 1, &s), GTR_ERR);
	assert_int_equal(s.keep_len, 0);
	/* generations out of order: Go's reader gives up on generation 1,
	 * salvage keeps it */
	struct buf o;
	base(&o, F_GEN3, &g2);
	assert_int_equal(gtr_salvage_plan(o.p, o.n, &s), GTR_OK);
	assert_int_equal(s.keep_len, g2);
	assert_string_equal(s.why.msg, "generations out of order");
	/* a batch known to belong to the delivered generation failed to read:
	 * that generation is dropped */
	struct buf c = { 0 };
	buf_put(&c, t.p, g2);
	ev(&c, 1, 1, NONE, 1000, 40, END); /* gen 1 batch whose payload is missing */
	assert_int_equal(gtr_salvage_plan(c.p, c.n, &s), GTR_ERR);
	assert_true(s.why.cuts_previous);
	assert_int_equal(s.gens_dropped, 1);
	buf_free(&c);
	buf_free(&o);

	/* stats */
	struct gtr_stats st;
	assert_int_equal(gtr_stats_compute(t.p, t.n, &st), GTR_END);
	assert_int_equal(st.gens, 2);
	assert_int_equal(st.events, 10);
	assert_int_equal(st.samples, 2);
	assert_int_equal(st.samples_no_stack, 1);
	assert_int_equal(st.count[44], 2);
	assert_int_equal(st.count[13], 2);
	assert_int_equal(st.strings, 8);
	assert_int_equal(st.stacks, 1);
	assert_int_equal(st.frames, 2);
	assert_int_equal(st.nthreads, 1);
	assert_int_equal(st.threads[0].m, 1);
	assert_int_equal(st.threads[0].events, 10);
	assert_int_equal(st.first_ns, 1001);
	gtr_stats_free(&st);
	buf_free(&t);
}

static int sink(void *ctx, const void *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
	return 0;
}

/* Huge claimed sizes and counts cost nothing: they are checked against
 * the limits and the input before anything is allocated. */
static void test_huge_claims(void **state)
{
	(void)state;
	struct buf t = { 0 };
	buf_put(&t, "go 1.23 trace\0\0\0", 16);
	ev(&t, 1, 1, 1, 1, UINT64_C(1) << 60, END);
	struct gtr_salvage s;
	assert_int_equal(gtr_salvage_plan(t.p, t.n, &s), GTR_ERR);
	assert_string_equal(s.why.msg, "invalid batch size 1152921504606846976, maximum is 65536");
	buf_free(&t);
	/* raw dump: a String claiming 2^62 bytes, a Stack claiming 2^61 frames */
	buf_put(&t, "go 1.23 trace\0\0\0", 16);
	ev(&t, 5, 1, UINT64_C(1) << 62, END);
	struct gtr_error e;
	struct buf out = { 0 };
	assert_int_equal(gtr_dump(t.p, t.n, sink, NULL, &e), GTR_ERR);
	buf_free(&t);
	buf_put(&t, "go 1.23 trace\0\0\0", 16);
	ev(&t, 3, 1, UINT64_C(1) << 61, 1, 2, 3, END);
	assert_int_equal(gtr_dump(t.p, t.n, sink, NULL, &e), GTR_ERR);
	assert_string_equal(e.msg, "EOF");
	assert_true(e.go_sees_eof);
	buf_free(&t);
	buf_free(&out);
}

/* ------------------------------------------------------------ the tool */

static int tool(const char *args)
{
	return run(NULL, "'%s' %s >/dev/null 2>&1", env_need("GOTRACE_READ_TOOL"), args);
}

static void test_tool(void **state)
{
	(void)state;
	size_t g2;
	struct buf t;
	base(&t, 0, &g2);
	char *ok, *cut, *junk, *v25, *out, *cmd;
	if (asprintf(&ok, "%s/ok.trace", dir) < 0 || asprintf(&cut, "%s/cut.trace", dir) < 0 ||
	    asprintf(&junk, "%s/junk", dir) < 0 || asprintf(&v25, "%s/v25.trace", dir) < 0 ||
	    asprintf(&out, "%s/out.trace", dir) < 0)
		abort();
	write_file(ok, t.p, t.n);
	write_file(cut, t.p, t.n - 3);
	write_file(junk, "#!/bin/sh\necho hello\n", 21);
	write_file(v25, "go 1.25 trace\0\0\0", 16);
	static const char *const cmds[] = { "dump", "stats", "check" };
	for (int i = 0; i < 3; i++) {
		if (asprintf(&cmd, "%s '%s'", cmds[i], ok) < 0)
			abort();
		assert_int_equal(tool(cmd), 0);
		free(cmd);
		if (asprintf(&cmd, "%s '%s/missing'", cmds[i], dir) < 0)
			abort();
		assert_int_equal(tool(cmd), 3);
		free(cmd);
		if (asprintf(&cmd, "%s '%s'", cmds[i], junk) < 0)
			abort();
		assert_int_equal(tool(cmd), 4);
		free(cmd);
		if (asprintf(&cmd, "%s '%s'", cmds[i], v25) < 0)
			abort();
		assert_int_equal(tool(cmd), 5);
		free(cmd);
		if (asprintf(&cmd, "%s '%s'", cmds[i], dir) < 0)
			abort();
		assert_int_equal(tool(cmd), 3);
		free(cmd);
	}
	/* damaged: stats and check say so; dump prints all (raw) */
	if (asprintf(&cmd, "check '%s'", cut) < 0)
		abort();
	assert_int_equal(tool(cmd), 1);
	free(cmd);
	if (asprintf(&cmd, "stats - < '%s'", cut) < 0)
		abort();
	assert_int_equal(tool(cmd), 1);
	free(cmd);
	assert_int_equal(tool(""), 2);
	assert_int_equal(tool("frobnicate x"), 2);
	assert_int_equal(tool("salvage onlyone"), 2);
	assert_int_equal(tool("--help"), 0);
	/* salvage */
	if (asprintf(&cmd, "salvage '%s' '%s'", cut, out) < 0)
		abort();
	assert_int_equal(tool(cmd), 1);
	free(cmd);
	struct buf o;
	assert_int_equal(read_file(out, &o), 0);
	assert_int_equal(o.n, g2);
	assert_memory_equal(o.p, t.p, g2);
	buf_free(&o);
	if (asprintf(&cmd, "salvage '%s' '%s'", ok, out) < 0)
		abort();
	assert_int_equal(tool(cmd), 0);
	free(cmd);
	assert_int_equal(read_file(out, &o), 0);
	assert_int_equal(o.n, t.n);
	buf_free(&o);
	/* in place, and through pipes */
	if (asprintf(&cmd, "salvage '%s' '%s'", cut, cut) < 0)
		abort();
	assert_int_equal(tool(cmd), 1);
	free(cmd);
	assert_int_equal(read_file(cut, &o), 0);
	assert_int_equal(o.n, g2);
	buf_free(&o);
	struct buf piped = { 0 };
	assert_int_equal(run(&piped, "head -c %zu '%s' | '%s' salvage - - 2>/dev/null", t.n - 1, ok,
			     env_need("GOTRACE_READ_TOOL")),
			 1);
	assert_int_equal(piped.n, g2);
	buf_free(&piped);
	/* nothing to salvage */
	if (asprintf(&cmd, "salvage '%s' '%s/none.trace'", v25, dir) < 0)
		abort();
	assert_int_equal(tool(cmd), 5);
	free(cmd);
	write_file(cut, t.p, 40);
	if (asprintf(&cmd, "salvage '%s' '%s/none.trace'", cut, dir) < 0)
		abort();
	assert_int_equal(tool(cmd), 6);
	free(cmd);
	char *none;
	if (asprintf(&none, "%s/none.trace", dir) < 0)
		abort();
	assert_int_equal(access(none, F_OK), -1);
	free(none);
	/* stats output mentions what it should */
	struct buf so = { 0 };
	assert_int_equal(run(&so, "'%s' stats '%s'", env_need("GOTRACE_READ_TOOL"), ok), 0);
	assert_non_null(strstr((char *)so.p, "generations     2 complete (1..2)"));
	assert_non_null(strstr((char *)so.p, "cpu samples     2 (1 without a stack"));
	assert_non_null(strstr((char *)so.p, "UserLog"));
	buf_free(&so);
	unlink(ok);
	unlink(cut);
	unlink(junk);
	unlink(v25);
	unlink(out);
	free(ok);
	free(cut);
	free(junk);
	free(v25);
	free(out);
	buf_free(&t);
}

static int setup(void **state)
{
	(void)state;
	dir = tmp_dir("basic");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rmdir(dir);
	free(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_and_messages),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_huge_claims),
		cmocka_unit_test(test_tool),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
