/*
 * wire/spec.h: the event table of the go 1.22/1.23 trace format (Go's
 * internal/trace/event/go122 specs) and the decoding of one timed event
 * with it.  Calls wire/varint.h only.
 */
#ifndef GTREAD_WIRE_SPEC_H
#define GTREAD_WIRE_SPEC_H

#include <stddef.h>
#include <stdint.h>

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

/* Go's readTimedBaseEvent on [p, end) (p < end): the type, dt and the
 * arguments after dt (*nargs of them).  Returns the encoded size, or -1
 * with Go's message in msg. */
int gtr_decode_timed(const uint8_t *p, const uint8_t *end, uint8_t *type, uint64_t *dt, uint64_t args[4],
		     uint8_t *nargs, char *msg, size_t msgcap);

#endif
