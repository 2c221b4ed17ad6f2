/*
 * base/error.h: filling a struct gtr_error (the public error record of
 * include/gtread.h).  Calls only the C library.
 */
#ifndef GTREAD_BASE_ERROR_H
#define GTREAD_BASE_ERROR_H

#include "gtread.h"

/* Sets kind, generation, offset and the message; clears the flags.  e may
 * be NULL (nothing happens). */
void gtr_seterr(struct gtr_error *e, enum gtr_errkind kind, uint64_t gen, uint64_t off,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
