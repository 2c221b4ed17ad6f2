/*
 * internal.h: shared pieces of the trace reader (not installed).
 */
#ifndef GTREAD_INTERNAL_H
#define GTREAD_INTERNAL_H

#include "gtread.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ event specs */

#define GTR_NSPECS 137 /* Go's table: types 0..136 (50..127 empty) */
#define GTR_SPEC_MAXARGS 5

enum { GTR_SPEC_TIMED = 1, GTR_SPEC_DATA = 2, GTR_SPEC_STACK = 4 };

struct gtr_spec {
	const char *name; /* NULL: an empty slot of Go's table */
	uint8_t flags;
	uint8_t nargs;    /* including dt for timed events */
	const char *args[GTR_SPEC_MAXARGS];
	uint8_t nstack, stack[2];   /* positions in args (dt = 0) of stack IDs */
	uint8_t nstring, string[2]; /* ... of string IDs */
};

extern const struct gtr_spec gtr_specs[GTR_NSPECS];

enum {
	EV_BATCH = 1, EV_STACKS = 2, EV_STACK = 3, EV_STRINGS = 4, EV_STRING = 5,
	EV_CPUSAMPLES = 6, EV_CPUSAMPLE = 7, EV_FREQUENCY = 8, EV_EXPBATCH = 49,
};

/* --------------------------------------------------------------- uvarints */

/* Go's binary.ReadUvarint over [*p, end): returns 0 and advances *p, or an
 * error code (the bytes read are consumed, as with a ByteReader). */
enum { UV_OK = 0, UV_EOF = 1, UV_UNEXPECTED_EOF = 2, UV_OVERFLOW = 3 };

static inline int gtr_read_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	unsigned s = 0;
	const uint8_t *q = *p;
	for (int i = 0; i < 10; i++) {
		if (q == end) {
			*p = q;
			*v = x;
			return i > 0 ? UV_UNEXPECTED_EOF : UV_EOF;
		}
		uint8_t b = *q++;
		if (b < 0x80) {
			*p = q;
			if (i == 9 && b > 1)
				return UV_OVERFLOW;
			*v = x | (uint64_t)b << s;
			return UV_OK;
		}
		x |= (uint64_t)(b & 0x7f) << s;
		s += 7;
	}
	*p = q;
	*v = x;
	return UV_OVERFLOW;
}

/* Go's text for a ReadUvarint error. */
static inline const char *gtr_uv_errstr(int rc)
{
	switch (rc) {
	case UV_EOF:
		return "EOF";
	case UV_UNEXPECTED_EOF:
		return "unexpected EOF";
	default:
		return "binary: varint overflows a 64-bit integer";
	}
}

/* Go's binary.Uvarint on a slice: bytes used (> 0), 0 if the slice ends
 * first, < 0 on overflow. */
static inline int gtr_uvarint_slice(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	unsigned s = 0;
	for (int i = 0; p + i < end; i++) {
		uint8_t b = p[i];
		if (i == 10)
			return -(i + 1);
		if (b < 0x80) {
			if (i == 9 && b > 1)
				return -(i + 1);
			*v = x | (uint64_t)b << s;
			return i + 1;
		}
		x |= (uint64_t)(b & 0x7f) << s;
		s += 7;
	}
	return 0;
}

/* ----------------------------------------------------------------- header */

/* Parses the header like Go's fmt.Fscanf(r, "go 1.%d trace\x00\x00\x00").
 * Returns 0 with *version and *hdrlen, or -1 (not a trace) / -2 (version
 * unsupported by Go: *version set). */
int gtr_parse_header(const uint8_t *buf, size_t len, unsigned *version, size_t *hdrlen);
bool gtr_version_known(unsigned v); /* 11, 19, 21, 22, 23 */

/* ----------------------------------------------------------------- errors */

void gtr_seterr(struct gtr_error *e, enum gtr_errkind kind, uint64_t gen, uint64_t off,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Appends Go's %v of a byte string (raw bytes) to a bounded buffer. */

/* -------------------------------------------------------------- hash map */

/* Open addressing, uint64 key -> uint32 value. */
struct gtr_map {
	uint64_t *keys;
	uint32_t *vals;
	uint8_t *used;
	size_t cap, n; /* cap: power of two or 0 */
};

void gtr_map_clear(struct gtr_map *m);  /* keeps the memory */
void gtr_map_free(struct gtr_map *m);
/* Returns a pointer to the value of key, inserting it (value 0) if absent
 * (*added set); NULL on allocation failure. */
uint32_t *gtr_map_put(struct gtr_map *m, uint64_t key, bool *added);
const uint32_t *gtr_map_get(const struct gtr_map *m, uint64_t key);

/* ------------------------------------------------------------ growth */

/* Ensures room for n more elements of size sz in *arr (count *len, capacity
 * *cap); returns false on allocation failure. */
bool gtr_grow(void **arr, size_t *cap, size_t len, size_t n, size_t sz);

/* ------------------------------------------------------------ time */

/* Go: Time(float64(t) * nsPerTick), with amd64's conversion of values out
 * of int64 range (INT64_MIN) instead of C's undefined behaviour. */
int64_t gtr_ticks_to_ns(uint64_t t, double ns_per_tick);

#endif
