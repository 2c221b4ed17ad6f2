/*
 * base/error.h: filling a struct gtr_error (the public error record of
 * include/gtread.h) and quoting trace bytes for its message.  Calls only the C library.
 */
#ifndef GTREAD_BASE_ERROR_H
#define GTREAD_BASE_ERROR_H

#include "gtread.h"

#include <stddef.h>

/* Sets kind, generation, offset and the message; clears the flags.  e may
 * be NULL (nothing happens). */
void gtr_seterr(struct gtr_error *e, enum gtr_errkind kind, uint64_t gen, uint64_t off,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A trace's bytes s[0..n) as message text: control bytes (< 0x20, 0x7f)
 * become \xNN, every other byte is kept.  Go puts such strings into its
 * messages raw; a C string cannot hold a NUL and a terminal should not get
 * the rest, so the C messages differ from Go's exactly there (the reader
 * tests apply the same escape to Go's text before comparing).  Writes at
 * most cap bytes with the NUL (cap > 0); returns out. */
/* Room for any table string escaped by gtr_errstr. */
#define GTR_ERRSTR_CAP (4 * GTR_MAX_STRING_SIZE + 1)

const char *gtr_errstr(char *out, size_t cap, const void *s, size_t n);

#endif
