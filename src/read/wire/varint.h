/*
 * wire/varint.h: the uvarints of the trace format, decoded exactly as Go's
 * encoding/binary does (ReadUvarint on a stream, Uvarint on a slice), with
 * Go's error texts.  No calls.
 */
#ifndef GTREAD_WIRE_VARINT_H
#define GTREAD_WIRE_VARINT_H

#include <stdint.h>

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

#endif
