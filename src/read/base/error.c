/*
 * base/error.c: filling a struct gtr_error (base/error.h).  Calls only the
 * C library.
 */
#include "base/error.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

void gtr_seterr(struct gtr_error *e, enum gtr_errkind kind, uint64_t gen, uint64_t off,
		const char *fmt, ...)
{
	if (!e)
		return;
	memset(e, 0, offsetof(struct gtr_error, msg));
	e->kind = kind;
	e->gen = gen;
	e->offset = off;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

