/*
 * Test support: judge traces with Go's own parsers and read what they saw.
 *
 * judge_trace() runs scripts/check-trace.sh (both strict validators and both
 * `go tool trace` parsers).  tsum_load() runs one tracecheck binary with
 * -summary and parses its lines (format: tools/tracecheck/main.go).  The
 * locations come from the environment set by CTest; if they are missing the
 * test fails loudly: a trace is never left unjudged.
 */
#ifndef GT_TEST_TRACECHECK_H
#define GT_TEST_TRACECHECK_H

#include <stddef.h>
#include <stdint.h>

#define TL_MAXKV 12

struct tline {
	char kind[16];
	int64_t gen, t, g, m, p;
	int nkv;
	char *key[TL_MAXKV];
	char *val[TL_MAXKV]; /* decoded (%XX unescaped) */
};

struct tsum {
	size_t n;
	struct tline *lines;
	char *buf;
};

/* 0 if every judge accepts the file; otherwise prints why and returns 1. */
int judge_trace(const char *path);

/* which: "go1.23" or "new".  Returns 0 on success (trace valid for it). */
int tsum_load(const char *path, const char *which, struct tsum *out);
void tsum_free(struct tsum *s);

const char *tl_get(const struct tline *l, const char *key);
int64_t tl_int(const struct tline *l, const char *key); /* INT64_MIN if absent */
size_t tsum_count(const struct tsum *s, const char *kind);

/* A fresh temporary path for a trace (under $TMPDIR), owned by the caller. */
char *tmp_trace_path(const char *tag);

/* Stress mode (scripts/stress.sh sets GOTRACE_TEST_STRESS=1): the
 * concurrency tests run with the smallest batch buffers (every few events
 * hand a chunk to the flusher) and, where the test does not count on
 * generation boundaries of its own, a 1 ms advance period.  A no-op
 * otherwise.  Returns 1 in stress mode. */
#define STRESS_BUFFERS 1  /* buffer_size 4096 */
#define STRESS_ADVANCE 2  /* advance_period_ns 1 ms */
struct gotrace_options;
int stress_options(struct gotrace_options *o, int what);

#endif
