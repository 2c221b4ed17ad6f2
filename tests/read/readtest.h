/*
 * Support for the reader tests: Go's view of a trace (tracecheck -digest /
 * -prefixes, gotraceraw), the C reader's view in the same "digest" form,
 * and the rules that compare them.
 */
#ifndef GT_READTEST_H
#define GT_READTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gtread.h"

/* ------------------------------------------------------------ files, commands */

struct buf {
	uint8_t *p;
	size_t n, cap;
};
void buf_put(struct buf *b, const void *p, size_t n);
void buf_free(struct buf *b);

/* Whole file into *b (0 on success). */
int read_file(const char *path, struct buf *b);
void write_file(const char *path, const void *p, size_t n);
/* Runs a shell command; its stdout into *out (may be NULL); returns the exit
 * status (or -1).  Command built with printf-style arguments. */
int run(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Environment set by CTest, or exit(99). */
const char *env_need(const char *name);
const char *tracecheck_bin(const char *which); /* "go1.23" or "new" */
char *tmp_dir(const char *tag);                 /* fresh directory under $TMPDIR */

/* ------------------------------------------------------------ digests */

/* A digest line "gens=G events=n1,..,nG tail=T err=SRC:MSG" (tools/tracecheck
 * digest.go) parsed. */
struct digest {
	size_t gens;
	uint64_t events[64]; /* per generation (first 64) */
	uint64_t tail;
	bool err;
	char src[16];   /* reader, validator, panic */
	char msg[2048]; /* first line, control bytes as \xNN (gtr_errstr) */
	bool go_sees_eof;  /* C side: the error is one Go takes for a clean end */
	bool go123_accepts; /* C side: Go 1.23 accepts this, newer Go does not */
	int kind;          /* C side: enum gtr_errkind */
};

int digest_parse(const char *line, struct digest *d);
/* The C reader's digest of data[0..len). */
void digest_c(const uint8_t *data, size_t len, struct digest *d);
/* Go's digests of files (one tracecheck process): out[i] for files[i]. */
void digest_go(const char *which, char **files, size_t n, struct digest *out);
/* Go's digests of every prefix of a file: returns len+1 entries (free()). */
struct digest *digest_go_prefixes(const char *which, const char *file, size_t len);
void digest_print(const char *label, const struct digest *d);

/* Whether a Go error message is one of the structural problems the C
 * reader checks (framing, tables, events, references); otherwise it comes
 * from Go's ordering (scheduler state machine) or validator. */
bool go_error_structural(const struct digest *go);

/*
 * Compares the C reader's digest with Go's.  exact: compare error texts too
 * (Go 1.23, whose wording the C reader copies).
 *  AGREE_EXACT: same generations, same events in each, and either no error
 *    on both sides or the same error (a CPU sample with an unknown stack is a
 *    panic in Go; an error Go takes for a clean end -- go_sees_eof -- matches
 *    no error; one only newer Go reports -- go123_accepts -- matches Go 1.23
 *    reading on; without exact, any error matches any error);
 *  AGREE_PLACE: same generations and events, both fail in the next
 *    generation, but Go met another problem there first (its ordering or
 *    validator, or another bad reference in its delivery order);
 *  SEMANTIC_MISS: Go failed in ordering/validation (the scheduler state
 *    machine the C reader does not replay) in a generation the C reader
 *    delivered; the generations before agree;
 *  DISAGREE: anything else (why says what).
 * Go may have delivered part of the failing generation ("tail"): ignored.
 */
enum agree { AGREE_EXACT, AGREE_PLACE, SEMANTIC_MISS, DISAGREE };
enum agree digest_agree(const struct digest *c, const struct digest *go, bool exact, char *why,
			size_t whylen);

/* ------------------------------------------------------------ traces */

/* A multi-generation trace written by libgotrace: nthreads threads each
 * emitting rounds of task/regions/log events; gotrace_flush() between
 * phases ends generations deterministically (ngens phases). */
void make_lib_trace(const char *path, int nthreads, int rounds, int ngens);

/* A trace written by the Go 1.23 runtime (a small Go program with tasks,
 * regions, logs and sleeps; several generations thanks to
 * GODEBUG=traceadvanceperiod).  Its generations start with the Frequency
 * batch and end with the stack and string tables. */
void make_go_trace(const char *path);

/* Generation boundaries of a valid trace: ends[i] = end offset of the i-th
 * generation; returns the count. */
size_t gen_ends(const uint8_t *data, size_t len, uint64_t *ends, size_t max);


/* Hand-made traces (readtest.c): uv appends a uvarint; ev(b, type, args...,
 * END) an event; str a String event (id, text); batch an EventBatch header
 * (gen, m, time, size of p) followed by p. */
#define END UINT64_C(0xDEADBEEFDEADBEEF)
void uv(struct buf *b, uint64_t v);
void ev(struct buf *b, int type, ...);
void str(struct buf *b, uint64_t id, const char *s);
void batch(struct buf *t, uint64_t gen, uint64_t m, uint64_t time, const struct buf *p);

#endif
