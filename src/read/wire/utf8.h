/*
 * wire/utf8.h: UTF-8 decoding with Go's rules (unicode/utf8.DecodeRune): an
 * invalid or incomplete sequence decodes as U+FFFD of width 1.  No calls.
 */
#ifndef GTREAD_UTF8_H
#define GTREAD_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define GTR_RUNE_ERROR 0xFFFDu

static inline size_t gtr_utf8_decode(const uint8_t *p, size_t n, uint32_t *r)
{
	uint8_t b0 = p[0];
	if (b0 < 0x80) {
		*r = b0;
		return 1;
	}
	size_t size;
	uint8_t lo = 0x80, hi = 0xBF;
	uint32_t v;
	if (b0 >= 0xC2 && b0 <= 0xDF) {
		size = 2;
		v = b0 & 0x1F;
	} else if (b0 >= 0xE0 && b0 <= 0xEF) {
		size = 3;
		v = b0 & 0x0F;
		if (b0 == 0xE0)
			lo = 0xA0;
		else if (b0 == 0xED)
			hi = 0x9F;
	} else if (b0 >= 0xF0 && b0 <= 0xF4) {
		size = 4;
		v = b0 & 0x07;
		if (b0 == 0xF0)
			lo = 0x90;
		else if (b0 == 0xF4)
			hi = 0x8F;
	} else {
		*r = GTR_RUNE_ERROR;
		return 1;
	}
	if (n < 2 || p[1] < lo || p[1] > hi) {
		*r = GTR_RUNE_ERROR;
		return 1;
	}
	v = v << 6 | (p[1] & 0x3F);
	for (size_t i = 2; i < size; i++) {
		if (n <= i || p[i] < 0x80 || p[i] > 0xBF) {
			*r = GTR_RUNE_ERROR;
			return 1;
		}
		v = v << 6 | (p[i] & 0x3F);
	}
	*r = v;
	return size;
}

#endif
