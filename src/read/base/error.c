/*
 * base/error.c: filling a struct gtr_error (base/error.h).  Calls only the
 * C library.
 */
#include "base/error.h"

#include <stdarg.h>
#include <stdbool.h>
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


const char *gtr_errstr(char *out, size_t cap, const void *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *b = s;
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = b[i];
		bool ctl = c < 0x20 || c == 0x7f;
		if (w + (ctl ? 4 : 1) >= cap)
			break;
		if (ctl) {
			out[w++] = '\\';
			out[w++] = 'x';
			out[w++] = hex[c >> 4];
			out[w++] = hex[c & 15];
		} else {
			out[w++] = (char)c;
		}
	}
	out[w] = 0;
	return out;
}
